//! What a handler can call during an event: the durable store and the
//! registry of addresses, as one event sees them.
//!
//! Store writes go into the event's own write set, which its later reads
//! see; the host commits the set only if the event succeeds. Breaking a
//! limit traps the guest, which discards the event like any fault.

use std::sync::Arc;

use wasmtime::Result;

use crate::bindings::ej::handler::{registry, store, types};
use crate::db::{Db, WriteSet};
use crate::registry::Registry;

/// The server-wide state handlers reach through their imports.
#[derive(Clone)]
pub struct Env {
    pub db: Arc<Db>,
    pub registry: Arc<Registry>,
}

/// Bounds on what one event may do through its imports.
#[derive(Clone, Copy, Debug)]
pub struct ImportLimits {
    /// Bytes of keys and values one event may write.
    pub max_write_bytes: usize,
    /// Entries one `scan` or `lookup` returns at most.
    pub max_listed: usize,
}

/// One event's view of the store and the registry.
pub struct EventImports {
    env: Env,
    limits: ImportLimits,
    writes: WriteSet,
    written: usize,
}

impl EventImports {
    pub fn new(env: Env, limits: ImportLimits) -> Self {
        Self {
            env,
            limits,
            writes: WriteSet::new(),
            written: 0,
        }
    }

    /// The event's writes, to commit once it has succeeded.
    pub fn into_writes(self) -> WriteSet {
        self.writes
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

impl store::Host for EventImports {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>> {
        if let Some(written) = self.writes.get(&key) {
            return Ok(written.clone());
        }
        self.env.db.get(&key).map_err(wasmtime::Error::from_anyhow)
    }

    fn put(&mut self, key: String, value: Vec<u8>) -> Result<()> {
        self.write(key, Some(value))
    }

    fn delete(&mut self, key: String) -> Result<()> {
        self.write(key, None)
    }

    fn scan(&mut self, prefix: String, limit: u32) -> Result<Vec<(String, Vec<u8>)>> {
        let limit = (limit as usize).min(self.limits.max_listed);
        let mine = self
            .writes
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix));
        // Read past as many entries as this event deleted, then overlay.
        let deleted = mine.clone().filter(|(_, value)| value.is_none()).count();
        let mut entries: std::collections::BTreeMap<String, Vec<u8>> = self
            .env
            .db
            .scan(&prefix, limit + deleted)
            .map_err(wasmtime::Error::from_anyhow)?
            .into_iter()
            .collect();
        for (key, value) in mine {
            match value {
                Some(value) => entries.insert(key.clone(), value.clone()),
                None => entries.remove(key),
            };
        }
        Ok(entries.into_iter().take(limit).collect())
    }
}

impl registry::Host for EventImports {
    fn lookup(&mut self, prefix: String, limit: u32) -> Result<Vec<String>> {
        Ok(self
            .env
            .registry
            .lookup(&prefix, (limit as usize).min(self.limits.max_listed)))
    }
}
