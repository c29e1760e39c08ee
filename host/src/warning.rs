//! Warnings that a peer or a handler can provoke at will (a refused
//! connection, a refused timer) are logged at most once a second per kind;
//! the ones left out in between are counted and reported with the next.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The least time between two lines of one kind of warning.
const INTERVAL_MS: u64 = 1000;

/// One kind of warning, as a `static` at the place that logs it.
pub struct Warning {
    /// When it was last logged, in milliseconds since the process started,
    /// plus one (0: never).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl Warning {
    pub const fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(how many were left out since the last line)` if this one is
    /// to be logged; `None` (and counted) if it is too soon.
    pub fn due(&self) -> Option<u64> {
        static START: OnceLock<Instant> = OnceLock::new();
        let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now - last < INTERVAL_MS
            || self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

impl Default for Warning {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_one_warning_is_one_line_with_a_count() {
        let warning = Warning::new();
        assert_eq!(warning.due(), Some(0));
        assert!((0..10_000).all(|_| warning.due().is_none()));
        assert_eq!(warning.suppressed.load(Ordering::Relaxed), 10_000);
    }
}
