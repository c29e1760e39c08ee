//! The on-disk cache of compiled modules, so that a restart or a reload of
//! a module compiled before takes milliseconds instead of a compilation.
//!
//! Entries are keyed by the module's digest and by the engine's
//! compatibility hash (wasmtime version and code-generation settings), so an
//! entry is only ever loaded by an engine that could have written it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of components compiled ahead of time.
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    /// Uses (and creates) `dir` for components compiled by `engine`.
    pub fn new(dir: &Path, engine: &Engine) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating compile cache {}", dir.display()))?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    /// The component for `bytes` (whose digest is `digest`): loaded from the
    /// cache when present, else compiled and stored. Says whether it was a hit.
    pub fn component(&self, engine: &Engine, bytes: &[u8], digest: &str) -> Result<(Component, bool)> {
        let entry = self.dir.join(format!("{digest}-{}.cwasm", self.engine_key));
        if entry.exists() {
            // SAFETY: the cache directory holds only what `store` below wrote
            // with an engine of the same compatibility hash; it is as trusted
            // as the `ej` binary. A corrupt entry fails wasmtime's checks and
            // is replaced.
            match unsafe { Component::deserialize_file(engine, &entry) } {
                Ok(component) => return Ok((component, true)),
                Err(error) => tracing::warn!(entry = %entry.display(), %error, "discarding a bad compile cache entry"),
            }
        }
        let compiled = say_if_slow(digest, || engine.precompile_component(bytes))
            .map_err(anyhow::Error::from)
            .context("compiling the component")?;
        self.store(&entry, &compiled);
        // SAFETY: these bytes were just produced by `engine` itself.
        let component = unsafe { Component::deserialize(engine, &compiled) }.map_err(anyhow::Error::from)?;
        Ok((component, false))
    }

    /// Writes an entry atomically (write, then rename), so a reader never
    /// sees half of one. A cache that cannot be written only costs time.
    fn store(&self, entry: &Path, compiled: &[u8]) {
        let partial = entry.with_extension(format!("partial-{}", std::process::id()));
        let written = std::fs::write(&partial, compiled).and_then(|()| std::fs::rename(&partial, entry));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&partial);
            tracing::warn!(entry = %entry.display(), %error, "cannot write the compile cache");
        }
    }
}

/// How long a compilation may run before the log says what is going on.
const A_MOMENT: Duration = Duration::from_secs(1);

/// Runs `compile`, and says in the log that module `digest` is being
/// compiled if that takes longer than a moment (interpreters compiled to
/// wasm take seconds; a small Rust handler a fraction of one).
fn say_if_slow<T>(digest: &str, compile: impl FnOnce() -> T) -> T {
    let (done, finished) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            if finished.recv_timeout(A_MOMENT) == Err(mpsc::RecvTimeoutError::Timeout) {
                tracing::info!(
                    digest,
                    "compiling (the first time for this build: it takes a while; \
                     later loads come from the compile cache)"
                );
            }
        });
        let result = compile();
        drop(done);
        result
    })
}
