//! Lanes: where events that lost a race take turns.
//!
//! Validation alone is fair to nobody on a hot key: a hundred events
//! incrementing one counter all read it, one commits, and the other
//! ninety-nine rerun at once, to lose again to whichever reaches the writer
//! first. So an event that conflicted reruns holding the lanes of what went
//! stale of what it read (a lock per key or scanned prefix, taken in order,
//! so no two events ever wait for each other in a cycle): reruns on the
//! same keys then run one at a time, each reading what the one before it
//! committed. Only what went stale: an event also reads keys nobody writes
//! (configuration, an account), and lanes on those would line up every
//! event that reads them behind one rerun. First runs take no lane;
//! correctness never depends on lanes, only progress does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use super::ReadSet;

/// Lanes one event holds at most: the first ones of what went stale, in
/// order.
const MAX_LANES_PER_EVENT: usize = 64;

/// The lanes currently held or waited for, by name.
#[derive(Default)]
pub struct Lanes {
    lanes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Lanes held by one event; released when dropped.
pub struct Held<'a> {
    lanes: &'a Lanes,
    held: Vec<(String, OwnedMutexGuard<()>)>,
}

impl Lanes {
    /// Waits for the lanes of everything in `reads`, then holds them.
    pub async fn enter(&self, reads: &ReadSet) -> Held<'_> {
        let mut held = Held {
            lanes: self,
            held: Vec::new(),
        };
        for name in reads.lane_names().into_iter().take(MAX_LANES_PER_EVENT) {
            let lane = Arc::clone(self.lanes.lock().expect("lanes lock").entry(name.clone()).or_default());
            held.held.push((name, lane.lock_owned().await));
        }
        held
    }

    /// What of `reads` a rerun holds (or waits for) the lane of: an event
    /// that read it on its first run would most likely beat that rerun at
    /// the writer only to make it lose again, so it joins the queue of
    /// those lanes instead (see `Service::run_event`). Empty if none.
    pub fn taken(&self, reads: &ReadSet) -> ReadSet {
        let lanes = self.lanes.lock().expect("lanes lock");
        if lanes.is_empty() {
            return ReadSet::default();
        }
        reads.with_lanes(|name| lanes.contains_key(name))
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut lanes = self.lanes.lanes.lock().expect("lanes lock");
        for (name, guard) in self.held.drain(..) {
            drop(guard);
            // Forget a lane nobody else holds or waits for.
            if lanes.get(&name).is_some_and(|lane| Arc::strong_count(lane) == 1) {
                lanes.remove(&name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reruns_on_one_key_take_turns_and_lanes_are_forgotten() {
        let lanes = Lanes::default();
        let mut reads = ReadSet::default();
        reads.key("counter");
        let first = lanes.enter(&reads).await;
        let second = lanes.enter(&reads);
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), &mut second)
                .await
                .is_err(),
            "the lane is taken"
        );
        drop(first);
        drop(second.await);
        assert!(lanes.lanes.lock().unwrap().is_empty());
    }
}
