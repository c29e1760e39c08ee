//! The durable key-value store every connection of a server shares.
//!
//! Everything an event writes commits when the event succeeds, all at once,
//! or not at all if it faults; the event's own reads see its own writes.
//! Values are bytes; the `_json` helpers store serde types as JSON.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::bindings::ej::handler::store::{delete, get, put, scan};

/// Reads `key` as JSON. A missing key is `Ok(None)`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, String> {
    get(key)
        .map(|bytes| serde_json::from_slice(&bytes).map_err(|e| format!("decoding {key}: {e}")))
        .transpose()
}

/// Writes `value` as JSON under `key`.
pub fn put_json<T: Serialize>(key: &str, value: &T) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).map_err(|e| format!("encoding {key}: {e}"))?;
    put(key, &bytes);
    Ok(())
}
