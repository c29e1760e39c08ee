//! The soak's external ledger: a file, outside the server, of every store
//! write a client asked for, which of them the server acknowledged, and
//! which were asked of an event made to fault. Checked at the end against
//! what the store holds.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Appends to the ledger file; many threads may write.
pub struct Ledger {
    path: PathBuf,
    file: Mutex<BufWriter<File>>,
}

impl Ledger {
    pub fn create(path: &Path) -> Self {
        let file = File::create(path).expect("creating the ledger");
        Self {
            path: path.to_owned(),
            file: Mutex::new(BufWriter::new(file)),
        }
    }

    /// A write of `value` under `key` is about to be sent.
    pub fn sent(&self, key: &str, value: &str) {
        self.line(&format!("sent {key} {value}"));
    }

    /// The server acknowledged the write under `key`.
    pub fn acked(&self, key: &str) {
        self.line(&format!("acked {key}"));
    }

    /// A write under `key` is about to be sent in an event that faults.
    pub fn faulted(&self, key: &str) {
        self.line(&format!("faulted {key}"));
    }

    fn line(&self, line: &str) {
        writeln!(self.file.lock().unwrap(), "{line}").expect("writing the ledger");
    }

    /// Reads the ledger back (after flushing it) and checks `store`, every
    /// key and value the store holds under the writes' and the faults'
    /// prefixes, against it.
    pub fn check(&self, store: &HashMap<String, String>) -> Verdict {
        self.file.lock().unwrap().flush().expect("flushing the ledger");
        let mut writes: HashMap<String, (String, bool)> = HashMap::new();
        let mut faulted = Vec::new();
        let file = File::open(&self.path).expect("reading the ledger");
        for line in BufReader::new(file).lines().map(Result::unwrap) {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["sent", key, value] => {
                    writes.insert((*key).to_owned(), ((*value).to_owned(), false));
                }
                ["acked", key] => writes.get_mut(*key).expect("acked after sent").1 = true,
                ["faulted", key] => faulted.push((*key).to_owned()),
                _ => panic!("a ledger line {line:?}"),
            }
        }
        let mut verdict = Verdict::default();
        for (key, (value, acked)) in &writes {
            match (store.get(key), acked) {
                (Some(stored), _) if stored != value => verdict.wrong.push(key.clone()),
                (Some(_), true) => verdict.acked_present += 1,
                (None, true) => verdict.lost.push(key.clone()),
                (Some(_), false) => verdict.unacked_present += 1,
                (None, false) => verdict.unacked_absent += 1,
            }
        }
        verdict.faulted = faulted.len();
        verdict.faulted_present = faulted.into_iter().filter(|key| store.contains_key(key)).collect();
        verdict.unknown = store.keys().filter(|key| !writes.contains_key(*key)).cloned().collect();
        verdict.unknown.retain(|key| !verdict.faulted_present.contains(key));
        verdict
    }
}

/// What the store holds, measured against the ledger.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Acknowledged writes found with their value.
    pub acked_present: usize,
    /// Writes never acknowledged (their client reset or the server was
    /// killed) that did commit, or did not: either is allowed.
    pub unacked_present: usize,
    pub unacked_absent: usize,
    /// Writes in events that faulted.
    pub faulted: usize,
    /// Acknowledged writes missing: data lost.
    pub lost: Vec<String>,
    /// Keys holding another value than the one written.
    pub wrong: Vec<String>,
    /// Writes of faulted events that are there anyway.
    pub faulted_present: Vec<String>,
    /// Keys nobody wrote.
    pub unknown: Vec<String>,
}

impl Verdict {
    /// Whether the store is exactly what the ledger allows.
    pub fn clean(&self) -> bool {
        self.lost.is_empty() && self.wrong.is_empty() && self.faulted_present.is_empty() && self.unknown.is_empty()
    }
}
