//! What only the owner does to its nodes (XEP-0060 §8): creating one
//! (with a configuration, or the defaults), reading and changing a node's
//! configuration or the defaults, purging its items or deleting it —
//! the last two notified like retractions.

use ej_guest::Context;

use super::config::{Config, NODE_CONFIG};
use super::node::Node;
use super::{EVENT, Failure, NS, OWNER, Refusal, Request, notify};
use crate::stanza::Condition;
use crate::xml::Element;

const DATA: &str = "jabber:x:data";

/// `<create node='…'/>`, with `<configure>` and a form, or not (§8.1).
pub fn create(cx: &mut Context, request: &Request) -> Result<(), Failure> {
    let name = request.node_name()?;
    let user = &request.account.user;
    if Node::load(user, name)?.is_some() {
        return Err(Refusal::new(Condition::Conflict).into());
    }
    let configure = request.pubsub.get("configure", NS);
    let config = submitted(
        &Config::default(),
        configure.and_then(|configure| configure.get("x", DATA)),
    )?;
    Node::create(user, name, config)?;
    request.answer(cx, None);
    Ok(())
}

/// `<configure node='…'/>`: the node's configuration form (§8.2).
pub fn configuration(cx: &mut Context, request: &Request) -> Result<(), Failure> {
    let node = request.node()?;
    let configure = Element::new("configure", OWNER)
        .with("node", node.name.as_str())
        .child(node.config.form());
    request.answer(cx, Some(Element::new("pubsub", OWNER).child(configure)));
    Ok(())
}

/// `<configure node='…'>` with a submitted form (or a cancelled one).
pub fn configure(cx: &mut Context, request: &Request) -> Result<(), Failure> {
    let mut node = request.node()?;
    let form = request.op.get("x", DATA);
    if form.is_none_or(|form| form.attr("type") != Some("cancel")) {
        node.config = submitted(&node.config, form)?;
        node.save()?;
    }
    request.answer(cx, None);
    Ok(())
}

/// `<default/>`: the configuration of a new node (§8.3).
pub fn default(cx: &mut Context, request: &Request) -> Result<(), Failure> {
    let default = Element::new("default", OWNER).child(Config::default().form());
    request.answer(cx, Some(Element::new("pubsub", OWNER).child(default)));
    Ok(())
}

/// `<purge node='…'/>`, every item goes (§8.5), or `<delete node='…'/>`,
/// the node goes with them (§8.4); notified as such.
pub fn clear(cx: &mut Context, request: &Request) -> Result<(), Failure> {
    let node = request.node()?;
    request.answer(cx, None);
    let event = notify::about(Element::new(&request.op.name, EVENT).with("node", node.name.as_str()));
    notify::event(cx, request, &node, &event, None)?;
    if request.op.name == "delete" {
        node.delete();
    } else {
        node.purge();
    }
    Ok(())
}

/// `config` with `form` (if any) applied; `not-acceptable` if it asks
/// for what this service does not support.
fn submitted(config: &Config, form: Option<&Element>) -> Result<Config, Refusal> {
    match form {
        Some(form) => config
            .with_form(form, NODE_CONFIG)
            .ok_or_else(|| Refusal::new(Condition::NotAcceptable)),
        None => Ok(config.clone()),
    }
}
