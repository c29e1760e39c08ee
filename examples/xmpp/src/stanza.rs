//! Stanzas from a bound client: each is stamped with the client's full JID
//! (RFC 6120 §8.1.2.1) and handed to the module for its kind; and the
//! stanza errors (RFC 6120 §8.3) the server answers with.

use ej_guest::Context;

use crate::xml::{CLIENT, Element};
use crate::{Session, blocking, iq, keepalive, message, muc, presence};

/// XEP-0352 client state indication.
pub const CSI: &str = "urn:xmpp:csi:0";

pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// A stanza from the client, after binding.
pub fn from_client(session: &mut Session, cx: &mut Context, text: &str, el: Element) -> Result<(), String> {
    keepalive::heard(cx);
    if let Some(to) = el.attr("to").and_then(|to| jid::Jid::new(to).ok())
        && el.ns == CLIENT
        && to.domain().as_str() == muc::service(&session.domain)
    {
        return muc::from_client(session, cx, text, &el, &to);
    }
    if let Some(to) = el.attr("to")
        && el.ns == CLIENT
        && blocked(session, cx, &el, to)
    {
        return Ok(());
    }
    match (el.name.as_str(), el.ns.as_str()) {
        ("message", CLIENT) => message::from_client(session, cx, text, &el),
        ("presence", CLIENT) => presence::from_client(session, cx, text, &el),
        ("iq", CLIENT) => iq::from_client(session, cx, text, &el),
        ("inactive", CSI) => {
            session.inactive = true;
            Ok(())
        }
        ("active", CSI) => {
            session.inactive = false;
            for (_, presence) in std::mem::take(&mut session.held) {
                cx.send(presence);
            }
            Ok(())
        }
        // XEP-0388: authenticating again is a stream error.
        (_, crate::sasl::sasl2::NS) => {
            crate::stream::error(cx, "policy-violation", "already authenticated");
            Ok(())
        }
        // Nonzas the server does not offer (stream management, …) are
        // ignored, as the client was never told they would work.
        _ => Ok(()),
    }
}

/// Whether blocking stops a stanza to `to` (XEP-0191 §3.4–3.5): the
/// account blocked it (it is told), or it is an account that blocked this
/// one (as if it were not there). Presence is dropped silently.
fn blocked(session: &Session, cx: &mut Context, el: &Element, to: &str) -> bool {
    let user = session.user.as_deref().unwrap_or_default();
    if blocking::blocks(user, to) {
        if el.name != "presence" {
            blocking::refuse_outgoing(cx, &stamped_element(el, session));
        }
        return true;
    }
    let target = jid::Jid::new(to)
        .ok()
        .and_then(|jid| presence::local_user(&jid.to_bare().to_string()));
    if target.is_some_and(|target| blocking::blocks(&target, &session.full())) {
        if el.name != "presence" {
            refuse(cx, &stamped_element(el, session), Condition::ServiceUnavailable);
        }
        return true;
    }
    false
}

/// `el` with the client's full JID as `from`.
fn stamped_element(el: &Element, session: &Session) -> Element {
    let mut el = el.clone();
    el.set_attr("from", session.full());
    el
}

/// The conditions the server answers with.
#[derive(Clone, Copy, Debug)]
pub enum Condition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    ItemNotFound,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    RegistrationRequired,
    RemoteServerNotFound,
    ServiceUnavailable,
    ResourceConstraint,
}

impl Condition {
    fn name(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Conflict => "conflict",
            Self::FeatureNotImplemented => "feature-not-implemented",
            Self::Forbidden => "forbidden",
            Self::ItemNotFound => "item-not-found",
            Self::NotAcceptable => "not-acceptable",
            Self::NotAllowed => "not-allowed",
            Self::NotAuthorized => "not-authorized",
            Self::RegistrationRequired => "registration-required",
            Self::RemoteServerNotFound => "remote-server-not-found",
            Self::ServiceUnavailable => "service-unavailable",
            Self::ResourceConstraint => "resource-constraint",
        }
    }

    /// The error type RFC 6120 §8.3.3 gives the condition.
    fn kind(self) -> &'static str {
        match self {
            Self::BadRequest | Self::NotAcceptable => "modify",
            Self::NotAuthorized | Self::Forbidden | Self::RegistrationRequired => "auth",
            Self::ResourceConstraint => "wait",
            _ => "cancel",
        }
    }
}

/// The error answering `el` (which must not itself be an error): its kind
/// and id, `to` and `from` swapped.
pub fn error_reply(el: &Element, condition: Condition) -> String {
    error_element(el, condition).to_xml()
}

/// The same, as an element to add to (its last child is `<error/>`).
pub fn error_element(el: &Element, condition: Condition) -> Element {
    Element::new(&el.name, CLIENT)
        .with("type", "error")
        .with_opt("id", el.attr("id"))
        .with_opt("to", el.attr("from"))
        .with_opt("from", el.attr("to"))
        .child(
            Element::new("error", CLIENT)
                .with("type", condition.kind())
                .child(Element::new(condition.name(), STANZAS)),
        )
}

/// Answers `el` with an error unless it is an error or a result itself
/// (which must never be answered).
pub fn refuse(cx: &mut Context, el: &Element, condition: Condition) {
    if !matches!(el.attr("type"), Some("error" | "result")) {
        cx.send(error_reply(el, condition));
    }
}

/// The stanza text with `from` set to `from` (and `to` to `to`, if given),
/// every other byte as the client sent it.
pub fn stamped(text: &str, from: &str, to: Option<&str>) -> Result<String, String> {
    let root = ej_guest::xml::Element::parse(text)?;
    let mut changes = vec![("from", Some(from))];
    if let Some(to) = to {
        changes.push(("to", Some(to)));
    }
    Ok(root.set_attrs(&changes))
}

/// The stanza text with `to` set, every other byte as it was.
pub fn stamped_to(text: &str, to: &str) -> Result<String, String> {
    Ok(ej_guest::xml::Element::parse(text)?.set_attrs(&[("to", Some(to))]))
}
