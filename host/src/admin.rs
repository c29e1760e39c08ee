//! The admin endpoint, for `ej reload` and `ej status`: one command line in,
//! result lines out, on a Unix socket or a loopback TCP port — never on an
//! address another machine can reach.
//!
//! Commands: `reload` reloads every module whose file changed; `status`
//! lists what each module file is serving; `store …` runs an `ej store`
//! operation (see `store_ops`). Replies are one line per module
//! (`ok PATH swapped DIGEST`, `ok PATH unchanged DIGEST`, `error PATH REASON`,
//! or `PATH DIGEST LOADED_AT_MS`) or per store answer, then `end`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;

use crate::db::Db;
use crate::service::{Reload, Service};
use crate::store_ops::{StoreOp, execute};

/// How long an admin client may take to send its command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
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
    Unix(UnixListener, PathBuf),
}

impl AdminEndpoint {
    /// Binds `addr`; a socket file left by a server that died is replaced.
    pub async fn bind(addr: &AdminAddr) -> Result<Self> {
        let context = || format!("admin endpoint {addr} (another ej serve there? pick another --admin)");
        Ok(match addr {
            AdminAddr::Tcp(tcp) => Self::Tcp(TcpListener::bind(tcp).await.with_context(context)?),
            AdminAddr::Unix(path) => {
                if UnixStream::connect(path).await.is_err() {
                    let _ = std::fs::remove_file(path);
                }
                Self::Unix(UnixListener::bind(path).with_context(context)?, path.clone())
            }
        })
    }

    /// Serves admin commands until `shutdown` turns true. Clients are served
    /// one at a time: reloads are serialised anyway, and the endpoint is local.
    pub async fn run(self, services: Vec<Arc<Service>>, db: Arc<Db>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = self.answer_next(&services, &db) => {}
                _ = shutdown.changed() => break,
            }
        }
        if let Self::Unix(_, path) = &self {
            let _ = std::fs::remove_file(path);
        }
    }

    async fn answer_next(&self, services: &[Arc<Service>], db: &Db) {
        match self {
            Self::Tcp(listener) => {
                if let Ok((stream, _)) = listener.accept().await {
                    answer(stream, services, db).await;
                }
            }
            Self::Unix(listener, _) => {
                if let Ok((stream, _)) = listener.accept().await {
                    answer(stream, services, db).await;
                }
            }
        }
    }
}

/// Reads one command and writes its reply.
async fn answer(stream: impl AsyncRead + AsyncWrite + Unpin, services: &[Arc<Service>], db: &Db) {
    let (read, mut write) = tokio::io::split(stream);
    let mut command = String::new();
    let mut read = BufReader::new(read.take(MAX_COMMAND));
    let reply = match tokio::time::timeout(COMMAND_TIMEOUT, read.read_line(&mut command)).await {
        Ok(Ok(_)) => run(command.trim(), services, db).await,
        _ => vec!["error - no command received".to_string()],
    };
    let mut text = reply.join("\n");
    text.push_str("\nend\n");
    let _ = write.write_all(text.as_bytes()).await;
}

async fn run(command: &str, services: &[Arc<Service>], db: &Db) -> Vec<String> {
    if let Some(operation) = command.strip_prefix("store ") {
        let reply = match StoreOp::from_command(operation) {
            Ok(op) => execute(db, &op).await,
            Err(error) => Err(error),
        };
        return reply.map_or_else(|error| vec![format!("error - {error:#}")], |reply| reply.to_lines());
    }
    let mut lines = Vec::with_capacity(services.len());
    match command {
        "reload" => {
            for service in services {
                let path = service.path().display();
                lines.push(match service.reload_and_log().await {
                    Ok(Reload::Swapped(info)) => format!("ok {path} swapped {}", info.digest),
                    Ok(Reload::Unchanged(info)) => format!("ok {path} unchanged {}", info.digest),
                    Err(error) => format!("error {path} {}", format!("{error:#}").replace('\n', " ")),
                });
            }
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
        }
        other => lines.push(format!("error - unknown command {other:?} (use reload or status)")),
    }
    lines
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
