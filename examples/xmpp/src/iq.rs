//! Info/query (RFC 6120 §8.2.3): what the server answers itself — the
//! roster, the legacy session, XEP-0030 service discovery, XEP-0199 ping,
//! XEP-0092 software version, XEP-0202 entity time, XEP-0012 last
//! activity, and the account's storage, block list and carbons (each in its
//! own module) — and requests between users: to a full JID, routed to that
//! session; to a bare JID, answered by the server for the account.

use base64::Engine as _;
use ej_guest::Context;
use sha1::{Digest as _, Sha1};

use crate::presence::{self, local_user};
use crate::roster::{self, result};
use crate::stanza::{self, Condition};
use crate::storage::{PRIVATE, VCARD};
use crate::stream::SESSION;
use crate::xml::Element;
use crate::{Session, archive, blocking, carbons, muc, pep, register, routing, storage, time};

const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const PING: &str = "urn:xmpp:ping";
const VERSION: &str = "jabber:iq:version";
const TIME: &str = "urn:xmpp:time";
const LAST: &str = "jabber:iq:last";

/// What the server is, for disco#info and its XEP-0115 caps hash.
const IDENTITY: (&str, &str, &str) = ("server", "im", "ej");
/// What the server does, sorted (as the caps hash needs them).
const FEATURES: &[&str] = &[
    DISCO_INFO,
    DISCO_ITEMS,
    LAST,
    PRIVATE,
    "jabber:iq:roster",
    VERSION,
    "msgoffline",
    "urn:ietf:params:xml:ns:xmpp-session",
    blocking::NS,
    carbons::NS,
    PING,
    TIME,
    VCARD,
];

/// An iq from the client.
pub fn from_client(session: &mut Session, cx: &mut Context, text: &str, el: &Element) -> Result<(), String> {
    let full = session.full();
    let mut el = el.clone();
    el.set_attr("from", full.as_str());
    let to = el.attr("to").map(str::to_owned);
    let target = match to.as_deref().map(jid::Jid::new) {
        None => None,
        Some(Ok(target)) => Some(target),
        Some(Err(_)) => {
            stanza::refuse(cx, &el, Condition::BadRequest);
            return Ok(());
        }
    };
    let Some(target) = target else {
        return for_account(session, cx, &el, true);
    };
    if target.domain().as_str() != session.domain {
        stanza::refuse(cx, &el, Condition::RemoteServerNotFound);
        return Ok(());
    }
    match (target.node(), target.resource()) {
        (None, None) => server(session, cx, &el),
        (None, Some(_)) => {
            stanza::refuse(cx, &el, Condition::ServiceUnavailable);
            Ok(())
        }
        (Some(_), None) => {
            let own = target.to_bare().to_string() == session.bare();
            for_account(session, cx, &el, own)
        }
        (Some(_), Some(resource)) => {
            let bare = target.to_bare().to_string();
            if routing::is_bound(&bare, resource.as_str()) {
                routing::to_resource(cx, &bare, resource.as_str(), stanza::stamped(text, &full, None)?);
            } else if matches!(el.attr("type"), Some("get" | "set")) {
                stanza::refuse(cx, &el, Condition::ServiceUnavailable);
            }
            Ok(())
        }
    }
}

/// An iq to an account's bare JID (`own`: the client's own, or no `to`).
fn for_account(session: &mut Session, cx: &mut Context, el: &Element, own: bool) -> Result<(), String> {
    let Some(payload) = el.first() else {
        stanza::refuse(cx, el, Condition::BadRequest);
        return Ok(());
    };
    match (payload.name.as_str(), payload.ns.as_str(), el.attr("type")) {
        ("query", roster::NS, _) if own => roster::iq(session, cx, el, payload),
        ("session", SESSION, Some("set")) if own => {
            cx.send(result(el, None));
            Ok(())
        }
        ("query", PRIVATE, _) if own => storage::private(session, cx, el, payload),
        ("vCard", VCARD, _) => storage::vcard(session, cx, el, payload, own),
        ("blocklist" | "block" | "unblock", blocking::NS, _) if own => blocking::iq(session, cx, el, payload),
        ("enable" | "disable", carbons::NS, _) if own => carbons::iq(session, cx, el, payload),
        ("query", register::NS, _) if own => register::after_auth(session, cx, el, payload),
        ("query", archive::NS, _) if own => {
            let archive = archive::Archive::open(&session.bare())?;
            archive::query::answer(cx, el, payload, &archive, None, crate::sm::send_budget(session))
        }
        ("prefs", archive::NS, _) if own => archive::prefs::iq(session, cx, el, payload),
        ("pubsub", pep::NS | pep::OWNER, _) => pep::iq(session, cx, el, payload, own),
        ("query", LAST, Some("get")) if !own => {
            match el.attr("to").and_then(|to| presence::last_activity(session, to)) {
                Some(seconds) => cx.send(result(
                    el,
                    Some(Element::new("query", LAST).with("seconds", seconds.to_string())),
                )),
                None => stanza::refuse(cx, el, Condition::ServiceUnavailable),
            }
            Ok(())
        }
        // With no `to`, the server's own queries answer for it too.
        ("ping", PING, Some("get")) | ("query", VERSION | DISCO_ITEMS, Some("get")) | ("time", TIME, Some("get"))
            if el.attr("to").is_none() =>
        {
            server(session, cx, el)
        }
        ("query", DISCO_INFO, Some("get")) if el.attr("to").is_none() => server(session, cx, el),
        // XEP-0199 §4: the server answers a ping to an account's bare JID.
        ("ping", PING, Some("get")) => {
            if own || el.attr("to").and_then(local_user).is_some() {
                cx.send(result(el, None));
            } else {
                stanza::refuse(cx, el, Condition::ServiceUnavailable);
            }
            Ok(())
        }
        ("query", DISCO_INFO, Some("get")) if let Some(node) = payload.attr("node") => {
            pep::disco::node_info(session, cx, el, node)
        }
        ("query", DISCO_INFO, Some("get")) => {
            let bare = el.attr("to").unwrap_or_default();
            if local_user(bare).is_none() {
                stanza::refuse(cx, el, Condition::ServiceUnavailable);
            } else {
                let info = Element::new("query", DISCO_INFO)
                    .child(
                        Element::new("identity", DISCO_INFO)
                            .with("category", "account")
                            .with("type", "registered"),
                    )
                    .child(Element::new("feature", DISCO_INFO).with("var", DISCO_INFO))
                    .child(Element::new("feature", DISCO_INFO).with("var", archive::NS))
                    .child(Element::new("feature", DISCO_INFO).with("var", archive::SID));
                cx.send(result(el, Some(pep::disco::account_info(info))));
            }
            Ok(())
        }
        ("query", DISCO_ITEMS, Some("get")) => pep::disco::items(session, cx, el, payload),
        _ => {
            stanza::refuse(cx, el, Condition::ServiceUnavailable);
            Ok(())
        }
    }
}

/// An iq to the server itself.
fn server(session: &mut Session, cx: &mut Context, el: &Element) -> Result<(), String> {
    let Some(payload) = el.first() else {
        stanza::refuse(cx, el, Condition::BadRequest);
        return Ok(());
    };
    let answer = match (payload.name.as_str(), payload.ns.as_str(), el.attr("type")) {
        ("ping", PING, Some("get")) => None,
        ("session", SESSION, Some("set")) => None,
        ("query", DISCO_INFO, Some("get")) if payload.attr("node").is_none() => Some(disco_info()),
        // XEP-0115 §6.2: what the server's own caps stand for.
        ("query", DISCO_INFO, Some("get")) if payload.attr("node") == Some(&caps_node()) => {
            Some(disco_info().with("node", caps_node()))
        }
        ("query", DISCO_ITEMS, Some("get")) if payload.attr("node").is_none() => Some(
            Element::new("query", DISCO_ITEMS).child(
                Element::new("item", DISCO_ITEMS)
                    .with("jid", muc::service(&session.domain))
                    .with("name", "Chatrooms"),
            ),
        ),
        ("query", DISCO_ITEMS, Some("get")) => Some(Element::new("query", DISCO_ITEMS)),
        ("query", VERSION, Some("get")) => Some(
            Element::new("query", VERSION)
                .child(Element::new("name", VERSION).text("ej-xmpp"))
                .child(Element::new("version", VERSION).text(env!("CARGO_PKG_VERSION"))),
        ),
        ("time", TIME, Some("get")) => Some(
            Element::new("time", TIME)
                .child(Element::new("tzo", TIME).text("+00:00"))
                .child(Element::new("utc", TIME).text(time::format(time::now()))),
        ),
        ("query", roster::NS, _) => return roster::iq(session, cx, el, payload),
        ("query", DISCO_INFO, Some("result")) if pep::caps::is_answer(el) => {
            return pep::caps::answered(session, cx, el, payload);
        }
        (_, _, Some("result" | "error")) => return Ok(()),
        _ => {
            stanza::refuse(cx, el, Condition::ServiceUnavailable);
            return Ok(());
        }
    };
    let mut answer_to = el.clone();
    if answer_to.attr("to").is_none() {
        answer_to.set_attr("to", session.domain.as_str());
    }
    cx.send(result(&answer_to, answer));
    Ok(())
}

fn disco_info() -> Element {
    let (category, kind, name) = IDENTITY;
    let mut info = Element::new("query", DISCO_INFO).child(
        Element::new("identity", DISCO_INFO)
            .with("category", category)
            .with("type", kind)
            .with("name", name),
    );
    for feature in FEATURES {
        info = info.child(Element::new("feature", DISCO_INFO).with("var", *feature));
    }
    info
}

/// The XEP-0115 verification string of the server's disco#info.
/// The node the server's entity capabilities name (XEP-0115).
pub const CAPS_NODE: &str = "https://github.com/ej";

/// The node of the server's entity capabilities, `NODE#VER`.
fn caps_node() -> String {
    format!("{CAPS_NODE}#{}", caps_ver())
}

pub fn caps_ver() -> String {
    let (category, kind, name) = IDENTITY;
    let mut text = format!("{category}/{kind}//{name}<");
    let mut features = FEATURES.to_vec();
    features.sort_unstable();
    for feature in features {
        text.push_str(feature);
        text.push('<');
    }
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(text.as_bytes()))
}
