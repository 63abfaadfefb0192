//! An in-process client: transact and monitor without a socket, for
//! applications that embed oxsdb's actors in their own actix system.

use crate::actors::database::{AddMonitor, RemoveMonitor, Transact};
use crate::actors::registry::Registry;
use crate::actors::{
    CloseSession, LockEvent, MonitorCanceled, Notify, SendEncodedReply, SendReply, SessionGone,
    SessionHandle, TxnBlocked,
};
use crate::db::execution::Op;
use crate::db::monitor::MonitorVersion;
use crate::db::rbac::Identity;
use actix::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Why an in-process request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No such database.
    #[error("unknown database {0}")]
    UnknownDatabase(String),
    /// The server answered with a JSON-RPC error.
    #[error("server error: {0}")]
    Server(Value),
    /// The server went away before answering.
    #[error("the server stopped before answering")]
    Gone,
}

/// One monitor update: the body of an `update`/`update2`/`update3` notification.
#[derive(Debug, Clone)]
pub struct Update {
    /// The `<table-updates>` body.
    pub body: Value,
    /// The transaction id (meaningful for `monitor_cond_since` monitors).
    pub txn_id: uuid::Uuid,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Expect {
    id: u64,
    tx: oneshot::Sender<Result<Value, Value>>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Subscribe {
    monitor_id: String,
    tx: mpsc::UnboundedSender<Update>,
}

/// The actor that stands in for a session.
#[derive(Default)]
pub struct ClientActor {
    pending: HashMap<u64, oneshot::Sender<Result<Value, Value>>>,
    early: HashMap<u64, Result<Value, Value>>,
    monitors: HashMap<String, mpsc::UnboundedSender<Update>>,
}

impl Actor for ClientActor {
    type Context = Context<Self>;
}

impl Handler<Expect> for ClientActor {
    type Result = ();
    fn handle(&mut self, m: Expect, _: &mut Context<Self>) {
        match self.early.remove(&m.id) {
            Some(r) => {
                let _ = m.tx.send(r);
            }
            None => {
                self.pending.insert(m.id, m.tx);
            }
        }
    }
}

impl Handler<Subscribe> for ClientActor {
    type Result = ();
    fn handle(&mut self, m: Subscribe, _: &mut Context<Self>) {
        self.monitors.insert(m.monitor_id, m.tx);
    }
}

impl Handler<SendReply> for ClientActor {
    type Result = ();
    fn handle(&mut self, m: SendReply, _: &mut Context<Self>) {
        let Some(id) = m.id.as_u64() else { return };
        match self.pending.remove(&id) {
            Some(tx) => {
                let _ = tx.send(m.result);
            }
            None => {
                self.early.insert(id, m.result);
            }
        }
    }
}

impl Handler<SendEncodedReply> for ClientActor {
    type Result = ();
    fn handle(&mut self, m: SendEncodedReply, ctx: &mut Context<Self>) {
        // An in-process client wants values: decoded back, as a socket client would.
        let text = m.frame.get(m.result.clone()).unwrap_or_default();
        let result = serde_json::from_slice(text).map_err(|e| {
            serde_json::json!({"error": "syntax error", "details": format!("reply not JSON: {e}")})
        });
        self.handle(SendReply { id: m.id, result }, ctx);
    }
}

impl Handler<Notify> for ClientActor {
    type Result = ();
    fn handle(&mut self, n: Notify, _: &mut Context<Self>) {
        if let Some(tx) = self.monitors.get(&n.monitor_id.to_string()) {
            let body = serde_json::from_slice(&n.body).unwrap_or(Value::Null);
            let _ = tx.send(Update {
                body,
                txn_id: n.txn_id,
            });
        }
    }
}

impl Handler<LockEvent> for ClientActor {
    type Result = ();
    fn handle(&mut self, _: LockEvent, _: &mut Context<Self>) {}
}

impl Handler<MonitorCanceled> for ClientActor {
    type Result = ();
    fn handle(&mut self, m: MonitorCanceled, _: &mut Context<Self>) {
        self.monitors.remove(&m.monitor_id.to_string());
    }
}

impl Handler<CloseSession> for ClientActor {
    type Result = ();
    fn handle(&mut self, _: CloseSession, _: &mut Context<Self>) {
        self.monitors.clear();
    }
}

static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1 << 62);

/// An in-process OVSDB client bound to a running server's registry.
pub struct LocalClient {
    registry: Arc<Registry>,
    addr: Addr<ClientActor>,
    handle: SessionHandle,
    next_id: AtomicU64,
    rbac: Option<Identity>,
}

impl LocalClient {
    /// A new client of the server whose registry this is (see `RunningServer::registry`).
    pub fn new(registry: Arc<Registry>) -> LocalClient {
        LocalClient::with_identity(registry, None, None)
    }

    /// A client whose transactions RBAC judges as a connection with `role`
    /// whose certificate names `peer_id` (as `SessionConfig`'s fields): for
    /// an embedding application acting for a chassis, and for tests.
    pub fn with_identity(
        registry: Arc<Registry>,
        role: Option<Arc<str>>,
        peer_id: Option<Arc<str>>,
    ) -> LocalClient {
        let id = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed);
        let addr = ClientActor::default().start();
        let handle = SessionHandle::of(id, addr.clone());
        LocalClient {
            registry,
            addr,
            handle,
            next_id: AtomicU64::new(1),
            rbac: Identity::new(role.as_ref(), peer_id.as_ref()),
        }
    }

    async fn request(&self, id: u64) -> Result<Value, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.addr
            .send(Expect { id, tx })
            .await
            .map_err(|_| ClientError::Gone)?;
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ClientError::Server(e)),
            Err(_) => Err(ClientError::Gone),
        }
    }

    /// Runs one transaction; returns the result array, as `transact` does.
    pub async fn transact(&self, db: &str, ops: Vec<Value>) -> Result<Value, ClientError> {
        let entry = self
            .registry
            .get(db)
            .ok_or_else(|| ClientError::UnknownDatabase(db.to_string()))?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        entry.addr.do_send(Transact {
            session: self.handle.clone(),
            id: Value::from(id),
            ops: ops.into_iter().map(Op::Json).collect(),
            owned_locks: Vec::new(),
            received: Instant::now(),
            rbac: self.rbac.clone(),
            read_only: false,
        });
        self.request(id).await
    }

    /// Starts a monitor (`requests` as in `monitor_cond`); returns its
    /// initial contents and a stream of updates, in commit order.
    pub async fn monitor(
        &self,
        db: &str,
        monitor_id: &str,
        version: MonitorVersion,
        requests: Value,
    ) -> Result<(Value, mpsc::UnboundedReceiver<Update>), ClientError> {
        let entry = self
            .registry
            .get(db)
            .ok_or_else(|| ClientError::UnknownDatabase(db.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mid = Value::String(monitor_id.to_string());
        self.addr
            .send(Subscribe {
                monitor_id: mid.to_string(),
                tx,
            })
            .await
            .map_err(|_| ClientError::Gone)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        entry.addr.do_send(AddMonitor {
            session: self.handle.clone(),
            id: Value::from(id),
            monitor_id: mid,
            version,
            requests,
            last_txn_id: None,
        });
        let initial = self.request(id).await?;
        Ok((initial, rx))
    }

    /// Stops a monitor.
    pub fn monitor_cancel(&self, db: &str, monitor_id: &str) {
        if let Some(entry) = self.registry.get(db) {
            entry.addr.do_send(RemoveMonitor {
                session: self.handle.id,
                monitor_id: Value::String(monitor_id.to_string()),
            });
        }
    }
}

impl Drop for LocalClient {
    fn drop(&mut self) {
        let gone = SessionGone { id: self.handle.id };
        for (_, e) in self.registry.all() {
            e.addr.do_send(gone);
        }
        self.registry.locks.do_send(gone);
    }
}

impl Handler<TxnBlocked> for ClientActor {
    type Result = ();
    fn handle(&mut self, _: TxnBlocked, _: &mut Context<Self>) {}
}
