//! The admin endpoint, for `ej reload` and `ej status`: one command line in,
//! result lines out, on a Unix socket or a loopback TCP port — never on an
//! address another machine can reach.
//!
//! Each client is served by a task of its own (at most `MAX_CLIENTS` at
//! once), with a time limit for its command and one for reading its reply,
//! so one client that stalls or sends garbage holds up nobody else. A Unix
//! socket is created readable and writable by its owner only.
//!
//! Commands: `reload` reloads every module whose file changed, and the TLS
//! certificates if theirs did; `status` lists what each module file is
//! serving; `store …` runs an `ej store` operation (see `store_ops`);
//! `command HEX` hands an operator's command to the handler of the first
//! listener (the `operator` event) and answers `say HEX` for each line it
//! sends back.
//! Replies are one line per module (`ok PATH swapped DIGEST`,
//! `ok PATH unchanged DIGEST`, `error PATH REASON`, or
//! `PATH DIGEST LOADED_AT_MS`) and for the certificates (`ok certificates
//! reloaded|unchanged`, `error certificates REASON`), or per store answer,
//! then `end`.

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};

use crate::db::Db;
use crate::service::{Reload, Service};
use crate::store_ops::{StoreOp, execute, hex, unhex};
use crate::tls::Tls;

/// How long an admin client may take to send its command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an admin client may take to read its reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Admin clients served at once; more wait to be accepted.
const MAX_CLIENTS: usize = 16;
/// Longest command line accepted: a hex-encoded store value of up to 512 KiB.
const MAX_COMMAND: u64 = 1024 * 1024 + 64;

/// Where the admin endpoint listens.
#[derive(Clone, Debug)]
pub enum AdminAddr {
    Unix(PathBuf),
    /// A loopback address only.
    Tcp(SocketAddr),
}

impl FromStr for AdminAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.parse::<SocketAddr>() {
            Ok(addr) if addr.ip().is_loopback() => Ok(Self::Tcp(addr)),
            Ok(addr) => Err(format!(
                "{addr} is not a loopback address: the admin endpoint is local only"
            )),
            Err(_) if text.is_empty() => Err("empty admin address".into()),
            Err(_) => Ok(Self::Unix(PathBuf::from(text))),
        }
    }
}

impl fmt::Display for AdminAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "{}", path.display()),
            Self::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

/// A bound admin endpoint.
pub enum AdminEndpoint {
    Tcp(TcpListener),
    Unix(UnixListener, OwnSocket),
}

/// The socket file a Unix endpoint created: its path, and its device and
/// inode, so that only that very file is ever removed.
pub struct OwnSocket {
    path: PathBuf,
    id: (u64, u64),
}

impl OwnSocket {
    /// Removes the socket file, if it is still the one this endpoint made.
    fn remove(&self) {
        if socket_id(&self.path) == Some(self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The device and inode of the Unix socket at `path`, if a socket is there.
fn socket_id(path: &Path) -> Option<(u64, u64)> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    metadata
        .file_type()
        .is_socket()
        .then(|| (metadata.dev(), metadata.ino()))
}

impl AdminEndpoint {
    /// Binds `addr`. A socket file left by a server that died is replaced;
    /// any other file at that path is left alone and refused.
    pub async fn bind(addr: &AdminAddr) -> Result<Self> {
        let context = || format!("admin endpoint {addr} (another ej serve there? pick another --admin)");
        Ok(match addr {
            AdminAddr::Tcp(tcp) => Self::Tcp(TcpListener::bind(tcp).await.with_context(context)?),
            AdminAddr::Unix(path) => {
                if std::fs::symlink_metadata(path).is_ok() {
                    anyhow::ensure!(
                        socket_id(path).is_some(),
                        "admin endpoint {addr}: a file that is not a socket is there; \
                         remove it or pick another --admin"
                    );
                    if UnixStream::connect(path).await.is_err() {
                        let _ = std::fs::remove_file(path);
                    }
                }
                let listener = UnixListener::bind(path).with_context(context)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {addr} private to its owner"))?;
                let id = socket_id(path).with_context(context)?;
                Self::Unix(listener, OwnSocket { path: path.clone(), id })
            }
        })
    }

    /// Serves admin commands until `shutdown` turns true, each client in a
    /// task of its own, at most `MAX_CLIENTS` at once.
    pub async fn run(self, server: Arc<Served>, mut shutdown: watch::Receiver<bool>) {
        let clients = Arc::new(Semaphore::new(MAX_CLIENTS));
        loop {
            let Ok(permit) = Arc::clone(&clients).acquire_owned().await else {
                break;
            };
            let server = Arc::clone(&server);
            tokio::select! {
                stream = self.accept() => if let Some(stream) = stream {
                    tokio::spawn(async move {
                        answer(stream, &server).await;
                        drop(permit);
                    });
                },
                _ = shutdown.changed() => break,
            }
        }
        if let Self::Unix(_, socket) = &self {
            socket.remove();
        }
    }

    async fn accept(&self) -> Option<Box<dyn Duplex>> {
        match self {
            Self::Tcp(listener) => Some(Box::new(listener.accept().await.ok()?.0)),
            Self::Unix(listener, _) => Some(Box::new(listener.accept().await.ok()?.0)),
        }
    }
}

/// What the admin commands act on.
pub struct Served {
    /// One per module file.
    pub services: Vec<Arc<Service>>,
    pub db: Arc<Db>,
    pub tls: Arc<Tls>,
    /// The node's cluster, if it is in one.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Its routes to the other nodes, if it has them.
    pub relay: Option<Arc<crate::cluster::relay::Relay>>,
}

/// An accepted admin client's stream, TCP or Unix.
trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// Reads one command and writes its reply, each within its time limit.
async fn answer(stream: impl AsyncRead + AsyncWrite + Unpin, server: &Served) {
    let (read, mut write) = tokio::io::split(stream);
    let mut command = Vec::new();
    let mut read = BufReader::new(read.take(MAX_COMMAND));
    let reply = match tokio::time::timeout(COMMAND_TIMEOUT, read.read_until(b'\n', &mut command)).await {
        Ok(Ok(_)) => match std::str::from_utf8(&command) {
            Ok(command) => run(command.trim(), server).await,
            Err(_) => vec!["error - the command is not UTF-8 text".to_string()],
        },
        _ => vec!["error - no command received".to_string()],
    };
    let mut text: String = reply.iter().map(|line| format!("{line}\n")).collect();
    text.push_str("end\n");
    let _ = tokio::time::timeout(REPLY_TIMEOUT, write.write_all(text.as_bytes())).await;
}

/// Reloads every module whose file changed, and the certificates; a line
/// each.
pub async fn reload(server: &Served) -> Vec<String> {
    let mut lines = Vec::with_capacity(server.services.len() + 1);
    for service in &server.services {
        let path = service.path().display();
        lines.push(match service.reload_and_log().await {
            Ok(Reload::Swapped(info)) => format!("ok {path} swapped {}", info.digest),
            Ok(Reload::Unchanged(info)) => format!("ok {path} unchanged {}", info.digest),
            Err(error) => format!("error {path} {}", one_line(&error)),
        });
    }
    lines.push(match server.tls.certificates.reload_and_log() {
        Ok(true) => "ok certificates reloaded".to_owned(),
        Ok(false) => "ok certificates unchanged".to_owned(),
        Err(error) => format!("error certificates {}", one_line(&error)),
    });
    lines
}

/// Asks every other node of the cluster to reload, one at a time; their
/// lines, each after `node ID` (an error line stays first: `error node ID
/// …`).
async fn reload_other_nodes(server: &Served) -> Vec<String> {
    let (Some(cluster), Some(relay)) = (&server.cluster, &server.relay) else {
        return vec![
            "error - --all-nodes needs a node of a cluster (--store postgres://…, --cluster nats://…)".to_owned(),
        ];
    };
    let nodes = match cluster.nodes().await {
        Ok(nodes) => nodes,
        Err(error) => return vec![format!("error - the cluster's nodes: {}", one_line(&error))],
    };
    let mut lines = Vec::new();
    for (node, _, this) in nodes {
        if this {
            continue;
        }
        let name = crate::cluster::relay::node_name(node);
        match relay.ask_reload(node).await {
            Ok(answer) => lines.extend(answer.iter().map(|line| match line.split_once(' ') {
                Some((outcome, rest)) => format!("{outcome} node {name} {rest}"),
                None => format!("{line} node {name}"),
            })),
            Err(error) => lines.push(format!("error node {name} {}", one_line(&error))),
        }
    }
    lines
}

/// Runs the `reload`s other nodes ask of this one, one at a time.
pub async fn answer_other_nodes(
    mut asked: tokio::sync::mpsc::Receiver<crate::cluster::relay::Asked>,
    server: Arc<Served>,
) {
    while let Some(asked) = asked.recv().await {
        let lines = reload(&server).await;
        if let Some(relay) = &server.relay {
            relay.answer_asked(asked, &lines).await;
        }
    }
}

async fn run(command: &str, server: &Served) -> Vec<String> {
    let services = &server.services;
    if let Some(hexed) = command.strip_prefix("command ") {
        let Some(text) = unhex(hexed).ok().and_then(|bytes| String::from_utf8(bytes).ok()) else {
            return vec!["error - the command is not hex-encoded UTF-8".to_owned()];
        };
        return match services[0].operator(text).await {
            Ok(lines) => lines
                .iter()
                .map(|line| format!("say {}", hex(line.as_bytes())))
                .collect(),
            Err(fault) => vec![format!(
                "error - the handler failed ({}): {}",
                fault.kind.name(),
                fault.reason.replace('\n', " ")
            )],
        };
    }
    if let Some(operation) = command.strip_prefix("store ") {
        let reply = match StoreOp::from_command(operation) {
            Ok(op) => execute(&server.db, &op).await,
            Err(error) => Err(error),
        };
        return reply.map_or_else(|error| vec![format!("error - {error:#}")], |reply| reply.to_lines());
    }
    let mut lines = Vec::with_capacity(services.len());
    match command {
        "reload" => lines = reload(server).await,
        "reload all-nodes" => {
            lines = reload(server).await;
            lines.extend(reload_other_nodes(server).await);
        }
        "status" => {
            for service in services {
                let module = service.module();
                let info = module.info();
                lines.push(format!(
                    "{} {} {}",
                    service.path().display(),
                    info.digest,
                    info.loaded_at_ms
                ));
            }
            if let Some(cluster) = &server.cluster {
                match cluster.nodes().await {
                    Ok(nodes) => lines.extend(nodes.into_iter().map(|(node, silent, this)| {
                        let this = if this { " this" } else { "" };
                        let node = crate::cluster::relay::node_name(node);
                        format!("node {node} seen {:.0}ms ago{this}", silent * 1000.0)
                    })),
                    Err(error) => lines.push(format!("error - the cluster's nodes: {}", one_line(&error))),
                }
            }
            if let Some(relay) = &server.relay {
                let state = if relay.connected() { "connected" } else { "disconnected" };
                lines.push(format!("nats {state}"));
            }
        }
        other => lines.push(format!("error - unknown command {other:?} (use reload or status)")),
    }
    lines
}

fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}").replace('\n', " ")
}

/// Sends `command` to a running server's admin endpoint and returns its
/// reply lines.
pub async fn request(addr: &AdminAddr, command: &str) -> Result<Vec<String>> {
    match addr {
        AdminAddr::Tcp(tcp) => exchange(TcpStream::connect(tcp).await, command).await,
        AdminAddr::Unix(path) => exchange(UnixStream::connect(path).await, command).await,
    }
    .with_context(|| format!("talking to the admin endpoint {addr} (is `ej serve --admin {addr}` running?)"))
}

async fn exchange(
    stream: std::io::Result<impl AsyncRead + AsyncWrite + Unpin>,
    command: &str,
) -> std::io::Result<Vec<String>> {
    let mut stream = BufReader::new(stream?);
    stream.get_mut().write_all(format!("{command}\n").as_bytes()).await?;
    let mut lines = Vec::new();
    let mut reader = stream.lines();
    while let Some(line) = reader.next_line().await? {
        if line == "end" {
            return Ok(lines);
        }
        lines.push(line);
    }
    Err(std::io::ErrorKind::UnexpectedEof.into())
}
