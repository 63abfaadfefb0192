//! The Database actor's monitors: `monitor`, `monitor_cond`,
//! `monitor_cond_since`, `monitor_cond_change` and `monitor_cancel`, and
//! the routing of everything for a session through its lane's Monitor
//! actor (the state is a `MonitorRouting`).

use crate::actors::database::{
    AddMonitor, Backend, ChangeMonitor, DatabaseActor, RemoveMonitor, SetChangeAware,
};
use crate::actors::monitor::{
    ChangeConditions, Forward, JoinMonitor, LeaveMonitor, MonitorActor, Outgoing, Publish,
};
use crate::actors::{SendReply, SessionHandle};
use crate::codec::framing::encode_message as encode_json;
use crate::db::changes::ChangeSet;
use crate::db::monitor::{check_last_txn_id, Monitor, MonitorVersion};
use crate::error::OvsdbError;
use crate::replica::{parse_txn_id, Replica};
use crate::storage::Revision;
use actix::prelude::*;
use serde_json::json;
use std::sync::Arc;

impl DatabaseActor {
    /// Sends a change set applied at `revision` to every Monitor actor.
    pub(super) fn notify_monitors(&mut self, revision: Revision, changes: Arc<ChangeSet>) {
        if !self.monitors.has_handles() {
            return;
        }
        let txn_id = self.replica.txn_id(revision);
        for a in self.monitors.handles() {
            a.do_send(Publish {
                schema: self.schema().clone(),
                txn_id,
                changes: changes.clone(),
            });
        }
    }

    /// The Monitor actor of `session`'s lane, started if there is none.
    fn monitor_actor(&mut self, session: &SessionHandle) -> Addr<MonitorActor> {
        let lane = self.monitors.lane_of(session.lane);
        if let Some(a) = self.monitors.handle(lane) {
            return a.clone();
        }
        let name = self.name.clone();
        let a = match self.monitors.lane(lane) {
            Some(arbiter) => {
                MonitorActor::start_in_arbiter(arbiter, move |_| MonitorActor::new(name))
            }
            None => MonitorActor::new(name).start(),
        };
        self.monitors.set_handle(lane, a.clone());
        a
    }

    /// The Monitor actor messages for `session` go through, if it had a monitor.
    pub(super) fn route(&self, session: &SessionHandle) -> Option<&Addr<MonitorActor>> {
        self.monitors.route(session.id, session.lane)
    }

    /// Sends `session` a message after everything sent it before: through
    /// the Monitor actor its updates go through, if it has one.
    pub(super) fn send_after(&self, session: &SessionHandle, message: Outgoing) {
        match self.route(session) {
            Some(a) => a.do_send(Forward {
                session: session.clone(),
                message,
            }),
            None => message.deliver(session),
        }
    }

    /// Sends `session` a reply after everything sent it before.
    pub(super) fn reply_to(&self, session: &SessionHandle, reply: SendReply) {
        self.send_after(session, Outgoing::Reply(reply));
    }

    /// Answers request `id` of `session` with the error `e`, after
    /// everything sent it before.
    pub(super) fn reply_error(
        &self,
        session: &SessionHandle,
        id: serde_json::Value,
        e: &OvsdbError,
    ) {
        self.reply_to(
            session,
            SendReply {
                id,
                result: Err(e.to_json()),
            },
        );
    }
}

impl Handler<AddMonitor> for DatabaseActor {
    type Result = ();
    fn handle(&mut self, m: AddMonitor, ctx: &mut Context<Self>) {
        if self.ahead() {
            // It reads the replica, which is ahead of the store right now.
            self.deferred.push(Box::new(move |act, ctx| {
                <Self as Handler<AddMonitor>>::handle(act, m, ctx)
            }));
            return;
        }
        if !self.loaded {
            if let Some(e) = self.unavailable() {
                self.reply_error(&m.session, m.id, &e);
                return;
            }
        }
        let parsed = Monitor::from_json(self.schema(), m.version, &m.requests).and_then(|mon| {
            match &m.last_txn_id {
                Some(last) => check_last_txn_id(last).map(|()| mon),
                None => Ok(mon),
            }
        });
        let monitor = match parsed {
            Ok(mon) => Arc::new(mon),
            Err(e) => {
                self.reply_error(&m.session, m.id, &e);
                return;
            }
        };
        let since = match m.version {
            MonitorVersion::V3 => m
                .last_txn_id
                .as_ref()
                .and_then(parse_txn_id)
                .and_then(|u| self.replica.revision_of(&u)),
            _ => None,
        };
        if let Some(rev) = since {
            if let Some(cs) = self.changes_since(rev) {
                self.answer_monitor(m, monitor, Some(cs));
                return;
            }
            // Before `since` the database had another schema: the client
            // gets the whole new state.
            if let (Backend::Store(store), true) = (
                &self.backend,
                self.replica.since <= rev && 0 < rev && rev < self.history.base(),
            ) {
                // Older than this server's memory (it restarted, or the
                // client comes from another server): what the store held
                // then, compared with now, is exactly what the client missed.
                let store = store.clone();
                let prefix = self.db_prefix();
                let fut = async move { store.range_at(&prefix, rev).await };
                ctx.spawn(fut.into_actor(self).map(move |res, act, _| {
                    let missed = res
                        .ok()
                        .and_then(|kvs| act.changes_from_snapshot(&kvs, rev));
                    act.answer_monitor(m, monitor, missed);
                }));
                return;
            }
        }
        self.answer_monitor(m, monitor, None);
    }
}

impl DatabaseActor {
    /// What changed since the database held `kvs` (read at `rev`), if they
    /// decode.
    fn changes_from_snapshot(
        &self,
        kvs: &[crate::storage::KeyValue],
        rev: Revision,
    ) -> Option<ChangeSet> {
        // Rows that do not decode are left out as the current replica left
        // them out when it loaded (and logged them then).
        let (then, _skipped) = Replica::load_skipping(
            self.schema().clone(),
            self.replica.keys.clone(),
            self.replica.cluster_id,
            &self.replica.space,
            kvs,
            rev,
        );
        Some(crate::db::changes::diff(&then.db, &self.replica.db))
    }

    /// Replies to a monitor request and adds the monitor: `missed` is what a
    /// `monitor_cond_since` client missed (`found: true`), `None` the full
    /// state.
    fn answer_monitor(&mut self, m: AddMonitor, monitor: Arc<Monitor>, missed: Option<ChangeSet>) {
        if !m.session.reply.connected() {
            // The session ended while its past was being read.
            return;
        }
        let last_id = self.replica.txn_id(self.replica.revision);
        for (t, c, whole) in monitor.probe_columns() {
            self.replica.db.ensure_probes(t, c, whole);
        }
        // The full state is written straight into the reply's bytes; only
        // a resumed V3 monitor's (small) difference goes through a value.
        let mut full = bytes::BytesMut::new();
        crate::codec::begin_reply(&m.id, &mut full);
        let start = full.len();
        let mut resumed_with_changes = false;
        match (m.version, missed) {
            (MonitorVersion::V1 | MonitorVersion::V2, _) => {
                monitor.write_initial(&self.replica.db, &mut full);
            }
            (MonitorVersion::V3, Some(cs)) => {
                let body = monitor.update(self.schema(), &cs);
                resumed_with_changes = body.is_some();
                let body = body.unwrap_or_else(|| json!({}));
                crate::codec::framing::write_json(
                    &json!([true, last_id.to_string(), body]),
                    &mut full,
                );
            }
            (MonitorVersion::V3, None) => {
                full.extend_from_slice(b"[false,");
                crate::codec::framing::write_str(&last_id.to_string(), &mut full);
                full.extend_from_slice(b",");
                monitor.write_initial(&self.replica.db, &mut full);
                full.extend_from_slice(b"]");
            }
        }
        let result = start..full.len();
        crate::codec::end_reply(&mut full);
        let actor = self.monitor_actor(&m.session);
        self.monitors
            .add(m.session.id, &m.monitor_id, monitor.clone());
        // The Python IDL (OVS 3.1) takes its last transaction id from
        // update3 notifications only, not from the reply: resumed with
        // changes, it would keep the old id, and its next resumption would
        // apply the same changes twice (sets and maps are sent as
        // differences). An empty update3 carrying the current id fixes its
        // id and changes nothing for any client.
        let then_empty_update = resumed_with_changes.then(|| (self.schema().clone(), last_id));
        actor.do_send(JoinMonitor {
            session: m.session,
            monitor_id: m.monitor_id,
            monitor,
            reply: (m.id, full.freeze(), result),
            then_empty_update,
        });
    }
}

impl Handler<RemoveMonitor> for DatabaseActor {
    type Result = ();
    fn handle(&mut self, m: RemoveMonitor, _: &mut Context<Self>) {
        if self.monitors.remove(m.session, &m.monitor_id) {
            for a in self.monitors.handles() {
                a.do_send(LeaveMonitor {
                    session: m.session,
                    monitor_id: m.monitor_id.clone(),
                });
            }
        }
    }
}

impl Handler<ChangeMonitor> for DatabaseActor {
    type Result = ();
    fn handle(&mut self, m: ChangeMonitor, _: &mut Context<Self>) {
        if self.ahead() {
            // It reads the replica, which is ahead of the store right now.
            self.deferred.push(Box::new(move |act, ctx| {
                <Self as Handler<ChangeMonitor>>::handle(act, m, ctx)
            }));
            return;
        }
        let Some(old) = self.monitors.get(m.session.id, &m.monitor_id).cloned() else {
            let e = OvsdbError::syntax(Some(&m.id), None, "unknown monitor session");
            self.reply_error(&m.session, m.id, &e);
            return;
        };
        let new = match old.with_change_requests(self.schema(), &m.requests) {
            Ok(n) => Arc::new(n),
            Err(e) => {
                self.reply_error(&m.session, m.id, &e);
                return;
            }
        };
        for (t, c, whole) in old.probe_columns().into_iter().chain(new.probe_columns()) {
            self.replica.db.ensure_probes(t, c, whole);
        }
        let update = old
            .condition_change_update(&new, &self.replica.db)
            .map(|body| {
                (
                    self.schema().clone(),
                    self.replica.txn_id(self.replica.revision),
                    encode_json(&body),
                )
            });
        self.monitors
            .replace(m.session.id, &m.monitor_id, &m.new_monitor_id, new.clone());
        let actor = self.monitor_actor(&m.session);
        actor.do_send(ChangeConditions {
            session: m.session,
            monitor_id: m.monitor_id,
            new_monitor_id: m.new_monitor_id,
            monitor: new,
            update,
            id: m.id,
        });
    }
}

impl Handler<SetChangeAware> for DatabaseActor {
    type Result = ();
    fn handle(&mut self, m: SetChangeAware, _: &mut Context<Self>) {
        self.monitors.set_change_aware(m.session, m.aware);
    }
}
