//! The registry: which connection holds which address, across every
//! listener of a server, and the mailboxes that routed events go into.
//!
//! It is a set of ordered maps, sharded by address, each behind its own
//! lock held only for a lookup or an update: routing one payload touches one
//! shard for a moment, and no lock is global. Routes that find a mailbox
//! full wait for room in their sender's `Outgoing`.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::ops::Bound;
use std::sync::RwLock;

use tokio::sync::mpsc;

use crate::bindings::Envelope;

/// Shards: enough that two cores rarely meet on one.
const SHARDS: usize = 16;

/// Where a connection receives payloads from other connections.
pub type Mailbox = mpsc::Sender<Delivery>;

/// What arrives in a mailbox. The payload is boxed: a mailbox's channel
/// allocates its slots in blocks up front, and a pointer-sized slot keeps
/// an idle connection's share small.
#[derive(Debug)]
pub enum Delivery {
    /// A payload for an address the connection holds, and where to bounce
    /// it if the connection closes before handling it.
    Routed { envelope: Box<Envelope>, sender: Mailbox },
    /// A payload the connection routed, back because its target closed
    /// before handling it.
    Bounced(Box<Envelope>),
}

impl Delivery {
    /// The payload, whichever way it came.
    pub fn into_envelope(self) -> Envelope {
        match self {
            Self::Routed { envelope, .. } | Self::Bounced(envelope) => *envelope,
        }
    }
}

/// A connection holding an address.
#[derive(Clone, Debug)]
pub struct Holder {
    pub id: u64,
    pub mailbox: Mailbox,
}

/// Every bound address of a server.
pub struct Registry {
    shards: Vec<RwLock<BTreeMap<String, Holder>>>,
    hasher: RandomState,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl Registry {
    /// Binds `address` to `holder`; false if another connection holds it.
    pub fn bind(&self, address: &str, holder: &Holder) -> bool {
        let mut shard = self
            .shard(address)
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match shard.get(address) {
            Some(current) => current.id == holder.id,
            None => {
                shard.insert(address.to_owned(), holder.clone());
                true
            }
        }
    }

    /// Releases `address` if connection `id` holds it.
    pub fn unbind(&self, address: &str, id: u64) {
        let mut shard = self
            .shard(address)
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if shard.get(address).is_some_and(|holder| holder.id == id) {
            shard.remove(address);
        }
    }

    /// Who holds `address`, if anyone.
    pub fn holder(&self, address: &str) -> Option<Holder> {
        let shard = self
            .shard(address)
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        shard.get(address).cloned()
    }

    /// Bound addresses starting with `prefix`, in order, at most `limit`.
    /// Never holds more than twice `limit` addresses on the way.
    pub fn lookup(&self, prefix: &str, limit: usize) -> Vec<String> {
        let mut found = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            found.extend(
                shard
                    .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                    .map(|(address, _)| address)
                    .take_while(|address| address.starts_with(prefix))
                    .take(limit)
                    .cloned(),
            );
            found.sort_unstable();
            found.truncate(limit);
        }
        found
    }

    fn shard(&self, address: &str) -> &RwLock<BTreeMap<String, Holder>> {
        &self.shards[self.hasher.hash_one(address) as usize % SHARDS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(id: u64) -> Holder {
        Holder {
            id,
            mailbox: mpsc::channel(1).0,
        }
    }

    #[test]
    fn an_address_has_one_holder_until_it_lets_go() {
        let registry = Registry::default();
        assert!(registry.bind("alice@x/phone", &holder(1)));
        assert!(registry.bind("alice@x/phone", &holder(1)), "binding again is harmless");
        assert!(!registry.bind("alice@x/phone", &holder(2)));
        registry.unbind("alice@x/phone", 2);
        assert_eq!(
            registry.holder("alice@x/phone").map(|h| h.id),
            Some(1),
            "only the holder unbinds"
        );
        registry.unbind("alice@x/phone", 1);
        assert!(registry.holder("alice@x/phone").is_none());
        assert!(registry.bind("alice@x/phone", &holder(2)));
    }

    #[test]
    fn lookup_merges_the_shards_in_order() {
        let registry = Registry::default();
        for (id, address) in ["bob@x/a", "alice@x/c", "alice@x/a", "alice@y/a", "alice@x/b"]
            .iter()
            .enumerate()
        {
            assert!(registry.bind(address, &holder(id as u64)));
        }
        assert_eq!(registry.lookup("alice@x/", 10), ["alice@x/a", "alice@x/b", "alice@x/c"]);
        assert_eq!(registry.lookup("alice@x/", 2), ["alice@x/a", "alice@x/b"]);
        assert!(registry.lookup("carol", 10).is_empty());
    }
}
