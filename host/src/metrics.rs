//! What an operator can watch: counters and gauges of the whole process,
//! served in the Prometheus text format on `--metrics ADDR` (loopback
//! only, off by default).
//!
//! Every figure is a relaxed atomic in one static, bumped where the thing
//! happens: nothing on the hot path locks or allocates for it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::bindings::Event;
use crate::fault::FaultKind;

/// The process's figures.
pub static METRICS: Metrics = Metrics::new();

const FAULT_KINDS: [FaultKind; 9] = [
    FaultKind::Trap,
    FaultKind::Timeout,
    FaultKind::Memory,
    FaultKind::OutcomeTooLarge,
    FaultKind::HandlerError,
    FaultKind::Instantiate,
    FaultKind::Store,
    FaultKind::Conflict,
    FaultKind::BadAction,
];

/// Upper bounds of the event latency histogram, in microseconds.
const LATENCY_BOUNDS_US: [u64; 12] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000,
];

pub struct Metrics {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub refused_per_ip: AtomicU64,
    pub closed: AtomicU64,
    pub detached: AtomicU64,
    pub instances: AtomicU64,
    pub reruns: AtomicU64,
    pub outbound_bytes: AtomicU64,
    pub slow_readers: AtomicU64,
    pub swaps: AtomicU64,
    pub route_waits: AtomicU64,
    pub routes_busy: AtomicU64,
    pub routes_relayed: AtomicU64,
    pub commits: AtomicU64,
    pub events_dropped: AtomicU64,
    events: [AtomicU64; Event::KINDS.len()],
    faults: [AtomicU64; FAULT_KINDS.len()],
    latency: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    latency_sum_us: AtomicU64,
}

impl Metrics {
    const fn new() -> Self {
        Self {
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            refused_per_ip: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            detached: AtomicU64::new(0),
            instances: AtomicU64::new(0),
            reruns: AtomicU64::new(0),
            outbound_bytes: AtomicU64::new(0),
            slow_readers: AtomicU64::new(0),
            swaps: AtomicU64::new(0),
            route_waits: AtomicU64::new(0),
            routes_busy: AtomicU64::new(0),
            routes_relayed: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
            events: [const { AtomicU64::new(0) }; Event::KINDS.len()],
            faults: [const { AtomicU64::new(0) }; FAULT_KINDS.len()],
            latency: [const { AtomicU64::new(0) }; LATENCY_BOUNDS_US.len() + 1],
            latency_sum_us: AtomicU64::new(0),
        }
    }

    /// Adds one to `counter`.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one from a gauge.
    pub fn uncount(gauge: &AtomicU64) {
        gauge.fetch_sub(1, Ordering::Relaxed);
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `event` ran (all its runs) in `took`, faulting with `fault` if it
    /// did.
    pub fn event(&self, event: &Event, took: Duration, fault: Option<FaultKind>) {
        Self::count(&self.events[event.ordinal()]);
        if let Some(at) = fault.and_then(|fault| FAULT_KINDS.iter().position(|known| *known == fault)) {
            Self::count(&self.faults[at]);
        }
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        Self::count(&self.latency[bucket]);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every figure.
    pub fn render(&self) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in samples {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        let one = |value: u64| [(String::new(), value)];
        let accepted = get(&self.accepted);
        metric(
            "ej_connections_accepted_total",
            "counter",
            "Connections accepted.",
            &one(accepted),
        );
        metric(
            "ej_connections_refused_total",
            "counter",
            "Connections refused, by the limit that refused them.",
            &[
                ("{limit=\"max-connections\"}".to_owned(), get(&self.refused)),
                (
                    "{limit=\"max-connections-per-ip\"}".to_owned(),
                    get(&self.refused_per_ip),
                ),
            ],
        );
        metric(
            "ej_connections_open",
            "gauge",
            "Connections open now (detached sessions included).",
            &one(accepted.saturating_sub(get(&self.closed))),
        );
        metric(
            "ej_sessions_detached",
            "gauge",
            "Sessions held for peers that went away.",
            &one(get(&self.detached)),
        );
        let events: Vec<(String, u64)> = Event::KINDS
            .iter()
            .zip(&self.events)
            .map(|(kind, count)| (format!("{{kind=\"{kind}\"}}"), get(count)))
            .collect();
        metric("ej_events_total", "counter", "Events handled, by kind.", &events);
        let faults: Vec<(String, u64)> = FAULT_KINDS
            .iter()
            .zip(&self.faults)
            .map(|(kind, count)| (format!("{{kind=\"{}\"}}", kind.name()), get(count)))
            .collect();
        metric("ej_faults_total", "counter", "Events that faulted, by kind.", &faults);
        let mut cumulative = 0;
        let mut buckets: Vec<(String, u64)> = LATENCY_BOUNDS_US
            .iter()
            .map(|bound| format!("{}", *bound as f64 / 1e6))
            .chain(std::iter::once("+Inf".to_owned()))
            .zip(&self.latency)
            .map(|(le, count)| {
                cumulative += get(count);
                (format!("_bucket{{le=\"{le}\"}}"), cumulative)
            })
            .collect();
        buckets.push(("_count".to_owned(), cumulative));
        out.push_str(
            "# HELP ej_event_seconds Time to handle an event, reruns included.\n# TYPE ej_event_seconds histogram\n",
        );
        for (suffix, value) in buckets {
            out.push_str(&format!("ej_event_seconds{suffix} {value}\n"));
        }
        out.push_str(&format!(
            "ej_event_seconds_sum {}\n",
            get(&self.latency_sum_us) as f64 / 1e6
        ));
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        };
        metric(
            "ej_instances_in_use",
            "gauge",
            "Handler instances running now.",
            get(&self.instances),
        );
        metric(
            "ej_store_commits_total",
            "counter",
            "Store transactions with writes committed (durable).",
            get(&self.commits),
        );
        metric(
            "ej_store_reruns_total",
            "counter",
            "Events run again because another commit changed what they read.",
            get(&self.reruns),
        );
        metric(
            "ej_outbound_bytes_total",
            "counter",
            "Bytes written to peers.",
            get(&self.outbound_bytes),
        );
        metric(
            "ej_slow_readers_total",
            "counter",
            "Peers cut off for not reading what they were sent.",
            get(&self.slow_readers),
        );
        metric(
            "ej_module_swaps_total",
            "counter",
            "Modules swapped in by a reload.",
            get(&self.swaps),
        );
        metric(
            "ej_events_dropped_total",
            "counter",
            "Events a connection caused itself, dropped past --max-chain or the pending bound.",
            get(&self.events_dropped),
        );
        metric(
            "ej_route_waits_total",
            "counter",
            "Routes that found their mailbox full and waited for room.",
            get(&self.route_waits),
        );
        metric(
            "ej_routes_busy_total",
            "counter",
            "Routes not taken: the mailbox stayed full, or another node did not answer in time.",
            get(&self.routes_busy),
        );
        metric(
            "ej_routes_relayed_total",
            "counter",
            "Routes to addresses not held on this node, sent to other nodes over NATS.",
            get(&self.routes_relayed),
        );
        out
    }
}

/// A handler instance running, counted in `instances` while it lives.
pub struct InUse(());

impl InUse {
    pub fn enter() -> Self {
        Metrics::count(&METRICS.instances);
        Self(())
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        Metrics::uncount(&METRICS.instances);
    }
}

/// Serves `METRICS` on `addr`, which must be a loopback address, until the
/// process ends: any request gets the current figures. One request at a
/// time, each given at most two seconds to arrive and two to be read.
pub async fn serve(addr: SocketAddr) -> Result<SocketAddr> {
    if !addr.ip().is_loopback() {
        bail!("--metrics {addr}: the metrics endpoint listens on loopback addresses only");
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            // The request itself does not matter: read what comes first
            // (bounded, briefly), answer, close.
            let mut request = [0; 4096];
            let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut request)).await;
            let body = METRICS.render();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(response.as_bytes())).await;
        }
    });
    Ok(bound)
}
