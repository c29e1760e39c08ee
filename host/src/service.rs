//! What a listener serves: a handler module, the sandbox it runs in, the
//! limits of its connections, and where its crash reports go. The module can
//! be swapped under live traffic: events already running finish on the old
//! one, every event that starts after the swap runs the new one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context as _, Result};

use crate::bindings::ModuleInfo;
use crate::crash::CrashLog;
use crate::imports::Env;
use crate::limits::ConnectionLimits;
use crate::module::{self, Module};
use crate::sandbox::Sandbox;
use crate::tls::Tls;

/// Everything a session needs from the server, shared by its sessions.
pub struct Service {
    pub sandbox: Arc<Sandbox>,
    /// The store and registry, shared with every other listener.
    pub env: Env,
    pub limits: ConnectionLimits,
    pub crash_log: Arc<CrashLog>,
    /// The certificates presented, shared with every other listener.
    pub tls: Arc<Tls>,
    /// The module file, read again on reload.
    path: PathBuf,
    module: RwLock<Arc<Module>>,
    /// One reload at a time: a second waits and then finds nothing to do.
    reloading: tokio::sync::Mutex<()>,
}

/// What a reload did.
#[derive(Debug)]
pub enum Reload {
    /// A new module serves every event from now on.
    Swapped(ModuleInfo),
    /// The file has the digest of the module already serving.
    Unchanged(ModuleInfo),
}

impl Service {
    pub fn new(
        sandbox: Arc<Sandbox>,
        env: Env,
        module: Module,
        limits: ConnectionLimits,
        crash_log: Arc<CrashLog>,
        tls: Arc<Tls>,
    ) -> Self {
        Self {
            sandbox,
            env,
            limits,
            crash_log,
            tls,
            path: module.path().to_path_buf(),
            module: RwLock::new(Arc::new(module)),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The module the next event runs on.
    pub fn module(&self) -> Arc<Module> {
        Arc::clone(&self.module.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the module file again and, if it changed, loads, compiles and
    /// checks it on a blocking thread — off every event's path — then swaps
    /// it in. A module that cannot be loaded changes nothing.
    pub async fn reload(&self) -> Result<Reload> {
        let _one_at_a_time = self.reloading.lock().await;
        let current = self.module();
        let sandbox = Arc::clone(&self.sandbox);
        let path = self.path.clone();
        let serving = current.info().digest.clone();
        let loaded = tokio::task::spawn_blocking(move || -> Result<Option<Module>> {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let digest = module::digest(&bytes);
            if digest == serving {
                return Ok(None);
            }
            Module::with_digest(&sandbox, &path, &bytes, digest).map(Some)
        })
        .await
        .context("the loading thread failed")?
        .with_context(|| format!("{}", self.path.display()))?;

        let Some(module) = loaded else {
            return Ok(Reload::Unchanged(current.info().clone()));
        };
        let info = module.info().clone();
        *self.module.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(module);
        tracing::info!(
            module = %self.path.display(),
            digest = %info.digest,
            previous = %current.info().digest,
            loaded_at_ms = info.loaded_at_ms,
            "module swapped"
        );
        Ok(Reload::Swapped(info))
    }

    /// Reloads, logging the outcome; a rejected module keeps the old one serving.
    pub async fn reload_and_log(&self) -> Result<Reload> {
        let result = self.reload().await;
        if let Err(error) = &result {
            tracing::error!(module = %self.path.display(), error = format!("{error:#}"), "reload rejected; the serving module stays");
        }
        result
    }
}
