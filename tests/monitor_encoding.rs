//! The initial monitor reply written straight into bytes
//! (`Monitor::write_initial`) is byte for byte what encoding the value of
//! `Monitor::initial` gives, for random rows of every type (strings with
//! quotes, escapes and non-ASCII, reals, sets, empty tables), every monitor
//! version, column subsets and conditions.

use std::sync::Arc;

use bytes::BytesMut;
use oxsdb::codec::framing::write_json;
use oxsdb::db::monitor::{Monitor, MonitorVersion};
use oxsdb::db::{execute, Database, ExecContext, Execution};
use oxsdb::schema::DatabaseSchema;
use proptest::prelude::*;
use serde_json::{json, Value};

fn schema() -> Arc<DatabaseSchema> {
    let text = include_str!("../examples/alltypes.ovsschema");
    let v: Value = serde_json::from_str(text).expect("alltypes schema JSON");
    Arc::new(DatabaseSchema::from_json(&v).expect("alltypes schema"))
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a", "Z", "\"", "\\", "\n", "\t", "\u{1}", "é", "✓", "/", " ",
        ]),
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn scalars_row() -> impl Strategy<Value = Value> {
    (
        any::<i32>(),
        -1e6f64..1e6,
        any::<bool>(),
        text(),
        prop::collection::btree_set(any::<i16>(), 0..4),
        prop::collection::btree_set(text(), 0..3),
    )
        .prop_map(|(i, r, b, s, iset, sset)| {
            json!({"i": i, "r": r, "b": b, "s": s,
                   "iset": ["set", iset], "sset": ["set", sset]})
        })
}

fn check(db: &Database, version: MonitorVersion, requests: &Value) {
    let monitor = Monitor::from_json(&db.schema, version, requests).expect("monitor request");
    let mut expected = BytesMut::new();
    write_json(&monitor.initial(db), &mut expected);
    let mut written = BytesMut::new();
    monitor.write_initial(db, &mut written);
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&expected),
        "{version:?} {requests}"
    );
}

proptest! {
    #[test]
    fn written_initial_equals_the_encoded_value(rows in prop::collection::vec(scalars_row(), 0..12)) {
        let mut db = Database::new(schema());
        let ops: Vec<Value> = rows
            .into_iter()
            .map(|row| json!({"op": "insert", "table": "Scalars", "row": row}))
            .collect();
        if let Execution::Done(done) = execute(&db, &ops, &ExecContext::default()) {
            prop_assert!(done.succeeded(), "{:?}", done.results);
            db.apply(&done.changes);
        }
        check(&db, MonitorVersion::V1, &json!({"Scalars": {}}));
        check(&db, MonitorVersion::V2, &json!({"Scalars": [{}], "Constrained": [{}]}));
        check(&db, MonitorVersion::V2, &json!({"Scalars": [{"columns": ["s", "iset"]}]}));
        check(&db, MonitorVersion::V2, &json!({"Scalars": [{"where": [["b", "==", true]]}]}));
        check(&db, MonitorVersion::V3, &json!({"Scalars": [{"columns": ["r"], "where": [["i", ">", 0]]}]}));
        check(&db, MonitorVersion::V2, &json!({"Scalars": [{"select": {"initial": false}}]}));
    }
}
