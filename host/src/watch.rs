//! `ej serve --watch`: reload a module when its file changes, whether it is
//! rewritten in place or replaced by a rename, once the writes have settled.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::Notify;

use crate::service::Service;

/// How long a file must stay quiet after a change before it is reloaded, so
/// a module written in several pieces is read once, whole.
const SETTLE: Duration = Duration::from_millis(100);

/// Watches the module files of `services`; stops when dropped.
pub struct ModuleWatcher {
    _watcher: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ModuleWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ModuleWatcher {
    /// Starts watching. Watches each module's directory, not the file, so a
    /// module replaced by a rename is still seen.
    pub fn start(services: Vec<Arc<Service>>) -> Result<Self> {
        let files: Vec<PathBuf> = services
            .iter()
            .map(|service| absolute(service.path()))
            .collect::<Result<_>>()?;
        let changed: Arc<Vec<AtomicBool>> = Arc::new(files.iter().map(|_| AtomicBool::new(false)).collect());
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
                for (file, flag) in files.iter().zip(changed.iter()) {
                    if event.paths.iter().any(|path| path == file) {
                        flag.store(true, Ordering::Relaxed);
                        wake.notify_one();
                    }
                }
            })
            .context("starting the file watcher")?
        };
        for file in &files {
            let dir = file.parent().unwrap_or(Path::new("/"));
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .with_context(|| format!("watching {}", dir.display()))?;
        }
        let task = tokio::spawn(reload_on_change(services, changed, wake));
        Ok(Self {
            _watcher: watcher,
            task,
        })
    }
}

/// Waits for changes, lets them settle, and reloads the changed modules.
async fn reload_on_change(services: Vec<Arc<Service>>, changed: Arc<Vec<AtomicBool>>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        while tokio::time::timeout(SETTLE, wake.notified()).await.is_ok() {}
        for (service, flag) in services.iter().zip(changed.iter()) {
            if flag.swap(false, Ordering::Relaxed) {
                // A rejected module is logged and the old one keeps serving.
                let _ = service.reload_and_log().await;
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
