//! `ej store`: an operator reads and writes the durable store — directly
//! when no server has it open, else through the running server's admin
//! endpoint, so seeding data never needs a handler or a restart.
//!
//! Over the admin endpoint an operation travels as one line,
//! `store OP HEX…`, and its answer as `value HEX`, `none`, `done` or
//! `entry HEX HEX` lines: keys and values are bytes, so they go hex-encoded.

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;

use crate::db::{Db, WriteSet};

/// One store operation.
#[derive(Subcommand, Clone, Debug)]
pub enum StoreOp {
    /// Print the value under KEY.
    Get { key: String },
    /// Set KEY to VALUE (taken as UTF-8 text).
    Put { key: String, value: String },
    /// Remove KEY.
    Delete { key: String },
    /// Print every KEY<TAB>VALUE whose key starts with PREFIX.
    List {
        #[arg(default_value = "")]
        prefix: String,
        /// Entries printed at most.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

/// What an operation found.
#[derive(Debug, PartialEq, Eq)]
pub enum StoreReply {
    Value(Option<Vec<u8>>),
    Done,
    Entries(Vec<(String, Vec<u8>)>),
}

/// Runs `op` against `db`.
pub async fn execute(db: &Db, op: &StoreOp) -> Result<StoreReply> {
    Ok(match op {
        StoreOp::Get { key } => StoreReply::Value(db.snapshot().await?.get(key).await?),
        StoreOp::Put { key, value } => {
            db.write(WriteSet::from([(key.clone(), Some(value.as_bytes().to_vec()))]))
                .await?;
            StoreReply::Done
        }
        StoreOp::Delete { key } => {
            db.write(WriteSet::from([(key.clone(), None)])).await?;
            StoreReply::Done
        }
        StoreOp::List { prefix, limit } => StoreReply::Entries(
            db.snapshot()
                .await?
                .scan(prefix, *limit, usize::MAX)
                .await?
                .expect("no byte limit"),
        ),
    })
}

impl StoreOp {
    /// The admin command line for this operation.
    pub fn to_command(&self) -> String {
        match self {
            Self::Get { key } => format!("store get {}", hex(key.as_bytes())),
            Self::Put { key, value } => format!("store put {} {}", hex(key.as_bytes()), hex(value.as_bytes())),
            Self::Delete { key } => format!("store delete {}", hex(key.as_bytes())),
            Self::List { prefix, limit } => format!("store list {} {limit}", hex(prefix.as_bytes())),
        }
    }

    /// Reads an admin command line (without its leading `store `).
    pub fn from_command(line: &str) -> Result<Self> {
        let words: Vec<&str> = line.split(' ').collect();
        Ok(match words.as_slice() {
            ["get", key] => Self::Get { key: text(key)? },
            ["put", key, value] => Self::Put {
                key: text(key)?,
                value: text(value)?,
            },
            ["delete", key] => Self::Delete { key: text(key)? },
            ["list", prefix, limit] => Self::List {
                prefix: text(prefix)?,
                limit: limit.parse()?,
            },
            _ => bail!("unknown store operation"),
        })
    }
}

impl StoreReply {
    /// The admin reply lines.
    pub fn to_lines(&self) -> Vec<String> {
        match self {
            Self::Value(Some(value)) => vec![format!("value {}", hex(value))],
            Self::Value(None) => vec!["none".into()],
            Self::Done => vec!["done".into()],
            Self::Entries(entries) => entries
                .iter()
                .map(|(key, value)| format!("entry {} {}", hex(key.as_bytes()), hex(value)))
                .collect(),
        }
    }

    /// Reads admin reply lines.
    pub fn from_lines(lines: &[String]) -> Result<Self> {
        let words = |line: &str| line.split(' ').map(str::to_owned).collect::<Vec<_>>();
        match lines.first().map(|line| words(line)).as_deref() {
            Some([value, hexed]) if value == "value" => Ok(Self::Value(Some(unhex(hexed)?))),
            Some([none]) if none == "none" => Ok(Self::Value(None)),
            Some([done]) if done == "done" => Ok(Self::Done),
            _ => lines
                .iter()
                .map(|line| match words(line).as_slice() {
                    [entry, key, value] if entry == "entry" => Ok((text(key)?, unhex(value)?)),
                    _ => Err(anyhow!("unexpected reply: {line}")),
                })
                .collect::<Result<_>>()
                .map(Self::Entries),
        }
    }
}

/// Bytes as lower-case hex, as the admin endpoint's lines carry them.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Result<Vec<u8>> {
    let digit = |byte: u8| char::from(byte).to_digit(16).ok_or_else(|| anyhow!("bad hex"));
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        bail!("odd hex length");
    }
    bytes
        .chunks(2)
        .map(|pair| Ok((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

/// Hex-encoded UTF-8 text, decoded.
pub fn text(hexed: &str) -> Result<String> {
    Ok(String::from_utf8(unhex(hexed)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_and_replies_survive_the_admin_line_protocol() {
        let ops = [
            StoreOp::Get { key: "a b\nc".into() },
            StoreOp::Put {
                key: "room:lobby".into(),
                value: "{\"topic\": \"hi there\"}".into(),
            },
            StoreOp::Delete { key: "k".into() },
            StoreOp::List {
                prefix: String::new(),
                limit: 7,
            },
        ];
        for op in ops {
            let line = op.to_command();
            assert!(!line.contains('\n'));
            assert_eq!(line.trim(), line, "the admin endpoint trims command lines");
            let back = StoreOp::from_command(line.strip_prefix("store ").unwrap()).unwrap();
            assert_eq!(back.to_command(), line);
        }
        let replies = [
            StoreReply::Value(Some(b"x y".to_vec())),
            StoreReply::Value(None),
            StoreReply::Done,
            StoreReply::Entries(vec![("k 1".into(), b"v\n1".to_vec()), ("k2".into(), Vec::new())]),
        ];
        for reply in replies {
            assert_eq!(StoreReply::from_lines(&reply.to_lines()).unwrap(), reply);
        }
        assert!(StoreOp::from_command("get zz").is_err());
        // Any bytes at all: a multi-byte character is refused, not a panic.
        assert!(StoreOp::from_command("get é1").is_err());
        assert!(StoreOp::from_command("get 6é").is_err());
    }
}
