//! Group commit under concurrency, on a real oxsdb process: writers racing
//! (with unique-index conflicts inside the same commit group), monitors
//! joining while groups are in flight, readers, and a `wait` that blocks
//! until a later write. Every monitor must end with exactly the committed
//! rows, each seen once; each unique name commits once; a reader never sees
//! the table shrink (no uncommitted row is ever visible); the `wait` ends
//! when its row commits.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::rpc::Rpc;
use support::servers::{Kind, Server};

const WRITERS: usize = 6;
const TXNS_PER_WRITER: usize = 80;
/// Every writer tries to insert each of these names once: one wins.
const SHARED_NAMES: usize = 8;
const MONITORS: usize = 8;

fn todo_schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/todo.ovsschema")
}

fn insert_list(name: &str) -> Value {
    json!(["todo",
        {"op": "insert", "table": "Item", "uuid-name": "i", "row": {"description": name, "status": "todo"}},
        {"op": "insert", "table": "List", "row": {"name": name, "items": ["named-uuid", "i"]}}])
}

/// Whether a transact reply committed; its first error otherwise.
fn txn_error(reply: &support::rpc::Reply) -> Option<Value> {
    match reply.result().and_then(Value::as_array) {
        Some(results) => results.iter().find(|r| r.get("error").is_some()).cloned(),
        None => Some(reply.message.clone()),
    }
}

fn list_names(c: &mut Rpc) -> BTreeSet<String> {
    let r = c.request(
        "transact",
        json!(["todo", {"op": "select", "table": "List", "where": [], "columns": ["name"]}]),
    );
    r.result()
        .and_then(|r| r[0]["rows"].as_array())
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|row| row["name"].as_str().map(str::to_string))
        .collect()
}

/// What one monitor saw: names, and how many arrived twice or changed.
struct Seen {
    names: BTreeSet<String>,
    duplicated: Vec<String>,
    unexpected: Vec<Value>,
}

fn monitor(
    addr: String,
    delay: Duration,
    done: Arc<AtomicBool>,
    expected: Arc<std::sync::Mutex<Option<usize>>>,
) -> Seen {
    thread::sleep(delay);
    let mut c = Rpc::open(&addr);
    let r = c.request(
        "monitor_cond",
        json!(["todo", "m", {"List": [{"columns": ["name"]}]}]),
    );
    let initial = r
        .result()
        .cloned()
        .unwrap_or_else(|| panic!("monitor_cond: {}", r.message));
    let mut seen = Seen {
        names: BTreeSet::new(),
        duplicated: Vec::new(),
        unexpected: Vec::new(),
    };
    for row in initial["List"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, v)| v)
    {
        if let Some(n) = row["initial"]["name"].as_str() {
            seen.names.insert(n.to_string());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.request("echo", json!([]));
        for n in &r.notifications {
            for (_, change) in n["params"][1]["List"].as_object().into_iter().flatten() {
                match change["insert"]["name"].as_str() {
                    Some(name) if !seen.names.insert(name.to_string()) => {
                        seen.duplicated.push(name.to_string())
                    }
                    Some(_) => {}
                    None => seen.unexpected.push(change.clone()),
                }
            }
        }
        let want = *expected.lock().unwrap_or_else(|e| e.into_inner());
        if done.load(Ordering::SeqCst) && want.is_some_and(|w| seen.names.len() >= w) {
            return seen;
        }
        if Instant::now() > deadline {
            return seen;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn scenario(server: &Server) {
    let addr = server.addr();
    let done = Arc::new(AtomicBool::new(false));
    let expected = Arc::new(std::sync::Mutex::new(None));
    let monitors: Vec<_> = (0..MONITORS)
        .map(|k| {
            let (a, d, e) = (addr.clone(), done.clone(), expected.clone());
            thread::spawn(move || monitor(a, Duration::from_millis(15 * k as u64), d, e))
        })
        .collect();
    // Blocks until the last row of writer 0 commits.
    let waiter = {
        let a = addr.clone();
        thread::spawn(move || {
            let mut c = Rpc::open(&a);
            let last = format!("w0-{}", TXNS_PER_WRITER - 1);
            let r = c.request("transact", json!(["todo",
                {"op": "wait", "table": "List", "where": [["name", "==", last]], "columns": ["name"],
                 "until": "==", "rows": [{"name": last}], "timeout": 60000}]));
            (txn_error(&r), list_names(&mut c).contains(&last))
        })
    };
    let stop_readers = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (a, stop) = (addr.clone(), stop_readers.clone());
            thread::spawn(move || {
                let mut c = Rpc::open(&a);
                let mut last = 0;
                let mut shrank = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let n = list_names(&mut c).len();
                    if n < last {
                        shrank.push((last, n));
                    }
                    last = n;
                }
                shrank
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let a = addr.clone();
            thread::spawn(move || {
                let mut c = Rpc::open(&a);
                let (mut won, mut errors) = (Vec::new(), Vec::new());
                for i in 0..TXNS_PER_WRITER {
                    let r = c.request("transact", insert_list(&format!("w{w}-{i}")));
                    if let Some(e) = txn_error(&r) {
                        errors.push(e);
                    }
                    if i % (TXNS_PER_WRITER / SHARED_NAMES) == 0 {
                        let name = format!("shared-{}", i / (TXNS_PER_WRITER / SHARED_NAMES));
                        let r = c.request("transact", insert_list(&name));
                        match txn_error(&r) {
                            None => won.push(name),
                            Some(e) if e["error"] == json!("constraint violation") => {}
                            Some(e) => errors.push(e),
                        }
                    }
                }
                (won, errors)
            })
        })
        .collect();
    let mut won = Vec::new();
    for w in writers {
        let (names, errors) = w.join().expect("writer");
        assert!(errors.is_empty(), "writes failed: {errors:?}");
        won.extend(names);
    }
    let mut c = Rpc::open(&addr);
    let committed = list_names(&mut c);
    *expected.lock().unwrap_or_else(|e| e.into_inner()) = Some(committed.len());
    done.store(true, Ordering::SeqCst);
    stop_readers.store(true, Ordering::SeqCst);

    won.sort();
    let mut unique = won.clone();
    unique.dedup();
    assert_eq!(won, unique, "a unique name committed twice");
    assert_eq!(
        won.len(),
        SHARED_NAMES,
        "every shared name committed once: {won:?}"
    );
    assert_eq!(committed.len(), WRITERS * TXNS_PER_WRITER + SHARED_NAMES);
    let (wait_error, wait_saw_row) = waiter.join().expect("waiter");
    assert!(wait_error.is_none(), "the wait failed: {wait_error:?}");
    assert!(wait_saw_row, "the wait ended before its row was visible");
    for r in readers {
        let shrank = r.join().expect("reader");
        assert!(
            shrank.is_empty(),
            "a reader saw the table shrink (uncommitted rows): {shrank:?}"
        );
    }
    for (k, m) in monitors.into_iter().enumerate() {
        let seen = m.join().expect("monitor");
        assert!(
            seen.duplicated.is_empty(),
            "monitor {k} saw rows twice: {:?}",
            seen.duplicated
        );
        assert!(
            seen.unexpected.is_empty(),
            "monitor {k}: {:?}",
            seen.unexpected
        );
        assert_eq!(
            seen.names, committed,
            "monitor {k} does not hold exactly the committed rows"
        );
    }
    eprintln!(
        "group commit: {} rows committed by {WRITERS} writers, {SHARED_NAMES} unique names won once, {MONITORS} monitors exact",
        committed.len()
    );
}

#[test]
fn concurrent_writers_monitors_readers_and_a_wait_on_the_memory_store() {
    let server = Server::start(Kind::Oxsdb, &[&todo_schema()]);
    scenario(&server);
}

#[test]
fn concurrent_writers_monitors_readers_and_a_wait_on_the_file_store() {
    let server = Server::start_durable(Kind::Oxsdb, &[&todo_schema()]);
    scenario(&server);
}
