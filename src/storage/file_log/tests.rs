//! Unit tests of the file log: the record writer against the record rules
//! (and against `serde_json`'s bytes for the same record as a value), and
//! the log's write failure, group fsync and compaction bookkeeping.

use super::*;
use crate::data::Row;
use crate::db::changes::{RowChange, TableChanges};
use crate::db::{execute, ExecContext, Execution};
use crate::storage::ovsdb_log::LogReader;
use crate::storage::ovsdb_txn::Replay;
use serde_json::{json, Value};
use std::fs::File;
use uuid::Uuid;

fn schema() -> Arc<DatabaseSchema> {
    Arc::new(
        DatabaseSchema::from_json(&json!({
            "name": "t", "version": "1.0.0",
            "tables": {
                "T": {"columns": {
                    "i": {"type": "integer"},
                    "o": {"type": {"key": "integer", "min": 0, "max": 1}},
                    "s": {"type": {"key": "integer", "min": 0, "max": "unlimited"}},
                    "small": {"type": {"key": "integer", "min": 0, "max": 2}},
                    "pair": {"type": {"key": "string", "min": 1, "max": 2}},
                    "m": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                    "r": {"type": {"key": "real", "min": 0, "max": "unlimited"}},
                    "e": {"type": "integer", "ephemeral": true}
                }},
                "lower": {"columns": {"x": {"type": "string"}}}
            }
        }))
        .unwrap(),
    )
}

fn row(s: &DatabaseSchema, t: usize, uuid: Uuid, cols: Value) -> Arc<Row> {
    let mut r = Row::from_store_json(&s.tables[t], uuid, &cols).unwrap();
    r.version = Uuid::new_v4();
    Arc::new(r)
}

fn change(t: usize, old: Option<&Arc<Row>>, new: Option<&Arc<Row>>) -> TableChanges {
    let r = old.or(new).unwrap();
    let changed = match (old, new) {
        (Some(o), Some(n)) => (0..o.fields.len())
            .filter(|c| o.fields[*c] != n.fields[*c])
            .collect(),
        _ => (0..r.fields.len()).collect(),
    };
    TableChanges {
        table: t,
        rows: vec![RowChange {
            uuid: r.uuid,
            old: old.cloned(),
            new: new.cloned(),
            changed,
        }],
    }
}

fn cs(tables: Vec<TableChanges>) -> ChangeSet {
    ChangeSet { tables }
}

/// The record's JSON, after checking its framing and that its body is
/// byte for byte what serde_json writes for the same value.
fn body_of(framed: &[u8]) -> Value {
    let mut r = LogReader::new(framed);
    let rec = r.read().unwrap().unwrap();
    assert_eq!(rec.end, framed.len() as u64);
    assert!(r.read().unwrap().is_none());
    let nl = framed.iter().position(|b| *b == b'\n').unwrap();
    let body = &framed[nl + 1..];
    let mut expected = serde_json::to_vec(&rec.json).unwrap();
    expected.push(b'\n');
    assert_eq!(
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(&expected),
        "not serde_json's bytes"
    );
    rec.json
}

fn record(
    w: &mut RecordWriter,
    changes: &ChangeSet,
    comment: Option<&str>,
    diffs: bool,
) -> Option<Value> {
    w.transaction(changes, comment, 7, diffs).map(body_of)
}

#[test]
fn records_follow_ovsdb_server_3_1() {
    let s = schema();
    let mut w = RecordWriter::new(s.clone());
    let u = Uuid::new_v4();
    let us = u.hyphenated().to_string();
    // Insert: non-default persistent columns only, with _comment and _date.
    let r0 = row(
        &s,
        0,
        u,
        json!({"i": 5, "s": ["set", [1, 2, 3]], "m": ["map", [["a", "1"], ["b", "2"]]], "e": 9, "o": ["set", []]}),
    );
    let rec = record(
        &mut w,
        &cs(vec![change(0, None, Some(&r0))]),
        Some("hi \"there\"\n"),
        true,
    );
    assert_eq!(
        rec.unwrap(),
        json!({"T": {us.clone(): {"i": 5, "s": ["set", [1, 2, 3]], "m": ["map", [["a", "1"], ["b", "2"]]]}},
               "_date": 7, "_comment": "hi \"there\"\n", "_is_diff": true})
    );
    // An insert of a row at its defaults is an empty object.
    let v = Uuid::new_v4();
    let empty = row(&s, 0, v, json!({}));
    let rec = record(&mut w, &cs(vec![change(0, None, Some(&empty))]), None, true).unwrap();
    assert_eq!(rec["T"][v.hyphenated().to_string()], json!({}));
    // Modify: changed columns only, sets and maps as diffs, max-1 columns whole.
    let r1 = row(
        &s,
        0,
        u,
        json!({"i": 6, "o": 4, "s": ["set", [2, 3, 7]], "m": ["map", [["b", "22"], ["c", "3"]]], "e": 10}),
    );
    let rec = record(
        &mut w,
        &cs(vec![change(0, Some(&r0), Some(&r1))]),
        None,
        true,
    );
    assert_eq!(
        rec.unwrap(),
        json!({"T": {us.clone(): {"i": 6, "o": 4, "s": ["set", [1, 7]], "m": ["map", [["a", "1"], ["b", "22"], ["c", "3"]]]}},
               "_date": 7, "_is_diff": true})
    );
    // A one-element diff is written as a bare atom, as serde_json writes its datum.
    let r1b = row(
        &s,
        0,
        u,
        json!({"i": 6, "o": 4, "s": ["set", [2, 3]], "m": ["map", [["b", "22"], ["c", "3"]]], "e": 10}),
    );
    let rec = record(
        &mut w,
        &cs(vec![change(0, Some(&r1), Some(&r1b))]),
        None,
        true,
    )
    .unwrap();
    assert_eq!(rec["T"][&us], json!({"s": 7}));
    // Without column diffs (`--disable-file-column-diff`): whole values.
    let rec = record(
        &mut w,
        &cs(vec![change(0, Some(&r0), Some(&r1))]),
        None,
        false,
    )
    .unwrap();
    assert_eq!(rec["T"][&us]["s"], json!(["set", [2, 3, 7]]));
    assert!(rec.get("_is_diff").is_none());
    // Only an ephemeral column changed: no record.
    let r2 = row(
        &s,
        0,
        u,
        json!({"i": 6, "o": 4, "s": ["set", [2, 3, 7]], "m": ["map", [["b", "22"], ["c", "3"]]], "e": 11}),
    );
    assert!(record(
        &mut w,
        &cs(vec![change(0, Some(&r1), Some(&r2))]),
        Some("x"),
        true
    )
    .is_none());
    // ... and with another row that did change, only that one is written.
    let x = Uuid::new_v4();
    let lx = row(&s, 1, x, json!({"x": "y"}));
    let rec = record(
        &mut w,
        &cs(vec![
            change(0, Some(&r1), Some(&r2)),
            change(1, None, Some(&lx)),
        ]),
        None,
        true,
    )
    .unwrap();
    assert_eq!(
        rec,
        json!({"lower": {x.hyphenated().to_string(): {"x": "y"}}, "_date": 7, "_is_diff": true})
    );
    // Delete: null.
    let rec = record(&mut w, &cs(vec![change(0, Some(&r2), None)]), None, true);
    assert_eq!(
        rec.unwrap(),
        json!({"T": {us.clone(): null}, "_date": 7, "_is_diff": true})
    );
}

#[test]
fn whole_values_where_ovsdb_server_could_not_read_a_diff() {
    let s = schema();
    let mut w = RecordWriter::new(s.clone());
    let u = Uuid::new_v4();
    let us = u.hyphenated().to_string();
    // Old value at the default: the whole new value (ovsdb-server replaces).
    let a = row(&s, 0, u, json!({}));
    let b = row(
        &s,
        0,
        u,
        json!({"pair": ["set", ["", "y"]], "s": ["set", [4, 5]]}),
    );
    let rec = record(&mut w, &cs(vec![change(0, Some(&a), Some(&b))]), None, true).unwrap();
    assert_eq!(
        rec["T"][&us],
        json!({"pair": ["set", ["", "y"]], "s": ["set", [4, 5]]})
    );
    // A diff over the column's maximum: the whole record is not a diff.
    let c0 = row(
        &s,
        0,
        u,
        json!({"small": ["set", [1, 2]], "s": ["set", [1]]}),
    );
    let c1 = row(
        &s,
        0,
        u,
        json!({"small": ["set", [3, 4]], "s": ["set", [2]]}),
    );
    let rec = record(
        &mut w,
        &cs(vec![change(0, Some(&c0), Some(&c1))]),
        None,
        true,
    )
    .unwrap();
    assert_eq!(
        rec,
        json!({"T": {us.clone(): {"small": ["set", [3, 4]], "s": 2}}, "_date": 7})
    );
    // And each replays to the row written.
    let mut r = Replay::new(s.clone());
    r.apply(&json!({"T": {us.clone(): {"small": ["set", [1, 2]], "s": 1}}, "_is_diff": true}))
        .unwrap();
    r.apply(&rec).unwrap();
    let rows: Vec<_> = r.into_rows().collect();
    assert_eq!(rows[0].1.fields, c1.fields);
}

#[test]
fn records_replay_to_the_database() {
    let s = schema();
    let mut w = RecordWriter::new(s.clone());
    let mut replay = Replay::new(s.clone());
    let mut db = Database::new(s.clone());
    let ops = [
        json!([{"op": "insert", "table": "T", "row": {"i": 1, "s": ["set", [1, 2]], "m": ["map", [["k", "v"]]], "r": ["set", [1.5, 3.0, -0.125]]}},
               {"op": "insert", "table": "lower", "row": {"x": "\u{e9}\u{1}"}}]),
        json!([{"op": "mutate", "table": "T", "where": [], "mutations": [["s", "insert", ["set", [9]]], ["m", "insert", ["map", [["k2", "v2"]]]]]}]),
        json!([{"op": "update", "table": "T", "where": [], "row": {"m": ["map", [["k", "w"]]], "pair": ["set", ["a", "b"]], "e": 3}}]),
        json!([{"op": "update", "table": "T", "where": [], "row": {"small": ["set", [1, 2]]}}]),
        json!([{"op": "update", "table": "T", "where": [], "row": {"small": ["set", [3, 4]], "pair": "c"}}]),
        json!([{"op": "delete", "table": "lower", "where": []}]),
    ];
    for o in ops {
        let Execution::Done(done) = execute(&db, o.as_array().unwrap(), &ExecContext::default())
        else {
            panic!("blocked")
        };
        assert!(done.succeeded(), "{o}: {:?}", done.results);
        db.apply(&done.changes);
        if let Some(rec) = w.transaction(&done.changes, None, 1, true) {
            replay.apply(&body_of(rec)).unwrap();
        }
    }
    let mut rows: Vec<_> = replay.into_rows().collect();
    assert_eq!(rows.len(), db.n_rows());
    for (t, r) in rows.drain(..) {
        let mut expected = db.row(t, &r.uuid).unwrap().fields.clone();
        for (c, col) in s.tables[t].columns.iter().enumerate() {
            if col.ephemeral {
                expected[c] = crate::data::Datum::default_of(&col.ty);
            }
        }
        assert_eq!(r.fields, expected);
    }
}

#[test]
fn snapshots_are_one_insert_of_every_row() {
    let s = schema();
    let mut w = RecordWriter::new(s.clone());
    let rows: Vec<Arc<Row>> = (0..5)
        .map(|i| row(&s, 0, Uuid::new_v4(), json!({"i": i, "e": 4})))
        .collect();
    let mut tables = vec![rows.clone(), Vec::new()];
    let rec = body_of(w.snapshot(&mut tables, "compacting database online", 3, true));
    assert_eq!(rec["_comment"], "compacting database online");
    assert_eq!(rec["_is_diff"], true);
    assert!(rec.get("lower").is_none());
    assert_eq!(rec["T"].as_object().unwrap().len(), 5);
    for r in &rows {
        let i = r.fields[s.tables[0].column_index("i").unwrap()].clone();
        let expected = if i.first() == Some(&crate::data::Atom::Integer(0)) {
            json!({})
        } else {
            json!({"i": i.to_json()})
        };
        assert_eq!(rec["T"][r.uuid.hyphenated().to_string()], expected);
    }
    let mut empty = vec![Vec::new(), Vec::new()];
    assert_eq!(
        body_of(w.snapshot(&mut empty, "c", 3, false)),
        json!({"_comment": "c", "_date": 3})
    );
}

// ---------------------------------------------------------------------------
// The log.

fn todo() -> Arc<DatabaseSchema> {
    let text = include_str!("../../../examples/todo.ovsschema");
    Arc::new(DatabaseSchema::from_json(&serde_json::from_str(text).unwrap()).unwrap())
}

fn open_todo(path: &Path, options: FileOptions) -> (FileLog, Database) {
    FileLog::open(
        &FileDb {
            path: path.to_path_buf(),
            schema: Some(todo()),
        },
        options,
    )
    .unwrap()
}

/// Executes `ops` on `db`, applies and appends them; the ticket, if any.
fn commit(
    log: &mut FileLog,
    db: &mut Database,
    ops: Value,
    durable: bool,
) -> Result<Option<SyncTicket>, LogError> {
    let Execution::Done(done) = execute(db, ops.as_array().unwrap(), &ExecContext::default())
    else {
        panic!("blocked")
    };
    assert!(done.succeeded(), "{ops}: {:?}", done.results);
    db.apply(&done.changes);
    let r = log.append(db, &done.changes, done.comment.as_deref(), durable);
    if r.is_err() {
        db.apply(&done.changes.inverse());
    }
    r
}

fn insert(name: &str) -> Value {
    json!([{"op": "insert", "table": "List", "row": {"name": name}}])
}

#[test]
fn a_failed_write_is_cut_off_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("todo.db");
    let (mut log, mut db) = open_todo(&path, FileOptions::default());
    commit(&mut log, &mut db, insert("a"), false).unwrap();
    let size = log.file_size();
    // A descriptor that can't be written: every write fails.
    let good = std::mem::replace(
        &mut log.shared.state().file,
        Arc::new(File::open(&path).unwrap()),
    );
    let Err(e) = commit(&mut log, &mut db, insert("b"), false) else {
        panic!("the write did not fail")
    };
    assert!(
        e.0.contains(&path.display().to_string()) && e.0.contains("write failed"),
        "{e}"
    );
    assert_eq!(log.file_size(), size);
    assert_eq!(db.n_rows(), 1);
    log.shared.state().file = good;
    commit(&mut log, &mut db, insert("c"), false).unwrap();
    assert!(log.file_size() > size);
    drop(log);
    let (_, db) = open_todo(&path, FileOptions::default());
    assert_eq!(db.n_rows(), 2);
}

#[test]
fn durable_commits_waiting_together_share_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, mut db) = open_todo(&dir.path().join("todo.db"), FileOptions::default());
    // Not durable, no ticket; durable, one.
    assert!(commit(&mut log, &mut db, insert("plain"), false)
        .unwrap()
        .is_none());
    // An fsync "in progress": every ticket waits for it.
    let shared = log.shared.clone();
    let in_progress = shared.sync_lock.lock().unwrap();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let t = commit(&mut log, &mut db, insert(&format!("r{i}")), true)
                .unwrap()
                .expect("a ticket");
            std::thread::spawn(t)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    drop(in_progress);
    for t in threads {
        t.join().unwrap().unwrap();
    }
    // The first waiter's fsync covered every record.
    assert_eq!(log.fsync_count(), 1);
    // A durable transaction that writes no record needs no ticket...
    let none = commit(
        &mut log,
        &mut db,
        json!([{"op": "select", "table": "List", "where": []}]),
        true,
    )
    .unwrap();
    assert!(none.is_none());
    // ... one with a new record needs an fsync, and a ticket run late finds
    // its record covered.
    let t1 = commit(&mut log, &mut db, insert("z"), true)
        .unwrap()
        .unwrap();
    let t2 = commit(&mut log, &mut db, insert("zz"), true)
        .unwrap()
        .unwrap();
    t2().unwrap();
    t1().unwrap();
    assert_eq!(log.fsync_count(), 2);
    // With fsync_every_commit, every record gets a ticket.
    drop(log);
    let (mut log, mut db) = open_todo(
        &dir.path().join("todo.db"),
        FileOptions {
            fsync_every_commit: true,
            ..FileOptions::default()
        },
    );
    assert!(commit(&mut log, &mut db, insert("y"), false)
        .unwrap()
        .is_some());
}

#[test]
fn a_compaction_carries_the_records_appended_while_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("todo.db");
    let (mut log, mut db) = open_todo(
        &path,
        FileOptions {
            auto_compact: false,
            ..FileOptions::default()
        },
    );
    for i in 0..10 {
        commit(&mut log, &mut db, insert(&format!("before{i}")), false).unwrap();
    }
    let job = Job::begin(&log.shared, &db, true).unwrap();
    assert!(
        Job::begin(&log.shared, &db, true).is_none(),
        "one at a time"
    );
    for i in 0..3 {
        commit(&mut log, &mut db, insert(&format!("during{i}")), false).unwrap();
    }
    assert!(job.run(&log.shared, &AtomicBool::new(false)).unwrap());
    assert_eq!(log.carried_records(), 3);
    assert_eq!(log.compactions(), 1);
    commit(&mut log, &mut db, insert("after"), false).unwrap();
    let size = log.file_size();
    drop(log);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    let bytes = std::fs::read(&path).unwrap();
    let mut r = LogReader::new(&bytes[..]);
    let mut n = 0;
    while let Some(rec) = r.read().unwrap() {
        if n == 1 {
            assert_eq!(rec.json["_comment"], ovsdb_txn::COMPACT_COMMENT);
        }
        n += 1;
    }
    // Schema, snapshot, the three carried and the one after.
    assert_eq!(n, 6);
    let (_, db2) = open_todo(&path, FileOptions::default());
    assert_eq!(db2.n_rows(), 14);
}

#[test]
fn compact_and_convert_rewrite_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("todo.db");
    let (mut log, mut db) = open_todo(&path, FileOptions::default());
    for i in 0..5 {
        commit(&mut log, &mut db, insert(&format!("l{i}")), false).unwrap();
    }
    assert!(log.start_compaction(&db));
    assert!(log.wait_compaction().unwrap().unwrap());
    assert!(log.compact(&db).unwrap());
    assert_eq!(log.compactions(), 2);
    let mut j = todo().to_json();
    j["version"] = json!("1.1.0");
    j["tables"]["List"]["columns"]["extra"] = json!({"type": "integer"});
    let s2 = Arc::new(DatabaseSchema::from_json(&j).unwrap());
    let mut db2 = crate::db::convert::convert(&db, s2.clone()).unwrap();
    // A compaction of the old schema running meanwhile is dropped, not
    // renamed over the converted file.
    assert!(log.start_compaction(&db));
    log.convert(&db2).unwrap();
    let _ = log.wait_compaction().unwrap().unwrap();
    assert_eq!(log.schema().version, "1.1.0");
    commit(
        &mut log,
        &mut db2,
        json!([{"op": "update", "table": "List", "where": [], "row": {"extra": 3}}]),
        false,
    )
    .unwrap();
    drop(log);
    let bytes = std::fs::read(&path).unwrap();
    let first = LogReader::new(&bytes[..]).read().unwrap().unwrap();
    assert_eq!(first.json["version"], "1.1.0");
    let (_, db3) = FileLog::open(
        &FileDb {
            path,
            schema: Some(s2),
        },
        FileOptions::default(),
    )
    .unwrap();
    assert_eq!(db3.n_rows(), 5);
    let c = db3.schema.tables[db3.schema.table_index("List").unwrap()]
        .column_index("extra")
        .unwrap();
    let list = db3.schema.table_index("List").unwrap();
    assert!(db3.tables[list]
        .rows
        .values()
        .all(|r| r.fields[c] == crate::data::Datum::scalar(crate::data::Atom::Integer(3))));
}
