//! Cuts the bytes of an XML stream into frames: the stream header, each
//! top-level stanza, and the stream's end tag.
//!
//! A connection reads bytes in arbitrary chunks, so a stanza may arrive in
//! many pieces. quick-xml has no resumable push API: parsing each partial
//! stanza again from its first byte whenever more bytes arrive would cost
//! O(n²) for a stanza trickled in small reads. The framer is therefore a
//! small hand-written lexer whose state (position, element depth, quoting,
//! comment/CDATA/declaration progress) survives between pushes, so each
//! received byte is examined once. Only when a frame is complete is it handed
//! to quick-xml, once, for the full well-formedness checks.

use std::collections::HashSet;
use std::fmt;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{NamespaceResolver, ResolveResult};
use quick_xml::reader::NsReader;
use quick_xml::{Reader, XmlVersion};

/// One unit cut from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Exact text of the stream's opening tag, e.g.
    /// `<stream:stream xmlns='jabber:client' to='x' version='1.0'>` (any XML
    /// declaration before it is not included).
    StreamOpen(String),
    /// One complete top-level element inside the stream, as the peer sent it
    /// except that the stream header's namespace declarations that it needs
    /// (the default namespace, and each prefix it uses) and its root does
    /// not redeclare are inserted after the root element's name. Those count
    /// against the size limit too.
    Stanza(String),
    /// The peer's end tag of the stream element (`</stream:stream>`).
    StreamEnd,
}

/// Why the framer rejected the stream. After an error the framer must not
/// be used again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The bytes are not well-formed XML (or not a valid stream); the reason
    /// is short and human readable.
    NotWellFormed(String),
    /// Well-formed but forbidden XML: DTD, DOCTYPE and ENTITY declarations,
    /// and processing instructions other than the leading XML declaration.
    Restricted(String),
    /// The XML declaration names an encoding other than UTF-8.
    UnsupportedEncoding(String),
    /// The stream header or a stanza is longer than `limit` bytes.
    TooLarge {
        /// The configured maximum size in bytes.
        limit: usize,
    },
    /// A stanza nests elements deeper than `limit` (its root is at depth 1).
    TooDeep {
        /// The configured maximum depth.
        limit: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotWellFormed(reason) => write!(f, "not well-formed: {reason}"),
            Self::Restricted(reason) => write!(f, "restricted XML: {reason}"),
            Self::UnsupportedEncoding(encoding) => {
                write!(f, "unsupported encoding {encoding:?}: the stream must be UTF-8")
            }
            Self::TooLarge { limit } => write!(f, "stanza larger than {limit} bytes"),
            Self::TooDeep { limit } => write!(f, "elements nested deeper than {limit}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// How deep a stanza may nest elements unless `set_max_depth` says
/// otherwise.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// A push-style, resumable framer for one XML stream.
///
/// Push each read's bytes with [`Framer::push`], then call
/// [`Framer::next_frame`] until it returns `Ok(None)`. Memory is bounded by
/// about `max_stanza_bytes` plus one pushed chunk: bytes are dropped as soon
/// as they are framed or skipped.
#[derive(Debug)]
pub struct Framer {
    /// Received bytes; everything before `start` is already framed or skipped.
    buf: Vec<u8>,
    /// Offset of the first byte of the frame being scanned.
    start: usize,
    /// Offset of the next byte the lexer examines; never moves backwards
    /// except on [`Framer::reset`].
    pos: usize,
    /// Largest header or stanza accepted, in bytes.
    max: usize,
    /// Deepest nesting of elements accepted in a stanza.
    max_depth: usize,
    /// Where in the stream the framer is.
    phase: Phase,
    /// Where inside the markup the lexer is.
    lex: Lex,
    /// Elements of the current stanza opened and not yet closed.
    depth: usize,
    /// What the stream header declared (empty before the header).
    header: Header,
    /// A reset asked for while a frame was half-read, to apply once that
    /// frame is complete.
    reset_pending: bool,
    /// Bytes examined by the lexer, so tests can check it never rescans.
    #[cfg(test)]
    examined: usize,
}

/// Where in the stream the framer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before the header; an XML declaration is still allowed.
    BeforeDecl,
    /// After the XML declaration, before the header.
    BeforeHeader,
    /// After the header: stanzas and whitespace until the stream's end tag.
    Stream,
    /// After the stream's end tag; everything else is ignored.
    Ended,
}

impl Phase {
    /// Whether the stream header is still to come.
    fn in_prolog(self) -> bool {
        matches!(self, Self::BeforeDecl | Self::BeforeHeader)
    }
}

/// Lexical state of the scanner: what the bytes read so far in the current
/// frame leave open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lex {
    /// Between frames: only whitespace or a `<` may follow.
    Idle,
    /// Character data inside a stanza.
    Text,
    /// Just after a `<`.
    Lt,
    /// Inside a start tag; `quote` is the open quote of an attribute value,
    /// `slash` whether the previous byte was a `/` outside quotes.
    StartTag { quote: Option<u8>, slash: bool },
    /// Just after an attribute value's closing quote, where whitespace or the
    /// tag's end must follow.
    AttrEnd,
    /// Inside an end tag.
    EndTag,
    /// Just after `<!`.
    Bang,
    /// Matching the rest of a comment's or CDATA section's opening.
    Literal { lit: Lit, matched: u8 },
    /// Inside a comment; `dashes` counts trailing `-` (up to 2).
    Comment { dashes: u8 },
    /// Inside a CDATA section; `brackets` counts trailing `]` (up to 2).
    CData { brackets: u8 },
    /// After `<?` before the header: `matched` bytes of the target `xml`.
    PiTarget { matched: u8 },
    /// Inside the XML declaration; `question` whether the last byte was `?`.
    Decl { question: bool },
}

/// The fixed text that follows `<!` in a comment or a CDATA section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lit {
    /// `<!-` must continue with `-`.
    CommentOpen,
    /// `<![` must continue with `CDATA[`.
    CDataOpen,
}

impl Lit {
    /// The bytes still expected after the byte that selected this literal.
    fn text(self) -> &'static [u8] {
        match self {
            Self::CommentOpen => b"-",
            Self::CDataOpen => b"CDATA[",
        }
    }

    /// The state after the whole literal.
    fn body(self) -> Lex {
        match self {
            Self::CommentOpen => Lex::Comment { dashes: 0 },
            Self::CDataOpen => Lex::CData { brackets: 0 },
        }
    }

    /// The state after `byte`, `matched` bytes of the literal having been seen.
    fn next(self, matched: u8, byte: u8) -> Result<Lex, FrameError> {
        let text = self.text();
        if text.get(usize::from(matched)) != Some(&byte) {
            return Err(not_well_formed("malformed comment or CDATA section"));
        }
        let matched = matched + 1;
        Ok(if usize::from(matched) == text.len() {
            self.body()
        } else {
            Lex::Literal { lit: self, matched }
        })
    }
}

/// A frame the lexer found complete, still to be checked and emitted.
#[derive(Clone, Copy, Debug)]
enum Done {
    /// `<?xml ...?>` before the header.
    Decl,
    /// The stream's start tag.
    Header,
    /// A top-level element.
    Stanza,
    /// An end tag at stream level.
    StreamEnd,
}

/// What the stream header declared.
#[derive(Debug, Default)]
struct Header {
    /// The header's qualified name, e.g. `stream:stream`.
    qname: String,
    /// Its namespace declarations, in order.
    namespaces: Vec<NsDecl>,
}

/// One `xmlns` or `xmlns:prefix` attribute of the stream header.
#[derive(Debug)]
struct NsDecl {
    /// The attribute name, e.g. `xmlns:stream`.
    key: String,
    /// The attribute as it is inserted into stanzas: `key='value'`, with the
    /// peer's quote and raw value.
    attr: String,
    /// The namespace it declares, as written.
    value: String,
}

impl Framer {
    /// A framer for a new stream accepting headers and stanzas (and XML
    /// declarations) of at most `max_stanza_bytes` bytes each.
    pub fn new(max_stanza_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            pos: 0,
            max: max_stanza_bytes,
            max_depth: DEFAULT_MAX_DEPTH,
            phase: Phase::BeforeDecl,
            lex: Lex::Idle,
            depth: 0,
            header: Header::default(),
            reset_pending: false,
            #[cfg(test)]
            examined: 0,
        }
    }

    /// Appends received bytes; does not scan (scanning happens in
    /// [`Framer::next_frame`] so that a [`Framer::reset`] between frames
    /// applies to bytes already received). Ignored after the stream ended.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.phase != Phase::Ended {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next complete frame, or `None` if more bytes are needed (always
    /// `None` once the stream ended).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        while self.phase != Phase::Ended {
            let Some(done) = self.scan()? else {
                self.compact();
                return Ok(None);
            };
            if let Some(frame) = self.finish(done)? {
                return Ok(Some(frame));
            }
        }
        Ok(None)
    }

    /// Changes the largest header or stanza accepted, from the frame being
    /// read on.
    pub fn set_max(&mut self, max_stanza_bytes: usize) {
        self.max = max_stanza_bytes;
    }

    /// Accepts stanzas nesting elements at most `max_depth` deep (the root
    /// is at depth 1); deeper is [`FrameError::TooDeep`]. Handlers walk
    /// element trees, often recursively: a bound keeps any of them from
    /// running out of stack on a stanza of nothing but start tags.
    pub fn set_max_depth(&mut self, max_depth: usize) {
        self.max_depth = max_depth.max(1);
    }

    /// Bytes pushed and not yet framed or skipped.
    pub fn unframed(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Restarts the stream: what follows must be a new (optional XML
    /// declaration and) stream header, as after SASL in XMPP. Bytes already
    /// pushed but not yet framed are kept and framed under the new stream.
    ///
    /// The restart happens at a frame boundary: asked for while a frame is
    /// half-read (from a timer or a routed event, between two reads of a
    /// stanza), it takes effect once that frame is complete, and the frame
    /// itself still belongs to the old stream.
    pub fn reset(&mut self) {
        if self.lex == Lex::Idle {
            self.restart();
        } else {
            self.reset_pending = true;
        }
    }

    fn restart(&mut self) {
        self.reset_pending = false;
        self.pos = self.start;
        self.phase = Phase::BeforeDecl;
        self.lex = Lex::Idle;
        self.depth = 0;
        self.header = Header::default();
    }

    /// Drops the framed and skipped bytes. Called once the lexer has reached
    /// the end of the buffer, so what is kept is one unfinished frame; it
    /// starts at offset 0 from then until it is complete, so each byte is
    /// moved at most once. An idle connection (everything framed) holds no
    /// buffer at all.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.pos -= self.start;
            self.start = 0;
        }
        if self.buf.is_empty() {
            self.buf = Vec::new();
        }
    }

    /// Runs the lexer from where it stopped to the end of the next frame.
    fn scan(&mut self) -> Result<Option<Done>, FrameError> {
        #[cfg(test)]
        let from = self.pos;
        let done = self.scan_bytes();
        #[cfg(test)]
        {
            self.examined += self.pos - from;
        }
        done
    }

    /// Feeds the lexer the unexamined bytes until a frame is complete.
    fn scan_bytes(&mut self) -> Result<Option<Done>, FrameError> {
        loop {
            if self.lex == Lex::Text {
                self.skip_text();
            }
            let Some(&byte) = self.buf.get(self.pos) else {
                return Ok(None);
            };
            self.pos += 1;
            if self.lex != Lex::Idle && self.pos - self.start > self.max {
                return Err(FrameError::TooLarge { limit: self.max });
            }
            if let Some(done) = self.step(byte)? {
                return Ok(Some(done));
            }
        }
    }

    /// Skips character data up to the next `<`, but not beyond the size
    /// limit, so that the byte past it is reported as too large.
    fn skip_text(&mut self) {
        let limit = self.start.saturating_add(self.max).min(self.buf.len());
        if let Some(text) = self.buf.get(self.pos..limit) {
            self.pos += text.iter().position(|&b| b == b'<').unwrap_or(text.len());
        }
    }

    /// Advances the lexer over one byte; returns the frame it completes.
    fn step(&mut self, byte: u8) -> Result<Option<Done>, FrameError> {
        self.lex = match self.lex {
            Lex::Idle => self.idle(byte)?,
            Lex::Text if byte == b'<' => Lex::Lt,
            Lex::Text => Lex::Text,
            Lex::Lt => self.after_lt(byte)?,
            Lex::Bang => self.after_bang(byte)?,
            Lex::Literal { lit, matched } => lit.next(matched, byte)?,
            Lex::StartTag { quote, slash } => return self.in_start_tag(quote, slash, byte),
            Lex::AttrEnd => match byte {
                b'>' => return self.close_start_tag(false),
                b'/' => Lex::StartTag {
                    quote: None,
                    slash: true,
                },
                _ if is_space(byte) => Lex::StartTag {
                    quote: None,
                    slash: false,
                },
                _ => return Err(not_well_formed("missing whitespace between attributes")),
            },
            Lex::EndTag => match byte {
                b'>' => return Ok(self.close_end_tag()),
                b'<' => return Err(not_well_formed("'<' inside an end tag")),
                _ => Lex::EndTag,
            },
            Lex::Comment { dashes } => match byte {
                b'>' if dashes == 2 => Lex::Text,
                b'-' => Lex::Comment {
                    dashes: (dashes + 1).min(2),
                },
                _ => Lex::Comment { dashes: 0 },
            },
            Lex::CData { brackets } => match byte {
                b'>' if brackets == 2 => Lex::Text,
                b']' => Lex::CData {
                    brackets: (brackets + 1).min(2),
                },
                _ => Lex::CData { brackets: 0 },
            },
            Lex::PiTarget { matched } => after_pi_target(matched, byte)?,
            Lex::Decl { question: true } if byte == b'>' => return Ok(Some(Done::Decl)),
            Lex::Decl { .. } => Lex::Decl { question: byte == b'?' },
        };
        Ok(None)
    }

    /// A byte between frames: whitespace is dropped, `<` opens a frame.
    fn idle(&mut self, byte: u8) -> Result<Lex, FrameError> {
        match byte {
            b'<' => Ok(Lex::Lt),
            _ if is_space(byte) => {
                self.start = self.pos;
                Ok(Lex::Idle)
            }
            _ if self.phase.in_prolog() => Err(not_well_formed("text before the stream header")),
            _ => Err(not_well_formed("text at stream level")),
        }
    }

    /// The byte after `<` decides what kind of markup this is.
    fn after_lt(&self, byte: u8) -> Result<Lex, FrameError> {
        match byte {
            b'/' if self.phase.in_prolog() => Err(not_well_formed("end tag before the stream header")),
            b'/' => Ok(Lex::EndTag),
            b'!' => Ok(Lex::Bang),
            b'?' if self.phase == Phase::BeforeDecl => Ok(Lex::PiTarget { matched: 0 }),
            b'?' => Err(restricted("processing instructions are not allowed")),
            _ if is_name_start(byte) => Ok(Lex::StartTag {
                quote: None,
                slash: false,
            }),
            _ => Err(not_well_formed("'<' not followed by a name")),
        }
    }

    /// The byte after `<!`: a declaration, a comment or a CDATA section.
    fn after_bang(&self, byte: u8) -> Result<Lex, FrameError> {
        match byte {
            b'D' | b'E' | b'A' | b'N' => Err(restricted("DTD declarations are not allowed")),
            _ if self.depth == 0 => Err(not_well_formed("comments and CDATA are only allowed inside stanzas")),
            b'-' => Ok(Lex::Literal {
                lit: Lit::CommentOpen,
                matched: 0,
            }),
            b'[' => Ok(Lex::Literal {
                lit: Lit::CDataOpen,
                matched: 0,
            }),
            _ => Err(not_well_formed("malformed '<!' markup")),
        }
    }

    /// A byte inside a start tag, where quoted attribute values may hold
    /// `>` and `/`.
    fn in_start_tag(&mut self, quote: Option<u8>, slash: bool, byte: u8) -> Result<Option<Done>, FrameError> {
        self.lex = match (quote, byte) {
            (_, b'<') => return Err(not_well_formed("'<' inside a start tag")),
            (Some(open), _) if byte == open => Lex::AttrEnd,
            (Some(_), _) => return Ok(None),
            (None, b'"' | b'\'') => Lex::StartTag {
                quote: Some(byte),
                slash: false,
            },
            (None, b'>') => return self.close_start_tag(slash),
            (None, _) => Lex::StartTag {
                quote: None,
                slash: byte == b'/',
            },
        };
        Ok(None)
    }

    /// The `>` of a start tag (`slash`: of an empty-element tag).
    fn close_start_tag(&mut self, slash: bool) -> Result<Option<Done>, FrameError> {
        if self.phase.in_prolog() {
            return if slash {
                Err(not_well_formed("the stream header must not be an empty element"))
            } else {
                Ok(Some(Done::Header))
            };
        }
        if self.depth >= self.max_depth {
            return Err(FrameError::TooDeep { limit: self.max_depth });
        }
        if !slash {
            self.depth += 1;
        }
        if self.depth == 0 {
            return Ok(Some(Done::Stanza));
        }
        self.lex = Lex::Text;
        Ok(None)
    }

    /// The `>` of an end tag: closes an element, a stanza or the stream.
    fn close_end_tag(&mut self) -> Option<Done> {
        if self.depth == 0 {
            return Some(Done::StreamEnd);
        }
        self.depth -= 1;
        if self.depth == 0 {
            return Some(Done::Stanza);
        }
        self.lex = Lex::Text;
        None
    }

    /// Checks a complete frame, consumes its bytes and returns what to emit.
    fn finish(&mut self, done: Done) -> Result<Option<Frame>, FrameError> {
        let frame = match done {
            Done::Decl => {
                check_decl(frame_str(&self.buf[self.start..self.pos])?)?;
                self.phase = Phase::BeforeHeader;
                None
            }
            Done::Header => Some(self.finish_header()?),
            Done::Stanza => Some(self.finish_stanza()?),
            Done::StreamEnd => Some(self.finish_stream()?),
        };
        self.start = self.pos;
        self.lex = Lex::Idle;
        if self.reset_pending && self.phase != Phase::Ended {
            self.restart();
        }
        Ok(frame)
    }

    /// Validates the header and remembers its name and namespaces.
    fn finish_header(&mut self) -> Result<Frame, FrameError> {
        let text = frame_str(&self.buf[self.start..self.pos])?;
        self.header = Header::parse(text)?;
        self.phase = Phase::Stream;
        Ok(Frame::StreamOpen(text.to_owned()))
    }

    /// Validates a stanza and gives it the stream's namespaces it needs.
    fn finish_stanza(&mut self) -> Result<Frame, FrameError> {
        let text = frame_str(&self.buf[self.start..self.pos])?;
        let prefixes = validate_stanza(text, &self.header.namespaces)?;
        let stanza = with_namespaces(text, &self.header.namespaces, &prefixes);
        if stanza.len() > self.max {
            return Err(FrameError::TooLarge { limit: self.max });
        }
        Ok(Frame::Stanza(stanza))
    }

    /// Checks that a stream-level end tag closes the stream, and ends it.
    fn finish_stream(&mut self) -> Result<Frame, FrameError> {
        let tag = &self.buf[self.start..self.pos];
        // `</` name, optional whitespace, `>`.
        let name = tag.get(2..tag.len() - 1).unwrap_or_default();
        let name_len = name.iter().rposition(|&b| !is_space(b)).map_or(0, |i| i + 1);
        if name[..name_len] != *self.header.qname.as_bytes() {
            return Err(not_well_formed("end tag at stream level does not close the stream"));
        }
        self.phase = Phase::Ended;
        self.buf = Vec::new();
        self.start = 0;
        self.pos = 0;
        Ok(Frame::StreamEnd)
    }
}

impl Header {
    /// Validates the header start tag with quick-xml and extracts its name
    /// and namespace declarations.
    fn parse(text: &str) -> Result<Self, FrameError> {
        check_chars(text)?;
        let mut reader = Reader::from_str(text);
        let Event::Start(tag) = reader.read_event().map_err(not_well_formed)? else {
            return Err(not_well_formed("invalid stream header"));
        };
        check_attributes(&tag, |_| {})?;
        let mut namespaces: Vec<NsDecl> = raw_attributes(tag.attributes_raw())
            .filter(|(key, _, _)| is_namespace_decl(key))
            .map(|(key, quote, value)| NsDecl {
                key: key.to_owned(),
                attr: format!("{key}={quote}{value}{quote}"),
                value: value.to_owned(),
            })
            .collect();
        // Kept as long as the stream: room for the two an XMPP header
        // declares, not the four `collect` makes room for.
        namespaces.shrink_to_fit();
        Ok(Self {
            qname: tag.name().0.to_owned(),
            namespaces,
        })
    }
}

/// Checks the XML declaration: a known version and, if given, UTF-8.
fn check_decl(text: &str) -> Result<(), FrameError> {
    let mut reader = Reader::from_str(text);
    let Event::Decl(decl) = reader.read_event().map_err(not_well_formed)? else {
        return Err(not_well_formed("invalid XML declaration"));
    };
    decl.xml_version().map_err(not_well_formed)?;
    match decl.encoding() {
        Some(Err(error)) => Err(not_well_formed(error)),
        Some(Ok(encoding)) if !encoding.eq_ignore_ascii_case("utf-8") => {
            Err(FrameError::UnsupportedEncoding(encoding.into_owned()))
        }
        _ => Ok(()),
    }
}

/// Checks a complete stanza with quick-xml: matching end tags, XML names,
/// well-formed attributes and namespace declarations, known entity and
/// character references, no control characters, no `]]>` in text, every
/// prefix bound (in the stanza or by the stream header's `inherited`
/// declarations) and no two attributes alike once their namespaces are
/// resolved. Returns the namespace prefixes its element and attribute names
/// use.
fn validate_stanza(text: &str, inherited: &[NsDecl]) -> Result<HashSet<String>, FrameError> {
    check_chars(text)?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().enable_all_checks(true);
    let mut prefixes = HashSet::new();
    let mut note = |prefix: &str| {
        if !prefixes.contains(prefix) {
            prefixes.insert(prefix.to_owned());
        }
    };
    loop {
        match reader.read_event().map_err(not_well_formed)? {
            Event::Start(tag) | Event::Empty(tag) => {
                if let Some(prefix) = tag.name().prefix() {
                    note(prefix.into_inner());
                }
                check_attributes(&tag, &mut note)?;
            }
            Event::GeneralRef(reference) => check_reference(&reference)?,
            Event::Text(text) if text.contains("]]>") => {
                return Err(not_well_formed("']]>' in text"));
            }
            Event::Text(_) | Event::CData(_) | Event::Comment(_) | Event::End(_) => {}
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {
                return Err(restricted("declarations are not allowed in stanzas"));
            }
            Event::Eof => break,
        }
    }
    // Resolving namespaces costs a second pass: only for the stanzas that
    // use a prefix that may be unbound (`xml` always is bound, and nothing
    // else may have its namespace).
    if prefixes.iter().any(|prefix| prefix != "xml" && prefix != "xmlns") {
        check_bindings(text, inherited)?;
    }
    Ok(prefixes)
}

/// Checks that a tag's name and attribute names are XML names, that its
/// attributes are well-formed and unique and their values unescape, and
/// that its namespace declarations are allowed ones; tells `note` each
/// prefix the attribute names use.
fn check_attributes(tag: &BytesStart<'_>, mut note: impl FnMut(&str)) -> Result<(), FrameError> {
    check_name(tag.name().as_ref())?;
    let mut attributes = tag.attributes();
    attributes.with_checks(true);
    for attribute in attributes {
        let attribute = attribute.map_err(not_well_formed)?;
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(not_well_formed)?;
        let key = attribute.key.as_ref();
        check_name(key)?;
        if let Some(prefix) = attribute.key.prefix() {
            note(prefix.into_inner());
        }
        check_chars(&value)?;
        check_namespace_decl(key, &value)?;
    }
    Ok(())
}

/// Checks, with namespaces resolved, that every prefix the stanza uses is
/// bound, in the stanza or by the stream header's `inherited`
/// declarations, and that no tag has two attributes with the same local
/// name in the same namespace (`a:x` and `b:x` with `a`, `b` bound alike).
fn check_bindings(text: &str, inherited: &[NsDecl]) -> Result<(), FrameError> {
    let mut reader = NsReader::from_str(text);
    loop {
        match reader.read_event().map_err(not_well_formed)? {
            Event::Start(tag) | Event::Empty(tag) => check_tag_bindings(reader.resolver(), &tag, inherited)?,
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// `check_bindings` for one tag. Names without a prefix need no resolving:
/// duplicates among them are caught as plain duplicates.
fn check_tag_bindings(
    resolver: &NamespaceResolver,
    tag: &BytesStart<'_>,
    inherited: &[NsDecl],
) -> Result<(), FrameError> {
    let namespace = |resolved: ResolveResult<'_>| match resolved {
        ResolveResult::Bound(namespace) => Ok(namespace.0.to_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => inherited
            .iter()
            .find(|decl| decl.key.strip_prefix("xmlns:") == Some(prefix.as_str()))
            .map(|decl| decl.value.clone())
            .ok_or_else(|| not_well_formed(format!("namespace prefix {prefix:?} is not declared"))),
    };
    if tag.name().prefix().is_some() {
        namespace(resolver.resolve_element(tag.name()).0)?;
    }
    let mut seen = HashSet::new();
    for attribute in tag.attributes().flatten() {
        match attribute.key.prefix() {
            Some(prefix) if prefix.into_inner() != "xmlns" => {}
            _ => continue,
        }
        let (resolved, local) = resolver.resolve_attribute(attribute.key);
        if !seen.insert((namespace(resolved)?, local.as_ref().to_owned())) {
            return Err(not_well_formed("two attributes with the same name and namespace"));
        }
    }
    Ok(())
}

/// Checks that `text` holds only XML characters: no C0 control character
/// but tab, line feed and carriage return.
fn check_chars(text: &str) -> Result<(), FrameError> {
    // One quick pass over the bytes: every character not allowed is a
    // control byte or starts with EF (U+FFFE, U+FFFF), so most text is done
    // here; whitespace controls and other EF characters take the slow path.
    // (In blocks without an early exit, which the compiler vectorises.)
    let suspect = |block: &[u8]| {
        block
            .iter()
            .fold(false, |found, &byte| found | (byte < b' ') | (byte == 0xEF))
    };
    if !text.as_bytes().chunks(64).any(suspect) {
        return Ok(());
    }
    match text.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(not_well_formed(format!(
            "character U+{:04X} is not allowed in XML",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

/// XML 1.0 `Char`.
fn is_xml_char(c: char) -> bool {
    !matches!(c, '\0'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// The namespace of the `xml` prefix, which only it may have.
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// Checks a namespace declaration (any other attribute passes): a prefix
/// may not be undeclared (`xmlns:p=''`), `xml` may only be bound to its own
/// namespace and nothing else to it, and `xmlns` not at all.
fn check_namespace_decl(key: &str, value: &str) -> Result<(), FrameError> {
    let Some(prefix) = key.strip_prefix("xmlns:") else {
        return if key == "xmlns" && value == XML_NAMESPACE {
            Err(not_well_formed("the XML namespace cannot be the default namespace"))
        } else {
            Ok(())
        };
    };
    match (prefix, value) {
        (_, "") => Err(not_well_formed("a namespace prefix cannot be undeclared")),
        ("xmlns", _) => Err(not_well_formed("the xmlns prefix cannot be declared")),
        ("xml", XML_NAMESPACE) => Ok(()),
        ("xml", _) => Err(not_well_formed("the xml prefix cannot be rebound")),
        (_, XML_NAMESPACE) => Err(not_well_formed("only the xml prefix has the XML namespace")),
        _ => Ok(()),
    }
}

/// Checks that `name` is an XML name (with at most one colon, as
/// namespaces require).
fn check_name(name: &str) -> Result<(), FrameError> {
    let valid = name.split(':').count() <= 2
        && name.split(':').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
        });
    if valid {
        Ok(())
    } else {
        Err(not_well_formed(format!("{name:?} is not an XML name")))
    }
}

/// XML 1.0 `NameStartChar`, less the colon.
fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}'
        | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 `NameChar`, less the colon.
fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Checks that `&name;` in text is a predefined entity or a valid character
/// reference.
fn check_reference(reference: &BytesRef<'_>) -> Result<(), FrameError> {
    let known = if reference.is_char_ref() {
        let c = reference.resolve_char_ref().map_err(not_well_formed)?;
        c.is_some_and(is_xml_char)
    } else {
        resolve_predefined_entity(reference).is_some()
    };
    if known {
        Ok(())
    } else {
        Err(not_well_formed("undefined entity reference"))
    }
}

/// Inserts after the root element's name each of the stream's namespace
/// declarations that the stanza needs — the default namespace, and those of
/// the `prefixes` it uses — and that the root start tag does not itself
/// declare. Copying every declaration into every stanza would let a header
/// full of them multiply each small stanza a thousandfold.
fn with_namespaces(stanza: &str, namespaces: &[NsDecl], prefixes: &HashSet<String>) -> String {
    let name_end = stanza
        .find(|c| is_space_char(c) || c == '/' || c == '>')
        .unwrap_or(stanza.len());
    let (head, tail) = stanza.split_at(name_end);
    let declared: HashSet<&str> = raw_attributes(tail)
        .map(|(key, _, _)| key)
        .filter(|key| is_namespace_decl(key))
        .collect();
    let needed = |decl: &&NsDecl| match decl.key.strip_prefix("xmlns:") {
        Some(prefix) => prefixes.contains(prefix),
        None => true,
    };
    let inserted = namespaces
        .iter()
        .filter(needed)
        .filter(|decl| !declared.contains(decl.key.as_str()));
    let extra: usize = inserted.clone().map(|decl| decl.attr.len() + 1).sum();
    let mut out = String::with_capacity(stanza.len() + extra);
    out.push_str(head);
    for decl in inserted {
        out.push(' ');
        out.push_str(&decl.attr);
    }
    out.push_str(tail);
    out
}

/// The attributes `(name, quote, raw value)` at the start of `rest`, which
/// follows the element name in a tag quick-xml has already validated; stops
/// at the end of the tag.
fn raw_attributes(mut rest: &str) -> impl Iterator<Item = (&str, char, &str)> {
    std::iter::from_fn(move || {
        let attribute = rest.trim_start_matches(is_space_char);
        if attribute.starts_with(['/', '>']) {
            return None;
        }
        let (key, value) = attribute.split_once('=')?;
        let mut value = value.trim_start_matches(is_space_char).chars();
        let quote = value.next().filter(|c| matches!(c, '\'' | '"'))?;
        let (value, tail) = value.as_str().split_once(quote)?;
        rest = tail;
        Some((key.trim_end_matches(is_space_char), quote, value))
    })
}

/// Whether an attribute name declares a namespace.
fn is_namespace_decl(key: &str) -> bool {
    key == "xmlns" || key.starts_with("xmlns:")
}

/// The frame's bytes as text, if they are UTF-8.
fn frame_str(bytes: &[u8]) -> Result<&str, FrameError> {
    std::str::from_utf8(bytes).map_err(|_| not_well_formed("invalid UTF-8"))
}

/// The state after `<?` and `matched` bytes of `xml`: only the XML
/// declaration is allowed, and only before the header.
fn after_pi_target(matched: u8, byte: u8) -> Result<Lex, FrameError> {
    match (matched, byte) {
        (0, b'x') | (1, b'm') | (2, b'l') => Ok(Lex::PiTarget { matched: matched + 1 }),
        (3, _) if is_space(byte) => Ok(Lex::Decl { question: false }),
        _ => Err(restricted("processing instructions are not allowed")),
    }
}

/// XML whitespace.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// XML whitespace, as a `char` pattern.
fn is_space_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Whether `byte` may start an element name (any non-ASCII byte may: the
/// name is checked by quick-xml once the frame is complete).
fn is_name_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || matches!(byte, b'_' | b':') || byte >= 0x80
}

/// A [`FrameError::NotWellFormed`] for `reason`.
fn not_well_formed(reason: impl fmt::Display) -> FrameError {
    FrameError::NotWellFormed(reason.to_string())
}

/// A [`FrameError::Restricted`] for `reason`.
fn restricted(reason: &str) -> FrameError {
    FrameError::Restricted(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version=\"1.0\">";
    /// What a stanza that uses no prefix inherits from `HEADER`.
    const NS: &str = "xmlns='jabber:client'";

    /// Pushes `input` in pieces of `chunk` bytes, draining after each push.
    fn feed(framer: &mut Framer, input: &[u8], chunk: usize) -> Result<Vec<Frame>, FrameError> {
        let mut frames = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            framer.push(piece);
            frames.extend(drain(framer)?);
        }
        Ok(frames)
    }

    /// Calls `next_frame` until it returns `None`.
    fn drain(framer: &mut Framer) -> Result<Vec<Frame>, FrameError> {
        let mut frames = Vec::new();
        while let Some(frame) = framer.next_frame()? {
            frames.push(frame);
        }
        Ok(frames)
    }

    /// Frames `input` pushed whole.
    fn frames_of(input: &str, max: usize) -> Result<Vec<Frame>, FrameError> {
        feed(&mut Framer::new(max), input.as_bytes(), input.len())
    }

    fn stanza(text: &str) -> Frame {
        Frame::Stanza(text.to_owned())
    }

    fn open(text: &str) -> Frame {
        Frame::StreamOpen(text.to_owned())
    }

    fn assert_not_well_formed(result: Result<Vec<Frame>, FrameError>) {
        assert!(matches!(result, Err(FrameError::NotWellFormed(_))), "{result:?}");
    }

    fn assert_restricted(result: Result<Vec<Frame>, FrameError>) {
        assert!(matches!(result, Err(FrameError::Restricted(_))), "{result:?}");
    }

    /// A realistic stream with tricky markup, and the frames it yields.
    fn realistic() -> (String, Vec<Frame>) {
        let message = "<message to='juliet@example.com' from=\"romeo@example.net/orchard\" \
            type='chat' id=\"a'b>c/>d\" note='say \"hi\" />'>\
            <body>Wherefore art thou? &amp; &#x263A; \u{e9}t\u{e9} a &gt; b</body>\
            <!-- a > b /> c - d -->\
            <data><![CDATA[</x> <y/> ]] ]]]></data>\
            <active xmlns='http://jabber.org/protocol/chatstates'/>\
            </message>";
        let iq = "<iq type='get' id='q\"1'><query xmlns='jabber:iq:roster'/></iq>";
        let presence = "<presence/>";
        let input = format!(
            "<?xml version='1.0' encoding='UTF-8'?>\n{HEADER}\n  {message} \r\n\t \
             {iq}{presence}\n</stream:stream >"
        );
        let expected = vec![
            open(HEADER),
            Frame::Stanza(message.replacen("<message", &format!("<message {NS}"), 1)),
            Frame::Stanza(iq.replacen("<iq", &format!("<iq {NS}"), 1)),
            Frame::Stanza(format!("<presence {NS}/>")),
            Frame::StreamEnd,
        ];
        (input, expected)
    }

    #[test]
    fn header_with_declaration() {
        let input = format!("<?xml version='1.0'?>{HEADER}");
        assert_eq!(frames_of(&input, 1024), Ok(vec![open(HEADER)]));
    }

    #[test]
    fn header_without_declaration_after_whitespace() {
        let input = format!(" \r\n\t{HEADER}");
        assert_eq!(frames_of(&input, 1024), Ok(vec![open(HEADER)]));
    }

    #[test]
    fn header_with_any_name() {
        let input = "<root xmlns=\"urn:x\"><a/>";
        assert_eq!(
            frames_of(input, 1024),
            Ok(vec![open("<root xmlns=\"urn:x\">"), stanza("<a xmlns=\"urn:x\"/>")])
        );
    }

    #[test]
    fn several_stanzas_in_one_push() {
        let input = format!("{HEADER}<a/><b x='1'>t</b><c><d/></c>");
        assert_eq!(
            frames_of(&input, 1024),
            Ok(vec![
                open(HEADER),
                Frame::Stanza(format!("<a {NS}/>")),
                Frame::Stanza(format!("<b {NS} x='1'>t</b>")),
                Frame::Stanza(format!("<c {NS}><d/></c>")),
            ])
        );
    }

    #[test]
    fn realistic_stream_pushed_whole() {
        let (input, expected) = realistic();
        assert_eq!(frames_of(&input, 4096), Ok(expected));
    }

    #[test]
    fn every_split_point_yields_the_same_frames() {
        let (input, expected) = realistic();
        let bytes = input.as_bytes();
        for split in 0..=bytes.len() {
            let mut framer = Framer::new(4096);
            let mut frames = feed(&mut framer, &bytes[..split], bytes.len()).unwrap();
            frames.extend(feed(&mut framer, &bytes[split..], bytes.len()).unwrap());
            assert_eq!(frames, expected, "split at {split}");
        }
    }

    #[test]
    fn small_chunks_yield_the_same_frames() {
        let (input, expected) = realistic();
        for chunk in 1..=9 {
            let mut framer = Framer::new(4096);
            let frames = feed(&mut framer, input.as_bytes(), chunk).unwrap();
            assert_eq!(frames, expected, "chunks of {chunk}");
        }
    }

    #[test]
    fn whitespace_keepalives_are_not_buffered() {
        let mut framer = Framer::new(1024);
        framer.push(HEADER.as_bytes());
        assert_eq!(drain(&mut framer), Ok(vec![open(HEADER)]));
        for _ in 0..100 {
            framer.push(b" \n\t\r ");
            assert_eq!(drain(&mut framer), Ok(vec![]));
            assert!(framer.buf.is_empty());
        }
        framer.push(b"  <a/>  ");
        assert_eq!(drain(&mut framer), Ok(vec![Frame::Stanza(format!("<a {NS}/>"))]));
    }

    #[test]
    fn stream_end_stops_framing() {
        let mut framer = Framer::new(1024);
        framer.push(format!("{HEADER}<a/></stream:stream><b/>").as_bytes());
        assert_eq!(
            drain(&mut framer),
            Ok(vec![
                open(HEADER),
                Frame::Stanza(format!("<a {NS}/>")),
                Frame::StreamEnd,
            ])
        );
        framer.push(b"garbage <x>");
        assert_eq!(framer.next_frame(), Ok(None));
        assert!(framer.buf.is_empty());
    }

    #[test]
    fn reset_frames_pushed_bytes_as_a_new_stream() {
        let second = "<stream:stream xmlns='jabber:server' \
            xmlns:stream='http://etherx.jabber.org/streams'>";
        let mut framer = Framer::new(1024);
        framer.push(format!("{HEADER}<success/><?xml version='1.0'?>{second}<iq id='1'/>").as_bytes());
        assert_eq!(framer.next_frame(), Ok(Some(open(HEADER))));
        assert_eq!(framer.next_frame(), Ok(Some(Frame::Stanza(format!("<success {NS}/>")))));
        framer.reset();
        assert_eq!(framer.next_frame(), Ok(Some(open(second))));
        assert_eq!(
            framer.next_frame(),
            Ok(Some(stanza("<iq xmlns='jabber:server' id='1'/>")))
        );
        assert_eq!(framer.next_frame(), Ok(None));
    }

    #[test]
    fn a_reset_right_after_a_frame_frames_what_follows_as_a_new_stream() {
        // As in a session: the stanza's event asks for the reset as soon as
        // the stanza is framed, before the bytes after it are scanned.
        let mut framer = Framer::new(1024);
        framer.push(format!("{HEADER}<success/><stream:str").as_bytes());
        assert_eq!(framer.next_frame(), Ok(Some(open(HEADER))));
        assert_eq!(framer.next_frame(), Ok(Some(Frame::Stanza(format!("<success {NS}/>")))));
        framer.reset();
        framer.push(b"eam>");
        assert_eq!(framer.next_frame(), Ok(Some(open("<stream:stream>"))));
    }

    #[test]
    fn a_reset_while_a_stanza_is_half_read_waits_for_its_end() {
        let mut framer = Framer::new(1024);
        framer.push(format!("{HEADER}<message><bo").as_bytes());
        assert_eq!(drain(&mut framer).map(|frames| frames.len()), Ok(1));
        framer.reset();
        framer.push(b"dy/></message><stream:stream>");
        assert_eq!(
            drain(&mut framer),
            Ok(vec![
                stanza(&format!("<message {NS}><body/></message>")),
                open("<stream:stream>")
            ])
        );
    }

    #[test]
    fn without_reset_a_second_declaration_is_restricted() {
        let input = format!("{HEADER}<success/><?xml version='1.0'?>");
        assert_restricted(frames_of(&input, 1024));
    }

    #[test]
    fn namespaces_keep_their_quotes() {
        let header = "<stream:stream xmlns=\"jabber:client\" \
            xmlns:stream='http://etherx.jabber.org/streams'>";
        let input = format!("{header}<message to='a'/>");
        assert_eq!(
            frames_of(&input, 1024),
            Ok(vec![open(header), stanza("<message xmlns=\"jabber:client\" to='a'/>"),])
        );
    }

    #[test]
    fn redeclared_namespace_is_not_inserted() {
        let input = format!("{HEADER}<message xmlns = 'jabber:server' to='a'>x</message>");
        let expected = "<message xmlns = 'jabber:server' to='a'>x</message>";
        assert_eq!(frames_of(&input, 1024), Ok(vec![open(HEADER), stanza(expected)]));
        let both = "<m xmlns='a' xmlns:stream='b'/>";
        assert_eq!(
            frames_of(&format!("{HEADER}{both}"), 1024),
            Ok(vec![open(HEADER), stanza(both)])
        );
    }

    #[test]
    fn only_the_default_namespace_and_used_prefixes_are_inserted() {
        let input = format!("{HEADER}<stream:features><x/></stream:features><a/><b xmlns:p='urn:p' p:c='1'/>");
        assert_eq!(
            frames_of(&input, 1024),
            Ok(vec![
                open(HEADER),
                stanza(
                    "<stream:features xmlns='jabber:client' \
                     xmlns:stream='http://etherx.jabber.org/streams'><x/></stream:features>"
                ),
                stanza("<a xmlns='jabber:client'/>"),
                stanza("<b xmlns='jabber:client' xmlns:p='urn:p' p:c='1'/>"),
            ])
        );
    }

    #[test]
    fn a_header_full_of_declarations_does_not_amplify_stanzas() {
        // 100 declarations of ~600 bytes each: `<a/>` stays `<a/>`, and a
        // stanza that uses one gets that one, within the size limit.
        let decls: String = (0..100)
            .map(|i| format!(" xmlns:p{i}='urn:{}'", "x".repeat(600)))
            .collect();
        let header = format!("<s{decls}>");
        let max = header.len();
        let input = format!("{header}{}", "<a/>".repeat(200));
        let frames = frames_of(&input, max).unwrap();
        assert_eq!(frames.len(), 201);
        assert!(frames[1..].iter().all(|frame| *frame == stanza("<a/>")));
        let used = format!("{header}<p7:a/>");
        let frames = frames_of(&used, max).unwrap();
        assert_eq!(
            frames[1],
            stanza(&format!("<p7:a xmlns:p7='urn:{}'/>", "x".repeat(600)))
        );
        // What the guest would receive counts against the limit: a stanza
        // that fits as sent, but not with the declaration it inherits.
        let header = format!("<s xmlns:p='urn:{}'>", "x".repeat(600));
        let max = header.len();
        let body = format!("<p:a>{}</p:a>", "t".repeat(max - 20));
        assert!(body.len() <= max);
        let input = format!("{header}{body}");
        assert_eq!(frames_of(&input, max), Err(FrameError::TooLarge { limit: max }));
    }

    #[test]
    fn header_without_namespaces_inserts_nothing() {
        assert_eq!(
            frames_of("<s><a b='c'/>", 1024),
            Ok(vec![open("<s>"), stanza("<a b='c'/>")])
        );
    }

    #[test]
    fn mismatched_end_tag() {
        assert_not_well_formed(frames_of(&format!("{HEADER}<message><body></message></body>"), 1024));
    }

    #[test]
    fn bad_attributes() {
        for bad in [
            "<m to=a/>",
            "<m a='1' a='2'/>",
            "<m a='1'b='2'/>",
            "<m a='x<y'/>",
            "<m a/>",
        ] {
            assert_not_well_formed(frames_of(&format!("{HEADER}{bad}"), 1024));
        }
        assert_not_well_formed(frames_of("<stream:stream a='1' a='2'>", 1024));
    }

    #[test]
    fn bad_entities() {
        for bad in [
            "<m>&foo;</m>",
            "<m>a & b</m>",
            "<m>&#0;</m>",
            "<m>&#xZZ;</m>",
            "<m a='&bogus;'/>",
            "<m a='&amp'/>",
        ] {
            assert_not_well_formed(frames_of(&format!("{HEADER}{bad}"), 1024));
        }
        assert_not_well_formed(frames_of("<s a='&nope;'>", 1024));
    }

    #[test]
    fn invalid_utf8() {
        let mut input = format!("{HEADER}<m>").into_bytes();
        input.extend_from_slice(b"\xff\xfe</m>");
        let result = feed(&mut Framer::new(1024), &input, input.len());
        assert_not_well_formed(result);
        assert_not_well_formed(feed(&mut Framer::new(1024), b"<s a='\xc3'>", 64));
    }

    #[test]
    fn text_at_stream_level() {
        assert_not_well_formed(frames_of(&format!("{HEADER}hello"), 1024));
        assert_not_well_formed(frames_of(&format!("{HEADER}<a/>x<b/>"), 1024));
        assert_not_well_formed(frames_of(&format!("{HEADER}<!-- c -->"), 1024));
        assert_not_well_formed(frames_of(&format!("{HEADER}<![CDATA[x]]>"), 1024));
    }

    #[test]
    fn foreign_end_tag_at_stream_level() {
        assert_not_well_formed(frames_of(&format!("{HEADER}</message>"), 1024));
        assert_not_well_formed(frames_of("<a:s xmlns:a='x'></b:s>", 1024));
    }

    #[test]
    fn doctype_and_declarations_are_restricted() {
        assert_restricted(frames_of("<!DOCTYPE stream>", 1024));
        assert_restricted(frames_of(&format!("<?xml version='1.0'?><!DOCTYPE x>{HEADER}"), 1024));
        assert_restricted(frames_of(&format!("{HEADER}<!DOCTYPE x>"), 1024));
        assert_restricted(frames_of(&format!("{HEADER}<m><!ENTITY x 'y'></m>"), 1024));
        assert_restricted(frames_of(&format!("{HEADER}<m><!DOCTYPE x></m>"), 1024));
    }

    #[test]
    fn processing_instructions_are_restricted() {
        assert_restricted(frames_of("<?xml-stylesheet href='a'?><s>", 1024));
        assert_restricted(frames_of("<?php x?><s>", 1024));
        assert_restricted(frames_of("<?xml version='1.0'?><?xml version='1.0'?><s>", 1024));
        assert_restricted(frames_of(&format!("{HEADER}<?pi x?>"), 1024));
        assert_restricted(frames_of(&format!("{HEADER}<m><?pi x?></m>"), 1024));
    }

    #[test]
    fn bad_declarations() {
        assert_not_well_formed(frames_of("<?xml version='2.0'?><s>", 1024));
        assert_not_well_formed(frames_of("<?xml encoding='UTF-8'?><s>", 1024));
        assert_eq!(
            frames_of("<?xml version='1.0' encoding='latin1'?><s>", 1024),
            Err(FrameError::UnsupportedEncoding("latin1".into()))
        );
    }

    #[test]
    fn what_xml_forbids_in_a_stanza_is_not_well_formed() {
        for bad in [
            "<m>a ]]> b</m>",
            "<m>\u{1}</m>",
            "<m a='\u{7}'/>",
            "<m>&#1;</m>",
            "<m a='&#x1b;'/>",
            "<1m/>",
            "<m -a='1'/>",
            "<m a:b:c='1'/>",
            "<m xmlns:p=''/>",
            "<m xmlns:xml='urn:not-xml'/>",
            "<m xmlns:xmlns='urn:x'/>",
            "<m xmlns:p='http://www.w3.org/XML/1998/namespace'/>",
            "<m xmlns:a='urn:x' xmlns:b='urn:x' a:c='1' b:c='2'/>",
            "<m xmlns:a='urn:x' a:c='1' stream:c='2' xmlns:stream='urn:x'/>",
            "<q:m/>",
            "<m><q:n/></m>",
            "<m q:a='1'/>",
        ] {
            assert_not_well_formed(frames_of(&format!("{HEADER}{bad}"), 1024));
        }
        // What is allowed stays allowed.
        let good = "<m xml:lang='en' xmlns:xml='http://www.w3.org/XML/1998/namespace' \
                    é-1.x='a&#9;b'>x]]y&#10;<![CDATA[]]]]><p:q xmlns:p='urn:p'/></m>";
        assert_eq!(
            frames_of(&format!("{HEADER}{good}"), 1024).map(|frames| frames.len()),
            Ok(2)
        );
    }

    #[test]
    fn garbage_before_header() {
        for bad in [
            "hello<stream:stream>",
            "</stream:stream>",
            "<!-- hi --><stream:stream>",
            "<stream:stream/>",
            "< stream>",
            "\u{feff}<stream:stream>",
        ] {
            assert_not_well_formed(frames_of(bad, 1024));
        }
    }

    #[test]
    fn malformed_markup_in_stanzas() {
        for bad in ["<m><!-x--></m>", "<m><![CDAT[x]]></m>", "<m><!x></m>", "<m>< x/></m>"] {
            assert_not_well_formed(frames_of(&format!("{HEADER}{bad}"), 1024));
        }
        assert_not_well_formed(frames_of(&format!("{HEADER}<m><!-- a -- b --></m>"), 1024));
    }

    #[test]
    fn header_too_large() {
        let header = format!("<stream:stream to='{}'>", "x".repeat(100));
        let limit = header.len() - 1;
        assert_eq!(frames_of(&header, limit), Err(FrameError::TooLarge { limit }));
        assert_eq!(frames_of(&header, header.len()), Ok(vec![open(&header)]));
    }

    #[test]
    fn stanza_too_large() {
        let body = format!("<m a='{}'>{}<x/></m>", "v".repeat(50), "t".repeat(200));
        let input = format!("{HEADER}{body}");
        let fits = (body.len() + NS.len() + 1).max(HEADER.len());
        for chunk in [1, 7, input.len()] {
            let result = feed(&mut Framer::new(fits), input.as_bytes(), chunk);
            assert_eq!(result.map(|frames| frames.len()), Ok(2), "chunks of {chunk}");
            let mut framer = Framer::new(body.len() - 1);
            let result = feed(&mut framer, input.as_bytes(), chunk);
            assert_eq!(
                result,
                Err(FrameError::TooLarge { limit: body.len() - 1 }),
                "chunks of {chunk}"
            );
            assert!(framer.buf.len() <= body.len() - 1 + chunk.max(HEADER.len()));
        }
    }

    #[test]
    fn stanza_too_large_fed_byte_by_byte_in_text() {
        let max = 1000;
        let input = format!("<s><m>{}</m>", "t".repeat(5000));
        let mut framer = Framer::new(max);
        let mut result = Ok(());
        for byte in input.as_bytes() {
            framer.push(std::slice::from_ref(byte));
            assert!(framer.buf.len() <= max + 1);
            if let Err(error) = drain(&mut framer) {
                result = Err(error);
                break;
            }
        }
        assert_eq!(result, Err(FrameError::TooLarge { limit: max }));
    }

    /// A stanza of exactly `max` bytes with nested elements, attributes,
    /// comments, CDATA and long text.
    fn max_size_stanza(max: usize) -> String {
        let mut stanza = String::from("<message to='a@b' id=\"x>y\">");
        let mut i = 0;
        while stanza.len() + 200 < max {
            stanza.push_str(&format!(
                "<item n='{i}' q=\"a'b/>\">text &amp; more<!-- c > d -->\
                 <![CDATA[</item>]]></item>"
            ));
            i += 1;
        }
        stanza.push_str("<body>");
        let tail = "</body></message>";
        stanza.push_str(&"z".repeat(max - stanza.len() - tail.len()));
        stanza.push_str(tail);
        assert_eq!(stanza.len(), max);
        stanza
    }

    #[test]
    fn scanning_is_linear_when_fed_byte_by_byte() {
        let max = 64 * 1024;
        let stanza = max_size_stanza(max);
        let input = format!("<s>{stanza}");
        let mut framer = Framer::new(max);
        let mut frames = Vec::new();
        for byte in input.as_bytes() {
            framer.push(std::slice::from_ref(byte));
            frames.extend(drain(&mut framer).unwrap());
            assert!(framer.buf.len() <= max + 1);
        }
        assert_eq!(frames, vec![open("<s>"), Frame::Stanza(stanza)]);
        assert!(
            framer.examined <= 2 * input.len(),
            "examined {} bytes for {} bytes of input",
            framer.examined,
            input.len()
        );
    }

    #[test]
    fn stanza_of_exactly_max_bytes_fits() {
        let max = 4096;
        let stanza = max_size_stanza(max);
        let result = feed(&mut Framer::new(max), format!("<s>{stanza}").as_bytes(), 3);
        assert_eq!(result, Ok(vec![open("<s>"), Frame::Stanza(stanza)]));
    }

    #[test]
    fn stanzas_nest_at_most_max_depth_elements() {
        let nested = |depth: usize| format!("{}<leaf/>{}", "<a>".repeat(depth - 1), "</a>".repeat(depth - 1));
        let mut framer = Framer::new(1 << 16);
        framer.set_max_depth(8);
        let deepest = nested(8);
        let input = format!("{HEADER}{deepest}");
        let frames = feed(&mut framer, input.as_bytes(), 5).expect("eight deep is accepted");
        assert_eq!(frames.len(), 2);
        let mut framer = Framer::new(1 << 16);
        framer.set_max_depth(8);
        let input = format!("{HEADER}{}", nested(9));
        assert_eq!(
            feed(&mut framer, input.as_bytes(), 5),
            Err(FrameError::TooDeep { limit: 8 })
        );
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            FrameError::TooLarge { limit: 10 }.to_string(),
            "stanza larger than 10 bytes"
        );
        assert_eq!(FrameError::Restricted("x".into()).to_string(), "restricted XML: x");
        assert_eq!(FrameError::NotWellFormed("y".into()).to_string(), "not well-formed: y");
    }
}
