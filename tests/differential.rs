//! Differential tests: every case of `tests/differential/*.json` runs against
//! a fresh reference `ovsdb-server` and against oxsdb's engine, and the
//! normalised replies and monitor notifications must be equal.
//!
//! Case files are data only (the steps, never expected outputs):
//!
//! ```json
//! {"schema": "examples/todo.ovsschema",
//!  "cases": [
//!    {"name": "insert then select",
//!     "steps": [
//!       {"transact": [{"op": "insert", "table": "List", "row": {"name": "a"}}]},
//!       {"monitor": {"id": "m1", "method": "monitor_cond", "requests": {"List": [{"columns": ["name"]}]}}},
//!       {"transact": [...]},
//!       {"monitor_cancel": "m1"}]}]}
//! ```
//!
//! * `transact`: the operations (the `transact` params after the database
//!   name). Recorded: the reply (`{"result": ..}` or `{"error": ..}`) and the
//!   notifications of every monitor that arrived before it.
//! * `monitor`: `method` is `monitor` (update), `monitor_cond` (update2) or
//!   `monitor_cond_since` (update3; the last txn id sent is the zero UUID).
//! * `monitor_cancel`: cancels a monitor created earlier in the case.
//!
//! Environment: `OXSDB_DIFF_FILTER=substr` runs only the cases whose
//! "file: name" contains substr; `OXSDB_DIFF_THREADS=n` (default 3);
//! `OXSDB_DIFF_VERBOSE=1` prints every case's normalised reference outcome.
//! The normalised reference outcomes are also written to
//! `target/tmp/differential-reference.json` for reading.
//!
//! Cases whose difference is a known ovsdb-server bug are listed, with an
//! explanation, in `tests/differential/known_reference_bugs.json`.

mod support;

#[path = "differential/engine.rs"]
mod engine;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Value};
use support::normalize::{Normalizer, TXN_PLACEHOLDER};
use support::reference::ReferenceServer;
use support::tools::{ovsdb_tool_create, require_file};

pub const ZERO_UUID: &str = "00000000-0000-0000-0000-000000000000";
const MIN_CASES: usize = 220;

/// One test case: steps run in order against a fresh database.
#[derive(Debug, Clone)]
pub struct Case {
    pub file: String,
    pub schema: PathBuf,
    pub name: String,
    pub steps: Vec<Value>,
}

impl Case {
    pub fn label(&self) -> String {
        format!("{}: {}", self.file, self.name)
    }
}

/// A parsed step.
#[derive(Debug)]
pub enum Step<'a> {
    Transact(&'a [Value]),
    Monitor {
        id: &'a str,
        version: u8,
        requests: &'a Value,
    },
    Cancel(&'a str),
}

pub fn monitor_version(method: &str) -> Option<u8> {
    match method {
        "monitor" => Some(1),
        "monitor_cond" => Some(2),
        "monitor_cond_since" => Some(3),
        _ => None,
    }
}

pub fn parse_step(step: &Value) -> Result<Step<'_>, String> {
    let obj = step.as_object().ok_or("step is not an object")?;
    if obj.len() != 1 {
        return Err("step must have exactly one member".into());
    }
    if let Some(ops) = obj.get("transact") {
        let ops = ops
            .as_array()
            .ok_or("transact: array of operations expected")?;
        return Ok(Step::Transact(ops));
    }
    if let Some(m) = obj.get("monitor") {
        let id = m
            .get("id")
            .and_then(Value::as_str)
            .ok_or("monitor: string id expected")?;
        let method = m
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("monitor_cond");
        let version = monitor_version(method).ok_or("monitor: unknown method")?;
        let requests = m.get("requests").ok_or("monitor: requests expected")?;
        return Ok(Step::Monitor {
            id,
            version,
            requests,
        });
    }
    if let Some(id) = obj.get("monitor_cancel") {
        let id = id.as_str().ok_or("monitor_cancel: string id expected")?;
        return Ok(Step::Cancel(id));
    }
    Err(format!(
        "unknown step kind {:?}",
        obj.keys().collect::<Vec<_>>()
    ))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn resolve_schema(s: &str) -> PathBuf {
    let p = Path::new(s);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root().join(p)
    }
}

/// Loads every case file; panics on malformed files or duplicate names.
pub fn load_cases() -> Vec<Case> {
    let dir = root().join("tests/differential");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n != "known_reference_bugs.json")
        })
        .collect();
    files.sort();
    let mut cases = Vec::new();
    let mut names = HashSet::new();
    for f in files {
        let file = f.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&f).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let schema = resolve_schema(
            v["schema"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: schema")),
        );
        for c in v["cases"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: cases"))
        {
            let name = c["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: case name"))
                .to_string();
            let steps = c["steps"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: {name}: steps"))
                .clone();
            assert!(!steps.is_empty(), "{file}: {name}: no steps");
            for (i, s) in steps.iter().enumerate() {
                if let Err(e) = parse_step(s) {
                    panic!("{file}: {name}: step {i}: {e}");
                }
            }
            assert!(
                names.insert(name.clone()),
                "{file}: duplicate case name {name:?}"
            );
            cases.push(Case {
                file: file.clone(),
                schema: schema.clone(),
                name,
                steps,
            });
        }
    }
    if let Ok(filter) = std::env::var("OXSDB_DIFF_FILTER") {
        cases.retain(|c| c.label().contains(&filter));
    }
    cases
}

/// Notification messages as recorded: `{"method", "params"}`, the txn id of
/// update3 replaced by a placeholder, sorted by monitor id (stable).
pub fn record_notifications(notes: &[Value]) -> Value {
    let mut out: Vec<Value> = notes
        .iter()
        .map(|n| {
            let method = n["method"].clone();
            let mut params = n["params"].clone();
            if method == "update3" {
                if let Some(p) = params.as_array_mut() {
                    if p.len() == 3 {
                        p[1] = json!(TXN_PLACEHOLDER);
                    }
                }
            }
            json!({ "method": method, "params": params })
        })
        .collect();
    out.sort_by_key(|n| n["params"][0].to_string());
    Value::Array(out)
}

/// The reply of a monitor_cond_since: its last txn id replaced by a placeholder.
pub fn mask_since_reply(outcome: &mut Value) {
    if let Some(r) = outcome.get_mut("result").and_then(Value::as_array_mut) {
        if r.len() == 3 && r[1].is_string() {
            r[1] = json!(TXN_PLACEHOLDER);
        }
    }
}

/// Runs a case against a fresh reference ovsdb-server; one record per step.
pub fn run_reference(case: &Case) -> Vec<Value> {
    let server = ReferenceServer::start(&case.schema);
    let mut client = server.connect();
    let db = server.db_name.clone();
    let mut records = Vec::new();
    let mut monitors: Vec<(String, u8)> = Vec::new();
    for step in &case.steps {
        match parse_step(step).unwrap() {
            Step::Transact(ops) => {
                let mut params = vec![json!(db)];
                params.extend(ops.iter().cloned());
                let reply = client.request("transact", Value::Array(params));
                // Fence: anything the commit triggered is sent before the
                // reply to a later echo on the same connection.
                let fence = client.request("echo", json!(["fence"]));
                let mut notes = reply.notifications.clone();
                notes.extend(fence.notifications);
                records.push(json!({
                    "reply": reply.outcome(),
                    "notifications": record_notifications(&notes),
                }));
            }
            Step::Monitor {
                id,
                version,
                requests,
            } => {
                let method = match version {
                    1 => "monitor",
                    2 => "monitor_cond",
                    _ => "monitor_cond_since",
                };
                let mut params = vec![json!(db), json!(id), requests.clone()];
                if version == 3 {
                    params.push(json!(ZERO_UUID));
                }
                let reply = client.request(method, Value::Array(params));
                let mut outcome = reply.outcome();
                if version == 3 {
                    mask_since_reply(&mut outcome);
                }
                if reply.result().is_some() {
                    monitors.push((id.to_string(), version));
                }
                let mut rec = json!({ "reply": outcome });
                if !reply.notifications.is_empty() {
                    rec["notifications"] = record_notifications(&reply.notifications);
                }
                records.push(rec);
            }
            Step::Cancel(id) => {
                let reply = client.request("monitor_cancel", json!([id]));
                monitors.retain(|(m, _)| m != id);
                let mut rec = json!({ "reply": reply.outcome() });
                if !reply.notifications.is_empty() {
                    rec["notifications"] = record_notifications(&reply.notifications);
                }
                records.push(rec);
            }
        }
    }
    records
}

pub fn normalize_records(records: &[Value]) -> Vec<Value> {
    let mut n = Normalizer::new();
    records.iter().map(|r| n.normalize(r)).collect()
}

fn threads() -> usize {
    std::env::var("OXSDB_DIFF_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1)
}

/// Runs `f` on every case, `threads()` at a time; results in case order.
pub fn run_parallel<R: Send>(cases: &[Case], f: impl Fn(&Case) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..cases.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads().min(cases.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= cases.len() {
                    break;
                }
                let r = f(&cases[i]);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("case did not run"))
        .collect()
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

fn write_reference_dump(cases: &[Case], outcomes: &[Vec<Value>]) {
    let dump: Vec<Value> = cases
        .iter()
        .zip(outcomes)
        .map(|(c, o)| {
            let steps: Vec<Value> = c
                .steps
                .iter()
                .zip(o)
                .map(|(s, r)| json!({ "step": s, "reference": r }))
                .collect();
            json!({ "file": c.file, "name": c.name, "steps": steps })
        })
        .collect();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("differential-reference.json");
    std::fs::write(&path, serde_json::to_string_pretty(&dump).unwrap()).ok();
    eprintln!(
        "normalised reference outcomes written to {}",
        path.display()
    );
}

/// `ovsdb-tool` accepts the example schemas.
#[test]
fn schemas_load() {
    let dir = tempfile::tempdir().unwrap();
    for s in ["examples/todo.ovsschema", "examples/alltypes.ovsschema"] {
        let schema = root().join(s);
        require_file(&schema);
        let db = dir.path().join(format!("{}.db", s.replace('/', "_")));
        if let Err(e) = ovsdb_tool_create(&db, &schema) {
            panic!("ovsdb-tool create rejects {s}: {e}");
        }
    }
}

/// Runs every case against the reference only and sanity-checks the outcomes.
#[test]
fn reference_runs_every_case() {
    let cases = load_cases();
    if std::env::var("OXSDB_DIFF_FILTER").is_err() {
        assert!(
            cases.len() >= MIN_CASES,
            "only {} cases (want >= {MIN_CASES})",
            cases.len()
        );
    }
    let start = Instant::now();
    let outcomes = run_parallel(&cases, |c| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            normalize_records(&run_reference(c))
        }))
        .map_err(|e| panic_message(&*e))
    });
    let elapsed = start.elapsed();
    let mut failures = Vec::new();
    let mut ok = Vec::new();
    let mut tags: BTreeMap<String, usize> = BTreeMap::new();
    let (mut steps, mut notes, mut failed_txns) = (0, 0, 0);
    for (c, o) in cases.iter().zip(outcomes) {
        match o {
            Err(e) => failures.push(format!("{}: {e}", c.label())),
            Ok(records) => {
                assert_eq!(records.len(), c.steps.len(), "{}", c.label());
                for r in &records {
                    steps += 1;
                    notes += r["notifications"].as_array().map_or(0, |a| a.len());
                    let reply = &r["reply"];
                    if let Some(e) = reply.get("error") {
                        *tags
                            .entry(format!("jsonrpc: {}", e["error"].as_str().unwrap_or("?")))
                            .or_default() += 1;
                    }
                    if let Some(results) = reply.get("result").and_then(Value::as_array) {
                        let mut failed = false;
                        for x in results {
                            if let Some(e) = x.get("error").and_then(Value::as_str) {
                                *tags.entry(format!("op: {e}")).or_default() += 1;
                                failed = true;
                            }
                        }
                        failed_txns += failed as usize;
                    }
                }
                if std::env::var("OXSDB_DIFF_VERBOSE").is_ok() {
                    eprintln!("== {}", c.label());
                    for (s, r) in c.steps.iter().zip(&records) {
                        eprintln!("  step {s}\n    -> {r}");
                    }
                }
                ok.push(records);
            }
        }
    }
    eprintln!(
        "reference: {} cases, {steps} steps, {failed_txns} failing transactions, {notes} notifications, in {:.1?}",
        cases.len(),
        elapsed
    );
    for (t, n) in &tags {
        eprintln!("  {n:4} x {t}");
    }
    if failures.is_empty() {
        write_reference_dump(&cases, &ok);
    }
    assert!(
        failures.is_empty(),
        "reference harness failed:\n{}",
        failures.join("\n")
    );

    // OXSDB_DIFF_REPEAT=n: run the reference n-1 more times and report the
    // cases whose normalised outcome is not deterministic.
    let repeat: usize = std::env::var("OXSDB_DIFF_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut unstable = Vec::new();
    for _ in 1..repeat {
        let again = run_parallel(&cases, |c| normalize_records(&run_reference(c)));
        for ((c, first), second) in cases.iter().zip(&ok).zip(again) {
            if *first != second && !unstable.contains(&c.label()) {
                unstable.push(c.label());
                for (i, (a, b)) in first.iter().zip(&second).enumerate() {
                    if a != b {
                        eprintln!("UNSTABLE {} step {i}:\n  {a}\n  {b}", c.label());
                        break;
                    }
                }
            }
        }
    }
    assert!(
        unstable.is_empty(),
        "non-deterministic reference outcomes: {unstable:?}"
    );
}

/// The path of the first place where two values differ, and the values there.
fn first_difference(a: &Value, b: &Value, path: String) -> (String, String, String) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) if va == vb => {}
                    Some(vb) => return first_difference(va, vb, format!("{path}.{k}")),
                    None => return (format!("{path}.{k}"), va.to_string(), "(missing)".into()),
                }
            }
            for (k, vb) in y {
                if !x.contains_key(k) {
                    return (format!("{path}.{k}"), "(missing)".into(), vb.to_string());
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                if va != vb {
                    return first_difference(va, vb, format!("{path}[{i}]"));
                }
            }
        }
        _ => {}
    }
    let path = if path.is_empty() {
        "top level".to_string()
    } else {
        path
    };
    (path, a.to_string(), b.to_string())
}

#[derive(Debug)]
struct KnownBug {
    name: String,
    explanation: String,
}

fn known_reference_bugs() -> Vec<KnownBug> {
    let path = root().join("tests/differential/known_reference_bugs.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    v.as_array()
        .expect("known_reference_bugs.json: array expected")
        .iter()
        .map(|b| KnownBug {
            name: b["name"].as_str().expect("known bug: name").to_string(),
            explanation: b["explanation"]
                .as_str()
                .expect("known bug: explanation")
                .to_string(),
        })
        .collect()
}

/// Every case against the reference and the engine: outcomes must be equal.
#[test]
fn engine_matches_reference() {
    let cases = load_cases();
    let allow = known_reference_bugs();
    let start = Instant::now();
    let results = run_parallel(&cases, |c| {
        let reference = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            normalize_records(&run_reference(c))
        }))
        .map_err(|e| format!("reference harness panicked: {}", panic_message(&*e)));
        // Both ways a session hands operations to the engine: as JSON, and
        // decoded straight from the request's bytes.
        let engine = [engine::Path::Json, engine::Path::Bytes].map(|path| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                normalize_records(&engine::run(c, path))
            }))
            .map_err(|e| format!("engine ({path:?}) panicked: {}", panic_message(&*e)))
        });
        (reference, engine)
    });
    let elapsed = start.elapsed();
    let (mut equal, mut different, mut allowed) = (0, 0, 0);
    let mut report = String::new();
    for (c, (reference, engine)) in cases.iter().zip(results) {
        let reference = match reference {
            Ok(r) => r,
            Err(e) => panic!("{}: {e}", c.label()),
        };
        let mut diffs = String::new();
        for (engine, way) in engine.into_iter().zip(["as JSON", "from bytes"]) {
            match engine {
                Err(e) => diffs.push_str(&format!("  {e}\n")),
                Ok(engine) => {
                    for (i, step) in c.steps.iter().enumerate() {
                        let r = &reference[i];
                        let e = engine.get(i).unwrap_or(&Value::Null);
                        if r != e {
                            let (path, rv, ev) = first_difference(r, e, String::new());
                            diffs.push_str(&format!(
                                "  step {i} (operations {way}): {step}\n    first difference at {path}:\n      reference: {rv}\n      engine:    {ev}\n    reference: {r}\n    engine:    {e}\n",
                            ));
                            break; // later steps usually differ as a consequence
                        }
                    }
                }
            }
        }
        if diffs.is_empty() {
            equal += 1;
        } else if let Some(bug) = allow.iter().find(|b| b.name == c.name) {
            allowed += 1;
            report.push_str(&format!(
                "ALLOWED {} ({})\n{diffs}",
                c.label(),
                bug.explanation
            ));
        } else {
            different += 1;
            report.push_str(&format!("DIFF {}\n{diffs}", c.label()));
        }
    }
    eprintln!("{report}");
    let decoded = engine::DECODED.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "differential: {} cases: {equal} equal, {different} different, {allowed} allowed known reference bugs, in {:.1?}; {decoded} transactions also ran decoded from their bytes",
        cases.len(),
        elapsed
    );
    assert!(
        decoded >= 300,
        "only {decoded} transactions of the corpus were decoded from their bytes: the decoder (codec::transact) is not exercised"
    );
    assert_eq!(
        different, 0,
        "{different} cases differ from ovsdb-server (see above)"
    );
}
