//! The registry of served databases, shared by every session.

use crate::actors::database::DatabaseActor;
use crate::actors::lock_table::LockTable;
use crate::actors::{CloseSession, SessionId};
use crate::metrics::Metrics;
use crate::schema::DatabaseSchema;
use actix::{Addr, Recipient};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// One served database.
#[derive(Clone)]
pub struct DbEntry {
    /// Its actor.
    pub addr: Addr<DatabaseActor>,
    /// Its current schema (replaced by `convert`).
    pub schema: Arc<DatabaseSchema>,
}

/// Every database this server serves (including `_Server`), the lock table
/// and the server's identity.
pub struct Registry {
    dbs: RwLock<BTreeMap<String, DbEntry>>,
    /// This process's server id (`get_server_id`, `_Server`'s `sid`).
    pub server_id: Uuid,
    /// The lock table.
    pub locks: Addr<LockTable>,
    /// Every connected session: how to close it, and whether it is change-aware.
    sessions: Mutex<HashMap<SessionId, (Recipient<CloseSession>, bool)>>,
    /// This server's metrics (its own: several servers may share a process).
    pub metrics: Arc<Metrics>,
}

impl Registry {
    /// An empty registry.
    pub fn new(server_id: Uuid, locks: Addr<LockTable>) -> Arc<Registry> {
        Arc::new(Registry {
            dbs: RwLock::new(BTreeMap::new()),
            server_id,
            locks,
            sessions: Mutex::new(HashMap::new()),
            metrics: Arc::new(Metrics::new()),
        })
    }

    /// Adds or replaces a database.
    pub fn insert(&self, name: &str, entry: DbEntry) {
        if let Ok(mut dbs) = self.dbs.write() {
            dbs.insert(name.to_string(), entry);
        }
    }

    /// A database by name.
    pub fn get(&self, name: &str) -> Option<DbEntry> {
        self.dbs.read().ok().and_then(|d| d.get(name).cloned())
    }

    /// Records a database's new schema after a conversion.
    pub fn set_schema(&self, name: &str, schema: Arc<DatabaseSchema>) {
        if let Ok(mut dbs) = self.dbs.write() {
            if let Some(e) = dbs.get_mut(name) {
                e.schema = schema;
            }
        }
    }

    /// Database names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.dbs
            .read()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every database.
    pub fn all(&self) -> Vec<(String, DbEntry)> {
        self.dbs
            .read()
            .map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Stops serving a database; returns its entry if it was served.
    pub fn remove(&self, name: &str) -> Option<DbEntry> {
        self.dbs.write().ok().and_then(|mut d| d.remove(name))
    }

    /// How many sessions are connected.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Closes every session (`ovsdb-server/reconnect`): clients connect again.
    pub fn disconnect_all(&self, reason: &str) {
        if let Ok(s) = self.sessions.lock() {
            for (close, _) in s.values() {
                close.do_send(CloseSession {
                    reason: reason.to_string(),
                });
            }
        }
    }

    /// Records a connected session.
    pub fn add_session(&self, id: SessionId, close: Recipient<CloseSession>) {
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(id, (close, false));
        }
    }

    /// Forgets a session.
    pub fn remove_session(&self, id: SessionId) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(&id);
        }
    }

    /// Records `set_db_change_aware`.
    pub fn set_change_aware(&self, id: SessionId, aware: bool) {
        if let Ok(mut s) = self.sessions.lock() {
            if let Some(e) = s.get_mut(&id) {
                e.1 = aware;
            }
        }
    }

    /// Closes every session that did not declare itself change-aware, as
    /// ovsdb-server does when the set or schemas of databases change.
    pub fn disconnect_unaware(&self, reason: &str) {
        if let Ok(s) = self.sessions.lock() {
            for (close, aware) in s.values() {
                if !aware {
                    close.do_send(CloseSession {
                        reason: reason.to_string(),
                    });
                }
            }
        }
    }
}
