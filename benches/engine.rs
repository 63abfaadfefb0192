//! Engine benchmarks (criterion), on the OVN Northbound schema:
//!
//! - `txn_mix`: transactions per second on a 10,000-row database (100
//!   `Logical_Switch` rows with 100 `Logical_Switch_Port` rows each) for a
//!   realistic mix of four transactions, each timed as `execute` + `apply`:
//!   insert a port (named-uuid) and add it to its switch's `ports`; update a
//!   port's `addresses`; insert and delete `external_ids` keys of a port;
//!   remove a port from its switch's `ports` (the port is garbage collected).
//!   The database keeps its size: every round inserts one port and removes
//!   the oldest one.
//! - `update2_encode_1000_rows`: the notification body of one change set that
//!   modifies 1,000 ports, `Monitor::update` (V2 and V1) + `serde_json::to_vec`.
//! - `schema_parse`: parsing `ovn-nb.ovsschema` (from a `Value`, and from text).
//!
//! Run: `cargo bench --bench engine -- --warm-up-time 1 --measurement-time 3`.
mod common;

use common::{mac, schema, schema_text};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use oxsdb::db::monitor::{Monitor, MonitorVersion};
use oxsdb::db::op_result::OpResult;
use oxsdb::db::{execute, ChangeSet, Database, ExecContext, Execution};
use oxsdb::schema::DatabaseSchema;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const SWITCHES: usize = 100;
const PORTS_PER_SWITCH: usize = 100;
/// Switches inserted per preload transaction.
const SWITCHES_PER_TXN: usize = 20;

fn port_row(name: &str, i: usize) -> Value {
    json!({
        "name": name,
        "addresses": ["set", [format!("{} 10.{}.{}.{}", mac(i), (i >> 16) & 255, (i >> 8) & 255, i & 255)]],
        "external_ids": ["map", [["group", format!("g{}", i % 10)], ["neutron:port_name", name]]],
        "options": ["map", [["requested-chassis", format!("hv{}", i % 50)]]],
        "enabled": true,
    })
}

/// Executes and applies one transaction; panics if it fails.
fn run(db: &mut Database, ops: &[Value]) -> Vec<Value> {
    match execute(db, ops, &ExecContext::default()) {
        Execution::Done(done) => {
            assert!(done.succeeded(), "transaction failed: {:?}", done.results);
            db.apply(&done.changes);
            done.results.into_iter().map(OpResult::into_json).collect()
        }
        Execution::Blocked { .. } => panic!("transaction blocked"),
    }
}

fn uuid_of(result: &Value) -> String {
    result["uuid"][1]
        .as_str()
        .expect("insert result")
        .to_string()
}

/// The 10,000-port database, and (switch uuid, port uuid) of every port, oldest first.
fn preload() -> (Database, VecDeque<(String, String)>) {
    let mut db = Database::new(schema());
    let mut ports = VecDeque::new();
    let mut n = 0;
    for batch in 0..SWITCHES / SWITCHES_PER_TXN {
        let mut ops = Vec::new();
        for s in 0..SWITCHES_PER_TXN {
            let sw = batch * SWITCHES_PER_TXN + s;
            let mut refs = Vec::new();
            for _ in 0..PORTS_PER_SWITCH {
                let uuid_name = format!("p{n}");
                ops.push(
                    json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": uuid_name,
                    "row": port_row(&format!("lsp{n}"), n)}),
                );
                refs.push(json!(["named-uuid", uuid_name]));
                n += 1;
            }
            ops.push(json!({"op": "insert", "table": "Logical_Switch",
                "row": {"name": format!("ls{sw}"), "ports": ["set", refs],
                        "external_ids": ["map", [["neutron:network_name", format!("net{sw}")]]]}}));
        }
        let results = run(&mut db, &ops);
        // Results: PORTS_PER_SWITCH port uuids, then the switch's, per switch.
        for chunk in results.chunks(PORTS_PER_SWITCH + 1) {
            let sw = uuid_of(&chunk[PORTS_PER_SWITCH]);
            for p in &chunk[..PORTS_PER_SWITCH] {
                ports.push_back((sw.clone(), uuid_of(p)));
            }
        }
    }
    assert_eq!(db.n_rows(), SWITCHES * (PORTS_PER_SWITCH + 1));
    (db, ports)
}

fn where_uuid(u: &str) -> Value {
    json!([["_uuid", "==", ["uuid", u]]])
}

fn bench_txn_mix(c: &mut Criterion) {
    let (mut db, mut ports) = preload();
    let switches: Vec<String> = ports
        .iter()
        .step_by(PORTS_PER_SWITCH)
        .map(|(s, _)| s.clone())
        .collect();
    let ctx = ExecContext::default();
    let mut round = 0usize;

    let mut group = c.benchmark_group("txn_mix");
    group.throughput(Throughput::Elements(4));
    group.bench_function("ovn_nb_10k_rows", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let i = 1_000_000 + round;
                let sw = &switches[round % switches.len()];
                let name = format!("new{round}");
                let (_, some_port) = &ports[(round * 7919) % ports.len()];
                let txns = [
                    vec![
                        json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "np",
                            "row": port_row(&name, i)}),
                        json!({"op": "mutate", "table": "Logical_Switch", "where": where_uuid(sw),
                            "mutations": [["ports", "insert", ["set", [["named-uuid", "np"]]]]]}),
                    ],
                    vec![json!({"op": "update", "table": "Logical_Switch_Port", "where": where_uuid(some_port),
                        "row": {"addresses": ["set", [format!("{} 10.9.{}.{}", mac(i), (i >> 8) & 255, i & 255)]]}})],
                    vec![json!({"op": "mutate", "table": "Logical_Switch_Port", "where": where_uuid(some_port),
                        "mutations": [["external_ids", "delete", ["set", ["bench"]]],
                                      ["external_ids", "insert", ["map", [["bench", format!("{round}")]]]]]})],
                    {
                        let (old_sw, old_port) = ports.front().unwrap();
                        vec![json!({"op": "mutate", "table": "Logical_Switch", "where": where_uuid(old_sw),
                            "mutations": [["ports", "delete", ["set", [["uuid", old_port]]]]]})]
                    },
                ];
                let mut new_port = None;
                for (k, ops) in txns.iter().enumerate() {
                    let start = Instant::now();
                    let Execution::Done(done) = execute(&db, ops, &ctx) else { panic!("blocked") };
                    db.apply(&done.changes);
                    timed += start.elapsed();
                    assert!(done.succeeded(), "txn {k} failed: {:?}", done.results);
                    if k == 0 {
                        new_port = Some(uuid_of(&done.results[0].to_json()));
                    }
                }
                ports.pop_front();
                ports.push_back((sw.clone(), new_port.unwrap()));
            }
            timed
        })
    });
    group.finish();
    assert_eq!(
        db.n_rows(),
        SWITCHES * (PORTS_PER_SWITCH + 1),
        "the mix keeps the database's size"
    );
}

/// A change set modifying 1,000 ports (those of group g0): new addresses.
fn thousand_row_changes(db: &Database) -> ChangeSet {
    let ops = [json!({"op": "update", "table": "Logical_Switch_Port",
        "where": [["external_ids", "includes", ["map", [["group", "g0"]]]]],
        "row": {"addresses": ["set", ["0a:ff:ff:ff:ff:ff 192.168.0.1"]], "up": true}})];
    match execute(db, &ops, &ExecContext::default()) {
        Execution::Done(done) => {
            assert!(done.succeeded(), "{:?}", done.results);
            assert_eq!(done.changes.n_rows(), 1000);
            done.changes
        }
        Execution::Blocked { .. } => panic!("blocked"),
    }
}

fn bench_update_encode(c: &mut Criterion) {
    let (db, _) = preload();
    let changes = thousand_row_changes(&db);
    let all: serde_json::Map<String, Value> = db
        .schema
        .tables
        .iter()
        .map(|t| (t.name.clone(), json!({})))
        .collect();
    let all = Value::Object(all);
    let mut group = c.benchmark_group("update_encode_1000_rows");
    group.throughput(Throughput::Elements(1000));
    for (label, version) in [
        ("update2_v2", MonitorVersion::V2),
        ("update_v1", MonitorVersion::V1),
    ] {
        let m = Monitor::from_json(&db.schema, version, &all).unwrap();
        group.bench_function(label, |b| {
            b.iter(|| {
                let body = m.update(&db.schema, black_box(&changes)).unwrap();
                serde_json::to_vec(&body).unwrap()
            })
        });
    }
    group.finish();
}

fn bench_schema_parse(c: &mut Criterion) {
    let text = schema_text();
    let json: Value = serde_json::from_str(&text).unwrap();
    let mut group = c.benchmark_group("schema_parse_ovn_nb");
    group.bench_function("from_json", |b| {
        b.iter(|| DatabaseSchema::from_json(black_box(&json)).unwrap())
    });
    group.bench_function("from_text", |b| {
        b.iter(|| {
            DatabaseSchema::from_json(&serde_json::from_str::<Value>(black_box(&text)).unwrap())
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_txn_mix,
    bench_update_encode,
    bench_schema_parse
);
criterion_main!(benches);
