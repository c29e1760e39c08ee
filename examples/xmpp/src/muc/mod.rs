//! Group chat (XEP-0045) at `conference.DOMAIN`, and mediated invitations.
//!
//! A room is not a connection: no socket holds it, so nothing runs "in" it.
//! The event of the occupant whose stanza reaches the room does the room's
//! work: it reads the room from the store, changes it, and routes what the
//! room says to each occupant's session. The host runs every event as a
//! serializable transaction, so two events that touch one room behave as if
//! one ran after the other (joins racing for a nickname, a kick racing a
//! message), and rooms cost nothing while nobody speaks. A session keeps
//! the rooms it joined in its state, to leave them when it ends.
//!
//! Modules: [`room`] (what the store keeps), [`occupancy`] (joining,
//! leaving, nicknames, presence), [`chat`] (messages, subject, private
//! messages, invitations), [`admin`] (roles and affiliations), [`owner`]
//! (configuration and destruction), [`disco`] (what the service and rooms
//! say they are).

mod admin;
mod chat;
mod disco;
mod occupancy;
mod owner;
pub mod room;

use ej_guest::Context;
use serde::{Deserialize, Serialize};

use crate::stanza::{self, Condition};
use crate::xml::Element;
use crate::{Session, archive, routing};

pub const NS: &str = "http://jabber.org/protocol/muc";
pub const USER: &str = "http://jabber.org/protocol/muc#user";
const ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const OWNER: &str = "http://jabber.org/protocol/muc#owner";
const PING: &str = "urn:xmpp:ping";

/// Rooms one session may be in at once.
const MAX_JOINED: usize = 64;

/// A room this session is in, under which nickname.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Joined {
    pub room: String,
    pub nick: String,
}

/// The group chat service's domain for the served `domain`.
pub fn service(domain: &str) -> String {
    format!("conference.{domain}")
}

/// What a stanza to the service is addressed to.
struct Address {
    /// The room's normalised local part, if a room.
    room: Option<String>,
    /// The room's bare JID, or the service's domain.
    jid: String,
    /// The occupant's nickname, if one.
    nick: Option<String>,
}

impl Address {
    /// The JID of occupant `nick` of this room.
    fn occupant(&self, nick: &str) -> String {
        format!("{}/{nick}", self.jid)
    }
}

/// A stanza from the client to the service, a room or an occupant.
pub fn from_client(
    session: &mut Session,
    cx: &mut Context,
    text: &str,
    el: &Element,
    to: &jid::Jid,
) -> Result<(), String> {
    let mut el = el.clone();
    el.set_attr("from", session.full());
    let address = Address {
        room: to.node().map(|node| node.as_str().to_owned()),
        jid: to.to_bare().to_string(),
        nick: to.resource().map(|resource| resource.as_str().to_owned()),
    };
    let Some(room) = address.room.clone() else {
        return match el.name.as_str() {
            "iq" => disco::service(session, cx, &el),
            _ => {
                stanza::refuse(cx, &el, Condition::ServiceUnavailable);
                Ok(())
            }
        };
    };
    match el.name.as_str() {
        "presence" => occupancy::presence(session, cx, &el, &address, &room),
        "message" => chat::message(session, cx, text, &el, &address, &room),
        "iq" => iq(session, cx, &el, &address, &room),
        _ => Ok(()),
    }
}

/// An iq to a room or to an occupant.
fn iq(session: &mut Session, cx: &mut Context, el: &Element, address: &Address, room: &str) -> Result<(), String> {
    if let Some(nick) = &address.nick {
        return occupant_iq(session, cx, el, address, room, nick);
    }
    let Some(payload) = el.first() else {
        stanza::refuse(cx, el, Condition::BadRequest);
        return Ok(());
    };
    match (payload.name.as_str(), payload.ns.as_str()) {
        ("query", ADMIN) => admin::iq(session, cx, el, payload, address, room),
        ("query", OWNER) => owner::iq(session, cx, el, payload, address, room),
        ("query", disco::INFO | disco::ITEMS) => disco::room(cx, el, payload, address, room),
        ("query", archive::NS) => archive_query(session, cx, el, payload, address, room),
        _ => {
            stanza::refuse(cx, el, Condition::ServiceUnavailable);
            Ok(())
        }
    }
}

/// A query of a room's archive (XEP-0313 §5.1.1): for whoever may enter
/// it, outcasts and (in a members-only room) non-members excepted.
fn archive_query(
    session: &Session,
    cx: &mut Context,
    el: &Element,
    query: &Element,
    address: &Address,
    room: &str,
) -> Result<(), String> {
    let Some(state) = room::Room::load(room)? else {
        stanza::refuse(cx, el, Condition::ItemNotFound);
        return Ok(());
    };
    let affiliation = state.affiliation(&session.bare());
    let may_enter = affiliation != room::Affiliation::Outcast
        && (!state.config.members_only || affiliation >= room::Affiliation::Member)
        && (state.config.password.is_empty() || joined_as(session, room)?.is_some());
    if !may_enter {
        stanza::refuse(cx, el, Condition::Forbidden);
        return Ok(());
    }
    archive::query::answer(
        cx,
        el,
        query,
        &archive::Archive::open(&address.jid)?,
        Some(&address.jid),
        crate::sm::send_budget(session),
    )
}

/// An iq to an occupant: a ping to one's own occupant JID is answered here
/// (XEP-0410 §3.3, the self-ping optimisation); any other goes to the
/// occupant's session as from the asker's occupant JID (and so comes back).
fn occupant_iq(
    session: &Session,
    cx: &mut Context,
    el: &Element,
    address: &Address,
    room: &str,
    nick: &str,
) -> Result<(), String> {
    let Some((own, _)) = joined_as(session, room)? else {
        stanza::refuse(cx, el, Condition::NotAcceptable);
        return Ok(());
    };
    let ping = el.get("ping", PING).is_some() && el.attr("type") == Some("get");
    if ping && own == nick {
        cx.send(crate::roster::result(el, None));
        return Ok(());
    }
    let Some(target) = room::Occupant::load(room, nick)? else {
        stanza::refuse(cx, el, Condition::ItemNotFound);
        return Ok(());
    };
    let mut forwarded = el.clone();
    forwarded.set_attr("from", address.occupant(&own));
    forwarded.set_attr("to", target.jid.as_str());
    deliver(session, cx, &target.jid, forwarded.to_xml());
    Ok(())
}

/// The nickname this session has in `room` and what it is there, if it is
/// in it (as the room sees it: a session that was made to leave by
/// another's event may not have heard yet).
fn joined_as(session: &Session, room: &str) -> Result<Option<(String, room::Occupant)>, String> {
    let Some(joined) = session.rooms.iter().find(|joined| joined.room == room) else {
        return Ok(None);
    };
    Ok(room::Occupant::load(room, &joined.nick)?
        .filter(|occupant| occupant.jid == session.full())
        .map(|occupant| (joined.nick.clone(), occupant)))
}

/// Sends `stanza` to the session of occupant `jid` (a full JID): this one's
/// own client directly, another through the registry.
fn deliver(session: &Session, cx: &mut Context, jid: &str, stanza: String) {
    if jid == session.full() {
        cx.send(stanza);
    } else if let Some((bare, resource)) = jid.split_once('/') {
        routing::to_resource(cx, bare, resource, stanza);
    }
}

/// The session is leaving every room (it went unavailable, or ended).
pub fn leave_all(session: &mut Session, cx: &mut Context) -> Result<(), String> {
    let domain = service(&session.domain);
    for joined in std::mem::take(&mut session.rooms) {
        let address = Address {
            jid: format!("{}@{domain}", joined.room),
            room: Some(joined.room.clone()),
            nick: Some(joined.nick.clone()),
        };
        occupancy::leave(session, cx, &address, &joined.room, &joined.nick, "")?;
    }
    Ok(())
}

/// A room's presence routed to this session: one saying it is no longer
/// in the room (status 110 on unavailable: it left, was kicked or banned,
/// or the room was destroyed) makes it forget the room.
pub fn arrived(session: &mut Session, payload: &str) -> Result<(), String> {
    let el = Element::parse(payload)?;
    let own = el.get("x", USER).is_some_and(|x| {
        x.elements()
            .any(|status| status.name == "status" && status.attr("code") == Some("110"))
    });
    if el.name != "presence" || el.attr("type") != Some("unavailable") || !own {
        return Ok(());
    }
    let Some(from) = el.attr("from").and_then(|from| jid::FullJid::new(from).ok()) else {
        return Ok(());
    };
    if let Some(room) = from.node() {
        let nick = from.resource().as_str();
        session
            .rooms
            .retain(|joined| !(joined.room == room.as_str() && joined.nick == nick));
    }
    Ok(())
}

/// Something a room routed to an occupant found no session (see
/// [`occupancy::vanished`]).
pub fn bounced(session: &Session, cx: &mut Context, el: &Element) -> Result<(), String> {
    let from = el.attr("from").and_then(|from| jid::Jid::new(from).ok());
    let (Some(from), Some(to)) = (from, el.attr("to")) else {
        return Ok(());
    };
    let Some(room) = from.node().map(|node| node.as_str().to_owned()) else {
        return Ok(());
    };
    let address = Address {
        jid: from.to_bare().to_string(),
        room: Some(room.clone()),
        nick: None,
    };
    occupancy::vanished(session, cx, &address, &room, to)
}

/// Whether `from` is this server's group chat service or one of its rooms.
pub fn is_service(session: &Session, from: &str) -> bool {
    jid::Jid::new(from).is_ok_and(|jid| jid.domain().as_str() == service(&session.domain))
}
