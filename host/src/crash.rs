//! Crash reports: one JSON line per handler fault, written to a file or to
//! stderr, with everything needed to find the bug without reproducing it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::fault::Fault;

/// Where crash reports go.
pub struct CrashLog {
    sink: Mutex<Sink>,
}

enum Sink {
    Stderr,
    File(File),
}

/// One fault on one connection.
#[derive(Serialize)]
pub struct CrashReport<'a> {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub connection: u64,
    pub peer: &'a str,
    /// Digest of the module that faulted.
    pub module: &'a str,
    /// The event whose outcome was discarded.
    pub event: &'a str,
    #[serde(flatten)]
    pub fault: &'a Fault,
}

impl CrashLog {
    pub fn stderr() -> Self {
        Self {
            sink: Mutex::new(Sink::Stderr),
        }
    }

    /// Appends to `path`, creating it if needed.
    pub fn file(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening crash log {}", path.display()))?;
        Ok(Self {
            sink: Mutex::new(Sink::File(file)),
        })
    }

    /// Writes one report as one line. A report that cannot be written is
    /// logged instead; it never takes the server down.
    pub fn write(&self, report: &CrashReport<'_>) {
        let mut line = match serde_json::to_vec(report) {
            Ok(line) => line,
            Err(error) => {
                tracing::error!(%error, "cannot encode a crash report");
                return;
            }
        };
        line.push(b'\n');
        let mut sink = self.sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let written = match &mut *sink {
            Sink::Stderr => std::io::stderr().lock().write_all(&line),
            Sink::File(file) => file.write_all(&line),
        };
        if let Err(error) = written {
            tracing::error!(%error, "cannot write a crash report");
        }
    }
}

/// Milliseconds since the Unix epoch, for reports and module records.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
