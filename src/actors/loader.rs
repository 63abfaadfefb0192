//! Opening a database from the store: its record (schema, cluster id, key
//! space) in a shared store, then a consistent read of its rows and fence,
//! taken while that record was current (a conversion replaces it).

use crate::replica::Replica;
use crate::schema::DatabaseSchema;
use crate::storage::db_record::DbRecord;
use crate::storage::keys::Keys;
use crate::storage::{Compare, Revision, Storage, StorageError, WriteOp};
use std::sync::Arc;

/// Why a database could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenError {
    /// The store can't be reached now; opening again later may work.
    #[error("cannot reach the {kind} store: {message}")]
    Unavailable {
        /// The store kind.
        kind: &'static str,
        /// The store's error.
        message: String,
    },
    /// Opening can never work as asked (a schema of another version is
    /// stored, damaged data, ...).
    #[error("{0}")]
    Refused(String),
}

impl OpenError {
    /// Whether opening again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, OpenError::Unavailable { .. })
    }

    fn store(kind: &'static str, e: StorageError) -> OpenError {
        if e.is_retryable() {
            OpenError::Unavailable {
                kind,
                message: e.to_string(),
            }
        } else {
            OpenError::Refused(format!("the {kind} store failed: {e}"))
        }
    }
}

/// Reads the record of database `name` from a shared store, with the
/// revision it was last written at; with `schema`, creates it if absent and
/// refuses a stored schema of another version.
pub async fn ensure_record(
    store: &dyn Storage,
    keys: &Keys,
    name: &str,
    schema: Option<&Arc<DatabaseSchema>>,
) -> Result<(DbRecord, Revision), OpenError> {
    let kind = store.kind();
    let key = keys
        .server_db(name)
        .map_err(|e| OpenError::Refused(e.to_string()))?;
    // Two servers may create it at once: the loser reads the winner's.
    for _ in 0..3 {
        let stored = store
            .get(&key)
            .await
            .map_err(|e| OpenError::store(kind, e))?;
        match (stored, schema) {
            (Some(kv), given) => {
                let rec = DbRecord::from_bytes(name, &kv.value)
                    .map_err(|e| OpenError::Refused(e.to_string()))?;
                if let Some(given) = given {
                    if given.version != rec.schema.version {
                        return Err(OpenError::Refused(format!(
                            "database {name} is stored in the {kind} store (service {}) with schema version {}, \
                             but the schema given has version {}: serve the stored version, or convert the \
                             database online with `ovsdb-client convert`",
                            keys.service(),
                            rec.schema.version,
                            given.version
                        )));
                    }
                }
                return Ok((rec, kv.mod_revision));
            }
            (None, Some(given)) => {
                let rec = DbRecord::new(given.clone());
                let r = store
                    .commit(
                        vec![Compare::absent(key.clone())],
                        vec![WriteOp::put(key.clone(), rec.to_bytes())],
                    )
                    .await
                    .map_err(|e| OpenError::store(kind, e))?;
                if r.succeeded {
                    tracing::info!(db = name, cid = %rec.cid, "created database in the {kind} store");
                    return Ok((rec, r.revision));
                }
            }
            (None, None) => {
                return Err(OpenError::Refused(format!(
                    "database {name} is not stored in the {kind} store (service {})",
                    keys.service()
                )))
            }
        }
    }
    Err(OpenError::Refused(format!(
        "the record of database {name} keeps changing in the {kind} store"
    )))
}

/// The records of every database stored for the service.
pub async fn stored_records(store: &dyn Storage, keys: &Keys) -> Result<Vec<DbRecord>, OpenError> {
    let kind = store.kind();
    let prefix = keys.server_db_prefix();
    let (kvs, _) = store
        .range(&prefix)
        .await
        .map_err(|e| OpenError::store(kind, e))?;
    kvs.iter()
        .map(|kv| {
            let name = String::from_utf8_lossy(&kv.key[prefix.len()..]).into_owned();
            DbRecord::from_bytes(&name, &kv.value).map_err(|e| OpenError::Refused(e.to_string()))
        })
        .collect()
}

/// Opens database `name`: its record (created from `schema` if absent, see
/// [`ensure_record`]) and its rows, read while that record was current.
pub async fn open_replica(
    store: &dyn Storage,
    keys: &Keys,
    name: &str,
    schema: Option<&Arc<DatabaseSchema>>,
) -> Result<Replica, OpenError> {
    // A conversion that lands between reading the record and the rows
    // makes the rows' read stale (their space may be emptied): read again.
    for _ in 0..100 {
        let (rec, rec_rev) = ensure_record(store, keys, name, schema).await?;
        if let Some(r) = load_replica(store, keys, &rec, rec_rev).await? {
            return Ok(r);
        }
    }
    Err(OpenError::Unavailable {
        kind: store.kind(),
        message: format!("database {name} kept being converted while it was read"),
    })
}

/// Loads a replica of the database of record `rec` (last written at
/// `rec_rev`): its rows at one revision, and its fence as of that revision.
/// `None` if the record changed meanwhile.
pub async fn load_replica(
    store: &dyn Storage,
    keys: &Keys,
    rec: &DbRecord,
    rec_rev: Revision,
) -> Result<Option<Replica>, OpenError> {
    let kind = store.kind();
    let schema = rec.schema.clone();
    let name = schema.name.clone();
    let bad = |e: crate::storage::KeyError| OpenError::Refused(e.to_string());
    let prefix = keys.db_prefix(&rec.space).map_err(bad)?;
    let fence_key = keys.fence(&name).map_err(bad)?;
    let rec_key = keys.server_db(&name).map_err(bad)?;
    // The fence lives outside the database's prefix: read it after the rows
    // and read again if a commit slipped in between the two reads.
    for _ in 0..100 {
        let (kvs, rev) = store
            .range(&prefix)
            .await
            .map_err(|e| OpenError::store(kind, e))?;
        let fence = store
            .get(&fence_key)
            .await
            .map_err(|e| OpenError::store(kind, e))?;
        let fence_rev = fence.map_or(0, |kv| kv.mod_revision);
        if fence_rev > rev {
            continue;
        }
        // Read after the rows: unchanged, it was current when they were read.
        let now = store
            .get(&rec_key)
            .await
            .map_err(|e| OpenError::store(kind, e))?;
        if now.map(|kv| kv.mod_revision) != Some(rec_rev) {
            return Ok(None);
        }
        let (mut r, skipped) =
            Replica::load_skipping(schema.clone(), keys.clone(), rec.cid, &rec.space, &kvs, rev);
        // Rows written by something other than oxsdb: served without them
        // rather than not at all.
        for e in skipped {
            tracing::error!(db = %name, revision = rev, error = %e,
                "a stored row does not decode; serving the database without it");
        }
        r.fence_revision = fence_rev;
        r.since = rec_rev;
        return Ok(Some(r));
    }
    Err(OpenError::Unavailable {
        kind,
        message: format!("database {name} kept changing while it was read"),
    })
}
