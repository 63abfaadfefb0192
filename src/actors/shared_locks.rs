//! OVSDB locks held in a shared store (etcd), as a pure state machine.
//!
//! A lock is held by whichever server's value is in its key
//! `_/_locks/<name>` (bound to that server's lease, so a dead server's locks
//! vanish with its lease). Within a server, sessions queue for the lock as
//! with ovsdb-server; the front of the queue is the session this server
//! tries to make the key's owner. The machine decides which store operation
//! to run (one at a time per lock) and which replies and `locked`/`stolen`
//! notifications to send; the lock table actor runs the operations and
//! feeds their outcomes and the key's watch events back.

use crate::actors::SessionId;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use uuid::Uuid;

/// The value of a lock key held by `session` of server `server_id`.
pub fn owner_value(server_id: Uuid, session: SessionId) -> String {
    format!("{server_id}/{session}")
}

/// A store operation on one lock's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Create the key for this session if it is absent.
    Acquire(SessionId),
    /// Write the key for `to` whoever holds it; `from` is the local session
    /// that held it, if any.
    Steal {
        /// The thief.
        to: SessionId,
        /// The local victim.
        from: Option<SessionId>,
    },
    /// Hand the key from one local session to another, if it is still `from`'s.
    Transfer {
        /// The session that held it.
        from: SessionId,
        /// The next one.
        to: SessionId,
    },
    /// Delete the key if it is still this session's.
    Release(SessionId),
}

/// How a store operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpOutcome {
    /// Its compare held and it was written.
    Done,
    /// Its compare failed: the key is not what this server thought.
    Refused,
    /// The store failed: try again later.
    Failed,
}

/// What the lock table must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Answer a `lock`/`steal` request with `{"locked": locked}`.
    Reply {
        /// The session.
        session: SessionId,
        /// The request id.
        id: Value,
        /// Whether the session holds the lock now.
        locked: bool,
    },
    /// Send a `locked` or `stolen` notification.
    Notify {
        /// The session.
        session: SessionId,
        /// `"locked"` or `"stolen"`.
        method: &'static str,
    },
    /// Run a store operation on the lock's key and report its outcome.
    Run(StoreOp),
    /// Reconcile this lock again after a pause (the store failed).
    RetryLater,
}

#[derive(Debug, Default)]
struct Lock {
    queue: VecDeque<SessionId>,
    /// The local session whose value the key holds (as last confirmed).
    held: Option<SessionId>,
    /// The key is held by another server (as last seen).
    remote_owner: bool,
    busy: bool,
    steal_for: Option<SessionId>,
    awaiting: HashMap<SessionId, Value>,
    /// The sessions queued by `steal`: robbed, they leave the queue, as
    /// ovsdb-server drops such a waiter (the lock is lost to them for good).
    thieves: HashSet<SessionId>,
}

/// The locks of one server in a shared store.
#[derive(Debug, Default)]
pub struct SharedLocks {
    locks: HashMap<String, Lock>,
}

impl SharedLocks {
    /// `lock` (`steal: false`) or `steal` by `s`, request id `id`.
    pub fn lock(&mut self, name: &str, s: SessionId, steal: bool, id: Value) -> Vec<Effect> {
        let l = self.locks.entry(name.to_string()).or_default();
        if steal {
            l.queue.retain(|x| *x != s);
            l.queue.push_front(s);
            l.thieves.insert(s);
            l.steal_for = Some(s);
            l.awaiting.insert(s, id);
        } else {
            l.queue.push_back(s);
            if l.queue.front() == Some(&s) && l.held.is_none() {
                l.awaiting.insert(s, id);
            } else {
                return vec![Effect::Reply {
                    session: s,
                    id,
                    locked: false,
                }];
            }
        }
        self.reconcile(name)
    }

    /// `unlock` by `s` (or `s` went away).
    pub fn unlock(&mut self, name: &str, s: SessionId) -> Vec<Effect> {
        let Some(l) = self.locks.get_mut(name) else {
            return Vec::new();
        };
        l.queue.retain(|x| *x != s);
        l.awaiting.remove(&s);
        l.thieves.remove(&s);
        if l.steal_for == Some(s) {
            l.steal_for = None;
        }
        self.reconcile(name)
    }

    /// Every lock `s` is queued on.
    pub fn locks_of(&self, s: SessionId) -> Vec<String> {
        self.locks
            .iter()
            .filter(|(_, l)| l.queue.contains(&s))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Every lock this server is queued on or holds.
    pub fn names(&self) -> Vec<String> {
        self.locks.keys().cloned().collect()
    }

    /// Whether `s` holds the lock (its value is in the key).
    pub fn holds(&self, name: &str, s: SessionId) -> bool {
        self.locks.get(name).and_then(|l| l.held) == Some(s)
    }

    /// A store operation on the lock finished.
    pub fn op_done(&mut self, name: &str, op: StoreOp, outcome: OpOutcome) -> Vec<Effect> {
        let Some(l) = self.locks.get_mut(name) else {
            return Vec::new();
        };
        l.busy = false;
        let mut fx = Vec::new();
        match (op, outcome) {
            (_, OpOutcome::Failed) => {
                // Nobody waits on a store that is down: answer, retry later.
                if let StoreOp::Acquire(d) | StoreOp::Steal { to: d, .. } = op {
                    if let Some(id) = l.awaiting.remove(&d) {
                        fx.push(Effect::Reply {
                            session: d,
                            id,
                            locked: false,
                        });
                    }
                }
                fx.push(Effect::RetryLater);
                return fx;
            }
            (StoreOp::Acquire(d), OpOutcome::Done) => {
                l.held = Some(d);
                l.remote_owner = false;
                fx.extend(granted(l, d));
            }
            (StoreOp::Acquire(d), OpOutcome::Refused) => {
                l.remote_owner = true;
                if let Some(id) = l.awaiting.remove(&d) {
                    fx.push(Effect::Reply {
                        session: d,
                        id,
                        locked: false,
                    });
                }
            }
            (StoreOp::Steal { to, from }, _) => {
                l.held = Some(to);
                l.remote_owner = false;
                if l.steal_for == Some(to) {
                    l.steal_for = None;
                }
                if let Some(v) = from.filter(|v| *v != to) {
                    if l.queue.contains(&v) {
                        fx.push(Effect::Notify {
                            session: v,
                            method: "stolen",
                        });
                        robbed(l, v);
                    }
                }
                fx.extend(granted(l, to));
            }
            (StoreOp::Transfer { to, .. }, OpOutcome::Done) => {
                l.held = Some(to);
                fx.extend(granted(l, to));
            }
            (StoreOp::Transfer { .. }, OpOutcome::Refused) => {
                l.held = None;
                l.remote_owner = true;
            }
            (StoreOp::Release(_), _) => {
                l.held = None;
            }
        }
        fx.extend(self.reconcile(name));
        fx
    }

    /// The lock's key was written (`Some(ours)`: by this server or not) or
    /// deleted (`None`).
    pub fn key_event(&mut self, name: &str, put_by_us: Option<bool>) -> Vec<Effect> {
        let Some(l) = self.locks.get_mut(name) else {
            return Vec::new();
        };
        let mut fx = Vec::new();
        match put_by_us {
            Some(true) => return fx,
            Some(false) => {
                l.remote_owner = true;
                if let Some(h) = l.held.take() {
                    fx.push(Effect::Notify {
                        session: h,
                        method: "stolen",
                    });
                    robbed(l, h);
                }
            }
            None => {
                l.remote_owner = false;
                if !l.busy {
                    // Our key vanished without our delete: our lease expired.
                    if let Some(h) = l.held.take() {
                        fx.push(Effect::Notify {
                            session: h,
                            method: "stolen",
                        });
                    }
                }
            }
        }
        fx.extend(self.reconcile(name));
        fx
    }

    /// Forget what is known of other servers (the watch was re-established):
    /// every lock is tried again.
    pub fn resync(&mut self) -> Vec<(String, Vec<Effect>)> {
        let names = self.names();
        names
            .into_iter()
            .map(|n| {
                if let Some(l) = self.locks.get_mut(&n) {
                    l.remote_owner = false;
                }
                let fx = self.reconcile(&n);
                (n, fx)
            })
            .collect()
    }

    /// The next store operation the lock needs, if any and none is running.
    pub fn reconcile(&mut self, name: &str) -> Vec<Effect> {
        let Some(l) = self.locks.get_mut(name) else {
            return Vec::new();
        };
        if l.busy {
            return Vec::new();
        }
        let front = l.queue.front().copied();
        let op = match (l.held, front) {
            (_, Some(d)) if l.steal_for == Some(d) => Some(StoreOp::Steal {
                to: d,
                from: l.held,
            }),
            (Some(h), Some(d)) if h == d => None,
            (Some(h), Some(d)) => Some(StoreOp::Transfer { from: h, to: d }),
            (Some(h), None) => Some(StoreOp::Release(h)),
            (None, Some(d)) if !l.remote_owner => Some(StoreOp::Acquire(d)),
            (None, Some(d)) => {
                return l
                    .awaiting
                    .remove(&d)
                    .map(|id| Effect::Reply {
                        session: d,
                        id,
                        locked: false,
                    })
                    .into_iter()
                    .collect();
            }
            (None, None) => {
                self.locks.remove(name);
                return Vec::new();
            }
        };
        match op {
            Some(op) => {
                l.busy = true;
                vec![Effect::Run(op)]
            }
            None => Vec::new(),
        }
    }
}

/// `v` was robbed of the lock: one that had stolen it leaves the queue.
fn robbed(l: &mut Lock, v: SessionId) {
    if l.thieves.remove(&v) {
        l.queue.retain(|x| *x != v);
    }
}

/// `d` holds the key now: answer its request, or tell it.
fn granted(l: &mut Lock, d: SessionId) -> Vec<Effect> {
    if !l.queue.contains(&d) {
        return Vec::new();
    }
    match l.awaiting.remove(&d) {
        Some(id) => vec![Effect::Reply {
            session: d,
            id,
            locked: true,
        }],
        None => vec![Effect::Notify {
            session: d,
            method: "locked",
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(fx: &[Effect]) -> Option<StoreOp> {
        fx.iter().find_map(|e| match e {
            Effect::Run(op) => Some(*op),
            _ => None,
        })
    }

    #[test]
    fn acquire_wait_transfer_release() {
        let mut m = SharedLocks::default();
        let fx = m.lock("a", 1, false, json!(10));
        assert_eq!(run(&fx), Some(StoreOp::Acquire(1)));
        let fx = m.lock("a", 2, false, json!(11));
        assert_eq!(
            fx,
            vec![Effect::Reply {
                session: 2,
                id: json!(11),
                locked: false
            }]
        );
        let fx = m.op_done("a", StoreOp::Acquire(1), OpOutcome::Done);
        assert_eq!(
            fx,
            vec![Effect::Reply {
                session: 1,
                id: json!(10),
                locked: true
            }]
        );
        assert!(m.holds("a", 1));
        let fx = m.unlock("a", 1);
        assert_eq!(run(&fx), Some(StoreOp::Transfer { from: 1, to: 2 }));
        let fx = m.op_done("a", StoreOp::Transfer { from: 1, to: 2 }, OpOutcome::Done);
        assert_eq!(
            fx,
            vec![Effect::Notify {
                session: 2,
                method: "locked"
            }]
        );
        let fx = m.unlock("a", 2);
        assert_eq!(run(&fx), Some(StoreOp::Release(2)));
        assert!(m
            .op_done("a", StoreOp::Release(2), OpOutcome::Done)
            .is_empty());
        assert!(m.names().is_empty());
    }

    #[test]
    fn remote_owner_then_delete_grants() {
        let mut m = SharedLocks::default();
        let fx = m.lock("a", 1, false, json!(1));
        assert_eq!(run(&fx), Some(StoreOp::Acquire(1)));
        let fx = m.op_done("a", StoreOp::Acquire(1), OpOutcome::Refused);
        assert_eq!(
            fx,
            vec![Effect::Reply {
                session: 1,
                id: json!(1),
                locked: false
            }]
        );
        // Another server's writes change nothing; its key's deletion lets us try.
        assert!(m.key_event("a", Some(false)).is_empty());
        let fx = m.key_event("a", None);
        assert_eq!(run(&fx), Some(StoreOp::Acquire(1)));
        let fx = m.op_done("a", StoreOp::Acquire(1), OpOutcome::Done);
        assert_eq!(
            fx,
            vec![Effect::Notify {
                session: 1,
                method: "locked"
            }]
        );
    }

    #[test]
    fn remote_steal_and_local_steal() {
        let mut m = SharedLocks::default();
        m.lock("a", 1, false, json!(1));
        m.op_done("a", StoreOp::Acquire(1), OpOutcome::Done);
        // Stolen by another server: 1 stays in line.
        let fx = m.key_event("a", Some(false));
        assert_eq!(
            fx,
            vec![Effect::Notify {
                session: 1,
                method: "stolen"
            }]
        );
        assert_eq!(m.locks_of(1), vec!["a".to_string()]);
        // A local thief takes it back from the other server.
        let fx = m.lock("a", 2, true, json!(2));
        assert_eq!(run(&fx), Some(StoreOp::Steal { to: 2, from: None }));
        let fx = m.op_done("a", StoreOp::Steal { to: 2, from: None }, OpOutcome::Done);
        assert_eq!(
            fx,
            vec![Effect::Reply {
                session: 2,
                id: json!(2),
                locked: true
            }]
        );
        // A second local thief robs 2, which is told.
        let fx = m.lock("a", 3, true, json!(3));
        let op = run(&fx).unwrap();
        assert_eq!(
            op,
            StoreOp::Steal {
                to: 3,
                from: Some(2)
            }
        );
        let fx = m.op_done("a", op, OpOutcome::Done);
        assert!(fx.contains(&Effect::Notify {
            session: 2,
            method: "stolen"
        }));
        assert!(m.holds("a", 3));
        // 2 had stolen it: robbed, it leaves the line (as in ovsdb-server);
        // 1, which waited, gets it when 3 lets go.
        assert!(m.locks_of(2).is_empty());
        let fx = m.unlock("a", 3);
        assert_eq!(run(&fx), Some(StoreOp::Transfer { from: 3, to: 1 }));
    }

    #[test]
    fn a_thief_robbed_by_another_server_leaves_the_line() {
        let mut m = SharedLocks::default();
        let fx = m.lock("a", 1, true, json!(1));
        let op = run(&fx).unwrap();
        m.op_done("a", op, OpOutcome::Done);
        let fx = m.key_event("a", Some(false));
        assert_eq!(
            fx,
            vec![Effect::Notify {
                session: 1,
                method: "stolen"
            }]
        );
        assert!(m.locks_of(1).is_empty());
        assert!(m.key_event("a", None).is_empty(), "nobody to grant it to");
    }

    #[test]
    fn store_failure_answers_and_retries() {
        let mut m = SharedLocks::default();
        m.lock("a", 1, false, json!(1));
        let fx = m.op_done("a", StoreOp::Acquire(1), OpOutcome::Failed);
        assert_eq!(
            fx,
            vec![
                Effect::Reply {
                    session: 1,
                    id: json!(1),
                    locked: false
                },
                Effect::RetryLater
            ]
        );
        let fx = m.reconcile("a");
        assert_eq!(run(&fx), Some(StoreOp::Acquire(1)));
        let fx = m.op_done("a", StoreOp::Acquire(1), OpOutcome::Done);
        assert_eq!(
            fx,
            vec![Effect::Notify {
                session: 1,
                method: "locked"
            }]
        );
    }

    #[test]
    fn lease_loss_is_a_theft_then_reacquired() {
        let mut m = SharedLocks::default();
        m.lock("a", 1, false, json!(1));
        m.op_done("a", StoreOp::Acquire(1), OpOutcome::Done);
        let fx = m.key_event("a", None);
        assert_eq!(
            fx[0],
            Effect::Notify {
                session: 1,
                method: "stolen"
            }
        );
        assert_eq!(run(&fx), Some(StoreOp::Acquire(1)));
    }
}
