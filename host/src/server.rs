//! The listener: accepts connections and starts a session for each. The
//! accept loop never waits on a handler, and stops on shutdown, after which
//! the server waits for its sessions to close their streams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::service::Service;
use crate::session::{self, Encryption};
use crate::warning::Warning;

/// Connection ids, unique across the listeners of one process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One listening socket and the sessions it started.
pub struct Server {
    listener: TcpListener,
    service: Arc<Service>,
    encryption: Encryption,
    sessions: Arc<Semaphore>,
    max_connections: u32,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port; see `local_addr`).
    pub async fn bind(
        addr: SocketAddr,
        service: Arc<Service>,
        encryption: Encryption,
        max_connections: u32,
    ) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        Ok(Self {
            listener,
            service,
            encryption,
            sessions: Arc::new(Semaphore::new(max_connections as usize)),
            max_connections,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Accepts connections until `shutdown` turns true, then tells every
    /// session to close and waits for them, at most `--shutdown-timeout`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: keep serving
                        // the connections we have and try again shortly.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            let Ok(permit) = Arc::clone(&self.sessions).try_acquire_owned() else {
                static REFUSED: Warning = Warning::new();
                if let Some(suppressed) = REFUSED.due() {
                    tracing::warn!(%peer, limit = self.max_connections, suppressed, "connection refused: too many connections");
                }
                continue;
            };
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let service = Arc::clone(&self.service);
            let shutdown = shutdown.clone();
            let encryption = self.encryption;
            tokio::spawn(async move {
                session::run(stream, id, service, encryption, shutdown).await;
                drop(permit);
            });
        }
        drop(self.listener);
        // Every session holds a permit until it has closed.
        let timeout = self.service.limits.shutdown_timeout;
        if tokio::time::timeout(timeout, self.sessions.acquire_many(self.max_connections))
            .await
            .is_err()
        {
            let open = self.max_connections as usize - self.sessions.available_permits();
            tracing::warn!(open, ?timeout, "shutdown did not wait for every connection to close");
        }
        Ok(())
    }
}
