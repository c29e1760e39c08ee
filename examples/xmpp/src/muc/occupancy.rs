//! Occupancy (XEP-0045 §7.1–§7.3, §7.6, §7.7): entering a room (creating
//! it if it does not exist), nickname conflicts and the entry rules,
//! presence of and to occupants, changing nickname or availability, and
//! leaving; and how a room words an occupant's presence for each receiver.

use ej_guest::{Context, store};

use super::room::{self, Affiliation, Occupant, Role, Room, Whois};
use super::{Address, Joined, MAX_JOINED, NS, USER, deliver};
use crate::archive::Archive;
use crate::stanza::{self, Condition};
use crate::xml::{CLIENT, Element, Node, escape};
use crate::{Session, keys, time};

/// Status codes (§15.6.2).
pub const SELF: u16 = 110;
const NON_ANONYMOUS: u16 = 100;
const CREATED: u16 = 201;
pub const NEW_NICK: u16 = 303;

/// Presence from the client to a room or an occupant JID.
pub fn presence(
    session: &mut Session,
    cx: &mut Context,
    el: &Element,
    address: &Address,
    room: &str,
) -> Result<(), String> {
    let Some(nick) = address.nick.as_deref() else {
        // §7.2.1: entering needs a nickname.
        stanza::refuse(cx, el, Condition::BadRequest);
        return Ok(());
    };
    let current = super::joined_as(session, room)?.map(|(nick, _)| nick);
    if current.is_none() {
        session.rooms.retain(|joined| joined.room != room);
    }
    match (el.attr("type"), current) {
        (None, None) => join(session, cx, el, address, room, nick),
        (None, Some(current)) if current == nick => update(session, cx, el, address, room, nick),
        (None, Some(current)) => change_nick(session, cx, el, address, room, &current, nick),
        (Some("unavailable"), Some(current)) => {
            session.rooms.retain(|joined| joined.room != room);
            leave(session, cx, address, room, &current, &children(el))
        }
        _ => Ok(()),
    }
}

/// Entering a room (§7.2), creating it first if need be (§10.1).
fn join(
    session: &mut Session,
    cx: &mut Context,
    el: &Element,
    address: &Address,
    room: &str,
    nick: &str,
) -> Result<(), String> {
    let bare = session.bare();
    let full = session.full();
    let (state, created) = match Room::load(room)? {
        Some(state) => (state, false),
        None => {
            let mut state = Room::default();
            state.set_affiliation(&bare, Affiliation::Owner);
            (state, true)
        }
    };
    let affiliation = state.affiliation(&bare);
    let asked = el.get("x", NS);
    let password = asked.and_then(|x| x.child_text("password", NS)).unwrap_or_default();
    let holder = Occupant::load(room, nick)?;
    let occupants = room::occupants(room)?;
    let refusal = if affiliation == Affiliation::Outcast {
        Some(Condition::Forbidden)
    } else if state.config.members_only && affiliation < Affiliation::Member {
        Some(Condition::RegistrationRequired)
    } else if holder.as_ref().is_some_and(|holder| holder.jid != full) {
        Some(Condition::Conflict)
    } else if !state.config.password.is_empty() && password != state.config.password {
        Some(Condition::NotAuthorized)
    } else if (occupants.len() >= state.config.max_users as usize && affiliation < Affiliation::Admin)
        || occupants.len() >= room::MAX_OCCUPANTS as usize
        || session.rooms.len() >= MAX_JOINED
    {
        Some(Condition::ServiceUnavailable)
    } else {
        None
    };
    if let Some(condition) = refusal {
        refuse_entry(cx, el, condition);
        return Ok(());
    }
    if created {
        state.save(room)?;
    }
    let occupant = Occupant {
        jid: full.clone(),
        role: state.default_role(affiliation),
        affiliation,
        presence: children(el),
    };
    occupant.save(room, nick)?;
    session.rooms.push(Joined {
        room: room.to_owned(),
        nick: nick.to_owned(),
    });
    // The others to the newcomer, then the newcomer to the others, then
    // to itself, last (§7.2.3).
    let whois = state.config.whois;
    for (other_nick, other) in occupants.iter().filter(|(other_nick, _)| other_nick != nick) {
        let notice = Notice::available(other_nick, other);
        cx.send(notice.render(address, &full, sees_jids(whois, occupant.role), &[]));
        let to_other = Notice::available(nick, &occupant);
        deliver(
            session,
            cx,
            &other.jid,
            to_other.render(address, &other.jid, sees_jids(whois, other.role), &[]),
        );
    }
    let mut codes = vec![SELF];
    if whois == Whois::Anyone {
        codes.push(NON_ANONYMOUS);
    }
    if created {
        codes.push(CREATED);
    }
    cx.send(Notice::available(nick, &occupant).render(address, &full, true, &codes));
    // History (§7.2.14), as much as asked for, then the subject (§7.2.15).
    let history = asked.and_then(|x| x.get("history", NS));
    let wanted = history
        .and_then(|history| history.attr("maxstanzas").and_then(|n| n.parse::<u32>().ok()))
        .or_else(|| history.and_then(|history| history.attr("maxchars")).map(|_| 0))
        .unwrap_or(state.config.history)
        .min(state.config.history);
    // Half the event's budget at most (the other half is for presences).
    let mut history = Archive::open(&address.jid)?.last(wanted.into())?;
    let budget = crate::sm::send_budget(session) / 2;
    while history.iter().map(|record| record.message.len()).sum::<usize>() > budget {
        history.remove(0);
    }
    for record in history {
        let mut message = Element::parse(&record.message)?;
        message.set_attr("to", full.as_str());
        message
            .children
            .push(Node::Element(time::delay(Some(&address.jid), record.time)));
        cx.send(message.to_xml());
    }
    let (setter, subject) = state.subject.clone().unwrap_or_default();
    let from = if setter.is_empty() {
        address.jid.clone()
    } else {
        address.occupant(&setter)
    };
    cx.send(
        Element::new("message", CLIENT)
            .with("type", "groupchat")
            .with("from", from)
            .with("to", full)
            .with("id", crate::stream::random_id())
            .child(Element::new("subject", CLIENT).text(subject))
            .to_xml(),
    );
    Ok(())
}

/// New availability in a room (§7.7): told to every occupant.
fn update(
    session: &mut Session,
    cx: &mut Context,
    el: &Element,
    address: &Address,
    room: &str,
    nick: &str,
) -> Result<(), String> {
    let Some(mut occupant) = Occupant::load(room, nick)? else {
        return Ok(());
    };
    occupant.presence = children(el);
    occupant.save(room, nick)?;
    let whois = Room::load(room)?.unwrap_or_default().config.whois;
    broadcast(
        session,
        cx,
        address,
        room,
        &Notice::available(nick, &occupant),
        whois,
        &[],
    )
}

/// A new nickname (§7.6): unavailable under the old one with status 303,
/// then available under the new one.
fn change_nick(
    session: &mut Session,
    cx: &mut Context,
    el: &Element,
    address: &Address,
    room: &str,
    old: &str,
    new: &str,
) -> Result<(), String> {
    let Some(mut occupant) = Occupant::load(room, old)? else {
        return Ok(());
    };
    if Occupant::load(room, new)?.is_some() {
        refuse_entry(cx, el, Condition::Conflict);
        return Ok(());
    }
    let whois = Room::load(room)?.unwrap_or_default().config.whois;
    let mut gone = Notice::unavailable(old, &occupant);
    gone.new_nick = Some(new);
    broadcast(session, cx, address, room, &gone, whois, &[NEW_NICK])?;
    store::delete(&keys::occupant(room, old));
    occupant.presence = children(el);
    occupant.save(room, new)?;
    for joined in session.rooms.iter_mut().filter(|joined| joined.room == room) {
        joined.nick = new.to_owned();
    }
    broadcast(
        session,
        cx,
        address,
        room,
        &Notice::available(new, &occupant),
        whois,
        &[],
    )
}

/// Leaving a room (§7.14): everyone, the leaver last, sees it go; a
/// temporary room goes with its last occupant. `status` is what the
/// leaver's unavailable presence said (its children).
pub fn leave(
    session: &mut Session,
    cx: &mut Context,
    address: &Address,
    room: &str,
    nick: &str,
    status: &str,
) -> Result<(), String> {
    let Some(mut occupant) = Occupant::load(room, nick)? else {
        return Ok(());
    };
    if occupant.jid != session.full() {
        return Ok(());
    }
    let state = Room::load(room)?.unwrap_or_default();
    occupant.presence = status.to_owned();
    occupant.role = Role::None;
    broadcast(
        session,
        cx,
        address,
        room,
        &Notice::unavailable(nick, &occupant),
        state.config.whois,
        &[],
    )?;
    remove(address, room, nick, &state)
}

/// Forgets occupant `nick`, and the room too if it is temporary and empty.
pub fn remove(address: &Address, room: &str, nick: &str, state: &Room) -> Result<(), String> {
    store::delete(&keys::occupant(room, nick));
    if !state.config.persistent && room::occupants(room)?.is_empty() {
        Room::destroy(room, &address.jid);
    }
    Ok(())
}

/// Sends what the room says of one occupant to every occupant (the
/// occupant itself included, with `SELF` added to `codes`).
pub fn broadcast(
    session: &Session,
    cx: &mut Context,
    address: &Address,
    room: &str,
    notice: &Notice<'_>,
    whois: Whois,
    codes: &[u16],
) -> Result<(), String> {
    for (nick, receiver) in room::occupants(room)? {
        if nick != notice.nick {
            let text = notice.render(address, &receiver.jid, sees_jids(whois, receiver.role), codes);
            deliver(session, cx, &receiver.jid, text);
        }
    }
    let mut own_codes = codes.to_vec();
    own_codes.push(SELF);
    let own = &notice.occupant.jid;
    deliver(session, cx, own, notice.render(address, own, true, &own_codes));
    Ok(())
}

/// Refuses entry under a nickname (§7.2.6–§7.2.10): the error carries the
/// MUC `<x/>`, by which clients tell it from other presence errors.
fn refuse_entry(cx: &mut Context, el: &Element, condition: Condition) {
    let mut error = stanza::error_element(el, condition);
    error.children.insert(0, Node::Element(Element::new("x", NS)));
    cx.send(error.to_xml());
}

/// Whether an occupant with `role` sees the real JIDs of others.
fn sees_jids(whois: Whois, role: Role) -> bool {
    whois == Whois::Anyone || role == Role::Moderator
}

/// What a room says about one occupant, before it is addressed.
pub struct Notice<'a> {
    pub nick: &'a str,
    pub occupant: &'a Occupant,
    pub unavailable: bool,
    /// §7.6: the nickname it is changing to.
    pub new_nick: Option<&'a str>,
    /// §8–§9: who did it (a nickname) and why.
    pub actor: Option<&'a str>,
    pub reason: Option<&'a str>,
    /// §10.9: the room was destroyed (its `<destroy/>`).
    pub destroy: Option<Element>,
}

impl<'a> Notice<'a> {
    pub fn available(nick: &'a str, occupant: &'a Occupant) -> Self {
        Self {
            nick,
            occupant,
            unavailable: false,
            new_nick: None,
            actor: None,
            reason: None,
            destroy: None,
        }
    }

    pub fn unavailable(nick: &'a str, occupant: &'a Occupant) -> Self {
        Self {
            unavailable: true,
            ..Self::available(nick, occupant)
        }
    }

    /// The presence to `to`, with the occupant's real JID if `show_jid`.
    pub fn render(&self, address: &Address, to: &str, show_jid: bool, codes: &[u16]) -> String {
        let role = if self.unavailable {
            Role::None
        } else {
            self.occupant.role
        };
        let mut item = Element::new("item", USER)
            .with("affiliation", self.occupant.affiliation.name())
            .with("role", role.name())
            .with_opt("jid", show_jid.then_some(self.occupant.jid.as_str()))
            .with_opt("nick", self.new_nick);
        if let Some(actor) = self.actor {
            item = item.child(Element::new("actor", USER).with("nick", actor));
        }
        if let Some(reason) = self.reason {
            item = item.child(Element::new("reason", USER).text(reason));
        }
        let mut x = Element::new("x", USER).child(item);
        for code in codes {
            x = x.child(Element::new("status", USER).with("code", code.to_string()));
        }
        if let Some(destroy) = &self.destroy {
            x = x.child(destroy.clone());
        }
        format!(
            "<presence from='{}' to='{}'{}>{}{}</presence>",
            escape(&address.occupant(self.nick)),
            escape(to),
            if self.unavailable { " type='unavailable'" } else { "" },
            self.occupant.presence,
            x.to_xml(),
        )
    }
}

/// The children of a presence that a room repeats (show, status, caps…),
/// without the MUC `<x/>`, as XML.
fn children(el: &Element) -> String {
    el.elements()
        .filter(|child| child.ns != NS && child.ns != USER)
        .map(Element::to_xml)
        .collect()
}

/// What the room routed to occupant `jid` found no session: the occupant
/// went without leaving (its server stopped while it was in the room).
/// The others see it leave.
pub fn vanished(session: &Session, cx: &mut Context, address: &Address, room: &str, jid: &str) -> Result<(), String> {
    let Some((nick, mut occupant)) = room::occupants(room)?
        .into_iter()
        .find(|(_, occupant)| occupant.jid == jid)
    else {
        return Ok(());
    };
    let state = Room::load(room)?.unwrap_or_default();
    remove(address, room, &nick, &state)?;
    occupant.presence.clear();
    let notice = Notice::unavailable(&nick, &occupant);
    for (_, receiver) in room::occupants(room)? {
        let text = notice.render(
            address,
            &receiver.jid,
            sees_jids(state.config.whois, receiver.role),
            &[],
        );
        deliver(session, cx, &receiver.jid, text);
    }
    Ok(())
}
