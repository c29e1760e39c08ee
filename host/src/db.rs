//! The durable store: an embedded ACID key-value store (redb) under the
//! server's data directory, shared by every connection.
//!
//! Reads run on the caller's thread in their own read transaction. Writes
//! have one owner: a writer thread that takes the write sets of successful
//! events from a bounded queue and commits everything waiting in one
//! transaction (group commit), so many events share one sync to disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use redb::{Database, ReadableDatabase, TableDefinition};
use tokio::sync::{mpsc, oneshot};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// The database file inside the data directory.
const FILE: &str = "store.redb";
/// Write sets waiting for the writer; senders wait when it is full.
const QUEUE: usize = 1024;

/// Another process (a running `ej serve`) has the store open.
#[derive(Debug)]
pub struct InUse(pub PathBuf);

impl std::fmt::Display for InUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is in use by another process (a running `ej serve`?)",
            self.0.display()
        )
    }
}

impl std::error::Error for InUse {}

/// What one event wrote: a value, or `None` for a deletion, per key.
pub type WriteSet = BTreeMap<String, Option<Vec<u8>>>;

/// The store, opened once per process.
pub struct Db {
    database: Arc<Database>,
    writer: mpsc::Sender<Commit>,
}

/// A write set and whom to tell once it is durable.
struct Commit {
    writes: WriteSet,
    done: oneshot::Sender<Result<(), String>>,
}

impl Db {
    /// Opens (creating if need be) the store in `dir` and starts its writer.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
        let path = dir.join(FILE);
        let database = Database::create(&path).map_err(|error| match error {
            redb::DatabaseError::DatabaseAlreadyOpen => anyhow::Error::new(InUse(path.clone())),
            other => anyhow!("opening {}: {other}", path.display()),
        })?;
        let database = Arc::new(database);
        // Create the table, so that reads never find it missing.
        write(&database, [&WriteSet::new()])?;
        let (writer, queue) = mpsc::channel(QUEUE);
        let owner = Arc::clone(&database);
        std::thread::Builder::new()
            .name("ej-store-writer".into())
            .spawn(move || commit_loop(&owner, queue))
            .context("starting the store writer")?;
        Ok(Self { database, writer })
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let read = self.database.begin_read()?;
        let table = read.open_table(TABLE)?;
        Ok(table.get(key)?.map(|value| value.value().to_vec()))
    }

    /// Entries whose key starts with `prefix`, in key order, at most `limit`.
    pub fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let read = self.database.begin_read()?;
        let table = read.open_table(TABLE)?;
        let mut entries = Vec::new();
        for entry in table.range(prefix..)? {
            let (key, value) = entry?;
            if !key.value().starts_with(prefix) || entries.len() == limit {
                break;
            }
            entries.push((key.value().to_owned(), value.value().to_vec()));
        }
        Ok(entries)
    }

    /// Commits `writes` all at once; returns once they are on disk.
    pub async fn commit(&self, writes: WriteSet) -> Result<()> {
        let (done, committed) = oneshot::channel();
        self.writer
            .send(Commit { writes, done })
            .await
            .map_err(|_| anyhow!("the store writer has stopped"))?;
        committed
            .await
            .map_err(|_| anyhow!("the store writer has stopped"))?
            .map_err(|error| anyhow!("committing to the store: {error}"))
    }
}

/// The writer thread: commits whatever is waiting, in one transaction.
fn commit_loop(database: &Database, mut queue: mpsc::Receiver<Commit>) {
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(more) = queue.try_recv() {
            batch.push(more);
        }
        let result = write(database, batch.iter().map(|commit| &commit.writes)).map_err(|error| format!("{error:#}"));
        for commit in batch {
            let _ = commit.done.send(result.clone());
        }
    }
}

/// Applies write sets in order in one durable transaction.
fn write<'a>(database: &Database, sets: impl IntoIterator<Item = &'a WriteSet>) -> Result<()> {
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
