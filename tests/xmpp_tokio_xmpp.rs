//! tokio-xmpp, a real XMPP client library (Rust, from the xmpp-rs project),
//! against the real `ej` binary serving the XMPP handler (`examples/xmpp`)
//! on 127.0.0.1 for `localhost`: logging in over plain TCP (SCRAM), over
//! STARTTLS trusting only the server's self-signed certificate (SCRAM with
//! `tls-exporter` channel binding), a chat message between two of its
//! clients, and a wrong password; and two nodes of a cluster, alice on one
//! and bob on the other, while NATS between them stops and starts again,
//! and bob logging in again on one after the other was killed.
//!
//! tokio-xmpp is built without DNS and without TLS of its own (only its
//! `insecure-tcp` feature): its own STARTTLS connector (feature `starttls`,
//! which brings the hickory DNS resolver) builds its own `ClientConfig`
//! from the system's or webpki's roots, with no way to pass one. So the STARTTLS test gives it [`StartTls`], a
//! [`ServerConnector`] (the library's extension point for transports) that
//! negotiates `<starttls/>` with the library's own XML stream and runs the
//! handshake with rustls (ring) trusting only `tls/localhost.crt`; the
//! library does the rest (SASL, the stream restart, binding, stanzas).
//!
//! Each test runs the library on a current-thread tokio runtime and keeps
//! what it logs (through the `log` crate, into `tracing-subscriber`): every
//! element it sent and received. A failing assertion shows that XML and the
//! server's log.

mod common;

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::Duration;

use common::nats::Nats;
use common::postgres::Postgres;
use common::tls::ClientTls;
use common::{Server, wait_until};
use futures::{SinkExt as _, StreamExt as _};
use sasl::common::{ChannelBinding, Credentials};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{ClientConfig, ProtocolVersion};
use tokio_xmpp::connect::{DnsConfig, ServerConnector, TcpServerConnector};
use tokio_xmpp::error::{AuthError, Error, ProtocolError};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::message::{Lang, Message, MessageType};
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::parsers::sasl::DefinedCondition;
use tokio_xmpp::parsers::{ns, starttls};
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmppStreamElement, initiate_stream,
};
use tokio_xmpp::{Client, Event, IqRequest, IqResponse, Stanza};

/// The account passwords every test creates.
const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");

/// How long one scenario may take.
const SCENARIO: Duration = Duration::from_secs(20);

/// The XMPP handler, served with `flags` and `accounts` (name, password)
/// created.
fn server_with(flags: &[&str], accounts: &[(&str, &str)]) -> Server {
    let server = Server::start("xmpp", flags);
    for (name, password) in accounts {
        server.command(&["user", "add", name, password]);
    }
    server
}

fn jid(name: &str) -> BareJid {
    BareJid::new(&format!("{name}@localhost")).expect("a JID")
}

/// tokio-xmpp's plain-TCP connector, to the server's address (no DNS).
fn plain(server: &Server) -> TcpServerConnector {
    TcpServerConnector::from(DnsConfig::addr(&server.addr.to_string()))
}

/// A client logging in as `account` over plain TCP.
fn plain_client(server: &Server, (name, password): (&str, &str)) -> Client {
    Client::new_with_connector(jid(name), password, plain(server), Timeouts::tight())
}

/// A client logging in as `account` over STARTTLS, trusting only the
/// server's certificate.
fn starttls_client(server: &Server, (name, password): (&str, &str)) -> Client {
    Client::new_with_connector(jid(name), password, StartTls::to(server), Timeouts::tight())
}

/// Connects to the server, upgrades the stream with `<starttls/>`, and
/// runs the TLS handshake with `config` for the JID's domain: the
/// transport the library's SASL and binding then run over.
#[derive(Clone, Debug)]
struct StartTls {
    addr: SocketAddr,
    config: Arc<ClientConfig>,
}

impl StartTls {
    fn to(server: &Server) -> Self {
        let trusted = server.data_dir.join("tls/localhost.crt");
        Self {
            addr: server.addr,
            config: ClientTls::trusting(&trusted, "localhost").config,
        }
    }
}

impl ServerConnector for StartTls {
    type Stream = BufStream<TlsStream<TcpStream>>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), Error> {
        let domain = jid.domain().as_str();
        let header = || StreamHeader {
            to: Some(Cow::Borrowed(domain)),
            from: None,
            id: None,
        };
        let tcp = TcpStream::connect(self.addr).await?;
        let stream = initiate_stream(BufStream::new(tcp), ns, header(), timeouts).await?;
        let (features, mut stream) = stream.recv_features().await?;
        if !features.can_starttls() {
            return Err(ProtocolError::NoTls.into());
        }
        let request = starttls::Nonza::Request(starttls::Request);
        stream.send(&XmppStreamElement::Starttls(request)).await?;
        loop {
            match stream
                .next()
                .await
                .map(|read| read.and_then(|element: FallibleStreamElement| element.into_read_error()))
            {
                Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
                Some(Err(ReadError::SoftTimeout)) => {}
                Some(Ok(other)) => {
                    let why = format!("expected <proceed/>, got {other:?}");
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why).into());
                }
                Some(Err(ReadError::HardError(error))) => return Err(error.into()),
                Some(Err(ReadError::ParseError(error))) => {
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, error).into());
                }
                Some(Err(ReadError::StreamFooterReceived)) | None => return Err(Error::Disconnected),
            }
        }
        let tcp = stream.into_inner().into_inner();
        let name = domain.to_owned().try_into().map_err(std::io::Error::other)?;
        let tls = TlsConnector::from(Arc::clone(&self.config)).connect(name, tcp).await?;
        // As tokio-xmpp's own connector does: `tls-exporter` on TLS 1.3
        // (so it picks SCRAM-…-PLUS), no binding on TLS 1.2.
        let (_, session) = tls.get_ref();
        let binding = if session.protocol_version() == Some(ProtocolVersion::TLSv1_3) {
            let exported = session
                .export_keying_material([0; 32], b"EXPORTER-Channel-Binding", None)
                .map_err(std::io::Error::other)?;
            ChannelBinding::TlsExporter(exported.to_vec())
        } else {
            ChannelBinding::None
        };
        let stream = initiate_stream(BufStream::new(tls), ns, header(), timeouts).await?;
        Ok((stream, binding))
    }
}

thread_local! {
    /// What tokio-xmpp logged on this thread: each test runs it on its own
    /// current-thread runtime, so these are that test's lines.
    static LOG: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Appends to this thread's [`LOG`].
struct ThreadLog;

impl std::io::Write for ThreadLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.with(|log| log.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What tokio-xmpp logged in this test so far (its `SEND` and `RECV`
/// lines are the XML it exchanged).
fn logged() -> String {
    LOG.with(|log| String::from_utf8_lossy(&log.borrow()).into_owned())
}

/// Runs `scenario` on a fresh current-thread runtime, keeping what
/// tokio-xmpp logs; fails the test, with that log and the server's, if it
/// takes longer than [`SCENARIO`].
fn run<T>(server: &Server, scenario: impl Future<Output = T>) -> T {
    static LOGGER: Once = Once::new();
    LOGGER.call_once(|| {
        // tracing-subscriber (with its `tracing-log` feature) also takes
        // the `log` crate's records, which is what tokio-xmpp writes to.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("tokio_xmpp=trace"))
            .with_ansi(false)
            .with_writer(|| ThreadLog)
            .try_init();
    });
    LOG.with(|log| log.borrow_mut().clear());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime
        .block_on(async { tokio::time::timeout(SCENARIO, scenario).await })
        .unwrap_or_else(|_| panic!("the scenario timed out{}", report(server)))
}

/// Everything there is to know when an assertion fails: the XML
/// tokio-xmpp exchanged, and the server's log of its connections.
fn report(server: &Server) -> String {
    let mut lines = vec![String::new(), "tokio-xmpp's log:".to_owned(), logged()];
    lines.push("the server's log:".to_owned());
    lines.extend(common::scenario::server_log(server));
    lines.join("\n")
}

/// Waits for `client` to be online; returns the JID it was bound to.
async fn online(server: &Server, client: &mut Client) -> Jid {
    loop {
        match client.next().await {
            Some(Event::Online { bound_jid, .. }) => return bound_jid,
            Some(Event::Stanza(_)) => {}
            Some(Event::Disconnected(error)) => {
                panic!("disconnected before going online: {error}{}", report(server))
            }
            None => panic!("the client ended before going online{}", report(server)),
        }
    }
}

/// Waits for the next stanza `client` receives that `wanted` picks.
async fn stanza<T>(server: &Server, client: &mut Client, wanted: impl Fn(Stanza) -> Option<T>) -> T {
    loop {
        match client.next().await {
            Some(Event::Stanza(stanza)) => {
                if let Some(found) = wanted(stanza) {
                    return found;
                }
            }
            Some(Event::Online { .. }) => {}
            Some(Event::Disconnected(error)) => panic!("disconnected: {error}{}", report(server)),
            None => panic!("the client ended{}", report(server)),
        }
    }
}

/// Asserts that `jid` is `name@localhost` with a resource the server chose.
fn assert_bound(server: &Server, jid: &Jid, name: &str) {
    assert_eq!(jid.to_bare(), self::jid(name), "bound to {jid}{}", report(server));
    let resource = jid.resource().map(|resource| resource.as_str());
    assert!(
        resource.is_some_and(|resource| !resource.is_empty()),
        "no resource in {jid}{}",
        report(server)
    );
}

/// Asserts that tokio-xmpp authenticated with `mechanism`.
fn assert_mechanism(server: &Server, mechanism: &str) {
    let log = logged();
    let sent = log
        .lines()
        .filter(|line| line.contains("SEND") && line.contains("urn:ietf:params:xml:ns:xmpp-sasl"))
        .find(|line| line.contains("<auth"))
        .unwrap_or_else(|| panic!("no <auth/> sent{}", report(server)));
    assert!(
        sent.contains(&format!("mechanism=\"{mechanism}\"")) || sent.contains(&format!("mechanism='{mechanism}'")),
        "expected {mechanism}: {sent}{}",
        report(server)
    );
}

#[test]
fn logs_in_over_plain_tcp() {
    let server = server_with(&[], &[ALICE]);
    let bound = run(&server, async {
        let mut alice = plain_client(&server, ALICE);
        let bound = online(&server, &mut alice).await;
        assert_eq!(
            alice.bound_jid().map(|full| Jid::from(full.clone())),
            Some(bound.clone())
        );
        alice.send_end().await.expect("closing the stream");
        bound
    });
    assert_bound(&server, &bound, ALICE.0);
    // The strongest mechanism tokio-xmpp knows; no channel binding on TCP.
    assert_mechanism(&server, "SCRAM-SHA-256");
    assert!(
        server.logs_of("TLS started").is_empty(),
        "TLS on a plain connection{}",
        report(&server)
    );
}

#[test]
fn logs_in_over_starttls_trusting_only_the_servers_certificate() {
    let server = server_with(&[], &[ALICE]);
    let bound = run(&server, async {
        let mut alice = starttls_client(&server, ALICE);
        let bound = online(&server, &mut alice).await;
        alice.send_end().await.expect("closing the stream");
        bound
    });
    assert_bound(&server, &bound, ALICE.0);
    assert!(!server.logs_of("TLS started").is_empty(), "no TLS{}", report(&server));
    // TLS 1.3, so the connector hands tokio-xmpp a tls-exporter binding.
    assert_mechanism(&server, "SCRAM-SHA-256-PLUS");
}

#[test]
fn alice_and_bob_exchange_a_message() {
    let server = server_with(&[], &[ALICE, BOB]);
    run(&server, async {
        let mut bob = starttls_client(&server, BOB);
        online(&server, &mut bob).await;
        // Bob becomes available; the server's answer to a ping (XEP-0199)
        // means it has handled his presence (a connection's stanzas go in
        // order).
        bob.send_stanza(Presence::available().into())
            .await
            .expect("sending bob's presence");
        let server_jid = Jid::new("localhost").expect("a JID");
        let pong = bob.send_iq(Some(server_jid), IqRequest::Get(Ping.into())).await.await;
        assert!(
            matches!(pong, Ok(IqResponse::Result(_))),
            "ping: {pong:?}{}",
            report(&server)
        );

        let mut alice = starttls_client(&server, ALICE);
        let alice_jid = online(&server, &mut alice).await;
        let body = "Hello from tokio-xmpp <&> ☃";
        let message = Message::chat(Jid::from(jid(BOB.0))).with_body(Lang::default(), body.to_owned());
        alice
            .send_stanza(message.into())
            .await
            .expect("sending alice's message");

        let received = stanza(&server, &mut bob, |stanza| match stanza {
            Stanza::Message(message) if !message.bodies.is_empty() => Some(message),
            _ => None,
        })
        .await;
        assert_eq!(
            received.from.as_ref(),
            Some(&alice_jid),
            "{received:?}{}",
            report(&server)
        );
        assert_eq!(received.type_, MessageType::Chat, "{received:?}{}", report(&server));
        let got = received.get_best_body_cloned(vec![]).map(|(_, body)| body);
        assert_eq!(got.as_deref(), Some(body), "{received:?}{}", report(&server));

        alice.send_end().await.expect("closing alice's stream");
        bob.send_end().await.expect("closing bob's stream");
    });
}

#[test]
fn a_wrong_password_fails_authentication() {
    let server = server_with(&[], &[ALICE]);
    run(&server, async {
        // tokio-xmpp's SASL step on its own (what its Client runs after
        // connecting): the failure comes back as an error.
        let alice = Jid::from(jid(ALICE.0));
        let (stream, binding) = plain(&server)
            .connect(&alice, ns::JABBER_CLIENT, Timeouts::tight())
            .await
            .expect("connecting");
        let (features, stream) = stream.recv_features().await.expect("stream features");
        let credentials = Credentials::default()
            .with_username(ALICE.0)
            .with_password("not-alices-password")
            .with_channel_binding(binding);
        match tokio_xmpp::client_login(stream, features.sasl_mechanisms, credentials).await {
            Err(Error::Auth(AuthError::Fail(DefinedCondition::NotAuthorized))) => {}
            Err(other) => panic!("expected not-authorized, got {other}{}", report(&server)),
            Ok(_) => panic!("authenticated with a wrong password{}", report(&server)),
        }

        // The Client itself keeps retrying (with a growing delay) and never
        // goes online; it logs each failure.
        let mut client =
            Client::new_with_connector(jid(ALICE.0), "not-alices-password", plain(&server), Timeouts::tight());
        let outcome = tokio::time::timeout(Duration::from_secs(3), client.next()).await;
        assert!(
            outcome.is_err(),
            "expected no event, got {outcome:?}{}",
            report(&server)
        );
        let log = logged();
        assert!(
            log.contains("Failed to connect: authentication error: failure from the server: NotAuthorized"),
            "no authentication failure logged{}",
            report(&server)
        );
    });
}

/// Whether `node`'s `ej status` says NATS is `state` (connected or
/// disconnected).
fn nats_is(node: &Server, state: &str) -> Option<()> {
    node.status().contains(&format!("nats {state}\n")).then_some(())
}

#[test]
fn across_two_nodes_a_message_arrives_and_while_nats_is_down_comes_back_as_an_error() {
    let postgres = Postgres::start("tokio-xmpp");
    let mut nats = Nats::start();
    let cluster = ["--store", postgres.url.as_str(), "--cluster", nats.url.as_str()];
    let first = server_with(&cluster, &[ALICE, BOB]);
    let second = Server::start("xmpp", &cluster);
    run(&first, async {
        let mut bob = plain_client(&second, BOB);
        online(&second, &mut bob).await;
        bob.send_stanza(Presence::available().into())
            .await
            .expect("sending bob's presence");
        let server_jid = Jid::new("localhost").expect("a JID");
        let pong = bob.send_iq(Some(server_jid), IqRequest::Get(Ping.into())).await.await;
        assert!(matches!(pong, Ok(IqResponse::Result(_))), "ping: {pong:?}");
        let mut alice = plain_client(&first, ALICE);
        online(&first, &mut alice).await;
        let to_bob = |body: &str| {
            let message = Message::chat(Jid::from(jid(BOB.0))).with_body(Lang::default(), body.to_owned());
            message.into()
        };
        let body_of = |stanza: Stanza| match stanza {
            Stanza::Message(message) => message.get_best_body_cloned(vec![]).map(|(_, body)| body),
            _ => None,
        };

        alice.send_stanza(to_bob("before")).await.expect("sending");
        assert_eq!(stanza(&second, &mut bob, body_of).await, "before");

        // NATS stops: alice's message cannot reach bob's node, and comes
        // back to her as an error to retry later, not kept nor lost.
        nats.stop();
        wait_until(|| nats_is(&first, "disconnected"));
        alice.send_stanza(to_bob("during")).await.expect("sending");
        stanza(&first, &mut alice, |stanza| match stanza {
            Stanza::Message(message) if message.type_ == MessageType::Error => Some(message),
            _ => None,
        })
        .await;
        assert!(
            logged().contains("resource-constraint"),
            "expected a resource-constraint error{}",
            report(&first)
        );

        nats.resume();
        wait_until(|| nats_is(&first, "connected"));
        wait_until(|| nats_is(&second, "connected"));
        alice.send_stanza(to_bob("after")).await.expect("sending");
        // The next bob gets: "during" was not delivered late either.
        assert_eq!(stanza(&second, &mut bob, body_of).await, "after");
        alice.send_end().await.expect("closing alice's stream");
        bob.send_end().await.expect("closing bob's stream");
    });
}

#[test]
fn after_its_node_is_killed_a_user_logs_in_again_on_another_with_the_same_resource() {
    let postgres = Postgres::start("tokio-xmpp-killed");
    let nats = Nats::start();
    let flags = [
        "--store",
        postgres.url.as_str(),
        "--cluster",
        nats.url.as_str(),
        "--node-heartbeat",
        "250ms",
        "--node-timeout",
        "2s",
    ];
    let first = server_with(&flags, &[BOB]);
    let second = Server::start("xmpp", &flags);
    let phone = Jid::new("bob@localhost/phone").expect("a JID");
    run(&second, async {
        let mut bob = Client::new_with_connector(phone.clone(), BOB.1, plain(&first), Timeouts::tight());
        assert_eq!(online(&first, &mut bob).await, phone);
        first.signal("KILL");
        // Like a real client, bob tries again until he is in: his resource
        // is held by the dead node until a live one finds it silent (2 s),
        // and a bind that waits longer than the handler's retries is
        // refused with a conflict meanwhile.
        for attempt in 1.. {
            let mut again = Client::new_with_connector(phone.clone(), BOB.1, plain(&second), Timeouts::tight());
            let in_again = loop {
                match again.next().await {
                    Some(Event::Online { bound_jid, .. }) => break Some(bound_jid),
                    Some(Event::Stanza(_)) => {}
                    Some(Event::Disconnected(_)) | None => break None,
                }
            };
            if let Some(bound) = in_again {
                assert_eq!(bound, phone, "{}", report(&second));
                again.send_end().await.expect("closing bob's stream");
                break;
            }
            assert!(attempt < 8, "bob could not log in again{}", report(&second));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}
