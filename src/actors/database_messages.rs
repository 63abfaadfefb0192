//! The messages the Database actor answers (see `actors::database`),
//! re-exported from there.

use crate::actors::{SessionHandle, SessionId};
use crate::db::execution::Op;
use crate::db::monitor::MonitorVersion;
use crate::db::raw_condition::ChangeRequests;
use crate::db::rbac::Identity;
use crate::schema::DatabaseSchema;
use crate::storage::Revision;
use actix::prelude::*;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// `transact` from a session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Transact {
    /// The requesting session.
    pub session: SessionHandle,
    /// The request id.
    pub id: Value,
    /// The operations (params after the database name).
    pub ops: Vec<Op>,
    /// Locks the session owns (for `assert`).
    pub owned_locks: Vec<String>,
    /// When the request arrived (for `wait` timeouts).
    pub received: Instant,
    /// The session's RBAC identity; `None` when its connection has no role.
    pub rbac: Option<Identity>,
    /// The session is read-only (its remote's `read_only`): write operations fail.
    pub read_only: bool,
}

/// A transaction from inside the server (e.g. `_Server` bookkeeping); may
/// write reserved databases. Replies with the result array.
#[derive(Message)]
#[rtype(result = "Value")]
pub struct InternalTransact {
    /// The operations.
    pub ops: Vec<Value>,
}

/// The `cancel` notification: fail a blocked transaction with "canceled".
#[derive(Message)]
#[rtype(result = "()")]
pub struct CancelTxn {
    /// The session.
    pub session: SessionId,
    /// The id of the transaction to cancel.
    pub id: Value,
}

/// `monitor`, `monitor_cond` or `monitor_cond_since`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddMonitor {
    /// The requesting session.
    pub session: SessionHandle,
    /// The request id.
    pub id: Value,
    /// The monitor's `json-value`.
    pub monitor_id: Value,
    /// Which notification format.
    pub version: MonitorVersion,
    /// `<monitor-requests>`.
    pub requests: Value,
    /// `monitor_cond_since`'s last transaction id.
    pub last_txn_id: Option<Value>,
}

/// `monitor_cancel`, or a session dropping a monitor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoveMonitor {
    /// The session.
    pub session: SessionId,
    /// The monitor's `json-value`.
    pub monitor_id: Value,
}

/// `monitor_cond_change`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChangeMonitor {
    /// The requesting session.
    pub session: SessionHandle,
    /// The request id.
    pub id: Value,
    /// The monitor's current `json-value`.
    pub monitor_id: Value,
    /// Its new `json-value`.
    pub new_monitor_id: Value,
    /// `<monitor-cond-change-requests>`.
    pub requests: ChangeRequests,
}

/// `convert`: replace the schema, converting the data.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Convert {
    /// The requesting session.
    pub session: SessionHandle,
    /// The request id.
    pub id: Value,
    /// The new schema.
    pub schema: Arc<DatabaseSchema>,
    /// Called with the new schema once converted (registry and `_Server` updates).
    pub on_done: Box<dyn FnOnce(Arc<DatabaseSchema>) + Send>,
}

/// Whether a session is change-aware (decides cancel vs disconnect on convert).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetChangeAware {
    /// The session.
    pub session: SessionId,
    /// The flag.
    pub aware: bool,
}

/// The number of rows and the applied revision (diagnostics, tests).
#[derive(Message)]
#[rtype(result = "(usize, Revision)")]
pub struct Stats;

/// What a scrape of the metrics reads from a database.
#[derive(Message)]
#[rtype(result = "DbSample")]
pub struct Sample;

/// What [`Sample`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbSample {
    /// Rows in the database.
    pub rows: usize,
    /// Monitors registered on it.
    pub monitors: usize,
    /// Whether its store answers.
    pub connected: bool,
    /// Transactions waiting to be executed.
    pub queued: usize,
}

/// The store's liveness changed (etcd reachable or not).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct StoreLiveness(pub bool);

/// What a database tells `_Server` about itself (clustered model).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DbStatusChanged {
    /// The database.
    pub name: String,
    /// Whether it is loaded and its store reachable.
    pub connected: bool,
    /// The applied store revision.
    pub index: Revision,
    /// The cluster id, once known from the store.
    pub cid: Uuid,
}

/// Compacts the database's log now (`ovsdb-server/compact`): `Ok(true)`
/// if it was compacted, `Ok(false)` if its store has nothing to compact
/// (memory; etcd, which compacts its own history), `Err` with why not.
#[derive(Message)]
#[rtype(result = "Result<bool, String>")]
pub struct Compact;

/// The database's storage health (`ovsdb-server/get-db-storage-status`,
/// `cluster/status`).
#[derive(Message)]
#[rtype(result = "StorageHealth")]
pub struct GetStorageHealth;

/// What [`GetStorageHealth`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageHealth {
    /// Why the store fails, if it does.
    pub error: Option<String>,
    /// Whether the database is loaded from its store.
    pub loaded: bool,
    /// Whether the store answers.
    pub connected: bool,
    /// The last store revision applied.
    pub revision: Revision,
    /// The cluster id (shared stores, once loaded).
    pub cid: Uuid,
    /// The store's kind (`file`, `memory`, `etcd`).
    pub kind: &'static str,
}
