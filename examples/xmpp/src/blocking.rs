//! XEP-0191 blocking: an account's block list, and its enforcement both
//! ways — nothing from a blocked JID reaches the account, and the account
//! sends nothing to one (it is told why: `<blocked/>`). Changes are pushed
//! to the account's sessions that asked for the list.

use ej_guest::{Context, store};

use crate::roster::result;
use crate::stanza::{self, Condition};
use crate::xml::{CLIENT, Element};
use crate::{Session, keys, routing};

pub const NS: &str = "urn:xmpp:blocking";
const ERRORS: &str = "urn:xmpp:blocking:errors";
/// JIDs one account may block.
const MAX_BLOCKED: usize = 1000;

/// An account's blocked JIDs (bare, full or domain JIDs, as given).
fn load(user: &str) -> Result<Vec<String>, String> {
    Ok(store::get_json(&keys::blocklist(user))?.unwrap_or_default())
}

/// Whether `user`'s block list covers `jid` (a JID blocks itself, its
/// bare JID's resources, and a domain every account there).
pub fn blocks(user: &str, jid: &str) -> bool {
    let Ok(list) = load(user) else {
        return false;
    };
    let Ok(jid) = jid::Jid::new(jid) else {
        return false;
    };
    let bare = jid.to_bare().to_string();
    let domain = jid.domain().as_str().to_owned();
    list.iter()
        .any(|blocked| *blocked == jid.to_string() || *blocked == bare || *blocked == domain)
}

/// Refuses a stanza from our client to a JID it blocked.
pub fn refuse_outgoing(cx: &mut Context, el: &Element) {
    if !matches!(el.attr("type"), Some("error" | "result")) {
        let mut answer = stanza::error_element(el, Condition::NotAcceptable);
        if let Some(crate::xml::Node::Element(error)) = answer.children.last_mut() {
            error
                .children
                .push(crate::xml::Node::Element(Element::new("blocked", ERRORS)));
        }
        cx.send(answer.to_xml());
    }
}

/// `<blocklist/>`, `<block/>` or `<unblock/>` from the account itself.
pub fn iq(session: &mut Session, cx: &mut Context, el: &Element, payload: &Element) -> Result<(), String> {
    let user = session.user.clone().unwrap_or_default();
    let mut list = load(&user)?;
    let items: Vec<String> = payload
        .elements()
        .filter(|item| item.name == "item")
        .filter_map(|item| {
            item.attr("jid")
                .and_then(|jid| jid::Jid::new(jid).ok())
                .map(|jid| jid.to_string())
        })
        .collect();
    match (payload.name.as_str(), el.attr("type")) {
        ("blocklist", Some("get")) => {
            let mut answer = Element::new("blocklist", NS);
            for jid in &list {
                answer = answer.child(Element::new("item", NS).with("jid", jid.as_str()));
            }
            cx.send(result(el, Some(answer)));
            return Ok(());
        }
        ("block", Some("set")) if !items.is_empty() => {
            for jid in &items {
                if !list.contains(jid) {
                    list.push(jid.clone());
                }
            }
            if list.len() > MAX_BLOCKED {
                stanza::refuse(cx, el, Condition::ResourceConstraint);
                return Ok(());
            }
        }
        ("unblock", Some("set")) if items.is_empty() => list.clear(),
        ("unblock", Some("set")) => list.retain(|jid| !items.contains(jid)),
        _ => {
            stanza::refuse(cx, el, Condition::BadRequest);
            return Ok(());
        }
    }
    store::put_json(&keys::blocklist(&user), &list)?;
    cx.send(result(el, None));
    // The same change, pushed to every session of the account.
    let mut push = Element::new(&payload.name, NS);
    for jid in &items {
        push = push.child(Element::new("item", NS).with("jid", jid.as_str()));
    }
    let push = Element::new("iq", CLIENT)
        .with("type", "set")
        .with("id", crate::stream::random_id())
        .child(push)
        .to_xml();
    routing::to_all(cx, &session.bare(), &push, None)
}
