//! Message archives (XEP-0313, `urn:xmpp:mam:2`) for accounts and rooms,
//! and the stanza ids (XEP-0359) that name their messages.
//!
//! An archive is a dense run of records numbered from `first` to `next`
//! under one key each, so any record is one `get` away: a page is a few
//! gets, a time bound a binary search, whatever the archive's size. Each
//! conversation (the other party's bare JID, or an occupant JID in a
//! room) has its own dense run of pointers into it, so `with` filters page
//! the same way. The oldest records go when an archive holds more than the
//! operator's limit (`config archive-limit N`, 10 000 by default).
//!
//! Every archive has a random generation in its keys and its ids: an
//! archive that is dropped (its account or room removed) only loses its
//! head record, and a new one never shows or reuses the old one's ids.
//!
//! Modules: [`prefs`] (what an account wants archived), [`query`] (the
//! queries, their filters and XEP-0059 paging).

pub mod prefs;
pub mod query;

use ej_guest::store;
use serde::{Deserialize, Serialize};

use crate::xml::{Element, Node};
use crate::{keys, time};

pub const NS: &str = "urn:xmpp:mam:2";
/// XEP-0359 unique and stable stanza ids.
pub const SID: &str = "urn:xmpp:sid:0";
const HINTS: &str = "urn:xmpp:hints";

/// Where the operator's limit is kept, and its default.
const LIMIT: &str = "config/archive-limit";
const DEFAULT_LIMIT: u64 = 10_000;
/// The largest limit the operator may set.
pub const MAX_LIMIT: u64 = 10_000_000;

/// The head of an archive, at `keys::archive`: its generation, written
/// when the archive is made. Archives made before their runs moved beside
/// the keys they end (see [`Archive`]) keep their records' run here, until
/// their next append writes it in its place.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Head {
    generation: String,
    first: u64,
    next: u64,
}

/// One archived message.
#[derive(Clone, Serialize, Deserialize)]
pub struct Record {
    /// The conversation it belongs to.
    pub with: String,
    /// Its place in that conversation.
    pub place: u64,
    /// When it was archived, in seconds since the epoch.
    pub time: u64,
    /// The message, as delivered (without `to` in a room).
    pub message: String,
}

/// A run of numbers, `first..next`: an archive's records, or a
/// conversation's places.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Run {
    first: u64,
    next: u64,
}

/// One account's or room's archive.
///
/// Each run is kept right after the keys it numbers (`keys::archive_records`
/// after the records, `keys::archive_places` after the conversation's
/// places), so that the store keeps it on the page that the next append
/// changes anyway: an append changes two pages, where a head and spans
/// kept apart made it four (the store writes every page a commit changes).
pub struct Archive {
    /// The bare JID it belongs to.
    owner: String,
    generation: String,
    records: Run,
    /// Whether the head is still to be written (a new archive).
    new: bool,
}

impl Archive {
    /// The archive of `owner` (a bare JID), empty if it has none yet.
    pub fn open(owner: &str) -> Result<Self, String> {
        let stored: Option<Head> = store::get_json(&keys::archive(owner))?;
        let new = stored.is_none();
        let head = stored.unwrap_or_else(|| Head {
            generation: crate::stream::random_id()[..8].to_owned(),
            ..Head::default()
        });
        let records = store::get_json(&keys::archive_records(owner, &head.generation))?.unwrap_or(Run {
            first: head.first,
            next: head.next,
        });
        Ok(Self {
            owner: owner.to_owned(),
            generation: head.generation,
            records,
            new,
        })
    }

    /// Drops `owner`'s archive.
    pub fn remove(owner: &str) {
        store::delete(&keys::archive(owner));
    }

    /// Archives `message` in the conversation with `with`; returns its id.
    pub fn append(&mut self, with: &str, message: &str) -> Result<String, String> {
        let (mut places, legacy) = self.places(with)?;
        let seq = self.records.next;
        let record = Record {
            with: with.to_owned(),
            place: places.next,
            time: time::now(),
            message: message.to_owned(),
        };
        store::put_json(&self.record_key(seq), &record)?;
        store::put(&self.place_key(with, places.next), seq.to_string().as_bytes());
        places.next += 1;
        self.set_places(with, &places, legacy)?;
        self.records.next += 1;
        if self.records.next - self.records.first > limit() {
            self.forget_oldest()?;
        }
        store::put_json(&keys::archive_records(&self.owner, &self.generation), &self.records)?;
        if self.new {
            let head = Head {
                generation: self.generation.clone(),
                ..Head::default()
            };
            store::put_json(&keys::archive(&self.owner), &head)?;
            self.new = false;
        }
        Ok(self.id(seq))
    }

    /// Forgets the oldest record, and its pointer.
    fn forget_oldest(&mut self) -> Result<(), String> {
        let seq = self.records.first;
        self.records.first += 1;
        let Some(record) = self.record(seq)? else {
            return Ok(());
        };
        store::delete(&self.record_key(seq));
        store::delete(&self.place_key(&record.with, record.place));
        let (mut places, legacy) = self.places(&record.with)?;
        places.first = record.place + 1;
        self.set_places(&record.with, &places, legacy)
    }

    /// The run of places of the conversation with `with`, and whether it
    /// was found where archives made before kept it (`keys::archive_span`).
    fn places(&self, with: &str) -> Result<(Run, bool), String> {
        if let Some(places) = store::get_json(&keys::archive_places(&self.owner, &self.generation, with))? {
            return Ok((places, false));
        }
        let legacy: Option<Run> = store::get_json(&keys::archive_span(&self.owner, &self.generation, with))?;
        Ok((legacy.clone().unwrap_or_default(), legacy.is_some()))
    }

    /// Keeps the run of places of the conversation with `with` (forgetting
    /// an empty one), and forgets where archives made before kept it.
    fn set_places(&self, with: &str, places: &Run, legacy: bool) -> Result<(), String> {
        let key = keys::archive_places(&self.owner, &self.generation, with);
        if places.first >= places.next {
            store::delete(&key);
        } else {
            store::put_json(&key, places)?;
        }
        if legacy {
            store::delete(&keys::archive_span(&self.owner, &self.generation, with));
        }
        Ok(())
    }

    /// The record numbered `seq`.
    pub fn record(&self, seq: u64) -> Result<Option<Record>, String> {
        store::get_json(&self.record_key(seq))
    }

    /// The id of record `seq` (what stanza-ids and paging name).
    pub fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.generation)
    }

    /// The record number an id names, if it is one of this archive's.
    pub fn seq(&self, id: &str) -> Option<u64> {
        let (generation, seq) = id.split_once('-')?;
        let seq = seq.parse().ok()?;
        (generation == self.generation && self.all().contains(&seq)).then_some(seq)
    }

    /// Every record's number: `first..next`.
    pub fn all(&self) -> std::ops::Range<u64> {
        self.records.first..self.records.next
    }

    /// The places of the conversation with `with`, and the record each
    /// points to.
    pub fn conversation(&self, with: &str) -> Result<std::ops::Range<u64>, String> {
        let (places, _) = self.places(with)?;
        Ok(places.first..places.next)
    }

    /// The record number at `place` in the conversation with `with`.
    pub fn at_place(&self, with: &str, place: u64) -> Option<u64> {
        store::get(&self.place_key(with, place)).and_then(|seq| String::from_utf8(seq).ok()?.parse().ok())
    }

    /// The last `count` records, oldest first.
    pub fn last(&self, count: u64) -> Result<Vec<Record>, String> {
        let start = self.records.next.saturating_sub(count).max(self.records.first);
        (start..self.records.next)
            .filter_map(|seq| self.record(seq).transpose())
            .collect()
    }

    fn record_key(&self, seq: u64) -> String {
        keys::archive_record(&self.owner, &self.generation, seq)
    }

    fn place_key(&self, with: &str, place: u64) -> String {
        keys::archive_place(&self.owner, &self.generation, with, place)
    }
}

/// How many records an archive keeps (the operator's `config archive-limit`).
fn limit() -> u64 {
    store::get_json(LIMIT).ok().flatten().unwrap_or(DEFAULT_LIMIT)
}

/// Sets the operator's limit.
pub fn set_limit(limit: u64) -> Result<(), String> {
    store::put_json(LIMIT, &limit)
}

/// Whether a message is one to archive (XEP-0313 §5, XEP-0334): a chat or
/// normal message with a body, or a `<store/>` hint, and no `<no-store/>`.
pub fn worth_keeping(el: &Element) -> bool {
    let kind = el.attr("type").unwrap_or("normal");
    let hinted = |name| el.get(name, HINTS).is_some();
    matches!(kind, "chat" | "normal" | "groupchat")
        && (el.get("body", crate::xml::CLIENT).is_some() || hinted("store"))
        && !hinted("no-store")
        && !hinted("no-permanent-store")
}

/// `message` without any stanza-id a client put in (XEP-0359 §5: only the
/// archive's own may be trusted), and with `id` from `by` added.
pub fn with_stanza_id(message: &str, by: &str, id: Option<&str>) -> Result<String, String> {
    Ok(element_with_stanza_id(Element::parse(message)?, by, id))
}

/// The same for a message already parsed.
pub fn element_with_stanza_id(mut el: Element, by: &str, id: Option<&str>) -> String {
    set_stanza_id(&mut el, by, id);
    el.to_xml()
}

/// Removes a message's stanza-ids, and adds `id` from `by`.
pub fn set_stanza_id(el: &mut Element, by: &str, id: Option<&str>) {
    el.children
        .retain(|node| !matches!(node, Node::Element(child) if child.name == "stanza-id" && child.ns == SID));
    if let Some(id) = id {
        el.children.push(Node::Element(
            Element::new("stanza-id", SID).with("id", id).with("by", by),
        ));
    }
}
