//! A node's heartbeat: it refreshes its row in `ej_nodes`, and deletes the
//! rows of nodes silent for longer than the timeout (their bindings go
//! with them). If its own row is gone, or it cannot refresh it for that
//! long, the node has lost its place.

use std::time::Duration;

use anyhow::Result;
use deadpool_postgres::Pool;
use tokio::sync::watch;
use tokio_postgres::Client;

use super::NodeLimits;

const JOIN: &str = "INSERT INTO ej_nodes (node, seen) VALUES ($1, now())";
const BEAT: &str = "UPDATE ej_nodes SET seen = now() WHERE node = $1";
const REAP: &str = "DELETE FROM ej_nodes WHERE seen < now() - make_interval(secs => $1)";
pub const LEAVE: &str = "DELETE FROM ej_nodes WHERE node = $1";
pub const NODES: &str = "SELECT node, extract(epoch FROM now() - seen)::float8 FROM ej_nodes ORDER BY joined";

/// Another node took this one for dead and deleted its row.
#[derive(Debug)]
pub struct Forgotten(Duration);

impl std::fmt::Display for Forgotten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another node took this one for dead (silent for longer than {:?})",
            self.0
        )
    }
}

impl std::error::Error for Forgotten {}

/// One beat: takes (`first`) or refreshes the node's row, then forgets
/// the silent nodes.
pub async fn beat(client: &Client, node: i64, timeout: Duration, first: bool) -> Result<()> {
    let work = async {
        if first {
            client.execute(JOIN, &[&node]).await?;
        } else if client.execute(BEAT, &[&node]).await? == 0 {
            return Err(Forgotten(timeout).into());
        }
        let reaped = client.execute(REAP, &[&timeout.as_secs_f64()]).await?;
        if reaped > 0 {
            tracing::warn!(nodes = reaped, "silent nodes forgotten: their addresses are free");
        }
        Ok(())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow::anyhow!("PostgreSQL did not answer within {timeout:?}"))?
}

/// Beats every `limits.heartbeat` until the node has lost its place, then
/// says so on `lost`.
pub async fn run(pool: Pool, node: i64, limits: NodeLimits, lost: watch::Sender<bool>) {
    let mut last = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval(limits.heartbeat);
    loop {
        ticks.tick().await;
        let result = match pool.get().await {
            Ok(client) => beat(&client, node, limits.timeout, false).await,
            Err(error) => Err(error.into()),
        };
        match result {
            Ok(()) => last = tokio::time::Instant::now(),
            Err(error) if error.downcast_ref::<Forgotten>().is_some() => {
                tracing::error!(node, why = %error, "this node lost its place in the cluster");
                break;
            }
            Err(error) if last.elapsed() >= limits.timeout => {
                let why = format!("no heartbeat for {:?}: {error:#}", limits.timeout);
                tracing::error!(node, why, "this node lost its place in the cluster");
                break;
            }
            Err(error) => tracing::warn!(node, error = %format!("{error:#}"), "heartbeat failed"),
        }
    }
    let _ = lost.send(true);
}
