//! Conflict detection: what an event read, and which keys recent commits
//! wrote, so the writer can tell whether an event's reads are still true.

use std::collections::{BTreeSet, VecDeque};

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
#[derive(Clone, Debug)]
struct ScannedRange {
    prefix: String,
    through: Option<String>,
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
        let keys = self.keys.iter().map(|key| format!("key {key}"));
        let prefixes = self.ranges.iter().map(|range| format!("prefix {}", range.prefix));
        let names: BTreeSet<String> = keys.chain(prefixes).collect();
        names.into_iter().collect()
    }

    /// Whether a write of `key` changes something this set read.
    pub fn touches(&self, key: &str) -> bool {
        self.keys.contains(key)
            || self
                .ranges
                .iter()
                .any(|range| key.starts_with(&range.prefix) && range.through.as_deref().is_none_or(|last| key <= last))
    }
}

/// Bytes of recently written keys kept for validation. A transaction that
/// ran while more than this was written by others is run again.
pub(super) const HISTORY_BYTES: usize = 16 * 1024 * 1024;

/// The keys written by recent commits, newest last, bounded in bytes. A
/// transaction whose snapshot is older than everything kept here cannot be
/// validated and counts as conflicting: it runs again on a newer snapshot.
pub(super) struct History {
    commits: VecDeque<(u64, Vec<String>)>,
    bytes: usize,
    capacity: usize,
    /// The newest commit no longer kept.
    forgotten: u64,
}

impl History {
    pub fn new(capacity: usize) -> Self {
        Self {
            commits: VecDeque::new(),
            bytes: 0,
            capacity,
            forgotten: 0,
        }
    }

    /// Whether a commit after `transaction`'s snapshot wrote something it read.
    pub fn conflicts(&self, transaction: &Transaction) -> bool {
        if transaction.reads.is_empty() {
            return false;
        }
        if transaction.snapshot < self.forgotten {
            return true;
        }
        self.commits
            .iter()
            .rev()
            .take_while(|(seq, _)| *seq > transaction.snapshot)
            .any(|(_, keys)| keys.iter().any(|key| transaction.reads.touches(key)))
    }

    /// Records that commit `seq` wrote `keys`.
    pub fn record(&mut self, seq: u64, keys: Vec<String>) {
        self.bytes += keys.iter().map(String::len).sum::<usize>();
        self.commits.push_back((seq, keys));
    }

    /// Forgets the commits from `seq` on (their batch did not commit).
    pub fn undo_from(&mut self, seq: u64) {
        while self.commits.back().is_some_and(|(last, _)| *last >= seq) {
            let (_, keys) = self.commits.pop_back().expect("checked above");
            self.bytes -= keys.iter().map(String::len).sum::<usize>();
        }
    }

    /// Forgets everything through commit `seq`, known or not: a snapshot
    /// older than it can no longer be validated.
    pub fn forget_through(&mut self, seq: u64) {
        while self.commits.front().is_some_and(|(first, _)| *first <= seq) {
            let (_, keys) = self.commits.pop_front().expect("checked above");
            self.bytes -= keys.iter().map(String::len).sum::<usize>();
        }
        self.forgotten = self.forgotten.max(seq);
    }

    /// Drops the oldest commits until the rest fit the capacity.
    pub fn trim(&mut self) {
        while self.bytes > self.capacity
            && let Some((seq, keys)) = self.commits.pop_front()
        {
            self.bytes -= keys.iter().map(String::len).sum::<usize>();
            self.forgotten = seq;
        }
    }
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

    #[test]
    fn only_writes_after_the_snapshot_to_what_was_read_conflict() {
        let mut history = History::new(1 << 20);
        history.record(1, vec!["a".into()]);
        history.record(2, vec!["room:1:carol".into()]);
        // Keys, present or absent.
        assert!(reading(0, &["a"], &[]).reads.touches("a"));
        assert!(history.conflicts(&reading(0, &["a"], &[])));
        assert!(!history.conflicts(&reading(1, &["a"], &[])), "seen by the snapshot");
        assert!(!history.conflicts(&reading(0, &["b"], &[])));
        // Ranges, phantoms included, but not past where a scan stopped.
        assert!(history.conflicts(&reading(1, &[], &[("room:1:", None)])));
        assert!(!history.conflicts(&reading(1, &[], &[("room:1:", Some("room:1:bob"))])));
        assert!(history.conflicts(&reading(1, &[], &[("room:1:", Some("room:1:dave"))])));
        assert!(!history.conflicts(&reading(1, &[], &[("room:2:", None)])));
        // Nothing read, nothing to conflict with.
        assert!(!history.conflicts(&reading(0, &[], &[])));
    }

    #[test]
    fn a_snapshot_older_than_the_history_conflicts_and_undone_commits_do_not() {
        let mut history = History::new(4);
        history.record(1, vec!["abc".into()]);
        history.record(2, vec!["de".into()]);
        history.trim();
        assert!(history.conflicts(&reading(0, &["zzz"], &[])), "commit 1 was forgotten");
        assert!(!history.conflicts(&reading(1, &["zzz"], &[])));
        history.record(3, vec!["zzz".into()]);
        history.undo_from(3);
        assert!(!history.conflicts(&reading(1, &["zzz"], &[])));
    }
}
