//! The owner's business (XEP-0045 §10, `muc#owner`): the configuration
//! form (XEP-0004) and its submission — an empty one accepts the defaults
//! (an instant room) — and destroying a room.

use ej_guest::Context;

use super::occupancy::{self, Notice};
use super::room::{self, Affiliation, Room, Whois};
use super::{Address, OWNER, USER, deliver};
use crate::Session;
use crate::roster::result;
use crate::stanza::{self, Condition};
use crate::xml::{CLIENT, Element};

const DATA: &str = "jabber:x:data";
const FORM_TYPE: &str = "http://jabber.org/protocol/muc#roomconfig";
/// Status code: the room's configuration changed (§10.2.1).
const CONFIGURATION_CHANGED: u16 = 104;

/// A `muc#owner` query to a room.
pub fn iq(
    session: &mut Session,
    cx: &mut Context,
    el: &Element,
    query: &Element,
    address: &Address,
    room: &str,
) -> Result<(), String> {
    let Some(mut state) = Room::load(room)? else {
        stanza::refuse(cx, el, Condition::ItemNotFound);
        return Ok(());
    };
    if state.affiliation(&session.bare()) != Affiliation::Owner {
        stanza::refuse(cx, el, Condition::Forbidden);
        return Ok(());
    }
    match (el.attr("type"), query.get("x", DATA), query.get("destroy", OWNER)) {
        (Some("get"), _, _) => {
            cx.send(result(el, Some(Element::new("query", OWNER).child(form(&state)))));
            Ok(())
        }
        (Some("set"), _, Some(destroy)) => {
            // The reason and password in the muc#user namespace of the
            // presence, not the muc#owner one of the request.
            let mut told = Element::new("destroy", USER).with_opt("jid", destroy.attr("jid"));
            for name in ["reason", "password"] {
                if let Some(text) = destroy.child_text(name, OWNER) {
                    told = told.child(Element::new(name, USER).text(text));
                }
            }
            for (nick, occupant) in room::occupants(room)? {
                let notice = Notice {
                    destroy: Some(told.clone()),
                    ..Notice::unavailable(&nick, &occupant)
                };
                // Each occupant is told of itself (so status 110).
                let text = notice.render(address, &occupant.jid, true, &[occupancy::SELF]);
                deliver(session, cx, &occupant.jid, text);
            }
            Room::destroy(room, &address.jid);
            session.rooms.retain(|joined| joined.room != room);
            cx.send(result(el, None));
            Ok(())
        }
        (Some("set"), Some(form), None) => {
            if form.attr("type") == Some("submit") {
                if let Err(why) = submit(&mut state, form) {
                    stanza::refuse(cx, el, why);
                    return Ok(());
                }
                state.save(room)?;
                let changed = Element::new("message", CLIENT)
                    .with("type", "groupchat")
                    .with("from", address.jid.as_str())
                    .child(
                        Element::new("x", USER)
                            .child(Element::new("status", USER).with("code", CONFIGURATION_CHANGED.to_string())),
                    );
                for (_, occupant) in room::occupants(room)? {
                    deliver(
                        session,
                        cx,
                        &occupant.jid,
                        changed.clone().with("to", occupant.jid.as_str()).to_xml(),
                    );
                }
            }
            cx.send(result(el, None));
            Ok(())
        }
        _ => {
            stanza::refuse(cx, el, Condition::BadRequest);
            Ok(())
        }
    }
}

/// The configuration form, filled in with what the room has.
fn form(state: &Room) -> Element {
    let config = &state.config;
    let flag = |on: bool| if on { "1" } else { "0" };
    let whois = match config.whois {
        Whois::Anyone => "anyone",
        Whois::Moderators => "moderators",
    };
    let fields: [(&str, &str, &str, String); 13] = [
        ("muc#roomconfig_roomname", "text-single", "Name", config.name.clone()),
        (
            "muc#roomconfig_roomdesc",
            "text-single",
            "Description",
            config.description.clone(),
        ),
        (
            "muc#roomconfig_persistentroom",
            "boolean",
            "Kept when empty",
            flag(config.persistent).into(),
        ),
        (
            "muc#roomconfig_publicroom",
            "boolean",
            "Listed",
            flag(config.public).into(),
        ),
        (
            "muc#roomconfig_membersonly",
            "boolean",
            "Members only",
            flag(config.members_only).into(),
        ),
        (
            "muc#roomconfig_moderatedroom",
            "boolean",
            "Moderated",
            flag(config.moderated).into(),
        ),
        (
            "muc#roomconfig_passwordprotectedroom",
            "boolean",
            "Password required",
            flag(!config.password.is_empty()).into(),
        ),
        (
            "muc#roomconfig_roomsecret",
            "text-private",
            "Password",
            config.password.clone(),
        ),
        (
            "muc#roomconfig_maxusers",
            "text-single",
            "Occupants at most",
            config.max_users.to_string(),
        ),
        (
            "muc#roomconfig_whois",
            "list-single",
            "Who sees real JIDs",
            whois.into(),
        ),
        (
            "muc#roomconfig_changesubject",
            "boolean",
            "Participants may change the subject",
            flag(config.change_subject).into(),
        ),
        (
            "muc#roomconfig_allowinvites",
            "boolean",
            "Occupants may invite",
            flag(config.allow_invites).into(),
        ),
        (
            "muc#maxhistoryfetch",
            "text-single",
            "History messages sent on entry",
            config.history.to_string(),
        ),
    ];
    let mut form = Element::new("x", DATA).with("type", "form").child(
        Element::new("field", DATA)
            .with("var", "FORM_TYPE")
            .with("type", "hidden")
            .child(Element::new("value", DATA).text(FORM_TYPE)),
    );
    for (var, kind, label, value) in fields {
        let mut field = Element::new("field", DATA)
            .with("var", var)
            .with("type", kind)
            .with("label", label)
            .child(Element::new("value", DATA).text(value));
        if var == "muc#roomconfig_whois" {
            for option in ["moderators", "anyone"] {
                field = field.child(Element::new("option", DATA).child(Element::new("value", DATA).text(option)));
            }
        }
        form = form.child(field);
    }
    let allow_pm = if config.allow_private_messages {
        "anyone"
    } else {
        "none"
    };
    let mut pm = Element::new("field", DATA)
        .with("var", "muc#roomconfig_allowpm")
        .with("type", "list-single")
        .with("label", "Who may send private messages")
        .child(Element::new("value", DATA).text(allow_pm));
    for option in ["anyone", "none"] {
        pm = pm.child(Element::new("option", DATA).child(Element::new("value", DATA).text(option)));
    }
    form.child(pm)
}

/// Applies a submitted form; fields it does not know are ignored.
fn submit(state: &mut Room, form: &Element) -> Result<(), Condition> {
    let mut config = state.config.clone();
    let mut protected = None;
    for field in form.elements().filter(|field| field.name == "field") {
        let value = field.child_text("value", DATA).unwrap_or_default();
        let value = value.trim();
        let on = matches!(value, "1" | "true");
        match field.attr("var").unwrap_or_default() {
            "muc#roomconfig_roomname" => config.name = value.to_owned(),
            "muc#roomconfig_roomdesc" => config.description = value.to_owned(),
            "muc#roomconfig_persistentroom" => config.persistent = on,
            "muc#roomconfig_publicroom" => config.public = on,
            "muc#roomconfig_membersonly" => config.members_only = on,
            "muc#roomconfig_moderatedroom" => config.moderated = on,
            "muc#roomconfig_passwordprotectedroom" => protected = Some(on),
            "muc#roomconfig_roomsecret" => config.password = value.to_owned(),
            "muc#roomconfig_maxusers" => {
                config.max_users = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=room::MAX_OCCUPANTS).contains(n))
                    .ok_or(Condition::NotAcceptable)?;
            }
            "muc#roomconfig_whois" => {
                config.whois = match value {
                    "anyone" => Whois::Anyone,
                    "moderators" => Whois::Moderators,
                    _ => return Err(Condition::NotAcceptable),
                };
            }
            "muc#roomconfig_changesubject" => config.change_subject = on,
            "muc#roomconfig_allowinvites" => config.allow_invites = on,
            "muc#roomconfig_allowpm" => config.allow_private_messages = value != "none",
            "muc#maxhistoryfetch" => {
                config.history = value
                    .parse::<u32>()
                    .map_err(|_| Condition::NotAcceptable)?
                    .min(room::MAX_HISTORY);
            }
            _ => {}
        }
    }
    if protected == Some(false) {
        config.password.clear();
    }
    state.config = config;
    Ok(())
}
