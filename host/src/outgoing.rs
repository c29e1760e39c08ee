//! Routes waiting for room. A route to a full mailbox does not fail at
//! once: it waits here, in the order the session made its routes, and
//! while any waits the session takes nothing new from its peer or its
//! timers — a fast sender slows to its receiver's pace, and TCP slows its
//! peer in turn. The session keeps handling its own mailbox meanwhile, so
//! every mailbox always drains and no two sessions routing to each other's
//! full mailboxes can wait for each other forever.
//!
//! A route that finds no room within `--route-wait`, or finds as many
//! routes already waiting as a mailbox holds, comes back `busy`; one whose
//! receiver closes meanwhile comes back `undeliverable`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc::OwnedPermit;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

use crate::bindings::Event;
use crate::metrics::{METRICS, Metrics};
use crate::registry::{Delivery, Mailbox};

/// A session's routes waiting for room, oldest first.
pub struct Outgoing {
    queue: VecDeque<Waiting>,
    max: usize,
    wait: Duration,
}

struct Waiting {
    mailbox: Mailbox,
    delivery: Delivery,
    until: Instant,
}

/// What waiting for the first route's receiver found.
pub struct Room(Result<OwnedPermit<Delivery>, Refusal>);

enum Refusal {
    Closed,
    TimedOut,
}

impl Outgoing {
    /// At most `max` routes waiting, each at most `wait`.
    pub fn new(max: usize, wait: Duration) -> Self {
        Self {
            queue: VecDeque::new(),
            max,
            wait,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Delivers to `mailbox` now if nothing waits before it and there is
    /// room; else queues it. Returns the event for a route that cannot be
    /// delivered or queued.
    pub fn send(&mut self, mailbox: &Mailbox, delivery: Delivery) -> Option<Event> {
        let delivery = if self.queue.is_empty() {
            match mailbox.try_send(delivery) {
                Ok(()) => return None,
                Err(TrySendError::Closed(delivery)) => return Some(Event::Undeliverable(delivery.into_envelope())),
                Err(TrySendError::Full(delivery)) => delivery,
            }
        } else {
            delivery
        };
        if self.queue.len() >= self.max {
            return Some(busy(delivery));
        }
        Metrics::count(&METRICS.route_waits);
        self.queue.push_back(Waiting {
            mailbox: mailbox.clone(),
            delivery,
            until: Instant::now() + self.wait,
        });
        None
    }

    /// Waits for room in the first waiting route's mailbox, for its
    /// receiver to close, or for its time to run out; forever if none
    /// waits.
    pub async fn room(&self) -> Room {
        let Some(first) = self.queue.front() else {
            return std::future::pending().await;
        };
        Room(
            match tokio::time::timeout_at(first.until, first.mailbox.clone().reserve_owned()).await {
                Ok(Ok(permit)) => Ok(permit),
                Ok(Err(_closed)) => Err(Refusal::Closed),
                Err(_elapsed) => Err(Refusal::TimedOut),
            },
        )
    }

    /// Settles the first route with what `room` found, then delivers those
    /// behind it while their mailboxes have room (those whose time ran out
    /// on the way come back too). Returns the events for routes that came
    /// back.
    pub fn advance(&mut self, Room(room): Room) -> Vec<Event> {
        let mut back = Vec::new();
        let Some(first) = self.queue.pop_front() else {
            return back;
        };
        match room {
            Ok(permit) => {
                permit.send(first.delivery);
            }
            Err(Refusal::Closed) => back.push(Event::Undeliverable(first.delivery.into_envelope())),
            Err(Refusal::TimedOut) => back.push(busy(first.delivery)),
        }
        let now = Instant::now();
        while let Some(next) = self.queue.pop_front() {
            match next.mailbox.try_send(next.delivery) {
                Ok(()) => {}
                Err(TrySendError::Closed(delivery)) => back.push(Event::Undeliverable(delivery.into_envelope())),
                Err(TrySendError::Full(delivery)) if next.until <= now => back.push(busy(delivery)),
                Err(TrySendError::Full(delivery)) => {
                    self.queue.push_front(Waiting { delivery, ..next });
                    break;
                }
            }
        }
        back
    }

    /// Takes on `other`'s waiting routes after its own (a session taking
    /// over another); returns the events for those beyond the limit.
    pub fn append(&mut self, other: Outgoing) -> Vec<Event> {
        let mut back = Vec::new();
        for waiting in other.queue {
            if self.queue.len() < self.max {
                self.queue.push_back(waiting);
            } else {
                back.push(busy(waiting.delivery));
            }
        }
        back
    }

    /// Delivers every waiting route, each waiting for room until its time
    /// runs out (a closing session); returns how many were not delivered.
    pub async fn flush(&mut self) -> usize {
        let mut lost = 0;
        while !self.queue.is_empty() {
            lost += self.advance(self.room().await).len();
        }
        lost
    }
}

/// The event for a route that found no room.
fn busy(delivery: Delivery) -> Event {
    Metrics::count(&METRICS.routes_busy);
    Event::Busy(delivery.into_envelope())
}
