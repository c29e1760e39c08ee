//! Nodes sharing one store in PostgreSQL are a cluster: an address has one
//! holder across all of them, and a node that stops is forgotten.
//!
//! Each node, at start, takes a random number as its name and a row in
//! `ej_nodes`, which it refreshes every `--node-heartbeat` (see
//! `heartbeat`). A binding is a row of `ej_bindings` keyed by its address
//! (the primary key is what makes one holder cluster-wide) and naming its
//! node, whose row it references: when any node finds a node silent for
//! `--node-timeout` and deletes its row, that node's bindings go with it.
//! A node that cannot refresh its own row for that long, or finds it
//! deleted, stops serving (its connections close) rather than hold
//! addresses the others consider free.
//!
//! With `--cluster nats://…` the nodes also route to each other's
//! addresses (see `relay`); without it, a node routes only to its own
//! connections, and a binding cluster-wide only refuses the address to
//! the others.

mod heartbeat;
pub mod relay;
mod unbinder;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use deadpool_postgres::Pool;
use tokio::sync::{mpsc, watch};

/// Connections a node keeps to PostgreSQL for bindings, heartbeats, and
/// finding the holders of routes to other nodes.
const CONNECTIONS: usize = 8;

const CREATE: &str = r#"
    SELECT pg_advisory_xact_lock(7111971);
    CREATE TABLE IF NOT EXISTS ej_nodes (
        node bigint PRIMARY KEY,
        joined timestamptz NOT NULL DEFAULT now(),
        seen timestamptz NOT NULL
    );
    CREATE TABLE IF NOT EXISTS ej_bindings (
        address text COLLATE "C" PRIMARY KEY,
        node bigint NOT NULL REFERENCES ej_nodes ON DELETE CASCADE,
        conn bigint NOT NULL
    );
"#;
const BIND: &str = "INSERT INTO ej_bindings (address, node, conn) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const HOLDER: &str = "SELECT node, conn FROM ej_bindings WHERE address = $1";
const LOOKUP: &str = "SELECT address FROM ej_bindings WHERE address >= $1 AND address < $2 ORDER BY address LIMIT $3";
const LOOKUP_ALL: &str = "SELECT address FROM ej_bindings WHERE address >= $1 ORDER BY address LIMIT $2";

/// How a node keeps its place in the cluster.
#[derive(Clone, Copy, Debug)]
pub struct NodeLimits {
    /// How often the node refreshes its row.
    pub heartbeat: Duration,
    /// Silence after which a node is taken for dead (its bindings freed).
    pub timeout: Duration,
}

/// This node's membership.
pub struct Cluster {
    node: i64,
    pool: Pool,
    timeout: Duration,
    unbinds: mpsc::Sender<(String, u64)>,
    /// Becomes true when the node lost its place (see the module's doc).
    lost: watch::Receiver<bool>,
}

impl Cluster {
    /// Joins the cluster whose store is at `url`: makes the tables if need
    /// be, takes a row, and starts the heartbeat and the unbinder.
    pub async fn join(url: &str, limits: NodeLimits, max_unbinds: usize) -> Result<Arc<Self>> {
        let config: tokio_postgres::Config = url.parse().context("reading the store's PostgreSQL URL")?;
        let pool = |connections| {
            crate::db::postgres_pool(
                config.clone(),
                crate::db::PostgresLimits {
                    connections,
                    timeout: limits.timeout,
                },
            )
        };
        // The heartbeat has a connection of its own: a node busy with
        // routes and binds must not miss its beats waiting for one.
        let (beats, pool) = (pool(1)?, pool(CONNECTIONS)?);
        let node = crate::db::random_id();
        let client = pool.get().await.context("joining the cluster in PostgreSQL")?;
        client
            .batch_execute(&format!("BEGIN; {CREATE} COMMIT;"))
            .await
            .context("creating the cluster's tables")?;
        heartbeat::beat(&client, node, limits.timeout, true).await?;
        drop(client);
        let (lost_tx, lost) = watch::channel(false);
        tokio::spawn(heartbeat::run(beats, node, limits, lost_tx));
        let (unbinds, queue) = mpsc::channel(max_unbinds.max(1));
        tokio::spawn(unbinder::run(
            pool.clone(),
            node,
            limits.heartbeat,
            max_unbinds.max(1),
            queue,
        ));
        tracing::info!(node, "joined the cluster");
        Ok(Arc::new(Self {
            node,
            pool,
            timeout: limits.timeout,
            unbinds,
            lost,
        }))
    }

    /// Binds `address` to connection `conn` of this node, unless another
    /// connection (of any node) holds it. An error (PostgreSQL out of
    /// reach) counts as refused.
    pub async fn bind(&self, address: &str, conn: u64) -> Result<bool> {
        self.within(async {
            let client = self.pool.get().await?;
            let conn = conn as i64;
            if client.execute(BIND, &[&address, &self.node, &conn]).await? == 1 {
                return Ok(true);
            }
            let holder = client.query_opt(HOLDER, &[&address]).await?;
            Ok(holder.is_some_and(|row| row.get::<_, i64>(0) == self.node && row.get::<_, i64>(1) == conn))
        })
        .await
    }

    /// This node's name: its number in `ej_nodes`.
    pub fn node(&self) -> i64 {
        self.node
    }

    /// The node holding `address`, if any does.
    pub async fn holder(&self, address: &str) -> Result<Option<i64>> {
        self.within(async {
            let client = self.pool.get().await?;
            let row = client.query_opt(HOLDER, &[&address]).await?;
            Ok(row.map(|row| row.get(0)))
        })
        .await
    }

    /// Addresses bound on any node starting with `prefix`, in order, at
    /// most `limit`.
    pub async fn lookup(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        self.within(async {
            let client = self.pool.get().await?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = match crate::db::prefix_end(prefix) {
                Some(end) => client.query(LOOKUP, &[&prefix, &end, &limit]).await?,
                None => client.query(LOOKUP_ALL, &[&prefix, &limit]).await?,
            };
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
        .await
    }

    /// `work` with PostgreSQL, failing if it takes longer than the node's
    /// timeout.
    async fn within<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| anyhow::anyhow!("PostgreSQL did not answer within {:?}", self.timeout))?
    }

    /// Releases `address` if connection `conn` of this node holds it; done
    /// in the background, retried until PostgreSQL takes it.
    pub async fn unbind(&self, address: String, conn: u64) {
        // Only a stopped unbinder closes the queue, and then the node is
        // stopping anyway.
        let _ = self.unbinds.send((address, conn)).await;
    }

    /// Waits until this node has lost its place in the cluster.
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        let _ = lost.wait_for(|lost| *lost).await;
    }

    /// Every node of the cluster, with how long ago it last beat (in
    /// seconds), and whether it is this one; in the order they joined.
    pub async fn nodes(&self) -> Result<Vec<(i64, f64, bool)>> {
        let client = self.pool.get().await?;
        let rows = client.query(heartbeat::NODES, &[]).await?;
        Ok(rows
            .iter()
            .map(|row| {
                let node: i64 = row.get(0);
                (node, row.get(1), node == self.node)
            })
            .collect())
    }

    /// Leaves the cluster: this node's row goes, and its bindings with it.
    pub async fn leave(&self) {
        if let Ok(client) = self.pool.get().await {
            let _ = client.execute(heartbeat::LEAVE, &[&self.node]).await;
        }
    }
}
