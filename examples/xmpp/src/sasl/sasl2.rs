//! XEP-0388 Extensible SASL Profile (SASL2, `urn:xmpp:sasl:2`), offered
//! over TLS only: the same mechanisms as RFC 6120 SASL (the same code runs
//! them), plus HT-SHA-256-NONE with a FAST token ([`super::fast`]). An
//! `<authenticate/>` carries the initial response and what the client
//! wants done once it is in: a `<user-agent/>` naming the installation,
//! Bind2 ([`crate::bind2`]), a FAST token request. The `<success/>` says
//! who the client is (its full JID once bound) and is followed by the
//! stream features at once: there is no stream restart. A `<failure/>`
//! counts like an RFC 6120 one.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ej_guest::Context;
use serde::{Deserialize, Serialize};

use super::{Step, fast};
use crate::xml::Element;
use crate::{Session, bind2, stream};

pub const NS: &str = "urn:xmpp:sasl:2";

/// Why an `<authenticate/>` is refused before any mechanism runs: the
/// SASL condition and a text for the client.
pub type Refusal = (&'static str, &'static str);

/// What an `<authenticate/>` asks for besides authentication, kept in the
/// exchange while a challenge is out.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Request {
    /// The `<user-agent/>` id (a UUID, lower case): the client
    /// installation FAST tokens and stable Bind2 resources belong to.
    agent: Option<String>,
    /// The Bind2 request, if the client wants a resource bound.
    bind: Option<bind2::Request>,
    fast: fast::Request,
}

impl Request {
    fn parse(el: &Element) -> Result<Self, Refusal> {
        let agent = match el.get("user-agent", NS).and_then(|agent| agent.attr("id")) {
            Some(id) => Some(uuid(id).ok_or(("malformed-request", "the user-agent id is not a UUID"))?),
            None => None,
        };
        let bind = el.get("bind", bind2::NS).map(bind2::Request::parse).transpose()?;
        let fast = fast::Request::parse(el, agent.is_some())?;
        Ok(Self { agent, bind, fast })
    }
}

/// `id` normalised to lower case if it is a UUID (8-4-4-4-12 hex digits).
fn uuid(id: &str) -> Option<String> {
    let shaped = id.len() == 36
        && id.char_indices().all(|(at, c)| match at {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    shaped.then(|| id.to_ascii_lowercase())
}

/// The `<authentication/>` stream feature: `mechanisms`, and what may be
/// negotiated inline (Bind2 and FAST).
pub fn feature(mechanisms: &[&str]) -> Element {
    let offer = mechanisms
        .iter()
        .fold(Element::new("authentication", NS), |offer, name| {
            offer.child(Element::new("mechanism", NS).text(*name))
        });
    offer.child(
        Element::new("inline", NS)
            .child(bind2::feature())
            .child(fast::feature()),
    )
}

/// One SASL2 element from the client: `<authenticate/>`, `<response/>` or
/// `<abort/>`.
pub fn step(session: &mut Session, cx: &mut Context, el: &Element) -> Result<(), String> {
    if cx.conn().tls.is_none() {
        fail(session, cx, ("encryption-required", "SASL2 is offered over TLS only"));
        return Ok(());
    }
    match el.name.as_str() {
        "authenticate" => authenticate(session, cx, el),
        "response" => {
            let pending = session.sasl.take().and_then(|mut exchange| {
                let request = exchange.sasl2.take()?;
                Some((exchange, request))
            });
            let Some((exchange, request)) = pending else {
                fail(
                    session,
                    cx,
                    ("malformed-request", "no SASL2 authentication is under way"),
                );
                return Ok(());
            };
            let result = super::decode(&el.content()).and_then(|data| super::respond(session, cx, exchange, &data));
            answer(session, cx, request, result.map(|step| (step, None)))
        }
        "abort" => {
            fail(session, cx, ("aborted", "the client aborted"));
            Ok(())
        }
        _ => {
            fail(session, cx, ("malformed-request", "not a SASL2 element"));
            Ok(())
        }
    }
}

/// `<authenticate/>`: checks what it asks for, then runs its mechanism on
/// the initial response.
fn authenticate(session: &mut Session, cx: &mut Context, el: &Element) -> Result<(), String> {
    session.sasl = None;
    let request = match Request::parse(el) {
        Ok(request) => request,
        Err(refusal) => {
            fail(session, cx, refusal);
            return Ok(());
        }
    };
    let mechanism = el.attr("mechanism").unwrap_or_default();
    let data = el
        .get("initial-response", NS)
        .map_or(Ok(Vec::new()), |response| super::decode(&response.content()));
    let result = data.and_then(|data| {
        if mechanism == fast::MECHANISM {
            let (success, used) = fast::authenticate(session, request.agent.as_deref(), &data)?;
            Ok((Step::Done(success), Some(used)))
        } else {
            super::start(session, cx, mechanism, &data).map(|step| (step, None))
        }
    });
    answer(session, cx, request, result)
}

/// Answers the client with what the mechanism made of its message (and,
/// for a FAST token, which one proved it).
fn answer(
    session: &mut Session,
    cx: &mut Context,
    request: Request,
    result: Result<(Step, Option<fast::Used>), &'static str>,
) -> Result<(), String> {
    match result {
        Ok((Step::Challenge(challenge), _)) => {
            if let Some(exchange) = &mut session.sasl {
                exchange.sasl2 = Some(request);
            }
            cx.send(Element::new("challenge", NS).text(BASE64.encode(challenge)).to_xml());
            Ok(())
        }
        Ok((Step::Done(success), used)) => succeed(session, cx, request, success, used),
        Err(condition) => {
            fail(session, cx, (condition, ""));
            Ok(())
        }
    }
}

/// The client is in: FAST's tokens are settled, then the success goes out
/// at once, or once the Bind2 resource is bound.
fn succeed(
    session: &mut Session,
    cx: &mut Context,
    request: Request,
    success: super::Success,
    used: Option<fast::Used>,
) -> Result<(), String> {
    let token = fast::settle(&success.user, request.agent.as_deref(), &request.fast, used)?;
    session.user = Some(success.user);
    session.sasl = None;
    // No stream restart: the stream goes on, authenticated, and may carry
    // stanzas as large as the host allows.
    cx.max_stanza(u32::MAX);
    let reply = Reply {
        additional: success.additional.map(|data| BASE64.encode(data)),
        token,
    };
    match request.bind {
        Some(bind) => bind2::bind(session, cx, bind, request.agent.as_deref(), reply),
        None => {
            cx.send(reply.success(&session.bare(), None));
            cx.send(stream::features(session, cx));
        }
    }
    Ok(())
}

/// What a `<success/>` carries besides the client's address and Bind2's
/// answer (kept in the state while a Bind2 resource is being freed).
#[derive(Default, Serialize, Deserialize)]
pub struct Reply {
    /// The mechanism's final message, base64.
    additional: Option<String>,
    /// A FAST token issued (XEP-0484).
    token: Option<fast::Token>,
}

impl Reply {
    /// The `<success/>` for the client at `jid` (its full JID once bound),
    /// with Bind2's `<bound/>` if it bound.
    pub fn success(&self, jid: &str, bound: Option<Element>) -> String {
        let mut success = Element::new("success", NS);
        if let Some(additional) = &self.additional {
            success = success.child(Element::new("additional-data", NS).text(additional.as_str()));
        }
        success = success.child(Element::new("authorization-identifier", NS).text(jid));
        if let Some(bound) = bound {
            success = success.child(bound);
        }
        if let Some(token) = &self.token {
            success = success.child(token.element());
        }
        success.to_xml()
    }
}

/// Sends a `<failure/>` with `condition` (an RFC 6120 SASL condition) and
/// `text`, if any, and counts it like any failed attempt.
fn fail(session: &mut Session, cx: &mut Context, (condition, text): Refusal) {
    let mut failure = Element::new("failure", NS).child(Element::new(condition, super::NS));
    if !text.is_empty() {
        failure = failure.child(Element::new("text", NS).text(text));
    }
    super::fail(session, cx, failure.to_xml());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(inside: &str) -> Result<Request, Refusal> {
        Request::parse(
            &Element::parse(&format!(
                "<authenticate xmlns='{NS}' mechanism='PLAIN'>{inside}</authenticate>"
            ))
            .unwrap(),
        )
    }

    #[test]
    fn takes_a_uuid_user_agent_in_lower_case_and_refuses_another_id() {
        let request = parse("<user-agent id='D0C5E4B2-7F1A-4C3B-9E8D-2A1B3C4D5E6F'/>").unwrap();
        assert_eq!(request.agent.as_deref(), Some("d0c5e4b2-7f1a-4c3b-9e8d-2a1b3c4d5e6f"));
        for id in [
            "laptop",
            "d0c5e4b2-7f1a-4c3b-9e8d-2a1b3c4d5e6",
            "d0c5e4b2/7f1a-4c3b-9e8d-2a1b3c4d5e6f",
        ] {
            let refused = parse(&format!("<user-agent id='{id}'/>")).err();
            assert_eq!(
                refused,
                Some(("malformed-request", "the user-agent id is not a UUID")),
                "{id}"
            );
        }
        assert!(
            parse("<user-agent><software>x</software></user-agent>")
                .unwrap()
                .agent
                .is_none()
        );
    }

    #[test]
    fn a_token_request_needs_the_fast_mechanism_and_a_user_agent_id() {
        let agent = "<user-agent id='d0c5e4b2-7f1a-4c3b-9e8d-2a1b3c4d5e6f'/>";
        let request = |mechanism: &str| format!("<request-token xmlns='{}' mechanism='{mechanism}'/>", fast::NS);
        assert!(parse(&format!("{agent}{}", request(fast::MECHANISM))).is_ok());
        assert_eq!(
            parse(&request(fast::MECHANISM)).err().map(|(condition, _)| condition),
            Some("malformed-request")
        );
        let other = parse(&format!("{agent}{}", request("HT-SHA-256-ENDP")));
        assert_eq!(other.err().map(|(condition, _)| condition), Some("invalid-mechanism"));
    }
}
