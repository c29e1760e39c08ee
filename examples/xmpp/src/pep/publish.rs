//! Publishing an item (XEP-0060 §7.1), the node created on first publish
//! (auto-create) with the preconditions the request gives
//! (publish-options, §7.1.5), and retracting items (§7.2); each notified to
//! whoever wants it.

use ej_guest::Context;

use super::config::{Config, PUBLISH_OPTIONS};
use super::node::Node;
use super::{EVENT, Failure, MAX_NAME, MAX_PAYLOAD, NS, Refusal, Request, notify};
use crate::stanza::Condition;
use crate::stream;
use crate::xml::Element;

const DATA: &str = "jabber:x:data";

/// `<publish node='…'><item id='…'>payload</item></publish>` from the owner.
pub fn publish(cx: &mut Context, request: &Request) -> Result<(), Failure> {
    let (publish, user) = (request.op, &request.account.user);
    let name = request.node_name()?;
    let (payload, xml) = payload(publish)?;
    let id = match publish.get("item", NS).and_then(|item| item.attr("id")) {
        Some(id) if id.len() > MAX_NAME => return Err(Refusal::new(Condition::NotAcceptable).into()),
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => stream::random_id(),
    };
    let options = request
        .pubsub
        .get("publish-options", NS)
        .and_then(|options| options.get("x", DATA));
    let precondition_not_met = || Refusal::because(Condition::Conflict, "precondition-not-met");
    let node = match Node::load(user, name)? {
        Some(node) => {
            if options.is_some_and(|form| node.config.with_form(form, PUBLISH_OPTIONS).as_ref() != Some(&node.config)) {
                return Err(precondition_not_met().into());
            }
            node
        }
        None => {
            let config = match options {
                Some(form) => Config::default()
                    .with_form(form, PUBLISH_OPTIONS)
                    .ok_or_else(precondition_not_met)?,
                None => Config::default(),
            };
            Node::create(user, name, config)?
        }
    };
    node.put(&id, &xml);
    let published = Element::new("publish", NS)
        .with("node", name)
        .child(Element::new("item", NS).with("id", id.as_str()));
    request.answer(cx, Some(Element::new("pubsub", NS).child(published)));
    // Without the payload if copies with it would not fit (§7.1.2.2).
    let item = Element::new("item", EVENT).with("id", id.as_str());
    let full = notify::items(name, [item.clone().child(payload.clone())]);
    notify::event(cx, request, &node, &full, Some(&notify::items(name, [item])))?;
    Ok(())
}

/// The one payload of a publish's one item, and its XML, if it is one
/// this service keeps (§7.1.3.6, §7.1.3.4).
fn payload(publish: &Element) -> Result<(&Element, String), Refusal> {
    let mut items = publish
        .elements()
        .filter(|child| child.name == "item" && child.ns == NS);
    let (Some(item), None) = (items.next(), items.next()) else {
        return Err(Refusal::because(Condition::BadRequest, "item-required"));
    };
    let mut payloads = item.elements();
    let payload = match (payloads.next(), payloads.next()) {
        (Some(payload), None) => payload,
        (None, _) => return Err(Refusal::because(Condition::BadRequest, "payload-required")),
        (Some(_), Some(_)) => return Err(Refusal::because(Condition::BadRequest, "invalid-payload")),
    };
    if !rewritable(payload) {
        return Err(Refusal::because(Condition::BadRequest, "invalid-payload"));
    }
    let xml = payload.to_xml();
    if xml.len() > MAX_PAYLOAD {
        return Err(Refusal::because(Condition::NotAcceptable, "payload-too-big"));
    }
    Ok((payload, xml))
}

/// Whether the element tree writes back as the XML it was: it does unless
/// an attribute's namespace prefix (other than `xml:`) was declared above
/// the payload, where its declaration stays behind.
fn rewritable(el: &Element) -> bool {
    declared_within(el, &[])
}

fn declared_within(el: &Element, outer: &[&str]) -> bool {
    let mut declared = outer.to_vec();
    declared.extend(el.attrs.iter().filter_map(|(key, _)| key.strip_prefix("xmlns:")));
    let known = |key: &str| match key.split_once(':') {
        None | Some(("xml" | "xmlns", _)) => true,
        Some((prefix, _)) => declared.contains(&prefix),
    };
    el.attrs.iter().all(|(key, _)| known(key)) && el.elements().all(|child| declared_within(child, &declared))
}

/// `<retract node='…' notify='…'><item id='…'/>…</retract>` from the owner.
pub fn retract(cx: &mut Context, request: &Request) -> Result<(), Failure> {
    let node = request.node()?;
    let ids: Vec<&str> = request
        .op
        .elements()
        .filter(|item| item.name == "item" && item.ns == NS)
        .filter_map(|item| item.attr("id"))
        .collect();
    if ids.is_empty() {
        return Err(Refusal::because(Condition::BadRequest, "item-required").into());
    }
    if !ids.iter().all(|id| node.has(id)) {
        return Err(Refusal::new(Condition::ItemNotFound).into());
    }
    for id in &ids {
        node.retract(id);
    }
    request.answer(cx, None);
    let notify = match request.op.attr("notify") {
        Some("1" | "true") => true,
        Some(_) => false,
        None => node.config.notify_retract,
    };
    if notify {
        let retracted = ids.iter().map(|id| Element::new("retract", EVENT).with("id", *id));
        notify::event(cx, request, &node, &notify::items(&node.name, retracted), None)?;
    }
    Ok(())
}
