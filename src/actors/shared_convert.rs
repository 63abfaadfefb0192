//! Carrying out a conversion [`Plan`] on a shared store (see
//! `replica::conversion` for the design): stage, flip, and delete the key
//! spaces no one reads any more. Plain async functions over the store; the
//! Database actor decides what to do with each [`Outcome`].

use crate::replica::conversion::{chunks, Limits, Plan};
use crate::storage::db_record::DbRecord;
use crate::storage::keys::Keys;
use crate::storage::{Revision, Storage, StorageError, WriteOp};
use std::sync::Arc;

/// Why a conversion was not committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConvertError {
    /// A single converted row is over the store's request limit.
    #[error(
        "a converted row does not fit one {kind} transaction ({message}): raise the store's limits"
    )]
    TooLarge {
        /// The store's kind.
        kind: &'static str,
        /// The store's message, naming the limit.
        message: String,
    },
    /// The store failed before the flip: nothing was converted.
    #[error("cannot write the converted database to the {kind} store ({message}); the database was not converted: retry")]
    NotConverted {
        /// The store's kind.
        kind: &'static str,
        /// The store's error.
        message: String,
    },
    /// The store failed during the flip: it may have been committed.
    #[error("lost the {kind} store while committing the conversion ({message}): it may or may not have been committed; check the schema version (ovsdb-client get-schema-version) and retry if needed")]
    Unknown {
        /// The store's kind.
        kind: &'static str,
        /// The store's error.
        message: String,
    },
}

impl ConvertError {
    /// The RFC 7047 error tag the client gets.
    pub fn tag(&self) -> &'static str {
        match self {
            ConvertError::TooLarge { .. } => "resources exhausted",
            _ => "not leader",
        }
    }

    /// Whether the conversion may have been committed all the same.
    pub fn may_have_committed(&self) -> bool {
        matches!(self, ConvertError::Unknown { .. })
    }
}

/// What became of an attempt.
#[derive(Debug)]
pub enum Outcome {
    /// The conversion was committed at this revision.
    Committed(Revision),
    /// Another commit (or conversion) came first: convert again once the
    /// replica has it. A staging space is kept for that attempt.
    LostRace,
    /// Another server converted the database first, and this server has
    /// not applied that yet: nothing was written.
    Behind,
    /// The in-place Txn was over the store's limits: stage instead.
    TooLarge,
    /// Not committed (or not known to be).
    Failed(ConvertError),
}

/// Writes `chunk` without a fence, halving it while the store finds it too
/// large.
async fn write_chunk(store: &dyn Storage, chunk: Vec<WriteOp>) -> Result<(), StorageError> {
    let mut pending = vec![chunk];
    while let Some(c) = pending.pop() {
        match store.commit(Vec::new(), c.clone()).await {
            Ok(_) => {}
            Err(StorageError::TooLarge(m)) if c.len() <= 1 => {
                return Err(StorageError::TooLarge(m))
            }
            Err(StorageError::TooLarge(_)) => {
                let mut a = c;
                let b = a.split_off(a.len() / 2);
                pending.push(b);
                pending.push(a);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes every key of a key space no one reads (a retired or abandoned
/// one); returns how many.
pub async fn delete_space(
    store: &dyn Storage,
    keys: &Keys,
    space: &str,
) -> Result<usize, StorageError> {
    let prefix = keys.db_prefix(space)?;
    let (kvs, _) = store.range(&prefix).await?;
    let n = kvs.len();
    let deletes = kvs.into_iter().map(|kv| WriteOp::delete(kv.key)).collect();
    for c in chunks(deletes, Limits::default()) {
        write_chunk(store, c).await?;
    }
    Ok(n)
}

/// The record of database `name` as stored now.
async fn record(
    store: &dyn Storage,
    keys: &Keys,
    name: &str,
) -> Result<Option<DbRecord>, StorageError> {
    let key = keys.server_db(name)?;
    let Some(kv) = store.get(&key).await? else {
        return Ok(None);
    };
    DbRecord::from_bytes(name, &kv.value)
        .map(Some)
        .map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// Carries out one attempt: `plan` converts database `name` whose rows the
/// converting server holds in `old_space`.
///
/// With `check_record` (a first attempt), it first checks that the stored
/// record is the one the server holds, and deletes the space an earlier
/// conversion retired; a retry skips that round trip (its flip's fence
/// compare fails just the same if another conversion came first).
pub async fn carry_out(
    store: Arc<dyn Storage>,
    keys: Keys,
    name: String,
    old_space: String,
    plan: Plan,
    check_record: bool,
) -> Outcome {
    let kind = store.kind();
    let not_converted = |e: StorageError| match e {
        StorageError::TooLarge(message) => {
            Outcome::Failed(ConvertError::TooLarge { kind, message })
        }
        e => Outcome::Failed(ConvertError::NotConverted {
            kind,
            message: e.to_string(),
        }),
    };
    let checked = match check_record {
        true => record(&*store, &keys, &name).await,
        false => Ok(None),
    };
    match checked {
        _ if !check_record => {}
        Ok(Some(rec)) if rec.space != old_space => {
            return Outcome::Behind;
        }
        Ok(Some(rec)) => {
            // Left behind by a conversion that did not delete it: no one
            // reads it, so whoever converts next does.
            if let Some(retired) = rec.retired.filter(|r| *r != old_space && *r != plan.space) {
                match delete_space(&*store, &keys, &retired).await {
                    Ok(n) => {
                        tracing::info!(db = %name, space = %retired, keys = n, "deleted a retired key space")
                    }
                    Err(e) => {
                        tracing::warn!(db = %name, space = %retired, error = %e, "cannot delete a retired key space")
                    }
                }
            }
        }
        Ok(None) => {
            return Outcome::Failed(ConvertError::NotConverted {
                kind,
                message: format!("the record of database {name} is gone"),
            })
        }
        Err(e) => return not_converted(e),
    }
    for c in plan.stage {
        if let Err(e) = write_chunk(&*store, c).await {
            return not_converted(e);
        }
    }
    match store.commit(plan.compares, plan.flip).await {
        Ok(r) if r.succeeded => Outcome::Committed(r.revision),
        Ok(_) => Outcome::LostRace,
        Err(StorageError::TooLarge(_)) if !plan.staged => Outcome::TooLarge,
        Err(e @ StorageError::TooLarge(_)) => not_converted(e),
        Err(e) if plan.staged => {
            // The new space is in the record exactly if the flip applied.
            match record(&*store, &keys, &name).await {
                Ok(Some(rec)) if rec.space == plan.space => {
                    let at = store
                        .get(&keys.server_db(&name).unwrap_or_default())
                        .await
                        .ok()
                        .flatten()
                        .map(|kv| kv.mod_revision);
                    match at {
                        Some(at) => Outcome::Committed(at),
                        None => Outcome::Failed(ConvertError::Unknown {
                            kind,
                            message: e.to_string(),
                        }),
                    }
                }
                Ok(_) => not_converted(e),
                Err(_) => Outcome::Failed(ConvertError::Unknown {
                    kind,
                    message: e.to_string(),
                }),
            }
        }
        Err(e) => Outcome::Failed(ConvertError::Unknown {
            kind,
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_tag_and_whether_the_flip_may_have_applied() {
        let e = |f: fn(&'static str, String) -> ConvertError| f("etcd", "m".into());
        let too_large = e(|kind, message| ConvertError::TooLarge { kind, message });
        let not_converted = e(|kind, message| ConvertError::NotConverted { kind, message });
        let unknown = e(|kind, message| ConvertError::Unknown { kind, message });
        assert_eq!(too_large.tag(), "resources exhausted");
        assert_eq!(
            (not_converted.tag(), unknown.tag()),
            ("not leader", "not leader")
        );
        assert!(unknown.may_have_committed());
        assert!(!too_large.may_have_committed() && !not_converted.may_have_committed());
    }
    use crate::db::execution::{execute, ExecContext, Execution};
    use crate::db::Database;
    use crate::replica::conversion::{plan, Before};
    use crate::schema::DatabaseSchema;
    use crate::storage::{MemoryConfig, MemoryStore};
    use serde_json::json;
    use uuid::Uuid;

    fn schema(version: &str) -> Arc<DatabaseSchema> {
        let mut cols = json!({"n": {"type": "integer"}});
        if version != "1.0.0" {
            cols["note"] = json!({"type": "string"});
        }
        let j = json!({"name": "db", "version": version, "tables": {"T": {"columns": cols, "isRoot": true}}});
        Arc::new(DatabaseSchema::from_json(&j).unwrap())
    }

    /// A store over etcd-like limits of 10 operations per Txn, holding
    /// database `db` 1.0.0 with `rows` rows, as oxsdb stores it.
    async fn stored(rows: usize) -> (Arc<dyn Storage>, Keys, Database) {
        let store: Arc<dyn Storage> = MemoryStore::with_config(MemoryConfig {
            max_txn_ops: Some(10),
            ..MemoryConfig::default()
        });
        let keys = Keys::with_service("s").unwrap();
        let mut db = Database::new(schema("1.0.0"));
        let ops: Vec<_> = (0..rows)
            .map(|i| json!({"op": "insert", "table": "T", "row": {"n": i}}))
            .collect();
        let ctx = ExecContext {
            elapsed_ms: 0,
            owns_lock: &|_| false,
            read_only: false,
            allow_reserved: false,
            rbac: None,
        };
        let Execution::Done(d) = execute(&db, &ops, &ctx) else {
            panic!("blocked")
        };
        db.apply(&d.changes);
        let rec = DbRecord::new(db.schema.clone());
        store
            .commit(
                vec![],
                vec![WriteOp::put(keys.server_db("db").unwrap(), rec.to_bytes())],
            )
            .await
            .unwrap();
        let r = crate::replica::Replica::new(db.schema.clone(), keys.clone(), rec.cid);
        let (_, writes) = r.commit_request(&d.changes, Uuid::nil(), None);
        for c in chunks(
            writes,
            Limits {
                ops: 10,
                bytes: 1 << 20,
            },
        ) {
            store.commit(vec![], c).await.unwrap();
        }
        (store, keys, db)
    }

    #[tokio::test]
    async fn over_the_store_limits_it_stages_flips_and_deletes_the_old_space() {
        let (store, keys, db) = stored(30).await;
        let opened = crate::actors::loader::open_replica(&*store, &keys, "db", None)
            .await
            .unwrap();
        assert_eq!(opened.db.n_rows(), 30);
        let new = crate::db::convert::convert(&db, schema("1.1.0")).unwrap();
        let before = Before {
            keys: &keys,
            space: "db",
            fence_revision: opened.fence_revision,
            cid: opened.cluster_id,
            db: &db,
        };
        // In place is over the store's 10 operations: refused whole.
        let p = plan(
            before,
            &new,
            None,
            false,
            false,
            Limits::default(),
            Uuid::nil(),
        );
        assert!(!p.staged);
        let o = carry_out(
            store.clone(),
            keys.clone(),
            "db".into(),
            "db".into(),
            p,
            true,
        )
        .await;
        assert!(matches!(o, Outcome::TooLarge), "{o:?}");
        let same = crate::actors::loader::open_replica(&*store, &keys, "db", None)
            .await
            .unwrap();
        assert_eq!(same.db.schema.version, "1.0.0");
        // A flip from a stale fence loses the race, and changes nothing.
        let stale = Before {
            fence_revision: opened.fence_revision - 1,
            ..before
        };
        let p = plan(
            stale,
            &new,
            None,
            true,
            false,
            Limits::default(),
            Uuid::nil(),
        );
        let o = carry_out(
            store.clone(),
            keys.clone(),
            "db".into(),
            "db".into(),
            p,
            true,
        )
        .await;
        assert!(matches!(o, Outcome::LostRace), "{o:?}");
        // Staged: chunks of 128 halved down to what the store takes.
        let p = plan(
            before,
            &new,
            None,
            true,
            false,
            Limits::default(),
            Uuid::nil(),
        );
        let space = p.space.clone();
        let o = carry_out(
            store.clone(),
            keys.clone(),
            "db".into(),
            "db".into(),
            p,
            true,
        )
        .await;
        let Outcome::Committed(rev) = o else {
            panic!("{o:?}")
        };
        let after = crate::actors::loader::open_replica(&*store, &keys, "db", None)
            .await
            .unwrap();
        assert_eq!(after.db.schema.version, "1.1.0");
        assert_eq!(after.space, space);
        assert_eq!(after.since, rev);
        assert_eq!(after.db.n_rows(), 30);
        assert_eq!(after.fence_revision, rev);
        // The old space: 30 rows and the marker; then nothing.
        assert_eq!(delete_space(&*store, &keys, "db").await.unwrap(), 31);
        let (left, _) = store.range(&keys.db_prefix("db").unwrap()).await.unwrap();
        assert!(left.is_empty());
    }
}
