//! Stream management (XEP-0198 1.6.1): acknowledgements both ways, and
//! resumption through the host's `hold` and `take-over`.
//!
//! Once a bound client enables it, the session counts the stanzas it
//! handled from the client (`handled`, what `<a h=…/>` answers) and keeps
//! every stanza it sent until the client acknowledges it (`unacked`, in
//! the session state; [`Session::after`](crate::Session) feeds it whatever
//! an event sent). With `resume='true'` the session holds itself for the
//! client under a token (`hold`): if the socket goes, the host keeps the
//! session — addresses, timers, presence — and its events go on, their
//! stanzas joining `unacked`. A new stream that authenticates as the same
//! account and sends `<resume previd=…/>` takes it over (`take-over`): the
//! old state comes back, the client's `h` drops what it had, the rest is
//! sent again in order. If no one resumes within the window, `closed`
//! hands the messages the client never acknowledged to the account's other
//! sessions or its offline store.

use std::collections::VecDeque;

use ej_guest::{CloseReason, Context, Handler};
use serde::{Deserialize, Serialize};

use crate::xml::{CLIENT, Element};
use crate::{Session, keepalive, message, muc, stanza, stream};

pub const NS: &str = "urn:xmpp:sm:3";

/// How long a session waits for its client to resume, at most (what
/// `<enabled max=…/>` says), in seconds.
const MAX_RESUME_SECONDS: u32 = 300;

/// Bytes of unacknowledged stanzas a session keeps; a client that lets
/// more pile up is cut off (`resource-constraint`), its messages kept.
pub const MAX_UNACKED_BYTES: usize = 256 * 1024;

/// Stream management on one session.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Managed {
    /// The id a client resumes with (`previd`), if resumption is on.
    id: Option<String>,
    /// Stanzas handled from the client, modulo 2^32.
    handled: u32,
    /// Stanzas sent to the client, modulo 2^32.
    sent: u32,
    /// Those the client has not acknowledged, oldest first: numbers
    /// `sent - unacked.len() + 1 ..= sent`.
    unacked: VecDeque<String>,
    unacked_bytes: usize,
    /// Whether an `<r/>` is unanswered.
    requested: bool,
    /// Sends of the current event that are not new stanzas (those sent
    /// again on resumption).
    #[serde(skip)]
    resent: usize,
}

/// A `<resume/>` waiting for the host's `took-over`.
#[derive(Serialize, Deserialize)]
pub struct Resuming {
    previd: String,
    h: u32,
}

/// The stream feature, offered once the client has authenticated, unless
/// it is on already (enabled inside Bind2).
pub fn feature(session: &Session) -> String {
    match session.sm {
        Some(_) => String::new(),
        None => format!("<sm xmlns='{NS}'/>"),
    }
}

/// The host token of a resumable session: namespaced by the account, so a
/// client can only ever resume its own sessions.
fn token(bare: &str, id: &str) -> String {
    format!("xmpp-sm/{bare}/{id}")
}

/// An element in the stream management namespace, after authentication.
pub fn nonza(session: &mut Session, cx: &mut Context, el: &Element) -> Result<(), String> {
    match el.name.as_str() {
        "enable" if session.resource.is_some() && session.sm.is_none() => {
            let enabled = enable(session, cx, Enable::parse(el));
            cx.send(enabled.to_xml());
        }
        "resume" if session.resource.is_none() && session.resuming.is_none() => resume(session, cx, el),
        "enable" | "resume" => failed(cx, "unexpected-request"),
        "r" => match &session.sm {
            Some(sm) => cx.send(format!("<a xmlns='{NS}' h='{}'/>", sm.handled)),
            None => failed(cx, "unexpected-request"),
        },
        "a" => acknowledged(session, cx, el),
        _ => {}
    }
    Ok(())
}

fn failed(cx: &mut Context, condition: &str) {
    cx.send(format!(
        "<failed xmlns='{NS}'><{condition} xmlns='{}'/></failed>",
        stanza::STANZAS
    ));
}

/// What an `<enable/>` asks for.
#[derive(Clone, Serialize, Deserialize)]
pub struct Enable {
    resume: bool,
    /// The longest the client wants its session kept, in seconds.
    max: Option<u32>,
}

impl Enable {
    pub fn parse(el: &Element) -> Self {
        Self {
            resume: matches!(el.attr("resume"), Some("true" | "1")),
            max: el.attr("max").and_then(|max| max.parse().ok()),
        }
    }
}

/// Enables stream management on a bound session; returns the `<enabled/>`
/// that says so (on its own, or inside Bind2's `<bound/>`).
pub fn enable(session: &mut Session, cx: &mut Context, enable: Enable) -> Element {
    let mut managed = Managed::default();
    let mut enabled = Element::new("enabled", NS);
    if enable.resume {
        let seconds = enable.max.unwrap_or(u32::MAX).clamp(1, MAX_RESUME_SECONDS);
        let id = stream::random_id();
        cx.hold(token(&session.bare(), &id), seconds * 1000);
        enabled = enabled
            .with("id", id.as_str())
            .with("resume", "true")
            .with("max", seconds.to_string());
        managed.id = Some(id);
    }
    session.sm = Some(managed);
    enabled
}

fn resume(session: &mut Session, cx: &mut Context, el: &Element) {
    let (Some(previd), Some(h)) = (el.attr("previd"), el.attr("h").and_then(|h| h.parse().ok())) else {
        failed(cx, "bad-request");
        return;
    };
    cx.take_over(token(&session.bare(), previd));
    session.resuming = Some(Resuming {
        previd: previd.to_owned(),
        h,
    });
}

/// What the host's `take-over` found for a `<resume/>`: the held session
/// carries on over this stream.
pub fn took_over(session: &mut Session, cx: &mut Context, held: Option<Vec<u8>>) -> Result<(), String> {
    let Some(Resuming { previd, h }) = session.resuming.take() else {
        return Ok(());
    };
    let Some(held) = held else {
        failed(cx, "item-not-found");
        return Ok(());
    };
    // This connection is the held session now, whatever follows.
    let mut old = Session::decode(&held)?;
    old.stream_id = std::mem::take(&mut session.stream_id);
    old.failures = session.failures;
    *session = old;
    keepalive::heard(cx);
    let Some(sm) = session.sm.as_mut() else {
        return Err("a held session without stream management".to_owned());
    };
    if let Err(error) = sm.acknowledge(h) {
        stream::error(cx, "undefined-condition", &error);
        return Ok(());
    }
    cx.send(format!(
        "<resumed xmlns='{NS}' h='{}' previd='{}'/>",
        sm.handled,
        crate::xml::escape(&previd)
    ));
    for stanza in &sm.unacked {
        cx.send(stanza.as_str());
    }
    sm.resent = sm.unacked.len() + 1;
    sm.requested = false;
    Ok(())
}

/// The socket went; the session waits for its client to resume. Pings
/// would only time it out early.
pub fn detached(cx: &mut Context) {
    keepalive::stop(cx);
}

/// `<a h=…/>` from the client.
fn acknowledged(session: &mut Session, cx: &mut Context, el: &Element) {
    let (Some(sm), Some(h)) = (session.sm.as_mut(), el.attr("h").and_then(|h| h.parse().ok())) else {
        return;
    };
    if let Err(error) = sm.acknowledge(h) {
        stream::error(cx, "undefined-condition", &error);
    }
    sm.requested = false;
}

impl Managed {
    /// The client has handled `h` stanzas: forgets those. An `h` behind
    /// what it acknowledged before changes nothing; one ahead of what was
    /// sent is an error.
    fn acknowledge(&mut self, h: u32) -> Result<(), String> {
        let first_unacked = self.sent.wrapping_sub(self.unacked.len() as u32);
        let newly = h.wrapping_sub(first_unacked);
        if newly > u32::MAX / 2 {
            return Ok(());
        }
        let newly = newly as usize;
        if newly > self.unacked.len() {
            return Err(format!(
                "the client acknowledged {h} stanzas, but only {} were sent",
                self.sent
            ));
        }
        for stanza in self.unacked.drain(..newly) {
            self.unacked_bytes -= stanza.len();
        }
        Ok(())
    }
}

/// A stanza from the client was handled.
pub fn handled(session: &mut Session, el: &Element) {
    if let Some(sm) = session.sm.as_mut()
        && el.ns == CLIENT
        && matches!(el.name.as_str(), "message" | "presence" | "iq")
    {
        sm.handled = sm.handled.wrapping_add(1);
    }
}

/// After every event: what it sent joins the stanzas waiting for an
/// acknowledgement, and one is asked for.
pub fn after(session: &mut Session, cx: &mut Context) {
    let Some(sm) = session.sm.as_mut() else {
        return;
    };
    let resent = std::mem::take(&mut sm.resent);
    let before = sm.sent;
    for text in cx.sent().skip(resent).filter(|text| is_stanza(text)) {
        sm.sent = sm.sent.wrapping_add(1);
        sm.unacked_bytes += text.len();
        sm.unacked.push_back(text.to_owned());
    }
    // Asked once per burst of stanzas: never in answer to an `<a/>` alone,
    // or a client that acknowledges one short would ping-pong forever.
    let fresh = sm.sent != before || resent > 0;
    if sm.unacked_bytes > MAX_UNACKED_BYTES {
        stream::error(cx, "resource-constraint", "too many stanzas were not acknowledged");
    } else if fresh && !sm.unacked.is_empty() && !sm.requested {
        cx.send(format!("<r xmlns='{NS}'/>"));
        sm.requested = true;
    }
}

/// Whether `text` is a stanza (what the counts count), not a nonza.
fn is_stanza(text: &str) -> bool {
    let text = text.trim_start();
    ["<message", "<presence", "<iq"].iter().any(|name| {
        text.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with([' ', '>', '/']))
    })
}

/// How much one event may send the client: with stream management, what
/// it sends stays in the state too (JSON may double it) until the client
/// acknowledges it, all under the same outcome limit.
pub fn send_budget(session: &Session) -> usize {
    match &session.sm {
        Some(sm) => crate::SEND_BUDGET.saturating_sub(2 * sm.unacked_bytes) / 3,
        None => crate::SEND_BUDGET,
    }
}

/// How much one event may route to other sessions: what stream management
/// keeps in the state (JSON may double it) shares the outcome limit.
pub fn route_budget(session: &Session) -> usize {
    let unacked = session.sm.as_ref().map_or(0, |sm| sm.unacked_bytes);
    crate::SEND_BUDGET.saturating_sub(2 * unacked)
}

/// The session ends: the messages its client never acknowledged go to the
/// account's other sessions, or are kept offline — unless the client ended
/// its stream itself, having read what came before its end (a client
/// whose count runs one short would otherwise get its last message twice).
pub fn closing(session: &mut Session, cx: &mut Context, reason: CloseReason) -> Result<(), String> {
    let Some(sm) = session.sm.take() else {
        return Ok(());
    };
    if reason == CloseReason::StreamEnd {
        return Ok(());
    }
    for text in &sm.unacked {
        let Ok(el) = Element::parse(text) else { continue };
        let chat = el.name == "message"
            && matches!(el.attr("type"), None | Some("chat" | "normal"))
            && el.get("body", CLIENT).is_some()
            && !el.attr("from").is_some_and(|from| muc::is_service(session, from));
        if chat {
            message::to_bare_again(cx, text, &el)?;
        }
    }
    Ok(())
}
