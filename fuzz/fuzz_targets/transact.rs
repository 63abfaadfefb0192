//! Fuzz target: arbitrary bytes, parsed as JSON, through every engine entry
//! point that takes client JSON. Nothing may panic.
//!
//! - an array: the params of `transact` (after the database name) on the
//!   alltypes and OVN Northbound databases (each with a few rows), checking
//!   that the result has an element per operation; the change set then goes
//!   through V1/V2/V3 monitors of every table;
//! - any value: a monitor request (V1/V2/V3, initial + update), a condition
//!   and a mutation set for every table (evaluated / applied to every row),
//!   and a schema (parsed, serialized back and parsed again).
//!
//! Run from the crate root: `cargo fuzz run transact fuzz/seeds -- -dict=fuzz/transact.dict`
//! (see fuzz/README.md).

#![no_main]

use libfuzzer_sys::fuzz_target;
use oxsdb::data::Row;
use oxsdb::db::condition::Condition;
use oxsdb::db::monitor::{Monitor, MonitorVersion};
use oxsdb::db::mutation::MutationSet;
use oxsdb::db::{ChangeSet, Database};
use oxsdb::schema::DatabaseSchema;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

const ALLTYPES: &str = include_str!("../../examples/alltypes.ovsschema");
const OVN_NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";

struct Fixture {
    schema: Arc<DatabaseSchema>,
    db: Database,
    monitors: Vec<Monitor>,
}

fn fixture(schema_text: &str, preload: Value) -> Fixture {
    let json: Value = serde_json::from_str(schema_text).expect("schema is JSON");
    let schema = Arc::new(DatabaseSchema::from_json(&json).expect("schema parses"));
    let mut db = Database::new(schema.clone());
    let r = db.transact(preload.as_array().expect("preload is an array"));
    assert!(
        r.as_array()
            .unwrap()
            .iter()
            .all(|x| x.get("error").is_none()),
        "preload failed: {r}"
    );
    let all: serde_json::Map<String, Value> = schema
        .tables
        .iter()
        .map(|t| (t.name.clone(), json!({})))
        .collect();
    let all = Value::Object(all);
    let monitors = [MonitorVersion::V1, MonitorVersion::V2, MonitorVersion::V3]
        .into_iter()
        .map(|v| Monitor::from_json(&schema, v, &all).expect("monitor of all tables"))
        .collect();
    Fixture {
        schema,
        db,
        monitors,
    }
}

fn fixtures() -> &'static Vec<Fixture> {
    static F: OnceLock<Vec<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let t0 = "00000000-0000-4000-8000-0000000000a0";
        let c0 = "00000000-0000-4000-8000-0000000000c0";
        let mut v = vec![fixture(
            ALLTYPES,
            json!([
                {"op": "insert", "table": "Target", "uuid": t0, "row": {"name": "t0", "n": 0}},
                {"op": "insert", "table": "Child", "uuid": c0, "row": {"name": "c0", "friend": ["uuid", t0]}},
                {"op": "insert", "table": "Parent", "row": {"name": "p0", "children": ["uuid", c0],
                    "targets": ["uuid", t0], "weak_map": ["map", [["a", ["uuid", t0]]]]}},
                {"op": "insert", "table": "Holder", "row": {"name": "h0", "must": ["uuid", t0], "one": ["uuid", t0]}},
                {"op": "insert", "table": "Scalars", "row": {"i": 7, "r": -1.5, "b": true, "s": "s",
                    "iset": ["set", [1, 2]], "rset": ["set", [0.5]], "sset": ["set", ["a"]], "uset": ["uuid", t0]}},
                {"op": "insert", "table": "Constrained", "row": {"color": "blue", "port": 80, "small_set": 1,
                    "pair": "x", "created": 1}},
                {"op": "insert", "table": "Maps", "row": {"ss": ["map", [["k", "v"]]], "req_map": ["map", [["r", 1]]]}},
                {"op": "insert", "table": "Indexed", "row": {"a": 0, "b": "", "c": "c0", "d": 1.0}},
                {"op": "insert", "table": "Limited", "row": {"n": 5}}
            ]),
        )];
        if let Ok(text) = std::fs::read_to_string(OVN_NB) {
            v.push(fixture(
                &text,
                json!([
                    {"op": "insert", "table": "Logical_Switch", "row": {"name": "ls0",
                        "ports": ["named-uuid", "p0"], "external_ids": ["map", [["k", "v"]]]}},
                    {"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "p0", "row": {"name": "lsp0",
                        "addresses": "00:00:00:00:00:01 10.0.0.1", "tag_request": 1}},
                    {"op": "insert", "table": "NB_Global", "row": {"name": "nb"}}
                ]),
            ));
        }
        v
    })
}

fn check(json: &Value) {
    for f in fixtures() {
        let mut changes = ChangeSet::default();
        if let Value::Array(ops) = json {
            let mut db = f.db.clone();
            let (r, c) = db.transact_with_changes(ops);
            let n = r.as_array().map(Vec::len);
            assert!(
                n.is_some_and(|n| n >= ops.len()),
                "bad result {r} for {} ops",
                ops.len()
            );
            for m in &f.monitors {
                let _ = m.update(&f.schema, &c);
                let _ = m.initial(&db);
            }
            changes = c;
        }
        for v in [MonitorVersion::V1, MonitorVersion::V2, MonitorVersion::V3] {
            if let Ok(m) = Monitor::from_json(&f.schema, v, json) {
                let _ = m.initial(&f.db);
                let _ = m.update(&f.schema, &changes);
            }
        }
        for (ti, t) in f.schema.tables.iter().enumerate() {
            if let Ok(c) = Condition::from_json(t, json, None) {
                for r in f.db.tables[ti].rows.values() {
                    let _ = c.evaluate(r);
                }
                let _ = c.to_json();
            }
            if let Ok(m) = MutationSet::from_json(t, json, None) {
                for r in f.db.tables[ti].rows.values() {
                    let mut r: Row = (**r).clone();
                    let _ = m.apply(t, &mut r);
                }
            }
        }
    }
    if let Ok(s) = DatabaseSchema::from_json(json) {
        let again = DatabaseSchema::from_json(&s.to_json()).expect("a schema's to_json parses");
        assert_eq!(again, s, "schema changes through to_json");
        let _ = Database::new(Arc::new(s));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(json) = serde_json::from_slice::<Value>(data) {
        check(&json);
    }
});
