//! The oxsdb side of the differential tests: runs a case against the pure
//! engine (no server, no socket) and records exactly what ovsdb-server's
//! replies and notifications would be.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use oxsdb::codec::JsonCodec;
use oxsdb::db::monitor::{Monitor, MonitorVersion};
use oxsdb::db::{Database, Op};
use oxsdb::schema::DatabaseSchema;
use serde_json::{json, Value};

use crate::support::normalize::TXN_PLACEHOLDER;
use crate::{parse_step, record_notifications, Case, Step, ZERO_UUID};

/// How the engine is handed a transaction's operations.
#[derive(Clone, Copy, Debug)]
pub enum Path {
    /// As JSON values.
    Json,
    /// As a server receives them: the request's bytes, decoded straight
    /// into operations where `codec::transact` takes them (and as JSON
    /// where it does not), as a session hands them to its database.
    Bytes,
}

/// How many transactions [`Path::Bytes`] decoded straight from the bytes
/// (the others went as JSON): the test checks that the corpus exercises
/// the decoder.
pub static DECODED: AtomicUsize = AtomicUsize::new(0);

/// Runs operations the way a server's session hands them over from the
/// wire: `sent` as the client wrote them, `ops` as the codec's JSON path
/// reads them.
fn transact_from_bytes(
    db: &mut Database,
    sent: &[Value],
    ops: &[Value],
) -> (Value, oxsdb::db::ChangeSet) {
    let mut params = vec![json!(db.schema.name)];
    params.extend(sent.iter().cloned());
    let request = json!({"id": 1, "method": "transact", "params": params});
    let text = serde_json::to_vec(&request).expect("JSON");
    let mut buf = BytesMut::from(&text[..]);
    let frame = JsonCodec::new()
        .decode_frame(&mut buf)
        .expect("the codec takes what it wrote")
        .expect("one whole message");
    match oxsdb::codec::transact::decode(&frame) {
        Some(t) => {
            DECODED.fetch_add(1, Ordering::Relaxed);
            assert_eq!(t.params_json(), Value::Array(params), "decoded as sent");
            let ops: Vec<Op> = t.ops.into_iter().map(Op::Raw).collect();
            db.transact_with_changes(&ops)
        }
        None => db.transact_with_changes(ops),
    }
}

pub fn run(case: &Case, path: Path) -> Vec<Value> {
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
            Step::Transact(sent) => {
                // Numbers as the server's codec hands them to the engine
                // (lib/json.c's reading: `1e3` is the integer 1000).
                let mut ops = sent.to_vec();
                for op in &mut ops {
                    if let Err(e) = oxsdb::data::number::read_numbers(op) {
                        panic!("case {}: {e} (use a wire scenario)", case.name);
                    }
                }
                let (results, changes) = match path {
                    Path::Json => db.transact_with_changes(&ops),
                    Path::Bytes => transact_from_bytes(&mut db, sent, &ops),
                };
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
