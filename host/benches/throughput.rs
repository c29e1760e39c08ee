//! End-to-end throughput over loopback: the real `Server` in this process,
//! with the default limits, and 100 clients on the same runtime, each with
//! its stream open, sending stanzas with a bounded window in flight and
//! reading every reply back.
//!
//! One iteration is a batch: every connection sends `STANZAS_PER_CONNECTION`
//! stanzas and reads their replies; the figure is stanzas per second.
//!
//! - `echo_100x50`: the echo handler.
//! - `echo_tls_100x50`: the same over TLS 1.3 (connections on the TLS
//!   listener, handshakes done before measuring).
//! - `faulty_echo_100x50`: the faulty handler echoing the same stanzas, the
//!   baseline for the next two (same handler, same state).
//! - `put_100x50`: every stanza is a `<put/>`: one store write per event,
//!   committed before the reply (the writer groups concurrent commits).
//! - `route_50pairs_x50`: 50 pairs of connections, each bound to an address,
//!   routing a message to its partner: one stanza event at the sender and
//!   one routed event at the receiver per message, each in a fresh instance.
//! - `echo_100x50_swap_warm` and `echo_100x50_swap_cold`: `echo_100x50`
//!   while the module is swapped at the start of every batch, for one already
//!   in the compile cache or one never seen (compiled during the batch).
//! - `increment_100x50`: every stanza is an `<increment/>` of the
//!   connection's own counter: a read and a write per event, validated at
//!   commit but never in conflict (compare with `put_100x50`).
//! - `counter_10x50` and `counter_100x50`: 10 or 100 connections all
//!   incrementing one counter: every event conflicts with every other
//!   running at the same time, and losers run again until they win. The
//!   reruns each increment took, and how many of them the writer refused
//!   (the others queued behind a rerun before reaching it), are printed
//!   after the run.
//! - `put_pg_100x50`, `increment_pg_100x50`, `counter_pg_10x50`: the same
//!   with the store in PostgreSQL (a server of the benchmark's own on
//!   loopback, syncing each commit to disk as the embedded store does): what
//!   a cluster's shared store costs against the embedded one.
//!
//! Run with `cargo bench -p ej --bench throughput` after `cargo xtask guests`.

mod common;
#[path = "../../tests/common/postgres.rs"]
#[allow(dead_code)] // the tests' part of it
mod postgres;
#[path = "../../tests/common/variant.rs"]
mod variant;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tokio::io::AsyncWriteExt as _;
use tokio::runtime::Runtime;

use ej::limits::SandboxLimits;
use ej::sandbox::Sandbox;
use ej::service::Reload;

use common::window::{Client, STANZAS_PER_CONNECTION};
use common::{Duplex, RunningServer, open_stream, read_until};

/// Client connections, each a task.
const CONNECTIONS: usize = 100;
/// Size of each stanza (of each routed message's payload): a typical chat message.
const STANZA_BYTES: usize = 256;

/// What the clients of one benchmark send.
#[derive(Clone, Copy)]
enum Workload {
    /// Chat messages, echoed; over TLS if `tls`.
    Echo { tls: bool },
    /// `<put key='bench.N' value='…'/>`, answered `<stored key='bench.N'/>`.
    Put,
    /// Pairs routing chat messages to each other, delivered as `<routed>`.
    Route,
    /// `<increment key='K'/>`, answered `<incremented key='K' value='N'/>`:
    /// each connection its own counter, or all of them one.
    Increment { shared: bool },
}

/// Opens `connections` streams for `workload`, each answered once already.
async fn connect(server: &RunningServer, workload: Workload, connections: usize) -> Vec<Client> {
    let mut clients = Vec::with_capacity(connections);
    match workload {
        Workload::Echo { .. } | Workload::Put | Workload::Increment { .. } => {
            let connector = server.tls_connector(true);
            for i in 0..connections {
                let (stanza, reply_end): (String, &[u8]) = match workload {
                    Workload::Echo { .. } => (common::message(STANZA_BYTES, ""), b"</message>"),
                    Workload::Put => {
                        let head = format!("<put key='bench.{i}' value='");
                        let value = "v".repeat(STANZA_BYTES - head.len() - "'/>".len());
                        (format!("{head}{value}'/>"), b"'/>")
                    }
                    Workload::Increment { shared } => {
                        let key = if shared {
                            "bench".to_owned()
                        } else {
                            format!("bench.{i}")
                        };
                        (format!("<increment key='{key}'/>"), b"'/>")
                    }
                    Workload::Route => unreachable!("routes are set up below"),
                };
                let mut stream: Box<dyn Duplex> = match workload {
                    Workload::Echo { tls: true } => {
                        let mut stream = server.connect_tls(&connector).await;
                        common::open(&mut stream).await;
                        Box::new(stream)
                    }
                    _ => Box::new(open_stream(server.addr).await),
                };
                stream.write_all(stanza.as_bytes()).await.expect("sending a stanza");
                read_until(&mut stream, reply_end).await;
                clients.push(Client::new(stream, &stanza, reply_end));
            }
        }
        Workload::Route => {
            let message = common::message(STANZA_BYTES, "");
            for pair in 0..connections / 2 {
                let addresses = [format!("peer{}", 2 * pair), format!("peer{}", 2 * pair + 1)];
                let mut streams = Vec::with_capacity(2);
                for address in &addresses {
                    let mut stream = open_stream(server.addr).await;
                    stream
                        .write_all(format!("<bind address='{address}'/>").as_bytes())
                        .await
                        .expect("binding");
                    read_until(&mut stream, b"'/>").await;
                    streams.push(stream);
                }
                let mut pair_clients: Vec<Client> = streams
                    .into_iter()
                    .zip([1, 0])
                    .map(|(stream, to)| {
                        let stanza = format!("<route to='{}'>{message}</route>", addresses[to]);
                        Client::new(stream, &stanza, b"</routed>")
                    })
                    .collect();
                // Each sends the other one message.
                for (from, to) in [(0, 1), (1, 0)] {
                    pair_clients[from].send_one().await;
                    read_until(&mut pair_clients[to].stream, b"</routed>").await;
                }
                clients.extend(pair_clients);
            }
        }
    }
    clients
}

/// Swaps the served module for the next build at the start of each batch.
struct Swapper {
    server_file: PathBuf,
    builds: variant::Builds,
}

/// Runs one batch on every connection, swapping the module meanwhile if
/// `swapper` is given; returns how long the clients took.
async fn batch(clients: &mut Vec<Client>, server: &RunningServer, swapper: Option<&mut Swapper>) -> Duration {
    let start = Instant::now();
    let swap = swapper.map(|swapper| {
        let bytes = swapper.builds.next();
        let path = swapper.server_file.clone();
        let service = Arc::clone(&server.service);
        tokio::spawn(async move {
            std::fs::write(&path, bytes).expect("writing the new build");
            service.reload().await.expect("reloading")
        })
    });
    let tasks: Vec<_> = clients
        .drain(..)
        .map(|client| tokio::spawn(client.exchange()))
        .collect();
    for task in tasks {
        clients.push(task.await.expect("a client task"));
    }
    let elapsed = start.elapsed();
    if let Some(swap) = swap {
        // Not timed: a cold swap may still be compiling.
        let reload = swap.await.expect("the swap task");
        assert!(matches!(reload, Reload::Swapped(_)), "the module was swapped");
    }
    elapsed
}

/// Benchmarks `workload` on `connections` clients against a server for
/// `module`: starts it, opens the clients, measures batches, and stops it
/// all. Prints how many commits conflicted per stanza, where any did.
fn bench(
    group: &mut BenchmarkGroup<WallTime>,
    runtime: &Runtime,
    name: &str,
    module: PathBuf,
    (workload, connections): (Workload, usize),
    swap: Option<bool>,
    store: Option<&postgres::Postgres>,
) {
    let scratch = format!("throughput-{name}");
    let env = match store {
        None => common::BenchEnv::new(&scratch),
        Some(postgres) => common::BenchEnv::on_postgres(&scratch, runtime, &postgres.database(name)),
    };
    let sandbox = Sandbox::new(SandboxLimits::default()).expect("creating the sandbox");
    let sandbox = Arc::new(
        sandbox
            .with_compile_cache(&env.path("cache"))
            .expect("opening the compile cache"),
    );
    // The server reads its module from a file of its own, which swaps replace.
    let original = std::fs::read(&module).expect("reading the handler");
    let server_file = env.path("handler.wasm");
    std::fs::write(&server_file, &original).expect("copying the handler");
    let server = runtime.block_on(RunningServer::start(&env, sandbox, &server_file));
    let mut clients = runtime.block_on(connect(&server, workload, connections));
    let conflicts_before = env.env.db.conflicts();
    let reruns = || ej::metrics::METRICS.reruns.load(std::sync::atomic::Ordering::Relaxed);
    let reruns_before = reruns();
    let mut stanzas = 0;
    let mut swapper = swap.map(|cold| Swapper {
        server_file,
        builds: variant::Builds::new(original, cold),
    });

    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += batch(&mut clients, &server, swapper.as_mut()).await;
                }
                stanzas += iters as usize * connections * STANZAS_PER_CONNECTION;
                total
            })
        });
    });
    runtime.block_on(server.stop(clients.into_iter().map(|client| client.stream)));
    let conflicts = env.env.db.conflicts() - conflicts_before;
    let reruns = reruns() - reruns_before;
    if reruns > 0 {
        println!(
            "throughput/{name}: {reruns} reruns in {stanzas} stanzas ({:.2} per stanza), \
             {conflicts} of them refused by the writer",
            reruns as f64 / stanzas as f64
        );
    }
}

fn throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime");
    let echo = common::echo_module_path;
    let faulty = || common::example_module_path("faulty");

    let mut group = c.benchmark_group("throughput");
    let stanzas = |connections: usize| Throughput::Elements((connections * STANZAS_PER_CONNECTION) as u64);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .throughput(stanzas(CONNECTIONS));
    bench(
        &mut group,
        &runtime,
        "echo_100x50",
        echo(),
        (Workload::Echo { tls: false }, CONNECTIONS),
        None,
        None,
    );
    bench(
        &mut group,
        &runtime,
        "echo_tls_100x50",
        echo(),
        (Workload::Echo { tls: true }, CONNECTIONS),
        None,
        None,
    );
    bench(
        &mut group,
        &runtime,
        "faulty_echo_100x50",
        faulty(),
        (Workload::Echo { tls: false }, CONNECTIONS),
        None,
        None,
    );
    bench(
        &mut group,
        &runtime,
        "put_100x50",
        faulty(),
        (Workload::Put, CONNECTIONS),
        None,
        None,
    );
    let increment = |shared| Workload::Increment { shared };
    bench(
        &mut group,
        &runtime,
        "increment_100x50",
        faulty(),
        (increment(false), CONNECTIONS),
        None,
        None,
    );
    for writers in [10, 100] {
        group.throughput(stanzas(writers));
        let name = format!("counter_{writers}x50");
        bench(
            &mut group,
            &runtime,
            &name,
            faulty(),
            (increment(true), writers),
            None,
            None,
        );
    }
    let postgres = postgres::Postgres::start_durable("throughput");
    group.throughput(stanzas(CONNECTIONS));
    for (name, workload) in [
        ("put_pg_100x50", Workload::Put),
        ("increment_pg_100x50", increment(false)),
    ] {
        bench(
            &mut group,
            &runtime,
            name,
            faulty(),
            (workload, CONNECTIONS),
            None,
            Some(&postgres),
        );
    }
    group.throughput(stanzas(10));
    let counter = (increment(true), 10);
    bench(
        &mut group,
        &runtime,
        "counter_pg_10x50",
        faulty(),
        counter,
        None,
        Some(&postgres),
    );
    group.throughput(stanzas(CONNECTIONS));
    bench(
        &mut group,
        &runtime,
        "route_50pairs_x50",
        faulty(),
        (Workload::Route, CONNECTIONS),
        None,
        None,
    );
    bench(
        &mut group,
        &runtime,
        "echo_100x50_swap_warm",
        echo(),
        (Workload::Echo { tls: false }, CONNECTIONS),
        Some(false),
        None,
    );
    bench(
        &mut group,
        &runtime,
        "echo_100x50_swap_cold",
        echo(),
        (Workload::Echo { tls: false }, CONNECTIONS),
        Some(true),
        None,
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(5);
    targets = throughput
}
criterion_main!(benches);
