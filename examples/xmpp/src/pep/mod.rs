//! PEP, the personal eventing protocol (XEP-0163): every account's bare
//! JID is a publish-subscribe service (the XEP-0060 subset PEP needs) with
//! nodes its owner publishes to and its contacts hear from.
//!
//! Like a room, a service is no connection: the event of whoever
//! publishes, retracts or asks does the service's work, reading and
//! writing the owner's nodes in the store (see [`node`]: a key per node
//! and per item, so publishes of different items never conflict) and
//! routing notifications to the sessions that want them. Who wants what
//! comes from entity capabilities (XEP-0115, see [`caps`]): a client
//! listing the feature `NODE+notify` hears of `NODE` from its own account
//! and from each contact whose presence it may see, and gets each such
//! node's last item when it becomes available.
//!
//! Modules: [`node`] (what the store keeps), [`config`] (node
//! configuration and publish preconditions), [`publish`] (publishing and
//! retracting), [`items`] (retrieval), [`owner`] (creating, configuring,
//! purging and deleting nodes), [`notify`] (event notifications and last
//! items), [`caps`] (what clients want), [`disco`] (what the service says
//! it is and has).

pub mod caps;
mod config;
pub mod disco;
mod items;
mod node;
mod notify;
mod owner;
mod publish;

pub use notify::subscribed;

use ej_guest::Context;

use crate::Session;
use crate::presence::local_user;
use crate::roster::Roster;
use crate::stanza::{self, Condition};
use crate::xml::{Element, Node as XmlNode};

pub const NS: &str = "http://jabber.org/protocol/pubsub";
pub const OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
const EVENT: &str = "http://jabber.org/protocol/pubsub#event";
const ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";

/// Nodes one account may have.
const MAX_NODES: usize = 64;
/// Items one node keeps at most: what `max_items` 'max' means.
const MAX_ITEMS: u32 = 256;
/// The largest item payload, in bytes: under the host's default stanza
/// limit (64 KiB), so that a client hears why instead of losing its stream.
const MAX_PAYLOAD: usize = 60 * 1024;
/// The longest node name or item id, in bytes.
const MAX_NAME: usize = 256;

/// The account whose service a request is for.
pub struct Account {
    /// Its local part.
    pub user: String,
    /// Its bare JID.
    pub bare: String,
}

impl Account {
    /// The session's own account.
    fn of(session: &Session) -> Self {
        Self {
            user: session.user.clone().unwrap_or_default(),
            bare: session.bare(),
        }
    }

    /// The local account at bare JID `to`, if there is one.
    fn at(to: &str) -> Option<Self> {
        let user = local_user(to)?;
        let bare = jid::BareJid::new(to).ok()?.to_string();
        Some(Self { user, bare })
    }

    /// How `bare` stands with this account, for access models.
    fn standing(&self, bare: &str) -> Result<Standing, String> {
        if bare == self.bare {
            return Ok(Standing::Owner);
        }
        let roster = Roster::load(&self.user)?;
        let subscribed = roster.items.get(bare).is_some_and(|item| item.subscription.from());
        Ok(if subscribed {
            Standing::Subscriber
        } else {
            Standing::Stranger
        })
    }
}

/// How an entity stands with an account.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Owner,
    /// Allowed to see the owner's presence (subscription from or both).
    Subscriber,
    Stranger,
}

impl config::Access {
    /// Whether one of `standing` may retrieve the node's items and hear of
    /// them; if not, what it is told (XEP-0060 §6.5.9).
    fn allows(self, standing: Standing) -> Result<(), Refusal> {
        match (self, standing) {
            (_, Standing::Owner) | (Self::Open, _) | (Self::Presence, Standing::Subscriber) => Ok(()),
            (Self::Presence, _) => Err(Refusal::because(
                Condition::NotAuthorized,
                "presence-subscription-required",
            )),
            (Self::Whitelist, _) => Err(Refusal::because(Condition::NotAllowed, "closed-node")),
        }
    }
}

/// A stanza error for the asker: a condition, and the pubsub one under it.
pub struct Refusal {
    condition: Condition,
    pubsub: Option<Element>,
}

impl Refusal {
    fn new(condition: Condition) -> Self {
        Self {
            condition,
            pubsub: None,
        }
    }

    /// `condition`, with pubsub condition `why`.
    fn because(condition: Condition, why: &str) -> Self {
        Self {
            condition,
            pubsub: Some(Element::new(why, ERRORS)),
        }
    }

    /// A request for a feature this service does not have.
    fn unsupported(feature: &str) -> Self {
        Self {
            condition: Condition::FeatureNotImplemented,
            pubsub: Some(Element::new("unsupported", ERRORS).with("feature", feature)),
        }
    }

    /// Answers `el` with this error.
    fn send(self, cx: &mut Context, el: &Element) {
        let mut answer = stanza::error_element(el, self.condition);
        if let (Some(XmlNode::Element(error)), Some(why)) = (answer.children.last_mut(), self.pubsub) {
            error.children.push(XmlNode::Element(why));
        }
        cx.send(answer.to_xml());
    }
}

/// Why a request did not succeed: a refusal, or a fault of the event.
pub enum Failure {
    Refused(Refusal),
    Fault(String),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<String> for Failure {
    fn from(fault: String) -> Self {
        Self::Fault(fault)
    }
}

/// A request to an account's service.
struct Request<'a> {
    session: &'a Session,
    /// The iq.
    iq: &'a Element,
    /// Its `<pubsub/>`.
    pubsub: &'a Element,
    /// The operation in it: `<publish/>`, `<items/>`, `<configure/>`…
    op: &'a Element,
    account: Account,
}

impl Request<'_> {
    /// The node the operation names, if a name this service takes.
    fn node_name(&self) -> Result<&str, Refusal> {
        match self.op.attr("node") {
            None | Some("") => Err(Refusal::because(Condition::BadRequest, "nodeid-required")),
            Some(name) if name.len() > MAX_NAME => Err(Refusal::new(Condition::NotAcceptable)),
            Some(name) => Ok(name),
        }
    }

    /// That node, or `item-not-found`.
    fn node(&self) -> Result<node::Node, Failure> {
        node::Node::load(&self.account.user, self.node_name()?)?
            .ok_or_else(|| Refusal::new(Condition::ItemNotFound).into())
    }

    /// Answers the iq with a result, with `payload` if any.
    fn answer(&self, cx: &mut Context, payload: Option<Element>) {
        cx.send(crate::roster::result(self.iq, payload));
    }
}

/// A `<pubsub/>` iq to an account's bare JID (`own`: the asker's own, or
/// no `to`).
pub fn iq(session: &Session, cx: &mut Context, el: &Element, pubsub: &Element, own: bool) -> Result<(), String> {
    let kind = el.attr("type");
    if !matches!(kind, Some("get" | "set")) {
        return Ok(());
    }
    let account = if own {
        Some(Account::of(session))
    } else {
        el.attr("to").and_then(Account::at)
    };
    let Some(account) = account else {
        stanza::refuse(cx, el, Condition::ServiceUnavailable);
        return Ok(());
    };
    let Some(op) = pubsub.first() else {
        stanza::refuse(cx, el, Condition::BadRequest);
        return Ok(());
    };
    let owner = account.bare == session.bare();
    let request = Request {
        session,
        iq: el,
        pubsub,
        op,
        account,
    };
    let outcome = match (pubsub.ns.as_str(), kind, op.name.as_str()) {
        (NS, Some("get"), "items") => items::retrieve(cx, &request),
        (_, _, "subscribe" | "unsubscribe" | "options") => Err(Refusal::unsupported("subscribe").into()),
        (_, _, "subscriptions") => Err(Refusal::unsupported("retrieve-subscriptions").into()),
        (_, _, "affiliations") => Err(Refusal::unsupported("retrieve-affiliations").into()),
        (_, Some("set"), _) | (OWNER, _, _) if !owner => Err(Refusal::new(Condition::Forbidden).into()),
        (NS, Some("set"), "publish") => publish::publish(cx, &request),
        (NS, Some("set"), "retract") => publish::retract(cx, &request),
        (NS, Some("set"), "create") => owner::create(cx, &request),
        (OWNER, Some("get"), "configure") => owner::configuration(cx, &request),
        (OWNER, Some("set"), "configure") => owner::configure(cx, &request),
        (OWNER, Some("get"), "default") => owner::default(cx, &request),
        (OWNER, Some("set"), "purge" | "delete") => owner::clear(cx, &request),
        _ => Err(Refusal::new(Condition::BadRequest).into()),
    };
    match outcome {
        Ok(()) => Ok(()),
        Err(Failure::Refused(refusal)) => {
            refusal.send(cx, el);
            Ok(())
        }
        Err(Failure::Fault(fault)) => Err(fault),
    }
}

/// Removes every node of `user` (the account is being removed).
pub fn remove(user: &str) {
    for node in node::Node::all(user) {
        node.delete();
    }
}
