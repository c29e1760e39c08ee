//! What a listener serves: a handler module, the sandbox it runs in, the
//! limits of its connections, and where its crash reports go. The module can
//! be swapped under live traffic: events already running finish on the old
//! one, every event that starts after the swap runs the new one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context as _, Result};

use crate::bindings::ej::handler::types::Route;
use crate::bindings::{Action, Connection, Envelope, Event, ModuleInfo, Outcome};
use crate::crash::CrashLog;
use crate::db::CommitError;
use crate::fault::{Fault, FaultKind};
use crate::imports::Env;
use crate::limits::ConnectionLimits;
use crate::metrics::{METRICS, Metrics};
use crate::module::{self, Module};
use crate::registry::Delivery;
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
        Metrics::count(&METRICS.swaps);
        Ok(Reload::Swapped(info))
    }

    /// Runs `event` in a fresh instance of the current module (updating
    /// `module` and `record` if it was swapped) and commits its store
    /// transaction; returns the outcome, unless `check` refuses its
    /// actions first. An event whose store reads went stale before it could
    /// commit had no effect anywhere yet, so it simply runs again, from the
    /// same state, in a fresh instance, up to `--max-retries` times, holding
    /// the lanes of what went stale so that reruns on the same keys take
    /// turns.
    pub async fn run_event(
        &self,
        record: &mut Connection,
        module: &mut Arc<Module>,
        state: &[u8],
        event: &Event,
        check: impl Fn(&[Action]) -> Result<(), Fault>,
    ) -> Result<Outcome, Fault> {
        let started = std::time::Instant::now();
        let result = async {
            let max_retries = self.sandbox.limits().max_retries;
            let db = &self.env.db;
            let mut _lanes = None;
            for retries in 0..=max_retries {
                let current = self.module();
                if !Arc::ptr_eq(&current, module) {
                    record.module = current.info().clone();
                    *module = current;
                }
                let mut completed = self.sandbox.handle(module, record, state, event, &self.env).await?;
                check(&completed.outcome.actions)?;
                completed.transaction.retries = retries;
                // A first run that read what a rerun is queued on takes its
                // turn in the queue rather than race the rerun to the writer:
                // otherwise, when commits take long (a store in PostgreSQL),
                // fresh events keep beating a rerun until it runs out of
                // retries.
                let writes = !completed.transaction.writes.is_empty();
                let queued_behind = if retries == 0 && writes {
                    db.lanes().taken(&completed.transaction.reads)
                } else {
                    crate::db::ReadSet::default()
                };
                let result = if !queued_behind.is_empty() {
                    Err(CommitError::Conflict(queued_behind))
                } else {
                    // The writes are durable before anything the event asked
                    // for happens, so whoever hears of it can read them.
                    db.commit(completed.transaction).await
                };
                match result {
                    Ok(()) => return Ok(completed.outcome),
                    Err(CommitError::Conflict(reads)) => {
                        Metrics::count(&METRICS.reruns);
                        // Leave the lanes held before queueing for new ones.
                        _lanes = None;
                        _lanes = Some(db.lanes().enter(&reads).await);
                    }
                    Err(error @ CommitError::Failed(_)) => {
                        return Err(Fault::host(FaultKind::Store, error.to_string()));
                    }
                }
            }
            Err(Fault::host(
                FaultKind::Conflict,
                format!(
                    "what the event read from the store was changed by another commit each of the {} times it ran \
                     (--max-retries {max_retries})",
                    max_retries + 1
                ),
            ))
        }
        .await;
        METRICS.event(event, started.elapsed(), result.as_ref().err().map(|fault| fault.kind));
        result
    }

    /// Runs an operator's command through the handler (the `operator`
    /// event); delivers what it routes, and returns the text it sends back.
    pub async fn operator(&self, command: String) -> Result<Vec<String>, Fault> {
        let mut module = self.module();
        let mut record = Connection {
            id: 0,
            peer: "operator".to_owned(),
            listener: "admin".to_owned(),
            module: module.info().clone(),
            tls: None,
        };
        let event = Event::Operator(command);
        let outcome = self
            .run_event(&mut record, &mut module, &[], &event, |_| Ok(()))
            .await?;
        let mut answer = Vec::new();
        for action in outcome.actions {
            match action {
                Action::Send(text) => answer.push(text),
                Action::Route(Route { to, payload }) => self.deliver(to, payload).await,
                _ => {}
            }
        }
        Ok(answer)
    }

    /// Delivers a payload from no connection, waiting for room in a full
    /// mailbox like any route, or sends it to the node holding its address:
    /// nobody hears if it is not delivered.
    async fn deliver(&self, to: String, payload: String) {
        let envelope = Envelope {
            from: String::new(),
            to,
            payload,
        };
        let Some(holder) = self.env.registry.holder(&envelope.to) else {
            if let Some(relay) = &self.env.relay {
                Arc::clone(relay)
                    .route(envelope, None, tokio::sync::oneshot::channel().0)
                    .await;
            }
            return;
        };
        // No sender to bounce to: a closed channel drops the bounce.
        let (sender, _) = tokio::sync::mpsc::channel(1);
        let delivery = Delivery::Routed {
            envelope: Box::new(envelope),
            sender,
        };
        let _ = tokio::time::timeout(self.limits.route_wait, holder.mailbox.send(delivery)).await;
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
