//! The order in which ovsdb-server visits one session's monitors: when a
//! commit concerns several of them, their `update`/`update2`/`update3`
//! notifications go out in that order (and so do `monitor_canceled`s and
//! the merged updates of a backlogged session).
//!
//! ovsdb-server keeps a session's monitors in a hash table (`struct hmap`,
//! lib/hmap.c) keyed by [`json_hash`] of the monitor id, and walks it bucket
//! by bucket, each bucket's chain from its head. That order therefore
//! depends on the history of the table, not only on its content:
//!
//! - an insertion goes to the head of its bucket's chain; once the table
//!   holds more than two entries per bucket it grows (to the next power of
//!   two of at least half the entries, and never fewer than 4 buckets),
//!   re-inserting every entry bucket by bucket, which reverses chains;
//! - a removal never shrinks it;
//! - a monitor request is inserted before its tables and last-txn-id are
//!   checked, and removed again when they fail, so a failed request can
//!   leave the table grown;
//! - `monitor_cond_change` to a new id removes and re-inserts the monitor.
//!
//! [`MonitorOrder`] replays the same operations on the same structure and
//! tells where each id comes in the walk.

use crate::codec::json_hash::json_hash;
use serde_json::Value;

/// A replica of the shape of ovsdb-server's per-session monitor table.
#[derive(Clone, Debug)]
pub struct MonitorOrder {
    /// Buckets; each chain is stored tail first, so its head is the last element.
    buckets: Vec<Vec<(u32, String)>>,
    len: usize,
}

impl Default for MonitorOrder {
    fn default() -> Self {
        MonitorOrder::new()
    }
}

impl MonitorOrder {
    /// An empty table: one bucket, as `hmap_init()` makes.
    pub fn new() -> MonitorOrder {
        MonitorOrder {
            buckets: vec![Vec::new()],
            len: 0,
        }
    }

    /// Number of ids in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    fn insert_fast(&mut self, hash: u32, key: String) {
        let b = hash as usize & self.mask();
        self.buckets[b].push((hash, key));
        self.len += 1;
    }

    /// `calc_mask()`: buckets for `n` entries, minus one.
    fn mask_for(n: usize) -> usize {
        let mut mask = n / 2;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        mask |= mask.checked_shr(32).unwrap_or(0);
        mask | ((mask & 1) << 1)
    }

    /// `hmap_expand()`: grows when the mask for the current count is larger.
    fn expand(&mut self) {
        let new_mask = Self::mask_for(self.len);
        if new_mask <= self.mask() {
            return;
        }
        let old = std::mem::replace(&mut self.buckets, vec![Vec::new(); new_mask + 1]);
        self.len = 0;
        for chain in old {
            // From each chain's head: the stored order reversed.
            for (hash, key) in chain.into_iter().rev() {
                self.insert_fast(hash, key);
            }
        }
    }

    /// Adds the monitor `id` (`hmap_insert()`).
    pub fn insert(&mut self, id: &Value) {
        self.insert_hashed(json_hash(id, 0), id.to_string());
    }

    /// Adds `key` under `hash`: the same table keyed otherwise (a
    /// session's lock waiters, by `hash_string()` of the lock's name).
    pub fn insert_hashed(&mut self, hash: u32, key: String) {
        self.insert_fast(hash, key);
        if self.len / 2 > self.mask() {
            self.expand();
        }
    }

    /// Removes the monitor `id` if present (`hmap_remove()`: no shrinking).
    pub fn remove(&mut self, id: &Value) -> bool {
        self.remove_hashed(json_hash(id, 0), &id.to_string())
    }

    /// Removes `key`, added under `hash`, if present.
    pub fn remove_hashed(&mut self, hash: u32, key: &str) -> bool {
        let b = hash as usize & self.mask();
        let chain = &mut self.buckets[b];
        match chain.iter().position(|(_, k)| k == key) {
            Some(i) => {
                chain.remove(i);
                self.len -= 1;
                true
            }
            None => false,
        }
    }

    /// Where `id` comes in ovsdb-server's walk of the table: a key that sorts
    /// like the walk; ids not in the table come after all the others.
    pub fn rank(&self, id: &Value) -> (usize, usize) {
        let hash = json_hash(id, 0);
        let key = id.to_string();
        let b = hash as usize & self.mask();
        let chain = &self.buckets[b];
        match chain.iter().rposition(|(_, k)| *k == key) {
            Some(i) => (b, chain.len() - 1 - i),
            None => (usize::MAX, 0),
        }
    }

    /// The ids (as JSON text) in walk order.
    pub fn walk(&self) -> Vec<&str> {
        self.buckets
            .iter()
            .flat_map(|c| c.iter().rev().map(|(_, k)| k.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!(format!("m{i}"))).collect()
    }

    /// Orders observed on ovsdb-server 3.1 (monitor_cond on todo, then one insert).
    #[test]
    fn seven_monitors_in_the_order_of_ovsdb_server() {
        let mut o = MonitorOrder::new();
        for id in ids(7) {
            o.insert(&id);
        }
        assert_eq!(
            o.walk(),
            ["\"m6\"", "\"m4\"", "\"m0\"", "\"m1\"", "\"m3\"", "\"m2\"", "\"m5\""]
        );
    }

    #[test]
    fn a_failed_request_leaves_the_table_grown() {
        let mut o = MonitorOrder::new();
        for id in ids(7) {
            o.insert(&id);
        }
        o.insert(&json!("z"));
        o.remove(&json!("z"));
        assert_eq!(
            o.walk(),
            ["\"m1\"", "\"m0\"", "\"m4\"", "\"m6\"", "\"m2\"", "\"m3\"", "\"m5\""]
        );
    }

    #[test]
    fn renaming_moves_to_the_head_of_the_new_bucket() {
        let mut o = MonitorOrder::new();
        for id in ids(7) {
            o.insert(&id);
        }
        o.remove(&json!("m3"));
        o.insert(&json!("q3"));
        assert_eq!(
            o.walk(),
            ["\"q3\"", "\"m6\"", "\"m4\"", "\"m0\"", "\"m1\"", "\"m2\"", "\"m5\""]
        );
    }

    #[test]
    fn rank_sorts_like_the_walk() {
        let mut o = MonitorOrder::new();
        let all: Vec<Value> = (0..40).map(|i| json!([i, "x"])).collect();
        for id in &all {
            o.insert(id);
        }
        let mut sorted = all.clone();
        sorted.sort_by_key(|id| o.rank(id));
        let texts: Vec<String> = sorted.iter().map(|v| v.to_string()).collect();
        assert_eq!(texts, o.walk());
        assert_eq!(o.rank(&json!("absent")).0, usize::MAX);
    }
}
