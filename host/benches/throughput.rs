//! End-to-end echo throughput over loopback: the real `Server` in this
//! process, with the default limits, and 100 clients on the same runtime,
//! each with its stream open, sending stanzas with a bounded window of
//! stanzas in flight and reading every echo back.
//!
//! One iteration is a batch: every connection sends `STANZAS_PER_CONNECTION`
//! stanzas and reads their echoes; the figure is stanzas per second.
//!
//! Run with `cargo bench -p ej --bench throughput` after `cargo xtask guests`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;

use ej::crash::CrashLog;
use ej::limits::{ConnectionLimits, SandboxLimits};
use ej::module::Module;
use ej::sandbox::Sandbox;
use ej::server::Server;
use ej::service::Service;

/// Client connections, each a task.
const CONNECTIONS: usize = 100;
/// Stanzas each connection sends per batch.
const STANZAS_PER_CONNECTION: usize = 50;
/// Stanzas a connection may have sent and not yet seen echoed.
const WINDOW: usize = 8;
/// Size of each stanza: a typical chat message.
const STANZA_BYTES: usize = 256;
/// `ej serve`'s default connection cap.
const MAX_CONNECTIONS: u32 = 10_000;
/// How long any one step may take before the benchmark gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// One connection's stanzas and what their echoes look like.
#[derive(Clone)]
struct Traffic {
    /// `WINDOW` stanzas back to back: a refill is a prefix of this.
    burst: Arc<Vec<u8>>,
    stanza_len: usize,
    /// Bytes of one stanza's echo (the same for every copy of the stanza).
    echo_len: usize,
}

async fn start_server(
    env: &common::BenchEnv,
) -> (
    SocketAddr,
    watch::Sender<bool>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let sandbox = Arc::new(Sandbox::new(SandboxLimits::default()).expect("creating the sandbox"));
    let module = Module::load(&sandbox, &common::echo_module_path()).expect("loading the echo handler");
    let service = Arc::new(Service::new(
        sandbox,
        env.env.clone(),
        module,
        ConnectionLimits::default(),
        Arc::new(CrashLog::stderr()),
    ));
    let addr = "127.0.0.1:0".parse().expect("an address");
    let server = Server::bind(addr, service, MAX_CONNECTIONS).await.expect("binding");
    let addr = server.local_addr().expect("the bound address");
    let (stop, stopped) = watch::channel(false);
    (addr, stop, tokio::spawn(server.run(stopped)))
}

/// Reads until what was read ends with `suffix`; returns everything read.
async fn read_until(stream: &mut TcpStream, suffix: &[u8]) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    while !received.ends_with(suffix) {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the server answers in time")
            .expect("reading from the server");
        assert!(
            n > 0,
            "the server closed the connection; got {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buf[..n]);
    }
    received
}

/// Connects and opens a stream; returns the connection and the length of
/// the echo of `stanza`, sent once as a probe.
async fn open(addr: SocketAddr, stanza: &str) -> (TcpStream, usize) {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    stream.set_nodelay(true).expect("setting TCP_NODELAY");
    stream
        .write_all(common::stream_header("example.com").as_bytes())
        .await
        .expect("sending the stream header");
    read_until(&mut stream, b"version='1.0'>").await;
    stream.write_all(stanza.as_bytes()).await.expect("sending a stanza");
    let echo = read_until(&mut stream, b"</message>").await;
    (stream, echo.len())
}

/// One connection's part of a batch: sends its stanzas, never more than
/// `WINDOW` ahead of the echoes, until every echo is back.
async fn exchange(mut stream: TcpStream, traffic: Traffic) -> TcpStream {
    let expected = STANZAS_PER_CONNECTION * traffic.echo_len;
    let mut sent = 0;
    let mut received = 0;
    let mut buf = vec![0; 64 * 1024];
    while received < expected {
        let in_flight = sent - received / traffic.echo_len;
        let refill = (WINDOW - in_flight).min(STANZAS_PER_CONNECTION - sent);
        if refill > 0 {
            stream
                .write_all(&traffic.burst[..refill * traffic.stanza_len])
                .await
                .expect("sending stanzas");
            sent += refill;
        }
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the echoes arrive in time")
            .expect("reading echoes");
        assert!(
            n > 0,
            "the server closed the connection (after a handler fault, its crash report is above)"
        );
        received += n;
        if received == expected {
            assert!(buf[..n].ends_with(b"</message>"), "the last echo is a whole stanza");
        }
    }
    assert_eq!(received, expected, "the server sent more than the echoes");
    stream
}

/// Runs one batch on every connection; returns how long it took.
async fn batch(clients: &mut Vec<TcpStream>, traffic: &Traffic) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .drain(..)
        .map(|stream| tokio::spawn(exchange(stream, traffic.clone())))
        .collect();
    for task in tasks {
        clients.push(task.await.expect("a client task"));
    }
    start.elapsed()
}

/// Ends every stream and waits for the server to close each connection,
/// then shuts the server down.
async fn close(
    clients: Vec<TcpStream>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    for mut stream in clients {
        stream.write_all(b"</stream:stream>").await.expect("ending the stream");
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest))
            .await
            .expect("the server closes in time")
            .expect("reading the end of the stream");
    }
    let _ = stop.send(true);
    tokio::time::timeout(PATIENCE, server)
        .await
        .expect("the server stops in time")
        .expect("the server task")
        .expect("the server");
}

fn throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime");
    let stanza = common::message(STANZA_BYTES, "");
    let env = common::BenchEnv::new("throughput");
    let (addr, stop, server) = runtime.block_on(start_server(&env));
    let (mut clients, echo_len) = runtime.block_on(async {
        let mut clients = Vec::with_capacity(CONNECTIONS);
        let mut echo_len = 0;
        for _ in 0..CONNECTIONS {
            let (stream, len) = open(addr, &stanza).await;
            clients.push(stream);
            echo_len = len;
        }
        (clients, echo_len)
    });
    let traffic = Traffic {
        burst: Arc::new(stanza.repeat(WINDOW).into_bytes()),
        stanza_len: stanza.len(),
        echo_len,
    };

    let mut group = c.benchmark_group("throughput");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .throughput(Throughput::Elements((CONNECTIONS * STANZAS_PER_CONNECTION) as u64));
    group.bench_function("echo_100x50", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += batch(&mut clients, &traffic).await;
                }
                total
            })
        });
    });
    group.finish();

    runtime.block_on(close(clients, stop, server));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = throughput
}
criterion_main!(benches);
