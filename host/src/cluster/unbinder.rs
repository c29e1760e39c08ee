//! Releases this node's bindings in the background, in batches, retrying
//! those PostgreSQL could not take until it can: a binding left behind
//! would refuse its address to everyone while the node lives.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::mpsc;

const UNBIND: &str = "DELETE FROM ej_bindings b USING unnest($1::text[], $2::bigint[]) AS u(address, conn) \
                      WHERE b.address = u.address AND b.conn = u.conn AND b.node = $3";

/// Takes `(address, connection)` pairs from `queue` until it closes,
/// holding at most `max` that wait for a retry.
pub async fn run(pool: Pool, node: i64, retry: Duration, max: usize, mut queue: mpsc::Receiver<(String, u64)>) {
    let mut pending: Vec<(String, u64)> = Vec::new();
    loop {
        if pending.is_empty() {
            match queue.recv().await {
                Some(first) => pending.push(first),
                None => return,
            }
        }
        while pending.len() < max
            && let Ok(more) = queue.try_recv()
        {
            pending.push(more);
        }
        let addresses: Vec<&str> = pending.iter().map(|(address, _)| address.as_str()).collect();
        let conns: Vec<i64> = pending.iter().map(|(_, conn)| *conn as i64).collect();
        let done: anyhow::Result<u64> = async {
            let client = pool.get().await?;
            Ok(client.execute(UNBIND, &[&addresses, &conns, &node]).await?)
        }
        .await;
        match done {
            Ok(_) => pending.clear(),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), waiting = pending.len(), "releasing addresses failed; retrying");
                tokio::time::sleep(retry).await;
            }
        }
    }
}
