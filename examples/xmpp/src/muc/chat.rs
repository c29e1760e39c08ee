//! Messages in a room (XEP-0045 §7.4, §7.5, §7.8.2, §8.1): to everyone,
//! kept in the discussion history; the subject; private messages between
//! occupants; and mediated invitations and their declines.

use ej_guest::Context;

use super::room::{self, Affiliation, Occupant, Role, Room};
use super::{Address, USER, deliver};
use crate::archive::{self, Archive};
use crate::stanza::{self, Condition};
use crate::xml::{CLIENT, Element, Node};
use crate::{Session, message, presence};

/// A message from the client to a room or an occupant.
pub fn message(
    session: &mut Session,
    cx: &mut Context,
    text: &str,
    el: &Element,
    address: &Address,
    room: &str,
) -> Result<(), String> {
    if el.attr("type") == Some("error") {
        return Ok(());
    }
    let sender = super::joined_as(session, room)?;
    match (&address.nick, el.attr("type")) {
        (None, Some("groupchat")) => match sender {
            Some((nick, occupant)) => groupchat(session, cx, text, el, address, room, &occupant, &nick),
            None => {
                stanza::refuse(cx, el, Condition::NotAcceptable);
                Ok(())
            }
        },
        (None, _) => match el.get("x", USER) {
            Some(x) => mediated(session, cx, el, x, address, room, sender.as_ref()),
            None => {
                stanza::refuse(cx, el, Condition::BadRequest);
                Ok(())
            }
        },
        (Some(_), Some("groupchat")) => {
            stanza::refuse(cx, el, Condition::BadRequest);
            Ok(())
        }
        (Some(to), _) => private(session, cx, text, el, address, room, sender, to),
    }
}

/// A message to everyone (§7.4), or a new subject (§8.1).
#[allow(clippy::too_many_arguments)]
fn groupchat(
    session: &Session,
    cx: &mut Context,
    text: &str,
    el: &Element,
    address: &Address,
    room: &str,
    sender: &Occupant,
    nick: &str,
) -> Result<(), String> {
    let Some(mut state) = Room::load(room)? else {
        stanza::refuse(cx, el, Condition::ItemNotFound);
        return Ok(());
    };
    let subject = el.child_text("subject", CLIENT);
    let may_speak = sender.role >= Role::Participant;
    let may_set_subject =
        sender.role == Role::Moderator || (state.config.change_subject && sender.role == Role::Participant);
    if !may_speak || (subject.is_some() && el.get("body", CLIENT).is_none() && !may_set_subject) {
        stanza::refuse(cx, el, Condition::Forbidden);
        return Ok(());
    }
    let occupants = room::occupants(room)?;
    if text.len().saturating_mul(occupants.len()) > crate::sm::route_budget(session) {
        stanza::refuse(cx, el, Condition::ResourceConstraint);
        return Ok(());
    }
    let from = address.occupant(nick);
    let mut stamped = stanza::stamped(text, &from, None)?;
    if let (Some(subject), None) = (subject, el.get("body", CLIENT)) {
        state.subject = Some((nick.to_owned(), subject));
        state.save(room)?;
    } else {
        // Kept without `to`, as everyone got it, with the room's
        // stanza-id (which is also what pages its archive).
        let mut kept = Element::parse(&stamped)?;
        kept.attrs.retain(|(name, _)| name != "to");
        let kept = archive::with_stanza_id(&kept.to_xml(), &address.jid, None)?;
        let mut archive = Archive::open(&address.jid)?;
        let id = archive.append(&from, &kept)?;
        stamped = archive::with_stanza_id(&stamped, &address.jid, Some(&id))?;
    }
    for (_, occupant) in occupants {
        deliver(session, cx, &occupant.jid, stanza::stamped_to(&stamped, &occupant.jid)?);
    }
    Ok(())
}

/// A private message to occupant `to` (§7.5), from the sender's occupant
/// JID, marked as coming through the room.
#[allow(clippy::too_many_arguments)]
fn private(
    session: &Session,
    cx: &mut Context,
    text: &str,
    el: &Element,
    address: &Address,
    room: &str,
    sender: Option<(String, Occupant)>,
    to: &str,
) -> Result<(), String> {
    let Some((nick, _)) = sender else {
        stanza::refuse(cx, el, Condition::NotAcceptable);
        return Ok(());
    };
    let allowed = Room::load(room)?.is_some_and(|state| state.config.allow_private_messages);
    if !allowed {
        stanza::refuse(cx, el, Condition::Forbidden);
        return Ok(());
    }
    let Some(target) = Occupant::load(room, to)? else {
        stanza::refuse(cx, el, Condition::ItemNotFound);
        return Ok(());
    };
    let mut forwarded = Element::parse(&stanza::stamped(text, &address.occupant(&nick), Some(&target.jid))?)?;
    if forwarded.get("x", USER).is_none() {
        forwarded.children.push(Node::Element(Element::new("x", USER)));
    }
    deliver(session, cx, &target.jid, forwarded.to_xml());
    Ok(())
}

/// A mediated invitation (§7.8.2) or the decline of one (§7.8.2 ex. 61).
fn mediated(
    session: &Session,
    cx: &mut Context,
    el: &Element,
    x: &Element,
    address: &Address,
    room: &str,
    sender: Option<&(String, Occupant)>,
) -> Result<(), String> {
    let Some(mut state) = Room::load(room)? else {
        stanza::refuse(cx, el, Condition::ItemNotFound);
        return Ok(());
    };
    if let Some(decline) = x.get("decline", USER) {
        let Some(inviter) = decline.attr("to").and_then(|to| jid::Jid::new(to).ok()) else {
            stanza::refuse(cx, el, Condition::BadRequest);
            return Ok(());
        };
        let told = Element::new("decline", USER)
            .with("from", session.bare())
            .children_from(decline);
        let notice = Element::new("message", CLIENT)
            .with("from", address.jid.as_str())
            .child(Element::new("x", USER).child(told));
        return send_to(cx, session, &inviter.to_string(), notice);
    }
    let Some(invite) = x.get("invite", USER) else {
        stanza::refuse(cx, el, Condition::BadRequest);
        return Ok(());
    };
    let affiliation = state.affiliation(&session.bare());
    let may_invite = sender.is_some() && (state.config.allow_invites || affiliation >= Affiliation::Admin);
    let Some(invitee) = invite.attr("to").and_then(|to| jid::Jid::new(to).ok()) else {
        stanza::refuse(cx, el, Condition::BadRequest);
        return Ok(());
    };
    if !may_invite {
        stanza::refuse(cx, el, Condition::Forbidden);
        return Ok(());
    }
    // §9.3: in a members-only room, the invitee becomes a member.
    let invitee_bare = invitee.to_bare().to_string();
    if state.config.members_only && state.affiliation(&invitee_bare) == Affiliation::None {
        if !state.set_affiliation(&invitee_bare, Affiliation::Member) {
            stanza::refuse(cx, el, Condition::ResourceConstraint);
            return Ok(());
        }
        state.save(room)?;
    }
    let mut x = Element::new("x", USER).child(
        Element::new("invite", USER)
            .with("from", session.full())
            .children_from(invite),
    );
    if !state.config.password.is_empty() {
        x = x.child(Element::new("password", USER).text(state.config.password.clone()));
    }
    let body = format!("{} invites you to the room {}", session.bare(), address.jid);
    let notice = Element::new("message", CLIENT)
        .with("from", address.jid.as_str())
        .with("id", crate::stream::random_id())
        .child(x)
        .child(Element::new("body", CLIENT).text(body));
    send_to(cx, session, &invitee.to_string(), notice)
}

/// Sends a message from the room to a local user (as a message to their
/// JID: the session, or the available ones, or offline storage).
fn send_to(cx: &mut Context, session: &Session, to: &str, message: Element) -> Result<(), String> {
    let Ok(target) = jid::Jid::new(to) else {
        return Ok(());
    };
    if presence::local_user(&target.to_bare().to_string()).is_none() || target.domain().as_str() != session.domain {
        return Ok(());
    }
    let stanza = message.with("to", to).to_xml();
    message::deliver(cx, &stanza, &target, None, false)
}
