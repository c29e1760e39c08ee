//! One connection's timers: set by tag, moved by setting the tag again,
//! cancelled by tag, and gone with the connection.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

/// The timers of one connection, at most `max` of them.
pub struct Timers {
    by_tag: HashMap<String, Instant>,
    due: BTreeSet<(Instant, String)>,
    max: usize,
}

/// Too many timers are set already: the tag that was not set.
#[derive(Debug)]
pub struct Full(pub String);

impl Timers {
    pub fn new(max: usize) -> Self {
        Self {
            by_tag: HashMap::new(),
            due: BTreeSet::new(),
            max,
        }
    }

    /// Sets (or moves) the timer `tag` to fire `after` from now.
    pub fn set(&mut self, tag: String, after: Duration) -> Result<(), Full> {
        if !self.by_tag.contains_key(&tag) && self.by_tag.len() >= self.max {
            return Err(Full(tag));
        }
        self.cancel(&tag);
        let at = Instant::now() + after;
        self.due.insert((at, tag.clone()));
        self.by_tag.insert(tag, at);
        Ok(())
    }

    pub fn cancel(&mut self, tag: &str) {
        if let Some(at) = self.by_tag.remove(tag) {
            self.due.remove(&(at, tag.to_owned()));
        }
    }

    /// When the next timer fires, if any is set.
    pub fn next(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Takes a timer that is due, if one is.
    pub fn pop_due(&mut self, now: Instant) -> Option<String> {
        let (at, _) = self.due.first()?;
        if *at > now {
            return None;
        }
        let (_, tag) = self.due.pop_first()?;
        self.by_tag.remove(&tag);
        Some(tag)
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
