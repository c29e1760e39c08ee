//! The sandbox: one wasmtime `Engine` tuned for a fresh instance per event,
//! and the code that runs one event in one fresh instance.
//!
//! Every event gets a new `Store` and a new instance from the module's
//! pre-linked `InstancePre`; both are dropped when the event ends, so nothing
//! a guest keeps in its own memory survives it. Guests run on the async
//! executor and yield at every epoch tick, so a guest that spins only ever
//! holds a worker thread for one tick at a time until its deadline.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, Trap,
    UpdateDeadline, WasmBacktrace,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::{Connection, Event, Handler, Outcome};
use crate::cache::CompileCache;
use crate::db::Transaction;
use crate::fault::{Fault, FaultKind};
use crate::imports::{Env, EventImports, ImportLimits};
use crate::limits::SandboxLimits;
use crate::module::Module;

/// How often the epoch ticks: the longest a guest runs without yielding.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Core instances, memories and tables one component may hold. Generous for
/// components that carry a whole interpreter, small enough to keep the pool's
/// bookkeeping modest.
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const MEMORIES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 8;

/// Bytes of a pooled memory or table kept resident between instances, so
/// the next instance reuses warm pages instead of faulting them in again.
const KEEP_RESIDENT_BYTES: usize = 2 * 1024 * 1024;

/// A successful event: its outcome, and the store transaction (what it
/// read and wrote) to commit with it.
pub struct Completed {
    pub outcome: Outcome,
    pub transaction: Transaction,
}

/// The engine and linker every module of this server shares.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<EventCtx>,
    slots: Arc<Semaphore>,
    limits: SandboxLimits,
    compile_cache: Option<CompileCache>,
}

/// The store data of one event's instance.
pub struct EventCtx {
    imports: EventImports,
    /// Made at the guest's first WASI call: most events make none (and a
    /// handler built without WASI never does), and making one draws three
    /// random seeds.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    memory: MemoryBudget,
    /// The guest's output: its stdout and stderr, and the `output` import,
    /// interleaved.
    output: MemoryOutputPipe,
}

impl WasiView for EventCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let EventCtx {
            wasi, table, output, ..
        } = self;
        // WASI with nothing granted, stdout and stderr captured.
        let ctx = wasi.get_or_insert_with(|| {
            WasiCtxBuilder::new()
                .stdout(output.clone())
                .stderr(output.clone())
                .allow_tcp(false)
                .allow_udp(false)
                .build()
        });
        WasiCtxView { ctx, table }
    }
}

/// Caps an instance's linear memory and remembers whether the cap was hit,
/// so the fault says "memory" rather than whatever the guest did next.
struct MemoryBudget {
    max_bytes: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            wasmtime::bail!("memory limit of {} bytes exceeded", self.max_bytes);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        // Table sizes are bounded by the pooling allocator's table slots.
        Ok(true)
    }
}

/// The engine configuration. Code compiled ahead of time by `ej compile`
/// only loads into an engine configured the same way.
fn engine_config(limits: &SandboxLimits) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    let instances = limits.max_instances;
    pool.total_component_instances(instances)
        .total_stacks(instances)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_core_instances(instances * CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .total_memories(instances * MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .total_tables(instances * TABLES_PER_COMPONENT)
        .max_memory_size(limits.max_memory_bytes)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .pagemap_scan(Enabled::Auto);

    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

impl Sandbox {
    /// Builds the engine and linker, and starts the epoch ticker (a thread
    /// that ends when the engine is dropped).
    pub fn new(limits: SandboxLimits) -> Result<Self> {
        let engine = Engine::new(&engine_config(&limits))
            .map_err(anyhow::Error::from)
            .context("creating the wasm engine")?;
        let mut linker: Linker<EventCtx> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        Handler::add_to_linker::<_, HasSelf<EventImports>>(&mut linker, |ctx| &mut ctx.imports)
            .map_err(anyhow::Error::from)
            .context("linking the ej imports")?;
        start_epoch_ticker(&engine)?;
        Ok(Self {
            engine,
            linker,
            slots: Arc::new(Semaphore::new(limits.max_instances as usize)),
            limits,
            compile_cache: None,
        })
    }

    /// Keeps compiled modules in `dir`, so loading a module compiled before
    /// skips compilation.
    pub fn with_compile_cache(mut self, dir: &Path) -> Result<Self> {
        self.compile_cache = Some(CompileCache::new(dir, &self.engine)?);
        Ok(self)
    }

    pub fn compile_cache(&self) -> Option<&CompileCache> {
        self.compile_cache.as_ref()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn linker(&self) -> &Linker<EventCtx> {
        &self.linker
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Runs one event in a fresh instance of `module`, with `env` behind its
    /// imports. Waits for an instance slot first; the deadline starts once
    /// the slot is held.
    pub async fn handle(
        &self,
        module: &Module,
        conn: &Connection,
        state: &[u8],
        event: &Event,
        env: &Env,
    ) -> Result<Completed, Fault> {
        let _slot = self.slots.acquire().await.expect("the slot semaphore is never closed");
        let _in_use = crate::metrics::InUse::enter();
        let mut store = self.new_store(env);

        let result = async {
            let handler = module.pre().instantiate_async(&mut store).await?;
            handler.call_handle(&mut store, conn, state, event).await
        }
        .await;

        let fault = |store: &Store<EventCtx>, kind, reason| Fault {
            kind,
            reason,
            backtrace: Vec::new(),
            output: String::from_utf8_lossy(&store.data().output.contents()).into_owned(),
        };
        match result {
            Ok(Ok(outcome)) if outcome.size() > self.limits.max_outcome_bytes => Err(fault(
                &store,
                FaultKind::OutcomeTooLarge,
                format!(
                    "outcome of {} bytes exceeds the limit of {} bytes",
                    outcome.size(),
                    self.limits.max_outcome_bytes
                ),
            )),
            Ok(Ok(outcome)) if outcome.actions.len() > self.limits.max_actions => Err(fault(
                &store,
                FaultKind::OutcomeTooLarge,
                format!(
                    "outcome of {} actions exceeds the limit of {} actions",
                    outcome.actions.len(),
                    self.limits.max_actions
                ),
            )),
            Ok(Ok(outcome)) => Ok(Completed {
                outcome,
                transaction: store.into_data().imports.into_transaction(),
            }),
            Ok(Err(message)) => Err(fault(&store, FaultKind::HandlerError, message)),
            Err(error) => {
                let kind = classify(&error, store.data().memory.exceeded);
                let reason = match kind {
                    FaultKind::Timeout => format!("event ran past its time of {:?}", self.limits.event_timeout),
                    _ => format!("{error:#}"),
                };
                Err(Fault {
                    backtrace: backtrace(&error),
                    ..fault(&store, kind, reason)
                })
            }
        }
    }

    /// A store for one event: WASI with nothing granted (made if the guest
    /// calls it), output captured, memory capped, and the event's deadline
    /// already running.
    pub fn new_store(&self, env: &Env) -> Store<EventCtx> {
        let output = MemoryOutputPipe::new(self.limits.max_output_bytes);
        let import_limits = ImportLimits {
            max_write_bytes: self.limits.max_store_write_bytes,
            max_read_bytes: self.limits.max_read_bytes,
            max_listed: self.limits.max_listed,
        };
        let ctx = EventCtx {
            imports: EventImports::new(env.clone(), import_limits, output.clone()),
            wasi: None,
            table: ResourceTable::new(),
            memory: MemoryBudget {
                max_bytes: self.limits.max_memory_bytes,
                exceeded: false,
            },
            output,
        };
        let mut store = Store::new(&self.engine, ctx);
        store.limiter(|ctx| &mut ctx.memory);
        // The budget counts the ticks at which the guest was found running,
        // not wall-clock time: an event that waited for a CPU (after a yield,
        // on a busy machine) is not charged for the wait.
        let budget = ticks(self.limits.event_timeout);
        let mut ran = 0;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            ran += 1;
            Ok(if ran >= budget {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store
    }
}

/// Epoch ticks in `time`, at least one.
fn ticks(time: Duration) -> u64 {
    (time.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64
}

fn classify(error: &wasmtime::Error, memory_exceeded: bool) -> FaultKind {
    if memory_exceeded {
        FaultKind::Memory
    } else if error.downcast_ref::<crate::db::Unreachable>().is_some() {
        FaultKind::Store
    } else if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        FaultKind::Timeout
    } else if error.downcast_ref::<Trap>().is_some() || error.downcast_ref::<WasmBacktrace>().is_some() {
        FaultKind::Trap
    } else {
        FaultKind::Instantiate
    }
}

fn backtrace(error: &wasmtime::Error) -> Vec<String> {
    error
        .downcast_ref::<WasmBacktrace>()
        .map(|trace| {
            trace
                .frames()
                .iter()
                .map(|frame| {
                    let name = frame.func_name().unwrap_or("<unknown>");
                    format!("{}!{name}", frame.module().name().unwrap_or("<module>"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn start_epoch_ticker(engine: &Engine) -> Result<()> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("ej-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .context("starting the epoch ticker thread")?;
    Ok(())
}
