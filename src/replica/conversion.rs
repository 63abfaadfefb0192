//! Online conversion of a database in a shared store (`convert` with
//! etcd): the store writes that replace its schema and rows, atomically
//! for every reader, whatever the database's size. Pure: the Database
//! actor computes a [`Plan`], `actors::shared_convert` carries it out.
//!
//! # Design
//!
//! Readers are the other oxsdb servers (their watches and their loads) and
//! any server loading later. None may see the new schema with old rows,
//! nor a mix of old and new rows. etcd makes one Txn atomic, but limits it
//! (`--max-txn-ops`, 128 by default; `--max-request-bytes`, 1.5 MiB), so:
//!
//! - **In place**, when the conversion fits one Txn within etcd's default
//!   limits: the rows are rewritten where they are, with the new schema in
//!   the `_Server` record, the fence, and a marker `<space>/_/converted`,
//!   all in one fenced Txn.
//! - **Staged**, otherwise: the converted rows are first written, in as
//!   many Txns as needed, under a fresh key space `<name>.<token>` that no
//!   one reads (the record names the space readers use). Then one fenced
//!   Txn flips the database: the record (new schema, new space, the old
//!   space as `retired`), the fence and the marker in the old space. Only
//!   then are the old space's keys deleted, in as many Txns as needed: no
//!   one reads them any more (a crash before that leaves them as
//!   `retired`, deleted by the next conversion).
//!
//! Either way the conversion is one commit of the fence, ordered with
//! every other: a transaction racing it on another server commits before
//! it (and is then part of what is converted: the flip fails its compare,
//! and the converting server converts again, staging only the rows that
//! changed meanwhile) or fails its compare and is executed again after
//! it, against the new schema. The marker is written into the space the
//! watchers of the old schema watch, so they see the conversion in order
//! with the rows before it, and read the database again with its new
//! schema from the record.
//!
//! Under a steady stream of commits from other servers the flip could keep
//! losing (converting takes longer than the gap between their commits).
//! So after a first lost race, the converting server first commits a
//! small fenced *freeze*: the key `<space>/_/converting`, which the other
//! servers' watches see and which makes them hold their commits (for at
//! most `FREEZE_FOR`, in case the converting server dies). It then
//! converts its replica, now current, and flips, deleting the key; their
//! held transactions then run on the new schema.
//!
//! A database whose rows were never moved keeps the documented layout
//! (`<prefix>/<service>/<name>/<table>/<uuid>`): only a staged conversion
//! moves them.

use crate::db::changes::diff;
use crate::db::Database;
use crate::storage::db_record::DbRecord;
use crate::storage::keys::{space_of, Keys};
use crate::storage::{Compare, Revision, WriteOp};
use bytes::Bytes;
use uuid::Uuid;

/// Store writes per Txn that etcd accepts by default (`--max-txn-ops`).
pub const DEFAULT_MAX_TXN_OPS: usize = 128;
/// Bytes of keys and values per Txn kept well under etcd's default
/// `--max-request-bytes` (1.5 MiB), which also counts the request's framing.
pub const DEFAULT_MAX_TXN_BYTES: usize = 1 << 20;

/// The per-Txn limits a plan stays within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Writes per Txn.
    pub ops: usize,
    /// Bytes of keys and values per Txn.
    pub bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ops: DEFAULT_MAX_TXN_OPS,
            bytes: DEFAULT_MAX_TXN_BYTES,
        }
    }
}

/// What the database is before the conversion, as the converting server
/// holds it.
#[derive(Debug, Clone, Copy)]
pub struct Before<'a> {
    /// The key layout.
    pub keys: &'a Keys,
    /// The key space its rows are in.
    pub space: &'a str,
    /// The fence's mod revision its state is at.
    pub fence_revision: Revision,
    /// Its cluster id (kept by the conversion).
    pub cid: Uuid,
    /// Its rows.
    pub db: &'a Database,
}

/// Rows already written to a staging space by an earlier attempt of the
/// same conversion (one that lost its flip to another server's commit).
#[derive(Debug, Clone)]
pub struct Staged {
    /// The staging space.
    pub space: String,
    /// The converted rows it holds.
    pub db: Database,
}

/// The store writes of one attempt to convert.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The key space of the converted rows.
    pub space: String,
    /// Whether they are staged in a space of their own (else in place).
    pub staged: bool,
    /// Txns written before the flip (staged only), unfenced: no one reads
    /// the staging space.
    pub stage: Vec<Vec<WriteOp>>,
    /// The flip's compares: the fence as the converting server saw it.
    pub compares: Vec<Compare>,
    /// The flip's writes.
    pub flip: Vec<WriteOp>,
    /// The record the flip writes.
    pub record: DbRecord,
}

/// The bytes a write sends.
fn size(w: &WriteOp) -> usize {
    match w {
        WriteOp::Put { key, value, .. } => key.len() + value.len(),
        WriteOp::Delete { key } => key.len(),
    }
}

/// Splits writes into Txns within `limits` (a write larger than the byte
/// limit goes alone: the store decides).
pub fn chunks(writes: Vec<WriteOp>, limits: Limits) -> Vec<Vec<WriteOp>> {
    let mut out = Vec::new();
    let mut cur: Vec<WriteOp> = Vec::new();
    let mut bytes = 0;
    for w in writes {
        let n = size(&w);
        if !cur.is_empty() && (cur.len() >= limits.ops.max(1) || bytes + n > limits.bytes) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += n;
        cur.push(w);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Puts of every row of `db` into `space`.
fn all_rows(keys: &Keys, space: &str, db: &Database) -> Vec<WriteOp> {
    let mut writes = Vec::with_capacity(db.n_rows());
    for (t, td) in db.tables.iter().enumerate() {
        let ts = &db.schema.tables[t];
        for (u, row) in &td.rows {
            writes.push(WriteOp::Put {
                key: keys.row(space, &ts.name, u).unwrap_or_default(),
                value: row.to_store_bytes(ts),
                lease: None,
            });
        }
    }
    writes
}

/// The writes that turn `space`'s rows from `old` into `new`: deletes of
/// the rows `new` lacks (by table name: a table may be gone), puts of every
/// row of `new`.
fn in_place(keys: &Keys, space: &str, old: &Database, new: &Database) -> Vec<WriteOp> {
    let mut writes = Vec::new();
    // etcd refuses a key both deleted and put in one Txn: delete only rows
    // the converted database no longer has.
    for (t, td) in old.tables.iter().enumerate() {
        let tname = &old.schema.tables[t].name;
        let kept = new.schema.table_index(tname).map(|nt| &new.tables[nt].rows);
        for u in td.rows.keys() {
            if !kept.is_some_and(|rows| rows.contains_key(u)) {
                writes.push(WriteOp::Delete {
                    key: keys.row(space, tname, u).unwrap_or_default(),
                });
            }
        }
    }
    writes.extend(all_rows(keys, space, new));
    writes
}

/// The writes that bring a staging space from `staged` to `now` (both of
/// the new schema): only the rows that changed.
fn restage(keys: &Keys, space: &str, staged: &Database, now: &Database) -> Vec<WriteOp> {
    let cs = diff(staged, now);
    let mut writes = Vec::with_capacity(cs.n_rows());
    for tc in &cs.tables {
        let ts = &now.schema.tables[tc.table];
        for rc in &tc.rows {
            let key = keys.row(space, &ts.name, &rc.uuid).unwrap_or_default();
            writes.push(match &rc.new {
                Some(row) => WriteOp::Put {
                    key,
                    value: row.to_store_bytes(ts),
                    lease: None,
                },
                None => WriteOp::Delete { key },
            });
        }
    }
    writes
}

/// The converted database an attempt commits when an earlier attempt
/// staged `staged`: the staged rows where the fresh conversion `now` has the
/// same contents (they keep the `_version` they were stored with), `now`'s
/// rows where they differ. What [`plan`] stages is exactly the difference.
pub fn carry_over(staged: &Staged, now: &Database) -> Database {
    let mut db = staged.db.clone();
    db.apply(&diff(&staged.db, now));
    db
}

/// A fresh staging space's token: unique to the attempt, so that two
/// servers converting at once never write the same keys.
fn token() -> String {
    let mut buf = Uuid::encode_buffer();
    Uuid::new_v4().simple().encode_lower(&mut buf)[..16].to_string()
}

/// The freeze (see the module documentation): the fenced Txn that asks
/// the other servers to hold their commits while `before`'s conversion
/// finishes.
pub fn freeze(before: Before<'_>, server_id: Uuid) -> (Vec<Compare>, Vec<WriteOp>) {
    let keys = before.keys;
    let fence = keys.fence(&before.db.schema.name).unwrap_or_default();
    let compares = vec![Compare::ModRevision {
        key: fence.clone(),
        revision: before.fence_revision,
    }];
    let writes = vec![
        WriteOp::Put {
            key: fence,
            value: Bytes::from(format!("{server_id} {}", Uuid::new_v4())),
            lease: None,
        },
        WriteOp::put(
            keys.converting(before.space).unwrap_or_default(),
            server_id.to_string(),
        ),
    ];
    (compares, writes)
}

/// The plan converting `before` to `new`: in place if it fits one Txn
/// within `limits` and `force_staged` is not set, else staged (reusing
/// `staged`, an earlier attempt's staging space, if given). `frozen`: a
/// freeze is in place, which the flip lifts.
pub fn plan(
    before: Before<'_>,
    new: &Database,
    staged: Option<&Staged>,
    force_staged: bool,
    frozen: bool,
    limits: Limits,
    server_id: Uuid,
) -> Plan {
    let keys = before.keys;
    let name = new.schema.name.clone();
    let fence = keys.fence(&name).unwrap_or_default();
    let compares = vec![Compare::ModRevision {
        key: fence.clone(),
        revision: before.fence_revision,
    }];
    // Unique to this attempt, as every commit's fence value (see
    // `Replica::commit_request`).
    let fence_put = WriteOp::Put {
        key: fence,
        value: Bytes::from(format!("{server_id} {}", Uuid::new_v4())),
        lease: None,
    };
    let marker = WriteOp::Put {
        key: keys.converted(before.space).unwrap_or_default(),
        value: Bytes::from(format!("schema version {}", new.schema.version)),
        lease: None,
    };
    let record = |space: String, retired: Option<String>| DbRecord {
        schema: new.schema.clone(),
        cid: before.cid,
        space,
        retired,
    };
    if staged.is_none() && !force_staged {
        let mut flip = in_place(keys, before.space, before.db, new);
        let rec = record(before.space.to_string(), None);
        flip.push(fence_put.clone());
        flip.push(WriteOp::put(
            keys.server_db(&name).unwrap_or_default(),
            rec.to_bytes(),
        ));
        flip.push(marker.clone());
        if frozen {
            flip.push(WriteOp::delete(
                keys.converting(before.space).unwrap_or_default(),
            ));
        }
        let bytes: usize = flip.iter().map(size).sum();
        if flip.len() <= limits.ops && bytes <= limits.bytes {
            return Plan {
                space: before.space.to_string(),
                staged: false,
                stage: Vec::new(),
                compares,
                flip,
                record: rec,
            };
        }
    }
    let (space, writes) = match staged {
        Some(s) => (s.space.clone(), restage(keys, &s.space, &s.db, new)),
        None => {
            let space = space_of(&name, &token());
            let writes = all_rows(keys, &space, new);
            (space, writes)
        }
    };
    let rec = record(space.clone(), Some(before.space.to_string()));
    let mut flip = vec![
        fence_put,
        WriteOp::put(keys.server_db(&name).unwrap_or_default(), rec.to_bytes()),
        marker,
    ];
    if frozen {
        flip.push(WriteOp::delete(
            keys.converting(before.space).unwrap_or_default(),
        ));
    }
    // A retry restages only what changed since the last attempt: usually
    // a few rows, which go in the flip itself, so that the attempt is one
    // Txn and the window for another commit to win the race is one round
    // trip.
    let bytes: usize = writes.iter().chain(&flip).map(size).sum();
    let stage =
        if staged.is_some() && writes.len() + flip.len() <= limits.ops && bytes <= limits.bytes {
            flip.extend(writes);
            Vec::new()
        } else {
            chunks(writes, limits)
        };
    Plan {
        space,
        staged: true,
        stage,
        compares,
        flip,
        record: rec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::convert::convert;
    use crate::replica::Replica;
    use crate::schema::DatabaseSchema;
    use crate::storage::KeyValue;
    use serde_json::json;
    use std::sync::Arc;

    /// Version 1.0.0: `T(n)` and `Gone(g)`; the newer one adds `T.note`
    /// and drops `Gone`.
    fn schema(version: &str, newer: bool) -> Arc<DatabaseSchema> {
        let mut tables = json!({"T": {"columns": {"n": {"type": "integer"}}, "isRoot": true}});
        if newer {
            tables["T"]["columns"]["note"] = json!({"type": "string"});
        } else {
            tables["Gone"] = json!({"columns": {"g": {"type": "integer"}}, "isRoot": true});
        }
        Arc::new(
            DatabaseSchema::from_json(&json!({"name": "db", "version": version, "tables": tables}))
                .unwrap(),
        )
    }

    fn db_with(rows: usize) -> Database {
        let mut r = Replica::new(
            schema("1.0.0", false),
            Keys::with_service("s").unwrap(),
            Uuid::nil(),
        );
        let ops: Vec<_> = (0..rows)
            .map(|i| json!({"op": "insert", "table": "T", "row": {"n": i}}))
            .chain([json!({"op": "insert", "table": "Gone", "row": {}})])
            .collect();
        let ctx = crate::db::execution::ExecContext {
            elapsed_ms: 0,
            owns_lock: &|_| false,
            read_only: false,
            allow_reserved: false,
            rbac: None,
        };
        match crate::db::execution::execute(&r.db, &ops, &ctx) {
            crate::db::execution::Execution::Done(d) => r.db.apply(&d.changes),
            _ => panic!("insert blocked"),
        }
        r.db
    }

    /// Applies a plan's writes to a plain key-value map.
    fn apply(map: &mut std::collections::BTreeMap<Bytes, Bytes>, writes: &[WriteOp]) {
        for w in writes {
            match w {
                WriteOp::Put { key, value, .. } => {
                    map.insert(key.clone(), value.clone());
                }
                WriteOp::Delete { key } => {
                    map.remove(key);
                }
            }
        }
    }

    fn load(map: &std::collections::BTreeMap<Bytes, Bytes>, keys: &Keys) -> Replica {
        let rec = DbRecord::from_bytes("db", &map[&keys.server_db("db").unwrap()]).unwrap();
        let kvs: Vec<KeyValue> = map
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
                create_revision: 1,
                mod_revision: 1,
                lease: None,
            })
            .collect();
        let (r, skipped) =
            Replica::load_skipping(rec.schema, keys.clone(), rec.cid, &rec.space, &kvs, 1);
        assert!(skipped.is_empty(), "{skipped:?}");
        r
    }

    fn stored(keys: &Keys, db: &Database) -> std::collections::BTreeMap<Bytes, Bytes> {
        let mut map = std::collections::BTreeMap::new();
        apply(&mut map, &all_rows(keys, "db", db));
        let rec = DbRecord::new(db.schema.clone());
        map.insert(keys.server_db("db").unwrap(), rec.to_bytes());
        map
    }

    #[test]
    fn a_small_conversion_is_one_txn_in_place() {
        let keys = Keys::with_service("s").unwrap();
        let old = db_with(3);
        let new = convert(&old, schema("1.1.0", true)).unwrap();
        let before = Before {
            keys: &keys,
            space: "db",
            fence_revision: 7,
            cid: Uuid::nil(),
            db: &old,
        };
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
        assert!(p.stage.is_empty());
        assert_eq!(p.space, "db");
        assert_eq!(
            p.compares,
            vec![Compare::mod_revision(keys.fence("db").unwrap(), 7)]
        );
        let mut map = stored(&keys, &old);
        apply(&mut map, &p.flip);
        let r = load(&map, &keys);
        assert_eq!(r.db.schema.version, "1.1.0");
        assert_eq!(r.db.n_rows(), 3, "the table the new schema lacks is gone");
        assert!(map.contains_key(&keys.converted("db").unwrap()));
        assert!(!map.keys().any(|k| k.starts_with(b"ovsdb/s/db/Gone/")));
    }

    #[test]
    fn a_large_conversion_is_staged_then_flipped() {
        let keys = Keys::with_service("s").unwrap();
        let old = db_with(300);
        let new = convert(&old, schema("1.1.0", true)).unwrap();
        let before = Before {
            keys: &keys,
            space: "db",
            fence_revision: 7,
            cid: Uuid::nil(),
            db: &old,
        };
        let limits = Limits {
            ops: 128,
            bytes: 4096,
        };
        let p = plan(before, &new, None, false, false, limits, Uuid::nil());
        assert!(p.staged);
        assert!(p.space.starts_with("db."), "{}", p.space);
        assert!(p.stage.len() > 3);
        for c in &p.stage {
            assert!(c.len() <= 128);
            assert!(c.iter().map(size).sum::<usize>() <= 4096);
        }
        assert_eq!(
            p.flip.len(),
            3,
            "the flip writes only the fence, the record and the marker"
        );
        let mut map = stored(&keys, &old);
        // Staged, not flipped: readers still see the old database.
        for c in &p.stage {
            apply(&mut map, c);
        }
        let r = load(&map, &keys);
        assert_eq!(
            (r.db.schema.version.as_str(), r.db.n_rows()),
            ("1.0.0", 301)
        );
        apply(&mut map, &p.flip);
        let r = load(&map, &keys);
        assert_eq!(
            (r.db.schema.version.as_str(), r.db.n_rows()),
            ("1.1.0", 300)
        );
        assert_eq!(r.space, p.space);
        assert_eq!(p.record.retired.as_deref(), Some("db"));
        assert!(map.contains_key(&keys.converted("db").unwrap()));
    }

    #[test]
    fn a_retry_stages_only_what_changed() {
        let keys = Keys::with_service("s").unwrap();
        let old = db_with(300);
        let new = convert(&old, schema("1.1.0", true)).unwrap();
        let before = Before {
            keys: &keys,
            space: "db",
            fence_revision: 7,
            cid: Uuid::nil(),
            db: &old,
        };
        let first = plan(
            before,
            &new,
            None,
            true,
            false,
            Limits::default(),
            Uuid::nil(),
        );
        let staged = Staged {
            space: first.space.clone(),
            db: new.clone(),
        };
        // Another server deleted one row meanwhile.
        let mut changed = old.clone();
        let t = old.schema.table_index("T").unwrap();
        let u = *old.tables[t].rows.keys().next().unwrap();
        let cs = crate::db::changes::ChangeSet {
            tables: vec![crate::db::changes::TableChanges {
                table: t,
                rows: vec![crate::db::changes::RowChange {
                    uuid: u,
                    old: old.row(t, &u).cloned(),
                    new: None,
                    changed: Vec::new(),
                }],
            }],
        };
        changed.apply(&cs);
        let now = convert(&changed, schema("1.1.0", true)).unwrap();
        let now = carry_over(&staged, &now);
        assert_eq!(now.n_rows(), 299);
        let kept = *now.tables[0].rows.keys().next().unwrap();
        assert_eq!(
            now.row(0, &kept).unwrap().version,
            new.row(0, &kept).unwrap().version,
            "unchanged rows keep the version they were staged with"
        );
        let before = Before {
            keys: &keys,
            space: "db",
            fence_revision: 9,
            cid: Uuid::nil(),
            db: &changed,
        };
        let second = plan(
            before,
            &now,
            Some(&staged),
            false,
            true,
            Limits::default(),
            Uuid::nil(),
        );
        assert_eq!(second.space, first.space);
        assert!(second.stage.is_empty(), "a small restage goes in the flip");
        assert!(second
            .flip
            .contains(&WriteOp::delete(keys.row(&first.space, "T", &u).unwrap())));
        assert!(
            second
                .flip
                .contains(&WriteOp::delete(keys.converting("db").unwrap())),
            "the flip lifts the freeze"
        );
        assert_eq!(
            second.compares,
            vec![Compare::mod_revision(keys.fence("db").unwrap(), 9)]
        );
    }

    #[test]
    fn chunks_respect_both_limits() {
        let w = |n: usize| WriteOp::put(vec![b'k'; 1], vec![b'v'; n]);
        let c = chunks(
            vec![w(10), w(10), w(10), w(10), w(100)],
            Limits { ops: 3, bytes: 30 },
        );
        let sizes: Vec<usize> = c.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        assert!(chunks(Vec::new(), Limits::default()).is_empty());
    }
}
