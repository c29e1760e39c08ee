//! The embedded store's one writer: a thread that validates transactions
//! against the commits since their snapshots and commits the valid ones of
//! a batch in one durable redb transaction.

use std::sync::Arc;

use anyhow::Result;
use redb::Database;
use tokio::sync::mpsc;

use super::super::batch::{Commit, Sorted};
use super::super::conflicts::{HISTORY_BYTES, History};
use super::super::{Counters, WriteSet};
use super::TABLE;

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
            let first = self.counters.committed.load(std::sync::atomic::Ordering::Relaxed) + 1;
            let sorted = Sorted::new(&mut self.history, batch, first);
            let written = if sorted.accepted.is_empty() {
                Ok(())
            } else {
                write(&self.database, sorted.writes()).map_err(|error| format!("{error:#}"))
            };
            sorted.finish(written, &mut self.history, &self.counters);
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
