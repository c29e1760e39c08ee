//! The command line: `ej serve`, `ej check`, `ej new`, `ej talk` and the rest.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::admin::AdminAddr;
use crate::limits::{ConnectionLimits, FaultPolicy, SandboxLimits};
use crate::scaffold::Lang;
use crate::session::Encryption;
use crate::store_ops::StoreOp;
use crate::tls::CertPaths;

/// Serve long-lived XML streams with protocol logic in a sandboxed
/// WebAssembly component: a fresh instance for every event.
#[derive(Parser, Debug)]
#[command(name = "ej", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Accept connections and run the handler module for each event.
    Serve(Box<Serve>),
    /// Check that a module fits the ej world; print what it imports and
    /// exports. What it compiles goes into the compile cache `serve` uses.
    Check {
        /// A component (.wasm) or one compiled by `ej compile` (.cwasm).
        module: PathBuf,
        /// The compile cache [default: ~/.cache/ej]
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Tell a running `ej serve` to reload every module whose file changed.
    Reload {
        /// The server's admin endpoint (its `--admin`).
        #[arg(long, value_name = "PATH|ADDR", default_value = DEFAULT_ADMIN)]
        admin: AdminAddr,
        /// Reload every node of its cluster (`--cluster`), each from its
        /// own module files; their answers follow, `node ID` first.
        #[arg(long)]
        all_nodes: bool,
    },
    /// Show which module build each module file of a running `ej serve` runs
    /// and, in a cluster, every node (`node ID seen …ms ago`, this one
    /// marked) and, with `--cluster`, whether NATS is connected.
    Status {
        /// The server's admin endpoint (its `--admin`).
        #[arg(long, value_name = "PATH|ADDR", default_value = DEFAULT_ADMIN)]
        admin: AdminAddr,
    },
    /// Read or write the durable store: directly, or through a running
    /// `ej serve` that has it open.
    Store {
        #[command(flatten)]
        store: StoreArgs,
        /// The admin endpoint of the server that may have it open.
        #[arg(long, value_name = "PATH|ADDR", default_value = DEFAULT_ADMIN)]
        admin: AdminAddr,
        #[command(subcommand)]
        op: StoreOp,
    },
    /// Hand an operator's command to the running server's handler (the one
    /// of its first listener) and print its answer, e.g. `ej command user
    /// add alice` for the XMPP handler. Neither is logged.
    Command {
        /// The server's admin endpoint (its `--admin`).
        #[arg(long, value_name = "PATH|ADDR", default_value = DEFAULT_ADMIN)]
        admin: AdminAddr,
        /// Read one more word from the first line of stdin (a password, kept
        /// out of the process list and the shell history).
        #[arg(long)]
        stdin: bool,
        /// The command, as the handler reads it.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Print the WIT this ej serves (the `ej:handler` package a handler is
    /// built against), or write it to DIR/handler.wit.
    Wit {
        /// Write `handler.wit` into this directory instead of printing it.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Make a ready handler project in a new directory: the counter of
    /// docs/handlers.md, with the WIT, pinned tools and a one-command build.
    New {
        /// The project's name (letters, digits, `-`, `_`); its module is NAME.wasm.
        name: String,
        /// The language to write the handler in.
        #[arg(long, value_enum)]
        lang: Lang,
        /// The directory to make [default: NAME]
        #[arg(long, value_name = "PATH")]
        dir: Option<PathBuf>,
    },
    /// Connect, send TEXT (or stdin), and print what comes back until the
    /// server has been quiet for a moment: try a handler by hand.
    Talk {
        /// The server's address.
        #[arg(default_value = "127.0.0.1:5222")]
        addr: String,
        /// What to send, each in turn: a stream header, stanzas.
        text: Vec<String>,
        /// Stop once the server has sent nothing for this long.
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
        quiet: Duration,
    },
    /// Make TLS certificates.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Compile a component ahead of time, so `ej serve` starts in milliseconds.
    Compile {
        /// The component to compile (.wasm).
        module: PathBuf,
        /// Where to write the compiled module (.cwasm).
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Write a new self-signed certificate and its key, for local use
    /// (peers must be told to trust it): `ej serve --tls-cert … --tls-key …`.
    New {
        /// A name it is for (a domain or an IP address); repeat for more.
        /// The first is its subject.
        #[arg(long, required = true, value_name = "NAME")]
        domain: Vec<String>,
        /// Where to write the certificate [default: NAME.crt]
        #[arg(long, value_name = "PATH")]
        cert: Option<PathBuf>,
        /// Where to write the key, readable by its owner only [default: NAME.key]
        #[arg(long, value_name = "PATH")]
        key: Option<PathBuf>,
        /// Replace files that exist.
        #[arg(long)]
        force: bool,
    },
}

/// Where `ej serve` takes admin commands unless told otherwise.
pub const DEFAULT_ADMIN: &str = "ej.sock";

/// Where the durable store lives.
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// The server's own files: the embedded store (unless `--store`), its
    /// local certificate.
    #[arg(long, value_name = "DIR", default_value = "ej-data")]
    pub data_dir: PathBuf,
    /// Memory the embedded store keeps of its file's pages (read, and
    /// written but not yet on disk); past it the least used are dropped
    /// and read again from the file when needed.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub store_cache: usize,
    /// Keep the store in PostgreSQL instead, shared by every node given the
    /// same URL, e.g. `postgres://ej@127.0.0.1/ej` (plain TCP: keep it on
    /// a trusted network).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Connections to PostgreSQL for events' reads, at most; an event that
    /// finds them all busy waits (up to `--store-timeout`).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub store_connections: usize,
    /// How long one step with PostgreSQL (connecting, a read, a batch's
    /// commit) may take before the event or commit waiting on it fails.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub store_timeout: Duration,
    /// With `--store`: how often this node tells the others it is alive.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub node_heartbeat: Duration,
    /// With `--store`: a node silent this long is taken for dead and its
    /// addresses freed; a node that cannot beat this long stops serving.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub node_timeout: Duration,
}

impl StoreArgs {
    /// Opens the store these flags name.
    pub async fn open(&self) -> anyhow::Result<crate::db::Db> {
        match &self.store {
            None => crate::db::Db::open(&self.data_dir, self.store_cache),
            Some(url) => {
                let limits = crate::db::PostgresLimits {
                    connections: self.store_connections.max(1),
                    timeout: self.store_timeout,
                };
                crate::db::Db::connect(url, limits).await
            }
        }
    }

    /// Joins the cluster of the nodes sharing the store, if it is in
    /// PostgreSQL; `max_unbinds` bounds the releases waiting to be made.
    pub async fn join(&self, max_unbinds: usize) -> anyhow::Result<Option<std::sync::Arc<crate::cluster::Cluster>>> {
        let Some(url) = &self.store else {
            return Ok(None);
        };
        let limits = crate::cluster::NodeLimits {
            heartbeat: self.node_heartbeat,
            timeout: self.node_timeout.max(self.node_heartbeat),
        };
        Ok(Some(crate::cluster::Cluster::join(url, limits, max_unbinds).await?))
    }
}

#[derive(Args, Debug)]
pub struct Serve {
    /// Address to listen on, optionally with its own module
    /// (`127.0.0.1:5222=chat.wasm`); repeat to listen on several.
    #[arg(long, value_name = "ADDR[=MODULE]", default_value = "127.0.0.1:5222")]
    pub listen: Vec<Listen>,
    /// Address to listen on with TLS from the first byte (XMPP's direct
    /// TLS, port 5223), optionally with its own module; repeat for several.
    #[arg(long, value_name = "ADDR[=MODULE]")]
    pub listen_tls: Vec<Listen>,
    /// The handler for listeners without a module of their own: a component
    /// (.wasm) or one compiled by `ej compile` (.cwasm).
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,
    /// Reload a module when its file changes (in place or by rename).
    #[arg(long)]
    pub watch: bool,
    /// Admin endpoint for `ej reload` and `ej status`: a Unix socket path,
    /// or a loopback `ADDR:PORT`.
    #[arg(long, value_name = "PATH|ADDR", default_value = DEFAULT_ADMIN)]
    pub admin: AdminAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// With `--store postgres://…`: route to the addresses held on the
    /// other nodes through this NATS server, e.g. `nats://127.0.0.1:4222`
    /// (plain TCP: keep it on a trusted network).
    #[arg(long, value_name = "URL", requires = "store")]
    pub cluster: Option<String>,
    /// With `--cluster`: how long a route to another node waits for its
    /// answer, beyond `--route-wait`, before it comes back busy.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub cluster_timeout: Duration,
    /// With `--cluster`: routes from other nodes this node holds at most
    /// while their receivers' mailboxes are full (past it, they are
    /// answered busy at once), and bounces on their way back.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub cluster_queue: usize,
    /// Keep compiled modules here, so restarts and reloads of a module
    /// compiled before skip compilation [default: ~/.cache/ej]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// What a handler fault does to its connection.
    #[arg(long, value_enum, default_value = "close")]
    pub on_fault: FaultPolicy,
    /// Connections served at once, across every listener; more are
    /// refused (a `<resource-constraint/>` stream error on a plain
    /// listener).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: u32,
    /// Connections served at once from one IP address; more are refused (a
    /// `<policy-violation/>` stream error on a plain listener).
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub max_connections_per_ip: u32,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Append crash reports (one JSON line per handler fault) to this file
    /// instead of stderr.
    #[arg(long, value_name = "PATH")]
    pub crash_log: Option<PathBuf>,
    /// Serve Prometheus metrics (connections, events and faults by kind,
    /// event latency, instances in use, store reruns, bytes out, swaps) on
    /// this loopback address, e.g. 127.0.0.1:9185. Off unless given.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// How log lines look.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Limits with a size (`64KiB`, `1MiB`, plain bytes) or a duration (`100ms`, `2s`).
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Largest stanza or stream header accepted; a larger one is a
    /// `<policy-violation/>` stream error.
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = parse_size)]
    pub max_stanza_bytes: usize,
    /// Deepest nesting of elements in a stanza (its root is at depth 1);
    /// deeper ends the stream with a `<policy-violation/>` stream error.
    #[arg(long, value_name = "N", default_value_t = crate::framer::DEFAULT_MAX_DEPTH)]
    pub max_depth: usize,
    /// Inbound bytes per second per connection; handlers may only lower it.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub read_rate: usize,
    /// Bytes queued for a peer that does not read before it is cut off.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_outbound_bytes: usize,
    /// How long a closing connection's last bytes may take to drain.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub linger: Duration,
    /// Handler instances alive at once; further events wait for a slot.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_instances: u32,
    /// Linear memory one instance may use.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_memory: usize,
    /// Time one event's guest may run (counted in 1 ms ticks while it runs;
    /// waiting for a CPU does not count).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub event_timeout: Duration,
    /// Size of one event's returned state plus its actions.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_outcome_bytes: usize,
    /// Actions one event may return (each send, route, bind, timer…).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_actions: usize,
    /// Guest output (stdout, stderr and the `output` import) kept per event
    /// for crash reports.
    #[arg(long, value_name = "SIZE", default_value = "16KiB", value_parser = parse_size)]
    pub max_output_bytes: usize,
    /// Keys and values one event may write to the store.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_store_write_bytes: usize,
    /// Bytes one event may read through its imports (store keys asked for,
    /// keys and values returned, addresses a registry lookup returns).
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub max_read_bytes: usize,
    /// Times an event is run again because what it read from the store was
    /// changed by another commit before its own; then it faults (`conflict`).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_retries: u32,
    /// Entries one store scan or registry lookup returns at most.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_listed: usize,
    /// Routed events that may wait for one connection; a route to a full
    /// mailbox waits for room (`--route-wait`).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub mailbox: usize,
    /// How long a route to a full mailbox waits for room, holding up its
    /// sender's next event (a fast sender slows to its receiver's pace);
    /// then the payload comes back `busy`. A waiting connection still
    /// takes what others route to it, so two connections routing to each
    /// other's full mailboxes both get through.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub route_wait: Duration,
    /// Addresses one connection may hold.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_addresses: usize,
    /// Timers one connection may have set.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_timers: usize,
    /// Events one event may cause its own connection in a chain (an
    /// undeliverable payload, a refused bind, and what those cause in
    /// turn); the rest are dropped with a warning.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_chain: usize,
    /// How long shutdown waits for connections to close before the
    /// process exits anyway.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// How long a peer may take to send its stream header, after connecting
    /// and after each restart of its stream; then it gets a
    /// `<connection-timeout/>` stream error.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// How long a peer may take to finish a stanza it has begun; then it
    /// gets a `<connection-timeout/>` stream error (no peer holds a
    /// connection by sending a byte now and then). A handler that throttles
    /// its peer far below this pace should raise it.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub stanza_timeout: Duration,
    /// The longest a session held for its peer (a handler's `hold`) waits
    /// for it to come back on a new connection; longer windows are cut to
    /// this.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub max_hold: Duration,
    /// Sessions that may wait for their peers at once; past this, a peer
    /// that goes away closes its connection as if no hold were set.
    #[arg(long, value_name = "N", default_value_t = crate::holds::DEFAULT_MAX_DETACHED)]
    pub max_held: usize,
}

/// The certificates presented on TLS listeners and after `start-tls`.
#[derive(Args, Debug)]
pub struct TlsArgs {
    /// A certificate chain to present (PEM, end-entity certificate first),
    /// paired with the `--tls-key` in the same place; repeat both for
    /// several domains: each peer gets the one valid for the name it asks
    /// for (SNI), or the first. Reloaded with the modules. Without one, a
    /// self-signed certificate for localhost is made under --data-dir.
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Vec<PathBuf>,
    /// The private key of the `--tls-cert` in the same place (PEM).
    #[arg(long, value_name = "PATH")]
    pub tls_key: Vec<PathBuf>,
    /// How long a TLS handshake may take; a peer that stalls is closed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub tls_handshake_timeout: Duration,
    /// TLS sessions remembered for resumption (the oldest are forgotten).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub tls_sessions: usize,
}

impl TlsArgs {
    /// The certificate and key pairs given, in order.
    pub fn pairs(&self) -> Result<Vec<CertPaths>, String> {
        if self.tls_cert.len() != self.tls_key.len() {
            return Err(format!(
                "{} --tls-cert but {} --tls-key: give one key for each certificate",
                self.tls_cert.len(),
                self.tls_key.len()
            ));
        }
        Ok(self
            .tls_cert
            .iter()
            .zip(&self.tls_key)
            .map(|(cert, key)| CertPaths {
                cert: cert.clone(),
                key: key.clone(),
            })
            .collect())
    }
}

/// One `--listen` value.
#[derive(Clone, Debug)]
pub struct Listen {
    pub addr: SocketAddr,
    pub module: Option<PathBuf>,
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, module) = match text.split_once('=') {
            Some((addr, module)) if !module.is_empty() => (addr, Some(PathBuf::from(module))),
            Some(_) => return Err(format!("`{text}`: no module after `=`")),
            None => (text, None),
        };
        let addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an address like 127.0.0.1:5222"))?;
        Ok(Self { addr, module })
    }
}

impl Serve {
    /// Each listener: its address, the module it serves (its own, or
    /// `--module`), and whether it is a TLS listener.
    pub fn listeners(&self) -> Result<Vec<(SocketAddr, PathBuf, Encryption)>, String> {
        let plain = self.listen.iter().map(|listen| (listen, Encryption::Plain));
        let direct = self.listen_tls.iter().map(|listen| (listen, Encryption::Direct));
        plain
            .chain(direct)
            .map(|(listen, encryption)| match (&listen.module, &self.module) {
                (Some(module), _) | (None, Some(module)) => Ok((listen.addr, module.clone(), encryption)),
                (None, None) => Err(format!(
                    "no module for {}: give --module or --listen ADDR=MODULE",
                    listen.addr
                )),
            })
            .collect()
    }

    /// `--cache-dir`, or the user's cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        cache_dir(self.cache_dir.clone())
    }
}

/// `dir`, or the user's cache directory: where compiled modules are kept.
pub fn cache_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("ej")
    })
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl LimitArgs {
    pub fn sandbox(&self) -> SandboxLimits {
        SandboxLimits {
            max_instances: self.max_instances.max(1),
            max_memory_bytes: self.max_memory,
            event_timeout: self.event_timeout,
            max_outcome_bytes: self.max_outcome_bytes,
            max_actions: self.max_actions,
            max_output_bytes: self.max_output_bytes,
            max_store_write_bytes: self.max_store_write_bytes,
            max_read_bytes: self.max_read_bytes,
            max_retries: self.max_retries,
            max_listed: self.max_listed,
        }
    }

    pub fn connection(&self, on_fault: FaultPolicy) -> ConnectionLimits {
        ConnectionLimits {
            max_stanza_bytes: self.max_stanza_bytes,
            max_depth: self.max_depth,
            read_rate: u32::try_from(self.read_rate).unwrap_or(u32::MAX),
            max_outbound_bytes: self.max_outbound_bytes,
            linger: self.linger,
            on_fault,
            mailbox: self.mailbox.max(1),
            route_wait: self.route_wait,
            max_addresses: self.max_addresses,
            max_timers: self.max_timers,
            max_chain: self.max_chain,
            shutdown_timeout: self.shutdown_timeout,
            header_timeout: self.header_timeout,
            stanza_timeout: self.stanza_timeout,
            max_hold: self.max_hold,
        }
    }
}

/// `4096`, `64KiB`, `1MiB`, `1GiB`, `10kB`, `1MB`.
fn parse_size(text: &str) -> Result<usize, String> {
    let digits = text.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text.trim()[digits.len()..];
    let scale: usize = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(format!("unknown unit `{unit}` (use B, KiB, MiB, GiB, kB, MB or GB)")),
    };
    let value: usize = digits.parse().map_err(|_| format!("`{text}` is not a size"))?;
    value.checked_mul(scale).ok_or_else(|| format!("`{text}` is too large"))
}

/// `250ms`, `2s`, `1m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let value: u64 = digits.parse().map_err(|_| format!("`{text}` is not a duration"))?;
    match &text[digits.len()..] {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => value
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is too long")),
        unit => Err(format!("unknown unit `{unit}` (use ms, s or m)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_like_the_help() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10kB"), Ok(10_000));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("KiB").is_err());
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("999999999999999999m").is_err(), "no silent overflow");
    }

    #[test]
    fn the_store_cache_defaults_to_what_embedders_get() {
        let Command::Serve(serve) = Cli::parse_from(["ej", "serve"]).command else {
            unreachable!()
        };
        assert_eq!(serve.store.store_cache, crate::db::CACHE);
    }

    #[test]
    fn listeners_take_their_own_module_or_the_default() {
        let serve = |args: &[&str]| match Cli::parse_from([&["ej", "serve"], args].concat()).command {
            Command::Serve(serve) => serve.listeners(),
            _ => unreachable!(),
        };
        let listeners = serve(&[
            "--listen",
            "127.0.0.1:1=a.wasm",
            "--listen",
            "127.0.0.1:2",
            "--module",
            "b.wasm",
        ]);
        assert_eq!(
            listeners.unwrap(),
            vec![
                (
                    "127.0.0.1:1".parse().unwrap(),
                    PathBuf::from("a.wasm"),
                    Encryption::Plain
                ),
                (
                    "127.0.0.1:2".parse().unwrap(),
                    PathBuf::from("b.wasm"),
                    Encryption::Plain
                ),
            ]
        );
        assert!(
            serve(&["--listen", "127.0.0.1:2"])
                .unwrap_err()
                .contains("no module for 127.0.0.1:2")
        );
        assert!("127.0.0.1:1=".parse::<Listen>().is_err());
        assert!("10.0.0.1:9".parse::<AdminAddr>().is_err(), "admin is loopback only");
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
