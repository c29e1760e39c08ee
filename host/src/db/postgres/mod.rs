//! The store in PostgreSQL, shared by every node of a cluster: the same
//! serializable transactions as the embedded store, validated against every
//! node's commits (see `writer`), with an event's reads on one snapshot of
//! the database (see `snapshot`).

mod schema;
mod snapshot;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::mpsc;
use tokio_postgres::NoTls;

use super::Counters;
use super::batch::Commit;

pub use schema::prefix_end;
pub use snapshot::Snapshot;

/// Bounds on a node's use of PostgreSQL.
#[derive(Clone, Copy, Debug)]
pub struct PostgresLimits {
    /// Connections for events' reads, at most (the writer has one more).
    pub connections: usize,
    /// How long one step (a connection, a query, a batch's commit) may
    /// take before it fails.
    pub timeout: Duration,
}

pub struct Postgres {
    pool: Pool,
    timeout: Duration,
}

impl Postgres {
    /// Connects, creates the tables if need be, and starts the writer on
    /// `queue`.
    pub async fn connect(
        url: &str,
        limits: PostgresLimits,
        counters: Arc<Counters>,
        queue: mpsc::Receiver<Commit>,
    ) -> Result<Self> {
        let config: tokio_postgres::Config = url.parse().context("reading the store's PostgreSQL URL")?;
        let client = writer::connect(&config, limits.timeout).await?;
        let head = snapshot::within(limits.timeout, schema::create(&client)).await?;
        counters.committed.store(head, std::sync::atomic::Ordering::Release);
        // The tables exist now: the writer's statements can be prepared.
        let link = writer::Link::open(&config, limits.timeout).await?;
        let writer = writer::Writer::new(config.clone(), link, counters, head, limits.timeout);
        tokio::spawn(writer.run(queue));
        let pool = pool(config, limits)?;
        Ok(Self {
            pool,
            timeout: limits.timeout,
        })
    }

    pub async fn snapshot(&self) -> Result<Snapshot> {
        Snapshot::begin(&self.pool, self.timeout).await
    }
}

/// A pool of at most `limits.connections` connections to the database of
/// `config`, each made and each waited for within `limits.timeout`.
pub fn pool(config: tokio_postgres::Config, limits: PostgresLimits) -> Result<Pool> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(limits.connections)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(limits.timeout))
        .create_timeout(Some(limits.timeout))
        .build()
        .context("making the pool of connections to PostgreSQL")
}

/// A random name for a writer or a node, new at every start (the standard
/// library's hasher keys are random per process).
pub fn random_id() -> i64 {
    std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), std::process::id()) as i64
}
