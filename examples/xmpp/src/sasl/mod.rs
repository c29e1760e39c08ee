//! SASL authentication (RFC 6120 §6): SCRAM-SHA-1 and SCRAM-SHA-256
//! (RFC 5802, RFC 7677), their -PLUS variants bound to the TLS channel
//! (RFC 9266 `tls-exporter`, RFC 5929 `tls-server-end-point`, advertised as
//! XEP-0440 asks), and PLAIN over TLS only. One exchange may span several
//! events, so what it needs between them is kept in [`Exchange`], part of
//! the connection's state.

mod plain;
mod scram;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ej_guest::{Context, TlsInfo};
use serde::{Deserialize, Serialize};

use crate::Session;
use crate::stream;
use crate::xml::Element;

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
}

/// The `<mechanisms/>` feature (and the channel bindings on offer).
pub fn offer(tls: Option<&TlsInfo>) -> String {
    let mut mechanisms = String::new();
    let bindings = tls.map(channel_bindings).unwrap_or_default();
    if !bindings.is_empty() {
        mechanisms.push_str("<mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism>");
    }
    mechanisms.push_str("<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>");
    if tls.is_some() {
        mechanisms.push_str("<mechanism>PLAIN</mechanism>");
    }
    let mut offer = format!("<mechanisms xmlns='{NS}'>{mechanisms}</mechanisms>");
    if !bindings.is_empty() {
        let types: String = bindings
            .iter()
            .map(|(name, _)| format!("<channel-binding type='{name}'/>"))
            .collect();
        offer.push_str(&format!(
            "<sasl-channel-binding xmlns='{CHANNEL_BINDING}'>{types}</sasl-channel-binding>"
        ));
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

/// One SASL element from the client: `<auth/>`, `<response/>` or `<abort/>`.
pub fn step(session: &mut Session, cx: &mut Context, el: &Element) -> Result<(), String> {
    let content = el.content();
    let data = match content.trim() {
        "=" => Vec::new(),
        text => match BASE64.decode(text) {
            Ok(data) => data,
            Err(_) => return fail(session, cx, "incorrect-encoding"),
        },
    };
    let result = match el.name.as_str() {
        "auth" => {
            let mechanism = el.attr("mechanism").unwrap_or_default();
            if mechanism == "PLAIN" {
                if cx.conn().tls.is_none() {
                    return fail(session, cx, "encryption-required");
                }
                plain::authenticate(session, &data)
            } else {
                let Some((hash, plus)) = scram::mechanism(mechanism) else {
                    return fail(session, cx, "invalid-mechanism");
                };
                match scram::first(session, cx, hash, plus, &data) {
                    Ok(challenge) => {
                        cx.send(format!(
                            "<challenge xmlns='{NS}'>{}</challenge>",
                            BASE64.encode(challenge)
                        ));
                        return Ok(());
                    }
                    Err(condition) => Err(condition),
                }
            }
        }
        "response" => match session.sasl.take() {
            Some(exchange) => scram::last(session, cx, exchange, &data),
            None => Err("malformed-request"),
        },
        "abort" => Err("aborted"),
        _ => Err("malformed-request"),
    };
    match result {
        Ok(Success { user, additional }) => {
            session.user = Some(user);
            session.sasl = None;
            let additional = additional.map(|data| BASE64.encode(data)).unwrap_or_default();
            cx.send(format!("<success xmlns='{NS}'>{additional}</success>"));
            // The client opens a new stream, now authenticated, and may send
            // stanzas as large as the host allows.
            cx.reset_stream();
            cx.max_stanza(u32::MAX);
            Ok(())
        }
        Err(condition) => fail(session, cx, condition),
    }
}

/// An account proved who it is.
pub struct Success {
    pub user: String,
    /// The server's final message (SCRAM's `v=`).
    pub additional: Option<Vec<u8>>,
}

/// Tells the client it failed; past `MAX_FAILURES` on one connection, closes it.
fn fail(session: &mut Session, cx: &mut Context, condition: &str) -> Result<(), String> {
    session.sasl = None;
    session.failures = session.failures.saturating_add(1);
    cx.send(format!("<failure xmlns='{NS}'><{condition}/></failure>"));
    if session.failures >= MAX_FAILURES {
        stream::error(cx, "policy-violation", "too many failed authentication attempts");
    }
    Ok(())
}

/// The account a client names, normalised (nodeprep), if it is a valid
/// local part at all.
pub fn account_name(name: &str, domain: &str) -> Option<String> {
    let jid = jid::BareJid::new(&format!("{name}@{domain}")).ok()?;
    jid.node().map(|node| node.as_str().to_owned())
}
