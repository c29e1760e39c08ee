//! What a client keeps on the server for itself: XEP-0049 private XML
//! storage (one store entry per account and namespace) and XEP-0054
//! vcard-temp (one per account, readable by anyone who asks for it).

use ej_guest::{Context, store};

use crate::presence::local_user;
use crate::roster::result;
use crate::stanza::{self, Condition};
use crate::xml::Element;
use crate::{Session, keys};

pub const PRIVATE: &str = "jabber:iq:private";
pub const VCARD: &str = "vcard-temp";
/// Largest value one account may keep under one key, in bytes.
const MAX_BYTES: usize = 64 * 1024;
/// Namespaces one account may keep private XML under.
const MAX_NAMESPACES: u32 = 100;

/// `<query xmlns='jabber:iq:private'>` from the account itself.
pub fn private(session: &Session, cx: &mut Context, el: &Element, query: &Element) -> Result<(), String> {
    let user = session.user.as_deref().unwrap_or_default();
    let Some(data) = query.first() else {
        stanza::refuse(cx, el, Condition::BadRequest);
        return Ok(());
    };
    // The stream's own namespaces are not storage (XEP-0049 §3).
    if data.ns.is_empty() || data.ns == crate::xml::CLIENT || data.ns == PRIVATE {
        stanza::refuse(cx, el, Condition::NotAcceptable);
        return Ok(());
    }
    let key = keys::private(user, &data.ns);
    match el.attr("type") {
        Some("get") => {
            let stored = store::get(&key)
                .and_then(|bytes| Element::parse(&String::from_utf8_lossy(&bytes)).ok())
                .unwrap_or_else(|| data.clone());
            cx.send(result(el, Some(Element::new("query", PRIVATE).child(stored))));
        }
        Some("set") => {
            let xml = data.to_xml();
            let full = store::get(&key).is_none()
                && store::scan(&keys::private(user, ""), MAX_NAMESPACES).len() >= MAX_NAMESPACES as usize;
            if xml.len() > MAX_BYTES || full {
                stanza::refuse(cx, el, Condition::ResourceConstraint);
                return Ok(());
            }
            store::put(&key, xml.as_bytes());
            cx.send(result(el, None));
        }
        _ => stanza::refuse(cx, el, Condition::BadRequest),
    }
    Ok(())
}

/// `<vCard xmlns='vcard-temp'/>`: the account's own (get or set, `own`),
/// or another account's (get).
pub fn vcard(session: &Session, cx: &mut Context, el: &Element, card: &Element, own: bool) -> Result<(), String> {
    let user = if own {
        session.user.clone()
    } else {
        el.attr("to").and_then(local_user)
    };
    let Some(user) = user else {
        stanza::refuse(cx, el, Condition::ServiceUnavailable);
        return Ok(());
    };
    match el.attr("type") {
        Some("get") => {
            let stored = store::get(&keys::vcard(&user))
                .and_then(|bytes| Element::parse(&String::from_utf8_lossy(&bytes)).ok())
                .unwrap_or_else(|| Element::new("vCard", VCARD));
            cx.send(result(el, Some(stored)));
        }
        Some("set") if own => {
            let xml = card.to_xml();
            if xml.len() > MAX_BYTES {
                stanza::refuse(cx, el, Condition::ResourceConstraint);
                return Ok(());
            }
            store::put(&keys::vcard(&user), xml.as_bytes());
            cx.send(result(el, None));
        }
        _ => stanza::refuse(cx, el, Condition::NotAllowed),
    }
    Ok(())
}
