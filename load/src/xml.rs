//! Cuts an incoming XMPP stream into its header and top-level elements,
//! each parsed into a small tree: enough for a client to read features,
//! SASL answers, iqs and messages. Bytes are buffered until an element is
//! whole; the buffer and the tree's depth are bounded.

use anyhow::{Result, bail};
use quick_xml::Reader;
use quick_xml::errors::IllFormedError;
use quick_xml::events::{BytesStart, Event};

/// The deepest nesting an element may have.
const MAX_DEPTH: usize = 32;

/// One element: its local name (prefix dropped), attributes, child
/// elements and the text directly inside it.
#[derive(Debug, Default, Clone)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }
}

/// What the framer found next.
#[derive(Debug)]
pub enum Frame {
    /// `<stream:stream …>`, with its attributes.
    Header(Element),
    /// A top-level element of the stream.
    Element(Element),
    /// `</stream:stream>`.
    End,
}

/// An XMPP stream cut into frames as bytes arrive.
pub struct Framer {
    buf: Vec<u8>,
    in_stream: bool,
    max: usize,
}

impl Framer {
    /// A framer for a new stream whose buffer holds at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::with_capacity(4096.min(max)),
            in_stream: false,
            max,
        }
    }

    /// Adds bytes read from the peer.
    pub fn push(&mut self, data: &[u8]) -> Result<()> {
        if self.buf.len() + data.len() > self.max {
            bail!("an element larger than {} bytes", self.max);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Expects a new stream header next (after SASL success or STARTTLS).
    pub fn restart(&mut self) {
        self.in_stream = false;
        self.buf.clear();
    }

    /// The next whole frame, or `None` until more bytes come.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        let (frame, used) = match parse(&self.buf, self.in_stream)? {
            Some(found) => found,
            None => return Ok(None),
        };
        self.buf.drain(..used);
        if matches!(frame, Frame::Header(_)) {
            self.in_stream = true;
        }
        Ok(Some(frame))
    }
}

/// Parses the next frame of `buf`; returns it and the bytes it took.
fn parse(buf: &[u8], in_stream: bool) -> Result<Option<(Frame, usize)>> {
    let mut reader = Reader::from_reader(buf);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            // Every syntax error is input that ended too soon, and so is
            // an entity cut short.
            Err(quick_xml::Error::Syntax(_) | quick_xml::Error::IllFormed(IllFormedError::UnclosedReference)) => {
                return Ok(None);
            }
            Err(error) => bail!("malformed XML from the server: {error}"),
        };
        let used = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        match event {
            Event::Eof => return Ok(None),
            Event::Start(start) if !in_stream && stack.is_empty() => {
                let header = open(&start)?;
                if header.name != "stream" {
                    bail!("expected a stream header, got <{}>", header.name);
                }
                return Ok(Some((Frame::Header(header), used)));
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    bail!("elements nested deeper than {MAX_DEPTH}");
                }
                stack.push(open(&start)?);
            }
            Event::Empty(start) => {
                let element = open(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(Some((Frame::Element(element), used))),
                }
            }
            Event::End(_) => match stack.pop() {
                None => return Ok(Some((Frame::End, used))),
                Some(element) => match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(Some((Frame::Element(element), used))),
                },
            },
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(top) = stack.last_mut() {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        _ => match reference.xml10_content().as_ref() {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            other => bail!("unknown entity &{other};"),
                        },
                    };
                    top.text.push(resolved);
                }
            }
            // The XML declaration, comments, processing instructions.
            _ => {}
        }
    }
}

fn open(start: &BytesStart<'_>) -> Result<Element> {
    let name = start.local_name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr?;
        let key = attr.key.local_name().as_ref().to_owned();
        let value = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)?.into_owned();
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        ..Element::default()
    })
}

/// `text` with XML's special characters escaped, for text and attributes.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framer: &mut Framer) -> Vec<Frame> {
        std::iter::from_fn(|| framer.next_frame().unwrap()).collect()
    }

    #[test]
    fn cuts_a_stream_arriving_byte_by_byte() {
        let stream = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost'>\
             <stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features> \
             <message from='a@localhost/r' type='chat'><body>1 &amp; 2</body><x/></message></stream:stream>";
        let mut framer = Framer::new(1 << 16);
        let mut got = Vec::new();
        for byte in stream.bytes() {
            framer.push(&[byte]).unwrap();
            got.extend(frames(&mut framer));
        }
        assert_eq!(got.len(), 4, "{got:?}");
        let Frame::Header(header) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(header.attr("id"), Some("s1"));
        let Frame::Element(features) = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!(features.name, "features");
        let mechanisms: Vec<&str> = features
            .child("mechanisms")
            .unwrap()
            .children
            .iter()
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(mechanisms, ["SCRAM-SHA-1", "PLAIN"]);
        let Frame::Element(message) = &got[2] else {
            panic!("{got:?}")
        };
        assert_eq!(message.attr("type"), Some("chat"));
        assert_eq!(message.child("body").unwrap().text, "1 & 2");
        assert!(matches!(got[3], Frame::End));
    }

    #[test]
    fn bounds_the_buffer_and_the_depth() {
        let mut framer = Framer::new(16);
        assert!(framer.push(&[b'x'; 17]).is_err());
        let mut framer = Framer::new(1 << 16);
        framer.push(b"<stream:stream>").unwrap();
        assert!(matches!(framer.next_frame().unwrap(), Some(Frame::Header(_))));
        framer.push("<a>".repeat(MAX_DEPTH + 1).as_bytes()).unwrap();
        assert!(framer.next_frame().is_err());
    }

    #[test]
    fn refuses_what_is_not_a_stream() {
        let mut framer = Framer::new(1 << 16);
        framer.push(b"<html>").unwrap();
        assert!(framer.next_frame().is_err());
    }
}
