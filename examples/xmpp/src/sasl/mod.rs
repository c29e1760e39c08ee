//! SASL authentication: SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802,
//! RFC 7677), their -PLUS variants bound to the TLS channel (RFC 9266
//! `tls-exporter`, RFC 5929 `tls-server-end-point`, advertised as XEP-0440
//! asks), and PLAIN over TLS only; spoken in two profiles that drive the
//! same mechanism code: RFC 6120 §6 (here) and XEP-0388 SASL2
//! ([`sasl2`], over TLS only, with Bind2 and FAST tokens inline). One
//! exchange may span several events, so what it needs between them is kept
//! in [`Exchange`], part of the connection's state.

mod fast;
mod plain;
pub mod sasl2;
mod scram;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ej_guest::{Context, TlsInfo};
use serde::{Deserialize, Serialize};

use crate::Session;
use crate::stream;
use crate::xml::Element;

pub use fast::forget as forget_tokens;
pub use scram::Hash;

pub const NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const CHANNEL_BINDING: &str = "urn:xmpp:sasl-cb:0";
/// Failed attempts a connection may make before it is closed.
const MAX_FAILURES: u8 = 5;

/// A SCRAM exchange between its first and its last message.
#[derive(Clone, Serialize, Deserialize)]
pub struct Exchange {
    hash: Hash,
    /// The account, if there is one by that name (an unknown name still
    /// gets a challenge, so names cannot be probed).
    user: Option<String>,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    /// The SASL2 `<authenticate/>` this exchange answers; `None` for RFC
    /// 6120 SASL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sasl2: Option<sasl2::Request>,
}

/// The mechanisms this connection may use, strongest first.
fn mechanisms(tls: Option<&TlsInfo>) -> Vec<&'static str> {
    let mut mechanisms = Vec::new();
    if tls.is_some_and(|tls| !channel_bindings(tls).is_empty()) {
        mechanisms.extend(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"]);
    }
    mechanisms.extend(["SCRAM-SHA-256", "SCRAM-SHA-1"]);
    if tls.is_some() {
        mechanisms.push("PLAIN");
    }
    mechanisms
}

/// The authentication features: `<mechanisms/>`, the channel bindings on
/// offer (XEP-0440) and, over TLS, SASL2's `<authentication/>`.
pub fn offer(tls: Option<&TlsInfo>) -> String {
    let mechanisms = mechanisms(tls);
    let listed: String = mechanisms
        .iter()
        .map(|name| format!("<mechanism>{name}</mechanism>"))
        .collect();
    let mut offer = format!("<mechanisms xmlns='{NS}'>{listed}</mechanisms>");
    let bindings = tls.map(channel_bindings).unwrap_or_default();
    if !bindings.is_empty() {
        let types: String = bindings
            .iter()
            .map(|(name, _)| format!("<channel-binding type='{name}'/>"))
            .collect();
        offer.push_str(&format!(
            "<sasl-channel-binding xmlns='{CHANNEL_BINDING}'>{types}</sasl-channel-binding>"
        ));
    }
    if tls.is_some() {
        offer.push_str(&sasl2::feature(&mechanisms).to_xml());
    }
    offer
}

/// The channel bindings this connection can prove, by name.
fn channel_bindings(tls: &TlsInfo) -> Vec<(&'static str, &[u8])> {
    [
        ("tls-exporter", tls.tls_exporter.as_slice()),
        ("tls-server-end-point", tls.tls_server_end_point.as_slice()),
    ]
    .into_iter()
    .filter(|(_, data)| !data.is_empty())
    .collect()
}

/// What a mechanism answers one message of the client with.
enum Step {
    /// A challenge for the client to respond to.
    Challenge(Vec<u8>),
    /// The client proved who it is.
    Done(Success),
}

/// An account proved who it is.
pub struct Success {
    pub user: String,
    /// The server's final message (SCRAM's `v=`, HT's responder proof).
    pub additional: Option<Vec<u8>>,
}

/// The client's first message for `mechanism` (its initial response).
fn start(session: &mut Session, cx: &Context, mechanism: &str, data: &[u8]) -> Result<Step, &'static str> {
    if mechanism == "PLAIN" {
        if cx.conn().tls.is_none() {
            return Err("encryption-required");
        }
        return plain::authenticate(session, data).map(Step::Done);
    }
    let (hash, plus) = scram::mechanism(mechanism).ok_or("invalid-mechanism")?;
    scram::first(session, cx, hash, plus, data).map(Step::Challenge)
}

/// The client's response to the challenge of `exchange`.
fn respond(session: &Session, cx: &Context, exchange: Exchange, data: &[u8]) -> Result<Step, &'static str> {
    scram::last(session, cx, exchange, data).map(Step::Done)
}

/// Base64 as SASL carries it (whitespace around it ignored).
fn decode(text: &str) -> Result<Vec<u8>, &'static str> {
    BASE64.decode(text.trim()).map_err(|_| "incorrect-encoding")
}

/// One RFC 6120 SASL element from the client: `<auth/>`, `<response/>` or
/// `<abort/>`.
pub fn step(session: &mut Session, cx: &mut Context, el: &Element) -> Result<(), String> {
    let content = el.content();
    let data = match content.trim() {
        "=" => Ok(Vec::new()),
        text => decode(text),
    };
    let result = data.and_then(|data| match el.name.as_str() {
        "auth" => start(session, cx, el.attr("mechanism").unwrap_or_default(), &data),
        "response" => match session.sasl.take() {
            Some(exchange) if exchange.sasl2.is_none() => respond(session, cx, exchange, &data),
            _ => Err("malformed-request"),
        },
        "abort" => Err("aborted"),
        _ => Err("malformed-request"),
    });
    match result {
        Ok(Step::Challenge(challenge)) => {
            cx.send(format!(
                "<challenge xmlns='{NS}'>{}</challenge>",
                BASE64.encode(challenge)
            ));
        }
        Ok(Step::Done(Success { user, additional })) => {
            session.user = Some(user);
            session.sasl = None;
            let additional = additional.map(|data| BASE64.encode(data)).unwrap_or_default();
            cx.send(format!("<success xmlns='{NS}'>{additional}</success>"));
            // The client opens a new stream, now authenticated, and may send
            // stanzas as large as the host allows.
            cx.reset_stream();
            cx.max_stanza(u32::MAX);
        }
        Err(condition) => fail(session, cx, format!("<failure xmlns='{NS}'><{condition}/></failure>")),
    }
    Ok(())
}

/// Sends `failure` (the profile's element saying why) and counts the
/// attempt; past `MAX_FAILURES` on one connection, closes it.
fn fail(session: &mut Session, cx: &mut Context, failure: String) {
    session.sasl = None;
    session.failures = session.failures.saturating_add(1);
    cx.send(failure);
    if session.failures >= MAX_FAILURES {
        stream::error(cx, "policy-violation", "too many failed authentication attempts");
    }
}

/// The account a client names, normalised (nodeprep), if it is a valid
/// local part at all.
pub fn account_name(name: &str, domain: &str) -> Option<String> {
    let jid = jid::BareJid::new(&format!("{name}@{domain}")).ok()?;
    jid.node().map(|node| node.as_str().to_owned())
}

/// Compares without stopping at the first difference.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}
