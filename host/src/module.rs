//! A handler module: a component file loaded, checked against the ej world
//! and pre-linked once, so that each event only creates a store and an
//! instance.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, types::ComponentItem};
use wasmtime::{Engine, Precompiled};

use crate::bindings::{HandlerPre, ModuleInfo};
use crate::crash::now_ms;
use crate::sandbox::{EventCtx, Sandbox};

/// A loaded, checked, pre-linked handler module.
pub struct Module {
    path: PathBuf,
    info: ModuleInfo,
    component: Component,
    pre: HandlerPre<EventCtx>,
}

impl Module {
    /// Loads a component (`.wasm`) or a component compiled by `ej compile`
    /// (`.cwasm`), and checks that it fits the ej world.
    pub fn load(sandbox: &Sandbox, path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_bytes(sandbox, path, &bytes)
    }

    /// Like `load`, for bytes already read from `path`.
    pub fn from_bytes(sandbox: &Sandbox, path: &Path, bytes: &[u8]) -> Result<Self> {
        Self::with_digest(sandbox, path, bytes, digest(bytes))
    }

    /// Like `from_bytes`, with `digest(bytes)` already known.
    pub fn with_digest(sandbox: &Sandbox, path: &Path, bytes: &[u8], digest: String) -> Result<Self> {
        let component = compile(sandbox, bytes, &digest)?;
        let instance_pre = sandbox
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| misfit(&component, sandbox.engine(), &e.into()))?;
        let pre = HandlerPre::new(instance_pre).map_err(|e| anyhow::anyhow!("does not fit the ej world: {e:#}"))?;
        Ok(Self {
            path: path.to_path_buf(),
            info: ModuleInfo {
                digest,
                loaded_at_ms: now_ms(),
            },
            component,
            pre,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The digest and load time the guest sees in its `connection` record.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// The pre-linked component: each instance of it is one event's.
    pub fn pre(&self) -> &HandlerPre<EventCtx> {
        &self.pre
    }

    /// What the component imports and exports, one `kind name` line each.
    pub fn describe(&self, engine: &Engine) -> Vec<String> {
        let ty = self.component.component_type();
        let imports = ty
            .imports(engine)
            .map(|(name, item)| format!("import {} {name}", item_kind(&item.ty)));
        let exports = ty
            .exports(engine)
            .map(|(name, item)| format!("export {} {name}", item_kind(&item.ty)));
        imports.chain(exports).collect()
    }
}

/// Compiles a component (through the sandbox's compile cache, if it has
/// one), or loads one compiled ahead of time, with a clear one-line reason
/// when the bytes are neither.
fn compile(sandbox: &Sandbox, bytes: &[u8], digest: &str) -> Result<Component> {
    let engine = sandbox.engine();
    match Engine::detect_precompiled(bytes) {
        // SAFETY: `.cwasm` files are produced by `ej compile` and trusted by
        // the operator like the `ej` binary itself; wasmtime still checks
        // that they were compiled by this version with this configuration.
        Some(Precompiled::Component) => unsafe { Component::deserialize(engine, bytes) }
            .map_err(anyhow::Error::from)
            .context("loading a precompiled component (recompile it with this `ej compile`)"),
        Some(Precompiled::Module) => {
            bail!("a precompiled core module, not a component: compile the component with `ej compile`")
        }
        None => {
            ensure_component(bytes)?;
            match sandbox.compile_cache() {
                Some(cache) => {
                    let (component, hit) = cache.component(engine, bytes, digest)?;
                    tracing::debug!(digest, hit, "compile cache");
                    Ok(component)
                }
                None => Component::new(engine, bytes)
                    .map_err(anyhow::Error::from)
                    .context("compiling the component"),
            }
        }
    }
}

/// Compiles a component ahead of time, for `Module::load` to deserialize.
pub fn precompile(engine: &Engine, bytes: &[u8]) -> Result<Vec<u8>> {
    ensure_component(bytes)?;
    engine
        .precompile_component(bytes)
        .map_err(anyhow::Error::from)
        .context("compiling the component")
}

/// Refuses anything but a component binary, saying what it is instead.
fn ensure_component(bytes: &[u8]) -> Result<()> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 0x01, 0]) => Ok(()),
        // A module built for WASI preview 1 (what wasi-sdk's clang and
        // wasm32-wasip1 make) needs the preview 1 adapter to become one.
        Some([0, b'a', b's', b'm', _, _, 0, 0]) if contains(bytes, b"wasi_snapshot_preview1") => bail!(
            "a core wasm module importing wasi_snapshot_preview1, not a component: build for wasm32-wasip2, \
             or wrap it with `wasm-tools component new MODULE.wasm --adapt wasi_snapshot_preview1.reactor.wasm \
             -o handler.wasm` (the adapter is published with each wasmtime release)"
        ),
        // What wasm32-unknown-unknown makes with its default linker.
        Some([0, b'a', b's', b'm', _, _, 0, 0]) => bail!(
            "a core wasm module, not a component: link it with Rust's `wasm-component-ld` \
             (`linker = \"wasm-component-ld\"` for the target in .cargo/config.toml), or wrap it with \
             `wasm-tools component new`"
        ),
        _ if Engine::detect_precompiled(bytes).is_some() => bail!("already compiled ahead of time"),
        _ => bail!("not a WebAssembly component (no wasm header)"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// Lower-case hex SHA-256 of a module file: the module's identity.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The interfaces a handler may import, by package: the ej world's, and
/// the WASI 0.2 ones the sandbox links (through which nothing is granted).
const PROVIDED_PACKAGES: &[&str] = &[
    "ej:handler/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
];

/// Why a component does not link: which of its imports ej does not
/// provide, when that is the reason (say, `wasi:http` from a JavaScript
/// handler built with componentize-js's default features), else wasmtime's
/// own reason.
fn misfit(component: &Component, engine: &Engine, error: &anyhow::Error) -> anyhow::Error {
    let foreign: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| !PROVIDED_PACKAGES.iter().any(|package| name.starts_with(package)))
        .map(|name| format!("`{name}`"))
        .collect();
    if foreign.is_empty() {
        return anyhow::anyhow!("does not fit the ej world: {error:#}");
    }
    anyhow::anyhow!(
        "does not fit the ej world: it imports {}, which ej does not provide \
         (a handler gets the ej:handler imports and WASI 0.2 with nothing granted)",
        foreign.join(", ")
    )
}

fn item_kind(item: &ComponentItem) -> &'static str {
    match item {
        ComponentItem::ComponentFunc(_) => "func",
        ComponentItem::CoreFunc(_) => "core-func",
        ComponentItem::Module(_) => "module",
        ComponentItem::Component(_) => "component",
        ComponentItem::ComponentInstance(_) => "instance",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    }
}
