//! The `ej` binary: parses the command line and runs the command.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Parser;
use tokio::sync::watch;

use ej::cli::{Cli, Command, LogFormat, Serve};
use ej::crash::CrashLog;
use ej::limits::SandboxLimits;
use ej::module::{Module, precompile};
use ej::sandbox::Sandbox;
use ej::server::Server;
use ej::service::Service;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(serve) => serve_until_signalled(serve),
        Command::Check { module } => check(&module),
        Command::Compile { module, output } => compile(&module, &output),
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
    let sandbox = Arc::new(Sandbox::new(args.limits.sandbox())?);
    let module = Module::load(&sandbox, &args.module).with_context(|| format!("{}", args.module.display()))?;
    let crash_log = Arc::new(match &args.crash_log {
        Some(path) => CrashLog::file(path)?,
        None => CrashLog::stderr(),
    });
    tracing::info!(module = %args.module.display(), digest = %module.info().digest, "module loaded");
    let service = Arc::new(Service::new(
        sandbox,
        module,
        args.limits.connection(args.on_fault),
        crash_log,
    ));

    let (stop, stopped) = watch::channel(false);
    let mut servers = Vec::new();
    for addr in &args.listen {
        let server = Server::bind(*addr, Arc::clone(&service), args.max_connections).await?;
        let addr = server.local_addr()?;
        // A line on stdout, for scripts and tests to wait on.
        println!("ej listening on {addr}");
        tracing::info!(%addr, "listening");
        servers.push(tokio::spawn(server.run(stopped.clone())));
    }

    wait_for_signal().await?;
    tracing::info!("shutting down: no new connections; closing streams");
    let _ = stop.send(true);
    for server in servers {
        server.await??;
    }
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

fn check(path: &std::path::Path) -> Result<()> {
    let sandbox = Sandbox::new(SandboxLimits::default())?;
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
