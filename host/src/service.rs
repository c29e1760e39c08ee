//! What one listener serves: a handler module, the sandbox it runs in, the
//! limits of its connections, and where its crash reports go.

use std::sync::{Arc, RwLock};

use crate::crash::CrashLog;
use crate::limits::ConnectionLimits;
use crate::module::Module;
use crate::sandbox::Sandbox;

/// Everything a session needs from the server, shared by its sessions.
pub struct Service {
    pub sandbox: Arc<Sandbox>,
    pub limits: ConnectionLimits,
    pub crash_log: Arc<CrashLog>,
    module: RwLock<Arc<Module>>,
}

impl Service {
    pub fn new(sandbox: Arc<Sandbox>, module: Module, limits: ConnectionLimits, crash_log: Arc<CrashLog>) -> Self {
        Self {
            sandbox,
            limits,
            crash_log,
            module: RwLock::new(Arc::new(module)),
        }
    }

    /// The module the next event runs on.
    pub fn module(&self) -> Arc<Module> {
        Arc::clone(&self.module.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}
