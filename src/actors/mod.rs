//! Actors (actix): all of oxsdb's concurrency lives here. Each actor is a
//! thin shell that routes typed messages to the pure layers below.
//!
//! Every reply and notification a session receives is delivered through the
//! session's mailbox by the actor that produced it, so that the order a
//! client sees is the order the producer decided: a monitor update before the
//! reply of the transaction that caused it, a monitor's initial reply before
//! its first update.

pub mod activity;
pub mod database;
mod database_convert;
mod database_local;
mod database_locks;
mod database_messages;
mod database_monitors;
#[cfg(test)]
mod database_speculation_tests;
mod database_stats;
mod database_waits;
mod database_watch;
pub mod loader;
pub mod local_client;
pub mod lock_status;
pub mod lock_table;
pub mod monitor;
pub mod registry;
pub mod remote_io;
pub mod remotes;
/// Moved to the crate root (`crate::replica`); kept here for old paths.
pub use crate::replica;
pub mod server;
pub mod server_db;
pub mod session;
pub mod shared_convert;
pub mod shared_locks;
pub mod shared_write;
pub mod watch;
pub mod write_batch;

use crate::db::changes::ChangeSet;
use crate::db::monitor::Monitor;
use crate::schema::DatabaseSchema;
use actix::prelude::*;
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// Identifies one client connection within the process.
pub type SessionId = u64;

/// A JSON-RPC reply for a session's request, from whichever actor completed it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SendReply {
    /// The request's id.
    pub id: Value,
    /// `Ok(result)` or `Err(error)`, the two JSON-RPC reply forms.
    pub result: Result<Value, Value>,
}

/// A successful reply whose result was encoded beforehand (a large initial
/// monitor reply, written straight from the database).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SendEncodedReply {
    /// The request's id.
    pub id: Value,
    /// The whole reply, envelope and all, in ovsdb-server's format.
    pub frame: Bytes,
    /// Where the result (one complete JSON value) lies in `frame`.
    pub result: std::ops::Range<usize>,
}

/// One monitor notification for a session. The body is encoded once for every
/// session sharing the monitor; the change set lets a backlogged session merge
/// pending updates instead of queueing them.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Notify {
    /// The database.
    pub db: Arc<str>,
    /// The session's monitor id (the `json-value` of the monitor request).
    pub monitor_id: Value,
    /// `monitor_id` as JSON text, the session's key for the monitor: made
    /// once for all the sessions using the same id, not once per session.
    pub monitor_key: Arc<str>,
    /// The monitor, to re-render merged updates.
    pub monitor: Arc<Monitor>,
    /// The schema the monitor was parsed against.
    pub schema: Arc<DatabaseSchema>,
    /// The transaction id (for `update3`).
    pub txn_id: Uuid,
    /// The encoded `<table-updates>` body.
    pub body: Bytes,
    /// The whole notification as sent ([`crate::db::update_frame`]),
    /// encoded once for every session sharing the monitor id and body.
    pub frame: Bytes,
    /// The change set behind the body.
    pub changes: Arc<ChangeSet>,
    /// How many more notifications of the same commit follow for this
    /// session (0: the last), so that it can send them together in
    /// ovsdb-server's order of its monitors.
    pub more: usize,
}

/// A `locked` or `stolen` notification.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct LockEvent {
    /// The lock's name.
    pub name: String,
    /// `"locked"` or `"stolen"`.
    pub method: &'static str,
}

/// A `monitor_canceled` notification (the database was converted or removed).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct MonitorCanceled {
    /// The database.
    pub db: Arc<str>,
    /// The canceled monitor's id.
    pub monitor_id: Value,
}

/// Asks a session to close its connection (e.g. a client that is not
/// change-aware when its database's schema changes).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct CloseSession {
    /// Why, for the log.
    pub reason: String,
}

/// A transaction is waiting for the database to change (a `wait`): the
/// session may go on reading requests, as ovsdb-server does with triggers.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct TxnBlocked {
    /// The blocked transaction's request id.
    pub id: Value,
}

/// How other actors reach a session: cheap to clone (one reference count),
/// since every request and every monitor carries one.
#[derive(Clone)]
pub struct SessionHandle(std::sync::Arc<SessionChannels>);

impl SessionHandle {
    /// A handle on these channels.
    pub fn new(channels: SessionChannels) -> SessionHandle {
        SessionHandle(std::sync::Arc::new(channels))
    }

    /// A handle whose every channel is the actor at `addr` (a session, an
    /// in-process client, a bench's sink), on lane 0.
    pub fn of<A>(id: SessionId, addr: Addr<A>) -> SessionHandle
    where
        A: Actor<Context = Context<A>>
            + Handler<SendReply>
            + Handler<SendEncodedReply>
            + Handler<Notify>
            + Handler<LockEvent>
            + Handler<MonitorCanceled>
            + Handler<CloseSession>
            + Handler<TxnBlocked>,
    {
        SessionHandle::of_lane(id, addr, 0)
    }

    /// [`of`](Self::of) for a session on lane `lane`: the session arbiter
    /// whose Monitor actors fan updates out to it.
    pub fn of_lane<A>(id: SessionId, addr: Addr<A>, lane: usize) -> SessionHandle
    where
        A: Actor<Context = Context<A>>
            + Handler<SendReply>
            + Handler<SendEncodedReply>
            + Handler<Notify>
            + Handler<LockEvent>
            + Handler<MonitorCanceled>
            + Handler<CloseSession>
            + Handler<TxnBlocked>,
    {
        SessionHandle::new(SessionChannels {
            id,
            lane,
            reply: addr.clone().recipient(),
            reply_encoded: addr.clone().recipient(),
            notify: addr.clone().recipient(),
            lock_event: addr.clone().recipient(),
            canceled: addr.clone().recipient(),
            close: addr.clone().recipient(),
            blocked: addr.recipient(),
        })
    }
}

impl std::ops::Deref for SessionHandle {
    type Target = SessionChannels;
    fn deref(&self) -> &SessionChannels {
        &self.0
    }
}

/// The recipients of one session's messages.
pub struct SessionChannels {
    /// The session's id.
    pub id: SessionId,
    /// The session's lane (the index of its arbiter among the session
    /// arbiters): its monitors are fanned out by that lane's Monitor actor.
    pub lane: usize,
    /// Replies.
    pub reply: Recipient<SendReply>,
    /// Replies encoded beforehand.
    pub reply_encoded: Recipient<SendEncodedReply>,
    /// Monitor updates.
    pub notify: Recipient<Notify>,
    /// Lock notifications.
    pub lock_event: Recipient<LockEvent>,
    /// Monitor cancellations.
    pub canceled: Recipient<MonitorCanceled>,
    /// Forced close.
    pub close: Recipient<CloseSession>,
    /// Blocked transactions.
    pub blocked: Recipient<TxnBlocked>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "session {}", self.id)
    }
}

/// Tells actors that hold per-session state that a session has ended.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct SessionGone {
    /// The session that ended.
    pub id: SessionId,
}
