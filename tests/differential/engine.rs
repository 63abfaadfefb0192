//! The oxsdb side of the differential tests: runs a case against the pure
//! engine (no server, no socket) and records exactly what ovsdb-server's
//! replies and notifications would be.

use std::sync::Arc;

use oxsdb::db::monitor::{Monitor, MonitorVersion};
use oxsdb::db::Database;
use oxsdb::schema::DatabaseSchema;
use serde_json::{json, Value};

use crate::support::normalize::TXN_PLACEHOLDER;
use crate::{parse_step, record_notifications, Case, Step, ZERO_UUID};

pub fn run(case: &Case) -> Vec<Value> {
    let text = std::fs::read_to_string(&case.schema)
        .unwrap_or_else(|e| panic!("{}: {e}", case.schema.display()));
    let schema_json: Value = serde_json::from_str(&text).expect("schema JSON");
    let schema =
        Arc::new(DatabaseSchema::from_json(&schema_json).unwrap_or_else(|e| {
            panic!("oxsdb rejects {}: {}", case.schema.display(), e.to_json())
        }));
    #[allow(unused_mut)]
    let mut db = Database::new(schema.clone());
    let mut monitors: Vec<(String, MonitorVersion, Monitor)> = Vec::new();
    let mut records = Vec::new();
    for step in &case.steps {
        match parse_step(step).unwrap() {
            Step::Transact(ops) => {
                // Numbers as the server's codec hands them to the engine
                // (lib/json.c's reading: `1e3` is the integer 1000).
                let mut ops = ops.to_vec();
                for op in &mut ops {
                    if let Err(e) = oxsdb::data::number::read_numbers(op) {
                        panic!("case {}: {e} (use a wire scenario)", case.name);
                    }
                }
                let (results, changes) = db.transact_with_changes(&ops);
                let mut notes = Vec::new();
                for (id, version, monitor) in &monitors {
                    if let Some(body) = monitor.update(&schema, &changes) {
                        notes.push(match version {
                            MonitorVersion::V1 => json!({"method": "update", "params": [id, body]}),
                            MonitorVersion::V2 => {
                                json!({"method": "update2", "params": [id, body]})
                            }
                            MonitorVersion::V3 => json!({
                                "method": "update3",
                                "params": [id, TXN_PLACEHOLDER, body],
                            }),
                        });
                    }
                }
                records.push(json!({
                    "reply": {"result": results},
                    "notifications": record_notifications(&notes),
                }));
            }
            Step::Monitor {
                id,
                version,
                requests,
            } => {
                let version = match version {
                    1 => MonitorVersion::V1,
                    2 => MonitorVersion::V2,
                    _ => MonitorVersion::V3,
                };
                let reply = match Monitor::from_json(&schema, version, requests) {
                    Err(e) => json!({"error": e.to_json()}),
                    Ok(monitor) => {
                        let initial = monitor.initial(&db);
                        let result = match version {
                            MonitorVersion::V3 => json!([false, ZERO_UUID, initial]),
                            _ => initial,
                        };
                        monitors.push((id.to_string(), version, monitor));
                        let mut r = json!({"result": result});
                        crate::mask_since_reply(&mut r);
                        r
                    }
                };
                records.push(json!({"reply": reply}));
            }
            Step::Cancel(id) => {
                let before = monitors.len();
                monitors.retain(|(m, _, _)| m != id);
                assert!(monitors.len() < before, "case cancels unknown monitor {id}");
                records.push(json!({"reply": {"result": {}}}));
            }
        }
    }
    records
}
