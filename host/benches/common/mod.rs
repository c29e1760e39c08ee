//! What the benchmarks share: the example handlers, built beforehand by
//! `cargo xtask guests` (which `cargo xtask bench` runs first), the stanzas
//! they are fed, and a real `Server` on a loopback port with clients that
//! open streams to it.
#![allow(dead_code)] // each bench binary uses its own part of this module

pub mod window;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use ej::bindings::{Connection, Event};
use ej::crash::CrashLog;
use ej::fault::Fault;
use ej::limits::{ConnectionLimits, SandboxLimits};
use ej::module::Module;
use ej::sandbox::{Completed, Sandbox};
use ej::server::Server;
use ej::service::Service;
use ej::session::Encryption;
use ej::tls::{Certificates, Tls};

/// How long any one step may take before a benchmark gives up.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// `ej serve`'s default connection cap.
const MAX_CONNECTIONS: u32 = 10_000;

/// Criterion as every benchmark here runs: a 1 s warm-up, then `seconds`
/// of measuring.
pub fn criterion(seconds: u64) -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(seconds))
}

/// Runs `each()` to completion `iters` times, one after another, on
/// `runtime`; returns how long that took, for `Bencher::iter_custom`.
pub fn time_each<F: Future>(runtime: &tokio::runtime::Runtime, iters: u64, mut each: impl FnMut() -> F) -> Duration {
    runtime.block_on(async {
        let start = std::time::Instant::now();
        for _ in 0..iters {
            std::hint::black_box(each().await);
        }
        start.elapsed()
    })
}

/// The workspace's target directory, as `cargo xtask guests` sees it.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// The echo handler component. Panics with what to run if it is not built.
pub fn echo_module_path() -> PathBuf {
    example_module_path("echo")
}

/// An example handler as `cargo xtask guests` builds it (`echo`,
/// `echo-wasi`, `chat`, `xmpp`, `echo-c`…). Panics with what to run if it is
/// not built.
pub fn example_module_path(name: &str) -> PathBuf {
    let path = target_dir().join("guests").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "the {name} handler is not built ({} is missing): run `cargo xtask guests` \
         (or `cargo xtask bench`, which builds the handlers and then runs the benchmarks)",
        path.display()
    );
    path
}

/// An example handler as `cargo xtask guests` builds it, if it is built;
/// else `None`, having said what to run (for benchmarks that compare
/// builds and go on without a missing one).
pub fn built_module_path(name: &str) -> Option<PathBuf> {
    let path = target_dir().join("guests").join(format!("{name}.wasm"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipping {name}: {} is missing (run `cargo xtask guests`, or `cargo xtask bench`)",
            path.display()
        );
        None
    }
}

/// The opening tag of a client stream for `domain`, as the `stream-open`
/// event carries it.
pub fn stream_tag(domain: &str) -> String {
    format!(
        "<stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
    )
}

/// What a client sends to open its stream: an XML declaration and the tag.
pub fn stream_header(domain: &str) -> String {
    format!("<?xml version='1.0'?>{}", stream_tag(domain))
}

/// A `<message/>` chat stanza of exactly `size` bytes, its body padded with
/// text; `attrs` (e.g. namespace declarations) go right after the name.
pub fn message(size: usize, attrs: &str) -> String {
    let head = format!(
        "<message{attrs} from='juliet@example.com/balcony' to='romeo@example.net/garden' \
         type='chat' id='ktx72v49'><body>"
    );
    let tail = "</body></message>";
    assert!(
        size >= head.len() + tail.len(),
        "a message of {size} bytes is too small"
    );
    let text: String = "Art thou not Romeo, and a Montague? "
        .chars()
        .cycle()
        .take(size - head.len() - tail.len())
        .collect();
    let stanza = format!("{head}{text}{tail}");
    assert_eq!(stanza.len(), size);
    stanza
}

/// What a handler's imports reach (a store and a registry), with the store
/// in a scratch directory removed when this is dropped.
pub struct BenchEnv {
    pub env: ej::imports::Env,
    dir: PathBuf,
}

impl BenchEnv {
    pub fn new(bench: &str) -> Self {
        let dir = Self::scratch(bench);
        Self::with(ej::db::Db::open(&dir, ej::db::CACHE).expect("opening the store"), dir)
    }

    /// With the store in PostgreSQL at `url` instead.
    pub fn on_postgres(bench: &str, runtime: &tokio::runtime::Runtime, url: &str) -> Self {
        let limits = ej::db::PostgresLimits {
            connections: 16,
            timeout: PATIENCE,
        };
        let db = runtime
            .block_on(ej::db::Db::connect(url, limits))
            .expect("connecting to PostgreSQL");
        Self::with(db, Self::scratch(bench))
    }

    fn scratch(bench: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ej-bench-{bench}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn with(db: ej::db::Db, dir: PathBuf) -> Self {
        let env = ej::imports::Env {
            db: std::sync::Arc::new(db),
            registry: std::sync::Arc::new(ej::registry::Registry::default()),
            holds: std::sync::Arc::default(),
            cluster: None,
            relay: None,
        };
        Self { env, dir }
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The connection record a handler is handed outside a server.
pub fn connection(module: &Module) -> Connection {
    Connection {
        id: 1,
        peer: "127.0.0.1:49152".into(),
        listener: "127.0.0.1:5222".into(),
        module: module.info().clone(),
        tls: None,
    }
}

/// One example handler in a sandbox with the default limits, a store and a
/// registry, run one event at a time on a current-thread runtime.
pub struct HandlerFixture {
    pub runtime: tokio::runtime::Runtime,
    pub sandbox: Sandbox,
    pub env: BenchEnv,
    pub module: Module,
    pub conn: Connection,
}

impl HandlerFixture {
    /// `name` is an example handler written in Rust (`echo`, `faulty`).
    pub fn new(name: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime");
        let sandbox = Sandbox::new(SandboxLimits::default()).expect("creating the sandbox");
        let module = Module::load(&sandbox, &example_module_path(name))
            .unwrap_or_else(|error| panic!("loading the {name} handler: {error:#}"));
        Self {
            runtime,
            sandbox,
            env: BenchEnv::new(name),
            conn: connection(&module),
            module,
        }
    }

    /// The real per-event path: `Sandbox::handle`.
    pub async fn handle(&self, state: &[u8], event: &Event) -> Result<Completed, Fault> {
        self.sandbox
            .handle(&self.module, &self.conn, state, event, &self.env.env)
            .await
    }
}

/// A client's connection: plain TCP, or TLS over it.
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// The real `Server` on two free loopback ports (plain, and TLS from the
/// first byte), in this process, with the default connection limits.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// The TLS listener.
    pub tls_addr: SocketAddr,
    /// The self-signed certificate it presents, for clients to trust.
    pub cert: PathBuf,
    pub service: Arc<Service>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningServer {
    /// Serves the module at `module` (which reloads read again) from `sandbox`.
    pub async fn start(env: &BenchEnv, sandbox: Arc<Sandbox>, module: &Path) -> Self {
        let module = Module::load(&sandbox, module).expect("loading the handler");
        let pair = ej::tls::local_pair(&env.path("tls")).expect("making a certificate");
        let tls = Tls {
            certificates: Certificates::load(vec![pair.clone()], 4096).expect("loading the certificate"),
            handshake_timeout: PATIENCE,
        };
        let service = Arc::new(Service::new(
            sandbox,
            env.env.clone(),
            module,
            ConnectionLimits::default(),
            Arc::new(CrashLog::stderr()),
            Arc::new(tls),
        ));
        let (stop, stopped) = watch::channel(false);
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        // Every bench connection comes from 127.0.0.1.
        let admission = ej::admission::Admission::new(MAX_CONNECTIONS, MAX_CONNECTIONS);
        for encryption in [Encryption::Plain, Encryption::Direct] {
            let addr = "127.0.0.1:0".parse().expect("an address");
            let server = Server::bind(addr, Arc::clone(&service), encryption, Arc::clone(&admission))
                .await
                .expect("binding");
            addrs.push(server.local_addr().expect("the bound address"));
            tasks.push(tokio::spawn(server.run(stopped.clone())));
        }
        Self {
            addr: addrs[0],
            tls_addr: addrs[1],
            cert: pair.cert,
            service,
            stop,
            tasks,
        }
    }

    /// A TLS client trusting this server's certificate, resuming sessions
    /// or not.
    pub fn tls_connector(&self, resume: bool) -> TlsConnector {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        let cert = CertificateDer::from_pem_file(&self.cert).expect("reading the certificate");
        roots.add(cert).expect("a usable certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        TlsConnector::from(Arc::new(config))
    }

    /// Connects to the TLS listener and runs the handshake.
    pub async fn connect_tls(&self, connector: &TlsConnector) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.tls_addr).await.expect("connecting");
        tcp.set_nodelay(true).expect("setting TCP_NODELAY");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
        connector.connect(name, tcp).await.expect("the TLS handshake")
    }

    /// Ends every client's stream, waits for the server to close each
    /// connection, then shuts the server down.
    pub async fn stop(self, clients: impl IntoIterator<Item = impl Duplex>) {
        for mut stream in clients {
            stream.write_all(b"</stream:stream>").await.expect("ending the stream");
            let mut rest = Vec::new();
            tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest))
                .await
                .expect("the server closes in time")
                .expect("reading the end of the stream");
        }
        let _ = self.stop.send(true);
        for task in self.tasks {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("the server stops in time")
                .expect("the server task")
                .expect("the server");
        }
    }
}

/// Connects to `addr` and opens a stream.
pub async fn open_stream(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    stream.set_nodelay(true).expect("setting TCP_NODELAY");
    open(&mut stream).await;
    stream
}

/// Opens a stream on a connection.
pub async fn open(stream: &mut impl Duplex) {
    stream
        .write_all(stream_header("example.com").as_bytes())
        .await
        .expect("sending the stream header");
    read_until(stream, b"version='1.0'>").await;
}

/// Reads until what was read ends with `suffix`; returns everything read.
pub async fn read_until(stream: &mut (impl AsyncRead + Unpin), suffix: &[u8]) -> Vec<u8> {
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

impl Drop for BenchEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
