//! The host-owned inbound rate limit: a token bucket per connection. The
//! reader asks it how much it may read; a handler can only lower the rate
//! (through the `throttle` action), never raise it past the operator's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The current rate of one connection, shared by its reader and its event loop.
#[derive(Clone, Debug)]
pub struct Rate {
    bytes_per_sec: Arc<AtomicU32>,
    ceiling: u32,
}

impl Rate {
    pub fn new(ceiling: u32) -> Self {
        let ceiling = ceiling.max(1);
        Self {
            bytes_per_sec: Arc::new(AtomicU32::new(ceiling)),
            ceiling,
        }
    }

    /// Sets the rate a handler asked for, clamped to `1..=ceiling`.
    pub fn set(&self, bytes_per_sec: u32) {
        self.bytes_per_sec
            .store(bytes_per_sec.clamp(1, self.ceiling), Ordering::Relaxed);
    }

    pub fn get(&self) -> u32 {
        self.bytes_per_sec.load(Ordering::Relaxed)
    }
}

/// A token bucket holding at most one second's worth of bytes.
#[derive(Debug)]
pub struct Throttle {
    rate: Rate,
    tokens: f64,
    refilled: Instant,
}

/// The most a reader waits to gather before reading again, so a slow rate
/// means fewer, larger reads rather than a timer per byte.
const MIN_GRANT: f64 = 1024.0;

impl Throttle {
    /// A full bucket at the rate's current value.
    pub fn new(rate: Rate) -> Self {
        let tokens = f64::from(rate.get());
        Self {
            rate,
            tokens,
            refilled: Instant::now(),
        }
    }

    /// How many bytes may be read now, or how long to wait until a useful
    /// amount may.
    pub fn allowance(&mut self) -> Result<usize, Duration> {
        let rate = f64::from(self.rate.get());
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.refilled = now;
        let wanted = MIN_GRANT.min(rate);
        if self.tokens >= wanted {
            Ok(self.tokens as usize)
        } else {
            Err(Duration::from_secs_f64((wanted - self.tokens) / rate))
        }
    }

    /// Takes `bytes` read from the bucket.
    pub fn consume(&mut self, bytes: usize) {
        self.tokens -= bytes as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handler_cannot_raise_the_rate_past_the_ceiling() {
        let rate = Rate::new(1000);
        rate.set(5000);
        assert_eq!(rate.get(), 1000);
        rate.set(0);
        assert_eq!(rate.get(), 1);
        rate.set(300);
        assert_eq!(rate.get(), 300);
    }

    #[test]
    fn an_empty_bucket_says_how_long_to_wait() {
        let rate = Rate::new(2000);
        let mut throttle = Throttle::new(rate);
        let granted = throttle.allowance().expect("a full bucket grants at once");
        assert_eq!(granted, 2000);
        throttle.consume(granted);
        let wait = throttle.allowance().expect_err("an empty bucket makes the reader wait");
        // 1024 bytes at 2000 bytes/s.
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(520),
            "{wait:?}"
        );
    }
}
