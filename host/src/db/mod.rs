//! The durable store, shared by every connection, where every event is a
//! serializable transaction. It lives either embedded (redb, under the
//! server's data directory: one node) or in PostgreSQL (every node of a
//! cluster sharing it); events see no difference.
//!
//! An event reads through one [`Snapshot`]: every `get` and `scan` it makes
//! sees the store as of one commit. What it read (keys, and the key ranges
//! it scanned) and what it wrote travel together as a [`Transaction`] to
//! the node's single writer, which validates each one against the commits
//! made since its snapshot (see `conflicts`) and commits the valid ones of
//! a batch in one transaction (group commit: one sync to disk for many
//! events). A transaction whose reads went stale is refused as a
//! [`CommitError::Conflict`], and the caller runs the event again from
//! scratch. Read-only events never reach the writer, so they never conflict
//! and never wait.

mod batch;
mod conflicts;
mod embedded;
mod lanes;
mod postgres;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::{METRICS, Metrics};

pub use conflicts::ReadSet;
pub use lanes::{Held, Lanes};
pub use postgres::{PostgresLimits, pool as postgres_pool, prefix_end, random_id};

/// What one event wrote: a value, or `None` for a deletion, per key.
pub type WriteSet = std::collections::BTreeMap<String, Option<Vec<u8>>>;

/// Entries of the store, in key order.
pub type Entries = Vec<(String, Vec<u8>)>;

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

/// The store did not answer (PostgreSQL down or too slow): the event that
/// needed it fails as a `store` fault, and nothing of it is committed.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

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
    /// lanes of what went stale, which this names).
    Conflict(ReadSet),
    /// The store could not commit (a disk error, a stopped writer, the
    /// database out of reach).
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

/// Bytes of the embedded store's pages kept in memory unless told
/// otherwise (`--store-cache`'s default).
pub const CACHE: usize = 256 << 20;

/// The store, opened once per process.
pub struct Db {
    backend: Backend,
    writer: mpsc::Sender<batch::Commit>,
    counters: std::sync::Arc<Counters>,
    lanes: Lanes,
}

enum Backend {
    Embedded(embedded::Embedded),
    Postgres(postgres::Postgres),
}

/// What the writer tells everyone else.
#[derive(Default)]
struct Counters {
    /// The sequence number of the last commit this node made or saw.
    committed: AtomicU64,
    /// Transactions refused as conflicting, since the store was opened.
    conflicts: AtomicU64,
}

/// One moment of the store, whichever holds it.
pub enum Snapshot {
    Embedded(embedded::Snapshot),
    Postgres(postgres::Snapshot),
}

impl Db {
    /// Opens (creating if need be) the embedded store in `dir`, keeping up
    /// to `cache` bytes of its pages in memory, and starts its writer.
    pub fn open(dir: &Path, cache: usize) -> Result<Self> {
        let counters = std::sync::Arc::default();
        let (writer, queue) = mpsc::channel(QUEUE);
        let embedded = embedded::Embedded::open(dir, cache, std::sync::Arc::clone(&counters), queue)?;
        Ok(Self {
            backend: Backend::Embedded(embedded),
            writer,
            counters,
            lanes: Lanes::default(),
        })
    }

    /// Connects to the store in PostgreSQL at `url` (creating its tables
    /// if need be) and starts this node's writer.
    pub async fn connect(url: &str, limits: PostgresLimits) -> Result<Self> {
        let counters = std::sync::Arc::default();
        let (writer, queue) = mpsc::channel(QUEUE);
        let postgres = postgres::Postgres::connect(url, limits, std::sync::Arc::clone(&counters), queue).await?;
        Ok(Self {
            backend: Backend::Postgres(postgres),
            writer,
            counters,
            lanes: Lanes::default(),
        })
    }

    /// The store as of the last commit; every read through it sees that
    /// same moment.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        Ok(match &self.backend {
            Backend::Embedded(embedded) => Snapshot::Embedded(embedded.snapshot()?),
            Backend::Postgres(postgres) => Snapshot::Postgres(Box::pin(postgres.snapshot()).await?),
        })
    }

    /// Commits `transaction`'s writes all at once, if nothing it read has
    /// changed since its snapshot; returns once they are durable. A
    /// transaction without writes commits at once, without the writer.
    pub async fn commit(&self, transaction: Transaction) -> Result<(), CommitError> {
        if transaction.writes.is_empty() {
            return Ok(());
        }
        let stopped = || CommitError::Failed("the store writer has stopped".into());
        let (done, committed) = oneshot::channel();
        self.writer
            .send(batch::Commit { transaction, done })
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

impl Drop for Db {
    /// Closes the store cleanly: the writer commits what is queued and
    /// stops, and only then does the embedded store's file close, before
    /// the process ends (a file left open is checked and repaired on the
    /// next start, which reads all of it).
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.writer, closed));
        if let Backend::Embedded(embedded) = &mut self.backend {
            embedded.wait_for_writer();
        }
    }
}

/// PostgreSQL's reads are boxed: their futures are about 10 KB, which
/// unboxed would make every read's future as large, the embedded store's
/// too, and each import call moves its future (1.6 % of the server's CPU
/// under XMPP load went to those moves).
impl Snapshot {
    /// Every commit up to this one is visible (later ones may be too).
    pub fn seq(&self) -> u64 {
        match self {
            Self::Embedded(snapshot) => snapshot.seq(),
            Self::Postgres(snapshot) => snapshot.seq(),
        }
    }

    pub async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Self::Embedded(snapshot) => snapshot.get(key),
            Self::Postgres(snapshot) => Box::pin(snapshot.get(key)).await,
        }
    }

    /// Entries whose key starts with `prefix`, in key order, at most
    /// `limit` of them; `None` if their keys and values would hold more than
    /// `max_bytes` (the scan stops there, reading no further).
    pub async fn scan(&mut self, prefix: &str, limit: usize, max_bytes: usize) -> Result<Option<Entries>> {
        match self {
            Self::Embedded(snapshot) => snapshot.scan(prefix, limit, max_bytes),
            Self::Postgres(snapshot) => Box::pin(snapshot.scan(prefix, limit, max_bytes)).await,
        }
    }
}
