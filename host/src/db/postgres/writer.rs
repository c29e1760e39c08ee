//! A node's writer for the store in PostgreSQL: a task that commits batches
//! of transactions, validated against every node's commits.
//!
//! A batch, in one PostgreSQL transaction: lock `ej_head` (so the nodes'
//! batches go one at a time), read from `ej_log` the keys other nodes'
//! commits wrote since this node last looked (back to the batch's oldest
//! snapshot, no further), validate exactly as the embedded writer does,
//! then write the accepted ones' entries, their log row and the new head,
//! and commit. A connection that fails is dropped and made anew for the
//! next batch; the batch it carried fails, nothing of it committed. If the
//! connection broke while the commit was on its way, the writer asks on a
//! new connection whether the batch's log row is there: a commit that did
//! happen is reported as one. (If PostgreSQL cannot be asked either, the
//! batch is reported failed although it may have committed: the one case
//! where a `store` fault may hide a commit.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::mpsc;
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::schema;
use super::snapshot::within;
use crate::db::Counters;
use crate::db::batch::{self, Commit, Sorted};
use crate::db::conflicts::{HISTORY_BYTES, History};

/// A statement's parameter.
type Param<'a> = dyn tokio_postgres::types::ToSql + Sync + 'a;

/// Batches between two trims of the log.
const TRIM_EVERY: u64 = 256;

pub(super) struct Writer {
    config: Config,
    link: Option<Link>,
    counters: Arc<Counters>,
    history: History,
    /// The newest commit whose keys `history` has (or has forgotten).
    known: u64,
    timeout: Duration,
    batches: u64,
    /// This writer's name in the log: random, new at every start.
    id: i64,
}

impl Writer {
    pub fn new(config: Config, link: Link, counters: Arc<Counters>, head: u64, timeout: Duration) -> Self {
        let mut history = History::new(HISTORY_BYTES);
        history.forget_through(head);
        Self {
            config,
            link: Some(link),
            counters,
            history,
            known: head,
            timeout,
            batches: 0,
            id: super::random_id(),
        }
    }

    /// Commits whatever is waiting, batch after batch, until every sender
    /// is gone.
    pub async fn run(mut self, mut queue: mpsc::Receiver<Commit>) {
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = queue.try_recv() {
                batch.push(more);
            }
            self.commit_batch(batch).await;
        }
    }

    async fn commit_batch(&mut self, batch: Vec<Commit>) {
        let oldest = batch
            .iter()
            .filter(|commit| !commit.transaction.reads.is_empty())
            .map(|commit| commit.transaction.snapshot)
            .min();
        let head = match self.begin(oldest).await {
            Ok(head) => head,
            Err(error) => {
                self.link = None;
                batch::fail(batch, &format!("{error:#}"));
                return;
            }
        };
        let sorted = Sorted::new(&mut self.history, batch, head + 1);
        let mut written = self.write(&sorted).await;
        if written.is_err() {
            self.link = None;
            if !sorted.accepted.is_empty() && self.logged(&sorted).await {
                written = Ok(());
            }
        }
        if written.is_ok() {
            self.known = self.known.max(sorted.last());
        }
        sorted.finish(
            written.map_err(|error| format!("{error:#}")),
            &mut self.history,
            &self.counters,
        );
    }

    /// Opens the batch's transaction, locks the head and learns the other
    /// nodes' commits since `oldest` (the batch's oldest snapshot); returns
    /// the head. A connection found closed (the database restarted since
    /// the last batch) is replaced first.
    async fn begin(&mut self, oldest: Option<u64>) -> Result<u64> {
        if self.link.as_ref().is_some_and(|link| link.client.is_closed()) {
            self.link = None;
        }
        if self.link.is_none() {
            self.link = Some(Link::open(&self.config, self.timeout).await?);
        }
        let link = self.link.as_ref().expect("just made");
        let since = self.known.max(oldest.unwrap_or(self.known));
        let since_param = since as i64;
        let since_params: [&Param<'_>; 1] = [&since_param];
        // One round trip: the three go out together.
        let (head, log) = within(self.timeout, async {
            let (_, head, log) = tokio::try_join!(
                biased;
                link.client.batch_execute("BEGIN"),
                link.client.query_one(&link.lock_head, &[]),
                link.client.query(&link.log_since, &since_params),
            )?;
            Ok((head.get::<_, i64>(0) as u64, log))
        })
        .await?;
        // What lies between `known` and `since` is older than every
        // snapshot of this batch: forgotten, not read.
        if since > self.known {
            self.history.forget_through(since);
        }
        let mut next = since + 1;
        for row in log {
            let (first, seq, keys): (i64, i64, Vec<String>) = (row.get(0), row.get(1), row.get(2));
            if first as u64 > next {
                // Trimmed from the log before this node read it.
                self.history.forget_through(first as u64 - 1);
            }
            self.history.record(seq as u64, keys.iter().map(String::as_str));
            next = seq as u64 + 1;
        }
        if head >= next {
            self.history.forget_through(head);
        }
        self.known = head;
        self.counters
            .committed
            .fetch_max(head, std::sync::atomic::Ordering::Release);
        Ok(head)
    }

    /// Writes the accepted transactions of `sorted`, their log row and the
    /// new head, and commits (or just ends the transaction if none was
    /// accepted).
    async fn write(&mut self, sorted: &Sorted) -> Result<()> {
        let link = self.link.as_ref().expect("begun");
        if sorted.accepted.is_empty() {
            return within(self.timeout, async { Ok(link.client.batch_execute("COMMIT").await?) }).await;
        }
        // Later writes of a key win, as if applied one after another.
        let mut last: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
        for writes in sorted.writes() {
            for (key, value) in writes {
                last.insert(key, value.as_deref());
            }
        }
        let (mut put_keys, mut put_values, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in &last {
            match value {
                Some(value) => {
                    put_keys.push(*key);
                    put_values.push(*value);
                }
                None => deleted.push(*key),
            }
        }
        let keys: Vec<&str> = last.keys().copied().collect();
        let (first, seq) = (sorted.first as i64, sorted.last() as i64);
        self.batches += 1;
        let trim = self.batches.is_multiple_of(TRIM_EVERY);
        // One round trip: every statement and the commit go out together
        // (one that fails aborts the transaction, and the commit with it).
        let client = &link.client;
        let put = async {
            if put_keys.is_empty() {
                Ok(0)
            } else {
                client.execute(&link.put, &[&put_keys, &put_values]).await
            }
        };
        let delete = async {
            if deleted.is_empty() {
                Ok(0)
            } else {
                client.execute(&link.delete, &[&deleted]).await
            }
        };
        let trim = async {
            if trim {
                client.execute(&link.trim, &[&(seq - schema::LOG_KEEP)]).await
            } else {
                Ok(0)
            }
        };
        let log_params: [&Param<'_>; 4] = [&seq, &first, &self.id, &keys];
        let head_params: [&Param<'_>; 1] = [&seq];
        within(self.timeout, async {
            tokio::try_join!(
                biased;
                put,
                delete,
                client.execute(&link.log, &log_params),
                client.execute(&link.set_head, &head_params),
                trim,
                client.batch_execute("COMMIT"),
            )?;
            Ok(())
        })
        .await
    }

    /// Whether `sorted`'s batch was committed after all (its log row is
    /// there), asked on a new connection; false if that cannot be told.
    async fn logged(&mut self, sorted: &Sorted) -> bool {
        let Ok(link) = Link::open(&self.config, self.timeout).await else {
            return false;
        };
        let (seq, first) = (sorted.last() as i64, sorted.first as i64);
        let found = within(self.timeout, async {
            let found = link.client.query_opt(&link.logged, &[&seq, &first, &self.id]).await?;
            Ok(found.is_some())
        })
        .await;
        self.link = Some(link);
        found.unwrap_or(false)
    }
}

/// The writer's connection, with its statements prepared.
pub(super) struct Link {
    pub client: Client,
    lock_head: Statement,
    log_since: Statement,
    put: Statement,
    delete: Statement,
    log: Statement,
    set_head: Statement,
    trim: Statement,
    logged: Statement,
}

impl Link {
    pub async fn open(config: &Config, timeout: Duration) -> Result<Self> {
        let client = connect(config, timeout).await?;
        let (lock_head, log_since, put, delete, log, set_head, trim, logged) = within(timeout, async {
            Ok(tokio::try_join!(
                biased;
                client.prepare(schema::LOCK_HEAD),
                client.prepare(schema::LOG_SINCE),
                client.prepare(schema::PUT),
                client.prepare(schema::DELETE),
                client.prepare(schema::LOG),
                client.prepare(schema::SET_HEAD),
                client.prepare(schema::TRIM_LOG),
                client.prepare(schema::LOGGED),
            )?)
        })
        .await
        .context("preparing the store's statements in PostgreSQL")?;
        Ok(Self {
            client,
            lock_head,
            log_since,
            put,
            delete,
            log,
            set_head,
            trim,
            logged,
        })
    }
}

/// A connection of its own, its driver running as a task.
pub(super) async fn connect(config: &Config, timeout: Duration) -> Result<Client> {
    let (client, connection) = within(timeout, async { Ok(config.connect(NoTls).await?) })
        .await
        .context("connecting to the store in PostgreSQL")?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "connection to the store in PostgreSQL lost");
        }
    });
    Ok(client)
}
