//! A PEP node as the store keeps it: its configuration under one key
//! (written only when the node is created or configured); each item's
//! payload under a key of its own, with a small index entry saying when
//! it was published (the node's order, and its count); and the id of the
//! item published last, written without being read.
//!
//! So republishing an item (a new version of `current`, of a bookmark)
//! reads and writes only that item's keys and never conflicts with a
//! publish of another item; a new item reads the node's index to keep
//! `max_items`, and so takes its turn with other changes to that node.

use ej_guest::store;

use super::config::Config;
use super::{Failure, MAX_ITEMS, MAX_NODES, Refusal};
use crate::keys;
use crate::stanza::Condition;

/// One node of an account's service.
pub struct Node {
    /// The owner's local part.
    user: String,
    pub name: String,
    pub config: Config,
}

impl Node {
    /// `user`'s node `name`, if it exists.
    pub fn load(user: &str, name: &str) -> Result<Option<Self>, String> {
        let config = store::get_json(&keys::pep_node(user, name))?;
        Ok(config.map(|config| Self {
            user: user.to_owned(),
            name: name.to_owned(),
            config,
        }))
    }

    /// Every node of `user`, by name.
    pub fn all(user: &str) -> Vec<Self> {
        let prefix = keys::pep_nodes(user);
        store::scan(&prefix, MAX_NODES as u32)
            .into_iter()
            .filter_map(|(key, value)| {
                Some(Self {
                    user: user.to_owned(),
                    name: key.strip_prefix(&prefix)?.to_owned(),
                    config: serde_json::from_slice(&value).ok()?,
                })
            })
            .collect()
    }

    /// Creates `user`'s node `name` with `config`, unless the account has
    /// as many nodes as it may.
    pub fn create(user: &str, name: &str, config: Config) -> Result<Self, Failure> {
        if store::scan(&keys::pep_nodes(user), MAX_NODES as u32).len() >= MAX_NODES {
            return Err(Refusal::new(Condition::ResourceConstraint).into());
        }
        let node = Self {
            user: user.to_owned(),
            name: name.to_owned(),
            config,
        };
        node.save()?;
        Ok(node)
    }

    /// Saves the configuration, and drops the items it no longer keeps.
    pub fn save(&self) -> Result<(), String> {
        store::put_json(&keys::pep_node(&self.user, &self.name), &self.config)?;
        let keep = if self.config.persist_items {
            self.config.max_items
        } else {
            0
        };
        self.trim(keep as usize);
        Ok(())
    }

    /// Keeps `payload` as item `id` (replacing an item of that id), the
    /// newest; the oldest go beyond `max_items`. A node that does not
    /// persist items keeps nothing.
    pub fn put(&self, id: &str, payload: &str) {
        if !self.config.persist_items {
            return;
        }
        let new = !self.has(id);
        store::put(
            &keys::pep_index(&self.user, &self.name, id),
            // Nanoseconds since the epoch: the order of publication.
            crate::time::now_nanos().to_string().as_bytes(),
        );
        store::put(&keys::pep_item(&self.user, &self.name, id), payload.as_bytes());
        store::put(&keys::pep_last(&self.user, &self.name), id.as_bytes());
        if new {
            self.trim(self.config.max_items as usize);
        }
    }

    /// Whether the node has item `id`.
    pub fn has(&self, id: &str) -> bool {
        store::get(&keys::pep_index(&self.user, &self.name, id)).is_some()
    }

    /// Removes item `id`.
    pub fn retract(&self, id: &str) {
        self.forget(id);
        let last = keys::pep_last(&self.user, &self.name);
        if store::get(&last).as_deref() == Some(id.as_bytes()) {
            match self.order().pop() {
                Some(newest) => store::put(&last, newest.as_bytes()),
                None => store::delete(&last),
            }
        }
    }

    /// The ids of the items, oldest first.
    pub fn order(&self) -> Vec<String> {
        let prefix = keys::pep_indexes(&self.user, &self.name);
        let mut stamped: Vec<(u64, String)> = store::scan(&prefix, MAX_ITEMS + 1)
            .into_iter()
            .filter_map(|(key, value)| {
                let stamp = std::str::from_utf8(&value).ok()?.parse().ok()?;
                Some((stamp, key.strip_prefix(&prefix)?.to_owned()))
            })
            .collect();
        stamped.sort_unstable();
        stamped.into_iter().map(|(_, id)| id).collect()
    }

    /// Item `id`'s payload.
    pub fn item(&self, id: &str) -> Option<String> {
        store::get(&keys::pep_item(&self.user, &self.name, id)).and_then(|bytes| String::from_utf8(bytes).ok())
    }

    /// The item published last: its id and payload.
    pub fn last(&self) -> Option<(String, String)> {
        let id = String::from_utf8(store::get(&keys::pep_last(&self.user, &self.name))?).ok()?;
        let payload = self.item(&id)?;
        Some((id, payload))
    }

    /// Removes every item.
    pub fn purge(&self) {
        self.trim(0);
    }

    /// Removes the node and its items.
    pub fn delete(self) {
        self.purge();
        store::delete(&keys::pep_node(&self.user, &self.name));
    }

    /// Removes the oldest items beyond `keep`.
    fn trim(&self, keep: usize) {
        let order = self.order();
        let excess = order.len().saturating_sub(keep);
        for id in &order[..excess] {
            self.forget(id);
        }
        if keep == 0 {
            store::delete(&keys::pep_last(&self.user, &self.name));
        }
    }

    /// Removes item `id`'s keys.
    fn forget(&self, id: &str) {
        store::delete(&keys::pep_index(&self.user, &self.name, id));
        store::delete(&keys::pep_item(&self.user, &self.name, id));
    }
}
