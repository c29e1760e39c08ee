//! One moment of the embedded store: a redb read transaction, tagged with the
//! sequence number of the last commit it is known to contain.

use anyhow::Result;
use redb::{Database, ReadOnlyTable, ReadableDatabase};

use super::TABLE;
use crate::db::Entries;

/// Reads that all see the store as of one commit.
pub struct Snapshot {
    seq: u64,
    table: ReadOnlyTable<&'static str, &'static [u8]>,
}

impl Snapshot {
    pub(super) fn begin(database: &Database, seq: u64) -> Result<Self> {
        let table = database.begin_read()?.open_table(TABLE)?;
        Ok(Self { seq, table })
    }

    /// Every commit up to this one is visible (later ones may be too).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.table.get(key)?.map(|value| value.value().to_vec()))
    }

    /// Entries whose key starts with `prefix`, in key order, at most
    /// `limit` of them; `None` if their keys and values would hold more than
    /// `max_bytes` (the scan stops there, reading no further).
    pub fn scan(&self, prefix: &str, limit: usize, max_bytes: usize) -> Result<Option<Entries>> {
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        for entry in self.table.range(prefix..)? {
            let (key, value) = entry?;
            if !key.value().starts_with(prefix) || entries.len() == limit {
                break;
            }
            bytes += key.value().len() + value.value().len();
            if bytes > max_bytes {
                return Ok(None);
            }
            entries.push((key.value().to_owned(), value.value().to_vec()));
        }
        Ok(Some(entries))
    }
}
