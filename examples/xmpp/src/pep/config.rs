//! A node's configuration (XEP-0060 §8.2, `pubsub#node_config`): the
//! fields this service supports, the form that shows them, and how a
//! submitted form — a configuration, or the preconditions of a publish
//! (`pubsub#publish-options`, §7.1.5) — is applied.

use serde::{Deserialize, Serialize};

use super::MAX_ITEMS;
use crate::xml::Element;

const DATA: &str = "jabber:x:data";
/// The FORM_TYPE of a node configuration.
pub const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
/// The FORM_TYPE of publish preconditions.
pub const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";

/// Who may retrieve a node's items and hear of them (§4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// The owner and the contacts allowed to see its presence (the
    /// default, XEP-0163 §4).
    Presence,
    /// Anyone.
    Open,
    /// The owner only (nobody else is ever on the list).
    Whitelist,
}

/// When the last item goes to a session without its asking; each sends
/// it on more occasions than the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendLast {
    Never,
    /// When a contact starts seeing the owner's presence.
    OnSub,
    /// On subscription and when a session becomes available (the default).
    OnSubAndPresence,
}

/// What a node's owner configures, with the defaults of a new node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub access: Access,
    /// Items kept; the oldest go beyond it.
    pub max_items: u32,
    /// Whether items are kept at all.
    pub persist_items: bool,
    /// Whether a retraction is notified when the request does not say.
    pub notify_retract: bool,
    pub send_last: SendLast,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            access: Access::Presence,
            max_items: 1,
            persist_items: true,
            notify_retract: true,
            send_last: SendLast::OnSubAndPresence,
        }
    }
}

/// The names the protocol gives the access models and last-item policies.
const ACCESS_MODELS: [(Access, &str); 3] = [
    (Access::Presence, "presence"),
    (Access::Open, "open"),
    (Access::Whitelist, "whitelist"),
];
const SEND_LAST: [(SendLast, &str); 3] = [
    (SendLast::Never, "never"),
    (SendLast::OnSub, "on_sub"),
    (SendLast::OnSubAndPresence, "on_sub_and_presence"),
];

impl Config {
    /// The configuration with a submitted form applied: the form's fields
    /// must all be ones this service supports, with values it supports,
    /// and its FORM_TYPE (if any) `form_type`.
    pub fn with_form(&self, form: &Element, form_type: &str) -> Option<Self> {
        let mut config = self.clone();
        for field in form
            .elements()
            .filter(|field| field.name == "field" && field.ns == DATA)
        {
            let var = field.attr("var")?;
            let value = field.child_text("value", DATA).unwrap_or_default();
            let value = value.trim();
            if var == "FORM_TYPE" {
                if value != form_type {
                    return None;
                }
                continue;
            }
            config.set(var, value)?;
        }
        Some(config)
    }

    /// Sets field `var` to `value`, if both are supported.
    fn set(&mut self, var: &str, value: &str) -> Option<()> {
        match var {
            "pubsub#access_model" => self.access = named(&ACCESS_MODELS, value)?,
            "pubsub#max_items" => {
                self.max_items = match value {
                    "max" => MAX_ITEMS,
                    number => number.parse().ok().filter(|n| (1..=MAX_ITEMS).contains(n))?,
                };
            }
            "pubsub#persist_items" => self.persist_items = boolean(value)?,
            "pubsub#notify_retract" => self.notify_retract = boolean(value)?,
            "pubsub#send_last_published_item" => self.send_last = named(&SEND_LAST, value)?,
            // Always on here: asking for them on is asking for nothing.
            "pubsub#deliver_notifications" | "pubsub#deliver_payloads" => boolean(value)?.then_some(())?,
            _ => return None,
        }
        Some(())
    }

    /// The configuration form, filled in (`type='form'`).
    pub fn form(&self) -> Element {
        let flag = |on: bool| if on { "1" } else { "0" };
        let fields: [(&str, &str, String, Vec<&str>); 7] = [
            (
                "pubsub#access_model",
                "list-single",
                name_of(&ACCESS_MODELS, self.access).into(),
                names(&ACCESS_MODELS),
            ),
            (
                "pubsub#max_items",
                "text-single",
                self.max_items.to_string(),
                Vec::new(),
            ),
            (
                "pubsub#persist_items",
                "boolean",
                flag(self.persist_items).into(),
                Vec::new(),
            ),
            (
                "pubsub#notify_retract",
                "boolean",
                flag(self.notify_retract).into(),
                Vec::new(),
            ),
            (
                "pubsub#send_last_published_item",
                "list-single",
                name_of(&SEND_LAST, self.send_last).into(),
                names(&SEND_LAST),
            ),
            ("pubsub#deliver_notifications", "boolean", "1".into(), Vec::new()),
            ("pubsub#deliver_payloads", "boolean", "1".into(), Vec::new()),
        ];
        let value = |text: &str| Element::new("value", DATA).text(text);
        let mut form = Element::new("x", DATA).with("type", "form").child(
            Element::new("field", DATA)
                .with("var", "FORM_TYPE")
                .with("type", "hidden")
                .child(value(NODE_CONFIG)),
        );
        for (var, kind, current, options) in fields {
            let mut field = Element::new("field", DATA)
                .with("var", var)
                .with("type", kind)
                .child(value(&current));
            for option in options {
                field = field.child(Element::new("option", DATA).child(value(option)));
            }
            form = form.child(field);
        }
        form
    }
}

/// The value of `name` in `table`.
fn named<T: Copy>(table: &[(T, &str)], name: &str) -> Option<T> {
    table.iter().find(|(_, known)| *known == name).map(|(value, _)| *value)
}

/// The name of `value` in `table`.
fn name_of<T: PartialEq>(table: &[(T, &'static str)], value: T) -> &'static str {
    table
        .iter()
        .find(|(known, _)| *known == value)
        .map_or("", |(_, name)| name)
}

/// Every name in `table`.
fn names<T>(table: &[(T, &'static str)]) -> Vec<&'static str> {
    table.iter().map(|(_, name)| *name).collect()
}

/// An XEP-0004 boolean.
fn boolean(value: &str) -> Option<bool> {
    match value {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}
