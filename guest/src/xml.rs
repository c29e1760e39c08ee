//! XML helpers for handlers: escaping, and a view of a stanza's root start
//! tag that reads its name and attributes and rewrites attributes while
//! keeping every other byte of the stanza as the peer sent it.
//!
//! Only the root start tag is parsed (with `quick-xml`), never the children,
//! so the cost does not grow with the size of the stanza.

use std::borrow::Cow;
use std::ops::Range;

use quick_xml::events::Event;
use quick_xml::events::attributes::Attributes;
use quick_xml::{Reader, XmlVersion};

/// Escapes `text` for use as XML text or as an attribute value in either
/// kind of quotes: `<`, `>`, `&`, `'`, `"` and `\r` become references.
/// Borrows when there is nothing to escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(text)
}

/// The opening of a reply stream in the XMPP client namespace, from
/// `domain` (escaped here): what a handler sends when its peer opens a stream.
pub fn stream_header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' from='{}' version='1.0'>",
        escape(domain)
    )
}

/// Swaps the `from` and `to` attributes of `stanza`'s root element, keeping
/// every other byte. A stanza with neither is returned unchanged.
///
/// Shorthand for [`Element::parse`] then [`Element::swap_from_to`].
pub fn swap_from_to(stanza: &str) -> Result<String, String> {
    Ok(Element::parse(stanza)?.swap_from_to())
}

/// The root start tag of a stanza (or a stream header), parsed without
/// reading further: its name, namespace and attributes.
///
/// ```
/// # use ej_guest::xml::Element;
/// let stanza = "<message xmlns='jabber:client' to='b@x' from='a@x'><body>hi</body></message>";
/// let el = Element::parse(stanza)?;
/// assert_eq!(el.name(), "message");
/// assert_eq!(el.namespace(), Some("jabber:client"));
/// assert_eq!(el.attr("to"), Some("b@x"));
/// assert_eq!(
///     el.swap_from_to(),
///     "<message xmlns='jabber:client' from='b@x' to='a@x'><body>hi</body></message>",
/// );
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone)]
pub struct Element<'a> {
    /// The whole text the element was parsed from.
    src: &'a str,
    /// The qualified name, as written.
    name: &'a str,
    /// Where in `src` the attributes end: after the last attribute's closing
    /// quote, or after the name. New attributes are inserted here.
    attrs_end: usize,
    /// The attributes, in document order.
    attrs: Vec<Attr<'a>>,
}

/// One attribute of an [`Element`], with where it sits in the source.
#[derive(Debug, Clone)]
struct Attr<'a> {
    /// The qualified name, as written.
    key: &'a str,
    /// The whole attribute in the source, from the whitespace before it up to
    /// and including its closing quote: removing this range removes it
    /// cleanly.
    span: Range<usize>,
    /// The key in the source.
    key_span: Range<usize>,
    /// The raw value in the source, between the quotes.
    value_span: Range<usize>,
    /// The value with references resolved and whitespace normalised.
    value: Cow<'a, str>,
}

impl<'a> Element<'a> {
    /// Parses the first start tag of `text`, skipping an XML declaration,
    /// comments, processing instructions and whitespace before it.
    ///
    /// Fails if that tag is malformed, has a duplicate attribute or an
    /// attribute value with an unknown entity, or if `text` does not start
    /// with an element. Nothing after the start tag is read, so `text` may
    /// be an unclosed stream header.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let mut reader = Reader::from_str(text);
        let start = loop {
            match reader.read_event() {
                Ok(Event::Start(start) | Event::Empty(start)) => break start,
                Ok(Event::Decl(_) | Event::Comment(_) | Event::PI(_)) => {}
                Ok(Event::Text(t)) if t.trim_start().is_empty() => {}
                Ok(Event::Eof) => return Err("not an element: no start tag".to_owned()),
                Ok(other) => return Err(format!("not an element: starts with {other:?}")),
                Err(e) => return Err(format!("malformed start tag: {e}")),
            }
        };
        // `start` borrows from `text`: find it there, to hand out slices that
        // live as long as `text` and to know where everything is.
        let tag_start = offset_in(text, &start)?;
        let tag = &text[tag_start..tag_start + start.len()];
        let name_len = start.name().0.len();
        let name = &tag[..name_len];

        let mut attrs: Vec<Attr<'a>> = Vec::with_capacity(8);
        let mut attrs_end = tag_start + name_len;
        // Duplicates are checked below, without the allocation quick-xml's
        // own check makes.
        for attr in Attributes::new(tag, name_len).with_checks(false) {
            let attr = attr.map_err(|e| format!("malformed attribute in <{name}>: {e}"))?;
            let key = attr.key.0;
            if attrs.iter().any(|a| a.key == key) {
                return Err(format!("duplicate attribute {key} in <{name}>"));
            }
            let Cow::Borrowed(raw) = attr.value else {
                return Err(format!("attribute {key} in <{name}> is not in the source"));
            };
            // Most values have nothing to resolve or normalise: skip the work.
            let value = if raw.contains(['&', '\t', '\n', '\r']) {
                attr.normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|e| format!("malformed value of {key} in <{name}>: {e}"))?
            } else {
                Cow::Borrowed(raw)
            };
            let key_start = offset_in(text, key)?;
            let value_start = offset_in(text, raw)?;
            let value_end = value_start + raw.len();
            // Attributes are always quoted: the closing quote follows the value.
            let span_end = value_end + 1;
            attrs.push(Attr {
                key,
                span: attrs_end..span_end,
                key_span: key_start..key_start + key.len(),
                value_span: value_start..value_end,
                value,
            });
            attrs_end = span_end;
        }
        Ok(Self {
            src: text,
            name,
            attrs_end,
            attrs,
        })
    }

    /// The qualified name, as written: `message`, `stream:features`.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The name without its prefix: `features` for `stream:features`.
    pub fn local_name(&self) -> &'a str {
        self.name.split_once(':').map_or(self.name, |(_, local)| local)
    }

    /// The namespace declared on this tag for its name: the `xmlns`
    /// attribute, or `xmlns:p` for a name `p:…`. Stanzas carry the
    /// declarations they inherit from the stream header, so this is the
    /// stanza's namespace; for a stream header it is the streams namespace.
    pub fn namespace(&self) -> Option<&str> {
        match self.name.split_once(':') {
            Some((prefix, _)) => self
                .attrs
                .iter()
                .find(|a| a.key.strip_prefix("xmlns:") == Some(prefix))
                .map(|a| a.value.as_ref()),
            None => self.attr("xmlns"),
        }
    }

    /// The value of attribute `name` (qualified, as written), with
    /// references such as `&amp;` resolved.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.find(name).map(|a| a.value.as_ref())
    }

    /// All attributes, as `(name, value)` in document order, values as
    /// [`Element::attr`] gives them. Namespace declarations are included.
    pub fn attrs(&self) -> impl Iterator<Item = (&'a str, &str)> {
        self.attrs.iter().map(|a| (a.key, a.value.as_ref()))
    }

    /// The source text with the `from` and `to` attributes of this tag
    /// swapped, by renaming them in place: values, quotes and every other
    /// byte stay as they were. With only one of them, it is renamed to the
    /// other; with neither, the text is returned unchanged.
    pub fn swap_from_to(&self) -> String {
        let edits = self.attrs.iter().filter_map(|a| match a.key {
            "from" => Some((a.key_span.clone(), Cow::Borrowed("to"))),
            "to" => Some((a.key_span.clone(), Cow::Borrowed("from"))),
            _ => None,
        });
        splice(self.src, edits)
    }

    /// The source text with attributes of this tag changed: for each
    /// `(name, Some(value))` the attribute gets `value` (escaped here), in
    /// place if it exists, else added after the last attribute; for each
    /// `(name, None)` it is removed. Every other byte stays as it was.
    ///
    /// ```
    /// # use ej_guest::xml::Element;
    /// let el = Element::parse("<iq type='get' id='1'><ping/></iq>")?;
    /// assert_eq!(
    ///     el.set_attrs(&[("type", Some("result")), ("id", None), ("to", Some("a&b"))]),
    ///     "<iq type='result' to='a&amp;b'><ping/></iq>",
    /// );
    /// # Ok::<(), String>(())
    /// ```
    pub fn set_attrs(&self, changes: &[(&str, Option<&str>)]) -> String {
        let change = |key: &str| changes.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let in_place = self.attrs.iter().filter_map(|a| match change(a.key)? {
            Some(value) => Some((a.value_span.clone(), escape_attr(value))),
            None => Some((a.span.clone(), Cow::Borrowed(""))),
        });
        let added: String = changes
            .iter()
            .filter(|(key, _)| self.find(key).is_none())
            .filter_map(|(key, value)| Some(format!(" {key}='{}'", escape_attr((*value)?))))
            .collect();
        let at = self.attrs_end;
        splice(self.src, in_place.chain([(at..at, Cow::Owned(added))]))
    }

    /// The attribute named `name`.
    fn find(&self, name: &str) -> Option<&Attr<'a>> {
        self.attrs.iter().find(|a| a.key == name)
    }
}

/// Escapes an attribute value, also keeping tabs and newlines from being
/// normalised to spaces when it is read back.
fn escape_attr(value: &str) -> Cow<'_, str> {
    let escaped = escape(value);
    if escaped.contains(['\t', '\n']) {
        Cow::Owned(escaped.replace('\t', "&#9;").replace('\n', "&#10;"))
    } else {
        escaped
    }
}

/// `src` with each range replaced by its text. The ranges must be in order
/// and must not overlap.
fn splice<'t>(src: &str, edits: impl IntoIterator<Item = (Range<usize>, Cow<'t, str>)>) -> String {
    let mut out = String::with_capacity(src.len() + 16);
    let mut at = 0;
    for (range, text) in edits {
        out.push_str(&src[at..range.start]);
        out.push_str(&text);
        at = range.end;
    }
    out.push_str(&src[at..]);
    out
}

/// Where `inner`, a slice borrowed from `outer`, starts in `outer`.
fn offset_in(outer: &str, inner: &str) -> Result<usize, String> {
    inner
        .as_ptr()
        .addr()
        .checked_sub(outer.as_ptr().addr())
        .filter(|start| start + inner.len() <= outer.len())
        .ok_or_else(|| "quick-xml returned text that is not from its input".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Element<'_> {
        match Element::parse(text) {
            Ok(el) => el,
            Err(e) => panic!("{text:?} does not parse: {e}"),
        }
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape("plain"), "plain");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
    }

    #[test]
    fn reads_name_namespace_and_attributes() {
        let el = parse(
            "<message xmlns='jabber:client' to=\"b@x/r\" from='a&amp;b@x' type='chat'>\
             <body>hi <b>there</b></body></message>",
        );
        assert_eq!(el.name(), "message");
        assert_eq!(el.local_name(), "message");
        assert_eq!(el.namespace(), Some("jabber:client"));
        assert_eq!(el.attr("to"), Some("b@x/r"));
        assert_eq!(el.attr("from"), Some("a&b@x"));
        assert_eq!(el.attr("id"), None);
        let attrs: Vec<_> = el.attrs().collect();
        assert_eq!(
            attrs,
            [
                ("xmlns", "jabber:client"),
                ("to", "b@x/r"),
                ("from", "a&b@x"),
                ("type", "chat")
            ]
        );
    }

    #[test]
    fn reads_prefixed_names_and_stream_headers() {
        let header = "<?xml version='1.0'?>\n<stream:stream xmlns='jabber:client' \
                      xmlns:stream='http://etherx.jabber.org/streams' to='example.com' \
                      version='1.0'>";
        let el = parse(header);
        assert_eq!(el.name(), "stream:stream");
        assert_eq!(el.local_name(), "stream");
        assert_eq!(el.namespace(), Some("http://etherx.jabber.org/streams"));
        assert_eq!(el.attr("to"), Some("example.com"));

        let el = parse("<count/>");
        assert_eq!(el.name(), "count");
        assert_eq!(el.namespace(), None);
        assert_eq!(el.attrs().count(), 0);
    }

    #[test]
    fn normalises_attribute_whitespace() {
        assert_eq!(parse("<a v='x\ty\nz'/>").attr("v"), Some("x y z"));
        assert_eq!(parse("<a v='x&#10;y'/>").attr("v"), Some("x\ny"));
    }

    #[test]
    fn rejects_what_is_not_a_well_formed_start_tag() {
        for bad in [
            "",
            "   ",
            "text",
            "</end>",
            "<a b='1>",
            "<a b='1' b='2'/>",
            "<a b=1/>",
            "<a b='&nope;'/>",
            "<![CDATA[x]]>",
        ] {
            assert!(Element::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn swaps_from_and_to_byte_exact() {
        let stanza = "<message xmlns='jabber:client' from='a@x/r' to=\"b@x\" id='m1'>\
                      <body from='inner'>x &amp; y</body></message>";
        assert_eq!(
            swap_from_to(stanza).as_deref(),
            Ok("<message xmlns='jabber:client' to='a@x/r' from=\"b@x\" id='m1'>\
                <body from='inner'>x &amp; y</body></message>")
        );
        assert_eq!(
            swap_from_to("<iq to='x' type='get'/>").as_deref(),
            Ok("<iq from='x' type='get'/>")
        );
        assert_eq!(
            swap_from_to("<presence from='a&apos;b'/>").as_deref(),
            Ok("<presence to='a&apos;b'/>")
        );
        let plain = "<r:x xmlns:r='urn:r' fromage='1'>t</r:x>";
        assert_eq!(swap_from_to(plain).as_deref(), Ok(plain));
        assert!(swap_from_to("<a from='1' from='2'/>").is_err());
    }

    #[test]
    fn sets_replaces_adds_and_removes_attributes() {
        let el = parse("<iq type='get'  id=\"q1\" to='x'><query xmlns='urn:q'/></iq>");
        assert_eq!(
            el.set_attrs(&[("type", Some("result")), ("id", None)]),
            "<iq type='result' to='x'><query xmlns='urn:q'/></iq>"
        );
        assert_eq!(
            el.set_attrs(&[("id", Some("a\"b")), ("from", Some("<me>\n"))]),
            "<iq type='get'  id=\"a&quot;b\" to='x' from='&lt;me&gt;&#10;'>\
             <query xmlns='urn:q'/></iq>"
        );
        assert_eq!(
            el.set_attrs(&[("absent", None)]),
            "<iq type='get'  id=\"q1\" to='x'><query xmlns='urn:q'/></iq>"
        );
        assert_eq!(parse("<ping />").set_attrs(&[("n", Some("1"))]), "<ping n='1' />");
        assert_eq!(parse("<ping a='1'/>").set_attrs(&[("a", None)]), "<ping/>");
        let added = parse("<a/>").set_attrs(&[("v", Some("x\ty"))]);
        assert_eq!(parse(&added).attr("v"), Some("x\ty"));
    }
}
