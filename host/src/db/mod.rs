//! The durable store: an embedded ACID key-value store (redb) under the
//! server's data directory, shared by every connection, where every event is
//! a serializable transaction.
//!
//! An event reads through one [`Snapshot`]: every `get` and `scan` it makes
//! sees the store as of one commit. What it read (keys, and the key ranges
//! it scanned) and what it wrote travel together as a [`Transaction`] to a
//! single writer thread, which validates each one against the commits made
//! since its snapshot and commits the valid ones in one redb transaction
//! (group commit: one sync to disk for many events). A transaction whose
//! reads went stale is refused as a [`CommitError::Conflict`], and the
//! caller runs the event again from scratch. Read-only events never reach
//! the writer, so they never conflict and never wait.

mod conflicts;
mod lanes;
mod snapshot;
mod writer;

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result, anyhow};
use redb::{Database, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::{METRICS, Metrics};

pub use conflicts::ReadSet;
pub use lanes::{Held, Lanes};
pub use snapshot::Snapshot;
pub use writer::WriteSet;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// The database file inside the data directory.
const FILE: &str = "store.redb";
/// Transactions waiting for the writer; senders wait when it is full.
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

/// What one event did to the store: what it read, as of which snapshot, and
/// what it wrote.
#[derive(Debug, Default)]
pub struct Transaction {
    /// The commit its reads saw ([`Snapshot::seq`]); unused without reads.
    pub snapshot: u64,
    pub reads: ReadSet,
    pub writes: WriteSet,
    /// How many times this event already lost to a conflict: the writer
    /// validates the most-retried transactions of a batch first, so an
    /// event that keeps losing soon wins.
    pub retries: u32,
}

/// Why a transaction was not committed.
#[derive(Debug)]
pub enum CommitError {
    /// Something the transaction read was changed by a commit after its
    /// snapshot: nothing was written; run the event again (holding the
    /// lanes of what it read).
    Conflict(ReadSet),
    /// The store could not commit (a disk error, a stopped writer).
    Failed(String),
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Conflict(_) => f.write_str("what the event read was changed by another commit"),
            Self::Failed(error) => write!(f, "committing to the store: {error}"),
        }
    }
}

impl std::error::Error for CommitError {}

/// The store, opened once per process.
pub struct Db {
    database: Arc<Database>,
    writer: mpsc::Sender<writer::Commit>,
    counters: Arc<Counters>,
    lanes: Lanes,
}

/// What the writer tells everyone else.
#[derive(Default)]
struct Counters {
    /// The sequence number of the last commit readers can see.
    committed: AtomicU64,
    /// Transactions refused as conflicting, since the store was opened.
    conflicts: AtomicU64,
}

impl Db {
    /// Opens (creating if need be) the store in `dir` and starts its writer.
    pub fn open(dir: &Path) -> Result<Self> {
        // Private to its owner when ej creates it.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let path = dir.join(FILE);
        let database = Database::create(&path).map_err(|error| match error {
            redb::DatabaseError::DatabaseAlreadyOpen => anyhow::Error::new(InUse(path.clone())),
            other => anyhow!("opening {}: {other}", path.display()),
        })?;
        let database = Arc::new(database);
        // Create the table, so that reads never find it missing.
        writer::write(&database, [&WriteSet::new()])?;
        let counters = Arc::new(Counters::default());
        let (sender, queue) = mpsc::channel(QUEUE);
        let owner = writer::Writer::new(Arc::clone(&database), Arc::clone(&counters));
        std::thread::Builder::new()
            .name("ej-store-writer".into())
            .spawn(move || owner.run(queue))
            .context("starting the store writer")?;
        Ok(Self {
            database,
            writer: sender,
            counters,
            lanes: Lanes::default(),
        })
    }

    /// The store as of the last commit; every read through it sees that
    /// same moment.
    pub fn snapshot(&self) -> Result<Snapshot> {
        // The sequence number first: a commit landing between the two makes
        // the snapshot newer than its number says, which can only cause a
        // needless conflict, never a missed one.
        let seq = self.counters.committed.load(Ordering::Acquire);
        Snapshot::begin(&self.database, seq)
    }

    /// Commits `transaction`'s writes all at once, if nothing it read has
    /// changed since its snapshot; returns once they are on disk. A
    /// transaction without writes commits at once, without the writer.
    pub async fn commit(&self, transaction: Transaction) -> Result<(), CommitError> {
        if transaction.writes.is_empty() {
            return Ok(());
        }
        let stopped = || CommitError::Failed("the store writer has stopped".into());
        let (done, committed) = oneshot::channel();
        self.writer
            .send(writer::Commit { transaction, done })
            .await
            .map_err(|_| stopped())?;
        let result = committed.await.map_err(|_| stopped())?;
        if result.is_ok() {
            Metrics::count(&METRICS.commits);
        }
        result
    }

    /// Where reruns of events that lost a race take turns.
    pub fn lanes(&self) -> &Lanes {
        &self.lanes
    }

    /// Transactions refused as conflicting since the store was opened.
    pub fn conflicts(&self) -> u64 {
        self.counters.conflicts.load(Ordering::Relaxed)
    }

    /// Writes `writes` unconditionally (an operator's blind writes).
    pub async fn write(&self, writes: WriteSet) -> Result<()> {
        self.commit(Transaction {
            writes,
            ..Transaction::default()
        })
        .await
        .map_err(anyhow::Error::new)
    }
}
