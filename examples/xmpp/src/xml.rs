//! A small element tree for the stanzas the server must look inside (iq
//! payloads, roster items, SASL elements), and a builder for what it sends.
//! Stanzas it only forwards are rewritten in place with
//! [`ej_guest::xml::Element::set_attrs`] instead, byte for byte.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// The namespace of client stanzas, the stream's default.
pub const CLIENT: &str = "jabber:client";

/// One element: its local name, namespace, attributes (with the prefixed
/// namespace declarations it was written with, not the default one) and
/// children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub ns: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub fn new(name: &str, ns: &str) -> Self {
        Self {
            name: name.to_owned(),
            ns: ns.to_owned(),
            ..Self::default()
        }
    }

    /// Parses one element (the host hands each stanza over with the
    /// namespace declarations it inherits, so it stands on its own). With
    /// no default namespace declared, it is `jabber:client`, as in what
    /// [`Element::to_xml`] writes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reader = Reader::from_str(text);
        let mut stack: Vec<(Element, Vec<(String, String)>)> = Vec::new();
        let top = || vec![(String::new(), CLIENT.to_owned())];
        loop {
            let event = reader.read_event().map_err(|e| format!("malformed XML: {e}"))?;
            match event {
                Event::Start(start) => {
                    let scope = stack.last().map_or_else(top, |(_, scope)| scope.clone());
                    stack.push(open(&start, scope)?);
                }
                Event::Empty(start) => {
                    let scope = stack.last().map_or_else(top, |(_, scope)| scope.clone());
                    let (element, _) = open(&start, scope)?;
                    match stack.last_mut() {
                        Some((parent, _)) => parent.children.push(Node::Element(element)),
                        None => return Ok(element),
                    }
                }
                Event::End(_) => {
                    let (element, _) = stack.pop().ok_or("unbalanced end tag")?;
                    match stack.last_mut() {
                        Some((parent, _)) => parent.children.push(Node::Element(element)),
                        None => return Ok(element),
                    }
                }
                Event::Text(text) => push_text(&mut stack, &text.xml10_content()),
                Event::CData(data) => push_text(&mut stack, &data.xml10_content()),
                Event::GeneralRef(reference) => {
                    let name = reference.xml10_content();
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => match name.as_ref() {
                            "amp" => "&".to_owned(),
                            "lt" => "<".to_owned(),
                            "gt" => ">".to_owned(),
                            "quot" => "\"".to_owned(),
                            "apos" => "'".to_owned(),
                            other => return Err(format!("unknown entity &{other};")),
                        },
                    };
                    push_text(&mut stack, &resolved);
                }
                Event::Eof => return Err("no element".to_owned()),
                _ => {}
            }
        }
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(key, _)| key == name) {
            Some((_, old)) => *old = value,
            None => self.attrs.push((name.to_owned(), value)),
        }
    }

    /// Builder: sets an attribute.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder: sets an attribute if `value` is given.
    pub fn with_opt(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(value) => self.with(name, value),
            None => self,
        }
    }

    /// Builder: appends a child.
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: appends copies of `other`'s children.
    pub fn children_from(mut self, other: &Element) -> Self {
        self.children.extend(other.children.iter().cloned());
        self
    }

    /// Builder: appends text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// The first child element named `name` in `ns`.
    pub fn get(&self, name: &str, ns: &str) -> Option<&Element> {
        self.elements().find(|child| child.name == name && child.ns == ns)
    }

    /// The first child element, whatever it is (an iq's payload).
    pub fn first(&self) -> Option<&Element> {
        self.elements().next()
    }

    /// The text directly inside, concatenated.
    pub fn content(&self) -> String {
        self.children
            .iter()
            .filter_map(|node| match node {
                Node::Text(text) => Some(text.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// The text of child `name` in `ns`, if there is such a child.
    pub fn child_text(&self, name: &str, ns: &str) -> Option<String> {
        self.get(name, ns).map(Element::content)
    }

    /// The XML text, as a top-level stanza of a client stream: the
    /// `jabber:client` namespace is the stream's default and not repeated.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, CLIENT);
        out
    }

    fn write(&self, out: &mut String, parent_ns: &str) {
        out.push('<');
        out.push_str(&self.name);
        if self.ns != parent_ns {
            out.push_str(" xmlns='");
            out.push_str(&escape(&self.ns));
            out.push('\'');
        }
        for (key, value) in &self.attrs {
            out.push(' ');
            out.push_str(key);
            out.push_str("='");
            out.push_str(&escape(value));
            out.push('\'');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for node in &self.children {
            match node {
                Node::Element(element) => element.write(out, &self.ns),
                Node::Text(text) => out.push_str(&escape(text)),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Escapes text for an attribute value (in single quotes) or content.
pub fn escape(text: &str) -> String {
    ej_guest::xml::escape(text).into_owned()
}

/// The element a start tag opens, and the namespace scope inside it
/// (prefix → namespace; the default under "").
fn open(start: &BytesStart<'_>, mut scope: Vec<(String, String)>) -> Result<(Element, Vec<(String, String)>), String> {
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("malformed attribute: {e}"))?;
        let key = attr.key.as_ref().to_owned();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| format!("malformed attribute value: {e}"))?
            .into_owned();
        if key == "xmlns" {
            scope.retain(|(prefix, _)| !prefix.is_empty());
            scope.push((String::new(), value));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            // Kept as written too: prefixed attributes (and elements) of
            // a payload written back need their declaration.
            scope.retain(|(known, _)| known != prefix);
            scope.push((prefix.to_owned(), value.clone()));
            attrs.push((key, value));
        } else {
            attrs.push((key, value));
        }
    }
    let qname = start.name().as_ref().to_owned();
    let (prefix, name) = qname.split_once(':').unwrap_or(("", &qname));
    let ns = scope
        .iter()
        .rev()
        .find(|(known, _)| known == prefix)
        .map(|(_, ns)| ns.clone())
        .unwrap_or_default();
    let element = Element {
        name: name.to_owned(),
        ns,
        attrs,
        children: Vec::new(),
    };
    Ok((element, scope))
}

fn push_text(stack: &mut [(Element, Vec<(String, String)>)], text: &str) {
    if let Some((parent, _)) = stack.last_mut() {
        match parent.children.last_mut() {
            Some(Node::Text(last)) => last.push_str(text),
            _ => parent.children.push(Node::Text(text.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaces_text_and_references_and_writes_back() {
        let el = Element::parse(
            "<iq xmlns='jabber:client' type='set' id='a&amp;b'><query xmlns='jabber:iq:roster'>\
             <item jid='x@y' name='X &#x26; Y'><group>G &lt;1&gt;</group></item></query></iq>",
        )
        .unwrap();
        assert_eq!((el.name.as_str(), el.ns.as_str()), ("iq", CLIENT));
        assert_eq!(el.attr("id"), Some("a&b"));
        let item = el
            .get("query", "jabber:iq:roster")
            .unwrap()
            .get("item", "jabber:iq:roster")
            .unwrap();
        assert_eq!(item.attr("name"), Some("X & Y"));
        assert_eq!(item.child_text("group", "jabber:iq:roster").unwrap(), "G <1>");
        assert_eq!(
            el.to_xml(),
            "<iq type='set' id='a&amp;b'><query xmlns='jabber:iq:roster'><item jid='x@y' name='X &amp; Y'>\
             <group>G &lt;1&gt;</group></item></query></iq>"
        );
    }

    #[test]
    fn a_prefixed_attribute_keeps_its_declaration() {
        let text = "<vCard xmlns='vcard-temp'><PHOTO xmlns:x='urn:x' x:kind='avatar'/></vCard>";
        let el = Element::parse(text).unwrap();
        assert_eq!(el.to_xml(), text);
        assert_eq!(Element::parse(&el.to_xml()).unwrap(), el);
    }
}
