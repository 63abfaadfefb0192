//! A database's client monitors and the way to their sessions: the state
//! the Database actor keeps for monitors, without the actors. Each session
//! belongs to a lane (its arbiter); a lane's monitors are served by one
//! Monitor actor, and once a session had a monitor, everything for it
//! (replies included) goes through that actor, so that it arrives in the
//! order the database sent it (see `actors::monitor`).

use crate::db::cancel_order::{CancelOrder, MonitorRef};
use crate::db::monitor::Monitor;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A session's id (`actors::SessionId`).
pub type SessionId = u64;

/// A database's monitors, its lanes and the handle serving each lane: `A`
/// is a lane's handle (a Monitor actor's address), `L` where a lane runs
/// (an arbiter).
#[derive(Debug)]
pub struct MonitorRouting<A, L> {
    /// Every session's monitors, by session and monitor id (as a string).
    monitors: HashMap<(SessionId, String), Arc<Monitor>>,
    /// The handle of each lane that had monitors.
    handles: HashMap<usize, A>,
    /// Where each lane runs (empty: one lane, where the database runs).
    lanes: Arc<Vec<L>>,
    /// Sessions that had a monitor: everything for them goes through their
    /// lane's handle.
    routed: HashSet<SessionId>,
    /// The monitors in the order ovsdb-server cancels them on conversion.
    cancel_order: CancelOrder,
    /// Whether each session is change-aware (told, not disconnected, on
    /// conversion).
    change_aware: HashMap<SessionId, bool>,
}

impl<A, L> Default for MonitorRouting<A, L> {
    fn default() -> Self {
        MonitorRouting {
            monitors: HashMap::new(),
            handles: HashMap::new(),
            lanes: Arc::new(Vec::new()),
            routed: HashSet::new(),
            cancel_order: CancelOrder::default(),
            change_aware: HashMap::new(),
        }
    }
}

impl<A, L> MonitorRouting<A, L> {
    /// Runs lane `i` on `lanes[i]`.
    pub fn set_lanes(&mut self, lanes: Arc<Vec<L>>) {
        self.lanes = lanes;
    }

    /// The lane of a session whose own lane number is `session_lane`.
    pub fn lane_of(&self, session_lane: usize) -> usize {
        match self.lanes.len() {
            0 => 0,
            n => session_lane % n,
        }
    }

    /// Where `lane` runs, if not where the database runs.
    pub fn lane(&self, lane: usize) -> Option<&L> {
        self.lanes.get(lane)
    }

    /// The handle serving `lane`, if it has one.
    pub fn handle(&self, lane: usize) -> Option<&A> {
        self.handles.get(&lane)
    }

    /// `handle` serves `lane` from now on.
    pub fn set_handle(&mut self, lane: usize, handle: A) {
        self.handles.insert(lane, handle);
    }

    /// Every lane's handle.
    pub fn handles(&self) -> impl Iterator<Item = &A> {
        self.handles.values()
    }

    /// Whether any lane has a handle (some session had a monitor).
    pub fn has_handles(&self) -> bool {
        !self.handles.is_empty()
    }

    /// The handle messages for `session` (of lane `session_lane`) go
    /// through, if it had a monitor.
    pub fn route(&self, session: SessionId, session_lane: usize) -> Option<&A> {
        if !self.routed.contains(&session) {
            return None;
        }
        self.handles.get(&self.lane_of(session_lane))
    }

    /// Adds `session`'s monitor `id`; the session is routed from now on.
    pub fn add(&mut self, session: SessionId, id: &Value, monitor: Arc<Monitor>) {
        self.cancel_order
            .join(&monitor.selection_key(), (session, id.clone()));
        self.monitors.insert((session, id.to_string()), monitor);
        self.routed.insert(session);
    }

    /// `session`'s monitor `id`, if it has one.
    pub fn get(&self, session: SessionId, id: &Value) -> Option<&Arc<Monitor>> {
        self.monitors.get(&(session, id.to_string()))
    }

    /// Removes `session`'s monitor `id`; whether it had one.
    pub fn remove(&mut self, session: SessionId, id: &Value) -> bool {
        self.cancel_order.leave(&(session, id.clone()));
        self.monitors.remove(&(session, id.to_string())).is_some()
    }

    /// `session`'s monitor `id` becomes `monitor` under `new_id`, keeping
    /// its place in the cancellation order.
    pub fn replace(
        &mut self,
        session: SessionId,
        id: &Value,
        new_id: &Value,
        monitor: Arc<Monitor>,
    ) {
        self.monitors.remove(&(session, id.to_string()));
        self.monitors.insert((session, new_id.to_string()), monitor);
        self.cancel_order
            .rename(&(session, id.clone()), new_id.clone());
    }

    /// Records whether `session` is change-aware.
    pub fn set_change_aware(&mut self, session: SessionId, aware: bool) {
        self.change_aware.insert(session, aware);
    }

    /// Forgets everything about `session`; whether it was routed (its
    /// lanes' handles must forget it too).
    pub fn forget_session(&mut self, session: SessionId) -> bool {
        self.monitors.retain(|(s, _), _| *s != session);
        let routed = self.routed.remove(&session);
        self.cancel_order.leave_session(session);
        self.change_aware.remove(&session);
        routed
    }

    /// The database changed its schema: drops every monitor, returning the
    /// ones of change-aware sessions, to be told, in ovsdb-server's order.
    pub fn cancel_all(&mut self) -> Vec<MonitorRef> {
        let aware: Vec<MonitorRef> = self
            .cancel_order
            .walk()
            .filter(|(session, id)| {
                self.monitors.contains_key(&(*session, id.to_string()))
                    && self.change_aware.get(session).copied().unwrap_or(false)
            })
            .cloned()
            .collect();
        self.monitors.clear();
        self.cancel_order.clear();
        aware
    }

    /// How many monitors there are.
    pub fn len(&self) -> usize {
        self.monitors.len()
    }

    /// Whether there is no monitor.
    pub fn is_empty(&self) -> bool {
        self.monitors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::monitor::MonitorVersion;
    use crate::schema::DatabaseSchema;
    use serde_json::json;

    type Routing = MonitorRouting<&'static str, ()>;

    fn monitor(table: &str) -> Arc<Monitor> {
        let schema = DatabaseSchema::from_json(&json!({
            "name": "S",
            "tables": {
                "A": {"columns": {"n": {"type": "integer"}}},
                "B": {"columns": {"n": {"type": "integer"}}}
            }
        }))
        .expect("schema");
        let requests = json!({ table: {} });
        Arc::new(Monitor::from_json(&schema, MonitorVersion::V2, &requests).expect("monitor"))
    }

    #[test]
    fn lanes_wrap_and_default_to_one() {
        let mut r = Routing::default();
        assert_eq!((r.lane_of(0), r.lane_of(7)), (0, 0));
        assert!(r.lane(0).is_none());
        r.set_lanes(Arc::new(vec![(), (), ()]));
        assert_eq!((r.lane_of(1), r.lane_of(5), r.lane_of(6)), (1, 2, 0));
        assert!(r.lane(2).is_some() && r.lane(3).is_none());
    }

    #[test]
    fn only_sessions_with_a_monitor_are_routed() {
        let mut r = Routing::default();
        r.set_lanes(Arc::new(vec![(), ()]));
        r.set_handle(1, "lane 1");
        assert!(r.has_handles());
        assert_eq!(r.route(3, 1), None);
        r.add(3, &json!("m"), monitor("A"));
        assert_eq!(r.route(3, 1), Some(&"lane 1"));
        assert_eq!(r.route(3, 3), Some(&"lane 1"));
        // Its lane has no handle yet.
        assert_eq!(r.route(3, 0), None);
        // A session stays routed once its monitors are gone: its replies
        // must not overtake the updates queued before them.
        assert!(r.remove(3, &json!("m")));
        assert!(!r.remove(3, &json!("m")));
        assert_eq!(r.route(3, 1), Some(&"lane 1"));
        assert!(r.is_empty());
    }

    #[test]
    fn forgetting_a_session_drops_its_monitors_and_route() {
        let mut r = Routing::default();
        r.set_handle(0, "lane 0");
        r.add(1, &json!("a"), monitor("A"));
        r.add(1, &json!("b"), monitor("B"));
        r.add(2, &json!("a"), monitor("A"));
        r.set_change_aware(1, true);
        assert_eq!(r.len(), 3);
        assert!(r.forget_session(1));
        assert!(!r.forget_session(1));
        assert_eq!(r.len(), 1);
        assert_eq!(r.route(1, 0), None);
        assert!(r.get(2, &json!("a")).is_some());
        assert!(!r.forget_session(9));
    }

    #[test]
    fn replace_keeps_the_cancellation_place() {
        let mut r = Routing::default();
        r.add(1, &json!("x"), monitor("A"));
        r.add(2, &json!("y"), monitor("B"));
        r.add(3, &json!("z"), monitor("A"));
        for s in [1, 2, 3] {
            r.set_change_aware(s, true);
        }
        r.replace(1, &json!("x"), &json!("x2"), monitor("A"));
        assert!(r.get(1, &json!("x")).is_none());
        assert!(r.get(1, &json!("x2")).is_some());
        assert_eq!(
            r.cancel_all(),
            vec![(1, json!("x2")), (3, json!("z")), (2, json!("y"))]
        );
        assert!(r.is_empty());
        assert!(r.cancel_all().is_empty());
    }

    #[test]
    fn only_change_aware_sessions_are_told_of_a_cancel() {
        let mut r = Routing::default();
        r.add(1, &json!("a"), monitor("A"));
        r.add(2, &json!("a"), monitor("A"));
        r.add(3, &json!("a"), monitor("A"));
        r.set_change_aware(1, true);
        r.set_change_aware(2, false);
        assert_eq!(r.cancel_all(), vec![(1, json!("a"))]);
        // Routes outlive the monitors (the sessions' order still holds).
        r.set_handle(0, "lane 0");
        assert_eq!(r.route(2, 0), Some(&"lane 0"));
    }
}
