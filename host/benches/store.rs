//! What a store write adds to one event, with the faulty handler (which
//! echoes any stanza it has no command for, and stores on `<put/>`):
//!
//! - `no_write`: `Sandbox::handle` with a 256-byte `<message/>` stanza,
//!   which the handler echoes: the same event without a write.
//! - `write_uncommitted`: a 256-byte `<put key='K' value='…'/>`, the write
//!   collected in the event's write set but not committed.
//! - `write`: the same, then the write set committed to the store and on
//!   disk, as a session does before it sends the replies. One event at a
//!   time: each commit is its own durable transaction. (Under concurrent
//!   load the writer groups commits: see `throughput/put_100x50`.)
//!
//! Run with `cargo bench -p ej --bench store` after `cargo xtask guests`.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

use ej::bindings::{Connection, Event};
use ej::limits::SandboxLimits;
use ej::module::Module;
use ej::sandbox::{Completed, Sandbox};

/// Size of each stanza.
const STANZA_BYTES: usize = 256;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    sandbox: Sandbox,
    env: common::BenchEnv,
    module: Module,
    conn: Connection,
}

impl Fixture {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime");
        let sandbox = Sandbox::new(SandboxLimits::default()).expect("creating the sandbox");
        let module =
            Module::load(&sandbox, &common::example_module_path("faulty")).expect("loading the faulty handler");
        Self {
            runtime,
            sandbox,
            env: common::BenchEnv::new("store"),
            conn: common::connection(&module),
            module,
        }
    }

    async fn handle(&self, event: &Event) -> Completed {
        self.sandbox
            .handle(&self.module, &self.conn, &[], event, &self.env.env)
            .await
            .expect("the faulty handler handles the stanza")
    }

    /// Runs `event` `iters` times, committing its writes if `commit`.
    fn run(&self, iters: u64, event: &Event, commit: bool) -> Duration {
        self.runtime.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                let completed = self.handle(event).await;
                if commit {
                    self.env.env.db.commit(completed.writes).await.expect("committing");
                } else {
                    black_box(completed);
                }
            }
            start.elapsed()
        })
    }
}

fn store(c: &mut Criterion) {
    let fx = Fixture::new();
    let message = Event::Stanza(common::message(STANZA_BYTES, " xmlns='jabber:client'"));
    let head = "<put xmlns='jabber:client' key='bench.key' value='";
    let put = Event::Stanza(format!("{head}{}'/>", "v".repeat(STANZA_BYTES - head.len() - 3)));

    // Each event does what its name says.
    let writes = |event: &Event| fx.runtime.block_on(fx.handle(event)).writes.len();
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
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = store
}
criterion_main!(benches);
