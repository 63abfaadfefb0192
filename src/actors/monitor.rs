//! The Monitor actor: one per database and session lane (the arbiter a
//! session runs on). It holds the monitors of that lane's sessions as a
//! [`FanOut`], finds the groups each commit concerns through its condition
//! index, encodes each body once for all the sessions sharing it and hands
//! the updates to the sessions.
//!
//! Order is kept by one rule: once a session has a monitor in a database,
//! everything the Database actor sends that session (commits to fan out,
//! replies, monitor replies, cancellations) goes through the session's
//! lane's Monitor actor, in the order the Database decided it. One mailbox
//! and one handler per message then keep a transaction's monitor updates
//! before its reply and a monitor's initial reply before its first update,
//! without the Database waiting for acknowledgements; and all of a
//! session's updates of one commit come from one handler, so they are sent
//! together in ovsdb-server's order of its monitors.
//!
//! Lanes, not one actor per distinct selection (as DESIGN.md first said):
//! an OVN Southbound has thousands of distinct conditions, and one message
//! per selection per commit would cost more than the work it spreads, while
//! the lanes already spread sessions over the arbiters (`--threads`), so
//! each lane's fan-out runs on its own core, beside its sessions.

use crate::actors::{
    MonitorCanceled, Notify, SendEncodedReply, SendReply, SessionHandle, SessionId, TxnBlocked,
};
use crate::db::changes::ChangeSet;
use crate::db::fanout::FanOut;
use crate::db::monitor::Monitor;
use crate::db::update_frame::update_frame;
use crate::schema::DatabaseSchema;
use actix::prelude::*;
use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// The Monitor actor of one database on one lane.
pub struct MonitorActor {
    db: Arc<str>,
    fanout: FanOut<SessionHandle>,
}

impl MonitorActor {
    /// A Monitor actor for database `db`, with no monitors yet.
    pub fn new(db: Arc<str>) -> MonitorActor {
        MonitorActor {
            db,
            fanout: FanOut::default(),
        }
    }
}

impl Actor for MonitorActor {
    type Context = Context<Self>;
}

/// A commit to fan out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish {
    /// The schema the commit was made against.
    pub schema: Arc<DatabaseSchema>,
    /// The commit's transaction id (for `update3`).
    pub txn_id: Uuid,
    /// What it changed.
    pub changes: Arc<ChangeSet>,
}

impl Handler<Publish> for MonitorActor {
    type Result = ();
    fn handle(&mut self, m: Publish, _: &mut Context<Self>) {
        if self.fanout.is_empty() {
            return;
        }
        let bodies = self.fanout.updates(&m.schema, &m.changes);
        // Each session learns how many of its notifications are still to
        // come, to send them together in ovsdb-server's order.
        let mut left: HashMap<SessionId, usize> = HashMap::new();
        for (g, _) in &bodies {
            if let Some(group) = self.fanout.group(*g) {
                for member in &group.members {
                    *left.entry(member.session).or_insert(0) += 1;
                }
            }
        }
        for (g, body) in bodies {
            let Some(group) = self.fanout.group(g) else {
                continue;
            };
            // Members sharing a monitor id (identical monitors, as the IDLs
            // of one kind open) share its whole notification too.
            let mut last: Option<(&Value, Arc<str>, Bytes)> = None;
            for member in &group.members {
                let more = match left.get_mut(&member.session) {
                    Some(n) => {
                        *n = n.saturating_sub(1);
                        *n
                    }
                    None => 0,
                };
                let (monitor_key, frame) = match &last {
                    Some((id, key, frame)) if **id == member.monitor_id => {
                        (key.clone(), frame.clone())
                    }
                    _ => {
                        let key: Arc<str> = Arc::from(member.monitor_id.to_string());
                        let version = group.monitor.version;
                        let frame = update_frame(version, &member.monitor_id, &m.txn_id, &body);
                        last = Some((&member.monitor_id, key.clone(), frame.clone()));
                        (key, frame)
                    }
                };
                member.handle.notify.do_send(Notify {
                    db: self.db.clone(),
                    monitor_id: member.monitor_id.clone(),
                    monitor_key,
                    monitor: group.monitor.clone(),
                    schema: m.schema.clone(),
                    txn_id: m.txn_id,
                    body: body.clone(),
                    frame,
                    changes: m.changes.clone(),
                    more,
                });
            }
        }
    }
}

/// A notification of one session's own (not a commit's fan-out): the
/// update after a monitor's reply or a change of its conditions.
fn lone_notify(
    db: Arc<str>,
    monitor_id: Value,
    monitor: Arc<Monitor>,
    schema: Arc<DatabaseSchema>,
    txn_id: Uuid,
    body: Bytes,
) -> Notify {
    Notify {
        db,
        monitor_key: Arc::from(monitor_id.to_string()),
        frame: update_frame(monitor.version, &monitor_id, &txn_id, &body),
        monitor_id,
        monitor,
        schema,
        txn_id,
        body,
        changes: Arc::new(ChangeSet::default()),
        more: 0,
    }
}

/// A new monitor: its reply goes out, then it receives the commits that follow.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinMonitor {
    /// The session.
    pub session: SessionHandle,
    /// The session's id for the monitor.
    pub monitor_id: Value,
    /// The parsed monitor.
    pub monitor: Arc<Monitor>,
    /// The request id, the whole encoded reply and where its result lies in it.
    pub reply: (Value, Bytes, std::ops::Range<usize>),
    /// An empty `update3` to send after the reply, carrying this id (see
    /// `DatabaseActor::answer_monitor`).
    pub then_empty_update: Option<(Arc<DatabaseSchema>, Uuid)>,
}

impl Handler<JoinMonitor> for MonitorActor {
    type Result = ();
    fn handle(&mut self, m: JoinMonitor, _: &mut Context<Self>) {
        let (id, frame, result) = m.reply;
        m.session
            .reply_encoded
            .do_send(SendEncodedReply { id, frame, result });
        if let Some((schema, txn_id)) = m.then_empty_update {
            m.session.notify.do_send(lone_notify(
                self.db.clone(),
                m.monitor_id.clone(),
                m.monitor.clone(),
                schema,
                txn_id,
                Bytes::from_static(b"{}"),
            ));
        }
        self.fanout
            .join(m.monitor, m.session.id, m.monitor_id, m.session);
    }
}

/// `monitor_cancel`: the monitor receives nothing more.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveMonitor {
    /// The session.
    pub session: SessionId,
    /// The session's id for the monitor.
    pub monitor_id: Value,
}

impl Handler<LeaveMonitor> for MonitorActor {
    type Result = ();
    fn handle(&mut self, m: LeaveMonitor, _: &mut Context<Self>) {
        self.fanout.leave(m.session, &m.monitor_id);
    }
}

/// `monitor_cond_change`: the monitor moves to its new conditions (and
/// id), the rows entering and leaving them are sent, then the reply.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChangeConditions {
    /// The session.
    pub session: SessionHandle,
    /// The monitor's id until now.
    pub monitor_id: Value,
    /// Its id from now on.
    pub new_monitor_id: Value,
    /// The monitor with its new conditions.
    pub monitor: Arc<Monitor>,
    /// The update moving the client to the new conditions, if any rows
    /// move: the schema, the transaction id it is current at, the body.
    pub update: Option<(Arc<DatabaseSchema>, Uuid, Bytes)>,
    /// The request id.
    pub id: Value,
}

impl Handler<ChangeConditions> for MonitorActor {
    type Result = ();
    fn handle(&mut self, m: ChangeConditions, _: &mut Context<Self>) {
        self.fanout.change(
            m.monitor.clone(),
            m.session.id,
            &m.monitor_id,
            m.new_monitor_id.clone(),
            m.session.clone(),
        );
        if let Some((schema, txn_id, body)) = m.update {
            m.session.notify.do_send(lone_notify(
                self.db.clone(),
                m.new_monitor_id,
                m.monitor,
                schema,
                txn_id,
                body,
            ));
        }
        m.session.reply.do_send(SendReply {
            id: m.id,
            result: Ok(serde_json::json!({})),
        });
    }
}

/// What the Database sends a session through its lane, in order.
pub enum Outgoing {
    /// A reply.
    Reply(SendReply),
    /// A reply encoded beforehand.
    EncodedReply(SendEncodedReply),
    /// A transaction waits for the database to change.
    Blocked(TxnBlocked),
}

/// Passes a message to a session after what was sent it before.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forward {
    /// The session.
    pub session: SessionHandle,
    /// The message.
    pub message: Outgoing,
}

impl Outgoing {
    /// Hands the message to `session`.
    pub fn deliver(self, session: &SessionHandle) {
        match self {
            Outgoing::Reply(r) => session.reply.do_send(r),
            Outgoing::EncodedReply(r) => session.reply_encoded.do_send(r),
            Outgoing::Blocked(b) => session.blocked.do_send(b),
        }
    }
}

impl Handler<Forward> for MonitorActor {
    type Result = ();
    fn handle(&mut self, m: Forward, _: &mut Context<Self>) {
        m.message.deliver(&m.session);
    }
}

/// The schema changed: every monitor ends, with `monitor_canceled` for the
/// sessions in `notify` (change-aware ones), in that order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CancelAll {
    /// The (session, monitor id) pairs to notify, in ovsdb-server's order.
    pub notify: Vec<(SessionId, Value)>,
}

impl Handler<CancelAll> for MonitorActor {
    type Result = ();
    fn handle(&mut self, m: CancelAll, _: &mut Context<Self>) {
        let members = self.fanout.drain();
        for (session, monitor_id) in m.notify {
            if let Some(member) = members
                .iter()
                .find(|mem| mem.session == session && mem.monitor_id == monitor_id)
            {
                member.handle.canceled.do_send(MonitorCanceled {
                    db: self.db.clone(),
                    monitor_id,
                });
            }
        }
    }
}

/// A session ended: its monitors go.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetSession(pub SessionId);

impl Handler<ForgetSession> for MonitorActor {
    type Result = ();
    fn handle(&mut self, m: ForgetSession, _: &mut Context<Self>) {
        self.fanout.leave_session(m.0);
    }
}
