//! Presence (RFC 6121 §3–§4): the subscription state machine, with both
//! sides' rosters changed in the same event (the store makes it one
//! transaction); availability broadcast to the contacts allowed to see it
//! and to the account's other sessions; the presence of contacts sent to a
//! client on its initial presence (what a probe would fetch, read straight
//! from the store); and unavailable presence when a session ends.

use ej_guest::{Context, store};
use serde::{Deserialize, Serialize};

use crate::roster::{Item, Roster, Subscription};
use crate::stanza::{self, Condition};
use crate::xml::{CLIENT, Element};
use crate::{Session, blocking, keys, message, muc, pep, routing, time};

/// A session's current availability, for others to read.
#[derive(Serialize, Deserialize)]
pub struct Resource {
    pub priority: i8,
    /// The presence stanza it broadcast last, `from` its full JID, no `to`.
    pub presence: String,
}

/// A presence stanza from the client.
pub fn from_client(session: &mut Session, cx: &mut Context, text: &str, el: &Element) -> Result<(), String> {
    let kind = el.attr("type");
    let Some(to) = el.attr("to") else {
        return match kind {
            None => available(session, cx, text, el),
            Some("unavailable") => unavailable(session, cx, text),
            _ => Ok(()),
        };
    };
    let Ok(target) = jid::Jid::new(to) else {
        stanza::refuse(cx, el, Condition::BadRequest);
        return Ok(());
    };
    let contact = target.to_bare().to_string();
    match kind {
        Some("subscribe") => subscribe(session, cx, &contact),
        Some("subscribed") => subscribed(session, cx, &contact),
        Some("unsubscribe") => unsubscribe(session, cx, &contact),
        Some("unsubscribed") => unsubscribed(session, cx, &contact),
        Some("probe" | "error") => Ok(()),
        // Directed presence: to one session, or every session of a user.
        _ => {
            let stamped = stanza::stamped(text, &session.full(), None)?;
            let bare = target.to_bare().to_string();
            match target.resource() {
                Some(resource) => routing::to_resource(cx, &bare, resource.as_str(), stamped),
                None => routing::to_all(cx, &bare, &stamped, None)?,
            }
            Ok(())
        }
    }
}

/// Available presence to no one in particular: broadcast, and on the
/// first one, the contacts' presence, waiting requests and offline
/// messages go to the client.
fn available(session: &mut Session, cx: &mut Context, text: &str, el: &Element) -> Result<(), String> {
    let user = session.user.clone().unwrap_or_default();
    let resource = session.resource.clone().unwrap_or_default();
    let priority = el
        .child_text("priority", CLIENT)
        .and_then(|text| text.trim().parse::<i8>().ok())
        .unwrap_or(0);
    let stamped = stanza::stamped(text, &session.full(), None)?;
    pep::caps::available(session, cx, el)?;
    store::put_json(
        &keys::resource(&user, &resource),
        &Resource {
            priority,
            presence: stamped.clone(),
        },
    )?;
    let initial = !session.available;
    session.available = true;
    session.priority = priority;
    broadcast(session, cx, &stamped)?;
    if initial {
        let roster = Roster::load(&user)?;
        let full = session.full();
        // What probes would bring back: every available session of each
        // contact whose presence this account may see, and of its own.
        let mut seen: Vec<&str> = roster
            .items
            .iter()
            .filter(|(_, item)| item.subscription.to())
            .map(|(jid, _)| jid.as_str())
            .collect();
        let bare = session.bare();
        seen.push(&bare);
        for contact in seen {
            for (from, presence) in current(contact)? {
                if from != full {
                    cx.send(stanza::stamped_to(&presence.presence, &full)?);
                }
            }
        }
        for (_, request) in store::scan(&keys::pendings(&user), 1000) {
            cx.send(stanza::stamped_to(&String::from_utf8_lossy(&request), &full)?);
        }
        if priority >= 0 {
            message::flush_offline(session, cx)?;
        }
    }
    Ok(())
}

/// Unavailable presence to no one in particular.
fn unavailable(session: &mut Session, cx: &mut Context, text: &str) -> Result<(), String> {
    let user = session.user.clone().unwrap_or_default();
    store::delete(&keys::resource(&user, session.resource.as_deref().unwrap_or_default()));
    session.available = false;
    // XEP-0012: when the account's last session goes, remember when.
    if current(&session.bare())?.is_empty() {
        store::put_json(&keys::last(&user), &time::now())?;
    }
    let stamped = stanza::stamped(text, &session.full(), None)?;
    broadcast(session, cx, &stamped)?;
    // RFC 6121 §4.6.3: whoever had directed presence, rooms included.
    muc::leave_all(session, cx)
}

/// The session is ending: if it was available, it says unavailable.
pub fn gone(session: &mut Session, cx: &mut Context) -> Result<(), String> {
    if session.available {
        let text = format!(
            "<presence type='unavailable' from='{}'/>",
            crate::xml::escape(&session.full())
        );
        unavailable(session, cx, &text)?;
    }
    Ok(())
}

/// Sends `presence` to the contacts allowed to see it and to the
/// account's sessions.
fn broadcast(session: &Session, cx: &mut Context, presence: &str) -> Result<(), String> {
    let user = session.user.as_deref().unwrap_or_default();
    let roster = Roster::load(user)?;
    let full = session.full();
    for (contact, _) in roster.items.iter().filter(|(_, item)| item.subscription.from()) {
        // XEP-0191: no presence to a contact blocked either way.
        let blocked_by = local_user(contact).is_some_and(|other| blocking::blocks(&other, &full));
        if !blocked_by && !blocking::blocks(user, contact) {
            routing::to_all(cx, contact, presence, None)?;
        }
    }
    // RFC 6121 §4.2.2, §4.4.2: the account's sessions too, the one that
    // sent it included.
    routing::to_all(cx, &session.bare(), presence, None)
}

/// The available sessions of local user `bare`: each one's full JID and
/// presence. A record whose session is not bound (left by a server that
/// was killed) is not one.
pub fn current(bare: &str) -> Result<Vec<(String, Resource)>, String> {
    let Some(user) = local_user(bare) else {
        return Ok(Vec::new());
    };
    let prefix = keys::resources(&user);
    Ok(store::scan(&prefix, 64)
        .into_iter()
        .filter_map(|(key, value)| {
            let resource = key.strip_prefix(&prefix)?;
            let record = serde_json::from_slice(&value).ok()?;
            routing::is_bound(bare, resource).then(|| (format!("{bare}/{resource}"), record))
        })
        .collect())
}

/// XEP-0012: seconds since `to` (a local account whose presence the
/// session's account may see) was last online; 0 while it is.
pub fn last_activity(session: &Session, to: &str) -> Option<u64> {
    let user = local_user(to)?;
    let bare = jid::BareJid::new(to).ok()?.to_string();
    let allowed = Roster::load(&user)
        .ok()?
        .items
        .get(&session.bare())
        .is_some_and(|item| item.subscription.from());
    if !allowed {
        return None;
    }
    if !current(&bare).ok()?.is_empty() {
        return Some(0);
    }
    let since: u64 = store::get_json(&keys::last(&user)).ok().flatten()?;
    Some(time::now().saturating_sub(since))
}

/// The local part of `bare` if it is an account of this server.
pub fn local_user(bare: &str) -> Option<String> {
    let jid = jid::BareJid::new(bare).ok()?;
    if jid.domain().as_str() != crate::stream::served_domain() {
        return None;
    }
    let user = jid.node()?.as_str().to_owned();
    store::get(&keys::account(&user)).map(|_| user)
}

/// A subscription presence from `from` to `to`, as delivered.
fn notice(kind: &str, from: &str, to: &str) -> String {
    Element::new("presence", CLIENT)
        .with("type", kind)
        .with("from", from)
        .with("to", to)
        .to_xml()
}

/// The account asks to see `contact`'s presence (§3.1).
fn subscribe(session: &mut Session, cx: &mut Context, contact: &str) -> Result<(), String> {
    let (user, bare) = (session.user.clone().unwrap_or_default(), session.bare());
    let Some(other) = local_user(contact) else {
        // No such account (or another server, which ej does not reach).
        cx.send(notice("unsubscribed", contact, &bare));
        return Ok(());
    };
    let mut mine = Roster::load(&user)?;
    let mut item = mine.items.get(contact).cloned().unwrap_or_default();
    if !item.subscription.to() && !item.ask {
        item.ask = true;
        mine.change(cx, &user, &bare, contact, Some(item))?;
    }
    let mut theirs = Roster::load(&other)?;
    let their_item = theirs.items.get(&bare).cloned();
    match their_item {
        Some(their) if their.subscription.from() => subscribed_by(cx, contact, &user, &bare),
        Some(mut their) if their.approved => {
            their.approved = false;
            their.subscription = Subscription::with(their.subscription.to(), true);
            theirs.change(cx, &other, contact, &bare, Some(their))?;
            subscribed_by(cx, contact, &user, &bare)
        }
        _ => {
            let request = notice("subscribe", &bare, contact);
            store::put(&keys::pending(&other, &bare), request.as_bytes());
            routing::to_all(cx, contact, &request, None)
        }
    }
}

/// `contact` has let `bare` (account `user`) see its presence: `bare`'s
/// roster says so, and its sessions hear it and get `contact`'s presence.
fn subscribed_by(cx: &mut Context, contact: &str, user: &str, bare: &str) -> Result<(), String> {
    let mut mine = Roster::load(user)?;
    let mut item = mine.items.get(contact).cloned().unwrap_or_default();
    let changed = item.ask || !item.subscription.to();
    item.ask = false;
    item.subscription = Subscription::with(true, item.subscription.from());
    if changed {
        mine.change(cx, user, bare, contact, Some(item))?;
    }
    routing::to_all(cx, bare, &notice("subscribed", contact, bare), None)?;
    for (_, presence) in current(contact)? {
        routing::to_all(cx, bare, &presence.presence, None)?;
    }
    if changed {
        pep::subscribed(cx, contact, bare)?;
    }
    Ok(())
}

/// The account lets `contact` see its presence (§3.2), or approves it in
/// advance if nothing was asked (§3.4).
fn subscribed(session: &mut Session, cx: &mut Context, contact: &str) -> Result<(), String> {
    let (user, bare) = (session.user.clone().unwrap_or_default(), session.bare());
    let mut mine = Roster::load(&user)?;
    let asked = store::get(&keys::pending(&user, contact)).is_some();
    let mut item = mine.items.get(contact).cloned().unwrap_or_default();
    if !asked {
        if !item.subscription.from() && !item.approved {
            item.approved = true;
            mine.change(cx, &user, &bare, contact, Some(item))?;
        }
        return Ok(());
    }
    store::delete(&keys::pending(&user, contact));
    item.subscription = Subscription::with(item.subscription.to(), true);
    mine.change(cx, &user, &bare, contact, Some(item))?;
    if let Some(other) = local_user(contact) {
        subscribed_by(cx, &bare, &other, contact)?;
    }
    Ok(())
}

/// The account stops seeing `contact`'s presence (§3.3).
fn unsubscribe(session: &mut Session, cx: &mut Context, contact: &str) -> Result<(), String> {
    let (user, bare) = (session.user.clone().unwrap_or_default(), session.bare());
    let mut mine = Roster::load(&user)?;
    if let Some(mut item) = mine.items.get(contact).cloned() {
        item.ask = false;
        item.subscription = Subscription::with(false, item.subscription.from());
        mine.change(cx, &user, &bare, contact, Some(item))?;
    }
    if let Some(other) = local_user(contact) {
        lose_subscriber(cx, &other, contact, &bare)?;
        routing::to_all(cx, contact, &notice("unsubscribe", &bare, contact), None)?;
        for (from, _) in current(contact)? {
            routing::to_all(cx, &bare, &unavailable_from(&from), None)?;
        }
    }
    Ok(())
}

/// The account stops `contact` seeing its presence, or refuses its
/// request (§3.2.2).
fn unsubscribed(session: &mut Session, cx: &mut Context, contact: &str) -> Result<(), String> {
    let (user, bare) = (session.user.clone().unwrap_or_default(), session.bare());
    lose_subscriber(cx, &user, &bare, contact)?;
    if let Some(other) = local_user(contact) {
        let mut theirs = Roster::load(&other)?;
        if let Some(mut item) = theirs.items.get(&bare).cloned() {
            item.ask = false;
            item.subscription = Subscription::with(false, item.subscription.from());
            theirs.change(cx, &other, contact, &bare, Some(item))?;
        }
        routing::to_all(cx, contact, &notice("unsubscribed", &bare, contact), None)?;
        for (from, _) in current(&bare)? {
            routing::to_all(cx, contact, &unavailable_from(&from), None)?;
        }
    }
    Ok(())
}

/// `subscriber` no longer sees the presence of `bare` (account `user`).
fn lose_subscriber(cx: &mut Context, user: &str, bare: &str, subscriber: &str) -> Result<(), String> {
    store::delete(&keys::pending(user, subscriber));
    let mut roster = Roster::load(user)?;
    if let Some(mut item) = roster.items.get(subscriber).cloned()
        && (item.subscription.from() || item.approved)
    {
        item.approved = false;
        item.subscription = Subscription::with(item.subscription.to(), false);
        roster.change(cx, user, bare, subscriber, Some(item))?;
    }
    Ok(())
}

/// A roster item was removed (§2.5.2): the subscriptions it had end.
pub fn cancel_on_remove(
    session: &mut Session,
    cx: &mut Context,
    contact: &str,
    was: Subscription,
) -> Result<(), String> {
    let bare = session.bare();
    store::delete(&keys::pending(session.user.as_deref().unwrap_or_default(), contact));
    let Some(other) = local_user(contact) else {
        return Ok(());
    };
    let mut theirs = Roster::load(&other)?;
    if let Some(item) = theirs.items.get(&bare).cloned() {
        let item = Item {
            subscription: Subscription::with(
                item.subscription.to() && !was.from(),
                item.subscription.from() && !was.to(),
            ),
            ask: false,
            ..item
        };
        theirs.change(cx, &other, contact, &bare, Some(item))?;
    }
    if was.to() {
        routing::to_all(cx, contact, &notice("unsubscribe", &bare, contact), None)?;
    }
    if was.from() {
        routing::to_all(cx, contact, &notice("unsubscribed", &bare, contact), None)?;
        for (from, _) in current(&bare)? {
            routing::to_all(cx, contact, &unavailable_from(&from), None)?;
        }
    }
    Ok(())
}

fn unavailable_from(from: &str) -> String {
    Element::new("presence", CLIENT)
        .with("type", "unavailable")
        .with("from", from)
        .to_xml()
}
