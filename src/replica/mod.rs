//! A database replica fed by the store: the engine's [`Database`] plus the
//! revision bookkeeping of DESIGN.md's commit protocol, and the translation
//! between change sets and store keys. Pure: no actors, no I/O.

pub mod commit_errors;
pub mod commit_queue;
pub mod conversion;
pub mod conversion_progress;
pub mod gather;
pub mod history;
pub mod release_queue;

use crate::data::atom::parse_uuid_str;
use crate::data::Row;
use crate::db::changes::{ChangeSet, RowChange, TableChanges};
use crate::db::Database;
use crate::error::OvsdbError;
use crate::schema::DatabaseSchema;
use crate::storage::keys::{Keys, ParsedKey};
use crate::storage::{Compare, EventKind, KeyValue, Revision, WatchBatch, WriteOp};
use bytes::Bytes;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use uuid::Uuid;

// Key builders fail only for names that are not OVSDB identifiers; every name
// used here comes from a validated schema, so their errors cannot occur and
// map to an empty key rather than a panic.

/// A replica of one database at a store revision.
pub struct Replica {
    /// The database's name.
    pub name: String,
    /// The contents.
    pub db: Database,
    /// Key layout.
    pub keys: Keys,
    /// The key space of the rows (the database's name, or the space a
    /// conversion moved them to; see [`conversion`]).
    pub space: String,
    /// The revision the current schema took effect at: history before it
    /// was of another schema, so no client resumes from there.
    pub since: Revision,
    /// The last store revision applied.
    pub revision: Revision,
    /// The mod revision of the database's fence key as of `revision` (0: no commit yet).
    pub fence_revision: Revision,
    /// Identifies the cluster, for transaction ids.
    pub cluster_id: Uuid,
}

impl Replica {
    /// An empty replica.
    pub fn new(schema: Arc<DatabaseSchema>, keys: Keys, cluster_id: Uuid) -> Replica {
        Replica {
            name: schema.name.clone(),
            space: schema.name.clone(),
            since: 0,
            db: Database::new(schema),
            keys,
            revision: 0,
            fence_revision: 0,
            cluster_id,
        }
    }

    /// Loads a replica from a range read of the database's prefix at
    /// `revision`; fails on the first stored row that does not decode.
    pub fn load(
        schema: Arc<DatabaseSchema>,
        keys: Keys,
        cluster_id: Uuid,
        kvs: &[KeyValue],
        revision: Revision,
    ) -> Result<Replica, OvsdbError> {
        let space = schema.name.clone();
        let (r, skipped) = Replica::load_skipping(schema, keys, cluster_id, &space, kvs, revision);
        match skipped.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(r),
        }
    }

    /// Like [`Replica::load`], but a stored row that does not decode (not
    /// JSON, not of its table's shape: written by something other than
    /// oxsdb) is left out and returned with why, so that one damaged row
    /// does not take the whole database down.
    pub fn load_skipping(
        schema: Arc<DatabaseSchema>,
        keys: Keys,
        cluster_id: Uuid,
        space: &str,
        kvs: &[KeyValue],
        revision: Revision,
    ) -> (Replica, Vec<OvsdbError>) {
        let mut skipped = Vec::new();
        let mut r = Replica::new(schema, keys, cluster_id);
        r.space = space.to_string();
        let mut tables: HashMap<usize, Vec<RowChange>> = HashMap::new();
        for kv in kvs {
            match r.keys.parse(&kv.key) {
                Some(ParsedKey::Row { db, table, uuid }) if db == r.space => {
                    let Some(t) = r.db.schema.table_index(table) else {
                        continue;
                    };
                    let row = match decode_row(&r.db.schema, t, uuid, &kv.value) {
                        Ok(row) => row,
                        Err(e) => {
                            skipped.push(e);
                            continue;
                        }
                    };
                    tables.entry(t).or_default().push(RowChange {
                        uuid,
                        old: None,
                        new: Some(Arc::new(row)),
                        changed: Vec::new(),
                    });
                }
                Some(ParsedKey::Fence { db }) if db == r.name => r.fence_revision = kv.mod_revision,
                _ => {}
            }
        }
        let mut cs = ChangeSet::default();
        let mut ts: Vec<_> = tables.into_iter().collect();
        ts.sort_by_key(|(t, _)| *t);
        for (table, rows) in ts {
            cs.tables.push(TableChanges { table, rows });
        }
        r.db.apply(&cs);
        r.revision = revision;
        (r, skipped)
    }

    /// The store commit for a change set computed against this replica: the
    /// fence compare, the fence put, and one put or delete per changed row.
    pub fn commit_request(
        &self,
        changes: &ChangeSet,
        server_id: Uuid,
        comment: Option<&str>,
    ) -> (Vec<Compare>, Vec<WriteOp>) {
        let fence = self.keys.fence(&self.name).unwrap_or_default();
        let compares = vec![Compare::ModRevision {
            key: fence.clone(),
            revision: self.fence_revision,
        }];
        let mut writes = Vec::with_capacity(changes.n_rows() + 2);
        // Unique to this commit (the server, and a nonce): a commit sent
        // again after a failure that left it maybe applied finds out whether
        // it did by the value of the fence's first write after its base.
        writes.push(WriteOp::Put {
            key: fence,
            value: Bytes::from(format!("{server_id} {}", Uuid::new_v4())),
            lease: None,
        });
        for tc in &changes.tables {
            let ts = &self.db.schema.tables[tc.table];
            for rc in &tc.rows {
                let key = self
                    .keys
                    .row(&self.space, &ts.name, &rc.uuid)
                    .unwrap_or_default();
                match &rc.new {
                    Some(row) => writes.push(WriteOp::Put {
                        key,
                        value: row.to_store_bytes(ts),
                        lease: None,
                    }),
                    None => writes.push(WriteOp::Delete { key }),
                }
            }
        }
        if let Some(c) = comment {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            writes.push(WriteOp::Put {
                key: self.keys.comment(&format!("{ts:020}")).unwrap_or_default(),
                value: Bytes::from(c.to_string()),
                lease: None,
            });
        }
        (compares, writes)
    }

    /// The change set of a batch decoded by [`decode_watch_batch`] (off the
    /// database's thread): each row's old state is this replica's, shared
    /// rather than decoded again. Notes the fence. Does not apply it.
    pub fn changes_of(&mut self, decoded: DecodedBatch) -> ChangeSet {
        if let Some(r) = decoded.fence {
            self.fence_revision = r;
        }
        // Every commit of this database's rows also rewrites its fence (which
        // lives outside the watched prefix), so the fence moved with the rows.
        if !decoded.rows.is_empty() {
            self.fence_revision = decoded.revision;
        }
        let mut tables: HashMap<usize, Vec<RowChange>> = HashMap::new();
        for (t, uuid, new) in decoded.rows {
            let old = self.db.row(t, &uuid).cloned();
            let n = self.db.schema.tables[t].columns.len();
            let changed = match (&old, &new) {
                (Some(o), Some(nw)) => (0..n).filter(|c| o.fields[*c] != nw.fields[*c]).collect(),
                _ => (0..n).collect(),
            };
            tables.entry(t).or_default().push(RowChange {
                uuid,
                old,
                new,
                changed,
            });
        }
        let mut cs = ChangeSet::default();
        let mut ts: Vec<_> = tables.into_iter().collect();
        ts.sort_by_key(|(t, _)| *t);
        for (table, rows) in ts {
            cs.tables.push(TableChanges { table, rows });
        }
        cs
    }

    /// Applies a change set at `revision`.
    pub fn apply(&mut self, changes: &ChangeSet, revision: Revision) {
        self.db.apply(changes);
        self.revision = revision;
    }

    /// The transaction id of a revision (see [`txn_id`]).
    pub fn txn_id(&self, revision: Revision) -> Uuid {
        txn_id(self.cluster_id, &self.name, revision)
    }

    /// The revision a transaction id stands for, if it is one of this database's.
    pub fn revision_of(&self, id: &Uuid) -> Option<Revision> {
        revision_of(self.cluster_id, &self.name, id)
    }
}

/// A watch batch with its rows decoded, for [`Replica::changes_of`].
#[derive(Debug)]
pub struct DecodedBatch {
    /// The commit's revision.
    pub revision: Revision,
    /// (table, row, new state; `None` for a delete), in the batch's order.
    pub rows: Vec<(usize, Uuid, Option<Arc<Row>>)>,
    /// The fence's new mod revision, if the batch wrote it.
    pub fence: Option<Revision>,
    /// The commit converted the database to a new schema (whose rows are
    /// read from the store, not from this batch).
    pub converted: bool,
    /// A conversion began finishing (`Some(true)`: hold commits) or gave up
    /// (`Some(false)`).
    pub converting: Option<bool>,
}

/// Decodes the rows of database `name` (in key space `space`) in a watch
/// batch: pure, needing only the schema, so that the Watch actor does it off
/// the database's thread. Fails on the first stored row that does not
/// decode. A conversion's batch is only marked: its rows are of the new
/// schema, and elsewhere.
pub fn decode_watch_batch(
    schema: &DatabaseSchema,
    keys: &Keys,
    name: &str,
    space: &str,
    batch: &WatchBatch,
) -> Result<DecodedBatch, OvsdbError> {
    let mut out = DecodedBatch {
        revision: batch.revision,
        rows: Vec::with_capacity(batch.events.len()),
        fence: None,
        converted: false,
        converting: None,
    };
    if batch.events.iter().any(|ev| {
        ev.kind == EventKind::Put && keys.parse(&ev.key) == Some(ParsedKey::Converted { space })
    }) {
        out.converted = true;
        return Ok(out);
    }
    for ev in &batch.events {
        match keys.parse(&ev.key) {
            Some(ParsedKey::Row { db, table, uuid }) if db == space => {
                let Some(t) = schema.table_index(table) else {
                    continue;
                };
                let new = match (&ev.kind, &ev.value) {
                    (EventKind::Put, Some(v)) => Some(Arc::new(decode_row(schema, t, uuid, v)?)),
                    _ => None,
                };
                out.rows.push((t, uuid, new));
            }
            Some(ParsedKey::Fence { db }) if db == name => out.fence = Some(ev.mod_revision),
            Some(ParsedKey::Converting { space: s }) if s == space => {
                out.converting = Some(ev.kind == EventKind::Put)
            }
            _ => {}
        }
    }
    Ok(out)
}

fn decode_row(
    schema: &DatabaseSchema,
    t: usize,
    uuid: Uuid,
    value: &[u8],
) -> Result<Row, OvsdbError> {
    let json: serde_json::Value = serde_json::from_slice(value).map_err(|e| {
        OvsdbError::new(
            "ovsdb error",
            format!(
                "stored row {uuid} of table {} is not JSON: {e}",
                schema.tables[t].name
            ),
        )
    })?;
    Row::from_store_json(&schema.tables[t], uuid, &json)
}

fn db_hash(cluster_id: Uuid, db: &str) -> u64 {
    // FNV-1a: stable across processes and versions (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cluster_id.as_bytes().iter().chain(db.as_bytes()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The transaction id of a store revision: the revision in the low 64 bits,
/// a hash of the cluster id and database name in the high bits, so any server
/// of the cluster can map an id back to a revision (DESIGN.md).
pub fn txn_id(cluster_id: Uuid, db: &str, revision: Revision) -> Uuid {
    Uuid::from_u64_pair(db_hash(cluster_id, db), revision as u64)
}

/// The revision in a transaction id made by [`txn_id`] for the same cluster and database.
pub fn revision_of(cluster_id: Uuid, db: &str, id: &Uuid) -> Option<Revision> {
    let (hi, lo) = id.as_u64_pair();
    (hi == db_hash(cluster_id, db) && lo <= i64::MAX as u64).then_some(lo as Revision)
}

/// Parses a transaction id sent by a client.
pub fn parse_txn_id(v: &serde_json::Value) -> Option<Uuid> {
    v.as_str().and_then(parse_uuid_str)
}

/// A hashable fingerprint of JSON text (monitor grouping keys).
pub fn fingerprint(s: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}
