//! Conflict detection: what an event read, and which keys recent commits
//! wrote, so the writer can tell whether an event's reads are still true.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use super::Transaction;

/// What one event read from the store: keys it got (whether present or
/// absent), and ranges it scanned. A later write inside any of them makes
/// the event's reads stale.
#[derive(Clone, Debug, Default)]
pub struct ReadSet {
    keys: BTreeSet<String>,
    ranges: Vec<ScannedRange>,
}

/// Keys starting with `prefix`, up to and including `through` if the scan
/// stopped at its limit there (a key past it was never looked at).
#[derive(Clone, Debug, PartialEq)]
struct ScannedRange {
    prefix: String,
    through: Option<String>,
}

impl ScannedRange {
    fn covers(&self, key: &str) -> bool {
        key.starts_with(&self.prefix) && self.through.as_deref().is_none_or(|last| key <= last)
    }

    fn lane(&self) -> String {
        format!("prefix {}", self.prefix)
    }
}

fn key_lane(key: &str) -> String {
    format!("key {key}")
}

impl ReadSet {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.ranges.is_empty()
    }

    /// Records a `get` of `key`.
    pub fn key(&mut self, key: &str) {
        if !self.keys.contains(key) {
            self.keys.insert(key.to_owned());
        }
    }

    /// Records a scan of the keys under `prefix`, through `through` if it
    /// stopped there, or all of them.
    pub fn range(&mut self, prefix: &str, through: Option<String>) {
        self.ranges.push(ScannedRange {
            prefix: prefix.to_owned(),
            through,
        });
    }

    /// The names of the lanes (see `lanes`) of what this set read, in
    /// order: a key's, or a scanned prefix's.
    pub fn lane_names(&self) -> Vec<String> {
        let keys = self.keys.iter().map(|key| key_lane(key));
        let prefixes = self.ranges.iter().map(ScannedRange::lane);
        let names: BTreeSet<String> = keys.chain(prefixes).collect();
        names.into_iter().collect()
    }

    /// The part of this set whose lanes `keep` picks.
    pub fn with_lanes(&self, keep: impl Fn(&str) -> bool) -> ReadSet {
        ReadSet {
            keys: self.keys.iter().filter(|key| keep(&key_lane(key))).cloned().collect(),
            ranges: self
                .ranges
                .iter()
                .filter(|range| keep(&range.lane()))
                .cloned()
                .collect(),
        }
    }

    /// Whether a write of `key` changes something this set read.
    pub fn touches(&self, key: &str) -> bool {
        self.keys.contains(key) || self.ranges.iter().any(|range| range.covers(key))
    }
}

/// Bytes of recently written keys kept for validation. A transaction that
/// ran while more than this was written by others is run again.
pub(super) const HISTORY_BYTES: usize = 16 * 1024 * 1024;

/// The keys written by recent commits, newest last, bounded in bytes. A
/// transaction whose snapshot is older than everything kept here cannot be
/// validated and counts as conflicting: it runs again on a newer snapshot.
///
/// Validation looks up what a transaction read in an index of the newest
/// commit to write each key, so its cost follows what the transaction read,
/// not how many commits came after its snapshot: walking those commits
/// instead made a batch's validation grow with the square of the writer's
/// queue, and took over half the server's CPU once 2,000 sessions
/// overloaded it. The list and the index share each key's bytes: one
/// allocation per written key on the writer's thread, whose time bounds
/// the store's commits.
pub(super) struct History {
    commits: VecDeque<(u64, Vec<Arc<str>>)>,
    /// The newest commit in `commits` to write each key it holds.
    latest: BTreeMap<Arc<str>, u64>,
    bytes: usize,
    capacity: usize,
    /// The newest commit no longer kept.
    forgotten: u64,
}

impl History {
    pub fn new(capacity: usize) -> Self {
        Self {
            commits: VecDeque::new(),
            latest: BTreeMap::new(),
            bytes: 0,
            capacity,
            forgotten: 0,
        }
    }

    /// What of `transaction`'s reads commits after its snapshot wrote, if
    /// any did (all of them, if its snapshot is older than the history).
    /// Its rerun takes turns on just that (see `lanes`): on the keys others
    /// are writing, not on everything it read.
    pub fn conflicts(&self, transaction: &Transaction) -> Option<ReadSet> {
        let reads = &transaction.reads;
        if reads.is_empty() {
            return None;
        }
        let snapshot = transaction.snapshot;
        if snapshot < self.forgotten {
            return Some(reads.clone());
        }
        let mut stale = ReadSet::default();
        for key in &reads.keys {
            if self.latest.get(key.as_str()).is_some_and(|&seq| seq > snapshot) {
                stale.key(key);
            }
        }
        for range in &reads.ranges {
            let written = self
                .latest
                .range::<str, _>((Bound::Included(range.prefix.as_str()), Bound::Unbounded))
                .take_while(|(key, _)| range.covers(key))
                .any(|(_, &seq)| seq > snapshot);
            if written && !stale.ranges.contains(range) {
                stale.ranges.push(range.clone());
            }
        }
        (!stale.is_empty()).then_some(stale)
    }

    /// Records that commit `seq` wrote `keys`.
    pub fn record<'a>(&mut self, seq: u64, keys: impl IntoIterator<Item = &'a str>) {
        let keys: Vec<Arc<str>> = keys.into_iter().map(Arc::from).collect();
        self.bytes += key_bytes(&keys);
        for key in &keys {
            match self.latest.get_mut(key) {
                Some(latest) => *latest = (*latest).max(seq),
                None => {
                    self.latest.insert(key.clone(), seq);
                }
            }
        }
        self.commits.push_back((seq, keys));
    }

    /// Forgets the commits from `seq` on (their batch did not commit).
    pub fn undo_from(&mut self, seq: u64) {
        let mut undone = Vec::new();
        while self.commits.back().is_some_and(|(last, _)| *last >= seq) {
            let (_, keys) = self.commits.pop_back().expect("checked above");
            self.bytes -= key_bytes(&keys);
            undone.extend(keys);
        }
        // What the undone commits wrote was last written, if at all, by
        // a commit still kept (rare: a failed write to disk).
        for key in undone {
            match self.commits.iter().rev().find(|(_, keys)| keys.contains(&key)) {
                Some((earlier, _)) => self.latest.insert(key, *earlier),
                None => self.latest.remove(&key),
            };
        }
    }

    /// Forgets everything through commit `seq`, known or not: a snapshot
    /// older than it can no longer be validated.
    pub fn forget_through(&mut self, seq: u64) {
        while self.commits.front().is_some_and(|(first, _)| *first <= seq) {
            self.forget_oldest();
        }
        self.forgotten = self.forgotten.max(seq);
    }

    /// Drops the oldest commits until the rest fit the capacity.
    pub fn trim(&mut self) {
        while self.bytes > self.capacity
            && let Some(seq) = self.forget_oldest()
        {
            self.forgotten = seq;
        }
    }

    /// Drops the oldest commit kept, if any; returns its number.
    fn forget_oldest(&mut self) -> Option<u64> {
        let (seq, keys) = self.commits.pop_front()?;
        self.bytes -= key_bytes(&keys);
        for key in keys {
            if self.latest.get(&key) == Some(&seq) {
                self.latest.remove(&key);
            }
        }
        Some(seq)
    }
}

/// The bytes of `keys`, as `HISTORY_BYTES` counts them.
fn key_bytes(keys: &[Arc<str>]) -> usize {
    keys.iter().map(|key| key.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(snapshot: u64, keys: &[&str], ranges: &[(&str, Option<&str>)]) -> Transaction {
        let mut reads = ReadSet::default();
        for key in keys {
            reads.key(key);
        }
        for (prefix, through) in ranges {
            reads.range(prefix, through.map(str::to_owned));
        }
        Transaction {
            snapshot,
            reads,
            ..Transaction::default()
        }
    }

    /// What of `transaction`'s reads `history` finds stale, as lane names.
    fn stale(history: &History, transaction: &Transaction) -> Option<Vec<String>> {
        history.conflicts(transaction).map(|stale| stale.lane_names())
    }

    #[test]
    fn only_writes_after_the_snapshot_to_what_was_read_conflict() {
        let mut history = History::new(1 << 20);
        history.record(1, ["a"]);
        history.record(2, ["room:1:carol"]);
        // Keys, present or absent.
        assert!(reading(0, &["a"], &[]).reads.touches("a"));
        assert_eq!(stale(&history, &reading(0, &["a"], &[])), Some(vec!["key a".into()]));
        assert_eq!(stale(&history, &reading(1, &["a"], &[])), None, "seen by the snapshot");
        assert_eq!(stale(&history, &reading(0, &["b"], &[])), None);
        // Ranges, phantoms included, but not past where a scan stopped.
        let room = Some(vec!["prefix room:1:".to_owned()]);
        assert_eq!(stale(&history, &reading(1, &[], &[("room:1:", None)])), room);
        assert_eq!(
            stale(&history, &reading(1, &[], &[("room:1:", Some("room:1:bob"))])),
            None
        );
        assert_eq!(
            stale(&history, &reading(1, &[], &[("room:1:", Some("room:1:dave"))])),
            room
        );
        assert_eq!(stale(&history, &reading(1, &[], &[("room:2:", None)])), None);
        // Nothing read, nothing to conflict with.
        assert_eq!(stale(&history, &reading(0, &[], &[])), None);
        // Only what was written is stale, not the rest of what was read.
        let wide = reading(0, &["a", "config", "z"], &[("room:1:", None), ("room:2:", None)]);
        assert_eq!(
            stale(&history, &wide),
            Some(vec!["key a".to_owned(), "prefix room:1:".to_owned()])
        );
    }

    #[test]
    fn the_index_of_latest_writes_follows_the_commits_kept() {
        let mut history = History::new(1 << 20);
        history.record(1, ["k"]);
        history.record(2, ["k", "j"]);
        history.undo_from(2);
        // Commit 1's write of k still counts; commit 2's of j never did.
        assert_eq!(
            stale(&history, &reading(0, &["k", "j"], &[])),
            Some(vec!["key k".into()])
        );
        assert_eq!(stale(&history, &reading(1, &["k"], &[])), None);
        history.forget_through(1);
        assert!(history.latest.is_empty() && history.bytes == 0);
    }

    #[test]
    fn a_snapshot_older_than_the_history_conflicts_and_undone_commits_do_not() {
        let mut history = History::new(4);
        history.record(1, ["abc"]);
        history.record(2, ["de"]);
        history.trim();
        let unknown = reading(0, &["zzz", "y"], &[]);
        assert_eq!(
            stale(&history, &unknown),
            Some(vec!["key y".to_owned(), "key zzz".to_owned()]),
            "commit 1 was forgotten: all of it may be stale"
        );
        assert_eq!(stale(&history, &reading(1, &["zzz"], &[])), None);
        history.record(3, ["zzz"]);
        history.undo_from(3);
        assert_eq!(stale(&history, &reading(1, &["zzz"], &[])), None);
    }
}
