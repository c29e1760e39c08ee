//! Routes between nodes, over core NATS (`ej serve --cluster nats://…`).
//!
//! Each node subscribes to the subjects under `ej.NODE.`, NODE being its
//! name in `ej_nodes` (random at every start, so a restarted node never
//! receives what was meant for its former self):
//!
//! - `ej.NODE.route`: a payload for an address this node holds, with a
//!   reply subject for the answer (`wire::Answer`). The node puts it in
//!   the holder's mailbox, waiting up to `--route-wait` for room, in the
//!   order it arrived per receiving address (a few lanes, each in order,
//!   split by address), and answers delivered, undeliverable or busy.
//! - `ej.NODE.answer.SEQ`: the answer to this node's route number SEQ; or
//!   NATS's own "no responders" when nobody subscribes to the route's
//!   subject (its node is gone), taken as undeliverable.
//! - `ej.NODE.bounce`: a payload this node's connection routed, accepted
//!   by a connection on another node that then closed before handling it;
//!   it goes back to the sender (the holder of its `from`) as undeliverable.
//! - `ej.NODE.admin`: `reload`, from another node's `ej reload
//!   --all-nodes`; answered with the reload's lines, as `ej reload` prints
//!   them.
//!
//! A route to an address this node does not hold finds the node holding
//! it (in the node's cache of holders, else in PostgreSQL's
//! `ej_bindings`), waits until the sending connection's previous such
//! route is published (so one connection's routes leave in order),
//! publishes, and waits up to `--route-wait` plus `--cluster-timeout` for
//! the answer. Not connected to NATS, or the address held by nobody:
//! undeliverable at once. No answer in time: busy (the payload may or may
//! not have arrived). A node from the cache that answers undeliverable is
//! forgotten and PostgreSQL asked again: if another node holds the address
//! now, the payload goes there (a route racing its address's move may so
//! arrive after a later one).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::connection::State;
use async_nats::{Client, Subject, Subscriber};
use futures::StreamExt as _;
use tokio::sync::{mpsc, oneshot};

use super::Cluster;
use super::wire::{self, Answer};
use crate::bindings::{Envelope, Event};
use crate::metrics::{METRICS, Metrics};
use crate::registry::{Delivery, Mailbox, Registry};
use crate::warning::Warning;

/// Lanes delivering routes from other nodes: a receiver whose mailbox is
/// full holds up only the addresses that share its lane.
const LANES: usize = 16;

/// Admin commands from other nodes waiting to run, at most; past it they
/// are answered that this node is busy.
const ASKED: usize = 4;

/// The only admin command other nodes may send.
pub const RELOAD: &str = "reload";

/// Holders a node remembers at most; past it, it forgets them all and
/// starts again.
const MAX_HOLDERS: usize = 65_536;

/// Bounds on routes between nodes.
#[derive(Clone, Copy, Debug)]
pub struct RelayLimits {
    /// How long a route waits for room in a full mailbox (`--route-wait`).
    pub route_wait: Duration,
    /// How long, beyond `route_wait`, a route waits for its answer.
    pub timeout: Duration,
    /// Routes from other nodes waiting for room in full mailboxes before
    /// the next is answered busy (split among the lanes), and bounces
    /// waiting to go back to their nodes.
    pub queue: usize,
}

/// This node's end of the routes between nodes.
pub struct Relay {
    client: Client,
    cluster: Arc<Cluster>,
    registry: Arc<Registry>,
    limits: RelayLimits,
    /// This node's subjects' common start, `ej.NODE.`.
    prefix: String,
    /// Which node holds which address, as last found (see the module's
    /// doc).
    holders: Mutex<HashMap<String, i64>>,
    /// Routes of this node's waiting for their answers, by number.
    waiting: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    next: AtomicU64,
    /// Where a connection here sends back a payload from another node that
    /// it accepted but did not handle (see `forward`).
    bounces: Mailbox,
    /// Where admin commands from other nodes go (see `connect`).
    asked: mpsc::Sender<Asked>,
}

/// An admin command from another node, and where to answer it.
pub struct Asked {
    reply: Subject,
}

/// A route from another node, and where to answer.
struct Inbound {
    envelope: Envelope,
    reply: Subject,
}

impl Relay {
    /// Connects to the NATS server at `url` and starts taking routes for
    /// this node's addresses; returns the relay, and the `reload`s other
    /// nodes ask of this one (to run, then `answer_asked`). A server out of
    /// reach now is an error; once connected, the client reconnects by
    /// itself for as long as it takes.
    pub async fn connect(
        url: &str,
        cluster: Arc<Cluster>,
        registry: Arc<Registry>,
        limits: RelayLimits,
    ) -> Result<(Arc<Self>, mpsc::Receiver<Asked>)> {
        let prefix = format!("ej.{}.", node_name(cluster.node()));
        let client = async_nats::ConnectOptions::new()
            .name(format!("ej node {}", node_name(cluster.node())))
            .connection_timeout(limits.timeout)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("connected to NATS"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("disconnected from NATS: routes to other nodes come back undeliverable")
                    }
                    other => tracing::warn!(event = %other, "NATS"),
                }
            })
            .connect(url)
            .await
            .with_context(|| format!("connecting to NATS at {url}"))?;
        let subscriber = client
            .subscribe(format!("{prefix}>"))
            .await
            .context("subscribing to this node's subjects in NATS")?;
        client
            .flush()
            .await
            .context("subscribing to this node's subjects in NATS")?;
        let queue = limits.queue.max(1);
        let (bounces, returned) = mpsc::channel(queue);
        let (asked, asks) = mpsc::channel(ASKED);
        let relay = Arc::new(Self {
            client,
            cluster,
            registry,
            limits: RelayLimits { queue, ..limits },
            prefix,
            holders: Mutex::default(),
            waiting: Mutex::default(),
            next: AtomicU64::new(0),
            bounces,
            asked,
        });
        tokio::spawn(Arc::clone(&relay).receive(subscriber));
        tokio::spawn(Arc::clone(&relay).forward(returned));
        tracing::info!(url, "routing to other nodes over NATS");
        Ok((relay, asks))
    }

    /// Whether this node is connected to NATS now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Routes `envelope` to the node holding its address, once `before`
    /// (the sending connection's previous route to another node) has been
    /// published, and says so through `published`. Returns the event for
    /// the sender if the payload came back: undeliverable or busy.
    pub async fn route(
        self: Arc<Self>,
        envelope: Envelope,
        before: Option<oneshot::Receiver<()>>,
        published: oneshot::Sender<()>,
    ) -> Option<Event> {
        Metrics::count(&METRICS.routes_relayed);
        // Looked up while the previous route may still be on its way.
        let found = self.holder(&envelope.to).await;
        if let Some(before) = before {
            let _ = before.await;
        }
        let mut answer = match found {
            Some((node, _)) => self.send(node, &envelope, Some(published)).await,
            None => Answer::Undeliverable,
        };
        if let (Answer::Undeliverable, Some((stale, true))) = (answer, found) {
            self.forget(&envelope.to, stale);
            if let Some((node, _)) = self.holder(&envelope.to).await
                && node != stale
            {
                answer = self.send(node, &envelope, None).await;
            }
        }
        match answer {
            Answer::Delivered => None,
            Answer::Undeliverable => Some(Event::Undeliverable(envelope)),
            Answer::Busy => {
                Metrics::count(&METRICS.routes_busy);
                Some(Event::Busy(envelope))
            }
        }
    }

    /// Asks `node` to `reload`; returns the lines it answered.
    pub async fn ask_reload(&self, node: i64) -> Result<Vec<String>> {
        let subject = format!("ej.{}.admin", node_name(node));
        let asked = self.client.request(subject, RELOAD.into());
        let message = tokio::time::timeout(self.limits.timeout, asked)
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {:?}", self.limits.timeout))??;
        Ok(String::from_utf8_lossy(&message.payload)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Answers another node's `reload` with `lines`.
    pub async fn answer_asked(&self, asked: Asked, lines: &[String]) {
        let _ = self.client.publish(asked.reply, lines.join("\n").into()).await;
    }

    /// Addresses bound anywhere in the cluster starting with `prefix`, in
    /// order, at most `limit`.
    pub async fn lookup(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        self.cluster.lookup(prefix, limit).await
    }

    /// The other node holding `address`, if one does, and whether that
    /// came from the cache (else PostgreSQL said so).
    async fn holder(&self, address: &str) -> Option<(i64, bool)> {
        if let Some(node) = self.lock_holders().get(address) {
            return Some((*node, true));
        }
        match self.cluster.holder(address).await {
            Ok(node) => {
                let node = node.filter(|node| *node != self.cluster.node())?;
                let mut holders = self.lock_holders();
                if holders.len() >= MAX_HOLDERS {
                    holders.clear();
                }
                holders.insert(address.to_owned(), node);
                Some((node, false))
            }
            Err(error) => {
                static FAILED: Warning = Warning::new();
                if let Some(suppressed) = FAILED.due() {
                    tracing::warn!(
                        error = %format!("{error:#}"),
                        suppressed,
                        "route undeliverable: the cluster's bindings are out of reach"
                    );
                }
                None
            }
        }
    }

    /// Forgets that `node` holds `address`, if that is what the cache says.
    fn forget(&self, address: &str, node: i64) {
        let mut holders = self.lock_holders();
        if holders.get(address) == Some(&node) {
            holders.remove(address);
        }
    }

    fn lock_holders(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.holders.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes `envelope` to `node` (then says so through `published`)
    /// and waits for its answer.
    async fn send(&self, node: i64, envelope: &Envelope, published: Option<oneshot::Sender<()>>) -> Answer {
        if !self.connected() {
            return Answer::Undeliverable;
        }
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let (answered, answer) = oneshot::channel();
        self.lock_waiting().insert(seq, answered);
        let _forget = Forget { relay: self, seq };
        let subject = format!("ej.{}.route", node_name(node));
        let reply = format!("{}answer.{seq}", self.prefix);
        if self
            .client
            .publish_with_reply(subject, reply, wire::encode(envelope).into())
            .await
            .is_err()
        {
            return Answer::Undeliverable;
        }
        drop(published);
        match tokio::time::timeout(self.limits.route_wait + self.limits.timeout, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Answer::Undeliverable,
            Err(_elapsed) => {
                static LATE: Warning = Warning::new();
                if let Some(suppressed) = LATE.due() {
                    tracing::warn!(
                        node = %node_name(node),
                        suppressed,
                        "route busy: its node did not answer in time"
                    );
                }
                Answer::Busy
            }
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Answer>>> {
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes what arrives on this node's subjects, until the client stops.
    async fn receive(self: Arc<Self>, mut subscriber: Subscriber) {
        let hasher = RandomState::new();
        let lanes: Vec<mpsc::Sender<Inbound>> = (0..LANES)
            .map(|_| {
                let (lane, routes) = mpsc::channel(self.limits.queue.div_ceil(LANES));
                tokio::spawn(Arc::clone(&self).deliver(routes));
                lane
            })
            .collect();
        while let Some(message) = subscriber.next().await {
            let Some(rest) = message.subject.as_str().strip_prefix(&self.prefix) else {
                continue;
            };
            if let Some(seq) = rest.strip_prefix("answer.") {
                let answer = if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                    Some(Answer::Undeliverable)
                } else {
                    Answer::from_bytes(&message.payload)
                };
                let waiting = seq.parse().ok().and_then(|seq| self.lock_waiting().remove(&seq));
                if let (Some(waiting), Some(answer)) = (waiting, answer) {
                    let _ = waiting.send(answer);
                }
                continue;
            }
            if rest == "admin" {
                if let Some(reply) = message.reply {
                    self.asked_to(&message.payload, reply).await;
                }
                continue;
            }
            let Some(envelope) = wire::decode(&message.payload) else {
                static MALFORMED: Warning = Warning::new();
                if let Some(suppressed) = MALFORMED.due() {
                    tracing::warn!(subject = %message.subject, suppressed, "a malformed message from NATS dropped");
                }
                continue;
            };
            match (rest, message.reply) {
                ("route", Some(reply)) => {
                    let lane = &lanes[hasher.hash_one(&envelope.to) as usize % LANES];
                    if let Err(refused) = lane.try_send(Inbound { envelope, reply }) {
                        let Inbound { reply, .. } = refused.into_inner();
                        self.answer(reply, Answer::Busy).await;
                    }
                }
                ("bounce", _) => self.bounced(envelope),
                _ => {}
            }
        }
    }

    /// Delivers one lane's routes, in order, each waiting for room in its
    /// mailbox up to `--route-wait`, and answers each.
    async fn deliver(self: Arc<Self>, mut routes: mpsc::Receiver<Inbound>) {
        while let Some(Inbound { envelope, reply }) = routes.recv().await {
            let answer = match self.registry.holder(&envelope.to) {
                None => Answer::Undeliverable,
                Some(holder) => {
                    let delivery = Delivery::Routed {
                        envelope: Box::new(envelope),
                        sender: self.bounces.clone(),
                    };
                    match holder.mailbox.send_timeout(delivery, self.limits.route_wait).await {
                        Ok(()) => Answer::Delivered,
                        Err(mpsc::error::SendTimeoutError::Timeout(_)) => Answer::Busy,
                        Err(mpsc::error::SendTimeoutError::Closed(_)) => Answer::Undeliverable,
                    }
                }
            };
            self.answer(reply, answer).await;
        }
    }

    /// Passes another node's admin command on, if it is a `reload` and
    /// fewer than `ASKED` wait; else answers why not.
    async fn asked_to(&self, command: &[u8], mut reply: Subject) {
        let refusal = if command != RELOAD.as_bytes() {
            "error - only reload is taken from other nodes"
        } else {
            match self.asked.try_send(Asked { reply }) {
                Ok(()) => return,
                Err(refused) => {
                    reply = refused.into_inner().reply;
                    "error - this node is busy with other nodes' reloads"
                }
            }
        };
        let _ = self.client.publish(reply, refusal.into()).await;
    }

    async fn answer(&self, reply: Subject, answer: Answer) {
        // Lost with the connection to NATS: the sender hears busy then.
        let _ = self.client.publish(reply, vec![answer.byte()].into()).await;
    }

    /// Sends payloads from other nodes that connections here accepted but
    /// closed before handling back to the nodes of their senders.
    async fn forward(self: Arc<Self>, mut returned: mpsc::Receiver<Delivery>) {
        while let Some(delivery) = returned.recv().await {
            let envelope = delivery.into_envelope();
            let Some((node, _)) = self.holder(&envelope.from).await else {
                continue;
            };
            let subject = format!("ej.{}.bounce", node_name(node));
            let _ = self.client.publish(subject, wire::encode(&envelope).into()).await;
        }
    }

    /// A payload this node's connection routed comes back: to whichever
    /// connection holds its `from` now.
    fn bounced(&self, envelope: Envelope) {
        let Some(holder) = self.registry.holder(&envelope.from) else {
            return;
        };
        if holder.mailbox.try_send(Delivery::Bounced(Box::new(envelope))).is_err() {
            static LOST: Warning = Warning::new();
            if let Some(suppressed) = LOST.due() {
                tracing::warn!(
                    suppressed,
                    "a payload from another node could not be bounced: its sender is full"
                );
            }
        }
    }
}

/// Forgets a route's place among those waiting for answers, however the
/// wait ends.
struct Forget<'a> {
    relay: &'a Relay,
    seq: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.relay.lock_waiting().remove(&self.seq);
    }
}

/// A node's name in subjects and logs: its number in hex.
pub fn node_name(node: i64) -> String {
    format!("{:016x}", node as u64)
}
