//! What an account's service says it is (XEP-0163 §5, XEP-0060 §5):
//! the `pubsub/pep` identity and the features it has, on the account's
//! disco#info; its nodes, those the asker may see, on its disco#items; a
//! node's identity on a disco#info with that node.

use ej_guest::Context;

use super::node::Node;
use super::{Account, NS};
use crate::Session;
use crate::roster::result;
use crate::stanza::{self, Condition};
use crate::xml::Element;

const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// The XEP-0060 features the service has (after `pubsub#`).
const FEATURES: &[&str] = &[
    "access-open",
    "access-presence",
    "access-whitelist",
    "auto-create",
    "auto-subscribe",
    "config-node",
    "create-and-configure",
    "create-nodes",
    "delete-items",
    "delete-nodes",
    "filtered-notifications",
    "item-ids",
    "last-published",
    "multi-items",
    "persistent-items",
    "publish",
    "publish-options",
    "purge-nodes",
    "retract-items",
    "retrieve-default",
    "retrieve-items",
];

/// An account's disco#info with the service's identity and features.
pub fn account_info(info: Element) -> Element {
    let feature = |var: String| Element::new("feature", DISCO_INFO).with("var", var);
    let mut info = info
        .child(
            Element::new("identity", DISCO_INFO)
                .with("category", "pubsub")
                .with("type", "pep"),
        )
        .child(feature(NS.to_owned()));
    for name in FEATURES {
        info = info.child(feature(format!("{NS}#{name}")));
    }
    info
}

/// disco#info of node `name` of the account at the iq's `to`: a leaf, if
/// it exists and the asker may see it.
pub fn node_info(session: &Session, cx: &mut Context, el: &Element, name: &str) -> Result<(), String> {
    let visible = match el.attr("to").and_then(Account::at) {
        Some(account) => visible(&account, &session.bare())?
            .into_iter()
            .any(|node| node.name == name),
        None => false,
    };
    if !visible {
        stanza::refuse(cx, el, Condition::ItemNotFound);
        return Ok(());
    }
    let info = Element::new("query", DISCO_INFO)
        .with("node", name)
        .child(
            Element::new("identity", DISCO_INFO)
                .with("category", "pubsub")
                .with("type", "leaf"),
        )
        .child(Element::new("feature", DISCO_INFO).with("var", NS));
    cx.send(result(el, Some(info)));
    Ok(())
}

/// disco#items of the account at the iq's `to`: the nodes the asker may
/// see (XEP-0163 §5); nothing within a node.
pub fn items(session: &Session, cx: &mut Context, el: &Element, query: &Element) -> Result<(), String> {
    let mut answer = Element::new("query", DISCO_ITEMS).with_opt("node", query.attr("node"));
    if let Some(account) = el.attr("to").and_then(Account::at)
        && query.attr("node").is_none()
    {
        for node in visible(&account, &session.bare())? {
            let item = Element::new("item", DISCO_ITEMS)
                .with("jid", account.bare.as_str())
                .with("node", node.name);
            answer = answer.child(item);
        }
    }
    cx.send(result(el, Some(answer)));
    Ok(())
}

/// The nodes of `account` that `asker` may see.
fn visible(account: &Account, asker: &str) -> Result<Vec<Node>, String> {
    let standing = account.standing(asker)?;
    let mut nodes = Node::all(&account.user);
    nodes.retain(|node| node.config.access.allows(standing).is_ok());
    Ok(nodes)
}
