//! Wire-level differential tests: scripted sessions of raw requests sent over
//! TCP to the reference `ovsdb-server` and to `oxsdb`; everything each
//! connection receives (replies, notifications, garbage, and the server
//! closing it) is recorded, normalised, and must be equal on both sides.
//!
//! Scenarios are data, in `tests/wire/*.json`:
//!
//! ```json
//! {"scenarios": [
//!   {"name": "lock then steal",
//!    "steps": [
//!      {"send": {"method": "lock", "params": ["L"], "id": 1}},
//!      {"open": "b"},
//!      {"conn": "b", "send": {"method": "steal", "params": ["L"], "id": 2}},
//!      {"expect": {"method": "stolen"}}]}]}
//! ```
//!
//! Every scenario gets fresh servers serving `examples/todo.ovsschema` and
//! `/usr/share/ovn/ovn-nb.ovsschema` (in memory for oxsdb, fresh files for
//! ovsdb-server). Connection `a` is open from the start. Steps (`conn`
//! defaults to `"a"`):
//!
//! * `{"send": MSG}`: sends MSG as compact JSON. When MSG is a request (a
//!   `method` and a non-null `id`), then reads until the reply with that id,
//!   recording everything received on the way, unless `"nowait": true`.
//!   Strings `"$name"` anywhere in MSG are replaced by a captured value;
//!   `"capture": {"name": "/json/pointer"}` captures from the reply.
//! * `{"raw": "text"}`, `{"raw_hex": "ff00"}`,
//!   `{"raw_big": {"prefix": P, "fill": "x", "count": N, "suffix": S}}`:
//!   sends bytes; reads nothing.
//! * `{"expect": {"id": X}}`, `{"expect": {"method": M}}`, `{"expect": "closed"}`:
//!   reads until such a message (`"count": N`: until N of them) or the close,
//!   recording everything; a timeout (`timeout_ms`, default 3000) is recorded
//!   as `"<timeout>"`.
//! * `{"collect_ms": N}`: records whatever arrives in the next N ms (nothing
//!   is also a result: `"quiet_ms"` is the same step, named for intent).
//! * `{"answer_echo": true}`: reads until an `echo` request from the server
//!   (recorded) and answers it.
//! * `{"open": "b"}`, `{"close": true}` (the client closes; nothing more is
//!   recorded for that connection), `{"sleep_ms": N}`.
//!
//! After the steps every connection still open is drained for 150 ms, a new
//! connection checks that the server still answers `echo`, and the server
//! process must still be running. All of it is part of the transcript.
//!
//! Normalisation (tests/support/normalize.rs plus a few wire-level rules):
//! UUIDs numbered by first appearance across all the scenario's connections
//! (so the server id from `get_server_id` is masked but must stay the same),
//! `_version` numbered like every UUID, numbers compared by their text (as
//! printed), strings holding JSON (the
//! `syntax` member of errors, `_Server`'s `schema` column) compared as parsed
//! JSON (ovsdb-server prints object members in hash order), the last-txn-id
//! of `monitor_cond_since` replies and `update3` notifications masked
//! (ovsdb-server standalone always sends the zero UUID; oxsdb derives it
//! from the store revision — see DESIGN.md). The `list_dbs` result comes in
//! hash order on ovsdb-server (varying between runs) and is compared as a
//! set. The notifications one commit produces for several monitors of a
//! connection are compared in the order they came: oxsdb sends them in
//! ovsdb-server's order (src/db/monitor_order.rs).
//!
//! A scenario with `"oxsdb_only": "why"` documents a case where ovsdb-server
//! misbehaves (or deliberately differs); it still runs on both, but only
//! oxsdb is checked, against `"expect_oxsdb"`: records
//! `{"step": I, "conn": C, "got": [...]}` (normalised) that oxsdb's transcript
//! must contain exactly; the health check and liveness are always checked.
//!
//! Environment: `OXSDB_WIRE_FILTER=substr` (scenario "file: name"),
//! `OXSDB_WIRE_THREADS=n` (default 4), `OXSDB_WIRE_REFERENCE_ONLY=1` (record
//! the reference alone), `OXSDB_WIRE_VERBOSE=1`. Both sides' normalised
//! transcripts are written to `target/tmp/wire-transcripts.json`.

mod support;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::normalize::{Normalizer, TXN_PLACEHOLDER};
use support::wire::{Conn, Event, Kind, ServerOpts, WireServer};

const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const DEFAULT_TIMEOUT_MS: u64 = 3000;
const DRAIN_MS: u64 = 150;
const MIN_SCENARIOS: usize = 60;

#[derive(Debug, Clone)]
struct Scenario {
    file: String,
    name: String,
    steps: Vec<Value>,
    oxsdb_args: Vec<String>,
    probe_ms: Option<u64>,
    oxsdb_only: Option<String>,
    expect_oxsdb: Vec<Value>,
}

impl Scenario {
    fn label(&self) -> String {
        format!("{}: {}", self.file, self.name)
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schemas() -> Vec<PathBuf> {
    vec![
        root().join("examples/todo.ovsschema"),
        PathBuf::from(NB_SCHEMA),
    ]
}

fn load_scenarios() -> Vec<Scenario> {
    let dir = root().join("tests/wire");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        for s in v["scenarios"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: no scenarios"))
        {
            let name = s["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: scenario without name"))
                .to_string();
            let steps = s["steps"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: {name}: no steps"))
                .clone();
            for (i, st) in steps.iter().enumerate() {
                check_step(st).unwrap_or_else(|e| panic!("{file}: {name}: step {i}: {e}: {st}"));
            }
            let oxsdb_only = s
                .get("oxsdb_only")
                .and_then(Value::as_str)
                .map(String::from);
            let expect_oxsdb = s
                .get("expect_oxsdb")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if oxsdb_only.is_some() && expect_oxsdb.is_empty() {
                panic!("{file}: {name}: oxsdb_only without expect_oxsdb");
            }
            out.push(Scenario {
                file: file.clone(),
                name,
                steps,
                oxsdb_args: s
                    .get("oxsdb_args")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
                probe_ms: s.get("probe_ms").and_then(Value::as_u64),
                oxsdb_only,
                expect_oxsdb,
            });
        }
    }
    if let Ok(filter) = std::env::var("OXSDB_WIRE_FILTER") {
        out.retain(|s| s.label().contains(&filter));
    }
    out
}

const STEP_KINDS: &[&str] = &[
    "send",
    "raw",
    "raw_hex",
    "raw_big",
    "expect",
    "collect_ms",
    "quiet_ms",
    "answer_echo",
    "open",
    "close",
    "sleep_ms",
];

fn check_step(st: &Value) -> Result<(), String> {
    let obj = st.as_object().ok_or("a step is an object")?;
    let kinds: Vec<&&str> = STEP_KINDS
        .iter()
        .filter(|k| obj.contains_key(**k))
        .collect();
    if kinds.len() != 1 {
        return Err(format!("a step has exactly one of {STEP_KINDS:?}"));
    }
    for k in obj.keys() {
        if !STEP_KINDS.contains(&k.as_str())
            && !["conn", "nowait", "capture", "timeout_ms", "note", "count"].contains(&k.as_str())
        {
            return Err(format!("unknown member {k}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- running

/// One side's run of a scenario: its records, in order, not normalised.
struct Run {
    records: Vec<Value>,
}

struct Session {
    conns: BTreeMap<String, Conn>,
    /// Per connection: request id (JSON text) -> method, for txn masking.
    methods: HashMap<String, HashMap<String, String>>,
    vars: HashMap<String, Value>,
    records: Vec<Value>,
}

fn substitute(v: &Value, vars: &HashMap<String, Value>) -> Value {
    match v {
        Value::String(s) if s.starts_with('$') => {
            vars.get(&s[1..]).cloned().unwrap_or_else(|| v.clone())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, vars)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), substitute(x, vars)))
                .collect(),
        ),
        _ => v.clone(),
    }
}

fn event_value(e: &Event) -> Value {
    match e {
        Event::Message(v) => v.clone(),
        Event::Garbage(s) => {
            let short: String = s.chars().take(200).collect();
            Value::String(format!("<garbage: {short}>"))
        }
        Event::Closed => Value::String("<closed>".into()),
    }
}

fn decode_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

impl Session {
    fn conn(&mut self, name: &str) -> &mut Conn {
        self.conns
            .get_mut(name)
            .unwrap_or_else(|| panic!("no connection {name}"))
    }

    fn record(&mut self, step: Value, conn: &str, got: Vec<Value>) {
        self.records
            .push(json!({"step": step, "conn": conn, "got": got}));
    }

    /// Reads until `done` says so; returns the events (as values) read.
    fn read_until(
        &mut self,
        conn: &str,
        timeout: Duration,
        done: &dyn Fn(&Event) -> bool,
    ) -> Vec<Value> {
        let c = self.conn(conn);
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            match c.next_before(deadline) {
                Some((_, e)) => {
                    got.push(event_value(&e));
                    if done(&e) || e == Event::Closed {
                        break;
                    }
                }
                None => {
                    if !c.closed {
                        got.push(Value::String("<timeout>".into()));
                    }
                    break;
                }
            }
        }
        got
    }

    fn run_step(&mut self, index: usize, st: &Value, port: u16) {
        let conn = st
            .get("conn")
            .and_then(Value::as_str)
            .unwrap_or("a")
            .to_string();
        let timeout = Duration::from_millis(
            st.get("timeout_ms")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_TIMEOUT_MS),
        );
        let step = json!(index);
        if let Some(name) = st.get("open").and_then(Value::as_str) {
            match Conn::try_open(port) {
                Ok(c) => {
                    self.conns.insert(name.to_string(), c);
                }
                Err(e) => panic!("connection {name} refused ({e}): the server is gone"),
            }
        } else if st.get("close").is_some() {
            // What arrives after the client closed is not recorded: whether
            // it is still read depends on timing.
            self.conn(&conn).close();
            self.conns.remove(&conn);
        } else if let Some(ms) = st.get("sleep_ms").and_then(Value::as_u64) {
            std::thread::sleep(Duration::from_millis(ms));
        } else if let Some(msg) = st.get("send") {
            let msg = substitute(msg, &self.vars);
            let id = msg.get("id").cloned().unwrap_or(Value::Null);
            if let (Some(m), false) = (msg.get("method").and_then(Value::as_str), id.is_null()) {
                self.methods
                    .entry(conn.clone())
                    .or_default()
                    .insert(id.to_string(), m.to_string());
            }
            self.conn(&conn).send_json(&msg);
            let is_request = msg.get("method").is_some() && !id.is_null();
            if is_request && st.get("nowait").is_none() {
                let want = id.clone();
                let got = self.read_until(&conn, timeout, &|e| {
                    matches!(e, Event::Message(v) if v.get("id") == Some(&want) && v.get("method").is_none())
                });
                if let Some(cap) = st.get("capture").and_then(Value::as_object) {
                    if let Some(reply) = got
                        .iter()
                        .find(|v| v.get("id") == Some(&id) && v.get("method").is_none())
                    {
                        for (name, ptr) in cap {
                            let ptr = ptr.as_str().expect("capture pointer");
                            if let Some(x) = reply.pointer(ptr) {
                                self.vars.insert(name.clone(), x.clone());
                            }
                        }
                    }
                }
                self.record(step, &conn, got);
            }
        } else if let Some(text) = st.get("raw").and_then(Value::as_str) {
            self.conn(&conn).send_bytes(text.as_bytes());
        } else if let Some(hex) = st.get("raw_hex").and_then(Value::as_str) {
            self.conn(&conn).send_bytes(&decode_hex(hex));
        } else if let Some(big) = st.get("raw_big") {
            let mut bytes = big["prefix"].as_str().unwrap_or("").as_bytes().to_vec();
            let fill = big["fill"].as_str().unwrap_or("x").as_bytes();
            for _ in 0..big["count"].as_u64().expect("raw_big count") {
                bytes.extend_from_slice(fill);
            }
            bytes.extend_from_slice(big["suffix"].as_str().unwrap_or("").as_bytes());
            self.conn(&conn).send_bytes(&bytes);
        } else if let Some(m) = st.get("expect") {
            let count = st.get("count").and_then(Value::as_u64).unwrap_or(1) as usize;
            let seen = std::cell::Cell::new(0usize);
            let counted = |hit: bool| {
                if hit {
                    seen.set(seen.get() + 1);
                }
                seen.get() >= count
            };
            let got = if m == "closed" {
                self.read_until(&conn, timeout, &|e| *e == Event::Closed)
            } else if let Some(id) = m.get("id") {
                let id = id.clone();
                self.read_until(&conn, timeout, &|e| {
                    counted(matches!(e, Event::Message(v) if v.get("id") == Some(&id) && v.get("method").is_none()))
                })
            } else if let Some(method) = m.get("method") {
                let method = method.clone();
                self.read_until(&conn, timeout, &|e| {
                    counted(matches!(e, Event::Message(v) if v.get("method") == Some(&method)))
                })
            } else {
                panic!("bad expect {m}");
            };
            self.record(step, &conn, got);
        } else if let Some(ms) = st
            .get("collect_ms")
            .or_else(|| st.get("quiet_ms"))
            .and_then(Value::as_u64)
        {
            let c = self.conn(&conn);
            let deadline = Instant::now() + Duration::from_millis(ms);
            let mut got = Vec::new();
            while let Some((_, e)) = c.next_before(deadline) {
                got.push(event_value(&e));
            }
            // Let the window run out even when the connection closed early.
            let now = Instant::now();
            if now < deadline {
                std::thread::sleep(deadline - now);
            }
            self.record(step, &conn, got);
        } else if st.get("answer_echo").is_some() {
            let got = self.read_until(&conn, timeout, &|e| {
                matches!(e, Event::Message(v) if v.get("method") == Some(&json!("echo")) && !v["id"].is_null())
            });
            if let Some(req) = got.iter().find(|v| v.get("method") == Some(&json!("echo"))) {
                let reply = json!({"id": req["id"], "result": req["params"], "error": null});
                self.conn(&conn).send_json(&reply);
            }
            self.record(step, &conn, got);
        } else {
            panic!("unknown step {st}");
        }
    }
}

fn run_scenario(sc: &Scenario, kind: Kind) -> Run {
    let opts = ServerOpts {
        schemas: schemas(),
        oxsdb_args: sc.oxsdb_args.clone(),
        reference_args: Vec::new(),
        probe_ms: sc.probe_ms,
    };
    let mut server = WireServer::start(kind, &opts);
    let port = server.port;
    let mut s = Session {
        conns: BTreeMap::new(),
        methods: HashMap::new(),
        vars: HashMap::new(),
        records: Vec::new(),
    };
    s.conns.insert("a".into(), Conn::open(port));
    for (i, st) in sc.steps.iter().enumerate() {
        s.run_step(i, st, port);
    }
    // Drain every connection at once.
    std::thread::sleep(Duration::from_millis(DRAIN_MS));
    let names: Vec<String> = s.conns.keys().cloned().collect();
    for name in names {
        let c = s.conn(&name);
        let mut got = Vec::new();
        while let Some((_, e)) = c.next_before(Instant::now()) {
            got.push(event_value(&e));
        }
        s.record(json!("end"), &name, got);
    }
    // The server still serves a new connection.
    match Conn::try_open(port) {
        Ok(mut health) => {
            health.send_json(&json!({"method": "echo", "params": ["health"], "id": "health"}));
            let reply = health.wait_for(&|v| v["id"] == json!("health"), Duration::from_secs(5));
            s.record(
                json!("health"),
                "health",
                vec![reply.unwrap_or(json!("<no reply>"))],
            );
            health.close();
        }
        Err(_) => s.record(
            json!("health"),
            "health",
            vec![json!("<connection refused>")],
        ),
    }
    let alive = server.alive();
    s.records.push(json!({"step": "alive", "got": alive}));
    if !alive {
        eprintln!(
            "{} exited during {}; log:\n{}",
            kind.name(),
            sc.label(),
            server.log_text()
        );
    }
    // Mask txn ids, sort what is unordered, before normalising.
    for r in s.records.iter_mut() {
        let conn = r["conn"].as_str().unwrap_or("").to_string();
        let methods = s.methods.get(&conn);
        if let Some(got) = r.get_mut("got").and_then(Value::as_array_mut) {
            for m in got.iter_mut() {
                mask_txn(m, methods);
                sort_list_dbs(m, methods);
            }
        }
    }
    Run { records: s.records }
}

fn method_of<'a>(m: &Value, methods: Option<&'a HashMap<String, String>>) -> Option<&'a str> {
    if m.get("method").is_some() {
        return None;
    }
    let id = m.get("id").map(|i| i.to_string()).unwrap_or_default();
    methods.and_then(|ms| ms.get(&id)).map(String::as_str)
}

/// `list_dbs` answers in hash order on ovsdb-server (and the order changes
/// between runs): compare it as a set.
fn sort_list_dbs(m: &mut Value, methods: Option<&HashMap<String, String>>) {
    // Requests sent as raw bytes have no recorded method: recognise the
    // answer by its shape too (database names, `_Server` among them).
    let looks_like = m
        .get("result")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().all(Value::is_string) && a.contains(&json!("_Server")));
    if method_of(m, methods) == Some("list_dbs") || looks_like {
        if let Some(r) = m.get_mut("result").and_then(Value::as_array_mut) {
            r.sort_by_key(|v| v.to_string());
        }
    }
}

fn mask_txn(m: &mut Value, methods: Option<&HashMap<String, String>>) {
    if m.get("method") == Some(&json!("update3")) {
        if let Some(p) = m.get_mut("params").and_then(Value::as_array_mut) {
            if p.len() == 3 && p[1].is_string() {
                p[1] = json!(TXN_PLACEHOLDER);
            }
        }
        return;
    }
    if m.get("method").is_none() {
        let id = m.get("id").map(|i| i.to_string()).unwrap_or_default();
        if methods.and_then(|ms| ms.get(&id)).map(String::as_str) == Some("monitor_cond_since") {
            if let Some(r) = m.get_mut("result").and_then(Value::as_array_mut) {
                if r.len() == 3 && r[1].is_string() {
                    r[1] = json!(TXN_PLACEHOLDER);
                }
            }
        }
    }
}

/// Strings holding a JSON array or object become `{"<json>": parsed}`.
fn parse_json_strings(v: &Value) -> Value {
    match v {
        Value::String(s) if (s.starts_with('{') || s.starts_with('[')) && s.len() > 1 => {
            match serde_json::from_str::<Value>(s) {
                Ok(p @ (Value::Object(_) | Value::Array(_))) => {
                    json!({"<json>": parse_json_strings(&p)})
                }
                _ => v.clone(),
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(parse_json_strings).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), parse_json_strings(x)))
                .collect(),
        ),
        _ => v.clone(),
    }
}

fn normalize_run(run: &Run) -> Vec<Value> {
    let mut n = Normalizer::exact_numbers();
    run.records
        .iter()
        .map(|r| n.normalize(&parse_json_strings(r)))
        .collect()
}

// ---------------------------------------------------------------- checking

struct Outcome {
    label: String,
    reference: Option<Vec<Value>>,
    oxsdb: Option<Vec<Value>>,
    failure: Option<String>,
}

fn pretty(records: &[Value]) -> String {
    records
        .iter()
        .map(|r| format!("  {r}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn compare(sc: &Scenario, reference: &[Value], oxsdb: &[Value]) -> Option<String> {
    if let Some(why) = &sc.oxsdb_only {
        let mut problems = Vec::new();
        for want in &sc.expect_oxsdb {
            let found = oxsdb
                .iter()
                .find(|r| r["step"] == want["step"] && r["conn"] == want["conn"]);
            match found {
                Some(r) if r["got"] == want["got"] => {}
                Some(r) => problems.push(format!(
                    "step {} conn {}:\n    want {}\n    got  {}",
                    want["step"], want["conn"], want["got"], r["got"]
                )),
                None => problems.push(format!(
                    "step {} conn {}: no record; want {}",
                    want["step"], want["conn"], want["got"]
                )),
            }
        }
        for r in oxsdb {
            if r["step"] == "alive" && r["got"] != json!(true) {
                problems.push("oxsdb exited".into());
            }
            if r["step"] == "health" && r["got"][0]["result"] != json!(["health"]) {
                problems.push(format!("health check failed: {}", r["got"]));
            }
        }
        if problems.is_empty() {
            return None;
        }
        return Some(format!(
            "oxsdb-only scenario ({why}):\n{}\noxsdb transcript:\n{}\n(reference transcript, for information:\n{})",
            problems.join("\n"),
            pretty(oxsdb),
            pretty(reference)
        ));
    }
    if reference == oxsdb {
        return None;
    }
    let mut first = String::new();
    for i in 0..reference.len().max(oxsdb.len()) {
        let (r, o) = (reference.get(i), oxsdb.get(i));
        if r != o {
            first = format!(
                "first difference at record {i}:\n    reference {}\n    oxsdb     {}",
                r.map(|v| v.to_string()).unwrap_or("(none)".into()),
                o.map(|v| v.to_string()).unwrap_or("(none)".into())
            );
            break;
        }
    }
    Some(format!(
        "{first}\nreference transcript:\n{}\noxsdb transcript:\n{}",
        pretty(reference),
        pretty(oxsdb)
    ))
}

fn threads() -> usize {
    std::env::var("OXSDB_WIRE_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
        .max(1)
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = e.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "panic".into()
    }
}

fn run_one(sc: &Scenario, with_oxsdb: bool) -> Outcome {
    let label = sc.label();
    let side = |kind: Kind| -> Result<Vec<Value>, String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            normalize_run(&run_scenario(sc, kind))
        }))
        .map_err(|e| format!("{} side panicked: {}", kind.name(), panic_message(&*e)))
    };
    let reference = match side(Kind::Reference) {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                label,
                reference: None,
                oxsdb: None,
                failure: Some(e),
            }
        }
    };
    if !with_oxsdb {
        return Outcome {
            label,
            reference: Some(reference),
            oxsdb: None,
            failure: None,
        };
    }
    let oxsdb = match side(Kind::Oxsdb) {
        Ok(o) => o,
        Err(e) => {
            return Outcome {
                label,
                reference: Some(reference),
                oxsdb: None,
                failure: Some(e),
            }
        }
    };
    let failure = compare(sc, &reference, &oxsdb);
    Outcome {
        label,
        reference: Some(reference),
        oxsdb: Some(oxsdb),
        failure,
    }
}

fn write_dump(outcomes: &[Outcome]) {
    let dir = root().join("target/tmp");
    let _ = std::fs::create_dir_all(&dir);
    let dump: Vec<Value> = outcomes
        .iter()
        .map(|o| json!({"scenario": o.label, "reference": o.reference, "oxsdb": o.oxsdb, "failure": o.failure}))
        .collect();
    let _ = std::fs::write(
        dir.join("wire-transcripts.json"),
        serde_json::to_string_pretty(&dump).unwrap(),
    );
}

#[test]
fn scenario_files_parse() {
    let all = load_scenarios();
    if std::env::var("OXSDB_WIRE_FILTER").is_err() {
        assert!(all.len() >= MIN_SCENARIOS, "only {} scenarios", all.len());
    }
    let mut names = std::collections::HashSet::new();
    for s in &all {
        assert!(names.insert(s.label()), "duplicate scenario {}", s.label());
    }
}

#[test]
fn wire_differential() {
    let started = Instant::now();
    assert!(
        Path::new(NB_SCHEMA).is_file(),
        "{NB_SCHEMA} missing: {}",
        support::tools::INSTALL_HINT
    );
    let scenarios = load_scenarios();
    let with_oxsdb = std::env::var("OXSDB_WIRE_REFERENCE_ONLY")
        .map(|v| v != "1")
        .unwrap_or(true);
    let verbose = std::env::var("OXSDB_WIRE_VERBOSE").is_ok();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads().min(scenarios.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(sc) = scenarios.get(i) else { break };
                let t = Instant::now();
                let o = run_one(sc, with_oxsdb);
                if verbose {
                    eprintln!(
                        "[{:>5} ms] {} {}",
                        t.elapsed().as_millis(),
                        if o.failure.is_some() { "FAIL" } else { "ok  " },
                        o.label
                    );
                }
                results.lock().unwrap().push((i, o));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let outcomes: Vec<Outcome> = results.into_iter().map(|(_, o)| o).collect();
    write_dump(&outcomes);
    let failures: Vec<&Outcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    for f in &failures {
        eprintln!("\n=== FAIL {}\n{}", f.label, f.failure.as_deref().unwrap());
    }
    eprintln!(
        "\nwire differential: {} scenarios, {} failed, {:.1} s{}",
        outcomes.len(),
        failures.len(),
        started.elapsed().as_secs_f64(),
        if with_oxsdb { "" } else { " (reference only)" }
    );
    if !failures.is_empty() {
        let names: Vec<&str> = failures.iter().map(|f| f.label.as_str()).collect();
        panic!(
            "{} of {} scenarios failed:\n  {}",
            failures.len(),
            outcomes.len(),
            names.join("\n  ")
        );
    }
}
