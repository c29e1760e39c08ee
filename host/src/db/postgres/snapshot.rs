//! One moment of the store in PostgreSQL: a read-only, repeatable-read
//! transaction on a pooled connection, tagged with the last commit it sees.
//! The transaction ends when the snapshot is dropped (the connection goes
//! back to the pool once it has rolled back). A key read again is answered
//! from what the first read found, which the transaction would repeat: a
//! round trip saved.

use std::collections::HashMap;
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
    /// The last commit the snapshot sees: known once its transaction has
    /// begun, with the first read.
    seq: Option<u64>,
    timeout: Duration,
    /// What each key read so far held (bounded by the event's read limit,
    /// which its reader charges).
    seen: HashMap<String, Option<Vec<u8>>>,
}

impl Snapshot {
    /// Takes a pooled connection (the pool replaces one found closed). The
    /// transaction begins with the first read, in the same round trip.
    pub(super) async fn begin(pool: &Pool, timeout: Duration) -> Result<Self> {
        let client = pool
            .get()
            .await
            .map_err(|error| unreachable(anyhow::Error::new(error)))?;
        Ok(Self {
            client: Some(client),
            seq: None,
            timeout,
            seen: HashMap::new(),
        })
    }

    /// Every commit up to this one is visible, and no later one (0 before
    /// the first read).
    pub fn seq(&self) -> u64 {
        self.seq.unwrap_or(0)
    }

    pub async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        if let Some(value) = self.seen.get(key) {
            return Ok(value.clone());
        }
        let client = self.client.as_ref().expect("held until dropped");
        let read = async {
            let statement = client.prepare_cached(schema::GET).await?;
            Ok(client.query_opt(&statement, &[&key]).await?.map(|row| row.get(0)))
        };
        let value: Option<Vec<u8>> = in_transaction(client, &mut self.seq, self.timeout, read).await?;
        self.seen.insert(key.to_owned(), value.clone());
        Ok(value)
    }

    /// As the embedded store's `scan`: rows stream in, and reading stops at
    /// the byte limit.
    pub async fn scan(&mut self, prefix: &str, limit: usize, max_bytes: usize) -> Result<Option<Entries>> {
        let client = self.client.as_ref().expect("held until dropped");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let read = async {
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
        };
        in_transaction(client, &mut self.seq, self.timeout, read).await
    }
}

/// Runs `read` in the snapshot's transaction. The first read (no `seq` yet)
/// sends the transaction's `BEGIN` and the head's query ahead of it: all
/// three in one round trip.
async fn in_transaction<T>(
    client: &Object,
    seq: &mut Option<u64>,
    timeout: Duration,
    read: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T> {
    let begun = seq.is_some();
    let (head, value) = within(timeout, async {
        if begun {
            return Ok((None, read.await?));
        }
        let head = client.prepare_cached(schema::HEAD).await?;
        let (_, head, value) = tokio::try_join!(
            biased;
            client.batch_execute(schema::BEGIN_READ),
            client.query_one(&head, &[]),
            read,
        )?;
        Ok((Some(head.get::<_, i64>(0) as u64), value))
    })
    .await
    .map_err(unreachable)?;
    if head.is_some() {
        *seq = head;
    }
    Ok(value)
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
