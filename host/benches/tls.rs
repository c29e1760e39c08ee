//! TLS handshakes against the real `Server` in this process, each on a new
//! loopback connection to its TLS listener, one after another: the time
//! from connecting to a finished handshake (the client side's view, which
//! is what a user waits for).
//!
//! - `handshake_full`: a client that never resumes (TLS 1.3, X25519,
//!   ECDSA P-256).
//! - `handshake_resumed`: a client resuming the session of its previous
//!   connection.
//!
//! TLS echo throughput against plain echo is `throughput/echo_tls_100x50`
//! beside `throughput/echo_100x50`.
//!
//! Run with `cargo bench -p ej --bench tls` after `cargo xtask guests`.

mod common;

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::AsyncWriteExt as _;

use ej::limits::SandboxLimits;
use ej::sandbox::Sandbox;

use common::RunningServer;

fn handshakes(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime");
    let env = common::BenchEnv::new("tls");
    let sandbox = Arc::new(Sandbox::new(SandboxLimits::default()).expect("creating the sandbox"));
    let server = runtime.block_on(RunningServer::start(&env, sandbox, &common::echo_module_path()));

    let mut group = c.benchmark_group("tls");
    group.throughput(Throughput::Elements(1));
    for (name, resume) in [("handshake_full", false), ("handshake_resumed", true)] {
        let connector = server.tls_connector(resume);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                common::time_each(&runtime, iters, || async {
                    let mut stream = server.connect_tls(&connector).await;
                    let resumed =
                        stream.get_ref().1.handshake_kind() == Some(tokio_rustls::rustls::HandshakeKind::Resumed);
                    // The first connection of the resuming client has
                    // nothing to resume yet.
                    assert!(resumed == resume || resume, "resumed: {resumed}");
                    // Leave at once, without waiting for the server to
                    // finish its side of the close.
                    let _ = stream.shutdown().await;
                })
            });
        });
    }
    group.finish();
    runtime.block_on(server.stop(Vec::<tokio::net::TcpStream>::new()));
}

criterion_group! {
    name = benches;
    config = common::criterion(5);
    targets = handshakes
}
criterion_main!(benches);
