//! Chat: a multi-room chat over the XML stream, built on addresses, routing
//! and the durable store.
//!
//! A room exists when the store holds the key `room:NAME` (an operator
//! creates it: `ej store put room:lobby '{}'`). A member of a room holds the
//! address `room/NAME/NICK`, so the registry is the room's member list: a
//! lookup of `room/NAME/` finds everyone in it, and binding the address
//! claims the nick. The last [`HISTORY`] messages of each room are kept in
//! the store under `history/NAME/SEQ/NICK` and replayed on join. A
//! connection's state is only which rooms it is in, under which nick.
//!
//! What a client sends, and what it gets:
//!
//! | request                                         | reply                                      |
//! |-------------------------------------------------|--------------------------------------------|
//! | `<join room='R' nick='N'/>`                     | `<joined room='R' nick='N'/>`, then a `<presence room='R' nick='M'/>` for each member M already there, then the room's history as `<message room='R' from='M' history='true'><body>…</body></message>`; the members get `<presence room='R' nick='N'/>` |
//! | `<message room='R'><body>TEXT</body></message>` | every member, the sender too, gets `<message room='R' from='N'><body>TEXT</body></message>` |
//! | `<leave room='R'/>`                             | `<left room='R' nick='N'/>`; the members get `<presence room='R' nick='N' type='unavailable'/>` |
//! | `<rooms/>`                                      | `<rooms><room name='R'/>…</rooms>`         |
//! | `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` | `<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`, then a TLS handshake and a new stream, as in XMPP |
//!
//! On a plain connection the server's stream header is followed by
//! `<stream:features>` offering STARTTLS, as an XMPP server's is.
//!
//! A connection that closes, however it closes, leaves its rooms as if it
//! had sent `<leave/>` for each. Requests that cannot be met get
//! `<error room='R' type='CONDITION'>why</error>` (`room` if the request
//! named one), with these conditions:
//!
//! | condition                 | when                                                    |
//! |---------------------------|---------------------------------------------------------|
//! | `bad-request`             | a missing or invalid attribute, a message without text  |
//! | `item-not-found`          | the room does not exist                                 |
//! | `conflict`                | the nick is taken in that room                          |
//! | `not-allowed`             | joining a room this connection is already in            |
//! | `not-acceptable`          | messaging or leaving a room this connection is not in   |
//! | `policy-violation`        | a message body over [`MAX_BODY`] bytes                  |
//! | `resource-constraint`     | the connection is in as many rooms as the server allows |
//! | `feature-not-implemented` | any other request                                       |
//!
//! Bodies are text: character and entity references are fine, markup is
//! refused (`bad-request`).
//!
//! Two connections that join a room with the same nick at the same moment
//! may both pass the lookup; the host lets only one bind the address, and
//! the other then gets `<error type='conflict'/>` after its `<joined/>`: it
//! is not in the room.

use std::collections::BTreeMap;

use ej_guest::{CloseReason, Context, Envelope, Handler, registry, store, xml};
use quick_xml::events::Event as Xml;
use serde::{Deserialize, Serialize};

/// Messages kept per room and replayed on join.
pub const HISTORY: usize = 20;
/// Longest message body, in bytes of text.
pub const MAX_BODY: usize = 4096;
/// Longest room name or nick, in characters.
const MAX_NAME: usize = 64;
/// XMPP's STARTTLS namespace (RFC 6120 §5).
const TLS_NS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

/// The handler, and the state of one connection.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct Chat {
    /// The `to` of the client's stream header.
    domain: String,
    /// Room → this connection's nick in it.
    rooms: BTreeMap<String, String>,
}

/// One message of a room's history, as stored.
#[derive(Serialize, Deserialize)]
struct Line {
    from: String,
    body: String,
}

impl Handler for Chat {
    fn stream_open(&mut self, cx: &mut Context, header: &str) -> Result<(), String> {
        let header = xml::Element::parse(header)?;
        self.domain = header.attr("to").unwrap_or_default().to_owned();
        cx.send(xml::stream_header(&self.domain));
        if cx.conn().tls.is_none() {
            cx.send(format!(
                "<stream:features><starttls xmlns='{TLS_NS}'/></stream:features>"
            ));
        }
        Ok(())
    }

    fn stanza(&mut self, cx: &mut Context, stanza: &str) -> Result<(), String> {
        let el = match xml::Element::parse(stanza) {
            Ok(el) => el,
            Err(why) => {
                error(cx, None, "bad-request", &why);
                return Ok(());
            }
        };
        let outcome = match el.name() {
            "join" => self.join(cx, &el),
            "message" => self.message(cx, stanza, &el),
            "leave" => self.leave(cx, &el),
            "rooms" => list_rooms(cx),
            "starttls" if el.attr("xmlns") == Some(TLS_NS) && cx.conn().tls.is_none() => {
                cx.send(format!("<proceed xmlns='{TLS_NS}'/>"));
                cx.start_tls();
                Ok(())
            }
            other => Err(Refusal::new(
                None,
                "feature-not-implemented",
                format!("unknown request <{other}>"),
            )),
        };
        if let Err(refusal) = outcome {
            error(cx, refusal.room.as_deref(), refusal.condition, &refusal.text);
        }
        Ok(())
    }

    /// A message or presence from a member of one of our rooms: pass it on.
    fn routed(&mut self, cx: &mut Context, envelope: Envelope) -> Result<(), String> {
        let Ok(el) = xml::Element::parse(&envelope.payload) else {
            return Ok(());
        };
        let ours = el
            .attr("room")
            .and_then(|room| Some((room, self.rooms.get(room)?)))
            .is_some_and(|(room, nick)| envelope.to == address(room, nick));
        if ours && matches!(el.name(), "message" | "presence") {
            cx.send(envelope.payload);
        }
        Ok(())
    }

    /// Another connection got the nick between our lookup and our bind, or
    /// this connection holds as many addresses as it may: the join fails.
    fn bind_refused(&mut self, cx: &mut Context, address: &str) -> Result<(), String> {
        let Some((room, nick)) = parse_address(address) else {
            return Ok(());
        };
        if self.rooms.get(room).is_some_and(|ours| ours == nick) {
            self.rooms.remove(room);
        }
        let taken = registry::lookup(address, 1).first().is_some_and(|held| held == address);
        if taken {
            error(
                cx,
                Some(room),
                "conflict",
                &format!("the nick {nick} is taken in {room}"),
            );
        } else {
            error(
                cx,
                Some(room),
                "resource-constraint",
                "you are in as many rooms as you may be",
            );
        }
        Ok(())
    }

    fn closed(&mut self, cx: &mut Context, reason: CloseReason) -> Result<(), String> {
        for (room, nick) in std::mem::take(&mut self.rooms) {
            depart(cx, &room, &nick);
        }
        if reason == CloseReason::StreamEnd {
            cx.send("</stream:stream>");
        }
        Ok(())
    }
}

/// Why a request is refused: the error stanza to send.
struct Refusal {
    room: Option<String>,
    condition: &'static str,
    text: String,
}

impl Refusal {
    fn new(room: Option<&str>, condition: &'static str, text: impl Into<String>) -> Self {
        Self {
            room: room.map(str::to_owned),
            condition,
            text: text.into(),
        }
    }
}

impl Chat {
    fn join(&mut self, cx: &mut Context, el: &xml::Element) -> Result<(), Refusal> {
        let room = name(el, "room", None)?;
        let nick = name(el, "nick", Some(room))?;
        if let Some(current) = self.rooms.get(room) {
            let text = format!("you are already in {room} as {current}");
            return Err(Refusal::new(Some(room), "not-allowed", text));
        }
        if store::get(&room_key(room)).is_none() {
            return Err(Refusal::new(
                Some(room),
                "item-not-found",
                format!("there is no room {room}"),
            ));
        }
        let members = members(room);
        if members.iter().any(|(_, member)| member == nick) {
            let text = format!("the nick {nick} is taken in {room}");
            return Err(Refusal::new(Some(room), "conflict", text));
        }
        // If another connection binds the address first, `bind_refused`
        // follows this event and undoes the join.
        cx.bind(address(room, nick));
        self.rooms.insert(room.to_owned(), nick.to_owned());
        cx.send(format!(
            "<joined room='{}' nick='{}'/>",
            xml::escape(room),
            xml::escape(nick)
        ));
        for (_, member) in &members {
            cx.send(presence(room, member, false));
        }
        for line in history(room) {
            cx.send(format!(
                "<message room='{}' from='{}' history='true'><body>{}</body></message>",
                xml::escape(room),
                xml::escape(&line.from),
                xml::escape(&line.body)
            ));
        }
        let arrived = presence(room, nick, false);
        for (member_address, _) in &members {
            cx.route(member_address, arrived.clone());
        }
        Ok(())
    }

    fn message(&mut self, cx: &mut Context, stanza: &str, el: &xml::Element) -> Result<(), Refusal> {
        let room = name(el, "room", None)?;
        let Some(nick) = self.rooms.get(room) else {
            let text = format!("you are not in {room}: join it first");
            return Err(Refusal::new(Some(room), "not-acceptable", text));
        };
        let body = body(stanza, room)?;
        let message = format!(
            "<message room='{}' from='{}'><body>{}</body></message>",
            xml::escape(room),
            xml::escape(nick),
            xml::escape(&body)
        );
        // Every member, this connection too: the sender sees its message in
        // the order the room's members see the messages it sends.
        for (member_address, _) in members(room) {
            cx.route(member_address, message.clone());
        }
        remember(room, nick, body).map_err(|why| Refusal::new(Some(room), "internal-server-error", why))
    }

    fn leave(&mut self, cx: &mut Context, el: &xml::Element) -> Result<(), Refusal> {
        let room = name(el, "room", None)?;
        let Some(nick) = self.rooms.remove(room) else {
            return Err(Refusal::new(
                Some(room),
                "not-acceptable",
                format!("you are not in {room}"),
            ));
        };
        depart(cx, room, &nick);
        cx.send(format!(
            "<left room='{}' nick='{}'/>",
            xml::escape(room),
            xml::escape(&nick)
        ));
        Ok(())
    }
}

fn list_rooms(cx: &mut Context) -> Result<(), Refusal> {
    let rooms: String = store::scan("room:", u32::MAX)
        .iter()
        .filter_map(|(key, _)| key.strip_prefix("room:"))
        .map(|room| format!("<room name='{}'/>", xml::escape(room)))
        .collect();
    cx.send(format!("<rooms>{rooms}</rooms>"));
    Ok(())
}

/// Lets go of `room` and tells the others `nick` has gone.
fn depart(cx: &mut Context, room: &str, nick: &str) {
    let own = address(room, nick);
    cx.unbind(own.as_str());
    let gone = presence(room, nick, true);
    for (member_address, _) in members(room) {
        if member_address != own {
            cx.route(member_address, gone.clone());
        }
    }
}

/// Who is in `room`, as (address, nick), in nick order.
fn members(room: &str) -> Vec<(String, String)> {
    let prefix = format!("room/{room}/");
    registry::lookup(&prefix, u32::MAX)
        .into_iter()
        .filter_map(|address| {
            let nick = address.strip_prefix(&prefix)?.to_owned();
            Some((address, nick))
        })
        .collect()
}

/// The address a member of `room` holds.
fn address(room: &str, nick: &str) -> String {
    format!("room/{room}/{nick}")
}

/// The room and nick of a member's address.
fn parse_address(address: &str) -> Option<(&str, &str)> {
    address.strip_prefix("room/")?.split_once('/')
}

/// The store key whose presence makes `room` exist.
fn room_key(room: &str) -> String {
    format!("room:{room}")
}

fn history_prefix(room: &str) -> String {
    format!("history/{room}/")
}

/// The last [`HISTORY`] messages of `room`, oldest first.
fn history(room: &str) -> Vec<Line> {
    let entries = store::scan(&history_prefix(room), u32::MAX);
    let skip = entries.len().saturating_sub(HISTORY);
    entries
        .iter()
        .skip(skip)
        .filter_map(|(_, value)| serde_json::from_slice(value).ok())
        .collect()
}

/// Appends a message to `room`'s history and trims it to [`HISTORY`], in
/// this event's writes: they commit with the event, or not at all.
///
/// Keys are `history/ROOM/SEQ/NICK`: SEQ orders them, and NICK keeps two
/// members who write at once (and so pick the same SEQ) from overwriting
/// each other.
fn remember(room: &str, nick: &str, body: String) -> Result<(), String> {
    let prefix = history_prefix(room);
    let entries = store::scan(&prefix, u32::MAX);
    let next = entries
        .last()
        .and_then(|(key, _)| key.strip_prefix(&prefix)?.split_once('/')?.0.parse::<u64>().ok())
        .map_or(0, |seq| seq + 1);
    let line = Line {
        from: nick.to_owned(),
        body,
    };
    store::put_json(&format!("{prefix}{next:020}/{nick}"), &line)?;
    let excess = (entries.len() + 1).saturating_sub(HISTORY);
    for (key, _) in entries.iter().take(excess) {
        store::delete(key);
    }
    Ok(())
}

/// `<presence room='R' nick='N'/>`, with `type='unavailable'` if `gone`.
fn presence(room: &str, nick: &str, gone: bool) -> String {
    format!(
        "<presence room='{}' nick='{}'{}/>",
        xml::escape(room),
        xml::escape(nick),
        if gone { " type='unavailable'" } else { "" }
    )
}

/// Sends `<error room='R' type='CONDITION'>TEXT</error>`.
fn error(cx: &mut Context, room: Option<&str>, condition: &str, text: &str) {
    let room = room.map_or(String::new(), |room| format!(" room='{}'", xml::escape(room)));
    cx.send(format!("<error{room} type='{condition}'>{}</error>", xml::escape(text)));
}

/// A room name or nick from attribute `attr`: 1 to 64 characters, none of
/// them `/` or a control character.
fn name<'a>(el: &'a xml::Element, attr: &str, room: Option<&str>) -> Result<&'a str, Refusal> {
    let value = el.attr(attr).unwrap_or_default();
    let valid =
        !value.is_empty() && value.chars().count() <= MAX_NAME && !value.chars().any(|c| c == '/' || c.is_control());
    if valid {
        Ok(value)
    } else if value.is_empty() {
        let text = format!("<{}> needs a {attr} attribute", el.name());
        Err(Refusal::new(room, "bad-request", text))
    } else {
        let text = format!("a {attr} is 1 to {MAX_NAME} characters, without '/'");
        Err(Refusal::new(room, "bad-request", text))
    }
}

/// The text of the `<body>` child of a message stanza.
fn body(stanza: &str, room: &str) -> Result<String, Refusal> {
    let refuse = |text: &str| Refusal::new(Some(room), "bad-request", text);
    let raw = body_xml(stanza).ok_or_else(|| refuse("a message needs a <body>"))?;
    if raw.contains('<') {
        return Err(refuse("a body is text, without markup"));
    }
    let text = quick_xml::escape::unescape(raw).map_err(|e| refuse(&format!("in the body: {e}")))?;
    if text.trim().is_empty() {
        return Err(refuse("a message needs a <body> with text"));
    }
    if text.len() > MAX_BODY {
        let text = format!("a body is at most {MAX_BODY} bytes");
        return Err(Refusal::new(Some(room), "policy-violation", text));
    }
    Ok(text.into_owned())
}

/// What lies between the tags of the first `<body>` child of the root
/// element, as written.
fn body_xml(stanza: &str) -> Option<&str> {
    let mut reader = quick_xml::Reader::from_str(stanza);
    let mut depth = 0usize;
    loop {
        match reader.read_event().ok()? {
            Xml::Start(start) => {
                depth += 1;
                if depth == 2 && start.local_name().into_inner() == "body" {
                    let end = start.to_end().into_owned();
                    let span = reader.read_to_end(end.name()).ok()?;
                    return stanza.get(usize::try_from(span.start).ok()?..usize::try_from(span.end).ok()?);
                }
            }
            Xml::Empty(start) if depth == 1 && start.local_name().into_inner() == "body" => return Some(""),
            Xml::End(_) => depth = depth.saturating_sub(1),
            Xml::Eof => return None,
            _ => {}
        }
    }
}

ej_guest::export!(Chat);
