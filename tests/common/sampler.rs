//! Samples a server's `--metrics` and its resident memory once a second
//! into a CSV file (for `bench/soak_plot.py`), following it across
//! restarts: counters start again at zero in a new process, so what the
//! last process reached is carried on top.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::metrics::try_scrape;

/// The server process to sample now: its pid and metrics endpoint, or
/// none while it is down.
pub type Live = Arc<Mutex<Option<(u32, SocketAddr)>>>;

/// Swaps and kills so far, written in each row.
#[derive(Default)]
pub struct Marks {
    pub swaps: AtomicU64,
    pub kills: AtomicU64,
}

/// The counters summed in each row: (column, metric name prefix).
const COUNTERS: [(&str, &str); 3] = [
    ("events", "ej_events_total"),
    ("faults", "ej_faults_total"),
    ("reruns", "ej_store_reruns_total"),
];

/// Writes a row every second until `stop`; returns the rows written.
pub fn sample(live: &Live, marks: &Marks, csv: &Path, stop: &AtomicBool) -> usize {
    let mut out = BufWriter::new(File::create(csv).expect("creating the CSV"));
    let started = Instant::now();
    let (mut carried, mut last, mut pid_sampled) = (Vec::new(), Vec::new(), 0);
    let mut rows = 0;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(1));
        let Some((pid, metrics)) = *live.lock().unwrap() else {
            continue;
        };
        let Ok(rss) = ej_load::proc::sample(pid) else {
            continue; // killed meanwhile
        };
        let Some(figures) = try_scrape(metrics) else {
            continue;
        };
        let (names, values) = counters(&figures);
        if rows == 0 {
            writeln!(
                out,
                "seconds,{},rss_bytes,connections_open,swaps,kills",
                names.join(",")
            )
            .unwrap();
            carried = vec![0.0; values.len()];
        }
        if pid != pid_sampled && pid_sampled != 0 {
            carried
                .iter_mut()
                .zip(&last)
                .for_each(|(carried, last)| *carried += last);
        }
        pid_sampled = pid;
        let totals: Vec<String> = values.iter().zip(&carried).map(|(v, c)| (v + c).to_string()).collect();
        writeln!(
            out,
            "{:.3},{},{},{},{},{}",
            started.elapsed().as_secs_f64(),
            totals.join(","),
            rss.rss_bytes,
            sum(&figures, "ej_connections_open"),
            marks.swaps.load(Ordering::Relaxed),
            marks.kills.load(Ordering::Relaxed),
        )
        .unwrap();
        out.flush().unwrap();
        last = values;
        rows += 1;
    }
    rows
}

/// The columns of the counters and of the latency histogram's cumulative
/// buckets (`le_SECONDS`), with their values.
fn counters(figures: &str) -> (Vec<String>, Vec<f64>) {
    let mut names = Vec::new();
    let mut values = Vec::new();
    for (column, metric) in COUNTERS {
        names.push(column.to_owned());
        values.push(sum(figures, metric));
    }
    for line in figures.lines() {
        if let Some(rest) = line.strip_prefix("ej_event_seconds_bucket{le=\"") {
            let (le, value) = rest.split_once("\"} ").expect("a bucket line");
            names.push(format!("le_{le}"));
            values.push(value.parse().expect("a count"));
        }
    }
    (names, values)
}

/// The sum of every sample of `metric`, whatever its labels.
fn sum(figures: &str, metric: &str) -> f64 {
    figures
        .lines()
        .filter(|line| {
            line.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}
