//! What a handler can call during an event: the durable store and the
//! registry of addresses, as one event sees them.
//!
//! Store reads all see one snapshot, taken at the event's first read, and
//! are recorded; writes go into the event's own write set, which its later
//! reads see. The host commits the set only if the event succeeds and
//! nothing it read has changed meanwhile (else it runs the event again).
//! Breaking a limit traps the guest, which discards the event like any
//! fault.

use std::sync::Arc;

use wasmtime::Result;

use wasmtime_wasi::p2::OutputStream as _;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::bindings::ej::handler::{output, registry, store, types};
use crate::db::{Db, ReadSet, Snapshot, Transaction, WriteSet};
use crate::holds::Holds;
use crate::registry::Registry;

/// The server-wide state handlers reach through their imports.
#[derive(Clone)]
pub struct Env {
    pub db: Arc<Db>,
    pub registry: Arc<Registry>,
    /// Sessions kept for peers that may come back.
    pub holds: Arc<Holds>,
    /// This node's place in a cluster (with the store in PostgreSQL): where
    /// bindings are made cluster-wide.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Routes to the other nodes of the cluster (with `--cluster`).
    pub relay: Option<Arc<crate::cluster::relay::Relay>>,
}

/// Bounds on what one event may do through its imports.
#[derive(Clone, Copy, Debug)]
pub struct ImportLimits {
    /// Bytes of keys and values one event may write.
    pub max_write_bytes: usize,
    /// Bytes one event may read: store keys it asks for, keys and values
    /// returned, and addresses a lookup returns.
    pub max_read_bytes: usize,
    /// Entries one `scan` or `lookup` returns at most.
    pub max_listed: usize,
}

/// One event's view of the store and the registry, and where its output goes.
pub struct EventImports {
    env: Env,
    limits: ImportLimits,
    /// The event's output for the crash report, shared with WASI's stdout
    /// and stderr, bounded by `--max-output-bytes`.
    output: MemoryOutputPipe,
    /// The moment every read of this event sees, taken at its first read.
    snapshot: Option<Snapshot>,
    reads: ReadSet,
    read: usize,
    writes: WriteSet,
    written: usize,
}

impl EventImports {
    pub fn new(env: Env, limits: ImportLimits, output: MemoryOutputPipe) -> Self {
        Self {
            env,
            limits,
            output,
            snapshot: None,
            reads: ReadSet::default(),
            read: 0,
            writes: WriteSet::new(),
            written: 0,
        }
    }

    /// What the event read and wrote, to commit once it has succeeded.
    pub fn into_transaction(self) -> Transaction {
        Transaction {
            snapshot: self.snapshot.as_ref().map_or(0, Snapshot::seq),
            reads: self.reads,
            writes: self.writes,
            retries: 0,
        }
    }

    async fn snapshot(&mut self) -> Result<&mut Snapshot> {
        if self.snapshot.is_none() {
            self.snapshot = Some(self.env.db.snapshot().await.map_err(wasmtime::Error::from_anyhow)?);
        }
        Ok(self.snapshot.as_mut().expect("just taken"))
    }

    /// Counts `bytes` more read by this event.
    fn charge_read(&mut self, bytes: usize) -> Result<()> {
        self.read += bytes;
        if self.read > self.limits.max_read_bytes {
            return Err(self.over_read_limit());
        }
        Ok(())
    }

    fn over_read_limit(&self) -> wasmtime::Error {
        wasmtime::format_err!(
            "reads of this event (store entries, registry addresses) exceed the limit of {} bytes",
            self.limits.max_read_bytes
        )
    }

    /// This event's own writes (and deletions) of keys under `prefix`.
    fn own_writes_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a Option<Vec<u8>>)> {
        self.writes
            .range(prefix.to_owned()..)
            .take_while(move |(key, _)| key.starts_with(prefix))
    }

    fn write(&mut self, key: String, value: Option<Vec<u8>>) -> Result<()> {
        self.written += key.len() + value.as_ref().map_or(0, Vec::len);
        if self.written > self.limits.max_write_bytes {
            wasmtime::bail!(
                "store writes of this event exceed the limit of {} bytes",
                self.limits.max_write_bytes
            );
        }
        self.writes.insert(key, value);
        Ok(())
    }
}

impl types::Host for EventImports {}

impl output::Host for EventImports {
    fn write(&mut self, text: String) -> Result<()> {
        // What the pipe has no room for is dropped (it is `Closed` once full).
        let room = self.output.check_write().unwrap_or(0);
        let kept = &text.as_bytes()[..text.len().min(room)];
        if !kept.is_empty() {
            self.output.write(kept.to_vec().into())?;
        }
        Ok(())
    }
}

impl store::Host for EventImports {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>> {
        // Its own writes need no snapshot, and depend on nobody else.
        if let Some(written) = self.writes.get(&key) {
            return Ok(written.clone());
        }
        self.charge_read(key.len())?;
        let value = self
            .snapshot()
            .await?
            .get(&key)
            .await
            .map_err(wasmtime::Error::from_anyhow)?;
        self.charge_read(value.as_ref().map_or(0, Vec::len))?;
        self.reads.key(&key);
        Ok(value)
    }

    fn put(&mut self, key: String, value: Vec<u8>) -> Result<()> {
        self.write(key, Some(value))
    }

    fn delete(&mut self, key: String) -> Result<()> {
        self.write(key, None)
    }

    async fn scan(&mut self, prefix: String, limit: u32) -> Result<Vec<(String, Vec<u8>)>> {
        let limit = (limit as usize).min(self.limits.max_listed);
        self.charge_read(prefix.len())?;
        // Read past as many entries as this event deleted, then overlay.
        let deleted = self
            .own_writes_under(&prefix)
            .filter(|(_, value)| value.is_none())
            .count();
        let wanted = limit + deleted;
        let remaining = self.limits.max_read_bytes - self.read;
        let Some(stored) = self
            .snapshot()
            .await?
            .scan(&prefix, wanted, remaining)
            .await
            .map_err(wasmtime::Error::from_anyhow)?
        else {
            return Err(self.over_read_limit());
        };
        self.charge_read(stored.iter().map(|(key, value)| key.len() + value.len()).sum())?;
        // A scan cut short by its limit saw nothing past its last entry.
        let through = (stored.len() == wanted)
            .then(|| stored.last().map(|(key, _)| key.clone()))
            .flatten();
        self.reads.range(&prefix, through);
        let mut entries: std::collections::BTreeMap<String, Vec<u8>> = stored.into_iter().collect();
        for (key, value) in self.own_writes_under(&prefix) {
            match value {
                Some(value) => entries.insert(key.clone(), value.clone()),
                None => entries.remove(key),
            };
        }
        Ok(entries.into_iter().take(limit).collect())
    }
}

impl registry::Host for EventImports {
    /// This node's addresses; with routes to other nodes, every node's.
    async fn lookup(&mut self, prefix: String, limit: u32) -> Result<Vec<String>> {
        let limit = (limit as usize).min(self.limits.max_listed);
        let found = match &self.env.relay {
            None => self.env.registry.lookup(&prefix, limit),
            // Boxed, like the store's PostgreSQL reads (see `db::Snapshot`).
            Some(relay) => Box::pin(relay.lookup(&prefix, limit))
                .await
                .map_err(|error| wasmtime::Error::from_anyhow(crate::db::Unreachable(format!("{error:#}")).into()))?,
        };
        self.charge_read(found.iter().map(String::len).sum())?;
        Ok(found)
    }
}
