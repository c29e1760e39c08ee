//! XEP-0386 Bind 2: resource binding inside a SASL2 `<authenticate/>`,
//! answered in its `<success/>`. The resource is the client's `<tag/>` and
//! a server-generated part, `TAG/PART`; the part is derived from the
//! account and the SASL2 user-agent id when the client gives one, so an
//! installation gets the same resource each time and its new session
//! replaces its old one (the binding itself is [`crate::bind`]'s, conflicts
//! included). Session features may be switched on in the same step: message
//! carbons, the client's initial CSI state, and stream management (XEP-0198,
//! answered inside `<bound/>`). After it the session is bound exactly as
//! after an RFC 6120 bind.

use ej_guest::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::sasl::sasl2::{Refusal, Reply};
use crate::xml::Element;
use crate::{Session, bind, carbons, sm, stanza, stream};

pub const NS: &str = "urn:xmpp:bind:0";
/// The longest `<tag/>` accepted, in bytes.
pub const MAX_TAG: usize = 64;

/// What a `<bind/>` asks for, checked before authentication goes on.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Request {
    /// The tag, resourceprepped.
    tag: Option<String>,
    /// XEP-0280: enable carbons.
    carbons: bool,
    /// XEP-0352: start inactive (or active).
    inactive: bool,
    /// XEP-0198: the `<enable/>` to answer inside `<bound/>`.
    sm: Option<sm::Enable>,
}

impl Request {
    pub fn parse(bind: &Element) -> Result<Self, Refusal> {
        let tag = match bind.child_text("tag", NS).as_deref().map(str::trim) {
            None | Some("") => None,
            Some(tag) if tag.len() > MAX_TAG => {
                return Err(("malformed-request", "the Bind2 tag is longer than 64 bytes"));
            }
            Some(tag) => Some(
                jid::ResourcePart::new(tag)
                    .map_err(|_| ("malformed-request", "the Bind2 tag is not a valid resource"))?
                    .as_str()
                    .to_owned(),
            ),
        };
        Ok(Self {
            tag,
            carbons: bind.get("enable", carbons::NS).is_some(),
            inactive: bind.get("inactive", stanza::CSI).is_some(),
            sm: bind.get("enable", sm::NS).map(sm::Enable::parse),
        })
    }
}

/// Bind2's inline feature for SASL2, with the session features it can
/// switch on.
pub fn feature() -> Element {
    let inline = [carbons::NS, stanza::CSI, sm::NS]
        .into_iter()
        .fold(Element::new("inline", NS), |inline, var| {
            inline.child(Element::new("feature", NS).with("var", var))
        });
    Element::new("bind", NS).child(inline)
}

/// A SASL2 success waiting for its resource to be bound.
#[derive(Serialize, Deserialize)]
pub struct Pending {
    request: Request,
    reply: Reply,
}

/// Binds a resource for the authenticated `session`, as `request` asks,
/// for the installation `agent` if known; `reply` goes out once it is
/// bound ([`bound`]).
pub fn bind(session: &mut Session, cx: &mut Context, request: Request, agent: Option<&str>, reply: Reply) {
    let part = match agent {
        Some(agent) => {
            let digest = Sha256::digest(format!("bind2\0{}\0{agent}", session.bare()));
            digest[..12].iter().map(|byte| format!("{byte:02x}")).collect()
        }
        None => stream::random_id(),
    };
    let resource = match &request.tag {
        Some(tag) => format!("{tag}/{part}"),
        None => part,
    };
    bind::inline(session, cx, resource, Pending { request, reply });
}

/// The resource is bound: switches on what the client asked for and sends
/// the success, then the features of the bound stream.
pub fn bound(session: &mut Session, cx: &mut Context, pending: Pending) {
    let Pending { request, reply } = pending;
    if request.carbons {
        carbons::enable(session);
    }
    session.inactive = request.inactive;
    let mut answer = Element::new("bound", NS);
    if let Some(enable) = request.sm {
        answer = answer.child(sm::enable(session, cx, enable));
    }
    cx.send(reply.success(&session.full(), Some(answer)));
    cx.send(stream::features(session, cx));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(inside: &str) -> Result<Request, Refusal> {
        Request::parse(&Element::parse(&format!("<bind xmlns='{NS}'>{inside}</bind>")).unwrap())
    }

    #[test]
    fn reads_the_tag_and_the_session_features() {
        let request = parse(&format!(
            "<tag> Laptop </tag><enable xmlns='{}'/><inactive xmlns='{}'/>",
            carbons::NS,
            stanza::CSI
        ))
        .unwrap();
        assert_eq!(request.tag.as_deref(), Some("Laptop"));
        assert!(request.carbons && request.inactive);
        let bare = parse("<tag></tag>").unwrap();
        assert!(bare.tag.is_none() && !bare.carbons && !bare.inactive);
    }

    #[test]
    fn refuses_a_tag_over_64_bytes() {
        assert!(parse(&format!("<tag>{}</tag>", "x".repeat(MAX_TAG))).is_ok());
        let refused = parse(&format!("<tag>{}</tag>", "x".repeat(MAX_TAG + 1))).err();
        assert_eq!(refused.map(|(condition, _)| condition), Some("malformed-request"));
    }
}
