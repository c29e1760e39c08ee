//! One moment of the store in PostgreSQL: a read-only, repeatable-read
//! transaction on a pooled connection, tagged with the last commit it sees.
//! The transaction ends when the snapshot is dropped (the connection goes
//! back to the pool once it has rolled back).

use std::time::Duration;

use anyhow::Result;
use deadpool_postgres::{Object, Pool};
use futures::StreamExt as _;

use super::schema;
use crate::db::{Entries, Unreachable};

/// Reads that all see the store as of one commit.
pub struct Snapshot {
    /// Always there until dropped.
    client: Option<Object>,
    seq: u64,
    timeout: Duration,
}

impl Snapshot {
    /// Begins on a pooled connection; if that one turns out broken (the
    /// database restarted since it was last used), once more on a new one.
    pub(super) async fn begin(pool: &Pool, timeout: Duration) -> Result<Self> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = pool
                .get()
                .await
                .map_err(|error| unreachable(anyhow::Error::new(error)))?;
            let began = within(timeout, async {
                client.batch_execute(schema::BEGIN_READ).await?;
                let head: i64 = client
                    .query_one(&client.prepare_cached(schema::HEAD).await?, &[])
                    .await?
                    .get(0);
                Ok(head as u64)
            })
            .await;
            match began {
                Ok(seq) => {
                    return Ok(Self {
                        client: Some(client),
                        seq,
                        timeout,
                    });
                }
                Err(_) if attempt == 1 && client.is_closed() => drop(Object::take(client)),
                Err(error) => return Err(unreachable(error)),
            }
        }
    }

    fn client(&self) -> &Object {
        self.client.as_ref().expect("held until dropped")
    }

    /// Every commit up to this one is visible, and no later one.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let client = self.client();
        within(self.timeout, async {
            let statement = client.prepare_cached(schema::GET).await?;
            Ok(client.query_opt(&statement, &[&key]).await?.map(|row| row.get(0)))
        })
        .await
        .map_err(unreachable)
    }

    /// As the embedded store's `scan`: rows stream in, and reading stops at
    /// the byte limit.
    pub async fn scan(&self, prefix: &str, limit: usize, max_bytes: usize) -> Result<Option<Entries>> {
        let client = self.client();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        within(self.timeout, async {
            let rows = match schema::prefix_end(prefix) {
                Some(end) => {
                    let statement = client.prepare_cached(schema::SCAN).await?;
                    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&prefix, &end, &limit];
                    client.query_raw(&statement, params).await?
                }
                None => {
                    let statement = client.prepare_cached(schema::SCAN_ALL).await?;
                    client.query_raw(&statement, [&limit]).await?
                }
            };
            let mut rows = std::pin::pin!(rows);
            let (mut entries, mut bytes) = (Vec::new(), 0usize);
            while let Some(row) = rows.next().await {
                let row = row?;
                let (key, value): (String, Vec<u8>) = (row.get(0), row.get(1));
                bytes += key.len() + value.len();
                if bytes > max_bytes {
                    return Ok(None);
                }
                entries.push((key, value));
            }
            Ok(Some(entries))
        })
        .await
        .map_err(unreachable)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        // Out of a runtime (never, in ej) the connection is dropped, not
        // returned with its transaction open.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            drop(Object::take(client));
            return;
        };
        runtime.spawn(async move {
            if client.batch_execute("ROLLBACK").await.is_err() {
                drop(Object::take(client));
            }
        });
    }
}

/// A failed read, as the fault it causes.
fn unreachable(error: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Unreachable(format!("reading from the store in PostgreSQL: {error:#}")))
}

/// `work`, or an error once `timeout` has passed.
pub(super) async fn within<T>(timeout: Duration, work: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow::anyhow!("the store in PostgreSQL did not answer within {timeout:?}"))?
}
