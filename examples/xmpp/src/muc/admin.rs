//! Moderation and administration (XEP-0045 §8–§9, `muc#admin`): lists of
//! roles and affiliations, and changing them — voice, moderator, kicking
//! (role `none`), membership, admins and owners, banning (affiliation
//! `outcast`). Each change is told to every occupant with the status code
//! that says why an occupant left.

use ej_guest::Context;

use super::occupancy::{self, Notice};
use super::room::{self, Affiliation, Occupant, Role, Room};
use super::{ADMIN, Address};
use crate::Session;
use crate::roster::result;
use crate::stanza::{self, Condition};
use crate::xml::Element;

/// Status codes of occupants removed (§15.6.2).
const BANNED: u16 = 301;
const KICKED: u16 = 307;
const NOT_MEMBER: u16 = 321;

/// A `muc#admin` query to a room.
pub fn iq(
    session: &Session,
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
    let joined = super::joined_as(session, room)?;
    let actor = Actor {
        affiliation: state.affiliation(&session.bare()),
        role: joined.as_ref().map_or(Role::None, |(_, occupant)| occupant.role),
        nick: joined.map(|(nick, _)| nick),
    };
    let items: Vec<&Element> = query.elements().filter(|item| item.name == "item").collect();
    match el.attr("type") {
        Some("get") => list(cx, el, &state, room, &actor, items.first().copied()),
        Some("set") => {
            for item in &items {
                if let Err(condition) = change(session, cx, address, room, &mut state, &actor, item)? {
                    stanza::refuse(cx, el, condition);
                    return Ok(());
                }
            }
            state.save(room)?;
            cx.send(result(el, None));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Who asks.
struct Actor {
    affiliation: Affiliation,
    role: Role,
    nick: Option<String>,
}

/// The occupants with a role, or the JIDs with an affiliation (§8.5, §9.5).
fn list(
    cx: &mut Context,
    el: &Element,
    state: &Room,
    room: &str,
    actor: &Actor,
    item: Option<&Element>,
) -> Result<(), String> {
    let mut query = Element::new("query", ADMIN);
    match item.map(|item| {
        (
            item.attr("role").and_then(Role::parse),
            item.attr("affiliation").and_then(Affiliation::parse),
        )
    }) {
        Some((Some(role), _)) if actor.role == Role::Moderator => {
            for (nick, occupant) in room::occupants(room)?
                .into_iter()
                .filter(|(_, occupant)| occupant.role == role)
            {
                query = query.child(
                    Element::new("item", ADMIN)
                        .with("nick", nick)
                        .with("jid", occupant.jid.as_str())
                        .with("role", role.name())
                        .with("affiliation", occupant.affiliation.name()),
                );
            }
        }
        Some((None, Some(affiliation))) if actor.affiliation >= Affiliation::Admin => {
            for (jid, _) in state.affiliations.iter().filter(|(_, had)| *had == affiliation) {
                query = query.child(
                    Element::new("item", ADMIN)
                        .with("jid", jid.as_str())
                        .with("affiliation", affiliation.name()),
                );
            }
        }
        Some((None, None)) | None => {
            stanza::refuse(cx, el, Condition::BadRequest);
            return Ok(());
        }
        _ => {
            stanza::refuse(cx, el, Condition::Forbidden);
            return Ok(());
        }
    }
    cx.send(result(el, Some(query)));
    Ok(())
}

/// One item of a change: a role by nickname, or an affiliation by JID.
fn change(
    session: &Session,
    cx: &mut Context,
    address: &Address,
    room: &str,
    state: &mut Room,
    actor: &Actor,
    item: &Element,
) -> Result<Result<(), Condition>, String> {
    let reason = item.child_text("reason", ADMIN);
    if let Some(role) = item.attr("role").and_then(Role::parse) {
        // §8: only moderators change roles (others are `forbidden`), not
        // of those affiliated at or above them when admins or owners, and
        // only admins and owners grant moderation (`not-allowed`).
        if actor.role != Role::Moderator {
            return Ok(Err(Condition::Forbidden));
        }
        let Some(nick) = item.attr("nick") else {
            return Ok(Err(Condition::BadRequest));
        };
        let Some(mut target) = Occupant::load(room, nick)? else {
            return Ok(Err(Condition::ItemNotFound));
        };
        if (target.affiliation >= actor.affiliation && target.affiliation >= Affiliation::Admin)
            || (role == Role::Moderator && actor.affiliation < Affiliation::Admin)
        {
            return Ok(Err(Condition::NotAllowed));
        }
        if role == Role::None {
            removed(
                session,
                cx,
                address,
                room,
                state,
                actor,
                nick,
                &target,
                KICKED,
                reason.as_deref(),
            )?;
            return Ok(Ok(()));
        }
        target.role = role;
        target.save(room, nick)?;
        let notice = Notice {
            reason: reason.as_deref(),
            ..Notice::available(nick, &target)
        };
        occupancy::broadcast(session, cx, address, room, &notice, state.config.whois, &[])?;
        return Ok(Ok(()));
    }
    let Some(affiliation) = item.attr("affiliation").and_then(Affiliation::parse) else {
        return Ok(Err(Condition::BadRequest));
    };
    // §9–§10: only admins and owners change affiliations.
    if actor.affiliation < Affiliation::Admin {
        return Ok(Err(Condition::Forbidden));
    }
    // The JID, or the bare JID of the occupant with the nickname.
    let jid = match (item.attr("jid"), item.attr("nick")) {
        (Some(jid), _) => jid::Jid::new(jid).ok().map(|jid| jid.to_bare().to_string()),
        (None, Some(nick)) => Occupant::load(room, nick)?.map(|occupant| occupant.bare().to_owned()),
        (None, None) => None,
    };
    let Some(jid) = jid else {
        return Ok(Err(Condition::BadRequest));
    };
    let had = state.affiliation(&jid);
    // §9, §10.3–§10.6: admins manage members and outcasts below them;
    // owners everything; a room keeps at least one owner.
    let allowed = actor.affiliation == Affiliation::Owner
        || (actor.affiliation == Affiliation::Admin && had < Affiliation::Admin && affiliation < Affiliation::Admin);
    if !allowed {
        return Ok(Err(Condition::NotAllowed));
    }
    let owners = state
        .affiliations
        .iter()
        .filter(|(_, had)| *had == Affiliation::Owner)
        .count();
    if had == Affiliation::Owner && affiliation != Affiliation::Owner && owners == 1 {
        return Ok(Err(Condition::Conflict));
    }
    if !state.set_affiliation(&jid, affiliation) {
        return Ok(Err(Condition::ResourceConstraint));
    }
    // The occupants of that account (there may be none) learn their new
    // place, or leave.
    for (nick, mut target) in room::occupants(room)?
        .into_iter()
        .filter(|(_, occupant)| occupant.bare() == jid)
    {
        target.affiliation = affiliation;
        let removal = if affiliation == Affiliation::Outcast {
            Some(BANNED)
        } else if state.config.members_only && affiliation < Affiliation::Member {
            Some(NOT_MEMBER)
        } else {
            None
        };
        if let Some(code) = removal {
            removed(
                session,
                cx,
                address,
                room,
                state,
                actor,
                &nick,
                &target,
                code,
                reason.as_deref(),
            )?;
            continue;
        }
        target.role = state.default_role(affiliation);
        target.save(room, &nick)?;
        let notice = Notice {
            reason: reason.as_deref(),
            ..Notice::available(&nick, &target)
        };
        occupancy::broadcast(session, cx, address, room, &notice, state.config.whois, &[])?;
    }
    Ok(Ok(()))
}

/// An occupant made to leave (kicked, banned, no longer a member): told
/// to everyone with `code`, then forgotten.
#[allow(clippy::too_many_arguments)]
fn removed(
    session: &Session,
    cx: &mut Context,
    address: &Address,
    room: &str,
    state: &Room,
    actor: &Actor,
    nick: &str,
    target: &Occupant,
    code: u16,
    reason: Option<&str>,
) -> Result<(), String> {
    let notice = Notice {
        actor: actor.nick.as_deref(),
        reason,
        ..Notice::unavailable(nick, target)
    };
    occupancy::broadcast(session, cx, address, room, &notice, state.config.whois, &[code])?;
    occupancy::remove(address, room, nick, state)
}
