//! A session's locks as its remote reports them: the `locks_held`,
//! `locks_waiting` and `locks_lost` keys ovsdb-server writes into an
//! active remote's Connection row (`ovsdb_jsonrpc_session_get_status`).
//! The session publishes here as its locks change; the remotes actor,
//! on another thread, reads it when it writes the status.
//!
//! ovsdb-server lists the names of each kind in the order of the
//! session's table of lock waiters (a hash table keyed by the name, a
//! waiter added at `lock`/`steal` and removed at `unlock`); the same
//! table is replayed here ([`MonitorOrder`]) to list them in that order.

use crate::codec::json_hash::hash_string;
use crate::db::monitor_order::MonitorOrder;
use std::collections::HashMap;
use std::sync::Mutex;

/// Where a session stands on one lock it asked for and has not unlocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockHold {
    /// It owns the lock.
    Held,
    /// It asked with `lock` and waits in line.
    Waiting,
    /// It took the lock with `steal` and had it stolen: ovsdb-server drops
    /// such a session from the lock's line, so it never gets it back
    /// without `unlock` and a new request.
    Lost,
}

/// The shared view of one session's locks.
#[derive(Debug, Default)]
pub struct LockStatus {
    locks: Mutex<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    holds: HashMap<String, LockHold>,
    /// The session's table of waiters, for its walk order.
    order: MonitorOrder,
}

impl LockStatus {
    /// Records where the session stands on `name`; `None` once it is unlocked.
    pub fn set(&self, name: &str, hold: Option<LockHold>) {
        let mut l = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        match hold {
            Some(h) => {
                if l.holds.insert(name.to_string(), h).is_none() {
                    l.order
                        .insert_hashed(hash_string(name, 0), name.to_string());
                }
            }
            None => {
                if l.holds.remove(name).is_some() {
                    l.order.remove_hashed(hash_string(name, 0), name);
                }
            }
        }
    }

    /// Forgets every lock (the session ended: ovsdb-server unlocks all).
    pub fn clear(&self) {
        *self.locks.lock().unwrap_or_else(|e| e.into_inner()) = Waiters::default();
    }

    /// The status keys with their space-separated lock names, each key
    /// only when it names some lock, as ovsdb-server's update_remote_row
    /// writes them, in the order of ovsdb-server's table of waiters.
    pub fn status_keys(&self) -> Vec<(&'static str, String)> {
        let l = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        let walk: Vec<(&str, LockHold)> = l
            .order
            .walk()
            .into_iter()
            .filter_map(|n| Some((n, *l.holds.get(n)?)))
            .collect();
        [
            ("locks_held", LockHold::Held),
            ("locks_waiting", LockHold::Waiting),
            ("locks_lost", LockHold::Lost),
        ]
        .into_iter()
        .filter_map(|(key, want)| {
            let names: Vec<&str> = walk
                .iter()
                .filter(|(_, h)| *h == want)
                .map(|(n, _)| *n)
                .collect();
            (!names.is_empty()).then(|| (key, names.join(" ")))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_locks_of_each_kind_in_the_tables_order() {
        let s = LockStatus::default();
        assert!(s.status_keys().is_empty());
        s.set("b", Some(LockHold::Held));
        s.set("a", Some(LockHold::Held));
        s.set("w", Some(LockHold::Waiting));
        s.set("x", Some(LockHold::Lost));
        // Not sorted: the walk of ovsdb-server's table (tests/tls.rs
        // compares longer histories with ovsdb-server itself).
        assert_eq!(
            s.status_keys(),
            [
                ("locks_held", "b a".to_string()),
                ("locks_waiting", "w".to_string()),
                ("locks_lost", "x".to_string())
            ]
        );
        s.set("x", None);
        s.set("w", Some(LockHold::Held));
        let held = s.status_keys();
        assert_eq!(held.len(), 1);
        let mut names: Vec<&str> = held[0].1.split(' ').collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "b", "w"]);
        s.clear();
        assert!(s.status_keys().is_empty());
    }
}
