//! Resource binding (RFC 6120 §7, and for Bind2, XEP-0386, inside SASL2).
//! A session holds the registry address of its full JID; a client asking
//! for a resource another session of the same account holds takes it over:
//! the older session is told to close with a `<conflict/>` stream error,
//! and the bind is tried again until the address is free (a few tries,
//! `RETRY_MS` apart).

use ej_guest::{Context, registry};
use serde::{Deserialize, Serialize};

use crate::stanza::{self, Condition};
use crate::stream::{self, BIND};
use crate::xml::Element;
use crate::{Session, bind2, keys, routing};

/// The timer tag of a bind waiting for its resource.
pub const RETRY: &str = "bind";
const RETRY_MS: u32 = 50;
/// Tries before a bind gives up with `<conflict/>`.
const MAX_TRIES: u8 = 40;

/// A bind waiting for an older session to release the resource.
#[derive(Serialize, Deserialize)]
pub struct Waiting {
    /// The iq to answer, if it was not answered yet.
    id: Option<String>,
    resource: String,
    tries: u8,
    /// The SASL2 success to send once bound, for a Bind2 request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bind2: Option<bind2::Pending>,
}

/// A stanza after authentication and before binding: only the bind iq.
pub fn before_bind(session: &mut Session, cx: &mut Context, el: &Element) -> Result<(), String> {
    let bind = el.get("bind", BIND);
    match (el.name.as_str(), el.attr("type"), bind) {
        ("iq", Some("set"), Some(bind)) if session.binding.is_none() => {
            let asked = bind.child_text("resource", BIND).unwrap_or_default();
            let resource = if asked.trim().is_empty() {
                stream::random_id()
            } else {
                match jid::FullJid::new(&format!("{}/{}", session.bare(), asked.trim())) {
                    Ok(full) => full.resource().as_str().to_owned(),
                    Err(_) => {
                        cx.send(stanza::error_reply(el, Condition::BadRequest));
                        return Ok(());
                    }
                }
            };
            let id = el.attr("id").unwrap_or_default().to_owned();
            try_bind(
                session,
                cx,
                Waiting {
                    id: Some(id),
                    resource,
                    tries: 0,
                    bind2: None,
                },
            );
        }
        ("iq", Some("get" | "set"), _) => cx.send(stanza::error_reply(el, Condition::NotAuthorized)),
        _ => stream::error(cx, "not-authorized", "bind a resource first"),
    }
    Ok(())
}

/// Binds `resource` for a Bind2 request (XEP-0386); its SASL2 success
/// goes out once the resource is bound.
pub fn inline(session: &mut Session, cx: &mut Context, resource: String, pending: bind2::Pending) {
    let waiting = Waiting {
        id: None,
        resource,
        tries: 0,
        bind2: Some(pending),
    };
    try_bind(session, cx, waiting);
}

/// Binds the resource if it is free; else asks its holder to leave and
/// tries again shortly.
fn try_bind(session: &mut Session, cx: &mut Context, mut waiting: Waiting) {
    let address = keys::address(&session.bare(), &waiting.resource);
    let held = registry::lookup(&address, 1).first() == Some(&address);
    if held {
        if waiting.tries >= MAX_TRIES {
            match waiting.id {
                Some(id) => cx.send(format!(
                    "<iq type='error' id='{}'><error type='cancel'><conflict xmlns='{}'/></error></iq>",
                    crate::xml::escape(&id),
                    stanza::STANZAS
                )),
                None => stream::error(cx, "conflict", "the resource is held by another session"),
            }
            session.binding = None;
            return;
        }
        if waiting.tries == 0 {
            cx.route(address, routing::CONFLICT);
        }
        waiting.tries += 1;
        session.binding = Some(waiting);
        cx.set_timer(RETRY, RETRY_MS);
        return;
    }
    cx.bind(address);
    session.resource = Some(waiting.resource);
    session.binding = None;
    if let Some(id) = waiting.id {
        cx.send(
            Element::new("iq", crate::xml::CLIENT)
                .with("type", "result")
                .with("id", id)
                .child(Element::new("bind", BIND).child(Element::new("jid", BIND).text(session.full())))
                .to_xml(),
        );
    }
    if let Some(pending) = waiting.bind2 {
        bind2::bound(session, cx, pending);
    }
}

/// The timer of a waiting bind.
pub fn retry(session: &mut Session, cx: &mut Context) -> Result<(), String> {
    if let Some(waiting) = session.binding.take() {
        try_bind(session, cx, waiting);
    }
    Ok(())
}

/// Another session took the address first, in the instant between our
/// lookup and our bind: ask it to leave and bind again (the client already
/// has its answer).
pub fn refused(session: &mut Session, cx: &mut Context, address: &str) -> Result<(), String> {
    let Some(resource) = session.resource.take() else {
        return Ok(());
    };
    if keys::address(&session.bare(), &resource) == address {
        cx.route(address, routing::CONFLICT);
        session.binding = Some(Waiting {
            id: None,
            resource,
            tries: 1,
            bind2: None,
        });
        cx.set_timer(RETRY, RETRY_MS);
    } else {
        session.resource = Some(resource);
    }
    Ok(())
}
