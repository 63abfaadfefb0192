//! The file log store ([`FileLog`]): round trips with Open vSwitch's own
//! tools (`ovsdb-tool`, `ovsdb-server`, `ovsdb-client`) over the OVSDB
//! standalone file format, damaged files, compaction, conversion, shared
//! fsyncs, and a real `kill -9` in the middle of writing.

mod support;

use oxsdb::db::op_result::OpResult;
use oxsdb::db::{execute, Database, ExecContext, Execution};
use oxsdb::schema::DatabaseSchema;
use oxsdb::storage::file_log::{FileDb, FileLog, FileOptions, FileStoreError};
use oxsdb::storage::log::LogStore;
use oxsdb::storage::ovsdb_log::{self, LogReader};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::clients::{ovsdb_client, ovsdb_tool};
use support::reference::ReferenceServer;

const ALLTYPES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/alltypes.ovsschema");
const TODO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/todo.ovsschema");

fn schema(path: &str) -> Arc<DatabaseSchema> {
    Arc::new(DatabaseSchema::from_file(path).unwrap())
}

// ---------------------------------------------------------------------------
// Helpers.

/// Fails the test, saying what to install, if a reference tool is missing.
macro_rules! need_tools {
    ($($t:expr),*) => {
        $(support::tools::tool($t);)*
    };
}

/// A database and its log, committing as the database actor does: execute,
/// apply the change set in place, append it, run the sync ticket.
struct Client {
    log: FileLog,
    db: Database,
}

impl Client {
    fn open(
        path: &Path,
        schema: Option<Arc<DatabaseSchema>>,
        options: FileOptions,
    ) -> Result<Client, FileStoreError> {
        let (log, db) = FileLog::open(
            &FileDb {
                path: path.to_path_buf(),
                schema,
            },
            options,
        )?;
        Ok(Client { log, db })
    }

    /// `params` as for `transact`: the database name, then operations.
    fn transact(&mut self, params: &Value) -> Vec<Value> {
        let ops = &params.as_array().unwrap()[1..];
        let done = match execute(&self.db, ops, &ExecContext::default()) {
            Execution::Done(d) => d,
            Execution::Blocked { .. } => panic!("blocked"),
        };
        assert!(done.succeeded(), "{params}: {:?}", done.results);
        if !done.changes.is_empty() {
            self.db.apply(&done.changes);
            let ticket = self
                .log
                .append(
                    &self.db,
                    &done.changes,
                    done.comment.as_deref(),
                    done.durable,
                )
                .unwrap_or_else(|e| panic!("{params}: {e}"));
            if let Some(t) = ticket {
                t().unwrap();
            }
        }
        done.results.into_iter().map(OpResult::into_json).collect()
    }

    /// Every persistent column of every row, normalised.
    fn dump(&mut self) -> Value {
        let s = self.db.schema.clone();
        normalize(&Value::Array(self.transact(&dump_request(&s))))
    }

    /// The todo database's list names, sorted.
    fn list_names(&mut self) -> Vec<String> {
        let r = self.transact(
            &json!(["todo", {"op": "select", "table": "List", "where": [], "columns": ["name"]}]),
        );
        let mut names: Vec<String> = r[0]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }
}

fn open(
    path: &Path,
    schema: Option<Arc<DatabaseSchema>>,
    options: FileOptions,
) -> Result<Client, FileStoreError> {
    Client::open(path, schema, options)
}

/// A transaction selecting every persistent column (and `_uuid`) of every
/// table: what a file can be compared on.
fn dump_request(s: &DatabaseSchema) -> Value {
    let mut v = vec![json!(s.name)];
    for t in &s.tables {
        let mut cols: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| !c.ephemeral)
            .map(|c| c.name.as_str())
            .collect();
        cols.push("_uuid");
        v.push(json!({"op": "select", "table": t.name, "where": [], "columns": cols}));
    }
    Value::Array(v)
}

/// Rows sorted by `_uuid`, sets and maps by element text, numbers as
/// floats (ovsdb-server prints the real 3.0 as 3).
fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => {
            if a.len() == 2 && (a[0] == "set" || a[0] == "map") {
                let mut inner: Vec<Value> =
                    a[1].as_array().unwrap().iter().map(normalize).collect();
                inner.sort_by_key(|x| x.to_string());
                // A one-element set is written as the bare atom by some writers.
                if a[0] == "set" && inner.len() == 1 {
                    return inner.pop().unwrap();
                }
                json!([a[0], inner])
            } else {
                Value::Array(a.iter().map(normalize).collect())
            }
        }
        Value::Object(m) => {
            let mut m: serde_json::Map<String, Value> =
                m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect();
            if let Some(Value::Array(rows)) = m.get_mut("rows") {
                rows.sort_by_key(|r| r["_uuid"].to_string());
            }
            Value::Object(m)
        }
        other => other.clone(),
    }
}

fn tool_dump(file: &Path, s: &DatabaseSchema) -> Value {
    let out = ovsdb_tool(&[
        "query",
        file.to_str().unwrap(),
        &dump_request(s).to_string(),
    ]);
    normalize(&serde_json::from_str(&out).unwrap())
}

/// An `ovsdb-server` on a database file, killed when dropped.
struct Server(ReferenceServer);

impl Server {
    fn start(file: &Path) -> Server {
        let dir = file.parent().expect("a file in a directory");
        Server(ReferenceServer::on_files(&[file.to_path_buf()], dir))
    }

    fn client(&self, cmd: &str, arg: &Value) -> Value {
        let out = ovsdb_client(&[cmd, &self.0.tcp(), &arg.to_string()]);
        serde_json::from_str(&out).unwrap()
    }

    fn transact(&self, params: &Value) -> Value {
        let r = self.client("transact", params);
        assert!(
            !r.as_array()
                .unwrap()
                .iter()
                .any(|x| x.get("error").is_some()),
            "{params}: {r}"
        );
        r
    }

    fn dump(&self, s: &DatabaseSchema) -> Value {
        normalize(&self.client("query", &dump_request(s)))
    }
}

/// Transactions on the alltypes database that exercise every kind of
/// record: inserts with default and non-default columns, scalar and
/// optional updates, set and map mutations (diffs), ephemeral-only changes
/// (no record), deletes, garbage collection, comments, reals, strings that
/// need escaping, and a durable commit.
fn workload() -> Vec<Value> {
    vec![
        json!(["alltypes",
            {"op": "insert", "table": "Scalars", "row": {"i": 5, "s": "hello", "oi": 3, "r": 1.5, "b": true,
              "iset": ["set", [1, 2, 3]], "sset": ["set", ["a", "b"]]}},
            {"op": "insert", "table": "Maps", "row": {"ss": ["map", [["a", "1"], ["b", "2"]]],
              "req_map": ["map", [["k", 1]]], "si": ["map", [["x", 5]]]}},
            {"op": "comment", "comment": "first txn"}]),
        json!(["alltypes", {"op": "update", "table": "Scalars", "where": [], "row": {"i": 6, "oi": 4}}]),
        json!(["alltypes", {"op": "mutate", "table": "Scalars", "where": [],
            "mutations": [["iset", "insert", ["set", [7]]], ["iset", "delete", ["set", [1]]]]}]),
        json!(["alltypes", {"op": "mutate", "table": "Maps", "where": [],
            "mutations": [["ss", "insert", ["map", [["c", "3"]]]], ["ss", "delete", ["set", ["a"]]]]}]),
        json!(["alltypes", {"op": "update", "table": "Maps", "where": [],
            "row": {"ss": ["map", [["b", "22"], ["c", "3"]]]}}]),
        json!(["alltypes", {"op": "update", "table": "Scalars", "where": [], "row": {"oi": ["set", []], "b": false}}]),
        json!(["alltypes", {"op": "insert", "table": "Constrained",
            "row": {"color": "red", "small_set": 1, "pair": "x", "scratch": "eph", "counter": 3}}]),
        json!(["alltypes", {"op": "update", "table": "Constrained", "where": [], "row": {"scratch": "eph2", "counter": 4}}]),
        json!(["alltypes", {"op": "update", "table": "Constrained", "where": [], "row": {"scratch": "eph3", "color": "blue"}}]),
        json!(["alltypes", {"op": "insert", "table": "Constrained", "row": {"color": "green", "small_set": 2}}]),
        json!(["alltypes", {"op": "update", "table": "Constrained", "where": [["color", "==", "green"]],
            "row": {"pair": ["set", ["", "y"]]}}]),
        json!(["alltypes", {"op": "mutate", "table": "Scalars", "where": [],
            "mutations": [["rset", "insert", ["set", [2.5, 3.0, -0.125]]]]}]),
        json!(["alltypes", {"op": "update", "table": "Scalars", "where": [],
            "row": {"s": "h\u{e9}llo \"q\" \\ \n\ttab \u{1}", "u": ["uuid", "0a7a1b7e-0000-4000-8000-000000000001"]}}]),
        json!(["alltypes",
            {"op": "insert", "table": "Child", "row": {"name": "c1", "value": 1}, "uuid-name": "c1"},
            {"op": "insert", "table": "Child", "row": {"name": "c2", "value": 2}, "uuid-name": "c2"},
            {"op": "insert", "table": "Parent", "row": {"name": "p",
              "children": ["set", [["named-uuid", "c1"], ["named-uuid", "c2"]]],
              "child_map": ["map", [["one", ["named-uuid", "c1"]]]]}}]),
        json!(["alltypes", {"op": "mutate", "table": "Parent", "where": [],
            "mutations": [["children", "delete", ["set", []]], ["child_map", "delete", ["set", ["one"]]]]}]),
        json!(["alltypes", {"op": "update", "table": "Parent", "where": [], "row": {"children": ["set", []]}}]),
        json!(["alltypes", {"op": "delete", "table": "Maps", "where": []}]),
        json!(["alltypes", {"op": "update", "table": "Scalars", "where": [], "row": {"i": 7}},
            {"op": "commit", "durable": true}]),
    ]
}

fn records(file: &Path) -> Vec<ovsdb_log::Record> {
    let bytes = std::fs::read(file).unwrap();
    let mut r = LogReader::new(&bytes[..]);
    let mut out = Vec::new();
    while let Some(rec) = r
        .read()
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    {
        out.push(rec);
    }
    out
}

// ---------------------------------------------------------------------------
// Round trips with Open vSwitch.

#[test]
fn files_we_write_are_read_by_ovsdb_tool_and_ovsdb_server() {
    need_tools!("ovsdb-tool", "ovsdb-server", "ovsdb-client");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alltypes.db");
    let s = schema(ALLTYPES);
    let mut c = open(&file, Some(s.clone()), FileOptions::default()).unwrap();
    // Created like `ovsdb-tool create`: one schema record.
    assert_eq!(records(&file).len(), 1);
    assert_eq!(
        ovsdb_tool(&["db-version", file.to_str().unwrap()]).trim(),
        "1.2.3"
    );
    let mut w = workload();
    // A change ovsdb-server 3.1 itself would write as a diff it cannot read
    // back (4 elements in a column of at most 3).
    w.push(json!(["alltypes", {"op": "update", "table": "Constrained", "where": [["color", "==", "green"]],
        "row": {"small_set": ["set", [4, 5, 6]]}}]));
    for t in &w {
        c.transact(t);
    }
    let ours = c.dump();
    drop(c);

    // Every transaction but the ephemeral-only one is one record.
    let recs = records(&file);
    assert_eq!(recs.len(), 1 + w.len() - 1, "{recs:#?}");
    assert_eq!(recs[1].json["_comment"], "first txn");
    assert!(recs[1].json["_date"].is_i64());
    assert_eq!(recs[2].json["_is_diff"], true);
    let log = ovsdb_tool(&["-m", "show-log", file.to_str().unwrap()]);
    assert!(
        log.contains("record 0: \"alltypes\" schema, version=\"1.2.3\""),
        "{log}"
    );
    assert!(log.contains(&format!("record {}:", w.len() - 1)), "{log}");
    assert!(log.contains("\"first txn\""), "{log}");

    assert_eq!(tool_dump(&file, &s), ours, "ovsdb-tool query disagrees");
    let server = Server::start(&file);
    assert_eq!(server.dump(&s), ours, "ovsdb-server disagrees");
    // ovsdb-server appends to our file, and we read what it appended.
    server.transact(
        &json!(["alltypes", {"op": "mutate", "table": "Scalars", "where": [],
        "mutations": [["iset", "insert", ["set", [100]]], ["sset", "delete", ["set", ["a"]]]]}]),
    );
    let after_server = server.dump(&s);
    drop(server);
    let mut c = open(&file, Some(s.clone()), FileOptions::default()).unwrap();
    assert_eq!(c.dump(), after_server);
}

#[test]
fn files_ovsdb_server_writes_are_read_with_the_same_contents() {
    need_tools!("ovsdb-tool", "ovsdb-server", "ovsdb-client");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alltypes.db");
    let s = schema(ALLTYPES);
    ovsdb_tool(&["create", file.to_str().unwrap(), ALLTYPES]);
    {
        let server = Server::start(&file);
        for t in workload() {
            server.transact(&t);
        }
    }
    // What ovsdb-server itself reads back from the file (after a restart).
    let reference = tool_dump(&file, &s);
    {
        let server = Server::start(&file);
        assert_eq!(server.dump(&s), reference);
    }
    let mut c = open(&file, Some(s.clone()), FileOptions::default()).unwrap();
    assert_eq!(c.dump(), reference);
    // Its own quirk, reproduced: a diff to a column at its default replaces it.
    let constrained = s
        .tables
        .iter()
        .position(|t| t.name == "Constrained")
        .unwrap();
    let green = reference[constrained]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["color"] == "green")
        .unwrap()
        .clone();
    assert_eq!(green["pair"], "y");

    // We append in the same style; ovsdb-tool and ovsdb-server read it.
    c.transact(
        &json!(["alltypes", {"op": "mutate", "table": "Scalars", "where": [],
        "mutations": [["iset", "insert", ["set", [100]]], ["sset", "delete", ["set", ["a"]]]]},
        {"op": "insert", "table": "Target", "row": {"name": "t", "n": 1}}]),
    );
    let ours = c.dump();
    drop(c);
    assert_eq!(tool_dump(&file, &s), ours);
    let server = Server::start(&file);
    assert_eq!(server.dump(&s), ours);
}

#[test]
fn real_schemas_round_trip() {
    need_tools!("ovsdb-tool");
    let candidates = [
        "/usr/share/openvswitch/vswitch.ovsschema",
        "/usr/share/ovn/ovn-nb.ovsschema",
        "/usr/share/ovn/ovn-sb.ovsschema",
    ];
    let present: Vec<&str> = candidates
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .collect();
    assert!(
        !present.is_empty(),
        "none of {candidates:?} exists: install the ovn-common (or ovn-central) and \
         openvswitch-common packages"
    );
    for path in present {
        let dir = tempfile::tempdir().unwrap();
        let s = schema(path);
        let file = dir.path().join("db");
        // Created by ovsdb-tool, opened by us with the same schema.
        ovsdb_tool(&["create", file.to_str().unwrap(), path]);
        let c = open(&file, Some(s.clone()), FileOptions::default()).unwrap();
        assert_eq!(c.log.schema().as_ref(), s.as_ref(), "{path}");
        drop(c);
        // Created by us: ovsdb-tool reads the schema back.
        let file2 = dir.path().join("db2");
        let mut c = open(&file2, Some(s.clone()), FileOptions::default()).unwrap();
        assert_eq!(
            ovsdb_tool(&["db-version", file2.to_str().unwrap()]).trim(),
            s.version,
            "{path}"
        );
        assert_eq!(
            ovsdb_tool(&["db-name", file2.to_str().unwrap()]).trim(),
            s.name,
            "{path}"
        );
        // Rows of the northbound database, as ovn-nbctl writes them: maps,
        // sets, references, then changes to them as diffs.
        if s.name == "OVN_Northbound" {
            let r = c.transact(&json!(["OVN_Northbound",
                {"op": "insert", "table": "NB_Global", "row": {"options": ["map", [["mac_prefix", "0a:00:00"]]]}},
                {"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "p1",
                 "row": {"name": "p1", "addresses": ["set", ["00:00:00:00:00:01 10.0.0.1"]],
                         "external_ids": ["map", [["owner", "test"]]]}},
                {"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "p2", "row": {"name": "p2"}},
                {"op": "insert", "table": "Logical_Switch",
                 "row": {"name": "ls1", "ports": ["set", [["named-uuid", "p1"], ["named-uuid", "p2"]]],
                         "other_config": ["map", [["subnet", "10.0.0.0/24"]]]}}]));
            c.transact(&json!(["OVN_Northbound",
                {"op": "mutate", "table": "Logical_Switch", "where": [],
                 "mutations": [["other_config", "insert", ["map", [["mcast_snoop", "true"]]]]]},
                {"op": "update", "table": "Logical_Switch_Port", "where": [["name", "==", "p1"]],
                 "row": {"external_ids": ["map", [["owner", "other"], ["k", "v"]]], "enabled": false}},
                // p2, no longer referenced, is garbage-collected: a delete.
                {"op": "mutate", "table": "Logical_Switch", "where": [],
                 "mutations": [["ports", "delete", ["set", [r[2]["uuid"].clone()]]]]}]));
            let ours = c.dump();
            drop(c);
            assert_eq!(
                tool_dump(&file2, &s),
                ours,
                "{path}: ovsdb-tool query disagrees"
            );
            let mut again = open(&file2, Some(s.clone()), FileOptions::default()).unwrap();
            assert_eq!(again.dump(), ours, "{path}: reopened");
        }
    }
}

// ---------------------------------------------------------------------------
// Damage.

/// A todo database with `n` lists, one transaction each; returns the file.
fn todo_file(dir: &Path, n: usize) -> PathBuf {
    let file = dir.join("todo.db");
    let mut c = open(&file, Some(schema(TODO)), FileOptions::default()).unwrap();
    for i in 0..n {
        c.transact(
            &json!(["todo", {"op": "insert", "table": "List", "row": {"name": format!("l{i}")}}]),
        );
    }
    file
}

#[test]
fn damaged_tail_is_dropped_and_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let file = todo_file(dir.path(), 3);
    let pristine = std::fs::read(&file).unwrap();
    let recs = records(&file);
    assert_eq!(recs.len(), 4);
    let last = recs[3].offset as usize;
    let s = schema(TODO);

    let mut cases: Vec<(String, Vec<u8>, usize)> = Vec::new();
    // A flipped byte in the last record's body (or header).
    for i in [last + 5, last + 60, pristine.len() - 3] {
        let mut b = pristine.clone();
        b[i] ^= 0x20;
        cases.push((format!("flipped byte at {i}"), b, 2));
    }
    // The last record cut short at every byte: a crash in the middle of a write.
    for cut in last + 1..pristine.len() {
        cases.push((format!("cut at {cut}"), pristine[..cut].to_vec(), 2));
    }
    // Garbage after the last record: everything is kept.
    let mut g = pristine.clone();
    g.extend(b"OVSDB JSON 12 zzz\nnot json\n");
    cases.push(("garbage tail".into(), g, 3));
    // A well-framed record that does not apply (deletes a missing row).
    let mut d = pristine.clone();
    d.extend(ovsdb_log::encode(
        &json!({"List": {"00000000-0000-4000-8000-000000000000": null}, "_date": 1}),
    ));
    cases.push(("transaction that does not apply".into(), d, 3));

    for (what, bytes, kept) in cases {
        std::fs::write(&file, &bytes).unwrap();
        let mut c = open(&file, Some(s.clone()), FileOptions::default()).unwrap();
        assert_eq!(c.list_names().len(), kept, "{what}");
        let good_end = if kept == 2 { last } else { pristine.len() };
        assert_eq!(
            std::fs::metadata(&file).unwrap().len() as usize,
            good_end,
            "{what}: not cut"
        );
        // Appending after the cut leaves a clean file.
        c.transact(&json!(["todo", {"op": "insert", "table": "List", "row": {"name": "after"}}]));
        drop(c);
        assert_eq!(records(&file).len(), kept + 2, "{what}");
        let mut c = open(&file, Some(s.clone()), FileOptions::default()).unwrap();
        assert_eq!(c.list_names().len(), kept + 1, "{what}");
    }
    {
        let out = ovsdb_tool(&[
            "query",
            file.to_str().unwrap(),
            r#"["todo",{"op":"select","table":"List","where":[]}]"#,
        ]);
        assert_eq!(out.matches("\"name\"").count(), 4, "{out}");
    }
}

#[test]
fn unusable_files_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = todo_file(dir.path(), 1);
    let pristine = std::fs::read(&file).unwrap();
    let s = schema(TODO);
    let msg = |r: Result<Client, FileStoreError>| match r {
        Ok(_) => panic!("opened"),
        Err(e) => e.to_string(),
    };
    let name = file.display().to_string();

    // A damaged schema record.
    let mut b = pristine.clone();
    b[100] ^= 0x01;
    std::fs::write(&file, &b).unwrap();
    let m = msg(open(&file, Some(s.clone()), FileOptions::default()));
    assert!(
        m.contains(&name) && m.contains("first record") && m.contains("SHA-1"),
        "{m}"
    );
    // Not touched.
    assert_eq!(std::fs::read(&file).unwrap(), b);

    // A truncated schema record.
    std::fs::write(&file, &pristine[..200]).unwrap();
    let m = msg(open(&file, None, FileOptions::default()));
    assert!(m.contains("first record") && m.contains("truncated"), "{m}");

    // A schema record that is JSON but no schema.
    let mut b = ovsdb_log::encode(&json!({"name": "todo"}));
    b.extend(&pristine[pristine.len() - 10..]);
    std::fs::write(&file, &b).unwrap();
    let m = msg(open(&file, None, FileOptions::default()));
    assert!(m.contains("not a valid database schema"), "{m}");

    // A clustered database.
    std::fs::write(
        &file,
        b"OVSDB CLUSTER 10 0000000000000000000000000000000000000000\n{}\n",
    )
    .unwrap();
    let m = msg(open(&file, None, FileOptions::default()));
    assert!(m.contains("cluster-to-standalone"), "{m}");

    // Not a database at all.
    std::fs::write(&file, b"hello\n").unwrap();
    let m = msg(open(&file, None, FileOptions::default()));
    assert!(m.contains("not an OVSDB database file"), "{m}");

    // Empty, no schema to initialise it.
    std::fs::write(&file, b"").unwrap();
    let m = msg(open(&file, None, FileOptions::default()));
    assert!(m.contains("empty"), "{m}");

    // Missing, no schema.
    let m = msg(open(
        &dir.path().join("nope.db"),
        None,
        FileOptions::default(),
    ));
    assert!(m.contains("ovsdb-tool create"), "{m}");

    // Another schema version than the file's.
    std::fs::write(&file, &pristine).unwrap();
    let mut j = s.to_json();
    j["version"] = json!("2.0.0");
    let v2 = Arc::new(DatabaseSchema::from_json(&j).unwrap());
    let m = msg(open(&file, Some(v2), FileOptions::default()));
    assert!(
        m.contains("1.0.0")
            && m.contains("2.0.0")
            && m.contains("ovsdb-client convert")
            && m.contains("ovsdb-tool convert"),
        "{m}"
    );

    // Another database's schema.
    let m = msg(open(&file, Some(schema(ALLTYPES)), FileOptions::default()));
    assert!(m.contains("alltypes") && m.contains("todo"), "{m}");

    // The same database twice.
    let file2 = dir.path().join("copy.db");
    std::fs::write(&file2, &pristine).unwrap();
    let r = FileLog::open_all(
        vec![
            FileDb {
                path: file.clone(),
                schema: None,
            },
            FileDb {
                path: file2,
                schema: None,
            },
        ],
        FileOptions::default(),
    );
    match r {
        Ok(_) => panic!("opened"),
        Err(e) => assert!(e.to_string().contains("two files"), "{e}"),
    }

    // The same file twice.
    let twice = |path: &Path| FileDb {
        path: path.to_path_buf(),
        schema: None,
    };
    match FileLog::open_all(
        vec![twice(&file), twice(&dir.path().join(".").join("todo.db"))],
        FileOptions::default(),
    ) {
        Ok(_) => panic!("opened"),
        Err(e) => assert!(e.to_string().contains("two files"), "{e}"),
    }

    // A file ovsdb-server holds.
    need_tools!("ovsdb-server");
    let server = Server::start(&file);
    let m = msg(open(&file, None, FileOptions::default()));
    assert!(m.contains("in use by another process"), "{m}");
    drop(server);
}

// ---------------------------------------------------------------------------
// Compaction.

fn small_compaction() -> FileOptions {
    FileOptions {
        compact_min_bytes: 4000,
        compact_min_records: 10,
        compact_min_interval: Duration::ZERO,
        ..FileOptions::default()
    }
}

#[test]
fn automatic_compaction_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("todo.db");
    let s = schema(TODO);
    // The same traffic into a file that is never compacted, for its size.
    let plain = dir.path().join("plain.db");
    let mut p = open(
        &plain,
        Some(s.clone()),
        FileOptions {
            auto_compact: false,
            ..FileOptions::default()
        },
    )
    .unwrap();
    let mut c = open(&file, Some(s.clone()), small_compaction()).unwrap();
    for i in 0..400 {
        let insert =
            json!(["todo", {"op": "insert", "table": "List", "row": {"name": format!("l{i}")}}]);
        let rename = json!(["todo", {"op": "update", "table": "List", "where": [["name", "==", format!("l{i}")]],
            "row": {"name": format!("list {i}")}}]);
        c.transact(&insert);
        c.transact(&rename);
        p.transact(&insert);
        p.transact(&rename);
    }
    let uncompacted = std::fs::metadata(&plain).unwrap().len();
    drop(p);
    // The compaction thread may still be running: wait for it.
    let _ = c.log.wait_compaction();
    assert!(c.log.compactions() > 0, "never compacted");
    let recs = records(&file);
    assert!(recs.len() < 200, "not compacted: {} records", recs.len());
    assert!(
        recs.iter()
            .any(|r| r.json["_comment"] == "compacting database online"),
        "no snapshot record"
    );
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(size, c.log.file_size());
    assert!(
        size < uncompacted,
        "compacted file of {size} bytes, uncompacted {uncompacted}"
    );
    let names = c.list_names();
    drop(c);
    let mut c = open(&file, Some(s.clone()), FileOptions::default()).unwrap();
    assert_eq!(c.list_names(), names);
    assert_eq!(names.len(), 400);
    assert!(names.iter().all(|n| n.starts_with("list ")));
    {
        let out = ovsdb_tool(&[
            "query",
            file.to_str().unwrap(),
            r#"["todo",{"op":"select","table":"List","where":[],"columns":["name"]}]"#,
        ]);
        assert_eq!(out.matches("\"list ").count(), 400);
        ovsdb_tool(&["show-log", file.to_str().unwrap()]);
    }
}

#[test]
fn compaction_while_committing_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("todo.db");
    let s = schema(TODO);
    let options = FileOptions {
        auto_compact: false,
        ..FileOptions::default()
    };
    let mut c = open(&file, Some(s.clone()), options).unwrap();
    let mut started = 0;
    for i in 0..1500 {
        c.transact(&json!(["todo", {"op": "insert", "table": "List", "row": {"name": format!("l{i:04}")}}]));
        if i % 3 == 0 {
            c.transact(&json!(["todo", {"op": "delete", "table": "List", "where": [["name", "==", format!("l{:04}", i / 2)]]}]));
        }
        // A background compaction of the database as it is now, while the
        // commits go on.
        if i % 50 == 0 && c.log.start_compaction(&c.db) {
            started += 1;
        }
    }
    let _ = c.log.wait_compaction();
    assert!(started > 0 && c.log.compactions() > 0, "no compaction ran");
    assert!(
        c.log.carried_records() > 0,
        "no compaction overlapped a commit ({} compactions)",
        c.log.compactions()
    );
    let names = c.list_names();
    drop(c);
    let mut c = open(&file, Some(s.clone()), FileOptions::default()).unwrap();
    assert_eq!(c.list_names(), names);
    assert_eq!(
        records(&file)[1].json["_comment"],
        "compacting database online"
    );
    {
        let out = ovsdb_tool(&[
            "query",
            file.to_str().unwrap(),
            r#"["todo",{"op":"select","table":"List","where":[],"columns":["name"]}]"#,
        ]);
        assert_eq!(out.matches("\"l").count(), names.len());
    }
}

// ---------------------------------------------------------------------------
// Conversion, durability.

#[test]
fn schema_conversion_rewrites_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("todo.db");
    let s = schema(TODO);
    let mut c = open(&file, Some(s.clone()), FileOptions::default()).unwrap();
    c.transact(&json!(["todo",
        {"op": "insert", "table": "Item", "row": {"description": "d", "status": "todo"}, "uuid-name": "i"},
        {"op": "insert", "table": "List", "row": {"name": "l", "items": ["named-uuid", "i"]}}]));
    let mut j = s.to_json();
    j["version"] = json!("1.1.0");
    j["tables"]["Item"]["columns"]["priority"] = json!({"type": "integer"});
    let s2 = Arc::new(DatabaseSchema::from_json(&j).unwrap());
    let new_db = oxsdb::db::convert::convert(&c.db, s2.clone()).unwrap();
    c.log.convert(&new_db).unwrap();
    c.db = new_db;
    assert_eq!(c.log.schema().version, "1.1.0");
    let recs = records(&file);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].json["version"], "1.1.0");
    // Later commits are in the new schema.
    c.transact(
        &json!(["todo", {"op": "update", "table": "Item", "where": [], "row": {"priority": 3}}]),
    );
    drop(c);
    {
        assert_eq!(
            ovsdb_tool(&["db-version", file.to_str().unwrap()]).trim(),
            "1.1.0"
        );
        let out = ovsdb_tool(&[
            "query",
            file.to_str().unwrap(),
            r#"["todo",{"op":"select","table":"Item","where":[],"columns":["priority","description"]}]"#,
        ]);
        assert!(
            out.contains("\"priority\":3") && out.contains("\"description\":\"d\""),
            "{out}"
        );
    }
    assert!(matches!(
        open(&file, Some(s), FileOptions::default()),
        Err(FileStoreError::SchemaVersion { .. })
    ));
    let c = open(&file, Some(s2), FileOptions::default()).unwrap();
    assert_eq!(c.db.n_rows(), 2);
}

#[test]
fn durable_commits_in_parallel_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("todo.db");
    let mut c = open(
        &file,
        Some(schema(TODO)),
        FileOptions {
            fsync_every_commit: true,
            ..FileOptions::default()
        },
    )
    .unwrap();
    // The database's thread commits 8 transactions, then their tickets run
    // at once on 8 threads (as spawn_blocking runs them), 25 times.
    let mut tickets = 0;
    for round in 0..25 {
        let mut batch = Vec::new();
        for t in 0..8 {
            let ops = [
                json!({"op": "insert", "table": "List", "row": {"name": format!("r{round}-{t}")}}),
            ];
            let Execution::Done(done) = execute(&c.db, &ops, &ExecContext::default()) else {
                panic!("blocked")
            };
            c.db.apply(&done.changes);
            let ticket = c
                .log
                .append(&c.db, &done.changes, None, t % 2 == 0)
                .unwrap()
                .expect("fsync_every_commit gives every record a ticket");
            batch.push(ticket);
        }
        tickets += batch.len();
        let start = Arc::new(std::sync::Barrier::new(batch.len()));
        let threads: Vec<_> = batch
            .into_iter()
            .map(|t| {
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    t()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
    }
    // One fsync covered each round's records.
    assert_eq!(c.log.fsync_count(), 25, "{tickets} tickets");
    drop(c);
    assert_eq!(records(&file).len(), 1 + 200);
    let mut c = open(&file, None, FileOptions::default()).unwrap();
    assert_eq!(c.list_names().len(), 200);
}

// ---------------------------------------------------------------------------
// kill -9 in the middle of writing.

const CRASH_DIR: &str = "OXSDB_FILE_CRASH_DIR";

/// The child of `kill_9_loses_no_acknowledged_transaction`: commits until
/// killed, printing each transaction's number once its commit returned.
#[test]
#[ignore = "run by kill_9_loses_no_acknowledged_transaction"]
fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    use std::io::Write;
    let file = Path::new(&dir).join("todo.db");
    let mut c = open(&file, Some(schema(TODO)), small_compaction()).unwrap();
    // Names are unique: go on after the rows of earlier rounds.
    let start = c.list_names().len();
    let mut out = std::io::stdout();
    for i in start.. {
        // Large rows, so that kills land inside writes too.
        c.transact(&json!(["todo", {"op": "insert", "table": "List",
            "row": {"name": format!("{i:06} {}", "x".repeat(3000))}}]));
        writeln!(out, "acked {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill_9_loses_no_acknowledged_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let file = dir.path().join("todo.db");
    let mut acked_total;
    for round in 0..4 {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("child.err")).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut last = None;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(n) = line.strip_prefix("acked ") {
                    last = Some(n.parse::<usize>().unwrap());
                    let _ = tx.send(());
                }
            }
            last
        });
        // Let it commit for a while, then kill it without warning.
        let target = 150 + round * 37;
        for _ in 0..target {
            if let Err(e) = rx.recv_timeout(Duration::from_secs(30)) {
                let _ = child.kill();
                panic!(
                    "round {round}: child stalled ({e}): {}",
                    std::fs::read_to_string(dir.path().join("child.err")).unwrap_or_default()
                );
            }
        }
        std::thread::sleep(Duration::from_micros(300 * round as u64));
        child.kill().unwrap();
        child.wait().unwrap();
        // The child numbers its rows from the count it found on disk.
        let last = reader.join().unwrap().expect("nothing acknowledged");
        acked_total = last + 1;
        let mut c = open(&file, Some(schema(TODO)), FileOptions::default()).unwrap();
        let names = c.list_names();
        assert!(
            names.len() >= acked_total,
            "round {round}: {} rows on disk, {acked_total} acknowledged",
            names.len()
        );
        // No holes: the file is a prefix of the transactions.
        for (i, n) in names.iter().enumerate() {
            assert!(
                n.starts_with(&format!("{i:06} ")),
                "round {round}: row {i} is {}",
                &n[..6]
            );
        }
    }
    {
        ovsdb_tool(&["show-log", file.to_str().unwrap()]);
    }
}
