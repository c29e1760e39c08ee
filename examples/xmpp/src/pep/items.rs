//! Retrieving items (XEP-0060 §6.5): all of a node's, the newest
//! `max_items`, or those named by id, for whoever the access model lets
//! see them; an answer that would not fit in what one event may send has
//! the newest that do, and says how many there are (§6.5.4, XEP-0059).

use ej_guest::Context;

use super::{Failure, NS, Refusal, Request};
use crate::stanza::Condition;
use crate::xml::Element;

const RSM: &str = "http://jabber.org/protocol/rsm";

/// `<items node='…' max_items='…'><item id='…'/>…</items>`.
pub fn retrieve(cx: &mut Context, request: &Request) -> Result<(), Failure> {
    let node = request.node()?;
    let standing = request.account.standing(&request.session.bare())?;
    node.config.access.allows(standing)?;
    let asked: Vec<String> = request
        .op
        .elements()
        .filter(|item| item.name == "item" && item.ns == NS)
        .filter_map(|item| Some(item.attr("id")?.to_owned()))
        .collect();
    let ids = if asked.is_empty() {
        let mut order = node.order();
        if let Some(max) = request.op.attr("max_items") {
            let max: usize = max.parse().map_err(|_| Refusal::new(Condition::BadRequest))?;
            order.drain(..order.len().saturating_sub(max));
        }
        order
    } else {
        asked
    };
    // The newest first, as long as they fit.
    let mut found = Vec::new();
    let mut bytes = 0;
    let budget = crate::sm::send_budget(request.session);
    for id in ids.iter().rev() {
        let Some(payload) = node.item(id) else {
            continue;
        };
        bytes += payload.len();
        if bytes > budget {
            break;
        }
        if let Ok(payload) = Element::parse(&payload) {
            found.push(Element::new("item", NS).with("id", id.as_str()).child(payload));
        }
    }
    let cut = found.len() < ids.len() && bytes > budget;
    found.reverse();
    let mut items = Element::new("items", NS).with("node", node.name.as_str());
    let page = cut.then(|| {
        let id = |item: Option<&Element>| item.and_then(|item| item.attr("id")).unwrap_or_default().to_owned();
        Element::new("set", RSM)
            .child(Element::new("first", RSM).text(id(found.first())))
            .child(Element::new("last", RSM).text(id(found.last())))
            .child(Element::new("count", RSM).text(ids.len().to_string()))
    });
    for item in found {
        items = items.child(item);
    }
    let mut answer = Element::new("pubsub", NS).child(items);
    if let Some(page) = page {
        answer = answer.child(page);
    }
    request.answer(cx, Some(answer));
    Ok(())
}
