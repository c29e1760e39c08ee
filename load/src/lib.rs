//! `ej-load`: an XMPP load generator. It logs in N users over real XMPP
//! (SASL SCRAM over plain TCP, or after STARTTLS), has them exchange chat messages addressed
//! to bare JIDs at a target aggregate rate (open loop) or flat out, and
//! reports logins/s, messages sent and delivered per second, delivery
//! latency, errors and losses, and the server's CPU time and memory read
//! from `/proc`.
//!
//! Modules: [`client`] (one user's XMPP state machine), [`scram`] (the
//! SASL mechanism), [`xml`] (cutting the stream into elements), [`stats`]
//! (counters and histograms), [`proc`] (reading the server's process),
//! [`report`] (what a run found, as a table and as JSON).

pub mod client;
pub mod proc;
pub mod report;
pub mod scram;
pub mod stats;
pub mod xml;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::client::{LoginConfig, Phase, Plan, Shared};
use crate::report::{Progress, Report, ServerReadings};
use crate::stats::Stats;

/// What to run, from the command line.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "ej-load",
    version,
    about = "Load an XMPP server with real clients exchanging chat messages"
)]
pub struct Options {
    /// The server's client-to-server address; given more than once (the
    /// nodes of a cluster), users connect to each in turn.
    #[arg(long, default_value = "127.0.0.1:5222")]
    pub addr: Vec<String>,
    /// The XMPP domain the accounts belong to.
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// How many users log in (accounts PREFIX0 … PREFIX{N-1}).
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// What the account names start with; the user's number follows.
    #[arg(long, default_value = "load")]
    pub user_prefix: String,
    /// Every account's password.
    #[arg(long, default_value = "load-password")]
    pub password: String,
    /// Upgrade each connection with STARTTLS before authenticating.
    #[arg(long, requires = "ca_file")]
    pub starttls: bool,
    /// The PEM certificates to trust with --starttls (for ej's own
    /// self-signed one: DATA-DIR/tls/localhost.crt).
    #[arg(long)]
    pub ca_file: Option<std::path::PathBuf>,
    /// The SASL mechanism: SCRAM-SHA-1 or SCRAM-SHA-256.
    #[arg(long, default_value = "SCRAM-SHA-1")]
    pub mechanism: String,
    /// Logins under way at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Messages per second, all users together (open loop: sent on a
    /// schedule, whatever comes back); 0 sends flat out, each user keeping
    /// --window messages in flight.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Messages in flight per user with --rate 0.
    #[arg(long, default_value_t = 8)]
    pub window: u32,
    /// Seconds of sending (with --idle: of holding the sessions).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds to wait after sending for messages still on their way.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Log in and hold the sessions, sending nothing: measures memory.
    #[arg(long)]
    pub idle: bool,
    /// Send each message to a random user rather than to the next one.
    #[arg(long)]
    pub random_pairs: bool,
    /// Add XEP-0334's `<no-store/>` hint, so servers archive nothing.
    #[arg(long)]
    pub no_store: bool,
    /// Seconds one login may take before it counts as failed.
    #[arg(long, default_value_t = 30.0)]
    pub login_timeout: f64,
    /// The server's process id, to read its CPU time and memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// A name for the server in the report.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the load and returns what it measured.
pub async fn run(options: &Options) -> Result<Report> {
    let Some(mechanism) = scram::Hash::from_mechanism(&options.mechanism) else {
        bail!("--mechanism must be SCRAM-SHA-1 or SCRAM-SHA-256");
    };
    if options.users == 0 || options.concurrency == 0 {
        bail!("--users and --concurrency must be at least 1");
    }
    if !(options.rate >= 0.0 && options.duration >= 0.0 && options.drain >= 0.0 && options.login_timeout > 0.0) {
        bail!("--rate, --duration, --drain and --login-timeout must be positive numbers");
    }
    let base = Instant::now();
    let tls = match (&options.ca_file, options.starttls) {
        (Some(ca_file), true) => Some(client::Tls::new(ca_file, &options.domain)?),
        _ => None,
    };
    let logins: Vec<Arc<LoginConfig>> = options
        .addr
        .iter()
        .map(|addr| {
            Arc::new(LoginConfig {
                addr: addr.clone(),
                domain: options.domain.clone(),
                password: options.password.clone(),
                mechanism,
                resource: "load".to_owned(),
                tls: tls.clone(),
            })
        })
        .collect();
    let shared = Arc::new(Shared::new(Plan {
        users: options.users,
        user_prefix: options.user_prefix.clone(),
        domain: options.domain.clone(),
        rate_per_user: options.rate / options.users as f64,
        window: options.window.max(1),
        random_pairs: options.random_pairs,
        no_store: options.no_store,
        base,
    }));
    let mut progress = Progress::new(options, shared.clone());
    let mut readings = ServerReadings::new(options.server_pid);
    readings.before_login()?;

    // Log everyone in, `concurrency` at a time; each task goes on as the
    // user's reader.
    let (phase_tx, phase) = watch::channel(Phase::Hold);
    let permits = Arc::new(Semaphore::new(options.concurrency));
    let login_timeout = Duration::from_secs_f64(options.login_timeout);
    let mut users = JoinSet::new();
    for me in 0..options.users {
        let login = Arc::clone(&logins[me % logins.len()]);
        let (shared, phase, permits) = (shared.clone(), phase.clone(), permits.clone());
        let user = format!("{}{me}", options.user_prefix);
        users.spawn(async move {
            let Ok(permit) = permits.acquire_owned().await else {
                return;
            };
            let started = Instant::now();
            let session = tokio::time::timeout(login_timeout, client::login(&login, &user)).await;
            drop(permit);
            match session {
                Ok(Ok(session)) => {
                    Stats::add(&shared.stats.logins);
                    let took = started.elapsed().as_micros() as u64;
                    shared.stats.login_latency.record(took);
                    client::run(session, shared, me, phase).await;
                }
                Ok(Err(error)) => {
                    Stats::add(&shared.stats.login_failures);
                    shared.stats.note(format!("login of {user}: {error:#}"));
                }
                Err(_) => {
                    Stats::add(&shared.stats.login_failures);
                    shared.stats.note(format!("login of {user}: timed out"));
                }
            }
        });
    }
    let stats = &shared.stats;
    let login_started = Instant::now();
    while Stats::get(&stats.logins) + Stats::get(&stats.login_failures) < options.users as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        progress.tick("login");
    }
    let login_seconds = login_started.elapsed().as_secs_f64();
    // Let the server settle (initial presences) before reading its memory.
    settle(&mut progress, "settle", Duration::from_secs(1)).await;
    readings.after_login()?;

    let mut send_seconds = 0.0;
    if options.idle {
        settle(&mut progress, "hold", Duration::from_secs_f64(options.duration)).await;
    } else if Stats::get(&stats.logins) > 0 {
        let start = Instant::now();
        phase_tx.send_replace(Phase::Send(start));
        settle(&mut progress, "send", Duration::from_secs_f64(options.duration)).await;
        phase_tx.send_replace(Phase::Drain);
        send_seconds = start.elapsed().as_secs_f64();
        let drain_until = Instant::now() + Duration::from_secs_f64(options.drain);
        // A writer that took its last tick as the phase changed is still
        // counting its message: give it a moment before comparing counts.
        tokio::time::sleep(Duration::from_millis(200)).await;
        while Stats::get(&stats.delivered) < Stats::get(&stats.sent) && Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(20)).await;
            progress.tick("drain");
        }
    }
    readings.after_load()?;
    let report = Report::new(options, &shared, &readings, login_seconds, send_seconds);
    // Closes every connection.
    users.shutdown().await;
    Ok(report)
}

/// Waits `time`, printing progress.
async fn settle(progress: &mut Progress, what: &str, time: Duration) {
    let until = Instant::now() + time;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now()))).await;
        progress.tick(what);
    }
}
