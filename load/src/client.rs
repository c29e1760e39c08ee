//! One simulated user: a small XMPP client state machine. It logs in
//! (stream header, STARTTLS if asked, SASL SCRAM, a new stream, resource
//! binding, initial presence), then a reader task counts the messages that arrive and
//! their latency, and a writer task sends messages on the run's schedule
//! and answers the server's iqs (pings).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::scram::{Hash, Scram};
use crate::stats::Stats;
use crate::xml::{Element, Frame, Framer, escape};

/// The largest element the client accepts from a server.
const MAX_ELEMENT: usize = 1 << 20;
/// Answers to the server's iqs that may wait for the writer.
const REPLY_QUEUE: usize = 64;
/// What every message body the load generator sends starts with.
const BODY_TAG: &str = "ejl";
const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// A transport the client can speak XMPP over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How every user logs in.
#[derive(Clone, Debug)]
pub struct LoginConfig {
    pub addr: String,
    pub domain: String,
    pub password: String,
    pub mechanism: Hash,
    pub resource: String,
    /// STARTTLS before authenticating, when set.
    pub tls: Option<Tls>,
}

/// What STARTTLS needs: the certificates to trust, the name to check.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({:?})", self.name)
    }
}

impl Tls {
    /// Trusts the PEM certificates in `ca_file` for the server `name`.
    pub fn new(ca_file: &std::path::Path, name: &str) -> Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_file).with_context(|| format!("reading {}", ca_file.display()))? {
            roots.add(cert.with_context(|| format!("a certificate in {}", ca_file.display()))?)?;
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            name: ServerName::try_from(name.to_owned()).context("the domain is not a TLS server name")?,
        })
    }
}

/// What a user does once logged in, the same for all of them.
pub struct Plan {
    pub users: usize,
    pub user_prefix: String,
    pub domain: String,
    /// Messages per second per user; 0 for as fast as the window allows.
    pub rate_per_user: f64,
    /// Messages in flight per user when sending flat out.
    pub window: u32,
    /// Recipients drawn at random rather than the next user.
    pub random_pairs: bool,
    /// Ask servers not to archive the messages (XEP-0334 `<no-store/>`).
    pub no_store: bool,
    /// When the run started: message timestamps count from here.
    pub base: Instant,
}

/// Where a run is; every user's tasks follow it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phase {
    /// Logging in, or holding the session.
    Hold,
    /// Sending messages, the schedule starting at this instant.
    Send(Instant),
    /// No more sending; messages in flight still count.
    Drain,
}

/// What all users share: the plan, the counters, the flat-out windows.
pub struct Shared {
    pub plan: Plan,
    pub stats: Stats,
    inflight: Vec<AtomicU32>,
    wakers: Vec<Notify>,
    /// `(sender, sequence number)` of every message delivered, to tell a
    /// message delivered twice.
    seen: Mutex<HashSet<(u64, u64)>>,
}

impl Shared {
    pub fn new(plan: Plan) -> Self {
        let users = plan.users;
        Self {
            plan,
            stats: Stats::default(),
            inflight: (0..users).map(|_| AtomicU32::new(0)).collect(),
            wakers: (0..users).map(|_| Notify::new()).collect(),
            seen: Mutex::default(),
        }
    }
}

/// A connection being logged in.
struct Connection {
    io: Box<dyn Io>,
    framer: Framer,
    buf: Box<[u8]>,
}

impl Connection {
    async fn send(&mut self, data: &str) -> Result<()> {
        self.io.write_all(data.as_bytes()).await?;
        Ok(())
    }

    async fn frame(&mut self) -> Result<Frame> {
        loop {
            if let Some(frame) = self.framer.next_frame()? {
                return Ok(frame);
            }
            let read = self.io.read(&mut self.buf).await?;
            if read == 0 {
                bail!("the server closed the connection");
            }
            self.framer.push(&self.buf[..read])?;
        }
    }

    /// The next top-level element; a stream error or the stream's end is
    /// an error.
    async fn element(&mut self) -> Result<Element> {
        match self.frame().await? {
            Frame::Element(element) if element.name == "error" => bail!("stream error: {}", condition(&element)),
            Frame::Element(element) => Ok(element),
            Frame::Header(_) => bail!("a second stream header"),
            Frame::End => bail!("the server ended the stream"),
        }
    }

    /// Opens a stream (again) and returns its features.
    async fn open(&mut self, domain: &str) -> Result<Element> {
        self.framer.restart();
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0'>",
            escape(domain)
        ))
        .await?;
        match self.frame().await? {
            Frame::Header(_) => {}
            other => bail!("expected a stream header, got {other:?}"),
        }
        let features = self.element().await?;
        if features.name != "features" {
            bail!("expected stream features, got <{}>", features.name);
        }
        Ok(features)
    }

    /// Sends an iq and waits for its answer, skipping anything else.
    async fn iq(&mut self, id: &str, iq: &str) -> Result<Element> {
        self.send(iq).await?;
        loop {
            let element = self.element().await?;
            if element.name == "iq" && element.attr("id") == Some(id) {
                if element.attr("type") == Some("result") {
                    return Ok(element);
                }
                bail!("iq {id} failed: {}", stanza_error(&element));
            }
        }
    }
}

/// The condition of a stream or SASL error: its first child's name.
fn condition(element: &Element) -> &str {
    element
        .children
        .iter()
        .map(|child| child.name.as_str())
        .find(|name| *name != "text")
        .unwrap_or("(none)")
}

fn stanza_error(element: &Element) -> &str {
    element.child("error").map_or("(no error element)", condition)
}

/// A logged-in user, ready for the run.
pub struct Session {
    io: Box<dyn Io>,
    framer: Framer,
}

/// Logs `user` in: SCRAM, binding, initial presence.
pub async fn login(config: &LoginConfig, user: &str) -> Result<Session> {
    let tcp = TcpStream::connect(&config.addr)
        .await
        .with_context(|| format!("connecting to {}", config.addr))?;
    tcp.set_nodelay(true)?;
    let mut conn = Connection {
        io: Box::new(tcp),
        framer: Framer::new(MAX_ELEMENT),
        buf: vec![0; 16 * 1024].into_boxed_slice(),
    };
    let mut features = conn.open(&config.domain).await?;
    if let Some(tls) = &config.tls {
        conn = starttls(conn, &features, tls).await?;
        features = conn.open(&config.domain).await?;
    }
    let offered: Vec<&str> = features
        .child("mechanisms")
        .map(|mechanisms| mechanisms.children.iter().map(|m| m.text.trim()).collect())
        .unwrap_or_default();
    let mechanism = config.mechanism.mechanism();
    if !offered.contains(&mechanism) {
        bail!("the server offers {offered:?} on this connection, not {mechanism}");
    }
    authenticate(&mut conn, config, user).await?;
    let features = conn.open(&config.domain).await?;
    if features.child("bind").is_none() {
        bail!("no resource binding offered after authentication");
    }
    conn.iq(
        "bind",
        &format!(
            "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>{}</resource></bind></iq>",
            escape(&config.resource)
        ),
    )
    .await?;
    // The legacy session iq, where a server still requires it.
    if features
        .child("session")
        .is_some_and(|session| session.child("optional").is_none())
    {
        conn.iq(
            "session",
            "<iq type='set' id='session'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
        )
        .await?;
    }
    conn.send("<presence/>").await?;
    Ok(Session {
        io: conn.io,
        framer: conn.framer,
    })
}

/// Asks for STARTTLS and runs the handshake.
async fn starttls(mut conn: Connection, features: &Element, tls: &Tls) -> Result<Connection> {
    if features.child("starttls").is_none() {
        bail!("the server does not offer STARTTLS");
    }
    conn.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await?;
    let answer = conn.element().await?;
    if answer.name != "proceed" {
        bail!("STARTTLS refused: <{}>", answer.name);
    }
    let Connection { io, framer, buf } = conn;
    let io = tls
        .connector
        .connect(tls.name.clone(), io)
        .await
        .context("the TLS handshake")?;
    Ok(Connection {
        io: Box::new(io),
        framer,
        buf,
    })
}

async fn authenticate(conn: &mut Connection, config: &LoginConfig, user: &str) -> Result<()> {
    let mut scram = Scram::new(config.mechanism, user, &config.password)?;
    conn.send(&format!(
        "<auth xmlns='{SASL}' mechanism='{}'>{}</auth>",
        config.mechanism.mechanism(),
        BASE64.encode(scram.client_first())
    ))
    .await?;
    let mut proved = false;
    loop {
        let element = conn.element().await?;
        let data = BASE64
            .decode(element.text.trim())
            .context("SASL data that is not base64")?;
        let data = String::from_utf8(data).context("SASL data that is not UTF-8")?;
        match (element.name.as_str(), proved) {
            ("challenge", false) => {
                let reply = scram.client_final(&data)?;
                conn.send(&format!("<response xmlns='{SASL}'>{}</response>", BASE64.encode(reply)))
                    .await?;
                proved = true;
            }
            // Some servers send the server-final message as a challenge.
            ("challenge", true) => {
                scram.verify_server_final(&data)?;
                conn.send(&format!("<response xmlns='{SASL}'/>")).await?;
            }
            ("success", true) => {
                if !data.is_empty() {
                    scram.verify_server_final(&data)?;
                }
                return Ok(());
            }
            ("failure", _) => bail!("authentication failed: {}", condition(&element)),
            (name, _) => bail!("unexpected <{name}> during authentication"),
        }
    }
}

/// Runs a logged-in user until its tasks are aborted: the writer is
/// spawned, this task reads.
pub async fn run(session: Session, shared: Arc<Shared>, me: usize, phase: watch::Receiver<Phase>) {
    let (reader, writer) = tokio::io::split(session.io);
    let (replies, replies_rx) = mpsc::channel(REPLY_QUEUE);
    let writing = tokio::spawn(write(writer, replies_rx, shared.clone(), me, phase.clone()));
    read(reader, session.framer, &shared, &replies, &phase).await;
    writing.abort();
}

async fn read(
    mut reader: ReadHalf<Box<dyn Io>>,
    mut framer: Framer,
    shared: &Shared,
    replies: &mpsc::Sender<String>,
    phase: &watch::Receiver<Phase>,
) {
    let stats = &shared.stats;
    let mut buf = vec![0u8; 16 * 1024];
    let outcome: Result<()> = async {
        loop {
            let frame = match framer.next_frame()? {
                Some(frame) => frame,
                None => {
                    let read = reader.read(&mut buf).await?;
                    if read == 0 {
                        bail!("the server closed the connection");
                    }
                    framer.push(&buf[..read])?;
                    continue;
                }
            };
            let element = match frame {
                Frame::Element(element) => element,
                Frame::End => bail!("the server ended the stream"),
                Frame::Header(_) => bail!("a second stream header"),
            };
            match (element.name.as_str(), element.attr("type")) {
                ("error", _) => bail!("stream error: {}", condition(&element)),
                (_, Some("error")) => {
                    Stats::add(&stats.stanza_errors);
                    stats.note(format!(
                        "<{}> error: {} (id {} to {})",
                        element.name,
                        stanza_error(&element),
                        element.attr("id").unwrap_or_default(),
                        element.attr("to").unwrap_or_default()
                    ));
                }
                ("message", _) => delivered(shared, &element, *phase.borrow()),
                ("iq", Some(kind @ ("get" | "set"))) => {
                    let id = escape(element.attr("id").unwrap_or_default());
                    let to = element
                        .attr("from")
                        .map(|from| format!(" to='{}'", escape(from)))
                        .unwrap_or_default();
                    let ping = element.child("ping").is_some() && kind == "get";
                    let reply = if ping {
                        format!("<iq type='result' id='{id}'{to}/>")
                    } else {
                        format!(
                            "<iq type='error' id='{id}'{to}><error type='cancel'><service-unavailable \
                             xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
                        )
                    };
                    if replies.try_send(reply).is_ok() {
                        Stats::add(&stats.iqs_answered);
                    }
                }
                _ => {}
            }
        }
    }
    .await;
    if let Err(error) = outcome {
        Stats::add(&stats.stream_errors);
        stats.note(format!("{error:#}"));
    }
}

/// Counts a message if it is one of the run's.
fn delivered(shared: &Shared, message: &Element, phase: Phase) {
    let Some(body) = message.child("body") else { return };
    let mut words = body.text.split(' ');
    if words.next() != Some(BODY_TAG) {
        return;
    }
    let mut number = || words.next().and_then(|word| word.parse::<u64>().ok());
    let (Some(sender), Some(seq), Some(sent_at)) = (number(), number(), number()) else {
        return;
    };
    let stats = &shared.stats;
    let first = shared
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert((sender, seq));
    if !first {
        Stats::add(&stats.duplicates);
        stats.note(format!("message {sender}/{seq} delivered twice"));
        return;
    }
    let now = shared.plan.base.elapsed().as_micros() as u64;
    let latency = now.saturating_sub(sent_at);
    stats.latency.record(latency);
    stats.recent.record(latency);
    Stats::add(&stats.delivered);
    if matches!(phase, Phase::Send(_)) {
        Stats::add(&stats.delivered_in_window);
    }
    if let Some(window) = usize::try_from(sender)
        .ok()
        .and_then(|sender| shared.inflight.get(sender))
    {
        // Saturating: a duplicate must not wrap the window around.
        let _ = window.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        shared.wakers[sender as usize].notify_one();
    }
}

/// How the writer paces its messages.
enum Pace {
    Off,
    Rate(Interval),
    FlatOut,
}

async fn write(
    mut writer: WriteHalf<Box<dyn Io>>,
    mut replies: mpsc::Receiver<String>,
    shared: Arc<Shared>,
    me: usize,
    mut phase: watch::Receiver<Phase>,
) {
    let plan = &shared.plan;
    let mut pace = Pace::Off;
    let mut seq: u64 = 0;
    // A xorshift generator for random recipients, seeded per user.
    let mut random = (me as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let outcome: Result<()> = async {
        loop {
            let send_at = tokio::select! {
                biased;
                changed = phase.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let now = *phase.borrow_and_update();
                    pace = match now {
                        Phase::Send(start) if plan.rate_per_user > 0.0 => Pace::Rate(schedule(plan, me, start)),
                        Phase::Send(_) => Pace::FlatOut,
                        Phase::Hold | Phase::Drain => Pace::Off,
                    };
                    continue;
                }
                reply = replies.recv() => {
                    let Some(reply) = reply else { return Ok(()) };
                    writer.write_all(reply.as_bytes()).await?;
                    continue;
                }
                at = next_send(&mut pace, &shared, me) => at,
            };
            let to = if plan.random_pairs {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                (random % plan.users as u64) as usize
            } else {
                (me + 1) % plan.users
            };
            let micros = send_at.saturating_duration_since(plan.base).as_micros();
            let hint = if plan.no_store { "<no-store xmlns='urn:xmpp:hints'/>" } else { "" };
            let message = format!(
                "<message to='{}{to}@{}' type='chat' id='m{seq}'><body>{BODY_TAG} {me} {seq} {micros}</body>{hint}</message>",
                plan.user_prefix, plan.domain
            );
            seq += 1;
            if matches!(pace, Pace::FlatOut) {
                shared.inflight[me].fetch_add(1, Ordering::Relaxed);
            }
            // Counted before it goes, so that the drain never sees a message
            // delivered before it was counted as sent.
            Stats::add(&shared.stats.sent);
            writer.write_all(message.as_bytes()).await?;
        }
    }
    .await;
    if let Err(error) = outcome {
        shared.stats.note(format!("writing: {error:#}"));
    }
}

/// This user's share of the aggregate rate, its first message offset
/// within the period so that users do not send in step. A late writer
/// catches up (open loop): each message carries its scheduled time.
fn schedule(plan: &Plan, me: usize, start: Instant) -> Interval {
    let period = Duration::from_secs_f64(1.0 / plan.rate_per_user);
    let offset = period.mul_f64(me as f64 / plan.users as f64);
    let mut interval = tokio::time::interval_at((start + offset).into(), period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    interval
}

/// When the next message is due (its timestamp); pending while not sending.
async fn next_send(pace: &mut Pace, shared: &Shared, me: usize) -> Instant {
    match pace {
        Pace::Off => std::future::pending().await,
        Pace::Rate(interval) => interval.tick().await.into_std(),
        Pace::FlatOut => loop {
            let woken = shared.wakers[me].notified();
            if shared.inflight[me].load(Ordering::Relaxed) < shared.plan.window {
                return Instant::now();
            }
            woken.await;
        },
    }
}
