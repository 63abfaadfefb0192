//! The value of a database's `_Server/Database/<db>` key: its schema and the
//! cluster id every server of the service shows in `_Server` and derives
//! transaction ids from. Written once by the first server that serves the
//! database (and rewritten by `convert`); read by every later one.

use crate::schema::DatabaseSchema;
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

/// A database as recorded in the store.
#[derive(Debug, Clone)]
pub struct DbRecord {
    /// The schema the database's rows follow.
    pub schema: Arc<DatabaseSchema>,
    /// The database's cluster id (`_Server`'s `cid`).
    pub cid: Uuid,
    /// The key space of its rows (`<prefix>/<service>/<space>/...`).
    pub space: String,
    /// A key space a conversion left behind, whose keys no one reads.
    pub retired: Option<String>,
}

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbRecordError {
    /// Not JSON, or not the record's shape.
    #[error("the stored record of database {db} is damaged: {reason}")]
    Damaged {
        /// The database (from the key).
        db: String,
        /// What is wrong.
        reason: String,
    },
}

impl DbRecord {
    /// A new record with a fresh cluster id.
    pub fn new(schema: Arc<DatabaseSchema>) -> DbRecord {
        DbRecord {
            space: schema.name.clone(),
            schema,
            cid: Uuid::new_v4(),
            retired: None,
        }
    }

    /// The stored form: `{"cid": "<uuid>", "schema": <schema>}`, with
    /// `"space"` and `"retired"` where a conversion set them.
    pub fn to_bytes(&self) -> bytes::Bytes {
        let mut v = json!({"cid": self.cid.to_string(), "schema": self.schema.to_json()});
        if self.space != self.schema.name {
            v["space"] = json!(self.space);
        }
        if let Some(r) = &self.retired {
            v["retired"] = json!(r);
        }
        bytes::Bytes::from(v.to_string())
    }

    /// Parses a stored record. A bare schema (as written before records had
    /// a cluster id) gets a cluster id derived from the database's name.
    pub fn from_bytes(db: &str, value: &[u8]) -> Result<DbRecord, DbRecordError> {
        let damaged = |reason: String| DbRecordError::Damaged {
            db: db.to_string(),
            reason,
        };
        let v: Value = serde_json::from_slice(value).map_err(|e| damaged(e.to_string()))?;
        let space = |field: &str| -> Result<Option<String>, DbRecordError> {
            match v.get(field) {
                None => Ok(None),
                Some(Value::String(s)) if crate::storage::keys::is_space_of(db, s) => {
                    Ok(Some(s.clone()))
                }
                Some(other) => Err(damaged(format!(
                    "\"{field}\" is {other}, not a key space of database {db}"
                ))),
            }
        };
        let (row_space, retired) = (space("space")?, space("retired")?);
        let (schema_json, cid) = match v.get("schema") {
            Some(s) => {
                let cid = v
                    .get("cid")
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| damaged("no valid \"cid\"".into()))?;
                (s, cid)
            }
            None => (&v, Uuid::new_v5(&Uuid::NAMESPACE_OID, db.as_bytes())),
        };
        let mut schema =
            DatabaseSchema::from_json(schema_json).map_err(|e| damaged(e.to_string()))?;
        // Shared databases are clustered: their schemas have no ephemeral
        // columns (records stored before this rule may still have some).
        schema.persist_ephemeral_columns();
        if schema.name != db {
            return Err(damaged(format!(
                "its schema is of database {}",
                schema.name
            )));
        }
        Ok(DbRecord {
            schema: Arc::new(schema),
            cid,
            space: row_space.unwrap_or_else(|| db.to_string()),
            retired,
        })
    }
}

/// A schema as a shared store serves it: clustered, so without
/// ephemeral columns, as ovsdb-server's clusters (logged as ovsdb-server
/// does).
pub fn clustered_schema(schema: Arc<DatabaseSchema>) -> Arc<DatabaseSchema> {
    let mut s = (*schema).clone();
    match s.persist_ephemeral_columns() {
        Some(p) => {
            tracing::warn!(
                "changed {} columns in '{}' database from ephemeral to persistent, including '{}' column in '{}' table, because clusters do not support ephemeral columns",
                p.count, s.name, p.example.1, p.example.0
            );
            Arc::new(s)
        }
        None => schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Arc<DatabaseSchema> {
        let j = json!({"name": "db", "version": "1.2.3", "tables": {"T": {"columns": {"a": {"type": "integer"}}}}});
        Arc::new(DatabaseSchema::from_json(&j).unwrap())
    }

    #[test]
    fn round_trip() {
        let r = DbRecord::new(schema());
        let back = DbRecord::from_bytes("db", &r.to_bytes()).unwrap();
        assert_eq!(back.cid, r.cid);
        assert_eq!(back.schema.to_json(), r.schema.to_json());
        assert_eq!(back.schema.version, "1.2.3");
    }

    #[test]
    fn stored_ephemeral_columns_read_as_persistent() {
        let j = json!({"name": "db", "version": "1.0.0", "tables": {"T": {"columns": {"a": {"type": "integer", "ephemeral": true}}}}});
        let r = DbRecord::new(Arc::new(DatabaseSchema::from_json(&j).unwrap()));
        let back = DbRecord::from_bytes("db", &r.to_bytes()).unwrap();
        assert!(back.schema.tables[0]
            .columns
            .iter()
            .all(|c| !c.ephemeral || c.name == "_version"));
        assert!(!back
            .schema
            .to_json()
            .to_string()
            .contains("\"ephemeral\":true"));
    }

    #[test]
    fn spaces_round_trip_and_must_be_the_databases() {
        let mut r = DbRecord::new(schema());
        assert_eq!(r.space, "db");
        assert!(!String::from_utf8_lossy(&r.to_bytes()).contains("space"));
        r.space = "db.77aa".into();
        r.retired = Some("db".into());
        let back = DbRecord::from_bytes("db", &r.to_bytes()).unwrap();
        assert_eq!(back.space, "db.77aa");
        assert_eq!(back.retired.as_deref(), Some("db"));
        let mut v: Value = serde_json::from_slice(&r.to_bytes()).unwrap();
        v["space"] = json!("other.77aa");
        let e = DbRecord::from_bytes("db", v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("other.77aa"), "{e}");
        assert!(DbRecord::from_bytes("other", &DbRecord::new(schema()).to_bytes()).is_err());
    }

    #[test]
    fn bare_schema_gets_a_stable_cid() {
        let text = schema().to_json().to_string();
        let a = DbRecord::from_bytes("db", text.as_bytes()).unwrap();
        let b = DbRecord::from_bytes("db", text.as_bytes()).unwrap();
        assert_eq!(a.cid, b.cid);
    }

    #[test]
    fn damage_is_an_error() {
        assert!(DbRecord::from_bytes("db", b"{").is_err());
        assert!(DbRecord::from_bytes("db", b"{\"schema\": {}}").is_err());
        assert!(DbRecord::from_bytes("db", b"[1]").is_err());
    }
}
