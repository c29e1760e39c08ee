//! XEP-0280 message carbons: a session that enables them gets a copy of
//! each chat message its account sends from, or receives at, another
//! session. Which sessions want copies is in the store (`keys::carbons`),
//! since the copies are made by the session handling the message.

use ej_guest::{Context, store};

use crate::roster::result;
use crate::stanza::{self, Condition};
use crate::xml::Element;
use crate::{Session, keys, routing};

pub const NS: &str = "urn:xmpp:carbons:2";
const FORWARD: &str = "urn:xmpp:forward:0";
const HINTS: &str = "urn:xmpp:hints";

/// `<enable/>` or `<disable/>` from the session.
pub fn iq(session: &Session, cx: &mut Context, el: &Element, payload: &Element) -> Result<(), String> {
    match (payload.name.as_str(), el.attr("type")) {
        ("enable", Some("set")) => enable(session),
        ("disable", Some("set")) => store::delete(&key(session)),
        _ => {
            stanza::refuse(cx, el, Condition::BadRequest);
            return Ok(());
        }
    }
    cx.send(result(el, None));
    Ok(())
}

/// The session wants copies (its `<enable/>`, or Bind2's).
pub fn enable(session: &Session) {
    store::put(&key(session), b"1");
}

/// The session's entry among those that want copies.
fn key(session: &Session) -> String {
    keys::carbons(
        session.user.as_deref().unwrap_or_default(),
        session.resource.as_deref().unwrap_or_default(),
    )
}

/// The session no longer wants copies (it is ending).
pub fn forget(session: &Session) {
    if let (Some(user), Some(resource)) = (&session.user, &session.resource) {
        store::delete(&keys::carbons(user, resource));
    }
}

/// Copies `message` (as delivered) to `user`'s sessions that enabled
/// carbons, but those in `skip` (which have it already): `sent` or
/// `received` says which way it went. The message is read only when some
/// session wants a copy.
pub fn copy(
    cx: &mut Context,
    user: &str,
    bare: &str,
    skip: &[&str],
    direction: &str,
    message: &str,
) -> Result<(), String> {
    let prefix = keys::carbon_copies(user);
    let wanting: Vec<String> = store::scan(&prefix, 64)
        .into_iter()
        .filter_map(|(key, _)| key.strip_prefix(&prefix).map(str::to_owned))
        .filter(|resource| !skip.contains(&resource.as_str()) && routing::is_bound(bare, resource))
        .collect();
    if wanting.is_empty() {
        return Ok(());
    }
    let el = Element::parse(message)?;
    let eligible = matches!(el.attr("type"), Some("chat"))
        && el.get("private", NS).is_none()
        && el.get("no-copy", HINTS).is_none()
        && el.get("received", NS).is_none()
        && el.get("sent", NS).is_none();
    if !eligible {
        return Ok(());
    }
    for resource in &wanting {
        let full = format!("{bare}/{resource}");
        let wrapped = Element::new("message", crate::xml::CLIENT)
            .with("from", bare)
            .with("to", full.as_str())
            .with("type", "chat")
            .child(Element::new(direction, NS).child(Element::new("forwarded", FORWARD).child(el.clone())))
            .to_xml();
        routing::to_resource(cx, bare, resource, wrapped);
    }
    Ok(())
}
