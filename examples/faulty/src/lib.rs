//! Faulty: a test handler that misbehaves on demand, to exercise the host's
//! fault handling and limits.
//!
//! The root element name of a stanza picks the behaviour:
//!
//! | stanza                 | behaviour                                        |
//! |------------------------|--------------------------------------------------|
//! | `<panic/>`             | writes a line to stderr, then panics             |
//! | `<loop/>`              | loops forever                                    |
//! | `<recurse/>`           | recurses without end                             |
//! | `<call-loop/>`         | calls the host (a store read) forever            |
//! | `<alloc/>`             | allocates memory without end                     |
//! | `<flood/>`             | writes to stdout, stderr and ej's output without end |
//! | `<error/>`             | returns an error                                 |
//! | `<big n='BYTES'/>`     | sends one stanza of about `BYTES` bytes          |
//! | `<probe/>`             | replies `<probe global='G' count='C'/>`          |
//! | `<throttle rate='N'/>` | throttles the connection to N bytes/s, replies `<throttled/>` |
//! | `<close/>`             | closes the connection with `</stream:stream>`    |
//! | anything else          | is echoed back unchanged                         |
//!
//! Every stanza, the faulty ones too, first increments `count` in the state:
//! the host must discard that increment when the event faults. In `<probe/>`,
//! G counts the events this instance has handled (always 1 when the host
//! uses a fresh instance per event) and C is `count`. The stream header and
//! the peer's end of stream are answered as by the echo example.
//!
//! Probes of addresses, routing, the store and timers (values in replies
//! are escaped; PAYLOAD is the element's inner XML, passed on verbatim):
//!
//! | stanza                                  | behaviour, reply                                   |
//! |-----------------------------------------|----------------------------------------------------|
//! | `<bind address='A'/>`                   | binds A, replies `<binding address='A'/>`          |
//! | `<unbind address='A'/>`                 | unbinds A, replies `<unbound address='A'/>`        |
//! | `<route to='A'>PAYLOAD</route>`         | routes PAYLOAD to A (no reply)                     |
//! | `<lookup prefix='P'/>`                  | `<found><a>ADDR</a>…</found>`: addresses under P   |
//! | `<put key='K' value='V'/>`              | stores V under K, replies `<stored key='K'/>`      |
//! | `<delete key='K'/>`                     | deletes K, replies `<deleted key='K'/>`            |
//! | `<get key='K'/>`                        | `<value key='K'>V</value>`, or `<value key='K'/>`  |
//! | `<scan prefix='P'/>`                    | `<entries prefix='P'><entry key='K'>V</entry>…</entries>` |
//! | `<put-then-panic key='K' value='V' n='N'/>` | stores V under K (and under K.1 … K.N-1), then panics |
//! | `<increment key='K' fail-at='N'/>`      | reads the number under K (0 if absent), stores it plus one, replies `<incremented key='K' value='V'/>`; panics instead if that is N (`fail-at` is optional) |
//! | `<claim mine='A' other='B'/>`           | if B holds `on`, replies `<claimed key='A' ok='false'/>`; else stores `on` under A, replies `<claimed key='A' ok='true'/>` |
//! | `<move from='A' to='B'/>`               | moves the value under A to B (deleting A), replies `<moved/>` |
//! | `<count keys='K1 K2 …'/>`               | gets each key in turn, replies `<count n='N'/>`: how many exist |
//! | `<join prefix='P' member='M' max='N'/>` | scans P: with fewer than N entries stores P+M, replies `<joined member='M'/>`; else `<full member='M'/>` |
//! | `<timer tag='T' ms='N' notify='A' reset='yes'/>` | sets timer T to N ms, replies `<timer-set tag='T'/>`; `notify` and `reset` are optional |
//! | `<cancel-timer tag='T'/>`               | cancels T, replies `<timer-cancelled tag='T'/>`    |
//! | `<on-close route='A' key='K' value='V'/>` | on `closed`: routes `<closed reason='R'/>` to A, stores V under K (both optional); replies `<on-close/>` |
//! | `<stats/>`                              | `<stats count='C' routed='R' fired='F'/>`          |
//! | `<many n='N'/>`                         | returns N actions: N-1 `throttle`s that change nothing, then the reply `<many/>` |
//! | `<stubborn/>`                           | from now on routes every bounced payload again and binds every refused address again; replies `<stubborn/>` |
//! | `<hold token='T' ms='N'/>`              | holds the session under T for N ms, replies `<held token='T'/>` |
//! | `<take-over token='T'/>`                | takes over the session held under T (the reply comes with `took-over`) |
//! | `<fat n='BYTES'/>`                      | keeps BYTES bytes in the state from now on (every event carries them), replies `<fat/>` |
//! | `<storm to='A' n='N'/>`                 | routes N `<s/>` to A in one event, replies `<stormed/>` |
//! | `<timers n='N' ms='M'/>`                | sets N timers `t0` … to M ms in one event, replies `<timers/>` |
//! | `<binds prefix='P' n='N'/>`             | binds N addresses `P0` … in one event, replies `<binds/>` |
//! | `<fill key='K' n='N' bytes='B'/>`       | stores N values of B bytes under `K0` …, replies `<filled/>` |
//! | `<chaos seed='S' n='N'/>`               | returns N actions drawn at random from seed S: any kind, with arguments small, large or odd (the host must survive any list) |
//!
//! Events from the host:
//!
//! | event         | reply                                                        |
//! |---------------|--------------------------------------------------------------|
//! | routed        | `<routed from='F' to='T'>PAYLOAD</routed>`; counts in `routed` |
//! | undeliverable | `<undeliverable to='T'>PAYLOAD</undeliverable>`; when stubborn, routes PAYLOAD to T again instead |
//! | busy          | `<busy to='T'>PAYLOAD</busy>`; when stubborn, routes PAYLOAD to T again instead |
//! | bind-refused  | `<bind-refused address='A'/>`; when stubborn, binds A again instead |
//! | timer-refused | `<timer-refused tag='T'/>`                                   |
//! | timer         | `<fired tag='T'/>`, and routes the same to the timer's `notify` address; counts in `fired`; with `reset`, then restarts the stream |
//! | closed        | `</stream:stream>` at the peer's end of stream; the `<on-close/>` route and write |
//! | detached      | routes `<detached count='C' routed='R'/>` to the `<on-close/>` route |
//! | took-over     | carries on with the held session's state: `<took-over count='C' routed='R' fired='F'/>` with its counts plus this connection's; `<took-over/>` if none was held |

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use ej_guest::{CloseReason, Context, Envelope, Handler, registry, store, xml};
use serde::{Deserialize, Serialize};

/// Events handled by this instance, which should never exceed one.
static EVENTS: AtomicU64 = AtomicU64::new(0);

/// The handler, and the state each connection carries between events.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct Faulty {
    /// Stanzas received on this connection, faulty ones included.
    count: u64,
    /// The `to` of the peer's stream header.
    domain: String,
    /// Routed events handled on this connection.
    routed: u64,
    /// Timers fired on this connection.
    fired: u64,
    /// Timer tag → the address told when it fires.
    notify: BTreeMap<String, String>,
    /// Timer tags that restart the stream when they fire.
    resets: BTreeSet<String>,
    /// What the `closed` event does.
    on_close: OnClose,
    /// Whether to route a bounced payload again, and bind a refused
    /// address again, forever.
    stubborn: bool,
    /// Ballast carried from event to event (`<fat/>`).
    blob: String,
}

/// What `<on-close/>` asked the `closed` event to do.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct OnClose {
    /// Route `<closed reason='R'/>` here.
    route: Option<String>,
    /// Store this value under this key.
    put: Option<(String, String)>,
}

impl Handler for Faulty {
    fn stream_open(&mut self, cx: &mut Context, header: &str) -> Result<(), String> {
        EVENTS.fetch_add(1, Ordering::Relaxed);
        let header = xml::Element::parse(header)?;
        self.domain = header.attr("to").unwrap_or_default().to_owned();
        cx.send(xml::stream_header(&self.domain));
        Ok(())
    }

    fn stanza(&mut self, cx: &mut Context, stanza: &str) -> Result<(), String> {
        let global = EVENTS.fetch_add(1, Ordering::Relaxed) + 1;
        self.count += 1;
        let el = xml::Element::parse(stanza)?;
        match el.name() {
            "panic" => {
                eprintln!("faulty: about to panic");
                panic!("faulty: panic on demand");
            }
            "loop" => spin(),
            "recurse" => {
                recurse(0);
            }
            "call-loop" => loop {
                black_box(store::get("call-loop"));
            },
            "alloc" => hoard(),
            "flood" => flood(),
            "error" => return Err("faulty: error on demand".to_owned()),
            "big" => {
                let n: usize = number(&el, "n")?;
                let filler = n.saturating_sub("<big></big>".len());
                cx.send(format!("<big>{}</big>", "x".repeat(filler)));
            }
            "probe" => cx.send(format!("<probe global='{global}' count='{}'/>", self.count)),
            "throttle" => {
                cx.throttle(number(&el, "rate")?);
                cx.send("<throttled/>");
            }
            "close" => cx.close(Some("</stream:stream>".to_owned())),
            "bind" => {
                let address = text(&el, "address")?;
                cx.bind(address);
                cx.send(format!("<binding address='{}'/>", xml::escape(address)));
            }
            "unbind" => {
                let address = text(&el, "address")?;
                cx.unbind(address);
                cx.send(format!("<unbound address='{}'/>", xml::escape(address)));
            }
            "route" => cx.route(text(&el, "to")?, inner_xml(stanza)),
            "lookup" => {
                let found: String = registry::lookup(text(&el, "prefix")?, u32::MAX)
                    .iter()
                    .map(|address| format!("<a>{}</a>", xml::escape(address)))
                    .collect();
                cx.send(format!("<found>{found}</found>"));
            }
            "put" => {
                let key = text(&el, "key")?;
                store::put(key, text(&el, "value")?.as_bytes());
                cx.send(format!("<stored key='{}'/>", xml::escape(key)));
            }
            "delete" => {
                let key = text(&el, "key")?;
                store::delete(key);
                cx.send(format!("<deleted key='{}'/>", xml::escape(key)));
            }
            "get" => {
                let key = text(&el, "key")?;
                let escaped = xml::escape(key);
                match store::get(key) {
                    Some(value) => cx.send(format!(
                        "<value key='{escaped}'>{}</value>",
                        xml::escape(&String::from_utf8_lossy(&value))
                    )),
                    None => cx.send(format!("<value key='{escaped}'/>")),
                }
            }
            "scan" => {
                let prefix = text(&el, "prefix")?;
                let entries: String = store::scan(prefix, u32::MAX)
                    .iter()
                    .map(|(key, value)| {
                        format!(
                            "<entry key='{}'>{}</entry>",
                            xml::escape(key),
                            xml::escape(&String::from_utf8_lossy(value))
                        )
                    })
                    .collect();
                cx.send(format!("<entries prefix='{}'>{entries}</entries>", xml::escape(prefix)));
            }
            "put-then-panic" => {
                let key = text(&el, "key")?;
                let value = text(&el, "value")?.as_bytes();
                store::put(key, value);
                let n: u32 = el.attr("n").map_or(Ok(1), |_| number(&el, "n"))?;
                for i in 1..n {
                    store::put(&format!("{key}.{i}"), value);
                }
                cx.send("<never-sent/>");
                panic!("faulty: panic after {n} store writes");
            }
            "increment" => {
                let key = text(&el, "key")?;
                let value = match store::get(key) {
                    Some(bytes) => String::from_utf8_lossy(&bytes)
                        .parse::<u64>()
                        .map_err(|_| format!("faulty: {key} does not hold a number"))?,
                    None => 0,
                } + 1;
                if el.attr("fail-at").is_some() && value == number::<u64>(&el, "fail-at")? {
                    panic!("faulty: {key} would reach {value}");
                }
                store::put(key, value.to_string().as_bytes());
                cx.send(format!("<incremented key='{}' value='{value}'/>", xml::escape(key)));
            }
            "claim" => {
                let mine = text(&el, "mine")?;
                let ok = store::get(text(&el, "other")?).as_deref() != Some(b"on");
                if ok {
                    store::put(mine, b"on");
                }
                cx.send(format!("<claimed key='{}' ok='{ok}'/>", xml::escape(mine)));
            }
            "move" => {
                let from = text(&el, "from")?;
                if let Some(value) = store::get(from) {
                    store::delete(from);
                    store::put(text(&el, "to")?, &value);
                }
                cx.send("<moved/>");
            }
            "count" => {
                let n = text(&el, "keys")?
                    .split(' ')
                    .filter(|key| store::get(key).is_some())
                    .count();
                cx.send(format!("<count n='{n}'/>"));
            }
            "join" => {
                let prefix = text(&el, "prefix")?;
                let member = text(&el, "member")?;
                let max: u32 = number(&el, "max")?;
                let joined = (store::scan(prefix, max).len() as u32) < max;
                if joined {
                    store::put(&format!("{prefix}{member}"), b"");
                }
                let reply = if joined { "joined" } else { "full" };
                cx.send(format!("<{reply} member='{}'/>", xml::escape(member)));
            }
            "timer" => {
                let tag = text(&el, "tag")?;
                cx.set_timer(tag, number(&el, "ms")?);
                match el.attr("notify") {
                    Some(address) => self.notify.insert(tag.to_owned(), address.to_owned()),
                    None => self.notify.remove(tag),
                };
                match el.attr("reset") {
                    Some(_) => self.resets.insert(tag.to_owned()),
                    None => self.resets.remove(tag),
                };
                cx.send(format!("<timer-set tag='{}'/>", xml::escape(tag)));
            }
            "cancel-timer" => {
                let tag = text(&el, "tag")?;
                cx.cancel_timer(tag);
                self.notify.remove(tag);
                cx.send(format!("<timer-cancelled tag='{}'/>", xml::escape(tag)));
            }
            "on-close" => {
                self.on_close = OnClose {
                    route: el.attr("route").map(str::to_owned),
                    put: el.attr("key").map(|key| {
                        let value = el.attr("value").unwrap_or_default();
                        (key.to_owned(), value.to_owned())
                    }),
                };
                cx.send("<on-close/>");
            }
            "many" => {
                for _ in 1..number::<u32>(&el, "n")? {
                    cx.throttle(u32::MAX);
                }
                cx.send("<many/>");
            }
            "stubborn" => {
                self.stubborn = true;
                cx.send("<stubborn/>");
            }
            "hold" => {
                let token = text(&el, "token")?;
                cx.hold(token, number(&el, "ms")?);
                cx.send(format!("<held token='{}'/>", xml::escape(token)));
            }
            "take-over" => cx.take_over(text(&el, "token")?),
            "fat" => {
                self.blob = "x".repeat(number(&el, "n")?);
                cx.send("<fat/>");
            }
            "storm" => {
                let to = text(&el, "to")?;
                for _ in 0..number::<u32>(&el, "n")? {
                    cx.route(to, "<s/>");
                }
                cx.send("<stormed/>");
            }
            "timers" => {
                let ms = number(&el, "ms")?;
                for i in 0..number::<u32>(&el, "n")? {
                    cx.set_timer(format!("t{i}"), ms);
                }
                cx.send("<timers/>");
            }
            "binds" => {
                let prefix = text(&el, "prefix")?;
                for i in 0..number::<u32>(&el, "n")? {
                    cx.bind(format!("{prefix}{i}"));
                }
                cx.send("<binds/>");
            }
            "fill" => {
                let key = text(&el, "key")?;
                let value = vec![b'v'; number(&el, "bytes")?];
                for i in 0..number::<u32>(&el, "n")? {
                    store::put(&format!("{key}{i}"), &value);
                }
                cx.send("<filled/>");
            }
            "chaos" => chaos(cx, number(&el, "seed")?, number(&el, "n")?),
            "stats" => cx.send(format!(
                "<stats count='{}' routed='{}' fired='{}'/>",
                self.count, self.routed, self.fired
            )),
            _ => cx.send(stanza),
        }
        Ok(())
    }

    fn routed(&mut self, cx: &mut Context, envelope: Envelope) -> Result<(), String> {
        EVENTS.fetch_add(1, Ordering::Relaxed);
        self.routed += 1;
        cx.send(format!(
            "<routed from='{}' to='{}'>{}</routed>",
            xml::escape(&envelope.from),
            xml::escape(&envelope.to),
            envelope.payload
        ));
        Ok(())
    }

    fn undeliverable(&mut self, cx: &mut Context, envelope: Envelope) -> Result<(), String> {
        self.returned(cx, "undeliverable", envelope);
        Ok(())
    }

    fn busy(&mut self, cx: &mut Context, envelope: Envelope) -> Result<(), String> {
        self.returned(cx, "busy", envelope);
        Ok(())
    }

    fn bind_refused(&mut self, cx: &mut Context, address: &str) -> Result<(), String> {
        EVENTS.fetch_add(1, Ordering::Relaxed);
        if self.stubborn {
            cx.bind(address);
        } else {
            cx.send(format!("<bind-refused address='{}'/>", xml::escape(address)));
        }
        Ok(())
    }

    fn timer_refused(&mut self, cx: &mut Context, tag: &str) -> Result<(), String> {
        EVENTS.fetch_add(1, Ordering::Relaxed);
        cx.send(format!("<timer-refused tag='{}'/>", xml::escape(tag)));
        Ok(())
    }

    fn timer(&mut self, cx: &mut Context, tag: &str) -> Result<(), String> {
        EVENTS.fetch_add(1, Ordering::Relaxed);
        self.fired += 1;
        let fired = format!("<fired tag='{}'/>", xml::escape(tag));
        if let Some(address) = self.notify.remove(tag) {
            cx.route(address, fired.clone());
        }
        cx.send(fired);
        if self.resets.remove(tag) {
            cx.reset_stream();
        }
        Ok(())
    }

    fn detached(&mut self, cx: &mut Context) -> Result<(), String> {
        EVENTS.fetch_add(1, Ordering::Relaxed);
        if let Some(address) = &self.on_close.route {
            let detached = format!("<detached count='{}' routed='{}'/>", self.count, self.routed);
            cx.route(address, detached);
        }
        Ok(())
    }

    fn took_over(&mut self, cx: &mut Context, held: Option<Vec<u8>>) -> Result<(), String> {
        EVENTS.fetch_add(1, Ordering::Relaxed);
        let Some(held) = held else {
            cx.send("<took-over/>");
            return Ok(());
        };
        let mut session = Self::decode(&held)?;
        session.count += self.count;
        session.routed += self.routed;
        session.fired += self.fired;
        cx.send(format!(
            "<took-over count='{}' routed='{}' fired='{}'/>",
            session.count, session.routed, session.fired
        ));
        *self = session;
        Ok(())
    }

    fn closed(&mut self, cx: &mut Context, reason: CloseReason) -> Result<(), String> {
        EVENTS.fetch_add(1, Ordering::Relaxed);
        if reason == CloseReason::StreamEnd {
            cx.send("</stream:stream>");
        }
        if let Some(address) = &self.on_close.route {
            cx.route(address, format!("<closed reason='{}'/>", reason_name(reason)));
        }
        if let Some((key, value)) = &self.on_close.put {
            store::put(key, value.as_bytes());
        }
        Ok(())
    }
}

impl Faulty {
    /// A payload this connection routed came back (`kind`: undeliverable
    /// or busy): shown to the peer, or, when stubborn, routed again.
    fn returned(&self, cx: &mut Context, kind: &str, envelope: Envelope) {
        EVENTS.fetch_add(1, Ordering::Relaxed);
        if self.stubborn {
            cx.route(&envelope.to, envelope.payload);
        } else {
            cx.send(format!(
                "<{kind} to='{}'>{}</{kind}>",
                xml::escape(&envelope.to),
                envelope.payload
            ));
        }
    }
}

/// The attribute `name` of `el`, which must be there.
fn text<'a>(el: &'a xml::Element, name: &str) -> Result<&'a str, String> {
    el.attr(name)
        .ok_or_else(|| format!("faulty: <{}> needs attribute {name}", el.name()))
}

/// What lies between the root element's start and end tags, as written;
/// empty for an empty-element tag.
fn inner_xml(stanza: &str) -> &str {
    let mut quote = None;
    for (at, c) in stanza.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '>') => {
                if stanza[..at].ends_with('/') {
                    return "";
                }
                let end = stanza.rfind("</").unwrap_or(stanza.len()).max(at + 1);
                return &stanza[at + 1..end];
            }
            (None, _) => {}
        }
    }
    ""
}

/// The close reason as the WIT names it.
fn reason_name(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::StreamEnd => "stream-end",
        CloseReason::Disconnected => "disconnected",
        CloseReason::Handler => "handler",
        CloseReason::Fault => "fault",
        CloseReason::StreamError => "stream-error",
        CloseReason::Shutdown => "shutdown",
        CloseReason::TlsFailed => "tls-failed",
        CloseReason::Expired => "expired",
    }
}

/// The numeric attribute `name` of `el`.
fn number<T: std::str::FromStr>(el: &xml::Element, name: &str) -> Result<T, String> {
    let value = el
        .attr(name)
        .ok_or_else(|| format!("faulty: <{}> needs attribute {name}", el.name()))?;
    value
        .parse()
        .map_err(|_| format!("faulty: {name}='{value}' is not a number"))
}

/// Spins forever.
fn spin() -> ! {
    let mut i = 0u64;
    loop {
        i = black_box(i.wrapping_add(1));
    }
}

/// Recurses until the stack runs out (the depth it stops at is never
/// reached).
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return depth;
    }
    let frame = black_box([depth; 16]);
    recurse(depth + 1).wrapping_add(frame[0])
}

/// Adds `n` actions drawn from `seed`: every kind of action, on a few
/// addresses, timers and tokens shared by every connection, with
/// arguments from zero to huge.
fn chaos(cx: &mut Context, seed: u64, n: u32) {
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let name = |pick: u64| ["a", "b", "c", "", "é/…", "<x>"][(pick % 6) as usize];
    let size = |pick: u64| [0, 1, 1024, u32::MAX][(pick % 4) as usize];
    for _ in 0..n {
        let (kind, pick) = (next() % 14, next());
        match kind {
            0 => cx.send(["<x/>", "", "<y>", "\0", "</stream:stream>"][(pick % 5) as usize]),
            1 if pick % 8 == 0 => cx.close(Some("<bye/>".to_owned())),
            2 => cx.throttle(size(pick)),
            3 if pick % 4 == 0 => cx.reset_stream(),
            4 if pick % 16 == 0 => cx.start_tls(),
            5 => cx.max_stanza(size(pick)),
            6 => cx.bind(name(pick)),
            7 => cx.unbind(name(pick)),
            8 => cx.route(name(pick), "<chaos-routed/>"),
            9 => cx.set_timer(name(pick), size(pick) % 50),
            10 => cx.cancel_timer(name(pick)),
            11 => cx.hold(name(pick), size(pick) % 2000),
            12 => cx.take_over(name(pick)),
            _ => {}
        }
    }
}

/// Allocates 1 MiB chunks, writing to every one, until allocation fails.
fn hoard() -> ! {
    let mut hoard = Vec::new();
    loop {
        let chunk = vec![black_box(1u8); 1 << 20];
        hoard.push(black_box(chunk));
    }
}

/// Writes to stdout, stderr and the `output` import forever, ignoring
/// write errors (built without WASI, only the import reaches the host).
fn flood() -> ! {
    let line = "faulty: flooding ".repeat(64);
    loop {
        let _ = writeln!(std::io::stdout(), "{line}");
        let _ = writeln!(std::io::stderr(), "{line}");
        ej_guest::output(&line);
    }
}

ej_guest::export!(Faulty);
