//! Addresses and delivery between sessions. A stanza for a user goes, as
//! text with its `from` and `to` set, to the registry address of each
//! session it is for; the receiving session decides, with its own state,
//! whether its client gets it. Besides stanzas, one notice travels this
//! way: `CONFLICT`, asking a session to give its resource up.

use ej_guest::{Context, registry};

use crate::stanza::{self, Condition};
use crate::xml::Element;
use crate::{Session, keys, message, muc, stream};

/// Asks the session holding a resource to close: a newer one binds it.
pub const CONFLICT: &str = "<conflict xmlns='urn:ej:xmpp'/>";
/// Tells a session its account was removed (by the operator).
pub const REMOVED: &str = "<removed xmlns='urn:ej:xmpp'/>";
/// Presence updates held for an inactive client (XEP-0352).
const MAX_HELD: usize = 100;
/// Sessions one account may have at once, as far as lookups go.
const MAX_RESOURCES: u32 = 64;

/// The resources of `bare` bound now.
pub fn resources(bare: &str) -> Vec<String> {
    let prefix = keys::addresses(bare);
    registry::lookup(&prefix, MAX_RESOURCES)
        .into_iter()
        .filter_map(|address| address.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

/// Whether `bare`'s session at `resource` is bound now.
pub fn is_bound(bare: &str, resource: &str) -> bool {
    let address = keys::address(bare, resource);
    registry::lookup(&address, 1).first() == Some(&address)
}

/// Sends `stanza` to `bare`'s session at `resource`.
pub fn to_resource(cx: &mut Context, bare: &str, resource: &str, stanza: impl Into<String>) {
    cx.route(keys::address(bare, resource), stanza);
}

/// Sends `stanza` to every session of `bare` (but `except`), with `to` set
/// to each full JID.
pub fn to_all(cx: &mut Context, bare: &str, stanza: &str, except: Option<&str>) -> Result<(), String> {
    for resource in resources(bare) {
        if Some(resource.as_str()) != except {
            let to = format!("{bare}/{resource}");
            to_resource(cx, bare, &resource, stanza::stamped_to(stanza, &to)?);
        }
    }
    Ok(())
}

/// A payload another session routed here.
pub fn arrived(session: &mut Session, cx: &mut Context, payload: &str) -> Result<(), String> {
    if payload == CONFLICT {
        stream::error(cx, "conflict", "replaced by a newer session with the same resource");
        return Ok(());
    }
    if payload == REMOVED {
        stream::error(cx, "not-authorized", "the account was removed");
        return Ok(());
    }
    if let Some(incoming) = message::Incoming::unwrap(payload) {
        return message::incoming(session, cx, incoming?);
    }
    let el = ej_guest::xml::Element::parse(payload)?;
    // What rooms say reaches occupants whatever their presence says.
    if el.attr("from").is_some_and(|from| muc::is_service(session, from)) {
        muc::arrived(session, payload)?;
        cx.send(payload);
        return Ok(());
    }
    let deliver = match el.name() {
        // Roster pushes (from the account itself, so no `from`) go to
        // clients that asked for the roster.
        "iq" if el.attr("from").is_none() && el.attr("type") == Some("set") => {
            let push = Element::parse(payload)?;
            push.get("query", crate::roster::NS).is_none() || session.roster
        }
        "presence" => match el.attr("type") {
            Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed") => session.roster || session.available,
            _ => session.available,
        },
        _ => true,
    };
    if !deliver {
        return Ok(());
    }
    // XEP-0352: while the client is inactive, presence updates wait (only
    // the latest from each sender).
    if session.inactive
        && el.name() == "presence"
        && !matches!(
            el.attr("type"),
            Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed")
        )
    {
        let from = el.attr("from").unwrap_or_default();
        session.held.retain(|(sender, _)| sender != from);
        if session.held.len() >= MAX_HELD {
            session.held.remove(0);
        }
        session.held.push((from.to_owned(), payload.to_owned()));
        return Ok(());
    }
    cx.send(payload);
    Ok(())
}

/// A payload this session routed to `address` found nobody. If the
/// address is still bound, the session holding it is out of reach (on
/// another node, while the routes between nodes are down): handled as
/// `busy`, never routed again (it would only come back). Else the session
/// went in the meantime: a message is handled as if sent to the bare JID,
/// a request is answered for the missing session.
pub fn bounced(session: &mut Session, cx: &mut Context, address: &str, payload: &str) -> Result<(), String> {
    if payload == CONFLICT || payload == REMOVED {
        return Ok(());
    }
    if registry::lookup(address, 1).first().map(String::as_str) == Some(address) {
        return busy(session, cx, payload);
    }
    if let Some(incoming) = message::Incoming::unwrap(payload) {
        return message::incoming_again(cx, incoming?);
    }
    let el = Element::parse(payload)?;
    if el.attr("from").is_some_and(|from| muc::is_service(session, from)) {
        return muc::bounced(session, cx, &el);
    }
    match el.name.as_str() {
        "message" => message::to_bare_again(cx, payload, &el),
        // The request carries our client's full JID as `from`: the error
        // goes back to it, from the missing session.
        "iq" => {
            stanza::refuse(cx, &el, Condition::ServiceUnavailable);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A payload this session routed was not taken: the session it was for is
/// there, but its mailbox stayed full (its client reads, or its handler
/// works, slower than stanzas come). Unlike `bounced`, nothing is re-routed
/// and no occupant leaves its rooms: the client's own messages and requests
/// come back to it as `resource-constraint` errors (type `wait`: try again
/// later); what the session sent on its own account (presence, carbons,
/// room traffic) that session misses.
pub fn busy(session: &Session, cx: &mut Context, payload: &str) -> Result<(), String> {
    if payload == CONFLICT || payload == REMOVED {
        return Ok(());
    }
    let el = match message::Incoming::unwrap(payload) {
        Some(incoming) => incoming?.message,
        None => Element::parse(payload)?,
    };
    if matches!(el.name.as_str(), "message" | "iq") && el.attr("from") == Some(session.full().as_str()) {
        stanza::refuse(cx, &el, Condition::ResourceConstraint);
    }
    Ok(())
}
