//! The store's one writer: a thread that validates transactions against
//! the commits since their snapshots and commits the valid ones of a batch
//! in one durable redb transaction.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Result;
use redb::Database;
use tokio::sync::{mpsc, oneshot};

use super::conflicts::History;
use super::{CommitError, Counters, TABLE, Transaction};

/// What one event wrote: a value, or `None` for a deletion, per key.
pub type WriteSet = BTreeMap<String, Option<Vec<u8>>>;

/// Bytes of recently written keys kept for validation. A transaction that
/// ran while more than this was written by others is run again.
const HISTORY_BYTES: usize = 16 * 1024 * 1024;

/// A transaction and whom to tell how it ended.
pub(super) struct Commit {
    pub transaction: Transaction,
    pub done: oneshot::Sender<Result<(), CommitError>>,
}

pub(super) struct Writer {
    database: Arc<Database>,
    /// The last commit readers see, published after each durable batch.
    counters: Arc<Counters>,
    history: History,
}

impl Writer {
    pub fn new(database: Arc<Database>, counters: Arc<Counters>) -> Self {
        Self {
            database,
            counters,
            history: History::new(HISTORY_BYTES),
        }
    }

    /// Commits whatever is waiting, batch after batch, until every sender
    /// is gone.
    pub fn run(mut self, mut queue: mpsc::Receiver<Commit>) {
        while let Some(first) = queue.blocking_recv() {
            let mut batch = vec![first];
            while let Ok(more) = queue.try_recv() {
                batch.push(more);
            }
            self.commit_batch(batch);
        }
    }

    /// Validates each transaction against the history (which holds this
    /// batch's accepted ones too, as they are accepted), then commits the
    /// accepted ones in one transaction. The refused ones hear of it only
    /// once that commit is visible, so that their reruns read what beat
    /// them instead of losing again to a commit still on its way to disk.
    fn commit_batch(&mut self, mut batch: Vec<Commit>) {
        // The most-retried first (the sort is stable: otherwise in order).
        batch.sort_by_key(|commit| std::cmp::Reverse(commit.transaction.retries));
        let first = self.counters.committed.load(Ordering::Relaxed) + 1;
        let mut next = first;
        let (mut accepted, mut refused) = (Vec::with_capacity(batch.len()), Vec::new());
        for commit in batch {
            if self.history.conflicts(&commit.transaction) {
                refused.push(commit);
                continue;
            }
            self.history
                .record(next, commit.transaction.writes.keys().cloned().collect());
            next += 1;
            accepted.push(commit);
        }
        self.commit_accepted(first, accepted);
        self.counters
            .conflicts
            .fetch_add(refused.len() as u64, Ordering::Relaxed);
        for commit in refused {
            let _ = commit.done.send(Err(CommitError::Conflict(commit.transaction.reads)));
        }
    }

    /// Writes the accepted transactions of a batch, numbered from `first`
    /// on, and publishes them, or forgets them if the write fails.
    fn commit_accepted(&mut self, first: u64, accepted: Vec<Commit>) {
        if accepted.is_empty() {
            return;
        }
        let result = write(&self.database, accepted.iter().map(|commit| &commit.transaction.writes));
        match &result {
            Ok(()) => {
                let last = first + accepted.len() as u64 - 1;
                self.counters.committed.store(last, Ordering::Release);
                self.history.trim();
            }
            Err(_) => self.history.undo_from(first),
        }
        let result = result.map_err(|error| format!("{error:#}"));
        for commit in accepted {
            let _ = commit.done.send(result.clone().map_err(CommitError::Failed));
        }
    }
}

/// Applies write sets in order in one durable transaction.
pub(super) fn write<'a>(database: &Database, sets: impl IntoIterator<Item = &'a WriteSet>) -> Result<()> {
    let transaction = database.begin_write()?;
    {
        let mut table = transaction.open_table(TABLE)?;
        for set in sets {
            for (key, value) in set {
                match value {
                    Some(value) => table.insert(key.as_str(), value.as_slice())?,
                    None => table.remove(key.as_str())?,
                };
            }
        }
    }
    transaction.commit()?;
    Ok(())
}
