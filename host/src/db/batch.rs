//! One batch of a writer: which transactions are still valid, and telling
//! each how it ended. The same for every backend; only writing differs.

use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::conflicts::History;
use super::{CommitError, Counters, Transaction};

/// A transaction and whom to tell how it ended.
pub(super) struct Commit {
    pub transaction: Transaction,
    pub done: oneshot::Sender<Result<(), CommitError>>,
}

/// A batch sorted out: the accepted transactions (commits `first`,
/// `first + 1`, … in this order) and the refused ones.
pub(super) struct Sorted {
    pub first: u64,
    pub accepted: Vec<Commit>,
    pub refused: Vec<Commit>,
}

impl Sorted {
    /// Validates each transaction against `history` (which records this
    /// batch's accepted ones too, as they are accepted), the most-retried
    /// first (the sort is stable: otherwise in order), numbering the
    /// accepted ones from `first` on.
    pub fn new(history: &mut History, mut batch: Vec<Commit>, first: u64) -> Self {
        batch.sort_by_key(|commit| std::cmp::Reverse(commit.transaction.retries));
        let mut next = first;
        let (mut accepted, mut refused) = (Vec::with_capacity(batch.len()), Vec::new());
        for mut commit in batch {
            if let Some(stale) = history.conflicts(&commit.transaction) {
                tracing::debug!(stale = ?stale.lane_names(), "a transaction refused: what it read went stale");
                // The rerun takes turns on what was stale (see `lanes`).
                commit.transaction.reads = stale;
                refused.push(commit);
                continue;
            }
            history.record(next, commit.transaction.writes.keys().map(String::as_str));
            next += 1;
            accepted.push(commit);
        }
        Self {
            first,
            accepted,
            refused,
        }
    }

    /// The last commit's number (`first - 1` if none was accepted).
    pub fn last(&self) -> u64 {
        self.first + self.accepted.len() as u64 - 1
    }

    /// Every accepted write set, in commit order.
    pub fn writes(&self) -> impl Iterator<Item = &super::WriteSet> {
        self.accepted.iter().map(|commit| &commit.transaction.writes)
    }

    /// Tells everyone how the batch ended, once `written` (the accepted
    /// ones' write) is known. On success the commits are published first:
    /// the refused hear of their conflict only once what beat them is
    /// visible, so that their reruns read it instead of losing again to a
    /// commit still on its way to disk. On failure `history` forgets the
    /// accepted ones.
    pub fn finish(self, written: Result<(), String>, history: &mut History, counters: &Counters) {
        match &written {
            Ok(()) if !self.accepted.is_empty() => {
                counters.committed.store(self.last(), Ordering::Release);
                history.trim();
            }
            Ok(()) => {}
            Err(_) => history.undo_from(self.first),
        }
        counters
            .conflicts
            .fetch_add(self.refused.len() as u64, Ordering::Relaxed);
        for commit in self.accepted {
            let _ = commit.done.send(written.clone().map_err(CommitError::Failed));
        }
        for commit in self.refused {
            let _ = commit.done.send(Err(CommitError::Conflict(commit.transaction.reads)));
        }
    }
}

/// Tells every transaction of `batch` that it could not be committed.
pub(super) fn fail(batch: Vec<Commit>, error: &str) {
    for commit in batch {
        let _ = commit.done.send(Err(CommitError::Failed(error.to_owned())));
    }
}
