//! The listener: accepts connections and starts a session for each. The
//! accept loop never waits on a handler, and stops on shutdown, after which
//! the server waits for its sessions to close their streams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::admission::{Admission, Refusal};
use crate::metrics::{METRICS, Metrics};
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
    /// The places of every listener's connections.
    admission: Arc<Admission>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port; see `local_addr`); its
    /// connections take their places from `admission`, shared with the
    /// server's other listeners.
    pub async fn bind(
        addr: SocketAddr,
        service: Arc<Service>,
        encryption: Encryption,
        admission: Arc<Admission>,
    ) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        Ok(Self {
            listener,
            service,
            encryption,
            admission,
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
            let place = match self.admission.admit(peer.ip()) {
                Ok(place) => {
                    Metrics::count(&METRICS.accepted);
                    place
                }
                Err(refusal) => {
                    self.refuse(stream, peer, refusal);
                    continue;
                }
            };
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let service = Arc::clone(&self.service);
            let shutdown = shutdown.clone();
            let encryption = self.encryption;
            tokio::spawn(async move {
                session::run(stream, id, service, encryption, shutdown).await;
                Metrics::count(&METRICS.closed);
                drop(place);
            });
        }
        drop(self.listener);
        // Every session holds its place until it has closed.
        let timeout = self.service.limits.shutdown_timeout;
        if let Err(open) = self.admission.drained(timeout).await {
            tracing::warn!(open, ?timeout, "shutdown did not wait for every connection to close");
        }
        Ok(())
    }

    /// Tells a refused peer why, if it can read it (a plain listener: a
    /// stream error, written only if the socket takes it at once), and
    /// closes its socket; logs it at most once a second.
    fn refuse(&self, stream: TcpStream, peer: SocketAddr, refusal: Refusal) {
        Metrics::count(match refusal {
            Refusal::Full => &METRICS.refused,
            Refusal::PeerFull => &METRICS.refused_per_ip,
        });
        let (condition, text) = refusal.stream_error();
        if self.encryption == Encryption::Plain {
            let _ = stream.try_write(&session::stream_error(condition, text, true));
        }
        static REFUSED: Warning = Warning::new();
        if let Some(suppressed) = REFUSED.due() {
            let (limit, message) = match refusal {
                Refusal::Full => (self.admission.max(), "connection refused: too many connections"),
                Refusal::PeerFull => (
                    self.admission.max_per_ip(),
                    "connection refused: too many connections from one address",
                ),
            };
            tracing::warn!(%peer, limit, suppressed, "{message}");
        }
    }
}
