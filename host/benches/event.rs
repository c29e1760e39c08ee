//! The cost of one event with the echo handler, next to wasmtime's bare
//! instantiation floor in the same engine, so the ratio between them shows
//! what the host adds on top of "a fresh instance per event".
//!
//! - `floor`: a store from `Sandbox::new_store` and an instance from the
//!   module's `InstancePre`, dropped at once: the least any event can cost.
//! - `reused`: `handle` called again and again on one instance (what a host
//!   that kept instances would pay; for comparison only).
//! - `event`: `Sandbox::handle` with a 1 KiB `<message/>` stanza and a
//!   256-byte echo state: the real per-event path.
//!
//! Each for the echo handler built without WASI (`event/…`, the examples'
//! build) and the same echo built for `wasm32-wasip2` (`event-wasi/…`),
//! side by side; and `event-xmpp/floor`, the floor of the XMPP server
//! (`examples/xmpp`), which every event of a real XMPP session pays.
//!
//! Run with `cargo bench -p ej --bench event` after `cargo xtask guests`.

mod common;

use std::hint::black_box;
use std::time::Instant;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

use ej::bindings::Event;

/// Size of the stanza the `event` benchmark hands the handler.
const STANZA_BYTES: usize = 1024;
/// Size of the echo state the `event` benchmark hands the handler.
const STATE_BYTES: usize = 256;

/// The benchmark groups: `(group, echo build in target/guests/)`.
const BUILDS: &[(&str, &str)] = &[("event", "echo"), ("event-wasi", "echo-wasi")];

/// The echo handler with a realistic state and stanza.
struct Fixture {
    handler: common::HandlerFixture,
    state: Vec<u8>,
    stanza: Event,
}

impl std::ops::Deref for Fixture {
    type Target = common::HandlerFixture;

    fn deref(&self) -> &Self::Target {
        &self.handler
    }
}

impl Fixture {
    fn new(build: &str) -> Self {
        let stanza = common::message(STANZA_BYTES, " xmlns='jabber:client'");
        let mut fixture = Self {
            handler: common::HandlerFixture::new(build),
            state: Vec::new(),
            stanza: Event::Stanza(stanza),
        };
        fixture.state = fixture.realistic_state();
        // The stanza event itself must succeed and echo the stanza.
        let completed = fixture
            .runtime
            .block_on(fixture.handle(&fixture.state, &fixture.stanza))
            .expect("the echo handler handles the stanza");
        assert_eq!(
            completed.outcome.actions.len(),
            1,
            "echo answers a stanza with one send"
        );
        fixture
    }

    /// The state echo returns for a `stream-open` whose `to` domain is long
    /// enough to make it `STATE_BYTES` bytes.
    fn realistic_state(&self) -> Vec<u8> {
        let open = |domain_len: usize| {
            let domain: String = "xmpp.eu-west.cluster.example.net."
                .chars()
                .cycle()
                .take(domain_len)
                .collect();
            let event = Event::StreamOpen(common::stream_tag(&domain));
            self.runtime
                .block_on(self.handle(&[], &event))
                .expect("the echo handler opens the stream")
                .outcome
                .state
        };
        let probe = open(100).len();
        let state = open(100 + STATE_BYTES - probe);
        assert_eq!(state.len(), STATE_BYTES, "echo state size");
        state
    }
}

fn event(c: &mut Criterion) {
    for &(name, build) in BUILDS {
        measure(c, name, &Fixture::new(build));
    }
    let mut group = c.benchmark_group("event-xmpp");
    floor(&mut group, &common::HandlerFixture::new("xmpp"));
    group.finish();
}

/// A fresh instance of `handler`, dropped at once.
fn floor(group: &mut BenchmarkGroup<'_, WallTime>, handler: &common::HandlerFixture) {
    group.bench_function("floor", |b| {
        b.iter_custom(|iters| {
            common::time_each(&handler.runtime, iters, || async {
                let mut store = handler.sandbox.new_store(&handler.env.env);
                let instance = handler.module.pre().instantiate_async(&mut store).await;
                black_box(instance.expect("instantiating"));
                // The instance lives in the store: this frees it.
                drop(store);
            })
        });
    });
}

fn measure(c: &mut Criterion, name: &str, fx: &Fixture) {
    let mut group = c.benchmark_group(name);

    floor(&mut group, fx);

    group.bench_function("reused", |b| {
        let mut store = fx.sandbox.new_store(&fx.env.env);
        // The store's deadline callback interrupts after the event timeout,
        // and this one instance lives for the whole benchmark: push the
        // deadline out of reach. (Not `u64::MAX`: wasmtime adds it to the
        // current epoch, which wraps in release builds to a deadline already
        // passed.)
        store.set_epoch_deadline(u64::MAX / 2);
        let handler = fx
            .runtime
            .block_on(fx.module.pre().instantiate_async(&mut store))
            .expect("instantiating");
        b.iter_custom(|iters| {
            fx.runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let outcome = handler
                        .call_handle(&mut store, &fx.conn, &fx.state, &fx.stanza)
                        .await
                        .expect("calling handle")
                        .expect("handling the stanza");
                    black_box(outcome);
                }
                start.elapsed()
            })
        });
    });

    group.bench_function("event", |b| {
        b.iter_custom(|iters| {
            common::time_each(&fx.runtime, iters, || async {
                fx.handle(&fx.state, &fx.stanza).await.expect("handling the stanza")
            })
        });
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(3);
    targets = event
}
criterion_main!(benches);
