//! Archiving preferences (XEP-0313 §6.2): archive everything, nothing, or
//! only messages with roster contacts, with JIDs always or never archived.

use ej_guest::{Context, store};
use serde::{Deserialize, Serialize};

use super::NS;
use crate::roster::{Roster, result};
use crate::stanza::{self, Condition};
use crate::xml::Element;
use crate::{Session, keys};

/// JIDs one list may hold.
const MAX_LISTED: usize = 100;

#[derive(Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Policy {
    #[default]
    Always,
    Never,
    Roster,
}

/// What an account wants archived.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct Prefs {
    default: Policy,
    always: Vec<String>,
    never: Vec<String>,
}

/// Whether `user` wants messages with `with` (a bare JID) archived.
pub fn wants(user: &str, with: &str) -> Result<bool, String> {
    let prefs: Prefs = store::get_json(&keys::archive_prefs(user))?.unwrap_or_default();
    if prefs.never.iter().any(|jid| jid == with) {
        return Ok(false);
    }
    if prefs.always.iter().any(|jid| jid == with) {
        return Ok(true);
    }
    Ok(match prefs.default {
        Policy::Always => true,
        Policy::Never => false,
        Policy::Roster => Roster::load(user)?.items.contains_key(with),
    })
}

/// `<prefs/>`: the account's preferences, or new ones.
pub fn iq(session: &Session, cx: &mut Context, el: &Element, payload: &Element) -> Result<(), String> {
    let user = session.user.as_deref().unwrap_or_default();
    let key = keys::archive_prefs(user);
    let prefs = match el.attr("type") {
        Some("get") => store::get_json(&key)?.unwrap_or_default(),
        Some("set") => {
            let default = match payload.attr("default") {
                Some("always") => Policy::Always,
                Some("never") => Policy::Never,
                Some("roster") => Policy::Roster,
                _ => {
                    stanza::refuse(cx, el, Condition::BadRequest);
                    return Ok(());
                }
            };
            let listed = |name: &str| -> Option<Vec<String>> {
                let jids: Vec<String> = payload
                    .get(name, NS)
                    .map(|list| {
                        list.elements()
                            .filter(|jid| jid.name == "jid")
                            .filter_map(|jid| jid::BareJid::new(jid.content().trim()).ok())
                            .map(|jid| jid.to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                (jids.len() <= MAX_LISTED).then_some(jids)
            };
            let (Some(always), Some(never)) = (listed("always"), listed("never")) else {
                stanza::refuse(cx, el, Condition::NotAcceptable);
                return Ok(());
            };
            let prefs = Prefs { default, always, never };
            store::put_json(&key, &prefs)?;
            prefs
        }
        _ => return Ok(()),
    };
    cx.send(result(el, Some(element(&prefs))));
    Ok(())
}

fn element(prefs: &Prefs) -> Element {
    let default = match prefs.default {
        Policy::Always => "always",
        Policy::Never => "never",
        Policy::Roster => "roster",
    };
    let list = |name: &str, jids: &[String]| {
        jids.iter().fold(Element::new(name, NS), |list, jid| {
            list.child(Element::new("jid", NS).text(jid.as_str()))
        })
    };
    Element::new("prefs", NS)
        .with("default", default)
        .child(list("always", &prefs.always))
        .child(list("never", &prefs.never))
}
