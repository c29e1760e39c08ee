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
    let stamped = archived(session, &stamped, delivered, &bare)?;
    deliver(cx, &stamped, &target, el.attr("type"))
}

/// XEP-0313: keeps a message (`stamped`, which is `el` as text) in the
/// sender's and the receiver's archives (as each wants), and returns it
/// with the receiver's stanza-id.
fn archived(session: &Session, stamped: &str, el: Element, to: &str) -> Result<String, String> {
    let from = session.bare();
    let mut id = None;
    if archive::worth_keeping(&el) {
        let sender = session.user.as_deref().unwrap_or_default();
        if archive::prefs::wants(sender, to)? {
            archive::Archive::open(&from)?.append(to, stamped)?;
        }
        let receiver = local_user(to).unwrap_or_default();
        if to != from && archive::prefs::wants(&receiver, &from)? {
            id = Some(archive::Archive::open(to)?.append(&from, stamped)?);
        }
    }
    Ok(archive::element_with_stanza_id(el, to, id.as_deref()))
}

/// Delivers a message (`from` and `to` set) to a local user: to the
/// session `target` names if it is there, else as to the bare JID.
pub fn deliver(cx: &mut Context, stamped: &str, target: &jid::Jid, kind: Option<&str>) -> Result<(), String> {
    let bare = target.to_bare().to_string();
    if let Some(resource) = target.resource()
        && routing::is_bound(&bare, resource.as_str())
    {
        routing::to_resource(cx, &bare, resource.as_str(), stamped);
        let receiver = local_user(&bare).unwrap_or_default();
        return carbons::copy(cx, &receiver, &bare, &[resource.as_str()], "received", stamped);
    }
    to_bare(cx, &bare, stamped, kind)
}

/// A message routed to a session that had gone: delivered as to the bare JID.
pub fn to_bare_again(cx: &mut Context, payload: &str, el: &Element) -> Result<(), String> {
    let Some(bare) = el
        .attr("to")
        .and_then(|to| jid::Jid::new(to).ok())
        .map(|jid| jid.to_bare().to_string())
    else {
        return Ok(());
    };
    to_bare(cx, &bare, payload, el.attr("type"))
}

/// Delivery to a local user's bare JID.
fn to_bare(cx: &mut Context, bare: &str, stamped: &str, kind: Option<&str>) -> Result<(), String> {
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
                return store_offline(cx, &user, stamped);
            };
            let chosen: Vec<&str> = available
                .iter()
                .filter(|(_, record)| record.priority == highest)
                .map(|(resource, _)| resource.as_str())
                .collect();
            for resource in &chosen {
                routing::to_resource(cx, bare, resource, stamped);
            }
            carbons::copy(cx, &user, bare, &chosen, "received", stamped)
        }
    }
}

/// Keeps a message for an offline account, stamped with when it came.
fn store_offline(cx: &mut Context, user: &str, stamped: &str) -> Result<(), String> {
    let kept = store::scan(&keys::offlines(user), MAX_OFFLINE + 1);
    if kept.len() >= MAX_OFFLINE as usize {
        return refuse_stamped(cx, stamped, Condition::ServiceUnavailable);
    }
    let next = kept
        .last()
        .and_then(|(key, _)| key.rsplit('/').next()?.parse::<u64>().ok())
        .map_or(0, |seq| seq + 1);
    let mut el = Element::parse(stamped)?;
    el.children.push(crate::xml::Node::Element(time::delay(
        Some(&stream::served_domain()),
        time::now(),
    )));
    store::put(&keys::offline(user, next), el.to_xml().as_bytes());
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
