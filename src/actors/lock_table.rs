//! The lock table: OVSDB's named locks (RFC 7047 section 4.1.8-4.1.10),
//! shared by every database and session of the server.

use crate::actors::shared_locks::{owner_value, Effect, OpOutcome, SharedLocks, StoreOp};
use crate::actors::{LockEvent, SendReply, SessionGone, SessionHandle, SessionId};
use crate::storage::keys::{Keys, ParsedKey};
use crate::storage::{Compare, EventKind, LeaseId, Storage, StorageError, WatchBatch, WriteOp};
use actix::prelude::*;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

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
    /// Per lock: the owner first, then waiters in order, each with how it asked.
    queues: HashMap<String, VecDeque<(SessionId, LockMode)>>,
}

impl LockState {
    /// Adds `s` to the lock; returns (is_owner_now, session that lost the lock by theft).
    pub fn lock(&mut self, name: &str, s: SessionId, mode: LockMode) -> (bool, Option<SessionId>) {
        let q = self.queues.entry(name.to_string()).or_default();
        match mode {
            LockMode::Wait => {
                q.push_back((s, mode));
                (q.front().map(|f| f.0) == Some(s), None)
            }
            LockMode::Steal => {
                let victim = q.front().copied().filter(|o| o.0 != s);
                q.retain(|x| x.0 != s);
                // As ovsdb-server: a robbed owner that had waited stays in
                // line behind the thief; one that had stolen the lock
                // itself leaves the line (it has lost the lock for good).
                if let Some((v, LockMode::Steal)) = victim {
                    q.retain(|x| x.0 != v);
                }
                q.push_front((s, mode));
                (true, victim.map(|v| v.0))
            }
        }
    }

    /// Removes `s` from the lock; returns the new owner if ownership passed on.
    pub fn unlock(&mut self, name: &str, s: SessionId) -> Option<SessionId> {
        let q = self.queues.get_mut(name)?;
        let was_owner = q.front().map(|f| f.0) == Some(s);
        q.retain(|x| x.0 != s);
        let next = if was_owner {
            q.front().map(|f| f.0)
        } else {
            None
        };
        if q.is_empty() {
            self.queues.remove(name);
        }
        next
    }

    /// Whether `s` owns the lock.
    pub fn owns(&self, name: &str, s: SessionId) -> bool {
        self.queues.get(name).and_then(|q| q.front()).map(|f| f.0) == Some(s)
    }

    /// Locks `s` is queued on.
    pub fn locks_of(&self, s: SessionId) -> Vec<String> {
        self.queues
            .iter()
            .filter(|(_, q)| q.iter().any(|x| x.0 == s))
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// Locks kept in a shared store (etcd): keys bound to this server's lease.
pub struct SharedBackend {
    store: Arc<dyn Storage>,
    keys: Keys,
    server_id: Uuid,
    ttl: Duration,
    lease: Option<LeaseId>,
    state: SharedLocks,
}

/// The lock table actor.
#[derive(Default)]
pub struct LockTable {
    state: LockState,
    sessions: HashMap<SessionId, SessionHandle>,
    shared: Option<SharedBackend>,
}

impl LockTable {
    /// A lock table whose locks live in a shared store, so that they hold
    /// across every server of the service; a dead server's locks are
    /// released when its lease of `ttl` expires.
    pub fn shared(
        store: Arc<dyn Storage>,
        keys: Keys,
        server_id: Uuid,
        ttl: Duration,
    ) -> LockTable {
        LockTable {
            shared: Some(SharedBackend {
                store,
                keys,
                server_id,
                ttl,
                lease: None,
                state: SharedLocks::default(),
            }),
            ..LockTable::default()
        }
    }

    fn grant_lease(&mut self, ctx: &mut Context<Self>) {
        let Some(sh) = &self.shared else { return };
        let (store, ttl) = (sh.store.clone(), sh.ttl);
        ctx.spawn(
            async move { store.grant_lease(ttl).await }
                .into_actor(self)
                .map(|res, act, ctx| match res {
                    Ok(lease) => {
                        tracing::debug!(lease, "lock lease granted");
                        if let Some(sh) = &mut act.shared {
                            sh.lease = Some(lease);
                        }
                        act.resync(ctx);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot grant the lock lease; retrying");
                        ctx.run_later(Duration::from_millis(500), |act, ctx| act.grant_lease(ctx));
                    }
                }),
        );
    }

    fn keep_alive(&mut self, ctx: &mut Context<Self>) {
        let Some(sh) = &self.shared else { return };
        let Some(lease) = sh.lease else { return };
        let store = sh.store.clone();
        ctx.spawn(
            async move { store.keep_alive(lease).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    if let Err(StorageError::LeaseNotFound(_)) = res {
                        // Expired while the store was away: our lock keys are gone too.
                        tracing::warn!(
                            lease,
                            "the lock lease expired; locks held here were released"
                        );
                        if let Some(sh) = &mut act.shared {
                            if sh.lease == Some(lease) {
                                sh.lease = None;
                                act.grant_lease(ctx);
                            }
                        }
                    }
                }),
        );
    }

    fn watch_locks(&mut self, ctx: &mut Context<Self>) {
        let Some(sh) = &self.shared else { return };
        let store = sh.store.clone();
        let prefix = sh.keys.locks_prefix();
        ctx.spawn(
            async move { store.watch_without_prev(&prefix, 0).await }
                .into_actor(self)
                .map(|res, act, ctx| match res {
                    Ok(stream) => {
                        ctx.add_stream(stream);
                        act.resync(ctx);
                    }
                    Err(e) => {
                        // Retried quietly while the store is down; anything
                        // else (a refused request) must show in the log.
                        if e.is_retryable() {
                            tracing::debug!(error = %e, "cannot watch the lock keys; retrying");
                        } else {
                            tracing::error!(error = %e, "cannot watch the lock keys; retrying");
                        }
                        ctx.run_later(Duration::from_millis(500), |act, ctx| act.watch_locks(ctx));
                    }
                }),
        );
    }

    fn resync(&mut self, ctx: &mut Context<Self>) {
        let Some(sh) = &mut self.shared else { return };
        for (name, fx) in sh.state.resync() {
            self.apply(&name, fx, ctx);
        }
    }

    /// Carries out what the shared lock state decided.
    fn apply(&mut self, name: &str, effects: Vec<Effect>, ctx: &mut Context<Self>) {
        for e in effects {
            match e {
                Effect::Reply {
                    session,
                    id,
                    locked,
                } => {
                    if let Some(h) = self.sessions.get(&session) {
                        h.reply.do_send(SendReply {
                            id,
                            result: Ok(json!({ "locked": locked })),
                        });
                    }
                }
                Effect::Notify { session, method } => self.tell(session, name, method),
                Effect::RetryLater => {
                    let name = name.to_string();
                    ctx.run_later(Duration::from_millis(500), move |act, ctx| {
                        let fx = match &mut act.shared {
                            Some(sh) => sh.state.reconcile(&name),
                            None => Vec::new(),
                        };
                        act.apply(&name, fx, ctx);
                    });
                }
                Effect::Run(op) => self.run_op(name, op, ctx),
            }
        }
    }

    fn run_op(&mut self, name: &str, op: StoreOp, ctx: &mut Context<Self>) {
        let Some(sh) = &self.shared else { return };
        let Ok(key) = sh.keys.lock(name) else { return };
        let value = |s: SessionId| bytes::Bytes::from(owner_value(sh.server_id, s));
        let put = |s: SessionId| match sh.lease {
            Some(l) => WriteOp::put_with_lease(key.clone(), value(s), l),
            None => WriteOp::put(key.clone(), value(s)),
        };
        let (compares, writes) = match op {
            StoreOp::Acquire(d) => (vec![Compare::absent(key.clone())], vec![put(d)]),
            StoreOp::Steal { to, .. } => (Vec::new(), vec![put(to)]),
            StoreOp::Transfer { from, to } => (
                vec![Compare::value(key.clone(), value(from))],
                vec![put(to)],
            ),
            StoreOp::Release(h) => (
                vec![Compare::value(key.clone(), value(h))],
                vec![WriteOp::delete(key.clone())],
            ),
        };
        let needs_lease = !matches!(op, StoreOp::Release(_));
        let no_lease = needs_lease && sh.lease.is_none();
        let store = sh.store.clone();
        let name = name.to_string();
        ctx.spawn(
            async move {
                if no_lease {
                    // A key without the lease would outlive this server.
                    return Err(StorageError::Unavailable("no lock lease yet".into()));
                }
                store.commit(compares, writes).await
            }
            .into_actor(self)
            .map(move |res, act, ctx| {
                let outcome = match &res {
                    Ok(r) if r.succeeded => OpOutcome::Done,
                    Ok(_) => OpOutcome::Refused,
                    Err(e) => {
                        tracing::debug!(lock = %name, error = %e, "lock operation failed; retrying");
                        if let (StorageError::LeaseNotFound(_), Some(sh)) = (e, &mut act.shared) {
                            if sh.lease.is_some() {
                                sh.lease = None;
                                act.grant_lease(ctx);
                            }
                        }
                        OpOutcome::Failed
                    }
                };
                let fx = match &mut act.shared {
                    Some(sh) => sh.state.op_done(&name, op, outcome),
                    None => Vec::new(),
                };
                act.apply(&name, fx, ctx);
            }),
        );
    }
}

impl Actor for LockTable {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(sh) = &self.shared {
            let period = (sh.ttl / 3).max(Duration::from_millis(200));
            self.grant_lease(ctx);
            self.watch_locks(ctx);
            ctx.run_interval(period, |act, ctx| act.keep_alive(ctx));
        }
    }
}

impl StreamHandler<Result<WatchBatch, StorageError>> for LockTable {
    fn handle(&mut self, item: Result<WatchBatch, StorageError>, ctx: &mut Context<Self>) {
        let Ok(batch) = item else { return };
        let Some(sh) = &mut self.shared else { return };
        let ours = format!("{}/", sh.server_id);
        let mut todo = Vec::new();
        for ev in &batch.events {
            let Some(ParsedKey::Lock { name }) = sh.keys.parse(&ev.key) else {
                continue;
            };
            let by_us = match ev.kind {
                EventKind::Put => Some(
                    ev.value
                        .as_ref()
                        .is_some_and(|v| v.starts_with(ours.as_bytes())),
                ),
                EventKind::Delete => None,
            };
            let fx = sh.state.key_event(name, by_us);
            todo.push((name.to_string(), fx));
        }
        for (name, fx) in todo {
            self.apply(&name, fx, ctx);
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The watch broke (the store went away for long): watch anew and try every lock again.
        ctx.run_later(Duration::from_millis(500), |act, ctx| act.watch_locks(ctx));
    }
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
    fn handle(&mut self, m: Lock, ctx: &mut Context<Self>) {
        self.sessions.insert(m.session.id, m.session.clone());
        if let Some(sh) = &mut self.shared {
            let fx = sh
                .state
                .lock(&m.name, m.session.id, m.mode == LockMode::Steal, m.id);
            self.apply(&m.name, fx, ctx);
            return;
        }
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
    fn handle(&mut self, m: Unlock, ctx: &mut Context<Self>) {
        if let Some(sh) = &mut self.shared {
            let fx = sh.state.unlock(&m.name, m.session.id);
            self.apply(&m.name, fx, ctx);
            if let Some(id) = m.id {
                m.session.reply.do_send(SendReply {
                    id,
                    result: Ok(json!({})),
                });
            }
            return;
        }
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
    fn handle(&mut self, m: SessionGone, ctx: &mut Context<Self>) {
        if let Some(sh) = &mut self.shared {
            for name in sh.state.locks_of(m.id) {
                let fx = match &mut self.shared {
                    Some(sh) => sh.state.unlock(&name, m.id),
                    None => Vec::new(),
                };
                self.apply(&name, fx, ctx);
            }
            self.sessions.remove(&m.id);
            return;
        }
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

    #[test]
    fn a_thief_robbed_leaves_the_line() {
        let mut st = LockState::default();
        assert_eq!(st.lock("a", 1, LockMode::Steal), (true, None));
        assert_eq!(st.lock("a", 2, LockMode::Steal), (true, Some(1)));
        assert!(
            st.locks_of(1).is_empty(),
            "ovsdb-server drops it from the line"
        );
        assert_eq!(st.unlock("a", 2), None, "nobody is next");
        assert_eq!(st.unlock("a", 1), None);
    }
}
