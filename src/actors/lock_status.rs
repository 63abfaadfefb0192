//! A session's locks as its remote reports them: the `locks_held`,
//! `locks_waiting` and `locks_lost` keys ovsdb-server writes into an
//! active remote's Connection row (`ovsdb_jsonrpc_session_get_status`).
//! The session publishes here as its locks change; the remotes actor,
//! on another thread, reads it when it writes the status.

use std::collections::BTreeMap;
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
    locks: Mutex<BTreeMap<String, LockHold>>,
}

impl LockStatus {
    /// Records where the session stands on `name`; `None` once it is unlocked.
    pub fn set(&self, name: &str, hold: Option<LockHold>) {
        let mut l = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        match hold {
            Some(h) => {
                l.insert(name.to_string(), h);
            }
            None => {
                l.remove(name);
            }
        }
    }

    /// Forgets every lock (the session ended: ovsdb-server unlocks all).
    pub fn clear(&self) {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The status keys with their space-separated lock names, each key
    /// only when it names some lock, as ovsdb-server's update_remote_row
    /// writes them. Names are in sorted order (ovsdb-server lists them in
    /// the order of its per-session hash table).
    pub fn status_keys(&self) -> Vec<(&'static str, String)> {
        let l = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        [
            ("locks_held", LockHold::Held),
            ("locks_waiting", LockHold::Waiting),
            ("locks_lost", LockHold::Lost),
        ]
        .into_iter()
        .filter_map(|(key, want)| {
            let names: Vec<&str> = l
                .iter()
                .filter(|(_, h)| **h == want)
                .map(|(n, _)| n.as_str())
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
    fn keys_name_the_locks_of_each_kind() {
        let s = LockStatus::default();
        assert!(s.status_keys().is_empty());
        s.set("b", Some(LockHold::Held));
        s.set("a", Some(LockHold::Held));
        s.set("w", Some(LockHold::Waiting));
        s.set("x", Some(LockHold::Lost));
        assert_eq!(
            s.status_keys(),
            [
                ("locks_held", "a b".to_string()),
                ("locks_waiting", "w".to_string()),
                ("locks_lost", "x".to_string())
            ]
        );
        s.set("x", None);
        s.set("w", Some(LockHold::Held));
        assert_eq!(s.status_keys(), [("locks_held", "a b w".to_string())]);
        s.clear();
        assert!(s.status_keys().is_empty());
    }
}
