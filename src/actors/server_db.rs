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

/// Keeps the `Database` rows of a clustered server's `_Server` up to date:
/// connectivity follows the store at once, the applied index at most every
/// [`INDEX_FLUSH`] (it changes with every commit).
pub struct StatusBoard {
    server: actix::Addr<crate::actors::database::DatabaseActor>,
    rows: std::collections::HashMap<String, DatabaseStatus>,
    dirty: std::collections::BTreeSet<String>,
    flush_scheduled: bool,
}

/// How long index changes are gathered before `_Server` is updated.
pub const INDEX_FLUSH: std::time::Duration = std::time::Duration::from_millis(50);

impl StatusBoard {
    /// A board over the rows already inserted into `_Server`.
    pub fn new(
        server: actix::Addr<crate::actors::database::DatabaseActor>,
        rows: Vec<DatabaseStatus>,
    ) -> StatusBoard {
        StatusBoard {
            server,
            rows: rows.into_iter().map(|r| (r.name.clone(), r)).collect(),
            dirty: Default::default(),
            flush_scheduled: false,
        }
    }

    fn flush(&mut self) {
        self.flush_scheduled = false;
        for name in std::mem::take(&mut self.dirty) {
            let Some(st) = self.rows.get(&name) else {
                continue;
            };
            let ops = vec![json!({
                "op": "update",
                "table": "Database",
                "where": [["name", "==", name]],
                "row": {
                    "connected": st.connected,
                    "leader": st.leader,
                    "cid": opt_uuid(st.cid),
                    "index": opt_int(st.index),
                },
            })];
            self.server.do_send(InternalTransact { ops });
        }
    }
}

impl actix::Actor for StatusBoard {
    type Context = actix::Context<Self>;
}

impl actix::Handler<crate::actors::database::DbStatusChanged> for StatusBoard {
    type Result = ();
    fn handle(
        &mut self,
        m: crate::actors::database::DbStatusChanged,
        ctx: &mut actix::Context<Self>,
    ) {
        use actix::AsyncContext;
        let Some(st) = self.rows.get_mut(&m.name) else {
            return;
        };
        let cid = (!m.cid.is_nil()).then_some(m.cid).or(st.cid);
        let index = (m.index > 0).then_some(m.index).or(st.index);
        // The IDLs take a server whose index went backwards for stale.
        let index = match (st.index, index) {
            (Some(old), Some(new)) if new < old => Some(old),
            (_, i) => i,
        };
        let urgent = st.connected != m.connected || st.cid != cid;
        if !urgent && st.index == index {
            return;
        }
        st.connected = m.connected;
        st.leader = m.connected;
        st.cid = cid;
        st.index = index;
        self.dirty.insert(m.name);
        if urgent {
            self.flush();
        } else if !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.run_later(INDEX_FLUSH, |act, _| act.flush());
        }
    }
}
