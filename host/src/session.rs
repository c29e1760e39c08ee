//! One peer's session: a reader task that owns inbound flow control, a
//! writer task that drains the bounded outbox, and the event loop between
//! them that frames the stream and runs each event in a fresh instance.
//!
//! Events of one session run strictly one at a time, in arrival order. The
//! reader keeps watching the socket while the event loop is busy or the
//! peer is throttled, so a peer that leaves is always noticed; between any
//! two events the loop checks for a reset and for shutdown, so neither
//! waits behind a long run of queued stanzas or self-caused events.
//!
//! A session that holds itself for its peer (`hold`) outlives its socket
//! for a while, detached, and may be taken over by a new connection (see
//! `holds`): the new connection's task carries on with the session's
//! mailbox, addresses, timers and state.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::bindings::ej::handler::types::Hold as HoldAction;

use crate::bindings::ej::handler::types::{Route, Timer};
use crate::bindings::{Action, CloseReason, Connection, Envelope, Event};
use crate::crash::{CrashReport, now_ms};
use crate::fault::{Fault, FaultKind};
use crate::framer::{Frame, FrameError, Framer};
use crate::holds::{Held, Hold, MAX_TOKEN_BYTES, Request, Slot};
use crate::limits::{ConnectionLimits, FaultPolicy};
use crate::metrics::{METRICS, Metrics};
use crate::module::Module;
use crate::outbox::Outbox;
use crate::outgoing::{Outgoing, Room};
use crate::registry::{Delivery, Holder};
use crate::remote::Remote;
use crate::service::Service;
use crate::throttle::Rate;
use crate::timers::{Full, Timers};
use crate::transport::{Input, Link, ReaderEnd};
use crate::turn::{Sources, Turns, Work};
use crate::warning::Warning;

/// The smallest stanza limit a handler may set (`max-stanza`), in bytes.
const MIN_STANZA_LIMIT: usize = 1024;

/// How a connection is encrypted from the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// Plain until a handler asks for `start-tls`.
    Plain,
    /// A TLS handshake before the first event (a TLS listener).
    Direct,
}

/// Serves one accepted connection until it closes.
pub async fn run(
    stream: TcpStream,
    id: u64,
    service: Arc<Service>,
    encryption: Encryption,
    shutdown: watch::Receiver<bool>,
) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    // Stanzas are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let (tls, encrypted) = match encryption {
        Encryption::Plain => (None, None),
        // Boxed, like events (see `dispatch`): a handshake's future is large.
        Encryption::Direct => match Box::pin(service.tls.accept(&stream)).await {
            Ok(established) => (Some(established.info), Some(established.encrypted)),
            Err(reason) => {
                // The peer never reached the handler: no events, just a line.
                log_tls_failure(id, &peer.to_string(), &reason);
                return;
            }
        },
    };
    let limits = &service.limits;
    let outbox = Arc::new(Outbox::new(limits.max_outbound_bytes));
    let rate = Rate::new(limits.read_rate);
    let link = Link::start(stream, Arc::clone(&outbox), rate.clone(), encrypted);

    let module = service.module();
    let (mailbox, deliveries) = mpsc::channel(limits.mailbox);
    let mut session = Session {
        holder: Holder { id, mailbox },
        deliveries,
        hold: None,
        detached: None,
        addresses: Vec::new(),
        timers: Timers::new(limits.max_timers),
        pending: VecDeque::new(),
        outgoing: Outgoing::new(limits.mailbox, limits.route_wait),
        remote: Remote::new(limits.mailbox),
        record: Connection {
            id,
            peer: peer.to_string(),
            listener: local.to_string(),
            module: module.info().clone(),
            tls,
        },
        module,
        state: Vec::new(),
        framer: framer(limits, limits.max_stanza_bytes),
        framed: false,
        turns: Turns::default(),
        max_stanza: limits.max_stanza_bytes,
        header_deadline: Some(tokio::time::Instant::now() + limits.header_timeout),
        stanza_deadline: None,
        outbox,
        rate,
        opened: false,
        link,
        shutdown,
        service: Arc::clone(&service),
    };
    tracing::debug!(id, %peer, "connection opened");

    match session.serve().await {
        Exit::Closing(ending) => {
            session.finish(&ending).await;
            session.link.close(service.limits.linger).await;
            let id = session.record.id;
            tracing::info!(id, %peer, reason = ending.reason.name(), "connection closed");
        }
        Exit::TakenOver => {
            session.link.close(service.limits.linger).await;
            tracing::info!(id = session.record.id, %peer, "session taken over by a new connection");
        }
    }
}

/// Logs a failed handshake, at most a few times a second.
fn log_tls_failure(id: u64, peer: &str, reason: &str) {
    static FAILED: Warning = Warning::new();
    if let Some(suppressed) = FAILED.due() {
        tracing::info!(id, peer, reason, suppressed, "TLS failed");
    }
}

/// The state of one session's event loop.
struct Session {
    service: Arc<Service>,
    /// What the guest is told about this connection.
    record: Connection,
    /// The module `record` describes.
    module: Arc<Module>,
    /// The state returned by the last successful event.
    state: Vec<u8>,
    framer: Framer,
    /// Whether the framer may hold another complete frame. While it may,
    /// nothing more is read from the socket; its frames are handled back
    /// to back while the mailbox is empty, and a turn each, alternating
    /// with deliveries, once it is not (see `frames`, `turn`).
    framed: bool,
    /// Whether the peer or the mailbox goes next.
    turns: Turns,
    /// The largest stanza accepted now (`max-stanza`, within the limit).
    max_stanza: usize,
    /// When the peer must have sent its stream header, while one is awaited.
    header_deadline: Option<tokio::time::Instant>,
    /// When the stanza the peer has begun must be complete, while one is.
    stanza_deadline: Option<tokio::time::Instant>,
    outbox: Arc<Outbox>,
    rate: Rate,
    /// Whether anything was written to the peer: a host stream error opens
    /// a stream of its own if not.
    opened: bool,
    /// This connection as the registry knows it.
    holder: Holder,
    /// Payloads routed to its addresses, waiting for it.
    deliveries: mpsc::Receiver<Delivery>,
    /// The session kept for the peer if it goes away (`hold`).
    hold: Option<Hold>,
    /// Set while the session lives on without its socket.
    detached: Option<Detachment>,
    /// The addresses it holds, in the order it bound them.
    addresses: Vec<String>,
    timers: Timers,
    /// Events this connection caused itself (an undeliverable payload, a
    /// refused bind): handled before anything new.
    pending: VecDeque<Event>,
    /// Its routes waiting for room in their receivers' mailboxes: while
    /// any waits, nothing new is taken from the peer or the timers.
    outgoing: Outgoing,
    /// Its routes to other nodes, on their way: while as many are as may
    /// be, nothing new is taken from the peer or the timers either.
    remote: Remote,
    /// The socket, and the tasks reading and writing it.
    link: Link,
    shutdown: watch::Receiver<bool>,
}

/// Whether the event loop goes on.
enum Flow {
    Continue,
    End(Ending),
}

/// How the event loop ended.
enum Exit {
    /// The connection closes, for this reason.
    Closing(Ending),
    /// Another connection carries on with the session.
    TakenOver,
}

/// A session without its socket, until its hold's window ends.
struct Detachment {
    until: tokio::time::Instant,
    _slot: Slot,
}

/// Why a session ends, and the stream error the host sends, if any.
struct Ending {
    reason: CloseReason,
    error: Option<StreamError>,
}

/// A stream error the host writes before closing.
struct StreamError {
    /// The RFC 6120 condition element's name.
    condition: &'static str,
    text: String,
}

impl Ending {
    fn quietly(reason: CloseReason) -> Self {
        Self { reason, error: None }
    }

    fn with_error(reason: CloseReason, condition: &'static str, text: impl Into<String>) -> Self {
        Self {
            reason,
            error: Some(StreamError {
                condition,
                text: text.into(),
            }),
        }
    }

    fn from_frame_error(error: FrameError) -> Self {
        let condition = match error {
            FrameError::NotWellFormed(_) => "not-well-formed",
            FrameError::Restricted(_) => "restricted-xml",
            FrameError::UnsupportedEncoding(_) => "unsupported-encoding",
            FrameError::TooLarge { .. } | FrameError::TooDeep { .. } => "policy-violation",
        };
        Self::with_error(CloseReason::StreamError, condition, error.to_string())
    }

    fn shutdown() -> Self {
        Self::with_error(CloseReason::Shutdown, "system-shutdown", "the server is shutting down")
    }

    /// TLS failed: nothing more can be written in the clear, or read.
    fn tls_failed() -> Self {
        Self::quietly(CloseReason::TlsFailed)
    }

    fn slow_reader() -> Self {
        Metrics::count(&METRICS.slow_readers);
        Self::with_error(
            CloseReason::StreamError,
            "resource-constraint",
            "the peer is not reading what it is sent",
        )
    }
}

impl Session {
    /// Runs events until the stream ends, the peer leaves, a handler or the
    /// host closes the connection, or the server shuts down. Stanzas, routed
    /// events and timers all pass through here, one at a time.
    /// A session holding itself for its peer outlives the socket (see
    /// `detach`) and keeps running events without it, until a new
    /// connection takes it over or its window ends.
    async fn serve(&mut self) -> Exit {
        let mut shutdown = self.shutdown.clone();
        loop {
            let next_timer = self.timers.next();
            let attached = self.detached.is_none();
            // While routes wait for room, or too many are on their way to
            // other nodes, the session only drains its mailbox (see
            // `outgoing`, `remote`).
            let flowing = self.flowing();
            let reading = attached && flowing;
            let flow = tokio::select! {
                end = self.link.reader.end(), if attached => match end {
                    ReaderEnd::Delivered => continue,
                    ReaderEnd::Gone => Flow::End(Ending::quietly(CloseReason::Disconnected)),
                },
                _ = shutdown.changed() => Flow::End(Ending::shutdown()),
                work = self.turns.next(Sources {
                    deliveries: &mut self.deliveries,
                    input: &mut self.link.input,
                    reading,
                    framed: self.framed,
                }) => match work {
                    Work::Delivery(delivery) => self.dispatch(match delivery {
                        Delivery::Routed { envelope, .. } => Event::Routed(*envelope),
                        Delivery::Bounced(envelope) => Event::Undeliverable(*envelope),
                    }).await,
                    Work::Frame => self.frames().await,
                    Work::Input(Some(Input::Data(bytes))) => {
                        self.framer.push(&bytes);
                        self.frames().await
                    }
                    Work::Input(Some(Input::Eof) | None) => Flow::End(Ending::quietly(CloseReason::Disconnected)),
                    Work::Input(Some(Input::TlsFailed(reason))) => {
                        log_tls_failure(self.record.id, &self.record.peer, &reason);
                        Flow::End(Ending::tls_failed())
                    }
                },
                room = self.outgoing.room(), if !self.outgoing.is_empty() => self.advance(room).await,
                back = self.remote.settled(), if !self.remote.is_empty() => self.settled(back).await,
                () = sleep_until(self.header_deadline), if reading => Flow::End(Ending::with_error(
                    CloseReason::StreamError,
                    "connection-timeout",
                    "no stream header in time",
                )),
                () = sleep_until(self.stanza_deadline), if reading => {
                    if !self.link.input.is_empty() {
                        // What arrived meanwhile may complete it.
                        self.stanza_deadline = None;
                        continue;
                    }
                    Flow::End(Ending::with_error(
                        CloseReason::StreamError,
                        "connection-timeout",
                        format!("a stanza took longer than {:?} to arrive", self.service.limits.stanza_timeout),
                    ))
                }
                () = sleep_until(self.detached.as_ref().map(|detached| detached.until)) => {
                    Flow::End(Ending::quietly(CloseReason::Expired))
                }
                () = sleep_until(next_timer), if flowing => match self.timers.pop_due(tokio::time::Instant::now()) {
                    Some(tag) => self.dispatch(Event::Timer(tag)).await,
                    None => continue,
                },
                Some(request) = next_request(&mut self.hold) => {
                    if self.hand_over(request) {
                        return Exit::TakenOver;
                    }
                    continue;
                }
            };
            let Flow::End(ending) = flow else { continue };
            if ending.reason != CloseReason::Disconnected || !self.detach().await {
                return Exit::Closing(ending);
            }
            if let Flow::End(ending) = self.dispatch(Event::Detached).await {
                return Exit::Closing(ending);
            }
        }
    }

    /// The peer went away: if the session holds itself for it and the
    /// server has room for one more session without a socket, lets the
    /// socket go and keeps the session, until the hold's window ends.
    async fn detach(&mut self) -> bool {
        let Some(hold) = &self.hold else {
            return false;
        };
        if self.detached.is_some() {
            return false;
        }
        let Some(slot) = self.service.env.holds.detach() else {
            static FULL: Warning = Warning::new();
            if let Some(suppressed) = FULL.due() {
                tracing::warn!(
                    id = self.record.id,
                    limit = self.service.env.holds.max_detached(),
                    suppressed,
                    "session not held: as many sessions as allowed are waiting for their peers"
                );
            }
            return false;
        };
        self.detached = Some(Detachment {
            until: tokio::time::Instant::now() + hold.window,
            _slot: slot,
        });
        self.header_deadline = None;
        self.link.drop_peer().await;
        tracing::debug!(id = self.record.id, window = ?hold.window, "session detached");
        true
    }

    /// Answers a take-over request with this session: true if the asking
    /// connection took it (this one is done), false if it had given up
    /// waiting (this one carries on).
    fn hand_over(&mut self, request: Request) -> bool {
        let held = Held {
            id: self.record.id,
            holder: self.holder.clone(),
            deliveries: std::mem::replace(&mut self.deliveries, mpsc::channel(1).1),
            addresses: std::mem::take(&mut self.addresses),
            timers: std::mem::replace(&mut self.timers, Timers::new(0)),
            hold: self.hold.take(),
            outgoing: std::mem::replace(&mut self.outgoing, Outgoing::new(0, Duration::ZERO)),
            remote: std::mem::replace(&mut self.remote, Remote::new(0)),
            state: std::mem::take(&mut self.state),
        };
        match request.send(held) {
            Ok(()) => true,
            Err(held) => {
                self.state = self.restore(held);
                false
            }
        }
    }

    /// Takes over the session held under `token`: lets go of this
    /// connection's own addresses, timers, hold and mailbox, and carries on
    /// as that session. Returns its state, if there was one.
    async fn take_over(&mut self, token: &str) -> Option<Vec<u8>> {
        let held = self.service.env.holds.claim(token, self.record.id).await?;
        for address in std::mem::take(&mut self.addresses) {
            self.release(address).await;
        }
        if let Some(hold) = self.hold.take() {
            self.service.env.holds.release(&hold, self.record.id);
        }
        let own = std::mem::replace(&mut self.deliveries, mpsc::channel(1).1);
        bounce(own, self.record.id);
        let routes = std::mem::replace(&mut self.outgoing, Outgoing::new(0, Duration::ZERO));
        // Its own routes to other nodes settle first: they are few, and
        // the taken session's are on their way in their own order.
        let remote_back = self.remote.settle_all().await;
        tracing::debug!(id = self.record.id, taken = held.id, "session taken over");
        let state = self.restore(held);
        for back in self.outgoing.append(routes).into_iter().chain(remote_back) {
            self.cause(back);
        }
        Some(state)
    }

    /// Makes `held` this connection's session; returns its state.
    fn restore(&mut self, held: Held) -> Vec<u8> {
        self.record.id = held.id;
        self.holder = held.holder;
        self.deliveries = held.deliveries;
        self.addresses = held.addresses;
        self.timers = held.timers;
        self.hold = held.hold;
        self.outgoing = held.outgoing;
        self.remote = held.remote;
        held.state
    }

    /// The `hold` action: replaces the session's hold; a zero window lets
    /// go of it.
    fn hold(&mut self, HoldAction { token, window_ms }: HoldAction) {
        let holds = &self.service.env.holds;
        if let Some(hold) = self.hold.take() {
            holds.release(&hold, self.record.id);
        }
        if window_ms == 0 {
            return;
        }
        let window = Duration::from_millis(window_ms.into()).min(self.service.limits.max_hold);
        self.hold = holds.register(token, self.record.id, window);
        if self.hold.is_none() {
            // `check` refused this before the outcome committed, so another
            // connection registered the token in between.
            tracing::warn!(
                id = self.record.id,
                "hold not set: another connection took its token first"
            );
        }
    }

    /// Why the session must end now, between two events, if it must: the
    /// peer reset the connection (what it sent is dropped, not handled), or
    /// the server is shutting down.
    fn interrupted(&self) -> Option<Ending> {
        if self.detached.is_none() && self.link.is_reset() {
            Some(Ending::quietly(CloseReason::Disconnected))
        } else if *self.shutdown.borrow() {
            Some(Ending::shutdown())
        } else {
            None
        }
    }

    /// Handles the complete frames of what the peer sent, one after
    /// another while nothing else waits: once something was routed to the
    /// session, the frames left wait for the peer's next turn (see
    /// `framed`, `turn`).
    async fn frames(&mut self) -> Flow {
        loop {
            let flow = self.next_frame().await;
            if matches!(flow, Flow::End(_)) || !self.framed || !self.deliveries.is_empty() || !self.flowing() {
                return flow;
            }
        }
    }

    /// Handles the next complete frame of what the peer sent, if there is
    /// one.
    async fn next_frame(&mut self) -> Flow {
        if let Some(ending) = self.interrupted() {
            return Flow::End(ending);
        }
        let event = match self.framer.next_frame() {
            Ok(None) => {
                self.framed = false;
                // A stanza begun must be finished in time: no peer holds a
                // connection by sending a byte now and then.
                self.stanza_deadline = match self.framer.unframed() {
                    0 => None,
                    _ => self
                        .stanza_deadline
                        .or_else(|| Some(tokio::time::Instant::now() + self.service.limits.stanza_timeout)),
                };
                return Flow::Continue;
            }
            Ok(Some(Frame::StreamOpen(header))) => {
                self.header_deadline = None;
                Event::StreamOpen(header)
            }
            Ok(Some(Frame::Stanza(stanza))) => Event::Stanza(stanza),
            Ok(Some(Frame::StreamEnd)) => return Flow::End(Ending::quietly(CloseReason::StreamEnd)),
            Err(error) => return Flow::End(Ending::from_frame_error(error)),
        };
        self.framed = true;
        self.stanza_deadline = None;
        self.dispatch(event).await
    }

    /// Settles the first waiting route with what `room` found, and handles
    /// what came back.
    async fn advance(&mut self, room: Room) -> Flow {
        for event in self.outgoing.advance(room) {
            self.cause(event);
        }
        self.resume().await
    }

    /// The oldest route to another node settled: handles what came back.
    async fn settled(&mut self, back: Option<Event>) -> Flow {
        if let Some(event) = back {
            self.cause(event);
        }
        self.resume().await
    }

    /// After a route settled: the events it caused. The stanzas already
    /// read follow in the next turns, once routes flow again.
    async fn resume(&mut self) -> Flow {
        match self.pending.pop_front() {
            Some(event) => self.dispatch(event).await,
            None => Flow::Continue,
        }
    }

    /// Whether the session takes new stanzas and timers: no route waits for
    /// room, and fewer routes to other nodes are on their way than may be.
    fn flowing(&self) -> bool {
        self.outgoing.is_empty() && !self.remote.is_full()
    }

    /// Runs one event, then the events it caused this connection itself
    /// (an undeliverable payload, a refused bind), and the events those
    /// caused in turn, before anything new: at most `--max-chain` of them,
    /// so a handler that answers each bounce by routing again cannot keep
    /// its connection busy forever.
    async fn dispatch(&mut self, event: Event) -> Flow {
        // Boxed: running events takes kilobytes of future (a TLS handshake,
        // a take-over, the handler call), which every idle session would
        // otherwise carry in its task.
        Box::pin(self.chain(event)).await
    }

    /// `dispatch`, unboxed.
    async fn chain(&mut self, event: Event) -> Flow {
        let mut next = Some(event);
        let mut chained = 0;
        while let Some(event) = next {
            if let Flow::End(ending) = self.dispatch_one(event).await {
                return Flow::End(ending);
            }
            if let Some(ending) = self.interrupted() {
                return Flow::End(ending);
            }
            next = self.pending.pop_front();
            chained += 1;
            if next.is_some() && chained > self.service.limits.max_chain {
                static CHAIN: Warning = Warning::new();
                if let Some(suppressed) = CHAIN.due() {
                    tracing::warn!(
                        id = self.record.id,
                        dropped = self.pending.len() + 1,
                        limit = self.service.limits.max_chain,
                        suppressed,
                        "self-caused events dropped: the chain of events one event caused is too long"
                    );
                }
                Metrics::add(&METRICS.events_dropped, self.pending.len() + 1);
                self.pending.clear();
                break;
            }
        }
        Flow::Continue
    }

    /// Runs one event; commits its outcome, or discards it on a fault.
    async fn dispatch_one(&mut self, event: Event) -> Flow {
        match self.run(&event).await {
            Ok(actions) => self.apply(actions).await,
            Err(fault) => {
                self.report(&event, &fault);
                match self.service.limits.on_fault {
                    FaultPolicy::Skip => Flow::Continue,
                    FaultPolicy::Close => Flow::End(Ending::with_error(
                        CloseReason::Fault,
                        "internal-server-error",
                        "the handler failed",
                    )),
                }
            }
        }
    }

    /// Runs `event` in a fresh instance of the current module and commits
    /// its store transaction and new state (see `Service::run_event`);
    /// returns the actions to carry out.
    async fn run(&mut self, event: &Event) -> Result<Vec<Action>, Fault> {
        let encrypted = self.link.is_encrypted();
        let (holds, id) = (&self.service.env.holds, self.record.id);
        let outcome = self
            .service
            .run_event(&mut self.record, &mut self.module, &self.state, event, |actions| {
                check(actions, encrypted, |token| holds.held_by_other(token, id))
            })
            .await?;
        self.state = outcome.state;
        Ok(outcome.actions)
    }

    /// Carries out a successful event's actions, in order.
    async fn apply(&mut self, actions: Vec<Action>) -> Flow {
        if actions.iter().any(|action| matches!(action, Action::StartTls)) {
            // Stop reading before anything of this outcome is written: all
            // that was read until now was sent before the peer could have
            // seen the answer, so none of it can be its handshake.
            self.link.stop_reading().await;
        }
        for action in actions {
            match action {
                Action::Send(text) => {
                    if self.send(text).is_err() {
                        return Flow::End(Ending::slow_reader());
                    }
                }
                Action::Close(last) => {
                    if let Some(text) = last
                        && self.send(text).is_err()
                    {
                        return Flow::End(Ending::slow_reader());
                    }
                    return Flow::End(Ending::quietly(CloseReason::Handler));
                }
                Action::Throttle(bytes_per_sec) => self.rate.set(bytes_per_sec),
                Action::ResetStream => {
                    self.framer.reset();
                    self.await_header();
                }
                Action::MaxStanza(bytes) => {
                    self.max_stanza = usize::try_from(bytes)
                        .unwrap_or(usize::MAX)
                        .clamp(MIN_STANZA_LIMIT, self.service.limits.max_stanza_bytes);
                    self.framer.set_max(self.max_stanza);
                }
                Action::StartTls => {
                    if let Err(reason) = self.start_tls().await {
                        log_tls_failure(self.record.id, &self.record.peer, &reason);
                        return Flow::End(Ending::tls_failed());
                    }
                }
                Action::Bind(address) => self.bind(address).await,
                Action::Unbind(address) => self.unbind(&address).await,
                Action::Route(route) => self.route(route),
                Action::SetTimer(Timer { tag, after_ms }) => {
                    if let Err(Full(tag)) = self.timers.set(tag, Duration::from_millis(after_ms.into())) {
                        static REFUSED: Warning = Warning::new();
                        if let Some(suppressed) = REFUSED.due() {
                            tracing::warn!(
                                id = self.record.id,
                                limit = self.service.limits.max_timers,
                                suppressed,
                                "timer not set: the connection has as many timers as it may"
                            );
                        }
                        self.cause(Event::TimerRefused(tag));
                    }
                }
                Action::CancelTimer(tag) => self.timers.cancel(&tag),
                Action::Hold(hold) => self.hold(hold),
                Action::TakeOver(token) => {
                    let state = self.take_over(&token).await;
                    self.cause(Event::TookOver(state));
                }
            }
        }
        Flow::Continue
    }

    /// The `start-tls` action (reading was stopped before the outcome was
    /// applied): refuses bytes the peer sent before it could have known to
    /// start its handshake, writes what was sent so far, runs the
    /// handshake, and restarts the stream, encrypted.
    async fn start_tls(&mut self) -> Result<(), String> {
        // STARTTLS command injection (CVE-2011-0411): what follows the
        // stanza that asked for TLS in the clear must not be read as if it
        // came through TLS.
        let early = self.framer.unframed()
            + std::iter::from_fn(|| self.link.input.try_recv().ok())
                .map(|input| match input {
                    Input::Data(bytes) => bytes.len(),
                    Input::Eof | Input::TlsFailed(_) => 0,
                })
                .sum::<usize>();
        if early > 0 {
            return Err(format!(
                "the peer sent {early} bytes between start-tls and its handshake: dropped unread"
            ));
        }
        let timeout = self.service.tls.handshake_timeout;
        tokio::time::timeout(timeout, self.link.flushed())
            .await
            .map_err(|_| format!("what preceded start-tls was not read within {timeout:?}"))?;
        let established = self.service.tls.accept(&self.link.stream).await?;
        tracing::debug!(id = self.record.id, resumed = established.resumed, "TLS started");
        self.link.encrypt(established.encrypted);
        self.record.tls = Some(established.info);
        self.framer = framer(&self.service.limits, self.max_stanza);
        self.await_header();
        Ok(())
    }

    /// A new stream header is due within `--header-timeout`.
    fn await_header(&mut self) {
        self.stanza_deadline = None;
        self.header_deadline = Some(tokio::time::Instant::now() + self.service.limits.header_timeout);
    }

    async fn bind(&mut self, address: String) {
        if self.addresses.contains(&address) {
            return;
        }
        let limit = self.service.limits.max_addresses;
        if self.addresses.len() >= limit {
            static REFUSED: Warning = Warning::new();
            if let Some(suppressed) = REFUSED.due() {
                // Guest-controlled text is logged escaped (`?`): no forged lines.
                tracing::warn!(
                    id = self.record.id,
                    ?address,
                    limit,
                    suppressed,
                    "bind refused: the connection holds as many addresses as it may"
                );
            }
        } else if self.service.env.registry.bind(&address, &self.holder) {
            if self.bind_in_cluster(&address).await {
                // Room for one more, not the four a `Vec` makes at first:
                // most sessions hold one address, as long as they live.
                self.addresses.reserve_exact(1);
                self.addresses.push(address);
                return;
            }
            self.service.env.registry.unbind(&address, self.holder.id);
        }
        self.cause(Event::BindRefused(address));
    }

    /// Whether the cluster, if any, lets this connection hold `address`.
    async fn bind_in_cluster(&self, address: &str) -> bool {
        let Some(cluster) = &self.service.env.cluster else {
            return true;
        };
        match cluster.bind(address, self.holder.id).await {
            Ok(bound) => bound,
            Err(error) => {
                static FAILED: Warning = Warning::new();
                if let Some(suppressed) = FAILED.due() {
                    tracing::warn!(
                        id = self.record.id,
                        ?address,
                        error = %format!("{error:#}"),
                        suppressed,
                        "bind refused: the cluster's bindings are out of reach"
                    );
                }
                false
            }
        }
    }

    async fn unbind(&mut self, address: &str) {
        if let Some(at) = self.addresses.iter().position(|held| held == address) {
            self.addresses.remove(at);
            self.release(address.to_owned()).await;
        }
    }

    /// Lets go of an address this connection held, here and cluster-wide.
    async fn release(&self, address: String) {
        self.service.env.registry.unbind(&address, self.holder.id);
        if let Some(cluster) = &self.service.env.cluster {
            cluster.unbind(address, self.holder.id).await;
        }
    }

    /// Delivers a payload to the mailbox of the connection holding its
    /// address, or queues it to wait for room there (see `outgoing`), or
    /// sends it to the node holding it (see `remote`); or sends it back to
    /// this connection, undeliverable or busy.
    fn route(&mut self, Route { to, payload }: Route) {
        let envelope = Envelope {
            from: self.addresses.first().cloned().unwrap_or_default(),
            to,
            payload,
        };
        let Some(holder) = self.service.env.registry.holder(&envelope.to) else {
            let back = match &self.service.env.relay {
                Some(relay) => self.remote.send(relay, envelope),
                None => Some(Event::Undeliverable(envelope)),
            };
            if let Some(back) = back {
                self.cause(back);
            }
            return;
        };
        let delivery = Delivery::Routed {
            envelope: Box::new(envelope),
            sender: self.holder.mailbox.clone(),
        };
        if let Some(back) = self.outgoing.send(&holder.mailbox, delivery) {
            self.cause(back);
        }
    }

    /// Queues an event this connection caused itself. One outcome's worth
    /// are queued at most (they are handled right after it), up to the
    /// mailbox bound.
    fn cause(&mut self, event: Event) {
        if self.pending.len() < self.service.limits.mailbox {
            self.pending.push_back(event);
        } else {
            Metrics::count(&METRICS.events_dropped);
            static DROPPED: Warning = Warning::new();
            if let Some(suppressed) = DROPPED.due() {
                tracing::warn!(
                    id = self.record.id,
                    event = event.kind(),
                    suppressed,
                    "event dropped: too many pending"
                );
            }
        }
    }

    /// Queues `text` for the peer; without one (detached), drops it.
    fn send(&mut self, text: String) -> Result<(), crate::outbox::Overflow> {
        if text.is_empty() || self.detached.is_some() {
            return Ok(());
        }
        self.opened = true;
        self.outbox.push(text.into_bytes())
    }

    /// The last event: the handler hears why the connection closes and may
    /// say goodbye (if the peer is still there); then its addresses are
    /// released, payloads still waiting for it go back to their senders, and
    /// the host's stream error, if any, closes the stream.
    async fn finish(&mut self, ending: &Ending) {
        let event = Event::Closed(ending.reason);
        let peer_is_there =
            self.detached.is_none() && !matches!(ending.reason, CloseReason::Disconnected | CloseReason::TlsFailed);
        match Box::pin(self.run(&event)).await {
            Ok(actions) => {
                for action in actions {
                    match action {
                        // A peer that stopped reading gets what still fits.
                        Action::Send(text) if peer_is_there => {
                            let _ = self.send(text);
                        }
                        Action::Route(route) => self.route(route),
                        Action::Unbind(address) => self.unbind(&address).await,
                        _ => {}
                    }
                }
            }
            Err(fault) => self.report(&event, &fault),
        }
        let lost = self.outgoing.flush().await + self.remote.settle_all().await.len();
        if lost > 0 {
            static LOST: Warning = Warning::new();
            if let Some(suppressed) = LOST.due() {
                tracing::warn!(
                    id = self.record.id,
                    lost,
                    suppressed,
                    "routes of a closing connection not delivered: their mailboxes stayed full or closed"
                );
            }
        }
        for address in std::mem::take(&mut self.addresses) {
            self.release(address).await;
        }
        if let Some(hold) = self.hold.take() {
            self.service.env.holds.release(&hold, self.record.id);
        }
        let deliveries = std::mem::replace(&mut self.deliveries, mpsc::channel(1).1);
        bounce(deliveries, self.record.id);
        let last = ending
            .error
            .as_ref()
            .map(|error| stream_error(error.condition, &error.text, !self.opened));
        self.outbox.close_with(last);
    }

    fn report(&self, event: &Event, fault: &Fault) {
        // What the guest said first: its own words are what a person needs.
        tracing::warn!(
            guest = ?fault.output_head(),
            id = self.record.id,
            peer = %self.record.peer,
            event = event.kind(),
            kind = fault.kind.name(),
            reason = ?fault.reason,
            "handler fault"
        );
        self.service.crash_log.write(&CrashReport {
            at_ms: now_ms(),
            connection: self.record.id,
            peer: &self.record.peer,
            module: &self.record.module.digest,
            event: event.kind(),
            fault,
        });
    }
}

/// A framer for a new stream, within `limits`, accepting stanzas of at most
/// `max_stanza` bytes.
fn framer(limits: &ConnectionLimits, max_stanza: usize) -> Framer {
    let mut framer = Framer::new(max_stanza);
    framer.set_max_depth(limits.max_depth);
    framer
}

/// The bytes of a host stream error, preceded by a stream header if the
/// peer was sent none yet (`with_header`).
pub fn stream_error(condition: &str, text: &str, with_header: bool) -> Vec<u8> {
    const NS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
    let header = if with_header {
        "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    } else {
        ""
    };
    format!(
        "{header}<stream:error><{condition} xmlns='{NS}'/><text xmlns='{NS}'>{text}</text></stream:error></stream:stream>",
        text = quick_xml::escape::escape(text),
    )
    .into_bytes()
}

/// Sends the payloads waiting in a closed mailbox back to their senders.
fn bounce(mut deliveries: mpsc::Receiver<Delivery>, id: u64) {
    deliveries.close();
    while let Ok(delivery) = deliveries.try_recv() {
        static LOST: Warning = Warning::new();
        if let Delivery::Routed { envelope, sender } = delivery
            && sender.try_send(Delivery::Bounced(envelope)).is_err()
            && let Some(suppressed) = LOST.due()
        {
            tracing::warn!(
                id,
                suppressed,
                "a payload could not be bounced: its sender is gone or full"
            );
        }
    }
}

/// The next take-over request for a session's hold, if it has one.
async fn next_request(hold: &mut Option<Hold>) -> Option<Request> {
    match hold {
        Some(hold) => hold.request().await,
        None => std::future::pending().await,
    }
}

/// Refuses, before anything of it commits, an outcome asking for what the
/// host cannot do on a connection (`encrypted` or not): a second TLS
/// handshake, or a hold on a token that is too long or `taken` by another
/// connection.
fn check(actions: &[Action], encrypted: bool, taken: impl Fn(&str) -> bool) -> Result<(), Fault> {
    for action in actions {
        if let Action::Hold(hold) = action {
            if hold.token.len() > MAX_TOKEN_BYTES {
                return Err(Fault::host(
                    FaultKind::BadAction,
                    format!("a hold token of {} bytes (at most {MAX_TOKEN_BYTES})", hold.token.len()),
                ));
            }
            if hold.window_ms > 0 && taken(&hold.token) {
                return Err(Fault::host(
                    FaultKind::BadAction,
                    "a hold on a token another connection holds".to_owned(),
                ));
            }
        }
    }
    let handshakes = actions
        .iter()
        .filter(|action| matches!(action, Action::StartTls))
        .count();
    if handshakes > usize::from(!encrypted) {
        return Err(Fault::host(
            FaultKind::BadAction,
            "start-tls on a connection that is already encrypted".to_owned(),
        ));
    }
    Ok(())
}

/// Sleeps until `deadline`, or forever if there is none.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
