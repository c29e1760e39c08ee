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
//!
//! Run with `cargo bench -p ej --bench store` after `cargo xtask guests`.

mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use ej::bindings::Event;
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

    /// Runs `event` `iters` times, committing its writes if `commit`.
    fn run(&self, iters: u64, event: &Event, commit: bool) -> Duration {
        common::time_each(&self.0.runtime, iters, || async {
            let completed = self.handle(event).await;
            if commit {
                self.0.env.env.db.commit(completed.writes).await.expect("committing");
            }
        })
    }
}

fn store(c: &mut Criterion) {
    let fx = Fixture::new();
    let message = Event::Stanza(common::message(STANZA_BYTES, " xmlns='jabber:client'"));
    let head = "<put xmlns='jabber:client' key='bench.key' value='";
    let put = Event::Stanza(format!("{head}{}'/>", "v".repeat(STANZA_BYTES - head.len() - 3)));

    // Each event does what its name says.
    let writes = |event: &Event| fx.0.runtime.block_on(fx.handle(event)).writes.len();
    assert_eq!(writes(&message), 0, "an echoed message writes nothing");
    assert_eq!(writes(&put), 1, "a put writes one key");

    let mut group = c.benchmark_group("store");
    group.bench_function("no_write", |b| b.iter_custom(|iters| fx.run(iters, &message, false)));
    group.bench_function("write_uncommitted", |b| {
        b.iter_custom(|iters| fx.run(iters, &put, false))
    });
    group.bench_function("write", |b| b.iter_custom(|iters| fx.run(iters, &put, true)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(5);
    targets = store
}
criterion_main!(benches);
