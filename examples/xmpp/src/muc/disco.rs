//! What the service and its rooms say they are (XEP-0045 §6, XEP-0030):
//! the service's identity and its public rooms; a room's identity,
//! features (from its configuration) and occupant count.

use ej_guest::{Context, store};

use super::room::{self, Room, Whois};
use super::{Address, NS, USER};
use crate::roster::result;
use crate::stanza::{self, Condition};
use crate::xml::Element;
use crate::{Session, keys};

pub const INFO: &str = "http://jabber.org/protocol/disco#info";
pub const ITEMS: &str = "http://jabber.org/protocol/disco#items";
const DATA: &str = "jabber:x:data";
/// XEP-0410 §3.3: the service answers self-pings itself.
const SELF_PING: &str = "http://jabber.org/protocol/muc#self-ping-optimization";
/// Rooms the service lists at most.
const MAX_LISTED: u32 = 1000;

/// An iq to the service itself.
pub fn service(session: &Session, cx: &mut Context, el: &Element) -> Result<(), String> {
    let query = el.first();
    let answer = match (query.map(|q| (q.name.as_str(), q.ns.as_str())), el.attr("type")) {
        (Some(("query", INFO)), Some("get")) => Element::new("query", INFO)
            .child(
                Element::new("identity", INFO)
                    .with("category", "conference")
                    .with("type", "text")
                    .with("name", "Chatrooms"),
            )
            .child(feature(INFO))
            .child(feature(ITEMS))
            .child(feature(NS))
            .child(feature(SELF_PING)),
        (Some(("query", ITEMS)), Some("get")) => {
            let domain = super::service(&session.domain);
            let mut items = Element::new("query", ITEMS);
            for (key, value) in store::scan(keys::ROOMS, MAX_LISTED) {
                let Ok(state) = serde_json::from_slice::<Room>(&value) else {
                    continue;
                };
                if state.config.public {
                    let name = key.strip_prefix(keys::ROOMS).unwrap_or_default();
                    items = items.child(
                        Element::new("item", ITEMS)
                            .with("jid", format!("{name}@{domain}"))
                            .with_opt("name", (!state.config.name.is_empty()).then_some(state.config.name)),
                    );
                }
            }
            items
        }
        (_, Some("result" | "error")) => return Ok(()),
        _ => {
            stanza::refuse(cx, el, Condition::ServiceUnavailable);
            return Ok(());
        }
    };
    cx.send(result(el, Some(answer)));
    Ok(())
}

/// disco#info or disco#items to a room (§6.4, §6.5).
pub fn room(cx: &mut Context, el: &Element, query: &Element, address: &Address, room: &str) -> Result<(), String> {
    if el.attr("type") != Some("get") {
        stanza::refuse(cx, el, Condition::BadRequest);
        return Ok(());
    }
    let Some(state) = Room::load(room)? else {
        stanza::refuse(cx, el, Condition::ItemNotFound);
        return Ok(());
    };
    if query.ns == ITEMS {
        // Occupants are not listed: in a semi-anonymous room that would
        // tell outsiders who is inside.
        cx.send(result(el, Some(Element::new("query", ITEMS))));
        return Ok(());
    }
    let config = &state.config;
    let name = if config.name.is_empty() {
        address.jid.as_str()
    } else {
        config.name.as_str()
    };
    let pick = |on: bool, yes: &'static str, no: &'static str| if on { yes } else { no };
    let mut info = Element::new("query", INFO).child(
        Element::new("identity", INFO)
            .with("category", "conference")
            .with("type", "text")
            .with("name", name),
    );
    for var in [
        NS,
        USER,
        SELF_PING,
        crate::archive::NS,
        crate::archive::SID,
        pick(config.persistent, "muc_persistent", "muc_temporary"),
        pick(config.public, "muc_public", "muc_hidden"),
        pick(config.members_only, "muc_membersonly", "muc_open"),
        pick(config.moderated, "muc_moderated", "muc_unmoderated"),
        pick(config.password.is_empty(), "muc_unsecured", "muc_passwordprotected"),
        pick(config.whois == Whois::Anyone, "muc_nonanonymous", "muc_semianonymous"),
    ] {
        info = info.child(feature(var));
    }
    let occupants = room::occupants(room)?.len();
    let roominfo = Element::new("x", DATA)
        .with("type", "result")
        .child(field("FORM_TYPE", "http://jabber.org/protocol/muc#roominfo").with("type", "hidden"))
        .child(field("muc#roominfo_description", &config.description))
        .child(field("muc#roominfo_occupants", &occupants.to_string()))
        .child(field(
            "muc#roominfo_subject",
            &state.subject.clone().unwrap_or_default().1,
        ));
    cx.send(result(el, Some(info.child(roominfo))));
    Ok(())
}

fn feature(var: &str) -> Element {
    Element::new("feature", INFO).with("var", var)
}

fn field(var: &str, value: &str) -> Element {
    Element::new("field", DATA)
        .with("var", var)
        .child(Element::new("value", DATA).text(value))
}
