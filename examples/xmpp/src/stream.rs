//! Stream negotiation (RFC 6120 §4–§6): the server's stream header with a
//! fresh id, the features offered at each stage (STARTTLS, then SASL or
//! SASL2, then resource binding unless Bind2 did it), STARTTLS itself
//! through the host's `start-tls`, and stream errors.

use std::sync::OnceLock;

use ej_guest::Context;

use crate::Session;
use crate::sasl;
use crate::xml::{Element, escape};

pub const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
const CAPS: &str = "http://jabber.org/protocol/caps";

/// The largest stanza accepted before the client authenticates: SASL and
/// STARTTLS elements are small, and an unauthenticated peer gets little.
pub const MAX_STANZA_BEFORE_AUTH: u32 = 16 * 1024;

/// The domain served when the store names none (`config/domain`).
pub const DEFAULT_DOMAIN: &str = "localhost";

/// The client opened (or reopened) its stream: answer with ours and the
/// features of this stage.
pub fn open(session: &mut Session, cx: &mut Context, header: &str) -> Result<(), String> {
    let header = ej_guest::xml::Element::parse(header)?;
    session.stream_id = random_id();
    let domain = served_domain();
    let asked = header.attr("to").unwrap_or_default().to_lowercase();
    cx.send(format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
         id='{}' from='{}' version='1.0' xml:lang='en'>",
        session.stream_id,
        escape(&domain)
    ));
    if asked != domain {
        error(cx, "host-unknown", "this server does not serve that domain");
        return Ok(());
    }
    if header.namespace() != Some("http://etherx.jabber.org/streams") {
        error(
            cx,
            "invalid-namespace",
            "the stream's namespace is not http://etherx.jabber.org/streams",
        );
        return Ok(());
    }
    session.domain = domain;
    if session.user.is_none() {
        cx.max_stanza(MAX_STANZA_BEFORE_AUTH);
    }
    cx.send(features(session, cx));
    Ok(())
}

/// What the client may do next.
pub fn features(session: &Session, cx: &Context) -> String {
    let mut features = String::from("<stream:features>");
    if session.user.is_none() {
        if cx.conn().tls.is_none() {
            features.push_str(&format!("<starttls xmlns='{TLS}'/>"));
        }
        features.push_str(&sasl::offer(cx.conn().tls.as_ref()));
        if crate::register::open() {
            features.push_str(crate::register::FEATURE);
        }
    } else {
        // After SASL2 with Bind2 the resource is bound already.
        if session.resource.is_none() {
            features.push_str(&format!(
                "<bind xmlns='{BIND}'/><session xmlns='{SESSION}'><optional/></session>"
            ));
        }
        features.push_str(&format!(
            "<csi xmlns='{}'/>{}<c xmlns='{CAPS}' hash='sha-1' node='{}' ver='{}'/>",
            crate::stanza::CSI,
            crate::sm::feature(session),
            crate::iq::CAPS_NODE,
            crate::iq::caps_ver()
        ));
    }
    features.push_str("</stream:features>");
    features
}

/// A stanza before authentication: STARTTLS or SASL, nothing else.
pub fn before_auth(session: &mut Session, cx: &mut Context, el: &Element) -> Result<(), String> {
    match (el.name.as_str(), el.ns.as_str()) {
        ("starttls", TLS) if cx.conn().tls.is_none() => {
            cx.send(format!("<proceed xmlns='{TLS}'/>"));
            cx.start_tls();
        }
        (_, sasl::NS) => sasl::step(session, cx, el)?,
        (_, sasl::sasl2::NS) => sasl::sasl2::step(session, cx, el)?,
        ("iq", crate::xml::CLIENT) => match el.get("query", crate::register::NS) {
            Some(query) => crate::register::before_auth(session, cx, el, query)?,
            None => crate::stanza::refuse(cx, el, crate::stanza::Condition::NotAuthorized),
        },
        _ => error(cx, "not-authorized", "authenticate first"),
    }
    Ok(())
}

/// Sends a stream error and closes the stream.
pub fn error(cx: &mut Context, condition: &str, text: &str) {
    cx.close(Some(format!(
        "<stream:error><{condition} xmlns='{STREAMS}'/><text xmlns='{STREAMS}'>{}</text></stream:error></stream:stream>",
        escape(text)
    )));
}

/// The domain this server serves. Read once per event (every event has a
/// fresh instance, so this is per event): only the operator sets it, with
/// `ej store`, between events.
pub fn served_domain() -> String {
    static DOMAIN: OnceLock<String> = OnceLock::new();
    DOMAIN
        .get_or_init(|| {
            ej_guest::store::get("config/domain")
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .unwrap_or_else(|| DEFAULT_DOMAIN.to_owned())
        })
        .clone()
}

/// A random identifier (stream ids, generated resources, nonces).
pub fn random_id() -> String {
    let bytes: [u8; 12] = crate::random::bytes();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
