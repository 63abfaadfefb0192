//! The per-commit cost of a file record (criterion), on OVN Northbound
//! transactions: `FileLog`'s `RecordWriter`, JSON text straight from the
//! change set's rows. (The key-value file store it replaced took 2.5 ms and
//! 39 µs for the same two records, against 3.9 and 0.9 µs, on 2026-12-07.)
//!
//! - `add_port`: a port inserted into a switch of 1,000 ports (the switch's
//!   `ports` set written as a one-element diff), as ovn-northd and neutron do;
//! - `update_port`: one port's `addresses` and `external_ids` changed.
//!
//! Run: `cargo bench --bench file_log_record -- --warm-up-time 1 --measurement-time 3`.
mod common;

use common::mac;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use oxsdb::db::{execute, ChangeSet, Database, ExecContext, Execution};
use oxsdb::storage::file_log::RecordWriter;
use serde_json::{json, Value};

fn run(db: &Database, ops: Value) -> ChangeSet {
    match execute(db, ops.as_array().unwrap(), &ExecContext::default()) {
        Execution::Done(d) => {
            assert!(d.succeeded(), "{:?}", d.results);
            d.changes
        }
        Execution::Blocked { .. } => panic!("blocked"),
    }
}

fn port(i: usize) -> Value {
    json!({"name": format!("lsp{i}"), "addresses": ["set", [format!("{} 10.0.{}.{}", mac(i), i / 250, i % 250 + 1)]],
           "external_ids": ["map", [["neutron:device_owner", "compute:nova"], ["neutron:port_name", format!("port-{i}")]]]})
}

fn setup() -> (Database, ChangeSet, ChangeSet) {
    let mut db = Database::new(common::schema());
    let mut ops = vec![json!({"op": "insert", "table": "Logical_Switch", "row": {"name": "ls0"}})];
    for i in 0..1000 {
        ops.push(json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": format!("p{i}"), "row": port(i)}));
        ops.push(
            json!({"op": "mutate", "table": "Logical_Switch", "where": [["name", "==", "ls0"]],
            "mutations": [["ports", "insert", ["set", [["named-uuid", format!("p{i}")]]]]]}),
        );
    }
    let cs = run(&db, Value::Array(ops));
    db.apply(&cs);
    let add = run(
        &db,
        json!([{"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "new", "row": port(5000)},
               {"op": "mutate", "table": "Logical_Switch", "where": [["name", "==", "ls0"]],
                "mutations": [["ports", "insert", ["set", [["named-uuid", "new"]]]]]}]),
    );
    let update = run(
        &db,
        json!([{"op": "update", "table": "Logical_Switch_Port", "where": [["name", "==", "lsp7"]],
                "row": {"addresses": ["set", ["0a:00:00:00:99:99 10.9.9.9"]],
                        "external_ids": ["map", [["neutron:device_owner", "compute:nova"], ["neutron:port_name", "renamed"]]]}}]),
    );
    (db, add, update)
}

fn bench(c: &mut Criterion) {
    let (db, add, update) = setup();
    let mut writer = RecordWriter::new(db.schema.clone());
    for (name, cs) in [("add_port", &add), ("update_port", &update)] {
        let mut g = c.benchmark_group(name);
        g.bench_function("record_writer", |b| {
            b.iter(|| {
                black_box(
                    writer
                        .transaction(black_box(cs), None, 1, true)
                        .map(<[u8]>::len),
                )
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
