//! Event notifications (XEP-0163 §4.3, XEP-0060 §7.1.2): headline
//! messages from the owner's bare JID to every available session that
//! wants news of the node — the owner's own and those of the contacts the
//! access model lets see it, whose entity capabilities list `NODE+notify`,
//! blocking either way excepted — and the last item of each node a session
//! wants when it becomes available, or when its account starts seeing the
//! owner's presence (§4.3.2).

use ej_guest::Context;

use super::caps::Interests;
use super::config::SendLast;
use super::node::Node;
use super::{Account, EVENT, Request, Standing};
use crate::presence::{self, local_user};
use crate::roster::Roster;
use crate::xml::{CLIENT, Element};
use crate::{Session, blocking, routing, stream};

/// Notifications one event routes at most (the host takes 4096 actions).
const MAX_ROUTED: usize = 2000;

/// `<event><items node='…'>children</items></event>`.
pub fn items(node: &str, children: impl IntoIterator<Item = Element>) -> Element {
    let mut items = Element::new("items", EVENT).with("node", node);
    for child in children {
        items = items.child(child);
    }
    about(items)
}

/// `<event>child</event>`.
pub fn about(child: Element) -> Element {
    Element::new("event", EVENT).child(child)
}

/// Sends `event` about `node` to every session that wants it; `lighter`
/// instead, if given, when copies of `event` to all of them would not fit
/// in what one event may send.
pub fn event(
    cx: &mut Context,
    request: &Request,
    node: &Node,
    event: &Element,
    lighter: Option<&Element>,
) -> Result<(), String> {
    let (session, account) = (request.session, &request.account);
    let targets = recipients(account, node)?;
    let id = stream::random_id();
    let size = message(&account.bare, &session.full(), &id, event).len();
    let mut budget = crate::sm::route_budget(session);
    let event = match lighter {
        Some(lighter) if size.saturating_mul(targets.len()) > budget => lighter,
        _ => event,
    };
    for full in targets.into_iter().take(MAX_ROUTED) {
        let text = message(&account.bare, &full, &id, event);
        if !spend(&mut budget, &text) {
            break;
        }
        if full == session.full() {
            cx.send(text);
        } else if let Some((bare, resource)) = full.split_once('/') {
            routing::to_resource(cx, bare, resource, text);
        }
    }
    Ok(())
}

/// The full JIDs of the available sessions that want news of `node`.
fn recipients(account: &Account, node: &Node) -> Result<Vec<String>, String> {
    let mut accounts = vec![account.bare.clone()];
    if node.config.access.allows(Standing::Subscriber).is_ok() {
        let roster = Roster::load(&account.user)?;
        let subscribers = roster.items.iter().filter(|(_, item)| item.subscription.from());
        accounts.extend(
            subscribers
                .map(|(contact, _)| contact.clone())
                .filter(|contact| !blocked(account, contact)),
        );
    }
    let mut interests = Interests::default();
    let mut targets = Vec::new();
    for bare in accounts {
        for (full, resource) in presence::current(&bare)? {
            if interests.of(&resource.presence).contains(&node.name) {
                targets.push(full);
            }
        }
    }
    Ok(targets)
}

/// Sends the session the last item of each node in `interests` that it
/// may see, of its own account and of each contact whose presence it
/// sees, as far as half of what one event may send goes (the presence
/// that led here has more to send).
pub fn last_items(session: &Session, cx: &mut Context, interests: &[String]) -> Result<(), String> {
    if interests.is_empty() {
        return Ok(());
    }
    let own = Account::of(session);
    let roster = Roster::load(&own.user)?;
    let contacts = roster.items.iter().filter(|(_, item)| item.subscription.to());
    let mut accounts = vec![(own, Standing::Owner)];
    for (contact, _) in contacts {
        if let Some(account) = Account::at(contact)
            && !blocked(&account, &session.bare())
        {
            accounts.push((account, Standing::Subscriber));
        }
    }
    let full = session.full();
    let mut budget = crate::sm::send_budget(session) / 2;
    for (account, standing) in &accounts {
        for name in interests {
            if let Some(text) = last_item(account, name, *standing, SendLast::OnSubAndPresence, &full)? {
                if !spend(&mut budget, &text) {
                    return Ok(());
                }
                cx.send(text);
            }
        }
    }
    Ok(())
}

/// `subscriber` (a bare JID) may now see the presence of `owner` (one):
/// its sessions get the last item of each of `owner`'s nodes they want
/// and may see (auto-subscription, XEP-0163 §4.3.2).
pub fn subscribed(cx: &mut Context, owner: &str, subscriber: &str) -> Result<(), String> {
    let Some(account) = Account::at(owner) else {
        return Ok(());
    };
    if blocked(&account, subscriber) {
        return Ok(());
    }
    let mut interests = Interests::default();
    let mut budget = crate::SEND_BUDGET / 2;
    for (full, resource) in presence::current(subscriber)? {
        for name in interests.of(&resource.presence) {
            if let Some(text) = last_item(&account, name, Standing::Subscriber, SendLast::OnSub, &full)? {
                if !spend(&mut budget, &text) {
                    return Ok(());
                }
                if let Some((bare, resource)) = full.split_once('/') {
                    routing::to_resource(cx, bare, resource, text);
                }
            }
        }
    }
    Ok(())
}

/// The notification of the last item of `account`'s node `name` for `to`,
/// of `standing`, if the node sends it `when` (on subscription, or on
/// subscription and presence too) and `standing` may see it.
fn last_item(
    account: &Account,
    name: &str,
    standing: Standing,
    when: SendLast,
    to: &str,
) -> Result<Option<String>, String> {
    let Some(node) = Node::load(&account.user, name)? else {
        return Ok(None);
    };
    // `never` sends on neither, `on_sub` on subscription only.
    if node.config.send_last < when || node.config.access.allows(standing).is_err() {
        return Ok(None);
    }
    let Some((id, payload)) = node.last() else {
        return Ok(None);
    };
    let Ok(payload) = Element::parse(&payload) else {
        return Ok(None);
    };
    let event = items(name, [Element::new("item", EVENT).with("id", id).child(payload)]);
    Ok(Some(message(&account.bare, to, &stream::random_id(), &event)))
}

/// Takes `text` out of `budget`; false if it does not fit.
fn spend(budget: &mut usize, text: &str) -> bool {
    match budget.checked_sub(text.len()) {
        Some(left) => {
            *budget = left;
            true
        }
        None => false,
    }
}

/// Whether blocking stands between `account` and `contact` (a bare JID),
/// either way (XEP-0163 §4.3.1 with XEP-0191).
fn blocked(account: &Account, contact: &str) -> bool {
    blocking::blocks(&account.user, contact)
        || local_user(contact).is_some_and(|other| blocking::blocks(&other, &account.bare))
}

/// A notification: a headline from the owner's bare JID.
fn message(from: &str, to: &str, id: &str, event: &Element) -> String {
    Element::new("message", CLIENT)
        .with("from", from)
        .with("to", to)
        .with("type", "headline")
        .with("id", id)
        .child(event.clone())
        .to_xml()
}
