//! The embedded store: a redb file under the server's data directory, for
//! one node. A thread of its own is the writer.

mod snapshot;
mod writer;

use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context as _, Result, anyhow};
use redb::{Database, TableDefinition};
use tokio::sync::mpsc;

use super::batch::Commit;
use super::{Counters, InUse, WriteSet};

pub use snapshot::Snapshot;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// The database file inside the data directory.
const FILE: &str = "store.redb";

pub struct Embedded {
    database: Arc<Database>,
    counters: Arc<Counters>,
    /// The writer's thread, until it has stopped.
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Embedded {
    /// Opens (creating if need be) the store in `dir`, with `cache` bytes
    /// for its pages, and starts its writer on `queue`.
    pub fn open(dir: &Path, cache: usize, counters: Arc<Counters>, queue: mpsc::Receiver<Commit>) -> Result<Self> {
        // Private to its owner when ej creates it.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let path = dir.join(FILE);
        let warned = std::sync::Once::new();
        let database = Database::builder()
            .set_cache_size(cache)
            .set_repair_callback(move |_| {
                warned.call_once(|| tracing::warn!("the store was not closed cleanly: checking and repairing it"));
            })
            .create(&path)
            .map_err(|error| match error {
                redb::DatabaseError::DatabaseAlreadyOpen => anyhow::Error::new(InUse(path.clone())),
                other => anyhow!("opening {}: {other}", path.display()),
            })?;
        let database = Arc::new(database);
        // Create the table, so that reads never find it missing.
        writer::write(&database, [&WriteSet::new()])?;
        let owner = writer::Writer::new(Arc::clone(&database), Arc::clone(&counters));
        let writer = std::thread::Builder::new()
            .name("ej-store-writer".into())
            .spawn(move || owner.run(queue))
            .context("starting the store writer")?;
        Ok(Self {
            database,
            counters,
            writer: Some(writer),
        })
    }

    /// Waits for the writer to stop (every sender of its queue gone).
    pub fn wait_for_writer(&mut self) {
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the store writer panicked");
        }
    }

    pub fn snapshot(&self) -> Result<Snapshot> {
        // The sequence number first: a commit landing between the two makes
        // the snapshot newer than its number says, which can only cause a
        // needless conflict, never a missed one.
        let seq = self.counters.committed.load(Ordering::Acquire);
        Snapshot::begin(&self.database, seq)
    }
}
