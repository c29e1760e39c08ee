//! `ej serve --watch`: reload a module when its file changes, and the TLS
//! certificates when theirs do, whether a file is rewritten in place or
//! replaced by a rename, once the writes have settled.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::Notify;

use crate::service::Service;
use crate::tls::Tls;

/// How long a file must stay quiet after a change before it is reloaded, so
/// a module written in several pieces is read once, whole.
const SETTLE: Duration = Duration::from_millis(100);

/// Something reloaded when one of its files changes.
pub enum Watched {
    Module(Arc<Service>),
    Certificates(Arc<Tls>),
}

impl Watched {
    fn files(&self) -> Vec<PathBuf> {
        match self {
            Self::Module(service) => vec![service.path().to_path_buf()],
            Self::Certificates(tls) => tls.certificates.files().map(Path::to_path_buf).collect(),
        }
    }

    /// Reloads; what fails to load is logged and the old one stays.
    async fn reload(&self) {
        match self {
            Self::Module(service) => drop(service.reload_and_log().await),
            Self::Certificates(tls) => drop(tls.certificates.reload_and_log()),
        }
    }
}

/// Watches the files of what it was given; stops when dropped.
pub struct Watcher {
    _watcher: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// Starts watching. Watches each file's directory, not the file, so a
    /// file replaced by a rename is still seen.
    pub fn start(watched: Vec<Watched>) -> Result<Self> {
        // Each file, and which of `watched` it belongs to.
        let mut files: Vec<(PathBuf, usize)> = Vec::new();
        for (at, item) in watched.iter().enumerate() {
            for file in item.files() {
                files.push((absolute(&file)?, at));
            }
        }
        let changed: Arc<Vec<AtomicBool>> = Arc::new(watched.iter().map(|_| AtomicBool::new(false)).collect());
        let wake = Arc::new(Notify::new());

        let mut watcher = {
            let files = files.clone();
            let changed = Arc::clone(&changed);
            let wake = Arc::clone(&wake);
            notify::recommended_watcher(move |event: notify::Result<Event>| {
                let Ok(event) = event else { return };
                if !is_write(&event.kind) {
                    return;
                }
                for (file, at) in &files {
                    if event.paths.iter().any(|path| path == file) {
                        changed[*at].store(true, Ordering::Relaxed);
                        wake.notify_one();
                    }
                }
            })
            .context("starting the file watcher")?
        };
        let mut dirs: Vec<&Path> = files
            .iter()
            .map(|(file, _)| file.parent().unwrap_or(Path::new("/")))
            .collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .with_context(|| format!("watching {}", dir.display()))?;
        }
        let task = tokio::spawn(reload_on_change(watched, changed, wake));
        Ok(Self {
            _watcher: watcher,
            task,
        })
    }
}

/// Waits for changes, lets them settle, and reloads what changed.
async fn reload_on_change(watched: Vec<Watched>, changed: Arc<Vec<AtomicBool>>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        while tokio::time::timeout(SETTLE, wake.notified()).await.is_ok() {}
        for (item, flag) in watched.iter().zip(changed.iter()) {
            if flag.swap(false, Ordering::Relaxed) {
                item.reload().await;
            }
        }
    }
}

/// Whether an event may have changed a file's contents. Reads (including
/// the reload's own) are not.
fn is_write(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}
