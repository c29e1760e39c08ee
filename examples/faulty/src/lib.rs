//! Faulty: a test handler that misbehaves on demand, to exercise the host's
//! fault handling and limits.
//!
//! The root element name of a stanza picks the behaviour:
//!
//! | stanza                 | behaviour                                        |
//! |------------------------|--------------------------------------------------|
//! | `<panic/>`             | writes a line to stderr, then panics             |
//! | `<loop/>`              | loops forever                                    |
//! | `<alloc/>`             | allocates memory without end                     |
//! | `<flood/>`             | writes to stdout and stderr without end          |
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

use std::hint::black_box;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use ej_guest::{CloseReason, Context, Handler, xml};
use serde::{Deserialize, Serialize};

/// Events handled by this instance, which should never exceed one.
static EVENTS: AtomicU64 = AtomicU64::new(0);

/// The handler, and the state each connection carries between events.
#[derive(Default, Serialize, Deserialize)]
struct Faulty {
    /// Stanzas received on this connection, faulty ones included.
    count: u64,
    /// The `to` of the peer's stream header.
    domain: String,
}

impl Handler for Faulty {
    fn stream_open(&mut self, cx: &mut Context, header: &str) -> Result<(), String> {
        EVENTS.fetch_add(1, Ordering::Relaxed);
        let header = xml::Element::parse(header)?;
        self.domain = header.attr("to").unwrap_or_default().to_owned();
        cx.send(format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' from='{}' version='1.0'>",
            xml::escape(&self.domain)
        ));
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
            _ => cx.send(stanza),
        }
        Ok(())
    }

    fn closed(&mut self, cx: &mut Context, reason: CloseReason) -> Result<(), String> {
        EVENTS.fetch_add(1, Ordering::Relaxed);
        if reason == CloseReason::StreamEnd {
            cx.send("</stream:stream>");
        }
        Ok(())
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

/// Allocates 1 MiB chunks, writing to every one, until allocation fails.
fn hoard() -> ! {
    let mut hoard = Vec::new();
    loop {
        let chunk = vec![black_box(1u8); 1 << 20];
        hoard.push(black_box(chunk));
    }
}

/// Writes to stdout and stderr forever, ignoring write errors.
fn flood() -> ! {
    let line = "faulty: flooding ".repeat(64);
    loop {
        let _ = writeln!(std::io::stdout(), "{line}");
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

ej_guest::export!(Faulty);
