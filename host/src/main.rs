//! The `ej` binary: parses the command line and runs the command.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Parser;
use tokio::sync::watch;

use ej::admin::{self, AdminAddr, AdminEndpoint, Served};
use ej::admission::Admission;
use ej::cli::{CertCommand, Cli, Command, LogFormat, Serve, StoreArgs};
use ej::cluster::Cluster;
use ej::cluster::relay::{Relay, RelayLimits};
use ej::crash::CrashLog;
use ej::db::InUse;
use ej::holds::Holds;
use ej::imports::Env;
use ej::limits::SandboxLimits;
use ej::module::{Module, precompile};
use ej::registry::Registry;
use ej::sandbox::Sandbox;
use ej::scaffold::Lang;
use ej::server::Server;
use ej::service::Service;
use ej::store_ops::{StoreOp, StoreReply, execute, hex};
use ej::tls::{CertPaths, Certificates, Tls, local_pair, write_self_signed};
use ej::watch::{Watched, Watcher};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(serve) => serve_until_signalled(*serve),
        Command::Check { module, cache_dir } => {
            init_logging(LogFormat::Text);
            check(&module, &ej::cli::cache_dir(cache_dir))
        }
        Command::Reload { admin, all_nodes } => {
            admin_command(&admin, if all_nodes { "reload all-nodes" } else { "reload" })
        }
        Command::Status { admin } => admin_command(&admin, "status"),
        Command::Store {
            store: location,
            admin,
            op,
        } => store(&location, &admin, &op),
        Command::Compile { module, output } => compile(&module, &output),
        Command::Cert(command) => cert(command),
        Command::Wit { out } => wit(out.as_deref()),
        Command::New { name, lang, dir } => new(&name, lang, dir),
        Command::Talk { addr, text, quiet } => ej::talk::talk(&addr, &text, quiet),
        Command::Command { admin, stdin, words } => operator_command(&admin, stdin, words),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ej: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve_until_signalled(args: Serve) -> Result<()> {
    init_logging(args.log_format);
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Serve) -> Result<()> {
    let listeners = args.listeners().map_err(anyhow::Error::msg)?;
    let sandbox = Arc::new(Sandbox::new(args.limits.sandbox())?.with_compile_cache(&args.cache_dir())?);
    // Modules first: one that does not load is refused before anything is
    // written (the store, a certificate).
    let mut modules: Vec<Module> = Vec::new();
    for (_, path, _) in &listeners {
        if !modules.iter().any(|module| module.path() == path) {
            let module = Module::load(&sandbox, path).with_context(|| format!("{}", path.display()))?;
            tracing::info!(module = %path.display(), digest = %module.info().digest, "module loaded");
            modules.push(module);
        }
    }
    let db = Arc::new(args.store.open().await?);
    let registry = Arc::new(Registry::default());
    let cluster = args
        .store
        .join(args.max_connections as usize * args.limits.max_addresses)
        .await?;
    let (relay, asked) = match (&args.cluster, &cluster) {
        (Some(url), Some(cluster)) => {
            let limits = RelayLimits {
                route_wait: args.limits.route_wait,
                timeout: args.cluster_timeout,
                queue: args.cluster_queue,
            };
            let (relay, asked) = Relay::connect(url, Arc::clone(cluster), Arc::clone(&registry), limits).await?;
            (Some(relay), Some(asked))
        }
        _ => (None, None),
    };
    let env = Env {
        db,
        registry,
        holds: Arc::new(Holds::new(args.limits.max_held)),
        cluster,
        relay,
    };
    let crash_log = Arc::new(match &args.crash_log {
        Some(path) => CrashLog::file(path)?,
        None => CrashLog::stderr(),
    });
    let mut pairs = args.tls.pairs().map_err(anyhow::Error::msg)?;
    if pairs.is_empty() {
        pairs.push(local_pair(&args.store.data_dir)?);
    }
    let tls = Arc::new(Tls {
        certificates: Certificates::load(pairs, args.tls.tls_sessions)?,
        handshake_timeout: args.tls.tls_handshake_timeout,
    });

    // One service per module file: listeners sharing a file share its swaps.
    let services: Vec<Arc<Service>> = modules
        .into_iter()
        .map(|module| {
            Arc::new(Service::new(
                Arc::clone(&sandbox),
                env.clone(),
                module,
                args.limits.connection(args.on_fault),
                Arc::clone(&crash_log),
                Arc::clone(&tls),
            ))
        })
        .collect();
    let admission = Admission::new(args.max_connections, args.max_connections_per_ip);
    let mut bound = Vec::new();
    for (addr, path, encryption) in listeners {
        let service = services
            .iter()
            .find(|service| service.path() == path)
            .expect("loaded above");
        bound.push(Server::bind(addr, Arc::clone(service), encryption, Arc::clone(&admission)).await?);
    }

    let (stop, stopped) = watch::channel(false);
    if let Some(addr) = args.metrics {
        let bound = ej::metrics::serve(addr).await?;
        tracing::info!(%bound, "metrics");
    }
    let admin = AdminEndpoint::bind(&args.admin).await?;
    let served = Arc::new(Served {
        services: services.clone(),
        db: Arc::clone(&env.db),
        tls: Arc::clone(&tls),
        cluster: env.cluster.clone(),
        relay: env.relay.clone(),
    });
    if let Some(asked) = asked {
        tokio::spawn(ej::admin::answer_other_nodes(asked, Arc::clone(&served)));
    }
    let admin = tokio::spawn(admin.run(served, stopped.clone()));
    let _watcher = if args.watch {
        let mut watched: Vec<Watched> = services.iter().cloned().map(Watched::Module).collect();
        watched.push(Watched::Certificates(Arc::clone(&tls)));
        Some(Watcher::start(watched)?)
    } else {
        None
    };
    let mut servers = Vec::new();
    for server in bound {
        let addr = server.local_addr()?;
        // A line on stdout, for scripts and tests to wait on.
        println!("ej listening on {addr}");
        tracing::info!(%addr, "listening");
        servers.push(tokio::spawn(server.run(stopped.clone())));
    }

    let lost = wait_for_stop(&services, &tls, env.cluster.as_deref()).await?;
    tracing::info!("shutting down: no new connections; closing streams");
    let _ = stop.send(true);
    for server in servers {
        server.await??;
    }
    admin.await?;
    if let Some(cluster) = &env.cluster {
        cluster.leave().await;
    }
    match lost {
        Stop::Asked => Ok(()),
        Stop::LostCluster => anyhow::bail!("this node lost its place in the cluster (see the log): it stopped serving"),
    }
}

/// Why a server stops.
enum Stop {
    /// SIGINT or SIGTERM.
    Asked,
    /// The node could not stay in its cluster (see `cluster`).
    LostCluster,
}

/// Returns on SIGINT or SIGTERM, or when the node lost its place in its
/// cluster; reloads every module and the certificates on SIGHUP.
async fn wait_for_stop(services: &[Arc<Service>], tls: &Tls, cluster: Option<&Cluster>) -> Result<Stop> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let lost = async {
        match cluster {
            Some(cluster) => cluster.lost().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(lost);
    loop {
        tokio::select! {
            result = tokio::signal::ctrl_c() => return result.map(|()| Stop::Asked).map_err(Into::into),
            _ = terminate.recv() => return Ok(Stop::Asked),
            () = &mut lost => return Ok(Stop::LostCluster),
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading modules and certificates");
                for service in services {
                    // A rejected module is logged and the old one keeps serving.
                    let _ = service.reload_and_log().await;
                }
                let _ = tls.certificates.reload_and_log();
            }
        }
    }
}

fn admin_command(addr: &AdminAddr, command: &str) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let lines = runtime.block_on(admin::request(addr, command))?;
    for line in &lines {
        println!("{line}");
    }
    if lines.iter().any(|line| line.starts_with("error ")) {
        anyhow::bail!("{command} failed");
    }
    Ok(())
}

/// `ej command`: the words (and a line of stdin) go hex-encoded to the
/// admin endpoint; the handler's answer comes back the same way.
fn operator_command(addr: &AdminAddr, stdin: bool, mut words: Vec<String>) -> Result<()> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("reading stdin")?;
        words.push(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let text = words.join(" ");
    let hexed = hex(text.as_bytes());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let lines = runtime.block_on(admin::request(addr, &format!("command {hexed}")))?;
    for line in &lines {
        if let Some(error) = line.strip_prefix("error - ") {
            anyhow::bail!("{error}");
        }
        if let Some(said) = line.strip_prefix("say ") {
            println!("{}", ej::store_ops::text(said)?);
        }
    }
    Ok(())
}

/// `ej store`: on the store itself if no server has it open, else through
/// the server's admin endpoint.
fn store(location: &StoreArgs, admin: &AdminAddr, op: &StoreOp) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let reply = runtime.block_on(async {
        match location.open().await {
            Ok(db) => execute(&db, op).await,
            Err(error) if error.downcast_ref::<InUse>().is_some() => {
                let lines = admin::request(admin, &op.to_command()).await?;
                if let Some(error) = lines.iter().find(|line| line.starts_with("error ")) {
                    anyhow::bail!("{error}");
                }
                StoreReply::from_lines(&lines)
            }
            Err(error) => Err(error),
        }
    })?;
    match reply {
        StoreReply::Value(Some(value)) => println!("{}", String::from_utf8_lossy(&value)),
        StoreReply::Value(None) => anyhow::bail!("no such key"),
        StoreReply::Done => {}
        StoreReply::Entries(entries) => {
            for (key, value) in entries {
                println!("{key}\t{}", String::from_utf8_lossy(&value));
            }
        }
    }
    Ok(())
}

fn check(path: &std::path::Path, cache_dir: &std::path::Path) -> Result<()> {
    // The engine `serve` has with the default limits, and its cache: a
    // module checked once then starts without compiling.
    let sandbox = Sandbox::new(SandboxLimits::default())?.with_compile_cache(cache_dir)?;
    let module = Module::load(&sandbox, path).with_context(|| format!("{}", path.display()))?;
    println!(
        "{}: fits the ej world (digest {})",
        path.display(),
        module.info().digest
    );
    for line in module.describe(sandbox.engine()) {
        println!("  {line}");
    }
    Ok(())
}

/// `ej wit`.
fn wit(out: Option<&std::path::Path>) -> Result<()> {
    match out {
        None => print!("{}", ej::bindings::WIT),
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("handler.wit");
            std::fs::write(&path, ej::bindings::WIT).with_context(|| format!("writing {}", path.display()))?;
            println!("{}", path.display());
        }
    }
    Ok(())
}

/// `ej new`.
fn new(name: &str, lang: Lang, dir: Option<std::path::PathBuf>) -> Result<()> {
    let dir = dir.unwrap_or_else(|| name.into());
    ej::scaffold::create(&dir, name, lang)?;
    println!("{}: a {lang:?} handler; build it with", dir.display());
    println!("  cd {} && {}", dir.display(), lang.build_command());
    println!("then serve {} (see its README.md)", lang.module(name));
    Ok(())
}

/// `ej cert new`.
fn cert(command: CertCommand) -> Result<()> {
    let CertCommand::New {
        domain,
        cert,
        key,
        force,
    } = command;
    let paths = CertPaths {
        cert: cert.unwrap_or_else(|| format!("{}.crt", domain[0]).into()),
        key: key.unwrap_or_else(|| format!("{}.key", domain[0]).into()),
    };
    for path in [&paths.cert, &paths.key] {
        if path.exists() && !force {
            anyhow::bail!("{} exists (give --force to replace it)", path.display());
        }
    }
    write_self_signed(&domain, &paths)?;
    println!(
        "{} and {}: self-signed for {}",
        paths.cert.display(),
        paths.key.display(),
        domain.join(", ")
    );
    Ok(())
}

fn compile(path: &std::path::Path, output: &std::path::Path) -> Result<()> {
    let sandbox = Sandbox::new(SandboxLimits::default())?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let compiled = precompile(sandbox.engine(), &bytes).with_context(|| format!("{}", path.display()))?;
    // Check the very code `serve` will load: a module that does not fit is
    // refused here rather than at start-up.
    Module::from_bytes(&sandbox, output, &compiled).with_context(|| format!("{}", path.display()))?;
    std::fs::write(output, compiled).with_context(|| format!("writing {}", output.display()))?;
    println!("{} -> {}", path.display(), output.display());
    Ok(())
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal, never into a file or a pipe, and never
    // when NO_COLOR is set.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
