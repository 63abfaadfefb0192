//! Back-pressure: a client that stops reading never delays the others, and
//! its pending monitor updates are merged (the latest state of each row is
//! sent once) instead of queued without bound.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxsdb"))
        .args([
            "--remote=ptcp:0:127.0.0.1",
            "--store=memory",
            "--inactivity-probe=0",
            "examples/todo.ovsschema",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oxsdb");
    let stderr = child.stderr.take().expect("stderr");
    let mut port = 0;
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("stderr line");
        if let Some(rest) = line.strip_prefix("oxsdb: listening on ptcp:") {
            port = rest
                .split(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
            break;
        }
    }
    assert!(port > 0, "oxsdb did not report its port");
    Server { child, port }
}

fn call(s: &mut TcpStream, msg: Value) -> Value {
    let id = msg["id"].clone();
    s.write_all(msg.to_string().as_bytes()).expect("send");
    let mut de =
        serde_json::Deserializer::from_reader(s.try_clone().expect("clone")).into_iter::<Value>();
    loop {
        let v = de.next().expect("a message").expect("valid JSON");
        if v["id"] == id {
            return v;
        }
    }
}

#[test]
fn a_stalled_monitor_client_neither_blocks_others_nor_queues_without_bound() {
    let server = start();
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let reply = call(
        &mut stalled,
        json!({"method": "monitor_cond", "params": ["todo", "m", {"List": {"columns": ["name", "items"]}, "Item": {"columns": ["description"]}}], "id": 1}),
    );
    assert_eq!(reply["result"], json!({}));
    // From here on `stalled` reads nothing.

    let mut writer = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    writer
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let big = "x".repeat(64 * 1024);
    let r = call(
        &mut writer,
        json!({"method": "transact", "params": ["todo", {"op": "insert", "table": "List", "row": {"name": "l"}}], "id": 0}),
    );
    assert!(r["result"][0]["uuid"].is_array(), "{r}");
    let n = 300;
    for i in 0..n {
        // Each commit changes the same Item (via the list), 64 KiB a time: far
        // more than the socket buffers hold for the stalled client.
        let r = call(
            &mut writer,
            json!({"method": "transact", "params": ["todo",
                {"op": "delete", "table": "Item", "where": []},
                {"op": "insert", "table": "Item", "uuid-name": "i", "row": {"description": format!("{i}{big}"), "status": "todo"}},
                {"op": "update", "table": "List", "where": [], "row": {"items": ["named-uuid", "i"]}}], "id": i + 1}),
        );
        assert!(
            r["error"].is_null() && r["result"][2]["count"] == json!(1),
            "transaction {i} failed: {r}"
        );
    }

    // Now read everything the stalled client was sent.
    stalled
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match stalled.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => bytes.extend_from_slice(&buf[..k]),
            Err(_) => break,
        }
    }
    let updates: Vec<Value> = serde_json::Deserializer::from_slice(&bytes)
        .into_iter::<Value>()
        .map(|v| v.expect("valid JSON"))
        .collect();
    assert!(!updates.is_empty());
    assert!(
        updates.len() < n as usize,
        "a stalled client's updates must be merged, got {} notifications for {n} commits",
        updates.len()
    );
    // Replaying the notifications gives the final state: one Item, the last one.
    let mut items: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    for u in &updates {
        assert_eq!(u["method"], json!("update2"));
        if let Some(t) = u["params"][1]["Item"].as_object() {
            for (uuid, change) in t {
                if change.get("delete").is_some() {
                    items.remove(uuid);
                } else if let Some(row) = change.get("insert").or(change.get("modify")) {
                    items.insert(uuid.clone(), row.clone());
                }
            }
        }
    }
    assert_eq!(items.len(), 1, "exactly the last Item remains");
    let last = items
        .values()
        .next()
        .and_then(|r| r["description"].as_str())
        .unwrap_or_default();
    assert!(
        last.starts_with(&(n - 1).to_string()),
        "the final state is the last commit's"
    );
}

/// Reads messages from `s` until the reply with `id`; returns the messages before it and the reply.
fn read_until_reply(s: &mut TcpStream, id: &Value) -> (Vec<Value>, Value) {
    let mut de =
        serde_json::Deserializer::from_reader(s.try_clone().expect("clone")).into_iter::<Value>();
    let mut before = Vec::new();
    loop {
        let v = de.next().expect("a message").expect("valid JSON");
        if v["id"] == *id && v.get("method").is_none() {
            return (before, v);
        }
        before.push(v);
    }
}

/// The elements of a set value in OVSDB's JSON notation.
fn set_elements(v: &Value) -> Vec<Value> {
    match v.as_array() {
        Some(a) if a.first() == Some(&json!("set")) => a[1].as_array().cloned().unwrap_or_default(),
        _ => vec![v.clone()],
    }
}

/// A client's copy of the monitored tables: table -> uuid -> column -> value.
type Copy = std::collections::BTreeMap<
    String,
    std::collections::BTreeMap<String, serde_json::Map<String, Value>>,
>;

/// Applies one `<table-updates2>` as a client does: `modify` of a set column
/// is a symmetric difference (so applying a diff twice undoes it).
fn apply_update2(copy: &mut Copy, updates: &Value, set_columns: &[&str]) {
    for (table, rows) in updates.as_object().expect("table-updates2") {
        let t = copy.entry(table.clone()).or_default();
        for (uuid, change) in rows.as_object().expect("row-updates2") {
            if let Some(row) = change.get("insert").or(change.get("initial")) {
                t.insert(uuid.clone(), row.as_object().cloned().unwrap_or_default());
            } else if change.get("delete").is_some() {
                t.remove(uuid);
            } else if let Some(diff) = change.get("modify").and_then(Value::as_object) {
                let row = t.entry(uuid.clone()).or_default();
                for (col, d) in diff {
                    if set_columns.contains(&col.as_str()) {
                        let mut now = row.get(col).map(set_elements).unwrap_or_default();
                        for e in set_elements(d) {
                            match now.iter().position(|x| *x == e) {
                                Some(i) => {
                                    now.remove(i);
                                }
                                None => now.push(e),
                            }
                        }
                        row.insert(col.clone(), json!(["set", now]));
                    } else {
                        row.insert(col.clone(), d.clone());
                    }
                }
            }
        }
    }
}

/// A copy in a comparable form: sets as sorted `["set", ...]`, long texts
/// by their start and length.
fn normalize_copy(copy: &Copy, set_columns: &[&str]) -> Copy {
    let mut out = Copy::new();
    for (table, rows) in copy {
        let t = out.entry(table.clone()).or_default();
        for (uuid, row) in rows {
            let mut r = serde_json::Map::new();
            for (col, v) in row {
                let v = if let Some(text) = v.as_str().filter(|t| t.len() > 64) {
                    // Long texts: their length and start (keeps failures readable).
                    json!(format!("{}... ({} bytes)", &text[..16], text.len()))
                } else if set_columns.contains(&col.as_str()) {
                    let mut e = set_elements(v);
                    e.sort_by_key(|x| x.to_string());
                    json!(["set", e])
                } else {
                    v.clone()
                };
                r.insert(col.clone(), v);
            }
            t.insert(uuid.clone(), r);
        }
    }
    out
}

#[test]
fn a_merged_update3_carries_the_newest_txn_id_so_a_resumed_client_gets_nothing_twice() {
    let server = start();
    let requests =
        json!({"List": {"columns": ["name", "items"]}, "Item": {"columns": ["description"]}});
    let sets = ["items"];
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let reply = call(
        &mut stalled,
        json!({"method": "monitor_cond_since", "params": ["todo", "s", requests,
            "00000000-0000-0000-0000-000000000000"], "id": 1}),
    );
    assert_eq!(reply["result"][0], json!(false), "{reply}");
    let mut last_id = reply["result"][1].clone();
    let mut copy = Copy::new();
    apply_update2(&mut copy, &reply["result"][2], &sets);
    // From here on `stalled` reads nothing until the commits are done.

    let mut writer = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let r = call(
        &mut writer,
        json!({"method": "transact", "params": ["todo", {"op": "insert", "table": "List", "row": {"name": "l"}}], "id": 0}),
    );
    assert!(r["result"][0]["uuid"].is_array(), "{r}");
    let big = "x".repeat(64 * 1024);
    let n = 200;
    for i in 0..n {
        // Each commit adds an Item to the list's set and, every other time,
        // takes the oldest one out (it is then garbage-collected): set diffs
        // that a client applying them twice gets wrong.
        let mut ops = vec![
            json!({"op": "insert", "table": "Item", "uuid-name": "i", "row": {"description": format!("{i}{big}"), "status": "todo"}}),
            json!({"op": "mutate", "table": "List", "where": [], "mutations": [["items", "insert", ["set", [["named-uuid", "i"]]]]]}),
        ];
        if i % 2 == 1 {
            let oldest = format!("{}{big}", i - 1);
            ops.insert(0, json!({"op": "select", "table": "Item", "where": [["description", "==", oldest]], "columns": ["_uuid"]}));
        }
        let mut params = vec![json!("todo")];
        params.extend(ops);
        let r = call(
            &mut writer,
            json!({"method": "transact", "params": params, "id": i + 1}),
        );
        assert!(r["error"].is_null(), "transaction {i} failed: {r}");
        if i % 2 == 1 {
            let uuid = r["result"][0]["rows"][0]["_uuid"].clone();
            let r = call(
                &mut writer,
                json!({"method": "transact", "params": ["todo", {"op": "mutate", "table": "List", "where": [], "mutations": [["items", "delete", uuid]]}], "id": format!("d{i}")}),
            );
            assert_eq!(r["result"][0]["count"], json!(1), "{r}");
        }
    }

    // The stalled client reads everything: the server flushes what it held
    // back before the reply to this echo.
    stalled
        .write_all(
            json!({"method": "echo", "params": [], "id": "sync"})
                .to_string()
                .as_bytes(),
        )
        .expect("send");
    let (updates, _) = read_until_reply(&mut stalled, &json!("sync"));
    assert!(!updates.is_empty());
    assert!(
        updates.len() < n as usize,
        "the stalled client's updates must have been merged: {} notifications for {n} commits",
        updates.len()
    );
    for u in &updates {
        assert_eq!(u["method"], json!("update3"), "{u}");
        apply_update2(&mut copy, &u["params"][2], &sets);
        last_id = u["params"][1].clone();
    }

    let select = |writer: &mut TcpStream, id: &str| -> Copy {
        let r = call(
            writer,
            json!({"method": "transact", "params": ["todo",
                {"op": "select", "table": "List", "where": [], "columns": ["_uuid", "name", "items"]},
                {"op": "select", "table": "Item", "where": [], "columns": ["_uuid", "description"]}], "id": id}),
        );
        let mut c = Copy::new();
        for (i, table) in ["List", "Item"].iter().enumerate() {
            let t = c.entry(table.to_string()).or_default();
            for row in r["result"][i]["rows"].as_array().expect("rows") {
                let mut row = row.as_object().cloned().expect("row");
                let uuid = row.remove("_uuid").expect("_uuid")[1]
                    .as_str()
                    .expect("uuid")
                    .to_string();
                t.insert(uuid, row);
            }
        }
        c
    };
    let server_data = normalize_copy(&select(&mut writer, "s1"), &sets);
    assert_eq!(
        normalize_copy(&copy, &sets),
        server_data,
        "the client's copy after the merged updates"
    );

    // Resuming from the last id received: found, and nothing again.
    let mut resumed = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let reply = call(
        &mut resumed,
        json!({"method": "monitor_cond_since", "params": ["todo", "s", requests, last_id], "id": 2}),
    );
    assert_eq!(
        reply["result"][0],
        json!(true),
        "the last id received is known: {reply}"
    );
    let again: usize = reply["result"][2]
        .as_object()
        .map(|t| {
            t.values()
                .filter_map(Value::as_object)
                .map(|r| r.len())
                .sum()
        })
        .unwrap_or(usize::MAX);
    assert_eq!(
        again, 0,
        "{again} row changes the client already had were sent again"
    );
    apply_update2(&mut copy, &reply["result"][2], &sets);
    assert_eq!(
        normalize_copy(&copy, &sets),
        server_data,
        "the client's copy after resuming"
    );
}
