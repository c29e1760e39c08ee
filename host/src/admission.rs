//! Who may connect: at most `--max-connections` at once across every
//! listener, and at most `--max-connections-per-ip` from one address, so
//! one peer cannot take every place. A refused peer is told why in a stream
//! error (on a plain listener) and its socket closed at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The places of a server's connections.
pub struct Admission {
    places: Arc<Semaphore>,
    max: u32,
    /// Connections open per peer address; an address leaves the map with
    /// its last connection, so it holds at most `max` entries.
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    max_per_ip: u32,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The server holds `--max-connections`.
    Full,
    /// The peer's address holds `--max-connections-per-ip`.
    PeerFull,
}

impl Refusal {
    /// The RFC 6120 stream error condition and text the peer is sent.
    pub fn stream_error(self) -> (&'static str, &'static str) {
        match self {
            Self::Full => ("resource-constraint", "the server holds as many connections as it may"),
            Self::PeerFull => ("policy-violation", "too many connections from your address"),
        }
    }
}

/// A connection's place, given back when it is dropped.
pub struct Place {
    admission: Arc<Admission>,
    ip: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut per_ip = self.admission.lock();
        if let Some(open) = per_ip.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub fn new(max: u32, max_per_ip: u32) -> Arc<Self> {
        Arc::new(Self {
            places: Arc::new(Semaphore::new(max as usize)),
            max,
            per_ip: Mutex::default(),
            max_per_ip,
        })
    }

    /// A place for a connection from `ip`, if there is one.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Place, Refusal> {
        let mut per_ip = self.lock();
        let open = per_ip.entry(ip).or_insert(0);
        if *open >= self.max_per_ip {
            if *open == 0 {
                per_ip.remove(&ip);
            }
            return Err(Refusal::PeerFull);
        }
        let Ok(permit) = Arc::clone(&self.places).try_acquire_owned() else {
            if *open == 0 {
                per_ip.remove(&ip);
            }
            return Err(Refusal::Full);
        };
        *open += 1;
        Ok(Place {
            admission: Arc::clone(self),
            ip,
            _permit: permit,
        })
    }

    /// The most connections held at once.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// The most connections from one address.
    pub fn max_per_ip(&self) -> u32 {
        self.max_per_ip
    }

    /// Waits until every connection has closed, at most `timeout`; the
    /// number still open if some did not.
    pub async fn drained(&self, timeout: Duration) -> Result<(), usize> {
        match tokio::time::timeout(timeout, self.places.acquire_many(self.max)).await {
            Ok(_) => Ok(()),
            Err(_) => Err(self.max as usize - self.places.available_permits()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.per_ip.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
