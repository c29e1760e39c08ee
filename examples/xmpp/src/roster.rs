//! Rosters (RFC 6121 §2): one store entry per account holding every item
//! and a version, so a client that has the latest gets an empty answer
//! (roster versioning, §2.6); every change is pushed to each of the
//! account's sessions that asked for the roster.

use std::collections::BTreeMap;

use ej_guest::{Context, store};
use serde::{Deserialize, Serialize};

use crate::stanza::{self, Condition};
use crate::xml::{CLIENT, Element};
use crate::{Session, keys, presence, routing};

pub const NS: &str = "jabber:iq:roster";
/// Items one roster may hold.
const MAX_ITEMS: usize = 1000;

/// An account's roster.
#[derive(Default, Serialize, Deserialize)]
pub struct Roster {
    pub ver: u64,
    /// By bare JID.
    pub items: BTreeMap<String, Item>,
}

/// One contact.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Item {
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub subscription: Subscription,
    /// A subscription request to the contact is waiting for its answer.
    pub ask: bool,
    /// The contact's subscription to us is approved in advance (§3.4).
    pub approved: bool,
}

/// RFC 6121's subscription states, from the account's side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subscription {
    #[default]
    None,
    /// The account sees the contact's presence.
    To,
    /// The contact sees the account's presence.
    From,
    Both,
}

impl Subscription {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::To => "to",
            Self::From => "from",
            Self::Both => "both",
        }
    }

    /// Whether the account sees the contact's presence.
    pub fn to(self) -> bool {
        matches!(self, Self::To | Self::Both)
    }

    /// Whether the contact sees the account's presence.
    pub fn from(self) -> bool {
        matches!(self, Self::From | Self::Both)
    }

    pub fn with(to: bool, from: bool) -> Self {
        match (to, from) {
            (false, false) => Self::None,
            (true, false) => Self::To,
            (false, true) => Self::From,
            (true, true) => Self::Both,
        }
    }
}

impl Roster {
    pub fn load(user: &str) -> Result<Self, String> {
        Ok(store::get_json(&keys::roster(user))?.unwrap_or_default())
    }

    /// Saves the roster with `jid`'s item changed (or removed, if `None`),
    /// and pushes that item to every session of `bare` that wants pushes.
    pub fn change(
        &mut self,
        cx: &mut Context,
        user: &str,
        bare: &str,
        jid: &str,
        item: Option<Item>,
    ) -> Result<(), String> {
        match &item {
            Some(item) => {
                self.items.insert(jid.to_owned(), item.clone());
            }
            None => {
                self.items.remove(jid);
            }
        }
        self.ver += 1;
        store::put_json(&keys::roster(user), self)?;
        let push = Element::new("iq", CLIENT)
            .with("type", "set")
            .with("id", format!("push{}", self.ver))
            .child(
                Element::new("query", NS)
                    .with("ver", self.ver.to_string())
                    .child(match &item {
                        Some(item) => item.element(jid),
                        None => Element::new("item", NS).with("jid", jid).with("subscription", "remove"),
                    }),
            )
            .to_xml();
        routing::to_all(cx, bare, &push, None)
    }
}

impl Item {
    fn element(&self, jid: &str) -> Element {
        let mut el = Element::new("item", NS)
            .with("jid", jid)
            .with("subscription", self.subscription.name())
            .with_opt("name", self.name.as_deref());
        if self.ask {
            el.set_attr("ask", "subscribe");
        }
        if self.approved {
            el.set_attr("approved", "true");
        }
        for group in &self.groups {
            el = el.child(Element::new("group", NS).text(group));
        }
        el
    }
}

/// A roster iq from the client (to no one or its own bare JID).
pub fn iq(session: &mut Session, cx: &mut Context, el: &Element, query: &Element) -> Result<(), String> {
    let user = session.user.clone().unwrap_or_default();
    let mut roster = Roster::load(&user)?;
    match el.attr("type") {
        Some("get") => {
            session.roster = true;
            let ver = roster.ver.to_string();
            // Versioning: a client with the latest version gets an empty
            // result (and the pushes from now on).
            if query.attr("ver") == Some(ver.as_str()) {
                cx.send(result(el, None));
                return Ok(());
            }
            let mut answer = Element::new("query", NS).with("ver", ver.as_str());
            for (jid, item) in &roster.items {
                answer = answer.child(item.element(jid));
            }
            cx.send(result(el, Some(answer)));
        }
        Some("set") => {
            let items: Vec<&Element> = query.elements().collect();
            let [item] = items.as_slice() else {
                stanza::refuse(cx, el, Condition::BadRequest);
                return Ok(());
            };
            let Some(jid) = item.attr("jid").and_then(|jid| jid::BareJid::new(jid).ok()) else {
                stanza::refuse(cx, el, Condition::BadRequest);
                return Ok(());
            };
            let jid = jid.to_string();
            let bare = session.bare();
            if item.attr("subscription") == Some("remove") {
                let Some(old) = roster.items.get(&jid).cloned() else {
                    stanza::refuse(cx, el, Condition::ItemNotFound);
                    return Ok(());
                };
                cx.send(result(el, None));
                roster.change(cx, &user, &bare, &jid, None)?;
                // Removing a contact cancels both subscriptions (§2.5.2).
                presence::cancel_on_remove(session, cx, &jid, old.subscription)?;
                return Ok(());
            }
            if !roster.items.contains_key(&jid) && roster.items.len() >= MAX_ITEMS {
                stanza::refuse(cx, el, Condition::ResourceConstraint);
                return Ok(());
            }
            let mut new = roster.items.get(&jid).cloned().unwrap_or_default();
            new.name = item.attr("name").filter(|name| !name.is_empty()).map(str::to_owned);
            new.groups = item
                .elements()
                .filter(|child| child.name == "group")
                .map(Element::content)
                .collect();
            new.groups.sort();
            new.groups.dedup();
            cx.send(result(el, None));
            roster.change(cx, &user, &bare, &jid, Some(new))?;
        }
        _ => stanza::refuse(cx, el, Condition::BadRequest),
    }
    Ok(())
}

/// The result answering iq `el`, with `payload` if any.
pub fn result(el: &Element, payload: Option<Element>) -> String {
    let mut answer = Element::new("iq", CLIENT)
        .with("type", "result")
        .with_opt("id", el.attr("id"))
        .with_opt("to", el.attr("from"))
        .with_opt("from", el.attr("to"));
    if let Some(payload) = payload {
        answer = answer.child(payload);
    }
    answer.to_xml()
}
