//! `monitor_cond_change` to a new monitor id while commits keep coming, on
//! oxsdb and on ovsdb-server: every committed row reaches the monitor
//! exactly once across the renames (updates computed before a change are
//! sent under the old id before its reply, later ones under the new id),
//! and once a change is answered no update uses the old id again.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::rpc::Rpc;
use support::servers::{Kind, Server};
use support::tools::todo_schema;

const WRITES: usize = 500;
const CHANGES: usize = 100;

/// Counts the inserted `List` names of one `update2` body.
fn count_inserts(body: &Value, seen: &mut BTreeMap<String, usize>) {
    let Some(rows) = body.get("List").and_then(Value::as_object) else {
        return;
    };
    for change in rows.values() {
        for key in ["insert", "initial"] {
            if let Some(d) = change[key]["name"].as_str() {
                *seen.entry(d.to_string()).or_default() += 1;
            }
        }
    }
}

/// Takes one notification: counts its rows and checks its id is allowed.
fn take(note: &Value, allowed: &[Value], seen: &mut BTreeMap<String, usize>, kind: Kind) {
    if note["method"] != "update2" {
        return;
    }
    let id = &note["params"][0];
    assert!(
        allowed.contains(id),
        "{}: an update under {id} while only {allowed:?} may be used: {note}",
        kind.name()
    );
    count_inserts(&note["params"][1], seen);
}

fn run(kind: Kind) {
    let server = Server::start(kind, &[&todo_schema()]);
    let mut monitor = server.connect();
    let reply = monitor.request(
        "monitor_cond",
        json!(["todo", "m0", {"List": [{"columns": ["name"], "where": [true]}]}]),
    );
    assert!(reply.result().is_some(), "{}", reply.message);
    let mut seen = BTreeMap::new();
    count_inserts(&reply.result().cloned().unwrap_or_default(), &mut seen);

    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let addr = server.addr();
        let done = done.clone();
        thread::spawn(move || {
            let mut c = Rpc::open(&addr);
            for i in 0..WRITES {
                let r = c.request(
                    "transact",
                    json!(["todo", {"op": "insert", "table": "List",
                                    "row": {"name": format!("w{i}")}}]),
                );
                assert!(
                    r.result()
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().all(|o| o.get("error").is_none())),
                    "{}",
                    r.message
                );
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let mut current = json!("m0");
    for k in 1..=CHANGES {
        let next = json!(format!("m{k}"));
        let reply = monitor.request(
            "monitor_cond_change",
            json!([current, next, {"List": [{"where": [true]}]}]),
        );
        assert!(
            reply.result().is_some(),
            "{}: {}",
            kind.name(),
            reply.message
        );
        // Before the reply, updates may come under either id.
        for note in &reply.notifications {
            take(note, &[current.clone(), next.clone()], &mut seen, kind);
        }
        current = next;
        // Between changes, only the current id.
        let until = Instant::now() + Duration::from_millis(2);
        while let Ok(Some(note)) =
            monitor.next_message(until.saturating_duration_since(Instant::now()))
        {
            take(&note, &[current.clone()], &mut seen, kind);
        }
    }
    writer.join().expect("the writer");
    assert!(done.load(Ordering::SeqCst));

    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < WRITES && Instant::now() < deadline {
        if let Ok(Some(note)) = monitor.next_message(Duration::from_millis(100)) {
            take(&note, &[current.clone()], &mut seen, kind);
        }
    }
    let missing: Vec<usize> = (0..WRITES)
        .filter(|i| !seen.contains_key(&format!("w{i}")))
        .collect();
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        missing.is_empty() && twice.is_empty(),
        "{}: across {CHANGES} monitor id changes, {} of {WRITES} rows never reached the \
         monitor ({missing:?}) and {} arrived more than once ({twice:?})",
        kind.name(),
        missing.len(),
        twice.len()
    );
}

#[test]
fn every_row_reaches_a_monitor_renamed_while_commits_keep_coming() {
    for kind in Kind::both() {
        run(kind);
    }
}
