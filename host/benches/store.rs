//! What a store write adds to one event, with the faulty handler (which
//! echoes any stanza it has no command for, and stores on `<put/>`):
//!
//! - `no_write`: `Sandbox::handle` with a 256-byte `<message/>` stanza,
//!   which the handler echoes: an event of the same size that writes nothing.
//! - `write_uncommitted`: a 256-byte `<put key='K' value='…'/>`, the write
//!   collected in the event's write set but not committed.
//! - `write`: the same, then the write set committed to the store and on
//!   disk, as a session does before it sends the replies. One event at a
//!   time: each commit is its own durable transaction. (Under concurrent
//!   load the writer groups commits: see `throughput/put_100x50`.)
//! - `increment`: `<increment key='K'/>`, a read and a write of one key,
//!   committed: the writer validates the read against the commits since
//!   the event's snapshot.
//! - `increment_unvalidated`: the same event, its read set dropped before
//!   the commit, so the writer has nothing to validate: the cost of
//!   validation is the difference.
//!
//! Run with `cargo bench -p ej --bench store` after `cargo xtask guests`.

mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use ej::bindings::Event;
use ej::db::ReadSet;
use ej::sandbox::Completed;

/// Size of each stanza.
const STANZA_BYTES: usize = 256;

/// The faulty handler, whose state is left empty.
struct Fixture(common::HandlerFixture);

impl Fixture {
    fn new() -> Self {
        Self(common::HandlerFixture::new("faulty"))
    }

    async fn handle(&self, event: &Event) -> Completed {
        self.0
            .handle(&[], event)
            .await
            .expect("the faulty handler handles the stanza")
    }

    /// Runs `event` `iters` times, committing its transaction as `commit` says.
    fn run(&self, iters: u64, event: &Event, commit: Commit) -> Duration {
        common::time_each(&self.0.runtime, iters, || async {
            let mut transaction = self.handle(event).await.transaction;
            match commit {
                Commit::No => return,
                Commit::Validated => {}
                Commit::Unvalidated => transaction.reads = ReadSet::default(),
            }
            self.0.env.env.db.commit(transaction).await.expect("committing");
        })
    }
}

/// What happens to an event's transaction.
#[derive(Clone, Copy)]
enum Commit {
    No,
    Validated,
    /// Committed with its read set dropped: nothing for the writer to check.
    Unvalidated,
}

fn store(c: &mut Criterion) {
    let fx = Fixture::new();
    let message = Event::Stanza(common::message(STANZA_BYTES, " xmlns='jabber:client'"));
    let head = "<put xmlns='jabber:client' key='bench.key' value='";
    let put = Event::Stanza(format!("{head}{}'/>", "v".repeat(STANZA_BYTES - head.len() - 3)));

    let increment = Event::Stanza("<increment xmlns='jabber:client' key='bench.counter'/>".into());

    // Each event does what its name says.
    let transaction = |event: &Event| fx.0.runtime.block_on(fx.handle(event)).transaction;
    assert_eq!(
        transaction(&message).writes.len(),
        0,
        "an echoed message writes nothing"
    );
    assert_eq!(transaction(&put).writes.len(), 1, "a put writes one key");
    let counted = transaction(&increment);
    assert!(
        counted.writes.len() == 1 && !counted.reads.is_empty(),
        "an increment reads and writes"
    );

    let mut group = c.benchmark_group("store");
    let mut run = |name: &str, event: &Event, commit: Commit| {
        group.bench_function(name, |b| b.iter_custom(|iters| fx.run(iters, event, commit)));
    };
    run("no_write", &message, Commit::No);
    run("write_uncommitted", &put, Commit::No);
    run("write", &put, Commit::Validated);
    run("increment", &increment, Commit::Validated);
    run("increment_unvalidated", &increment, Commit::Unvalidated);
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(5);
    targets = store
}
criterion_main!(benches);
