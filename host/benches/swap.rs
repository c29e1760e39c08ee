//! How long a hot swap takes: from the moment a new build of the handler is
//! written over the module file to the first reply from an event that ran on
//! it, with the real `Server` and the echo handler, one client connection.
//!
//! - `reload_warm` / `reload_cold`: the file is replaced (written and
//!   renamed over, as deploy tools do), a reload is asked for (what SIGHUP
//!   and `ej reload` do), then the client sends one stanza. Warm: the build
//!   is already in the compile cache. Cold: a build never seen, compiled.
//! - `watch_warm` / `watch_cold`: the same with `--watch`'s watcher and no
//!   reload asked for; the client sends stanza after stanza until a reply
//!   comes from the new build. This includes the watcher's settle time.
//!
//! Run with `cargo bench -p ej --bench swap` after `cargo xtask guests`.

mod common;
#[path = "../../tests/common/variant.rs"]
mod variant;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use ej::limits::SandboxLimits;
use ej::module;
use ej::sandbox::Sandbox;
use ej::service::Reload;
use ej::watch::{Watched, Watcher};

use common::{RunningServer, open_stream, read_until};

/// How a swap is set off.
#[derive(Clone, Copy)]
enum Trigger {
    /// A reload asked for, as SIGHUP and `ej reload` do.
    Reload,
    /// The module file's watcher, as `ej serve --watch` runs it.
    Watch,
}

/// A server with one client, and the builds to swap in.
struct Fixture {
    /// The store and the module file's directory, removed when dropped.
    _env: common::BenchEnv,
    runtime: Runtime,
    server: Option<RunningServer>,
    client: Option<TcpStream>,
    file: PathBuf,
    original: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime");
        let env = common::BenchEnv::new("swap");
        let original = std::fs::read(common::echo_module_path()).expect("reading the echo handler");
        let file = env.path("handler.wasm");
        std::fs::write(&file, &original).expect("copying the handler");
        let sandbox = Sandbox::new(SandboxLimits::default())
            .and_then(|sandbox| sandbox.with_compile_cache(&env.path("cache")))
            .expect("creating the sandbox");
        let server = runtime.block_on(RunningServer::start(&env, Arc::new(sandbox), &file));
        let client = runtime.block_on(open_stream(server.addr));
        Self {
            _env: env,
            runtime,
            server: Some(server),
            client: Some(client),
            file,
            original,
        }
    }

    fn server(&self) -> &RunningServer {
        self.server
            .as_ref()
            .expect("the server runs until the fixture is dropped")
    }

    /// One swap: from replacing the file to the first reply from the new build.
    async fn swap(&mut self, trigger: Trigger, builds: &mut variant::Builds) -> Duration {
        let build = builds.next();
        let digest = module::digest(&build);
        let start = Instant::now();
        replace(&self.file, &build);
        if let Trigger::Reload = trigger {
            let reload = self.server().service.reload().await.expect("reloading");
            assert!(matches!(reload, Reload::Swapped(_)), "the module was swapped");
        }
        let client = self.client.as_mut().expect("the client is open");
        while serving_digest(client).await != digest {}
        start.elapsed()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let (Some(server), Some(client)) = (self.server.take(), self.client.take()) {
            self.runtime.block_on(server.stop([client]));
        }
    }
}

/// Replaces `path` the way deploy tools do: writes a new file, renames it over.
fn replace(path: &Path, bytes: &[u8]) {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).expect("writing the new build");
    std::fs::rename(&partial, path).expect("renaming it over the module file");
}

/// Asks echo which build answers: `<module/>` → `<module n='N' digest='D'/>`.
async fn serving_digest(client: &mut TcpStream) -> String {
    client.write_all(b"<module/>").await.expect("asking for the module");
    let reply = read_until(client, b"'/>").await;
    let reply = String::from_utf8(reply).expect("a UTF-8 reply");
    let (_, digest) = reply.split_once("digest='").expect("a digest in the reply");
    digest.trim_end_matches("'/>").to_owned()
}

fn swap(c: &mut Criterion) {
    let mut fx = Fixture::new();
    let mut group = c.benchmark_group("swap");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for (name, trigger, cold) in [
        ("reload_warm", Trigger::Reload, false),
        ("reload_cold", Trigger::Reload, true),
        ("watch_warm", Trigger::Watch, false),
        ("watch_cold", Trigger::Watch, true),
    ] {
        let watcher = matches!(trigger, Trigger::Watch).then(|| {
            let service = Arc::clone(&fx.server().service);
            let _entered = fx.runtime.enter();
            Watcher::start(vec![Watched::Module(service)]).expect("watching the module file")
        });
        // Warm: two builds taking turns (neither is the original); cold: a new one each time.
        let mut builds = variant::Builds::new(fx.original.clone(), cold);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let runtime = fx.runtime.handle().clone();
                    total += runtime.block_on(fx.swap(trigger, &mut builds));
                }
                total
            });
        });
        drop(watcher);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(5);
    targets = swap
}
criterion_main!(benches);
