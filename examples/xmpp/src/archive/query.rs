//! Archive queries (XEP-0313 §4): the form's `with`, `start`, `end`,
//! `after-id` and `before-id` filters, XEP-0059 result set paging
//! (`max`, `after`, `before`, an empty `before` for the last page), each
//! result forwarded with its time (XEP-0297, XEP-0203), and the closing
//! `<fin/>` with the page's bounds and the filtered count.

use std::ops::Range;

use ej_guest::Context;

use super::{Archive, NS};
use crate::roster::result;
use crate::stanza::{self, Condition};
use crate::time;
use crate::xml::{CLIENT, Element};

const RSM: &str = "http://jabber.org/protocol/rsm";
const FORWARD: &str = "urn:xmpp:forward:0";
const DATA: &str = "jabber:x:data";
/// Results one page holds at most, and when the client does not say.
const MAX_PAGE: u64 = 250;
const DEFAULT_PAGE: u64 = 50;

/// Which records a query walks: all of them (by record number), or one
/// conversation's (by place in it).
enum View<'a> {
    All,
    With(&'a str),
}

/// Answers `query`, a `<query/>` in iq `el`, from `archive`. Results come
/// `from` the room (or the account: no `from`); `with` is read as a bare
/// JID for an account, as an occupant JID for a room.
/// A page sends at most `budget` bytes of results.
pub fn answer(
    cx: &mut Context,
    el: &Element,
    query: &Element,
    archive: &Archive,
    from: Option<&str>,
    budget: usize,
) -> Result<(), String> {
    match el.attr("type") {
        Some("set") => {}
        // §6.1: the fields a query may have.
        Some("get") => {
            let field = |var: &str, kind: &str| Element::new("field", DATA).with("var", var).with("type", kind);
            let mut form = Element::new("x", DATA)
                .with("type", "form")
                .child(field("FORM_TYPE", "hidden").child(Element::new("value", DATA).text(NS)));
            for (var, kind) in [
                ("with", "jid-single"),
                ("start", "text-single"),
                ("end", "text-single"),
                ("after-id", "text-single"),
                ("before-id", "text-single"),
            ] {
                form = form.child(field(var, kind));
            }
            cx.send(result(el, Some(Element::new("query", NS).child(form))));
            return Ok(());
        }
        _ => return Ok(()),
    }
    match page(cx, el, query, archive, from, budget) {
        Ok(fin) => cx.send(result(el, Some(fin))),
        Err(condition) => stanza::refuse(cx, el, condition),
    }
    Ok(())
}

/// Sends the page's results; returns the `<fin/>` that ends them.
fn page(
    cx: &mut Context,
    el: &Element,
    query: &Element,
    archive: &Archive,
    from: Option<&str>,
    budget: usize,
) -> Result<Element, Condition> {
    let fields = form(query)?;
    let field = |var: &str| {
        fields
            .iter()
            .find(|(name, _)| name == var)
            .map(|(_, value)| value.as_str())
    };
    let with = field("with")
        .map(|with| jid::Jid::new(with).map_err(|_| Condition::BadRequest))
        .transpose()?
        .map(|with| {
            if from.is_some() {
                with.to_string()
            } else {
                with.to_bare().to_string()
            }
        });
    let view = with.as_deref().map_or(View::All, View::With);
    let mut span = match &view {
        View::All => archive.all(),
        View::With(with) => archive.conversation(with).map_err(|_| Condition::ItemNotFound)?,
    };
    // The time bounds, then the id bounds, narrow the span.
    let time_bound = |name: &str| {
        field(name)
            .map(|text| time::parse(text).ok_or(Condition::BadRequest))
            .transpose()
    };
    if let Some(start) = time_bound("start")? {
        span.start = first_at_or_after(archive, &view, &span, start);
    }
    if let Some(end) = time_bound("end")? {
        span.end = first_at_or_after(archive, &view, &span, end.saturating_add(1));
    }
    let count = span.end.saturating_sub(span.start);
    let base = span.start;
    let set = query.get("set", RSM);
    let max = set
        .and_then(|set| set.child_text("max", RSM))
        .map(|max| max.trim().parse::<u64>().map_err(|_| Condition::BadRequest))
        .transpose()?
        .unwrap_or(DEFAULT_PAGE)
        .min(MAX_PAGE);
    let position = |id: &str| place(archive, &view, id).ok_or(Condition::ItemNotFound);
    let after = field("after-id")
        .map(str::to_owned)
        .or_else(|| set.and_then(|set| set.child_text("after", RSM)));
    if let Some(after) = after {
        span.start = span.start.max(position(after.trim())? + 1);
    }
    let before = set.and_then(|set| set.child_text("before", RSM));
    if let Some(before_id) = field("before-id") {
        span.end = span.end.min(position(before_id)?);
    }
    let backwards = before.is_some();
    if let Some(before) = before.as_deref().map(str::trim).filter(|before| !before.is_empty()) {
        span.end = span.end.min(position(before)?);
    }
    let span = span.start..span.end.max(span.start);
    let queryid = query.attr("queryid");
    let to = el.attr("from").unwrap_or_default();
    // The page is read from the end nearest its anchor (backwards from
    // `before`) until `max` results or `budget` bytes of them: a page of
    // large messages is shorter, never too large to send.
    let order: Box<dyn Iterator<Item = u64>> = if backwards {
        Box::new(span.clone().rev())
    } else {
        Box::new(span.clone())
    };
    let mut results = Vec::new();
    let mut bytes = 0;
    for position in order.take(usize::try_from(max).unwrap_or(usize::MAX)) {
        let Some(seq) = record_at(archive, &view, position) else {
            continue;
        };
        let Ok(Some(record)) = archive.record(seq) else {
            continue;
        };
        let Ok(message) = Element::parse(&record.message) else {
            continue;
        };
        let id = archive.id(seq);
        let forwarded = Element::new("forwarded", FORWARD)
            .child(time::delay(None, record.time))
            .child(message);
        let result = Element::new("message", CLIENT)
            .with_opt("from", from)
            .with("to", to)
            .with("id", crate::stream::random_id())
            .child(
                Element::new("result", NS)
                    .with_opt("queryid", queryid)
                    .with("id", id.as_str())
                    .child(forwarded),
            )
            .to_xml();
        if !results.is_empty() && bytes + result.len() > budget {
            break;
        }
        bytes += result.len();
        results.push((position, id, result));
    }
    if backwards {
        results.reverse();
    }
    let taken = match (results.first(), results.last()) {
        (Some((first, ..)), Some((last, ..))) => *first..*last + 1,
        _ if backwards => span.end..span.end,
        _ => span.start..span.start,
    };
    let complete = if backwards {
        taken.start == span.start
    } else {
        taken.end == span.end
    };
    let mut ids = Vec::new();
    for (_, id, result) in results {
        cx.send(result);
        ids.push(id);
    }
    let mut set = Element::new("set", RSM);
    if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
        // The index only on forward pages (XEP-0059 makes it optional):
        // slixmpp ends any walk whose page reaches the count, backwards
        // too, so with it a backward walk would stop after one page.
        let index = (!backwards).then(|| (taken.start - base).to_string());
        set = set
            .child(Element::new("first", RSM).with_opt("index", index).text(first.as_str()))
            .child(Element::new("last", RSM).text(last.as_str()));
    }
    set = set.child(Element::new("count", RSM).text(count.to_string()));
    Ok(Element::new("fin", NS)
        .with_opt("complete", complete.then_some("true"))
        .child(set))
}

/// The submitted form's fields, `(var, first value)`; none without a form.
fn form(query: &Element) -> Result<Vec<(String, String)>, Condition> {
    let Some(x) = query.get("x", DATA) else {
        return Ok(Vec::new());
    };
    let fields: Vec<(String, String)> = x
        .elements()
        .filter(|field| field.name == "field")
        .filter_map(|field| {
            Some((
                field.attr("var")?.to_owned(),
                field.child_text("value", DATA).unwrap_or_default(),
            ))
        })
        .collect();
    match fields.iter().find(|(var, _)| var == "FORM_TYPE") {
        Some((_, form_type)) if form_type.trim() != NS => Err(Condition::BadRequest),
        _ => Ok(fields),
    }
}

/// The record number at `position` of the view.
fn record_at(archive: &Archive, view: &View<'_>, position: u64) -> Option<u64> {
    match view {
        View::All => Some(position),
        View::With(with) => archive.at_place(with, position),
    }
}

/// The view's position of the record an id names.
fn place(archive: &Archive, view: &View<'_>, id: &str) -> Option<u64> {
    let seq = archive.seq(id)?;
    match view {
        View::All => Some(seq),
        View::With(with) => {
            let record = archive.record(seq).ok()??;
            (record.with == *with).then_some(record.place)
        }
    }
}

/// The first position in `span` archived at `time` or later (records are
/// in time order): a binary search, a few gets whatever the span.
fn first_at_or_after(archive: &Archive, view: &View<'_>, span: &Range<u64>, time: u64) -> u64 {
    let (mut low, mut high) = (span.start, span.end);
    while low < high {
        let middle = low + (high - low) / 2;
        let at = record_at(archive, view, middle).and_then(|seq| archive.record(seq).ok().flatten());
        match at {
            Some(record) if record.time < time => low = middle + 1,
            _ => high = middle,
        }
    }
    low
}
