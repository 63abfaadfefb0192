//! Change-set algebra that group commit relies on, over random transaction
//! sequences on the to-do schema (unique index, strong references, garbage
//! collection): the merge of the sequence's change sets turns the first
//! database into the last, and its inverse turns the last back into the
//! first, indexes included.

use std::sync::Arc;

use oxsdb::db::changes::diff;
use oxsdb::db::{execute, ChangeSet, Database, ExecContext, Execution};
use oxsdb::schema::DatabaseSchema;
use proptest::prelude::*;
use serde_json::{json, Value};

fn schema() -> Arc<DatabaseSchema> {
    let text = include_str!("../examples/todo.ovsschema");
    let v: Value = serde_json::from_str(text).expect("todo schema JSON");
    Arc::new(DatabaseSchema::from_json(&v).expect("todo schema"))
}

/// One random step: (kind, list number, item text).
fn step() -> impl Strategy<Value = (u8, u8, u8)> {
    (0u8..4, 0u8..6, 0u8..4)
}

/// The transaction of a step (it may fail: a duplicate name, a missing list).
fn ops(kind: u8, list: u8, item: u8) -> Vec<Value> {
    let name = format!("l{list}");
    match kind {
        0 => vec![
            json!({"op": "insert", "table": "Item", "uuid-name": "i",
                   "row": {"description": format!("d{item}"), "status": "todo"}}),
            json!({"op": "insert", "table": "List",
                   "row": {"name": name, "items": ["named-uuid", "i"]}}),
        ],
        1 => vec![
            json!({"op": "update", "table": "List", "where": [["name", "==", name]],
                         "row": {"name": format!("l{}", (list + item) % 6)}}),
        ],
        2 => vec![json!({"op": "delete", "table": "List", "where": [["name", "==", name]]})],
        _ => vec![
            json!({"op": "insert", "table": "Item", "uuid-name": "i",
                   "row": {"description": format!("x{item}"), "status": "done"}}),
            json!({"op": "mutate", "table": "List", "where": [["name", "==", name]],
                   "mutations": [["items", "insert", ["set", [["named-uuid", "i"]]]]]}),
        ],
    }
}

/// Executes a transaction and applies it if it committed; its changes.
fn run(db: &mut Database, ops: &[Value]) -> Option<ChangeSet> {
    match execute(db, ops, &ExecContext::default()) {
        Execution::Done(done) if done.succeeded() && !done.changes.is_empty() => {
            db.apply(&done.changes);
            Some(done.changes)
        }
        _ => None,
    }
}

fn assert_same(a: &Database, b: &Database, what: &str) {
    let d = diff(a, b);
    assert!(d.is_empty(), "{what}: {} rows differ", d.n_rows());
}

/// Whether the unique index on List.name holds `name` (an insert of it fails).
fn name_taken(db: &Database, name: &str) -> bool {
    let ops = [json!({"op": "insert", "table": "List", "row": {"name": name}})];
    match execute(db, &ops, &ExecContext::default()) {
        Execution::Done(done) => !done.succeeded(),
        Execution::Blocked { .. } => panic!("insert blocked"),
    }
}

proptest! {
    #[test]
    fn merge_and_inverse(prefix in prop::collection::vec(step(), 0..8),
                         group in prop::collection::vec(step(), 1..12)) {
        let mut db = Database::new(schema());
        for (k, l, i) in prefix {
            run(&mut db, &ops(k, l, i));
        }
        let before = db.clone();
        let sets: Vec<ChangeSet> = group
            .iter()
            .filter_map(|&(k, l, i)| run(&mut db, &ops(k, l, i)))
            .collect();
        let after = db.clone();
        let refs: Vec<&ChangeSet> = sets.iter().collect();
        let merged = ChangeSet::merge_all(&refs);

        let mut forward = before.clone();
        forward.apply(&merged);
        assert_same(&forward, &after, "before + merged");

        let mut back = after.clone();
        back.apply(&merged.inverse());
        assert_same(&back, &before, "after + inverse(merged)");
        for l in 0..6 {
            let name = format!("l{l}");
            prop_assert_eq!(name_taken(&back, &name), name_taken(&before, &name), "index of {}", name);
        }
    }
}
