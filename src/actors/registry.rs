//! The registry of served databases, shared by every session.

use crate::actors::database::DatabaseActor;
use crate::actors::lock_table::LockTable;
use crate::schema::DatabaseSchema;
use actix::Addr;
use std::collections::BTreeMap;
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
}

impl Registry {
    /// An empty registry.
    pub fn new(server_id: Uuid, locks: Addr<LockTable>) -> Arc<Registry> {
        Arc::new(Registry {
            dbs: RwLock::new(BTreeMap::new()),
            server_id,
            locks,
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
}
