//! The `_Server` database: one `Database` row per served database, kept by
//! the server itself, readable and monitorable by clients (ovsdb-server(5)).

use crate::actors::database::InternalTransact;
use crate::actors::registry::Registry;
use crate::schema::DatabaseSchema;
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

/// What `_Server` says about one database.
#[derive(Debug, Clone)]
pub struct DatabaseStatus {
    /// The database's name.
    pub name: String,
    /// `standalone` or `clustered`.
    pub model: &'static str,
    /// Whether the server is connected to the database's storage.
    pub connected: bool,
    /// Whether this server can commit (always, for standalone).
    pub leader: bool,
    /// The schema.
    pub schema: Arc<DatabaseSchema>,
    /// Cluster id (clustered only).
    pub cid: Option<Uuid>,
    /// Server id (clustered only).
    pub sid: Option<Uuid>,
    /// Applied index (clustered only).
    pub index: Option<i64>,
}

fn opt_uuid(v: Option<Uuid>) -> Value {
    v.map_or(json!(["set", []]), |u| json!(["uuid", u.to_string()]))
}

fn opt_int(v: Option<i64>) -> Value {
    v.map_or(json!(["set", []]), |i| json!(i))
}

/// The operations that insert or replace the `Database` row of `st`.
pub fn upsert_ops(st: &DatabaseStatus) -> Vec<Value> {
    let row = json!({
        "name": st.name,
        "model": st.model,
        "connected": st.connected,
        "leader": st.leader,
        "schema": ["set", [st.schema.to_json().to_string()]],
        "cid": opt_uuid(st.cid),
        "sid": opt_uuid(st.sid),
        "index": opt_int(st.index),
    });
    vec![
        json!({"op": "delete", "table": "Database", "where": [["name", "==", st.name]]}),
        json!({"op": "insert", "table": "Database", "row": row}),
    ]
}

/// After `convert`: record the new schema in the registry and in `_Server`.
pub fn database_converted(registry: &Arc<Registry>, name: &str, schema: Arc<DatabaseSchema>) {
    registry.set_schema(name, schema.clone());
    registry.disconnect_unaware(&format!("database {name} was converted to a new schema"));
    if let Some(server) = registry.get("_Server") {
        let ops = vec![json!({
            "op": "update",
            "table": "Database",
            "where": [["name", "==", name]],
            "row": {"schema": ["set", [schema.to_json().to_string()]]},
        })];
        server.addr.do_send(InternalTransact { ops });
    }
}
