//! The durable key-value store every connection of a server shares.
//!
//! Every event is a serializable transaction: its reads all see one moment
//! of the store (and its own writes); everything it writes commits when the
//! event succeeds, all at once, or not at all if it faults. If another
//! commit changed what the event read before it could commit, the host runs
//! the event again from scratch, so read-modify-write never loses an update
//! (and the handler must not count on running once per event). Values are
//! bytes; the `_json` helpers store serde types as JSON.

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
