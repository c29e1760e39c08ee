//! Entity capabilities (XEP-0115), as far as PEP needs them: which nodes a
//! session wants news of (the `NODE+notify` features of its client).
//!
//! A client's presence carries `<c hash='…' node='…' ver='…'/>`, and the
//! server keeps that presence (see `presence::Resource`), so a session's
//! caps are always where its presence is. What a `ver` stands for is asked
//! once, of the first session that shows it (a disco#info query from the
//! server to that client), checked against the hash, and cached in the
//! store for every session to use: only the nodes it wants, in a fixed
//! number of slots by a hash of `ver` (a new one takes its slot over), so
//! the cache stays bounded whatever clients send.

use std::collections::HashMap;

use base64::Engine as _;
use ej_guest::{Context, store};
use serde::{Deserialize, Serialize};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use super::{MAX_NAME, notify};
use crate::presence::Resource;
use crate::xml::{CLIENT, Element};
use crate::{Session, keys};

pub const NS: &str = "http://jabber.org/protocol/caps";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const DATA: &str = "jabber:x:data";
/// The ids of the server's queries: this, the hash, `:`, the ver.
const QUERY: &str = "pep-caps:";
/// Slots of the cache.
const SLOTS: u16 = 4096;
/// Nodes one ver may want news of.
const MAX_INTERESTS: usize = 256;

/// What a presence's `<c/>` says.
pub struct Caps {
    hash: String,
    ver: String,
    node: String,
}

/// What the cache keeps of a ver: the nodes it wants news of.
#[derive(Serialize, Deserialize)]
struct Learned {
    ver: String,
    interests: Vec<String>,
}

impl Caps {
    /// The caps `presence` carries, if any with a hash this server checks.
    fn of(presence: &Element) -> Option<Self> {
        let c = presence.get("c", NS)?;
        let hash = c.attr("hash").filter(|hash| matches!(*hash, "sha-1" | "sha-256"))?;
        Some(Self {
            hash: hash.to_owned(),
            ver: c.attr("ver")?.to_owned(),
            node: c.attr("node").unwrap_or_default().to_owned(),
        })
    }

    /// The same, of a presence's text.
    fn of_text(presence: &str) -> Option<Self> {
        Self::of(&Element::parse(presence).ok()?)
    }

    /// The nodes this ver wants news of, if it is known.
    fn interests(&self) -> Option<Vec<String>> {
        let learned: Learned = store::get_json(&keys::caps(slot(&self.ver))).ok()??;
        (learned.ver == self.ver).then_some(learned.interests)
    }

    /// The server's disco#info query to `to` (XEP-0115 §6.2).
    fn query(&self, from: &str, to: &str) -> String {
        Element::new("iq", CLIENT)
            .with("type", "get")
            .with("from", from)
            .with("to", to)
            .with("id", format!("{QUERY}{}:{}", self.hash, self.ver))
            .child(Element::new("query", DISCO_INFO).with("node", format!("{}#{}", self.node, self.ver)))
            .to_xml()
    }
}

/// The cache slot of `ver`.
fn slot(ver: &str) -> u16 {
    let digest = Sha1::digest(ver.as_bytes());
    u16::from_be_bytes([digest[0], digest[1]]) % SLOTS
}

/// What sessions want, by the presence each sent last, for one event.
#[derive(Default)]
pub struct Interests(HashMap<String, Vec<String>>);

impl Interests {
    /// The nodes the session that sent `presence` wants news of (none
    /// while its caps are unknown).
    pub fn of(&mut self, presence: &str) -> &[String] {
        match Caps::of_text(presence) {
            Some(caps) => self
                .0
                .entry(caps.ver.clone())
                .or_insert_with(|| caps.interests().unwrap_or_default())
                .as_slice(),
            None => &[],
        }
    }
}

/// Available presence from the client, before it is kept
/// (`session.available` still says whether it was before): with caps new
/// to this session, the session gets the last items it wants, or the
/// client is asked what its caps mean. Only caps that changed lead here
/// again, not every presence (XEP-0163 §4.3.2).
pub fn available(session: &Session, cx: &mut Context, presence: &Element) -> Result<(), String> {
    let Some(caps) = Caps::of(presence) else {
        return Ok(());
    };
    if session.available && current(session)?.is_some_and(|before| before.ver == caps.ver) {
        return Ok(());
    }
    match caps.interests() {
        Some(interests) => notify::last_items(session, cx, &interests),
        None => {
            cx.send(caps.query(&session.domain, &session.full()));
            Ok(())
        }
    }
}

/// The caps of the presence the session sent last.
fn current(session: &Session) -> Result<Option<Caps>, String> {
    let key = keys::resource(
        session.user.as_deref().unwrap_or_default(),
        session.resource.as_deref().unwrap_or_default(),
    );
    let resource: Option<Resource> = store::get_json(&key)?;
    Ok(resource.and_then(|resource| Caps::of_text(&resource.presence)))
}

/// Whether `el`, an iq result to the server, answers one of its queries.
pub fn is_answer(el: &Element) -> bool {
    el.attr("id").is_some_and(|id| id.starts_with(QUERY))
}

/// The client's answer to the server's query: if it matches the hash, the
/// nodes it wants are cached, and the session, if its presence still
/// shows these caps, gets their last items.
pub fn answered(session: &Session, cx: &mut Context, el: &Element, info: &Element) -> Result<(), String> {
    let asked = el.attr("id").and_then(|id| id.strip_prefix(QUERY));
    let Some((hash, ver)) = asked.and_then(|asked| asked.split_once(':')) else {
        return Ok(());
    };
    if verification(info, hash).as_deref() != Some(ver) {
        return Ok(());
    }
    let interests: Vec<String> = info
        .elements()
        .filter(|feature| feature.name == "feature" && feature.ns == DISCO_INFO)
        .filter_map(|feature| feature.attr("var")?.strip_suffix("+notify"))
        .filter(|node| !node.is_empty() && node.len() <= MAX_NAME)
        .take(MAX_INTERESTS)
        .map(str::to_owned)
        .collect();
    let learned = Learned {
        ver: ver.to_owned(),
        interests,
    };
    store::put_json(&keys::caps(slot(ver)), &learned)?;
    if session.available && current(session)?.is_some_and(|caps| caps.ver == ver) {
        notify::last_items(session, cx, &learned.interests)?;
    }
    Ok(())
}

/// The verification string of disco#info `info` with `hash` (XEP-0115
/// §5.1); none for a hash this server does not compute, or an answer
/// with duplicate identities, features or form types (§5.4).
pub fn verification(info: &Element, hash: &str) -> Option<String> {
    let children = |name: &'static str, ns: &'static str| {
        info.elements()
            .filter(move |child| child.name == name && child.ns == ns)
    };
    // By category, type, language, then name: each as a field of its own.
    let identities =
        distinct(children("identity", DISCO_INFO).map(|identity| {
            ["category", "type", "xml:lang", "name"].map(|name| identity.attr(name).unwrap_or_default())
        }))?;
    let identities = identities.iter().map(|identity| identity.join("/"));
    let features = distinct(children("feature", DISCO_INFO).map(|feature| feature.attr("var").unwrap_or_default()))?;
    let mut forms: Vec<(String, String)> = children("x", DATA).filter_map(form).collect();
    forms.sort_unstable();
    if forms.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return None;
    }
    let mut text = String::new();
    for part in identities.chain(features.iter().map(|feature| (*feature).to_owned())) {
        text.push_str(&part);
        text.push('<');
    }
    for (_, form) in forms {
        text.push_str(&form);
    }
    let digest = match hash {
        "sha-1" => Sha1::digest(text.as_bytes()).to_vec(),
        "sha-256" => Sha256::digest(text.as_bytes()).to_vec(),
        _ => return None,
    };
    Some(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// `items` sorted, if none is there twice.
fn distinct<T: Ord>(items: impl Iterator<Item = T>) -> Option<Vec<T>> {
    let mut items: Vec<T> = items.collect();
    items.sort_unstable();
    let before = items.len();
    items.dedup();
    (items.len() == before).then_some(items)
}

/// An extended information form (XEP-0128) as the verification string
/// has it, with its FORM_TYPE: none for a form without a hidden FORM_TYPE
/// (which is ignored).
fn form(x: &Element) -> Option<(String, String)> {
    let values = |field: &Element| -> Vec<String> {
        let mut values: Vec<String> = field
            .elements()
            .filter(|value| value.name == "value" && value.ns == DATA)
            .map(Element::content)
            .collect();
        values.sort_unstable();
        values
    };
    let fields: Vec<&Element> = x
        .elements()
        .filter(|field| field.name == "field" && field.ns == DATA)
        .collect();
    let form_type = fields
        .iter()
        .find(|field| field.attr("var") == Some("FORM_TYPE") && field.attr("type") == Some("hidden"))
        .map(|field| values(field).concat())?;
    let mut others: Vec<(&str, Vec<String>)> = fields
        .iter()
        .filter_map(|field| Some((field.attr("var").filter(|var| *var != "FORM_TYPE")?, values(field))))
        .collect();
    others.sort_unstable();
    let mut text = format!("{form_type}<");
    for (var, values) in others {
        text.push_str(var);
        text.push('<');
        for value in values {
            text.push_str(&value);
            text.push('<');
        }
    }
    Some((form_type, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0115 §5.2 and §5.3.
    #[test]
    fn verification_strings_match_the_examples_of_the_specification() {
        let simple = Element::parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='client' name='Exodus 0.9.1' type='pc'/>\
             <feature var='http://jabber.org/protocol/caps'/>\
             <feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='http://jabber.org/protocol/disco#items'/>\
             <feature var='http://jabber.org/protocol/muc'/></query>",
        )
        .unwrap();
        assert_eq!(verification(&simple, "sha-1").unwrap(), "QgayPKawpkPSDYmwT/WM94uAlu0=");
        let complex = Element::parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>\
             <identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/>\
             <feature var='http://jabber.org/protocol/caps'/>\
             <feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='http://jabber.org/protocol/disco#items'/>\
             <feature var='http://jabber.org/protocol/muc'/>\
             <x xmlns='jabber:x:data' type='result'>\
             <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>\
             <field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>\
             <field var='os'><value>Mac</value></field>\
             <field var='os_version'><value>10.5.1</value></field>\
             <field var='software'><value>Psi</value></field>\
             <field var='software_version'><value>0.11</value></field></x></query>",
        )
        .unwrap();
        assert_eq!(verification(&complex, "sha-1").unwrap(), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
        // A feature twice is not an answer caps may describe.
        let twice = Element::parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <feature var='urn:x'/><feature var='urn:x'/></query>",
        )
        .unwrap();
        assert_eq!(verification(&twice, "sha-1"), None);
    }
}
