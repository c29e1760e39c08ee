//! Server CPU per echoed stanza, measured as a user would: the `ej serve`
//! binary (release) serving an echo handler, 100 connections each keeping
//! 8 stanzas of 256 bytes in flight, and the server process's CPU time read
//! from `/proc` before and after. Side by side in one run, interleaved
//! round by round: the Rust echo built without WASI (what the examples
//! build), the same Rust echo built for `wasm32-wasip2`, and the C echo.
//!
//! The floor of the machine, measured the same way in the same rounds: a
//! bare tokio TCP echo of the same bytes (this benchmark's executable run
//! again with `--bare-echo`: a two-worker runtime like ej's, one task per
//! connection reading and writing back, no framing, no sandbox).
//!
//! Prints, per build, the median over the rounds of the server's CPU per
//! stanza (µs) and of stanzas/s; the client runs in this process, on one
//! thread, sharing the machine's cores with the server.
//!
//! Run with `cargo bench -p ej --bench echo_cpu` after `cargo xtask guests`
//! (`-- --rounds N --seconds S` to change the defaults, 5 rounds of 5 s).
//! Without `--bench` (as `cargo test --benches` runs it) it makes one short
//! round, to check that it works.

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use common::window::{Client, STANZAS_PER_CONNECTION};

/// The echo builds, as `(name in the table, module in target/guests/)`.
const BUILDS: &[(&str, &str)] = &[("rust", "echo"), ("rust-wasi", "echo-wasi"), ("c", "echo-c")];
/// The bare tokio echo's name in the table.
const BARE: &str = "bare tokio";
/// Client connections.
const CONNECTIONS: usize = 100;
/// Size of each stanza.
const STANZA_BYTES: usize = 256;

/// An echo server process, stopped when dropped: `ej serve` with one echo
/// build, or the bare echo.
struct Served {
    child: Child,
    addr: SocketAddr,
    /// Its files, removed when dropped (`ej serve`'s; the bare echo has none).
    dir: Option<PathBuf>,
}

impl Served {
    fn start(server: &Server) -> Self {
        match server {
            Server::Ej(module) => Self::ej(module),
            Server::Bare => {
                let mut command = Command::new(std::env::current_exe().expect("this benchmark's path"));
                // Its stdin stays open while this process lives: it ends
                // when that closes, even if this process is killed.
                command.arg("--bare-echo").stdin(Stdio::piped());
                let (child, addr) = spawn_listening(command);
                Self { child, addr, dir: None }
            }
        }
    }

    fn ej(module: &Path) -> Self {
        let name = module.file_stem().and_then(|stem| stem.to_str()).unwrap_or("echo");
        let dir = common::target_dir()
            .join("tmp")
            .join(format!("echo-cpu-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the server's directory");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ej"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--module"])
            .arg(module)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--admin")
            .arg(dir.join("ej.sock"))
            .arg("--cache-dir")
            .arg(common::target_dir().join("tmp/ej-bench-compile-cache"));
        let (child, addr) = spawn_listening(command);
        Self {
            child,
            addr,
            dir: Some(dir),
        }
    }

    fn cpu_seconds(&self) -> f64 {
        ej_load::proc::sample(self.child.id())
            .expect("reading the server's CPU time")
            .cpu_seconds
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What a round measures.
enum Server {
    /// `ej serve` with this echo module.
    Ej(PathBuf),
    /// The bare tokio echo.
    Bare,
}

/// Starts `command`, a server that prints `ej listening on ADDR` first.
fn spawn_listening(mut command: Command) -> (Child, SocketAddr) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the echo server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("reading the server's stdout");
    let addr = line
        .trim()
        .strip_prefix("ej listening on ")
        .unwrap_or_else(|| panic!("the echo server did not start: {line:?}"))
        .parse()
        .expect("a socket address");
    (child, addr)
}

/// The bare echo: every byte a connection sends comes back as it is, on a
/// runtime of two workers (as `ej serve` has on this machine). Prints its
/// address as `ej serve` does, then serves until killed or its stdin
/// closes (the benchmark that started it has ended).
fn bare_echo() -> ! {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding");
        println!("ej listening on {}", listener.local_addr().expect("its address"));
        loop {
            let (mut stream, _) = listener.accept().await.expect("accepting");
            tokio::spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}

/// One round of one build: `(µs of server CPU per stanza, stanzas/s)`.
fn round(runtime: &tokio::runtime::Runtime, server: &Server, seconds: f64) -> (f64, f64) {
    let served = Served::start(server);
    runtime.block_on(async {
        let stanza = common::message(STANZA_BYTES, "");
        let mut clients = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let stream = common::open_stream(served.addr).await;
            clients.push(Client::new(stream, &stanza, b"</message>"));
        }
        // A first batch unmeasured: the module compiled, the pool warm.
        clients = batch(clients).await;
        let cpu_before = served.cpu_seconds();
        let start = Instant::now();
        let mut stanzas = 0;
        while start.elapsed() < Duration::from_secs_f64(seconds) {
            clients = batch(clients).await;
            stanzas += CONNECTIONS * STANZAS_PER_CONNECTION;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = served.cpu_seconds() - cpu_before;
        (cpu * 1e6 / stanzas as f64, stanzas as f64 / elapsed)
    })
}

/// Every client's part of one batch, concurrently.
async fn batch(clients: Vec<Client>) -> Vec<Client> {
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(client.exchange()))
        .collect();
    let mut done = Vec::with_capacity(tasks.len());
    for task in tasks {
        done.push(task.await.expect("a client task"));
    }
    done
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The value after `flag` on the command line, if given.
fn option(flag: &str) -> Option<f64> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|arg| arg == flag)?;
    Some(args.get(at + 1)?.parse().expect("a number after the flag"))
}

fn main() {
    if std::env::args().any(|arg| arg == "--bare-echo") {
        bare_echo();
    }
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (rounds, seconds) = if measuring {
        (
            option("--rounds").map_or(5, |n| n as usize),
            option("--seconds").unwrap_or(5.0),
        )
    } else {
        (1, 0.2)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime");
    let builds: Vec<_> = BUILDS
        .iter()
        .filter_map(|&(name, module)| Some((name, Server::Ej(common::built_module_path(module)?))))
        .chain([(BARE, Server::Bare)])
        .collect();
    let mut results = vec![(Vec::new(), Vec::new()); builds.len()];
    for round_number in 1..=rounds {
        for ((name, server), (cpu, rate)) in builds.iter().zip(&mut results) {
            let (cpu_per_stanza, per_second) = round(&runtime, server, seconds);
            eprintln!(
                "round {round_number} {name:<10} {cpu_per_stanza:>6.1} µs CPU/stanza {per_second:>9.0} stanzas/s"
            );
            cpu.push(cpu_per_stanza);
            rate.push(per_second);
        }
    }
    // Each build's CPU per stanza over the bare echo's, round by round
    // (the rounds of one build share the machine's state with the bare
    // echo's rounds more closely than with its own other rounds).
    let bare = results.last().map(|(cpu, _)| cpu.clone()).unwrap_or_default();
    println!(
        "echo build   server CPU/stanza (median)   stanzas/s (median)   × bare echo (median)   rounds: {rounds} × {seconds} s"
    );
    for ((name, _), (cpu, rate)) in builds.iter().zip(results) {
        let over_bare = cpu.iter().zip(&bare).map(|(cpu, bare)| cpu / bare).collect();
        println!(
            "{name:<12} {:>14.1} µs {:>24.0} {:>20.1}",
            median(cpu),
            median(rate),
            median(over_bare)
        );
    }
}
