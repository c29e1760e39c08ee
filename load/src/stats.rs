//! What a run counts, shared by every connection's tasks without locks:
//! counters, and latency histograms of fixed size (log-linear buckets,
//! exact below 1,024 µs, within 0.2 % above, up to 2^46 µs).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Values below this many microseconds have a bucket each.
const LINEAR: u64 = 1024;
/// Buckets per power of two above `LINEAR`.
const SUB: u64 = 512;
/// Powers of two covered above `LINEAR` (up to 2^46 µs).
const OCTAVES: u64 = 36;
const BUCKETS: usize = (LINEAR + OCTAVES * SUB) as usize;

/// A histogram of latencies in microseconds.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

fn bucket(micros: u64) -> usize {
    if micros < LINEAR {
        return micros as usize;
    }
    // The octave (0 for 1024..2047) and the value's top 10 bits within it.
    let octave = u64::from(63 - micros.leading_zeros()) - 10;
    let mantissa = (micros >> (octave + 1)) - SUB;
    (LINEAR + octave * SUB + mantissa).min(BUCKETS as u64 - 1) as usize
}

/// The smallest value a bucket holds.
fn floor(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let octave = (index - LINEAR) / SUB;
    let mantissa = (index - LINEAR) % SUB + SUB;
    mantissa << (octave + 1)
}

impl Histogram {
    pub fn record(&self, micros: u64) {
        self.buckets[bucket(micros)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    /// What it holds, leaving it as it is.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
            max: self.max.load(Ordering::Relaxed),
        }
    }

    /// What it holds, emptying it (for the progress line's last second).
    pub fn take(&self) -> Snapshot {
        Snapshot {
            counts: self.buckets.iter().map(|b| b.swap(0, Ordering::Relaxed)).collect(),
            max: self.max.swap(0, Ordering::Relaxed),
        }
    }
}

/// A histogram's counts at one moment.
pub struct Snapshot {
    counts: Vec<u64>,
    max: u64,
}

impl Snapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The latency at quantile `q` (0..=1) in microseconds; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        if rank == total {
            return self.max;
        }
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return floor(index).min(self.max);
            }
        }
        self.max
    }

    pub fn max(&self) -> u64 {
        self.max
    }
}

/// Everything a run counts.
#[derive(Default)]
pub struct Stats {
    pub logins: AtomicU64,
    pub login_failures: AtomicU64,
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    /// Delivered while the senders were still sending.
    pub delivered_in_window: AtomicU64,
    /// Messages that arrived a second time (not counted as delivered).
    pub duplicates: AtomicU64,
    /// Stanzas of type `error` received (a bounced message among them).
    pub stanza_errors: AtomicU64,
    /// Streams the server ended or broke after login.
    pub stream_errors: AtomicU64,
    /// Pings and other iqs answered.
    pub iqs_answered: AtomicU64,
    pub latency: Histogram,
    /// How long each successful login took, from connecting to presence.
    pub login_latency: Histogram,
    /// The latencies since the last progress line.
    pub recent: Histogram,
    /// The first few distinct error messages, to show what went wrong.
    errors: Mutex<Vec<String>>,
}

/// How many error messages are kept.
const KEPT_ERRORS: usize = 8;

impl Stats {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Keeps an error message, unless as many are kept already.
    pub fn note(&self, error: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if errors.len() < KEPT_ERRORS && !errors.contains(&error) {
            errors.push(error);
        }
    }

    pub fn noted(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for micros in (0..5_000).chain((5_000..100_000_000).step_by(997)) {
            let index = bucket(micros);
            assert!(index >= last, "{micros}");
            last = index;
            let low = floor(index);
            assert!(low <= micros, "{micros}: {low}");
            assert!(micros - low <= micros / 500, "{micros}: {low}");
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles() {
        let histogram = Histogram::default();
        for micros in 1..=1000 {
            histogram.record(micros);
        }
        histogram.record(50_000);
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count(), 1001);
        assert_eq!(snapshot.quantile(0.5), 501);
        assert_eq!(snapshot.quantile(0.99), 991);
        assert_eq!(snapshot.quantile(1.0), 50_000);
        assert_eq!(snapshot.max(), 50_000);
        assert_eq!(histogram.take().count(), 1001);
        assert_eq!(histogram.snapshot().count(), 0);
        assert_eq!(histogram.snapshot().quantile(0.99), 0);
    }
}
