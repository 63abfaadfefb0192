//! The order in which ovsdb-server cancels a database's monitors when the
//! database is converted (the `monitor_canceled` notifications a session
//! gets): it walks the database's `ovsdb_monitor`s, one per distinct
//! selection of tables and columns ([`Monitor::selection_key`]), in the
//! order they were created, and each one's client monitors in the order
//! they joined it. A selection's `ovsdb_monitor` is destroyed when its last
//! client monitor leaves, so a later one with the same selection comes last.
//! `monitor_cond_change` keeps a monitor in its place, even under a new id.
//!
//! [`Monitor::selection_key`]: crate::db::monitor::Monitor::selection_key

use serde_json::Value;

/// One client monitor: its session and its monitor id.
pub type MonitorRef = (u64, Value);

/// The selections of a database and their client monitors, in ovsdb-server's order.
#[derive(Debug, Default, Clone)]
pub struct CancelOrder {
    selections: Vec<(String, Vec<MonitorRef>)>,
}

impl CancelOrder {
    /// A monitor joins the selection `key` (created at the end if new).
    pub fn join(&mut self, key: &str, m: MonitorRef) {
        match self.selections.iter_mut().find(|(k, _)| k == key) {
            Some((_, ms)) => ms.push(m),
            None => self.selections.push((key.to_string(), vec![m])),
        }
    }

    /// A monitor leaves; its selection goes when it was the last one.
    pub fn leave(&mut self, m: &MonitorRef) {
        for (_, ms) in self.selections.iter_mut() {
            ms.retain(|x| x != m);
        }
        self.selections.retain(|(_, ms)| !ms.is_empty());
    }

    /// Every monitor of `session` leaves.
    pub fn leave_session(&mut self, session: u64) {
        for (_, ms) in self.selections.iter_mut() {
            ms.retain(|(s, _)| *s != session);
        }
        self.selections.retain(|(_, ms)| !ms.is_empty());
    }

    /// A monitor takes a new id, keeping its place.
    pub fn rename(&mut self, m: &MonitorRef, new_id: Value) {
        for (_, ms) in self.selections.iter_mut() {
            for x in ms.iter_mut() {
                if x == m {
                    x.1 = new_id.clone();
                }
            }
        }
    }

    /// Every monitor, in cancellation order.
    pub fn walk(&self) -> impl Iterator<Item = &MonitorRef> {
        self.selections.iter().flat_map(|(_, ms)| ms.iter())
    }

    /// Forgets everything (the database was converted).
    pub fn clear(&mut self) {
        self.selections.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(s: u64, id: &str) -> MonitorRef {
        (s, json!(id))
    }

    #[test]
    fn selections_in_creation_order_monitors_in_join_order() {
        let mut o = CancelOrder::default();
        o.join("A", m(1, "a1"));
        o.join("B", m(1, "b1"));
        o.join("A", m(2, "a2"));
        o.rename(&m(1, "a1"), json!("x"));
        o.leave(&m(1, "b1"));
        o.join("B", m(2, "b2"));
        let got: Vec<_> = o.walk().cloned().collect();
        assert_eq!(got, vec![m(1, "x"), m(2, "a2"), m(2, "b2")]);
        o.leave_session(2);
        assert_eq!(o.walk().count(), 1);
    }
}
