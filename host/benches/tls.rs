//! Connections to the real `Server` in this process, one after another,
//! each new: the time from connecting to the handler's answer to the
//! stream header (what a client waits for before it can say anything),
//! then the client leaves.
//!
//! - `open_plain`: no TLS, the baseline.
//! - `open_tls_full`: a full TLS 1.3 handshake first (X25519, ECDSA P-256),
//!   on the TLS listener.
//! - `open_tls_resumed`: the same client resuming the session of its
//!   previous connection (the ticket arrives after the handshake, with the
//!   first reply).
//!
//! TLS echo throughput against plain echo is `throughput/echo_tls_100x50`
//! beside `throughput/echo_100x50`.
//!
//! Run with `cargo bench -p ej --bench tls` after `cargo xtask guests`.

mod common;

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::AsyncWriteExt as _;
use tokio_rustls::rustls::HandshakeKind;

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
    group.bench_function("open_plain", |b| {
        b.iter_custom(|iters| {
            common::time_each(&runtime, iters, || async {
                let mut stream = common::open_stream(server.addr).await;
                let _ = stream.shutdown().await;
            })
        });
    });
    for (name, resume) in [("open_tls_full", false), ("open_tls_resumed", true)] {
        let connector = server.tls_connector(resume);
        let mut first = true;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                common::time_each(&runtime, iters, || {
                    let expect_resumed = resume && !std::mem::take(&mut first);
                    let (server, connector) = (&server, &connector);
                    async move {
                        let mut stream = server.connect_tls(connector).await;
                        let resumed = stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
                        assert_eq!(resumed, expect_resumed, "{name}: resumed or not, as it should");
                        common::open(&mut stream).await;
                        let _ = stream.shutdown().await;
                    }
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
