//! What every end-to-end test needs: handlers compiled from the examples in
//! this repository, the real `ej` binary serving them on a free loopback
//! port, and a plain TCP client.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod chat;
pub mod fuzz;
pub mod ledger;
pub mod metrics;
pub mod nats;
pub mod postgres;
pub mod probes;
pub mod races;
pub mod routes;
pub mod sampler;
pub mod scenario;
pub mod tls;
pub mod variant;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a test waits for anything before it fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub const STREAM_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

/// The workspace's target directory.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// An example handler in Rust (`echo`, `echo-wasi`, `chat`, `faulty`,
/// `faulty-lean`, `xmpp`), built from source once per test process by
/// `cargo xtask guests --rust`, which knows each one's target (cargo makes
/// concurrent builds from other test processes wait).
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args(["xtask", "guests", "--rust"])
            .status()
            .expect("running cargo to build the example handlers");
        assert!(status.success(), "building the example handlers failed");
    });
    target_dir().join("guests").join(format!("{name}.wasm"))
}

/// A handler that `cargo xtask guests` builds into `target/guests/` with
/// another toolchain than cargo (`echo-c`, `echo-js`, `echo-py`). Fails
/// with what to run if it is not built.
pub fn built_guest(name: &str) -> PathBuf {
    let path = target_dir().join("guests").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask guests` to build the C, JavaScript and Python \
         handlers (`cargo xtask test` does it before testing)",
        path.display()
    );
    path
}

/// The compile cache every test server shares, so each module is compiled
/// once per build rather than once per test.
pub fn compile_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ej-compile-cache")
}

/// A scratch directory for one test, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ej-test-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a scratch directory");
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.0.as_os_str().is_empty() {
            return; // handed on to a restarted server
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `ej` binary, as cargo built it for these tests.
pub fn ej() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ej"))
}

/// A running `ej serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// The first listener's address.
    pub addr: SocketAddr,
    /// Every listener's address, in `--listen` order.
    pub addrs: Vec<SocketAddr>,
    /// The admin endpoint (a Unix socket).
    pub admin: PathBuf,
    logs: Arc<Mutex<Vec<serde_json::Value>>>,
    pub crash_log: PathBuf,
    /// The store's directory (its `--data-dir`).
    pub data_dir: PathBuf,
    /// What it was started with, to start it again.
    module: PathBuf,
    flags: Vec<String>,
    scratch: Scratch,
}

impl Server {
    /// Serves the example handler `name` with extra `serve` flags.
    pub fn start(name: &str, flags: &[&str]) -> Self {
        Self::start_module(&guest(name), flags)
    }

    pub fn start_module(module: &Path, flags: &[&str]) -> Self {
        let scratch = Scratch::new(&format!("serve-{}", unique()));
        let flags: Vec<String> = flags.iter().map(|flag| (*flag).to_owned()).collect();
        Self::start_in(scratch, module, flags)
    }

    /// Stops the server with `signal` (`TERM` to shut down gracefully,
    /// `KILL` for `kill -9`), waits for it to exit, and starts it again with
    /// the same module, flags, data directory, crash log and admin socket.
    pub fn restart(mut self, signal: &str) -> Self {
        self.signal(signal);
        self.wait_for_exit();
        let scratch = std::mem::replace(&mut self.scratch, Scratch(PathBuf::new()));
        let (module, flags) = (std::mem::take(&mut self.module), std::mem::take(&mut self.flags));
        drop(self);
        Self::start_in(scratch, &module, flags)
    }

    /// Runs `ej command WORDS…` against this server (the handler's
    /// operator command); returns what it printed, or fails the test.
    pub fn command(&self, words: &[&str]) -> String {
        self.admin_tool("command", &[], words)
    }

    /// Runs `ej store ARGS…` on this server's store (through its admin
    /// endpoint while it runs); fails the test if it fails.
    pub fn store(&self, args: &[&str]) -> String {
        let data_dir = self.data_dir.to_str().expect("a UTF-8 path");
        let store = match self.flags.iter().position(|flag| flag == "--store") {
            Some(at) => ["--store", self.flags[at + 1].as_str()],
            None => ["--data-dir", data_dir],
        };
        self.admin_tool("store", &store, args)
    }

    /// What `ej status` prints for this server; fails the test if it fails.
    pub fn status(&self) -> String {
        self.admin_tool("status", &[], &[])
    }

    /// Runs `ej TOOL FLAGS… --admin ADMIN ARGS…`; returns what it printed,
    /// or fails the test.
    fn admin_tool(&self, tool: &str, flags: &[&str], args: &[&str]) -> String {
        let out = ej()
            .arg(tool)
            .args(flags)
            .arg("--admin")
            .arg(&self.admin)
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("running ej {tool}: {error}"));
        assert!(
            out.status.success(),
            "ej {tool} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("ej prints UTF-8")
    }

    fn start_in(scratch: Scratch, module: &Path, flags: Vec<String>) -> Self {
        let crash_log = scratch.path("crashes.jsonl");
        let admin = scratch.path("admin.sock");
        let has = |flag: &str| flags.iter().any(|given| given == flag);
        let data_dir = match flags.iter().position(|flag| flag == "--data-dir") {
            Some(at) => PathBuf::from(&flags[at + 1]),
            None => scratch.path("data"),
        };
        let mut command = ej();
        command.arg("serve").arg("--module").arg(module);
        if !has("--log-format") {
            command.args(["--log-format", "json"]);
        }
        if !has("--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        if !has("--data-dir") {
            command.arg("--data-dir").arg(&data_dir);
        }
        if !has("--cache-dir") {
            command.arg("--cache-dir").arg(compile_cache());
        }
        let mut child = command
            .arg("--crash-log")
            .arg(&crash_log)
            .arg("--admin")
            .arg(&admin)
            .args(&flags)
            .env("RUST_LOG", "ej=debug,info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting ej serve");

        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Lines that are not JSON (a text log, a panic) are kept as
                // JSON strings, and shown.
                let value = serde_json::from_str(&line).unwrap_or_else(|_| {
                    eprintln!("ej: {line}");
                    serde_json::Value::String(line)
                });
                sink.lock().unwrap().push(value);
            }
        });

        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let plain = flags.iter().filter(|flag| *flag == "--listen").count().max(1);
        let listeners = plain + flags.iter().filter(|flag| *flag == "--listen-tls").count();
        let addrs: Vec<SocketAddr> = (0..listeners)
            .map(|_| {
                let mut line = String::new();
                stdout.read_line(&mut line).expect("reading ej's stdout");
                line.trim()
                    .strip_prefix("ej listening on ")
                    .unwrap_or_else(|| panic!("ej did not start: {line:?}"))
                    .parse()
                    .expect("a socket address")
            })
            .collect();
        Self {
            child,
            addr: addrs[0],
            addrs,
            admin,
            logs,
            crash_log,
            data_dir,
            module: module.to_owned(),
            flags,
            scratch,
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client whose stream is open.
    pub fn open(&self) -> Client {
        let mut client = self.connect();
        client.open();
        client
    }

    /// The log lines written so far that are not JSON (with
    /// `--log-format text`, every line).
    pub fn text_log(&self) -> Vec<String> {
        let logs = self.logs.lock().unwrap();
        logs.iter()
            .filter_map(|line| line.as_str().map(str::to_owned))
            .collect()
    }

    /// The crash reports written so far.
    pub fn crashes(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.crash_log).unwrap_or_default();
        // A line still being written has no newline yet: leave it for later.
        let complete = &text[..text.rfind('\n').map_or(0, |at| at + 1)];
        complete
            .lines()
            .map(|line| serde_json::from_str(line).expect("each crash report is one JSON line"))
            .collect()
    }

    /// Waits until `count` crash reports have been written.
    pub fn wait_for_crashes(&self, count: usize) -> Vec<serde_json::Value> {
        wait_until(|| {
            let crashes = self.crashes();
            (crashes.len() >= count).then_some(crashes)
        })
    }

    /// Waits for a log line whose message is `message` and whose fields
    /// satisfy `matches`; returns its fields.
    pub fn wait_for_log(&self, message: &str, matches: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        wait_until(|| self.find_log(message, &matches))
    }

    /// The fields of a log line already written whose message is `message`
    /// and whose fields satisfy `matches`.
    pub fn find_log(&self, message: &str, matches: impl Fn(&serde_json::Value) -> bool) -> Option<serde_json::Value> {
        self.logs_of(message).into_iter().find(matches)
    }

    /// The fields of every log line so far with `message`.
    pub fn logs_of(&self, message: &str) -> Vec<serde_json::Value> {
        let logs = self.logs.lock().unwrap();
        let fields = logs.iter().map(|line| &line["fields"]);
        fields.filter(|fields| fields["message"] == message).cloned().collect()
    }

    /// The id the server gave `client`'s connection (from its
    /// `connection opened` line, whose `peer` is the client's address).
    pub fn connection_id(&self, client: &Client) -> u64 {
        let peer = client.local_addr().to_string();
        let fields = self.wait_for_log("connection opened", |fields| fields["peer"] == peer.as_str());
        fields["id"].as_u64().expect("a numeric connection id")
    }

    /// The `connection closed` log line of connection `id`.
    pub fn wait_for_close(&self, id: u64) -> serde_json::Value {
        self.wait_for_log("connection closed", |fields| fields["id"] == id)
    }

    /// Runs `ej reload` against this server.
    pub fn reload(&self) -> std::process::Output {
        ej().arg("reload").arg("--admin").arg(&self.admin).output().unwrap()
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
    }

    /// Waits for the server to exit; returns whether it exited cleanly.
    pub fn wait_for_exit(&mut self) -> bool {
        let child = &mut self.child;
        wait_until(|| child.try_wait().expect("waiting for ej").map(|status| status.success()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking TCP client speaking raw XML, in the clear or over TLS.
pub struct Client {
    stream: tls::Stream,
    received: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        Self::plain(TcpStream::connect(addr).expect("connecting to ej"))
    }

    /// Connects and opens the stream; none if the server is not there or
    /// goes away meanwhile.
    pub fn try_open(addr: SocketAddr) -> Option<Self> {
        let mut client = Self::plain(TcpStream::connect(addr).ok()?);
        let header = STREAM_HEADER.as_bytes();
        (client.try_send(header, PATIENCE) == header.len()).then_some(())?;
        client.try_read_until("<stream:stream", PATIENCE)?;
        client.try_read_until(">", PATIENCE)?;
        Some(client)
    }

    /// Connects from the loopback address `from` (any of 127.0.0.0/8), so
    /// the server sees another peer address.
    pub fn connect_from(addr: SocketAddr, from: std::net::Ipv4Addr) -> Self {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::from((from, 0)).into())
            .expect("binding the client's address");
        socket.connect(&addr.into()).expect("connecting to ej");
        Self::plain(socket.into())
    }

    fn plain(stream: TcpStream) -> Self {
        stream.set_nodelay(true).unwrap();
        Self {
            stream: tls::Stream::Plain(stream),
            received: Vec::new(),
        }
    }

    /// Connects to a TLS listener and runs the handshake.
    pub fn connect_tls(addr: SocketAddr, tls: &tls::ClientTls) -> Self {
        let mut client = Self::connect(addr);
        client.stream = tls.handshake(client.stream.into_tcp());
        client
    }

    /// Runs a TLS handshake on the connection (after XMPP's `<proceed/>`,
    /// which must have been the last thing read).
    pub fn start_tls(mut self, tls: &tls::ClientTls) -> Self {
        assert!(
            self.received.is_empty(),
            "bytes after <proceed/>: {:?}",
            String::from_utf8_lossy(&self.received)
        );
        self.stream = tls.handshake(self.stream.into_tcp());
        self
    }

    /// The client side of the TLS session, if the connection is encrypted.
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match &self.stream {
            tls::Stream::Plain(_) => None,
            tls::Stream::Tls(stream) => Some(&stream.conn),
        }
    }

    pub fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).expect("writing to ej");
    }

    /// Writes as much of `bytes` as the server takes, giving up when one
    /// write blocks for `timeout` or fails; returns how many were written.
    pub fn try_send(&mut self, bytes: &[u8], timeout: Duration) -> usize {
        self.stream.tcp().set_write_timeout(Some(timeout)).unwrap();
        let mut written = 0;
        while written < bytes.len() {
            match self.stream.write(&bytes[written..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        self.stream.tcp().set_write_timeout(None).unwrap();
        written
    }

    /// Sends one byte per write.
    pub fn trickle(&mut self, text: &str) {
        for byte in text.as_bytes() {
            self.stream
                .write_all(std::slice::from_ref(byte))
                .expect("writing to ej");
            self.stream.flush().unwrap();
        }
    }

    /// Opens the stream and waits for the handler's stream header; returns
    /// everything up to the header's closing `>`.
    pub fn open(&mut self) -> String {
        self.send(STREAM_HEADER);
        let mut header = self.read_until("<stream:stream");
        header.push_str(&self.read_until(">"));
        header
    }

    /// Reads until `pattern` has arrived; returns everything up to and
    /// including it, keeping the rest for the next call.
    pub fn read_until(&mut self, pattern: &str) -> String {
        self.try_read_until(pattern, PATIENCE).unwrap_or_else(|| {
            panic!(
                "timed out waiting for {pattern:?}; received {:?}",
                String::from_utf8_lossy(&self.received)
            )
        })
    }

    /// Like `read_until`, but gives up after `timeout` (or at end of stream).
    pub fn try_read_until(&mut self, pattern: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = find(&self.received, pattern.as_bytes()) {
                let rest = self.received.split_off(at + pattern.len());
                let found = std::mem::replace(&mut self.received, rest);
                return Some(String::from_utf8(found).expect("ej sends UTF-8"));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .tcp()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut buf = [0; 64 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return None,
            }
        }
    }

    /// Reads exactly `text` next, or fails the test.
    pub fn expect(&mut self, text: &str) {
        assert_eq!(self.read_until(text), text);
    }

    /// Reads until the server closes the connection; returns what arrived.
    /// Fails the test if the server keeps the connection open.
    pub fn read_to_end(&mut self) -> String {
        self.stream.tcp().set_read_timeout(Some(PATIENCE)).unwrap();
        let mut rest = Vec::new();
        // Bytes read before an error are kept in `rest`; a reset is a close.
        if let Err(error) = self.stream.read_to_end(&mut rest) {
            assert!(
                !matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the server did not close the connection; received {:?}",
                String::from_utf8_lossy(&[&self.received[..], &rest[..]].concat())
            );
        }
        self.received.extend_from_slice(&rest);
        String::from_utf8_lossy(&std::mem::take(&mut self.received)).into_owned()
    }

    /// Closes the socket abruptly: an RST if anything is unread.
    pub fn reset(self) {
        let socket = socket2::SockRef::from(self.stream.tcp());
        socket.set_linger(Some(Duration::ZERO)).unwrap();
        drop(self);
    }

    /// Another handle on the same socket, for writing from another thread.
    pub fn clone_stream(&self) -> TcpStream {
        self.stream.tcp().try_clone().unwrap()
    }

    pub fn shutdown_write(&self) {
        self.stream.tcp().shutdown(Shutdown::Write).unwrap();
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream.tcp().local_addr().unwrap()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The module digest `ej check` prints for `module`.
pub fn check_digest(module: &Path) -> String {
    let out = ej().arg("check").arg(module).output().expect("running ej check");
    assert!(
        out.status.success(),
        "ej check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let digest = stdout
        .split_once("(digest ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .unwrap_or_else(|| panic!("no digest in {stdout:?}"))
        .0;
    digest.to_owned()
}

/// Replaces `path` the way deploy tools do: write a new file, rename it over.
pub fn replace(path: &Path, bytes: &[u8]) {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

/// The number in the environment variable `name` (a longer run), else
/// `default`; fails the test if it is not a number.
pub fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).map_or(default, |value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number"))
    })
}

/// Polls `check` until it returns something, or fails the test.
pub fn wait_until<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `ej serve` with the faulty handler and `flags`, which must make it
/// refuse to start; returns what it printed on stderr.
pub fn refused_start(flags: &[&str]) -> String {
    let scratch = Scratch::new(&format!("refused-{}", unique()));
    let out = ej()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(flags)
        .arg("--module")
        .arg(guest("faulty"))
        .arg("--data-dir")
        .arg(scratch.path("data"))
        .arg("--admin")
        .arg(scratch.path("admin.sock"))
        .output()
        .expect("running ej");
    assert!(!out.status.success(), "started with {flags:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
