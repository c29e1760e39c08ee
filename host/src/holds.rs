//! Sessions kept for peers that may come back (the `hold` action), across
//! every listener of a server: the tokens that name them, how a new
//! connection takes one over, and how many live on without a socket.
//!
//! A connection that sets a hold registers its token here with the sending
//! end of a channel it listens on between events. A connection that asks
//! to `take-over` that token sends it a request; the held session answers
//! with what makes it a session (its id, mailbox, addresses, timers, hold
//! and state) and ends, and the connection that asked carries on as that
//! session. Nothing moves in the registry: the addresses stay bound to the
//! same mailbox, whose receiving end changes tasks, so payloads on their way
//! arrive in order, once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::metrics::{METRICS, Metrics};
use crate::outgoing::Outgoing;
use crate::registry::{Delivery, Holder};
use crate::remote::Remote;
use crate::timers::Timers;

/// Sessions that may be without a socket at once, unless `--max-held` says.
pub const DEFAULT_MAX_DETACHED: usize = 4096;

/// The longest token a hold may have, in bytes.
pub const MAX_TOKEN_BYTES: usize = 256;

/// How long a take-over waits for the held session to answer. A session
/// answers between two of its events, so this is reached only when it is
/// stuck behind a long run of events or itself waiting to take over the
/// asking connection; the take-over then finds nothing.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// A request for a held session, answered with the session.
pub type Request = oneshot::Sender<Held>;

/// A session on its way from one connection to another.
pub struct Held {
    pub id: u64,
    pub holder: Holder,
    pub deliveries: mpsc::Receiver<Delivery>,
    pub addresses: Vec<String>,
    pub timers: Timers,
    pub hold: Option<Hold>,
    pub outgoing: Outgoing,
    pub remote: Remote,
    pub state: Vec<u8>,
}

/// A connection's hold: its token, its window, and where take-over
/// requests for it arrive.
pub struct Hold {
    pub token: String,
    pub window: Duration,
    requests: mpsc::Receiver<Request>,
}

impl Hold {
    /// The next take-over request.
    pub async fn request(&mut self) -> Option<Request> {
        self.requests.recv().await
    }
}

/// Who holds a token, and how to ask it for its session.
struct Entry {
    id: u64,
    requests: mpsc::Sender<Request>,
}

/// Every hold of a server.
pub struct Holds {
    tokens: Mutex<HashMap<String, Entry>>,
    detached: Arc<AtomicUsize>,
    max_detached: usize,
}

/// One of the sessions living on without a socket; dropping it frees its
/// place.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        Metrics::uncount(&METRICS.detached);
    }
}

impl Default for Holds {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_DETACHED)
    }
}

impl Holds {
    /// Holds of which at most `max_detached` may be without a socket at once.
    pub fn new(max_detached: usize) -> Self {
        Self {
            tokens: Mutex::default(),
            detached: Arc::default(),
            max_detached,
        }
    }

    /// Whether a connection other than `id` holds `token`.
    pub fn held_by_other(&self, token: &str, id: u64) -> bool {
        self.lock().get(token).is_some_and(|entry| entry.id != id)
    }

    /// Registers `token` for connection `id`; `None` if another holds it.
    pub fn register(&self, token: String, id: u64, window: Duration) -> Option<Hold> {
        let mut tokens = self.lock();
        if tokens.get(&token).is_some_and(|entry| entry.id != id) {
            return None;
        }
        // One request at a time: a second take-over racing the first finds
        // the channel full, and nothing.
        let (requests_tx, requests) = mpsc::channel(1);
        tokens.insert(
            token.clone(),
            Entry {
                id,
                requests: requests_tx,
            },
        );
        Some(Hold {
            token,
            window,
            requests,
        })
    }

    /// Lets go of connection `id`'s hold.
    pub fn release(&self, hold: &Hold, id: u64) {
        let mut tokens = self.lock();
        if tokens.get(&hold.token).is_some_and(|entry| entry.id == id) {
            tokens.remove(&hold.token);
        }
    }

    /// Asks the session held under `token` for itself, on behalf of
    /// connection `id`; `None` if there is none (or it is `id`'s own), or it
    /// did not answer within `ANSWER_WAIT`.
    pub async fn claim(&self, token: &str, id: u64) -> Option<Held> {
        let requests = {
            let tokens = self.lock();
            let entry = tokens.get(token).filter(|entry| entry.id != id)?;
            entry.requests.clone()
        };
        let (answer, answered) = oneshot::channel();
        requests.try_send(answer).ok()?;
        tokio::time::timeout(ANSWER_WAIT, answered).await.ok()?.ok()
    }

    /// A place for one more session without a socket, if there is room.
    pub fn detach(&self) -> Option<Slot> {
        self.detached
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |detached| {
                (detached < self.max_detached).then_some(detached + 1)
            })
            .ok()?;
        Metrics::count(&METRICS.detached);
        Some(Slot(Arc::clone(&self.detached)))
    }

    /// Sessions that may be without a socket at once (`--max-held`).
    pub fn max_detached(&self) -> usize {
        self.max_detached
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
