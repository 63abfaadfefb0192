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
