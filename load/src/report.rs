//! What a run shows: a progress line once a second on stderr while it
//! runs, then a table and a JSON object built from the counters and the
//! server's `/proc` readings.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::{Value, json};

use crate::client::Shared;
use crate::proc::{self, Sample};
use crate::stats::Stats;

/// The server's process read before login, after login and after the load,
/// and this process read at the start and the end.
pub struct ServerReadings {
    pid: Option<u32>,
    before_login: Option<Sample>,
    after_login: Option<Sample>,
    after_load: Option<Sample>,
    client_start: Option<Sample>,
    client_end: Option<Sample>,
    load_start: String,
    load_end: String,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|line| line.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl ServerReadings {
    pub fn new(pid: Option<u32>) -> Self {
        Self {
            pid,
            before_login: None,
            after_login: None,
            after_load: None,
            client_start: proc::sample(std::process::id()).ok(),
            client_end: None,
            load_start: load_average(),
            load_end: String::new(),
        }
    }

    fn read(&self) -> Result<Option<Sample>> {
        self.pid.map(proc::sample).transpose()
    }

    pub fn before_login(&mut self) -> Result<()> {
        self.before_login = self.read()?;
        Ok(())
    }

    pub fn after_login(&mut self) -> Result<()> {
        self.after_login = self.read()?;
        Ok(())
    }

    pub fn after_load(&mut self) -> Result<()> {
        self.after_load = self.read()?;
        self.client_end = proc::sample(std::process::id()).ok();
        self.load_end = load_average();
        Ok(())
    }
}

/// The progress line, printed at most once a second.
pub struct Progress {
    shared: Arc<Shared>,
    pid: Option<u32>,
    quiet: bool,
    started: Instant,
    last: Instant,
    last_counts: [u64; 3],
    last_cpu: Option<f64>,
}

impl Progress {
    pub fn new(options: &crate::Options, shared: Arc<Shared>) -> Self {
        let now = Instant::now();
        Self {
            shared,
            pid: options.server_pid,
            quiet: options.quiet,
            started: now,
            last: now,
            last_counts: [0; 3],
            last_cpu: None,
        }
    }

    /// Prints the line if a second has passed since the last one.
    pub fn tick(&mut self, phase: &str) {
        let elapsed = self.last.elapsed().as_secs_f64();
        if elapsed < 1.0 {
            return;
        }
        self.last = Instant::now();
        let stats = &self.shared.stats;
        let counts = [&stats.logins, &stats.sent, &stats.delivered].map(Stats::get);
        let rate = |i: usize| (counts[i] - self.last_counts[i]) as f64 / elapsed;
        let recent = stats.recent.take();
        let server = self.pid.and_then(|pid| proc::sample(pid).ok()).map(|sample| {
            let cpu = self
                .last_cpu
                .map_or(0.0, |last| (sample.cpu_seconds - last) / elapsed * 100.0);
            self.last_cpu = Some(sample.cpu_seconds);
            format!(" | server cpu {cpu:.0}% rss {:.1} MB", sample.rss_bytes as f64 / 1e6)
        });
        if !self.quiet {
            eprintln!(
                "[{:5.1}s] {phase:6} logins {} ({:.0}/s) failed {} | sent {:.0}/s delivered {:.0}/s p50 {:.1} ms p99 {:.1} ms \
                 | errors {} stanza {} stream{}",
                self.started.elapsed().as_secs_f64(),
                counts[0],
                rate(0),
                Stats::get(&stats.login_failures),
                rate(1),
                rate(2),
                recent.quantile(0.5) as f64 / 1e3,
                recent.quantile(0.99) as f64 / 1e3,
                Stats::get(&stats.stanza_errors),
                Stats::get(&stats.stream_errors),
                server.unwrap_or_default(),
            );
        }
        self.last_counts = counts;
    }
}

/// What a run measured.
pub struct Report {
    pub json: Value,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1e3
}

impl Report {
    pub fn new(
        options: &crate::Options,
        shared: &Shared,
        readings: &ServerReadings,
        login_seconds: f64,
        send_seconds: f64,
    ) -> Self {
        let stats = &shared.stats;
        let latency = stats.latency.snapshot();
        let login_latency = stats.login_latency.snapshot();
        let [logins, failures, sent, delivered, in_window] = [
            &stats.logins,
            &stats.login_failures,
            &stats.sent,
            &stats.delivered,
            &stats.delivered_in_window,
        ]
        .map(Stats::get);
        let per_second = |count: u64, seconds: f64| if seconds > 0.0 { count as f64 / seconds } else { 0.0 };
        let server = match (readings.before_login, readings.after_login, readings.after_load) {
            (Some(before), Some(login), Some(load)) => {
                let per_session = (login.rss_bytes as f64 - before.rss_bytes as f64) / logins.max(1) as f64;
                let load_cpu = load.cpu_seconds - login.cpu_seconds;
                let load_system = load.system_seconds - login.system_seconds;
                let per_delivered = |seconds: f64| {
                    if delivered > 0 {
                        seconds * 1e6 / delivered as f64
                    } else {
                        0.0
                    }
                };
                json!({
                    "pid": readings.pid,
                    "rss_before_login_bytes": before.rss_bytes,
                    "rss_after_login_bytes": login.rss_bytes,
                    "rss_after_load_bytes": load.rss_bytes,
                    "memory_per_session_bytes": per_session.round(),
                    "cpu_login_seconds": login.cpu_seconds - before.cpu_seconds,
                    "cpu_load_seconds": load_cpu,
                    "cpu_us_per_login": if logins > 0 { (login.cpu_seconds - before.cpu_seconds) * 1e6 / logins as f64 } else { 0.0 },
                    "cpu_load_system_seconds": load_system,
                    "cpu_us_per_delivered": per_delivered(load_cpu),
                    "cpu_us_per_delivered_system": per_delivered(load_system),
                })
            }
            _ => Value::Null,
        };
        let client_cpu = match (readings.client_start, readings.client_end) {
            (Some(start), Some(end)) => json!(end.cpu_seconds - start.cpu_seconds),
            _ => Value::Null,
        };
        let json = json!({
            "label": options.label,
            "addr": options.addr.join(" "),
            "users": options.users,
            "concurrency": options.concurrency,
            "idle": options.idle,
            "rate_target": if options.idle { 0.0 } else { options.rate },
            "no_store": options.no_store,
            "starttls": options.starttls,
            "logins": logins,
            "login_failures": failures,
            "login_seconds": login_seconds,
            "logins_per_second": per_second(logins, login_seconds),
            "login_ms": {
                "p50": ms(login_latency.quantile(0.5)),
                "p99": ms(login_latency.quantile(0.99)),
                "max": ms(login_latency.max()),
            },
            "send_seconds": send_seconds,
            "sent": sent,
            "delivered": delivered,
            "delivered_in_window": in_window,
            "sent_per_second": per_second(sent, send_seconds),
            "delivered_per_second": per_second(in_window, send_seconds),
            "lost": sent.saturating_sub(delivered),
            "duplicates": Stats::get(&stats.duplicates),
            "latency_ms": {
                "p50": ms(latency.quantile(0.5)),
                "p99": ms(latency.quantile(0.99)),
                "p999": ms(latency.quantile(0.999)),
                "max": ms(latency.max()),
            },
            "stanza_errors": Stats::get(&stats.stanza_errors),
            "stream_errors": Stats::get(&stats.stream_errors),
            "iqs_answered": Stats::get(&stats.iqs_answered),
            "errors": stats.noted(),
            "server": server,
            "client_cpu_seconds": client_cpu,
            "load_average_start": readings.load_start,
            "load_average_end": readings.load_end,
        });
        Self { json }
    }

    /// The report as a two-column text table.
    pub fn table(&self) -> String {
        let j = &self.json;
        let num = |value: &Value| value.as_f64().unwrap_or(0.0);
        let mut rows: Vec<(String, String)> = vec![
            ("server".into(), format!("{} at {}", str(&j["label"]), str(&j["addr"]))),
            (
                "logins".into(),
                format!(
                    "{} of {} in {:.2} s: {:.0}/s ({} failed); each p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    j["logins"],
                    j["users"],
                    num(&j["login_seconds"]),
                    num(&j["logins_per_second"]),
                    j["login_failures"],
                    num(&j["login_ms"]["p50"]),
                    num(&j["login_ms"]["p99"]),
                    num(&j["login_ms"]["max"])
                ),
            ),
        ];
        if j["idle"] != Value::Bool(true) {
            let latency = &j["latency_ms"];
            rows.extend([
                ("target rate".into(), format!("{} msg/s", j["rate_target"])),
                (
                    "sent".into(),
                    format!(
                        "{} in {:.1} s: {:.0}/s",
                        j["sent"],
                        num(&j["send_seconds"]),
                        num(&j["sent_per_second"])
                    ),
                ),
                (
                    "delivered".into(),
                    format!(
                        "{} ({} in the window): {:.0}/s",
                        j["delivered"],
                        j["delivered_in_window"],
                        num(&j["delivered_per_second"])
                    ),
                ),
                (
                    "lost".into(),
                    format!("{}, {} delivered twice", j["lost"], j["duplicates"]),
                ),
                (
                    "latency".into(),
                    format!(
                        "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
                        num(&latency["p50"]),
                        num(&latency["p99"]),
                        num(&latency["p999"]),
                        num(&latency["max"])
                    ),
                ),
            ]);
        }
        rows.push((
            "errors".into(),
            format!("{} stanza, {} stream", j["stanza_errors"], j["stream_errors"]),
        ));
        let server = &j["server"];
        if !server.is_null() {
            let mb = |value: &Value| num(value) / 1e6;
            rows.extend([
                (
                    "server rss".into(),
                    format!(
                        "{:.1} MB before login, {:.1} MB after, {:.1} MB after the load",
                        mb(&server["rss_before_login_bytes"]),
                        mb(&server["rss_after_login_bytes"]),
                        mb(&server["rss_after_load_bytes"])
                    ),
                ),
                (
                    "memory/session".into(),
                    format!("{:.1} kB", num(&server["memory_per_session_bytes"]) / 1e3),
                ),
                (
                    "server cpu".into(),
                    format!(
                        "{:.2} s logging in ({:.0} µs/login), {:.2} s under load ({:.1} µs/delivered message, \
                         {:.1} of them in the kernel)",
                        num(&server["cpu_login_seconds"]),
                        num(&server["cpu_us_per_login"]),
                        num(&server["cpu_load_seconds"]),
                        num(&server["cpu_us_per_delivered"]),
                        num(&server["cpu_us_per_delivered_system"])
                    ),
                ),
            ]);
        }
        rows.push(("client cpu".into(), format!("{:.2} s", num(&j["client_cpu_seconds"]))));
        rows.push((
            "load average".into(),
            format!(
                "{} at the start, {} at the end",
                str(&j["load_average_start"]),
                str(&j["load_average_end"])
            ),
        ));
        for error in j["errors"].as_array().into_iter().flatten() {
            rows.push(("error".into(), str(error).to_owned()));
        }
        let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(key, value)| format!("{key:width$}  {value}\n"))
            .collect()
    }
}

fn str(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}
