//! Messages (RFC 6121 §8.5): to a full JID, the session itself if it is
//! there, else as if to the bare JID; to a bare JID, the available sessions
//! of highest non-negative priority (every such session for `headline`),
//! or the offline store (XEP-0160: kept, bounded per account, with a
//! XEP-0203 delay stamp, and delivered on the next initial presence).
//! Messages and iqs pass between users whether or not they are contacts.

use ej_guest::{Context, store};

use crate::presence::{Resource, local_user};
use crate::stanza::{self, Condition};
use crate::xml::Element;
use crate::{Session, archive, carbons, keys, routing, stream, time};

/// Messages kept for one account while it is offline.
const MAX_OFFLINE: u32 = 100;

/// A message from the client.
pub fn from_client(session: &mut Session, cx: &mut Context, text: &str, el: &Element) -> Result<(), String> {
    let to = el.attr("to").map_or_else(|| session.bare(), str::to_owned);
    let Ok(target) = jid::Jid::new(&to) else {
        stanza::refuse(cx, el, Condition::BadRequest);
        return Ok(());
    };
    let full = session.full();
    let stamped = stanza::stamped(text, &full, Some(&to))?;
    let bare = target.to_bare().to_string();
    if target.node().is_none() {
        // To a server: this one has nothing to say to messages.
        let condition = if target.domain().as_str() == session.domain {
            Condition::ServiceUnavailable
        } else {
            Condition::RemoteServerNotFound
        };
        return refuse_stamped(cx, &stamped, condition);
    }
    if target.domain().as_str() != session.domain {
        return refuse_stamped(cx, &stamped, Condition::RemoteServerNotFound);
    }
    if local_user(&bare).is_none() {
        return refuse_stamped(cx, &stamped, Condition::ServiceUnavailable);
    }
    // XEP-0280: the account's other sessions see what this one sent.
    let user = session.user.clone().unwrap_or_default();
    let resource = session.resource.clone().unwrap_or_default();
    carbons::copy(cx, &user, &session.bare(), &[&resource], "sent", &stamped)?;
    // The message as delivered: `stamped`, read back from `el` rather
    // than parsed again (`stamped` changed only these two attributes).
    let delivered = el.clone().with("from", full).with("to", to.as_str());
    // XEP-0313: the sender's archive keeps it here, the receiver's where
    // it arrives (see `to_sessions`).
    let keep = archive::worth_keeping(&delivered);
    if keep && archive::prefs::wants(&user, &bare)? {
        archive::Archive::open(&session.bare())?.append(&bare, &stamped)?;
    }
    let stamped = archive::element_with_stanza_id(delivered, &bare, None);
    deliver(cx, &stamped, &target, el.attr("type"), keep && bare != session.bare())
}

/// Delivers a message (`from` and `to` set) to a local user: to the
/// session `target` names if it is there, else as to the bare JID.
/// `unarchived`: the user's archive has yet to keep it.
pub fn deliver(
    cx: &mut Context,
    stamped: &str,
    target: &jid::Jid,
    kind: Option<&str>,
    unarchived: bool,
) -> Result<(), String> {
    let bare = target.to_bare().to_string();
    if let Some(resource) = target.resource()
        && routing::is_bound(&bare, resource.as_str())
    {
        return to_sessions(cx, &bare, &[resource.as_str()], stamped, unarchived);
    }
    to_bare(cx, &bare, stamped, kind, unarchived)
}

/// Sends a message to `bare`'s sessions `chosen`, and carbons to its
/// others. A message the account has yet to archive goes to the first of
/// them alone, wrapped as [`Incoming`], and that session's event does the
/// rest (see [`incoming`]): it archives the message once, so every session
/// gets the same stanza-id, and an account's archive is written by its own
/// sessions' events alone, never racing what the account sends meanwhile.
fn to_sessions(cx: &mut Context, bare: &str, chosen: &[&str], stamped: &str, unarchived: bool) -> Result<(), String> {
    if unarchived && let Some((first, others)) = chosen.split_first() {
        routing::to_resource(cx, bare, first, Incoming::wrap(stamped, others));
        return Ok(());
    }
    for resource in chosen {
        routing::to_resource(cx, bare, resource, stamped);
    }
    let receiver = local_user(bare).unwrap_or_default();
    carbons::copy(cx, &receiver, bare, chosen, "received", stamped)
}

/// A message on its way to the session that archives it for its account
/// (see `to_sessions`), as routed: `<ej:incoming xmlns:ej='urn:ej:xmpp'>`
/// around the message and an `<ej:also resource='…'/>` for each other
/// session of the account it is for.
pub struct Incoming {
    pub message: Element,
    also: Vec<String>,
}

/// How an [`Incoming`] begins (the prefix keeps the message's default
/// namespace `jabber:client`).
const INCOMING: &str = "<ej:incoming xmlns:ej='urn:ej:xmpp'>";

impl Incoming {
    fn wrap(message: &str, also: &[&str]) -> String {
        let mut wrapped = format!("{INCOMING}{message}");
        for resource in also {
            wrapped.push_str(&format!("<ej:also resource='{}'/>", crate::xml::escape(resource)));
        }
        wrapped.push_str("</ej:incoming>");
        wrapped
    }

    /// The incoming message a routed payload is, if it is one.
    pub fn unwrap(payload: &str) -> Option<Result<Self, String>> {
        if !payload.starts_with(INCOMING) {
            return None;
        }
        Some(Element::parse(payload).and_then(|wrapper| {
            let mut elements = wrapper.children.into_iter().filter_map(|node| match node {
                crate::xml::Node::Element(element) => Some(element),
                crate::xml::Node::Text(_) => None,
            });
            let message = elements.next().ok_or("an incoming message without its message")?;
            let also = elements
                .filter_map(|also| also.attr("resource").map(str::to_owned))
                .collect();
            Ok(Self { message, also })
        }))
    }
}

/// An [`Incoming`] message for this session's account: archived (as the
/// account wants), then given with its stanza-id to this session's client
/// and to the account's other sessions it is for, with carbons to the rest.
pub fn incoming(session: &Session, cx: &mut Context, incoming: Incoming) -> Result<(), String> {
    let Incoming { mut message, also } = incoming;
    let bare = session.bare();
    let text = message.to_xml();
    archive_received(&bare, &text, &mut message)?;
    let stamped = message.to_xml();
    for resource in &also {
        routing::to_resource(cx, &bare, resource, stamped.as_str());
    }
    let mut chosen: Vec<&str> = also.iter().map(String::as_str).collect();
    chosen.push(session.resource.as_deref().unwrap_or_default());
    carbons::copy(
        cx,
        session.user.as_deref().unwrap_or_default(),
        &bare,
        &chosen,
        "received",
        &stamped,
    )?;
    cx.send(stamped);
    Ok(())
}

/// An [`Incoming`] message whose session had gone: delivered as to the
/// bare JID, still to be archived.
pub fn incoming_again(cx: &mut Context, incoming: Incoming) -> Result<(), String> {
    let Some(bare) = bare_to(&incoming.message) else {
        return Ok(());
    };
    let kind = incoming.message.attr("type").map(str::to_owned);
    to_bare(cx, &bare, &incoming.message.to_xml(), kind.as_deref(), true)
}

/// Keeps `message` (`text` as parsed) in the archive of `bare`, the
/// account it is for, if the account wants messages from its sender kept,
/// and sets its stanza-id to the record's (removing any other).
fn archive_received(bare: &str, text: &str, message: &mut Element) -> Result<(), String> {
    let from = message
        .attr("from")
        .and_then(|from| jid::Jid::new(from).ok())
        .map(|from| from.to_bare().to_string())
        .unwrap_or_default();
    let user = local_user(bare).unwrap_or_default();
    let id = if archive::prefs::wants(&user, &from)? {
        Some(archive::Archive::open(bare)?.append(&from, text)?)
    } else {
        None
    };
    archive::set_stanza_id(message, bare, id.as_deref());
    Ok(())
}

/// The bare JID a message is addressed to.
fn bare_to(el: &Element) -> Option<String> {
    el.attr("to")
        .and_then(|to| jid::Jid::new(to).ok())
        .map(|jid| jid.to_bare().to_string())
}

/// A message routed to a session that had gone: delivered as to the bare JID.
pub fn to_bare_again(cx: &mut Context, payload: &str, el: &Element) -> Result<(), String> {
    let Some(bare) = bare_to(el) else {
        return Ok(());
    };
    to_bare(cx, &bare, payload, el.attr("type"), false)
}

/// Delivery to a local user's bare JID.
fn to_bare(cx: &mut Context, bare: &str, stamped: &str, kind: Option<&str>, unarchived: bool) -> Result<(), String> {
    let Some(user) = local_user(bare) else {
        return Ok(());
    };
    let prefix = keys::resources(&user);
    let available: Vec<(String, Resource)> = store::scan(&prefix, 64)
        .into_iter()
        .filter_map(|(key, value)| {
            // A resource may hold '/' (Bind2 makes `TAG/PART`).
            let resource = key.strip_prefix(&prefix)?.to_owned();
            let record: Resource = serde_json::from_slice(&value).ok()?;
            (record.priority >= 0 && routing::is_bound(bare, &resource)).then_some((resource, record))
        })
        .collect();
    match kind {
        Some("error") => Ok(()),
        Some("groupchat") => refuse_stamped(cx, stamped, Condition::ServiceUnavailable),
        Some("headline") => {
            for (resource, _) in &available {
                routing::to_resource(cx, bare, resource, stamped);
            }
            Ok(())
        }
        _ => {
            let Some(highest) = available.iter().map(|(_, record)| record.priority).max() else {
                return store_offline(cx, bare, stamped, unarchived);
            };
            let chosen: Vec<&str> = available
                .iter()
                .filter(|(_, record)| record.priority == highest)
                .map(|(resource, _)| resource.as_str())
                .collect();
            to_sessions(cx, bare, &chosen, stamped, unarchived)
        }
    }
}

/// Keeps a message for an offline account (`bare`), stamped with when it
/// came, archiving it first if `unarchived`.
fn store_offline(cx: &mut Context, bare: &str, stamped: &str, unarchived: bool) -> Result<(), String> {
    let user = local_user(bare).unwrap_or_default();
    let kept = store::scan(&keys::offlines(&user), MAX_OFFLINE + 1);
    if kept.len() >= MAX_OFFLINE as usize {
        return refuse_stamped(cx, stamped, Condition::ServiceUnavailable);
    }
    let next = kept
        .last()
        .and_then(|(key, _)| key.rsplit('/').next()?.parse::<u64>().ok())
        .map_or(0, |seq| seq + 1);
    let mut el = Element::parse(stamped)?;
    if unarchived {
        archive_received(bare, stamped, &mut el)?;
    }
    el.children.push(crate::xml::Node::Element(time::delay(
        Some(&stream::served_domain()),
        time::now(),
    )));
    store::put(&keys::offline(&user, next), el.to_xml().as_bytes());
    Ok(())
}

/// Sends the client what was kept for it, oldest first, and forgets it.
pub fn flush_offline(session: &Session, cx: &mut Context) -> Result<(), String> {
    let user = session.user.as_deref().unwrap_or_default();
    for (key, message) in store::scan(&keys::offlines(user), MAX_OFFLINE) {
        cx.send(String::from_utf8_lossy(&message).into_owned());
        store::delete(&key);
    }
    Ok(())
}

/// Answers a stamped stanza from our client with an error (unless it is one).
fn refuse_stamped(cx: &mut Context, stamped: &str, condition: Condition) -> Result<(), String> {
    stanza::refuse(cx, &Element::parse(stamped)?, condition);
    Ok(())
}
