//! Keeping track of clients that went quiet (XEP-0199 server-to-client
//! pings): after `IDLE_MS` without a stanza from the client the server
//! pings it, and closes the stream if no stanza comes within `ANSWER_MS`.
//! Whitespace keepalives alone do not count (the host does not pass them
//! on); a client answers pings, so a live one is never closed.

use ej_guest::Context;

use crate::Session;
use crate::stream;
use crate::xml::{CLIENT, Element};

const IDLE: &str = "idle";
const DEAD: &str = "dead";
const IDLE_MS: u32 = 180_000;
const ANSWER_MS: u32 = 60_000;

/// A stanza came from the client: it is alive.
pub fn heard(cx: &mut Context) {
    cx.set_timer(IDLE, IDLE_MS);
    cx.cancel_timer(DEAD);
}

/// The client is away (its session waits for it to resume): no pings.
pub fn stop(cx: &mut Context) {
    cx.cancel_timer(IDLE);
    cx.cancel_timer(DEAD);
}

/// One of this module's timers fired.
pub fn timer(session: &Session, cx: &mut Context, tag: &str) -> Result<(), String> {
    match tag {
        IDLE => {
            let ping = Element::new("iq", CLIENT)
                .with("type", "get")
                .with("id", format!("ping-{}", stream::random_id()))
                .with("from", session.domain.as_str())
                .with("to", session.full())
                .child(Element::new("ping", "urn:xmpp:ping"));
            cx.send(ping.to_xml());
            cx.set_timer(DEAD, ANSWER_MS);
        }
        DEAD => stream::error(cx, "connection-timeout", "no answer to a ping"),
        _ => {}
    }
    Ok(())
}
