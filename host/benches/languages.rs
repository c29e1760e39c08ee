//! The echo handler in each language (Rust, C, JavaScript, Python), side by
//! side in one run: what one event costs, and what the module weighs.
//!
//! - `LANG/event`: `Sandbox::handle` with the same 1 KiB `<message/>` stanza
//!   and the same 256-byte state for every language: ej's real per-event
//!   path (pooling allocator, copy-on-write memory images, a fresh instance
//!   and a fresh WASI context per event).
//! - `LANG/on-demand`: the same fresh instance and call in a plain wasmtime
//!   engine with the default on-demand allocator, for comparison: what the
//!   pooling allocator saves.
//!
//! Before the benchmarks, one line per language gives the module's size,
//! the time to compile it, and the time to load it again from ej's compile
//! cache (what a restart or a reload pays).
//!
//! The modules are the ones `cargo xtask guests` builds into
//! `target/guests/`; a language whose module is missing is skipped with a
//! message. Run with `cargo bench -p ej --bench languages` after
//! `cargo xtask guests`, or `cargo xtask bench`.

mod common;

use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use ej::bindings::{Connection, Event, HandlerPre};
use ej::limits::SandboxLimits;
use ej::module::Module;
use ej::sandbox::Sandbox;

/// Each language's echo: `(benchmark name, module in target/guests/)`.
const LANGUAGES: &[(&str, &str)] = &[
    ("rust", "echo"),
    // The same Rust echo built for wasm32-wasip2 (the one above has no WASI).
    ("rust-wasi", "echo-wasi"),
    ("c", "echo-c"),
    ("javascript", "echo-js"),
    ("python", "echo-py"),
];

/// Size of the stanza every handler is handed.
const STANZA_BYTES: usize = 1024;
/// Size of the state every handler is handed (the same JSON in each).
const STATE_BYTES: usize = 256;

/// What an on-demand instance's store holds: WASI with nothing granted.
struct PlainCtx {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for PlainCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A plain wasmtime engine: the default on-demand instance allocator.
struct OnDemand {
    engine: Engine,
    linker: Linker<PlainCtx>,
}

impl OnDemand {
    fn new() -> Self {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).expect("creating the on-demand engine");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("linking WASI");
        stub_ej_imports(&mut linker).expect("linking the ej imports");
        Self { engine, linker }
    }

    fn pre(&self, bytes: &[u8]) -> HandlerPre<PlainCtx> {
        let component = Component::new(&self.engine, bytes).expect("compiling for the on-demand engine");
        HandlerPre::new(self.linker.instantiate_pre(&component).expect("linking")).expect("the handler world")
    }

    /// A store as the sandbox makes one: a fresh WASI context, output
    /// captured.
    fn store(&self) -> Store<PlainCtx> {
        let output = MemoryOutputPipe::new(16 * 1024);
        let wasi = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        Store::new(
            &self.engine,
            PlainCtx {
                wasi,
                table: ResourceTable::new(),
            },
        )
    }
}

/// The store, registry and output imports, empty: echo never calls them.
fn stub_ej_imports(linker: &mut Linker<PlainCtx>) -> wasmtime::Result<()> {
    type Entries = Vec<(String, Vec<u8>)>;
    let mut store = linker.instance("ej:handler/store@0.1.0")?;
    store.func_wrap("get", |_, (_key,): (String,)| Ok((None::<Vec<u8>>,)))?;
    store.func_wrap("put", |_, (_key, _value): (String, Vec<u8>)| Ok(()))?;
    store.func_wrap("delete", |_, (_key,): (String,)| Ok(()))?;
    store.func_wrap("scan", |_, (_prefix, _limit): (String, u32)| Ok((Entries::new(),)))?;
    let mut registry = linker.instance("ej:handler/registry@0.1.0")?;
    registry.func_wrap("lookup", |_, (_prefix, _limit): (String, u32)| {
        Ok((Vec::<String>::new(),))
    })?;
    let mut output = linker.instance("ej:handler/output@0.1.0")?;
    output.func_wrap("write", |_, (_text,): (String,)| Ok(()))?;
    Ok(())
}

/// One language's echo, loaded both ways, with the state and stanza it is
/// handed.
struct Language {
    name: &'static str,
    module: Module,
    on_demand: HandlerPre<PlainCtx>,
    conn: Connection,
    state: Vec<u8>,
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    sandbox: Sandbox,
    env: common::BenchEnv,
    on_demand: OnDemand,
    stanza: Event,
    languages: Vec<Language>,
}

impl Fixture {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime");
        let cache = common::target_dir().join("tmp/ej-bench-compile-cache");
        let sandbox = Sandbox::new(SandboxLimits::default())
            .and_then(|sandbox| sandbox.with_compile_cache(&cache))
            .expect("creating the sandbox");
        let mut fixture = Self {
            runtime,
            sandbox,
            env: common::BenchEnv::new("languages"),
            on_demand: OnDemand::new(),
            stanza: Event::Stanza(common::message(STANZA_BYTES, " xmlns='jabber:client'")),
            languages: Vec::new(),
        };
        eprintln!("language     module size   compile   load from cache");
        for &(name, file) in LANGUAGES {
            let Some(path) = common::built_module_path(file) else {
                continue;
            };
            let language = fixture.load(name, &path, &cache);
            fixture.languages.push(language);
        }
        // Every language keeps the same state, byte for byte.
        if let Some(first) = fixture.languages.first() {
            for language in &fixture.languages {
                assert_eq!(
                    String::from_utf8_lossy(&language.state),
                    String::from_utf8_lossy(&first.state),
                    "{} keeps another state than {}",
                    language.name,
                    first.name
                );
            }
        }
        fixture
    }

    /// Loads a module, timing its compilation (compile cache emptied) and
    /// its load from the compile cache, and checks that it echoes.
    fn load(&self, name: &'static str, path: &Path, cache: &Path) -> Language {
        let bytes = std::fs::read(path).expect("reading the module");
        let _ = std::fs::remove_dir_all(cache);
        let cold = Sandbox::new(SandboxLimits::default())
            .and_then(|sandbox| sandbox.with_compile_cache(cache))
            .expect("creating a sandbox");
        let start = Instant::now();
        drop(Module::load(&cold, path).expect("compiling the module"));
        let compile = start.elapsed();
        let start = Instant::now();
        let module = Module::load(&self.sandbox, path).expect("loading the module from the cache");
        let load = start.elapsed();
        eprintln!(
            "{name:<12} {:>8.1} KiB  {:>7.2} s  {:>9.1} ms",
            bytes.len() as f64 / 1024.0,
            compile.as_secs_f64(),
            load.as_secs_f64() * 1e3
        );
        let conn = common::connection(&module);
        let mut language = Language {
            name,
            on_demand: self.on_demand.pre(&bytes),
            module,
            conn,
            state: Vec::new(),
        };
        language.state = self.realistic_state(&language);
        let completed = self
            .runtime
            .block_on(self.sandbox.handle(
                &language.module,
                &language.conn,
                &language.state,
                &self.stanza,
                &self.env.env,
            ))
            .unwrap_or_else(|fault| panic!("{name} fails the stanza: {fault:?}"));
        assert_eq!(completed.outcome.actions.len(), 1, "{name} echo answers with one send");
        language
    }

    /// The state echo returns for a `stream-open` whose `to` domain is long
    /// enough to make it `STATE_BYTES` bytes.
    fn realistic_state(&self, language: &Language) -> Vec<u8> {
        let open = |domain_len: usize| {
            let domain: String = "xmpp.eu-west.cluster.example.net."
                .chars()
                .cycle()
                .take(domain_len)
                .collect();
            let event = Event::StreamOpen(common::stream_tag(&domain));
            self.runtime
                .block_on(
                    self.sandbox
                        .handle(&language.module, &language.conn, &[], &event, &self.env.env),
                )
                .unwrap_or_else(|fault| panic!("{} fails the stream-open: {fault:?}", language.name))
                .outcome
                .state
        };
        let probe = open(100).len();
        let state = open(100 + STATE_BYTES - probe);
        assert_eq!(state.len(), STATE_BYTES, "{} echo state size", language.name);
        state
    }
}

fn languages(c: &mut Criterion) {
    let fx = Fixture::new();
    let mut group = c.benchmark_group("languages");
    for language in &fx.languages {
        group.bench_function(format!("{}/event", language.name), |b| {
            b.iter_custom(|iters| {
                common::time_each(&fx.runtime, iters, || async {
                    fx.sandbox
                        .handle(
                            &language.module,
                            &language.conn,
                            &language.state,
                            &fx.stanza,
                            &fx.env.env,
                        )
                        .await
                        .expect("handling the stanza")
                })
            });
        });

        group.bench_function(format!("{}/on-demand", language.name), |b| {
            b.iter_custom(|iters| {
                common::time_each(&fx.runtime, iters, || async {
                    let mut store = fx.on_demand.store();
                    let handler = language
                        .on_demand
                        .instantiate_async(&mut store)
                        .await
                        .expect("instantiating");
                    handler
                        .call_handle(&mut store, &language.conn, &language.state, &fx.stanza)
                        .await
                        .expect("calling handle")
                        .expect("handling the stanza")
                })
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(3);
    targets = languages
}
criterion_main!(benches);
