//! The lock table: OVSDB's named locks (RFC 7047 section 4.1.8-4.1.10),
//! shared by every database and session of the server.

use crate::actors::{LockEvent, SendReply, SessionGone, SessionHandle, SessionId};
use actix::prelude::*;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};

/// How a session asks for a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// `lock`: wait in line.
    Wait,
    /// `steal`: take it now; the owner gets `stolen`.
    Steal,
}

/// `lock` / `steal` for one session. The reply `{"locked": bool}` goes to the session's mailbox.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Lock {
    /// The requesting session.
    pub session: SessionHandle,
    /// The request id to reply to.
    pub id: Value,
    /// The lock's name (already validated).
    pub name: String,
    /// Wait or steal.
    pub mode: LockMode,
}

/// `unlock`: leaves the lock's queue (and releases it if owned). Replies `{}`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unlock {
    /// The requesting session.
    pub session: SessionHandle,
    /// The request id to reply to, if a reply is wanted.
    pub id: Option<Value>,
    /// The lock's name.
    pub name: String,
}

/// Who owns and who waits for each lock. Pure state, tested without actix.
#[derive(Default)]
pub struct LockState {
    /// Per lock: the owner first, then waiters in order.
    queues: HashMap<String, VecDeque<SessionId>>,
}

impl LockState {
    /// Adds `s` to the lock; returns (is_owner_now, session that lost the lock by theft).
    pub fn lock(&mut self, name: &str, s: SessionId, mode: LockMode) -> (bool, Option<SessionId>) {
        let q = self.queues.entry(name.to_string()).or_default();
        match mode {
            LockMode::Wait => {
                q.push_back(s);
                (q.front() == Some(&s), None)
            }
            LockMode::Steal => {
                // The robbed owner stays in line behind the thief, as in ovsdb-server.
                let victim = q.front().copied().filter(|o| *o != s);
                q.retain(|x| *x != s);
                q.push_front(s);
                (true, victim)
            }
        }
    }

    /// Removes `s` from the lock; returns the new owner if ownership passed on.
    pub fn unlock(&mut self, name: &str, s: SessionId) -> Option<SessionId> {
        let q = self.queues.get_mut(name)?;
        let was_owner = q.front() == Some(&s);
        q.retain(|x| *x != s);
        let next = if was_owner { q.front().copied() } else { None };
        if q.is_empty() {
            self.queues.remove(name);
        }
        next
    }

    /// Whether `s` owns the lock.
    pub fn owns(&self, name: &str, s: SessionId) -> bool {
        self.queues.get(name).and_then(|q| q.front()) == Some(&s)
    }

    /// Locks `s` is queued on.
    pub fn locks_of(&self, s: SessionId) -> Vec<String> {
        self.queues
            .iter()
            .filter(|(_, q)| q.contains(&s))
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// The lock table actor.
#[derive(Default)]
pub struct LockTable {
    state: LockState,
    sessions: HashMap<SessionId, SessionHandle>,
}

impl Actor for LockTable {
    type Context = Context<Self>;
}

impl LockTable {
    fn tell(&self, s: SessionId, name: &str, method: &'static str) {
        if let Some(h) = self.sessions.get(&s) {
            h.lock_event.do_send(LockEvent {
                name: name.to_string(),
                method,
            });
        }
    }
}

impl Handler<Lock> for LockTable {
    type Result = ();
    fn handle(&mut self, m: Lock, _: &mut Context<Self>) {
        self.sessions.insert(m.session.id, m.session.clone());
        let (locked, victim) = self.state.lock(&m.name, m.session.id, m.mode);
        if let Some(v) = victim {
            self.tell(v, &m.name, "stolen");
        }
        m.session.reply.do_send(SendReply {
            id: m.id,
            result: Ok(json!({ "locked": locked })),
        });
    }
}

impl Handler<Unlock> for LockTable {
    type Result = ();
    fn handle(&mut self, m: Unlock, _: &mut Context<Self>) {
        if let Some(next) = self.state.unlock(&m.name, m.session.id) {
            self.tell(next, &m.name, "locked");
        }
        if let Some(id) = m.id {
            m.session.reply.do_send(SendReply {
                id,
                result: Ok(json!({})),
            });
        }
    }
}

impl Handler<SessionGone> for LockTable {
    type Result = ();
    fn handle(&mut self, m: SessionGone, _: &mut Context<Self>) {
        for name in self.state.locks_of(m.id) {
            if let Some(next) = self.state.unlock(&name, m.id) {
                self.tell(next, &name, "locked");
            }
        }
        self.sessions.remove(&m.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_steal_unlock() {
        let mut st = LockState::default();
        assert_eq!(st.lock("a", 1, LockMode::Wait), (true, None));
        assert_eq!(st.lock("a", 2, LockMode::Wait), (false, None));
        assert_eq!(st.unlock("a", 1), Some(2));
        assert!(st.owns("a", 2));
        assert_eq!(st.lock("a", 3, LockMode::Steal), (true, Some(2)));
        assert!(st.owns("a", 3));
        assert_eq!(
            st.unlock("a", 3),
            Some(2),
            "the robbed session is next in line"
        );
        assert_eq!(st.unlock("a", 2), None);
        assert!(st.locks_of(2).is_empty());
    }
}
