//! XMPP: the client-to-server protocol of an instant-messaging server
//! (RFC 6120 and RFC 6121, and the everyday XEPs), as an ej handler. The
//! host knows nothing of XMPP: it frames the stream, runs TLS when asked,
//! and routes payloads between addresses; everything else is here, run in
//! a fresh instance for every event.
//!
//! Where things live:
//! - the connection's state (this crate's [`Session`], a hundred bytes or
//!   so of JSON): the stream, the SASL exchange under way, who is logged in,
//!   the bound resource, the client's presence flags;
//! - the store, per account (see [`keys`]): credentials, the roster,
//!   subscription requests waiting, each resource's presence, offline
//!   messages — read and written by each event under the host's
//!   serializable guarantee, so the two sides of a subscription change
//!   together;
//! - the registry: each bound resource holds the address
//!   `xmpp/LOCAL@DOMAIN/RESOURCE`, so a lookup of `xmpp/LOCAL@DOMAIN/` lists
//!   a user's sessions, and a route to one delivers a stanza to it.
//!
//! The modules follow the protocol: [`stream`] (negotiation and errors),
//! [`sasl`] (with SASL2 and FAST), [`archive`] (message archives), [`bind`]
//! and [`bind2`], [`sm`] (stream management), [`roster`], [`presence`],
//! [`message`], [`iq`] (what the server answers itself), [`muc`] (group
//! chat), [`pep`] (personal eventing), [`routing`]
//! (addresses and delivery), [`accounts`] (credentials and the operator's
//! commands).

mod accounts;
mod archive;
mod bind;
mod bind2;
mod blocking;
mod carbons;
mod iq;
mod keepalive;
mod keys;
mod message;
mod muc;
mod pep;
mod presence;
mod random;
mod register;
mod roster;
mod routing;
mod sasl;
mod sm;
mod stanza;
mod storage;
mod stream;
mod time;
mod xml;

use ej_guest::{CloseReason, Context, Envelope, Handler};
use serde::{Deserialize, Serialize};

/// What one event sends at most (replies and routed payloads), kept under
/// the host's default `--max-outcome-bytes` (1 MiB) with room for the rest
/// of its outcome: an archive page or a room's history is cut shorter, and
/// a room message that would need more to reach every occupant is refused,
/// rather than the event failing.
pub const SEND_BUDGET: usize = 768 * 1024;

/// One client connection's state between events. Fields at their default
/// are left out of the JSON (and read back as the default): the state is
/// decoded and encoded by every event, so the less of it the better.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Session {
    /// The id of the stream the server opened last.
    #[serde(skip_serializing_if = "is_default")]
    stream_id: String,
    /// The domain the client asked for and the server serves.
    #[serde(skip_serializing_if = "is_default")]
    domain: String,
    /// The SASL exchange under way.
    #[serde(skip_serializing_if = "Option::is_none")]
    sasl: Option<sasl::Exchange>,
    /// Failed authentication attempts on this connection.
    #[serde(skip_serializing_if = "is_default")]
    failures: u8,
    /// The authenticated account's local part.
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    /// The bound resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    /// A bind waiting for the older session holding the resource to go.
    #[serde(skip_serializing_if = "Option::is_none")]
    binding: Option<bind::Waiting>,
    /// Whether the client sent its initial presence (and not yet
    /// unavailable), and at which priority.
    #[serde(skip_serializing_if = "is_default")]
    available: bool,
    #[serde(skip_serializing_if = "is_default")]
    priority: i8,
    /// Whether the client asked for its roster (and so gets pushes).
    #[serde(skip_serializing_if = "is_default")]
    roster: bool,
    /// XEP-0352: the client said it is inactive; presence updates wait in
    /// `held` (the latest per sender, at most `MAX_HELD`) until it is active.
    #[serde(skip_serializing_if = "is_default")]
    inactive: bool,
    /// `(sender, presence)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    held: Vec<(String, String)>,
    /// XEP-0045: the rooms this session is in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rooms: Vec<muc::Joined>,
    /// XEP-0198: stream management, once enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    sm: Option<sm::Managed>,
    /// A `<resume/>` waiting for the session it names.
    #[serde(skip_serializing_if = "Option::is_none")]
    resuming: Option<sm::Resuming>,
}

impl Handler for Session {
    fn stream_open(&mut self, cx: &mut Context, header: &str) -> Result<(), String> {
        stream::open(self, cx, header)
    }

    fn stanza(&mut self, cx: &mut Context, text: &str) -> Result<(), String> {
        let el = match xml::Element::parse(text) {
            Ok(el) => el,
            Err(why) => {
                stream::error(cx, "not-well-formed", &why);
                return Ok(());
            }
        };
        if self.user.is_none() {
            return stream::before_auth(self, cx, &el);
        }
        if el.ns == sm::NS {
            return sm::nonza(self, cx, &el);
        }
        if self.resource.is_none() {
            return bind::before_bind(self, cx, &el);
        }
        sm::handled(self, &el);
        stanza::from_client(self, cx, text, el)
    }

    fn routed(&mut self, cx: &mut Context, envelope: Envelope) -> Result<(), String> {
        routing::arrived(self, cx, &envelope.payload)
    }

    fn undeliverable(&mut self, cx: &mut Context, envelope: Envelope) -> Result<(), String> {
        routing::bounced(self, cx, &envelope.to, &envelope.payload)
    }

    fn busy(&mut self, cx: &mut Context, envelope: Envelope) -> Result<(), String> {
        routing::busy(self, cx, &envelope.payload)
    }

    fn bind_refused(&mut self, cx: &mut Context, address: &str) -> Result<(), String> {
        bind::refused(self, cx, address)
    }

    fn timer(&mut self, cx: &mut Context, tag: &str) -> Result<(), String> {
        match tag {
            bind::RETRY => bind::retry(self, cx),
            _ => keepalive::timer(self, cx, tag),
        }
    }

    fn detached(&mut self, cx: &mut Context) -> Result<(), String> {
        sm::detached(cx);
        Ok(())
    }

    fn took_over(&mut self, cx: &mut Context, held: Option<Vec<u8>>) -> Result<(), String> {
        sm::took_over(self, cx, held)
    }

    fn after(&mut self, cx: &mut Context) -> Result<(), String> {
        sm::after(self, cx);
        Ok(())
    }

    fn closed(&mut self, cx: &mut Context, reason: CloseReason) -> Result<(), String> {
        if self.resource.is_some() {
            sm::closing(self, cx, reason)?;
            presence::gone(self, cx)?;
            muc::leave_all(self, cx)?;
            carbons::forget(self);
        }
        if reason == CloseReason::StreamEnd {
            cx.send("</stream:stream>");
        }
        Ok(())
    }

    fn operator(&mut self, cx: &mut Context, command: &str) -> Result<(), String> {
        accounts::operator(cx, command)
    }
}

/// Whether a state field is at its default, and so left out of the JSON.
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Session {
    /// The logged-in user's bare JID, `user@domain`.
    fn bare(&self) -> String {
        format!("{}@{}", self.user.as_deref().unwrap_or_default(), self.domain)
    }

    /// The bound full JID, `user@domain/resource`.
    fn full(&self) -> String {
        format!("{}/{}", self.bare(), self.resource.as_deref().unwrap_or_default())
    }
}

ej_guest::export!(Session);
