//! A session's routes to addresses held on other nodes, on their way (see
//! `cluster::relay`). They leave in the order the session made them and
//! are settled in that order: delivered, or back as an event for the
//! session. At most `--mailbox` are on their way at once: while that many
//! are, the session takes nothing new from its peer or its timers, as
//! while a local route waits for room (see `outgoing`); past it, a route
//! comes back `busy` at once.
//!
//! Each route is a task of its own. A route looks its address up in the
//! store, holding one of the store's pooled connections until the answer
//! is read: as a future only its session's event loop polled, it could
//! keep that connection while the session ran an event that waited for
//! one, until the pool's timeout failed the event.

use std::sync::Arc;

use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::bindings::{Envelope, Event};
use crate::cluster::relay::Relay;
use crate::metrics::{METRICS, Metrics};

/// A session's routes to other nodes, oldest first.
pub struct Remote {
    /// Each route's task, settled in the order they were made.
    routes: FuturesOrdered<JoinHandle<Option<Event>>>,
    /// How many are on their way.
    len: usize,
    /// Fires once the newest route is published: the next waits for it.
    newest: Option<oneshot::Receiver<()>>,
    max: usize,
}

impl Remote {
    /// At most `max` routes on their way.
    pub fn new(max: usize) -> Self {
        Self {
            routes: FuturesOrdered::new(),
            len: 0,
            newest: None,
            max,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether as many routes are on their way as may be.
    pub fn is_full(&self) -> bool {
        self.len >= self.max
    }

    /// Sends `envelope` through `relay`, after the routes before it;
    /// returns the event for a route that cannot be sent now.
    pub fn send(&mut self, relay: &Arc<Relay>, envelope: Envelope) -> Option<Event> {
        if self.is_full() {
            Metrics::count(&METRICS.routes_busy);
            return Some(Event::Busy(envelope));
        }
        let (published, next) = oneshot::channel();
        let before = self.newest.replace(next);
        self.routes
            .push_back(tokio::spawn(Arc::clone(relay).route(envelope, before, published)));
        self.len += 1;
        None
    }

    /// Waits for the oldest route to settle: `Some(event)` if it came back;
    /// forever if none is on its way.
    pub async fn settled(&mut self) -> Option<Event> {
        match self.routes.next().await {
            Some(back) => {
                self.len -= 1;
                came_back(back)
            }
            None => std::future::pending().await,
        }
    }

    /// Waits for every route to settle (a session closing, or taking over
    /// another); returns the events for those that came back.
    pub async fn settle_all(&mut self) -> Vec<Event> {
        let mut back = Vec::new();
        while let Some(settled) = self.routes.next().await {
            back.extend(came_back(settled));
        }
        self.len = 0;
        back
    }
}

/// What a route's task ended with. A task that panicked has nothing to
/// give back (its panic is logged where it happened).
fn came_back(ended: Result<Option<Event>, tokio::task::JoinError>) -> Option<Event> {
    ended.unwrap_or(None)
}
