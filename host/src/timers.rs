//! One connection's timers: set by tag, moved by setting the tag again,
//! cancelled by tag, and gone with the connection.
//!
//! A connection has a few timers (at most `--max-timers`, 64 by default;
//! the XMPP handler keeps one), so they are one vector sorted by when they
//! fire: the next is its first, and an idle connection's single timer costs
//! one small allocation, where a map and a tree cost a node each.

use std::time::Duration;

use tokio::time::Instant;

/// The timers of one connection, at most `max` of them.
pub struct Timers {
    /// `(when, tag)`, soonest first.
    due: Vec<(Instant, String)>,
    max: usize,
}

/// Too many timers are set already: the tag that was not set.
#[derive(Debug)]
pub struct Full(pub String);

impl Timers {
    pub fn new(max: usize) -> Self {
        Self { due: Vec::new(), max }
    }

    /// Sets (or moves) the timer `tag` to fire `after` from now.
    pub fn set(&mut self, tag: String, after: Duration) -> Result<(), Full> {
        let moved = self.remove(&tag);
        if !moved && self.due.len() >= self.max {
            return Err(Full(tag));
        }
        let timer = (Instant::now() + after, tag);
        let at = self.due.partition_point(|set| *set <= timer);
        // Room for one more, not the four a `Vec` makes at first: most
        // sessions keep one timer, held as long as they are connected.
        self.due.reserve_exact(1);
        self.due.insert(at, timer);
        Ok(())
    }

    pub fn cancel(&mut self, tag: &str) {
        self.remove(tag);
    }

    /// When the next timer fires, if any is set.
    pub fn next(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Takes a timer that is due, if one is.
    pub fn pop_due(&mut self, now: Instant) -> Option<String> {
        if self.next()? > now {
            return None;
        }
        Some(self.due.remove(0).1)
    }

    /// Removes the timer `tag`; whether there was one.
    fn remove(&mut self, tag: &str) -> bool {
        let found = self.due.iter().position(|(_, set)| set == tag);
        if let Some(at) = found {
            self.due.remove(at);
        }
        found.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_order_and_move_when_set_again() {
        let mut timers = Timers::new(2);
        timers.set("late".into(), Duration::from_secs(60)).unwrap();
        timers.set("soon".into(), Duration::ZERO).unwrap();
        assert!(timers.set("third".into(), Duration::ZERO).is_err(), "at most two");
        timers.set("late".into(), Duration::ZERO).unwrap();
        let now = Instant::now();
        assert_eq!(timers.pop_due(now).as_deref(), Some("soon"));
        assert_eq!(timers.pop_due(now).as_deref(), Some("late"));
        assert_eq!(timers.pop_due(now), None);
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn a_cancelled_timer_never_fires() {
        let mut timers = Timers::new(4);
        timers.set("ping".into(), Duration::ZERO).unwrap();
        timers.cancel("ping");
        assert_eq!(timers.pop_due(Instant::now() + Duration::from_secs(1)), None);
    }
}
