//! The store's tables in PostgreSQL, and the statements that use them.
//!
//! - `ej_kv`: the entries, keyed by their bytes' order (collation "C", the
//!   order the embedded store keeps), so a prefix scan is an index range.
//! - `ej_head`: one row, the number of the last commit. Every writer locks
//!   it first, so the nodes' batches commit one at a time, in order.
//! - `ej_log`: which keys each batch wrote (its commits `first` through
//!   `seq`), so every node's writer validates against the others' commits
//!   too, and which writer wrote it (so a writer that lost its connection
//!   during a commit can tell whether it happened). Trimmed to the newest
//!   `LOG_KEEP` commits.

use anyhow::{Context as _, Result};
use tokio_postgres::Client;

/// Commits kept in `ej_log`: a transaction whose snapshot is older than
/// that (or than its node's last look at the log) runs again.
pub const LOG_KEEP: i64 = 100_000;

const CREATE: &str = r#"
    SELECT pg_advisory_xact_lock(7111970);
    CREATE TABLE IF NOT EXISTS ej_kv (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
    CREATE TABLE IF NOT EXISTS ej_head (one boolean PRIMARY KEY DEFAULT true CHECK (one), seq bigint NOT NULL);
    INSERT INTO ej_head (seq) VALUES (0) ON CONFLICT DO NOTHING;
    CREATE TABLE IF NOT EXISTS ej_log (seq bigint PRIMARY KEY, first bigint NOT NULL, writer bigint NOT NULL, keys text[] NOT NULL);
"#;

/// An event's reads: one snapshot for all of them, and nothing written.
pub const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
pub const HEAD: &str = "SELECT seq FROM ej_head";
pub const GET: &str = "SELECT value FROM ej_kv WHERE key = $1";
pub const SCAN: &str = "SELECT key, value FROM ej_kv WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3";
pub const SCAN_ALL: &str = "SELECT key, value FROM ej_kv ORDER BY key LIMIT $1";

/// A writer's batch.
pub const LOCK_HEAD: &str = "SELECT seq FROM ej_head FOR UPDATE";
pub const LOG_SINCE: &str = "SELECT first, seq, keys FROM ej_log WHERE seq > $1 ORDER BY seq";
pub const PUT: &str = "INSERT INTO ej_kv (key, value) SELECT * FROM unnest($1::text[], $2::bytea[]) \
                       ON CONFLICT (key) DO UPDATE SET value = excluded.value";
pub const DELETE: &str = "DELETE FROM ej_kv WHERE key = ANY($1)";
pub const LOG: &str = "INSERT INTO ej_log (seq, first, writer, keys) VALUES ($1, $2, $3, $4)";
pub const LOGGED: &str = "SELECT 1 FROM ej_log WHERE seq = $1 AND first = $2 AND writer = $3";
pub const SET_HEAD: &str = "UPDATE ej_head SET seq = $1";
pub const TRIM_LOG: &str = "DELETE FROM ej_log WHERE seq <= $1";

/// Creates the tables if they are missing (nodes starting together take
/// turns), and returns the last commit's number.
pub async fn create(client: &Client) -> Result<u64> {
    client
        .batch_execute(&format!("BEGIN; {CREATE} COMMIT;"))
        .await
        .context("creating the store's tables")?;
    let head: i64 = client.query_one(HEAD, &[]).await?.get(0);
    Ok(head as u64)
}

/// The smallest string greater than every string starting with `prefix`,
/// in code point order (which is the byte order of UTF-8 and of collation
/// "C"); `None` if there is none (the prefix is empty, or all `char::MAX`).
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_ends_before_the_first_string_not_starting_with_it() {
        assert_eq!(prefix_end("room:").as_deref(), Some("room;"));
        assert_eq!(prefix_end("a\u{d7ff}").as_deref(), Some("a\u{e000}"), "no surrogates");
        assert_eq!(prefix_end("a\u{10ffff}").as_deref(), Some("b"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("\u{10ffff}"), None);
        for key in ["room:", "room:\u{10ffff}", "room:zz"] {
            assert!(key < prefix_end("room:").unwrap().as_str());
        }
    }
}
