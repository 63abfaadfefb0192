//! Back-pressure: a client that stops reading never delays the others, and
//! its pending monitor updates are merged (the latest state of each row is
//! sent once) instead of queued without bound; a merged `update3` carries
//! the newest transaction id, so a client resuming from it gets nothing
//! twice. Slow readers and the inactivity probe: a client slowly reading a
//! large reply is alive; a silent one is still probed and closed.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    port: u16,
}

/// These tests load the machine (megabytes through stalled and slow
/// clients) and the probe tests depend on clients getting the CPU to read:
/// they run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    start_with_probe(0)
}

/// oxsdb with an inactivity probe of `probe_ms` (0: none).
fn start_with_probe(probe_ms: u64) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxsdb"))
        .args([
            "--remote=ptcp:0:127.0.0.1",
            "--store=memory",
            &format!("--inactivity-probe={probe_ms}"),
            "examples/todo.ovsschema",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oxsdb");
    let stderr = child.stderr.take().expect("stderr");
    let mut port = 0;
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
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
    // The rest of the log goes to the test's output (shown on failure), and
    // a full pipe never blocks the server.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("oxsdb: {line}");
        }
    });
    Server { child, port }
}

fn call(s: &mut TcpStream, msg: Value) -> Value {
    let id = msg["id"].clone();
    s.write_all(msg.to_string().as_bytes()).expect("send");
    let mut de =
        serde_json::Deserializer::from_reader(s.try_clone().expect("clone")).into_iter::<Value>();
    loop {
        let v = de.next().expect("a message").expect("valid JSON");
        if v["method"] == json!("echo") && v["id"] == json!("echo") {
            // The server's inactivity probe, while a long request runs.
            let answer = json!({"id": "echo", "result": v["params"], "error": null});
            s.write_all(answer.to_string().as_bytes())
                .expect("answer echo");
            continue;
        }
        if v["id"] == id {
            return v;
        }
    }
}

#[test]
fn a_stalled_monitor_client_neither_blocks_others_nor_queues_without_bound() {
    let _serial = one_at_a_time();
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

/// Sends an echo and reads up to its reply: the updates the server held
/// back, which it flushes before answering.
fn sync(s: &mut TcpStream) -> Vec<Value> {
    s.write_all(
        json!({"method": "echo", "params": [], "id": "sync"})
            .to_string()
            .as_bytes(),
    )
    .expect("send");
    read_until_reply(s, &json!("sync")).0
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
    let _serial = one_at_a_time();
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
    let updates = sync(&mut stalled);
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

/// A client that reads through a buffer (fast enough for the probe even in
/// debug builds) and answers the server's echo requests.
struct Peer {
    out: TcpStream,
    messages: serde_json::StreamDeserializer<
        'static,
        serde_json::de::IoRead<BufReader<TcpStream>>,
        Value,
    >,
}

impl Peer {
    fn connect(port: u16) -> Peer {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let out = s.try_clone().expect("clone");
        let messages =
            serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 20, s)).into_iter();
        Peer { out, messages }
    }

    /// Sends `msg` and returns the reply with its id, answering echoes meanwhile.
    fn call(&mut self, msg: Value) -> Value {
        let id = msg["id"].clone();
        self.out
            .write_all(msg.to_string().as_bytes())
            .expect("send");
        loop {
            let v = self
                .messages
                .next()
                .expect("a message")
                .expect("valid JSON");
            if v["method"] == json!("echo") {
                let answer = json!({"id": v["id"], "result": v["params"], "error": null});
                self.out
                    .write_all(answer.to_string().as_bytes())
                    .expect("answer echo");
            } else if v["id"] == id {
                return v;
            }
        }
    }
}

/// A reader that takes at most `chunk` bytes per read and pauses before
/// each: a client reading slowly.
struct SlowReader {
    inner: TcpStream,
    chunk: usize,
    pause: Duration,
}

impl Read for SlowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(self.pause);
        let n = buf.len().min(self.chunk);
        self.inner.read(&mut buf[..n])
    }
}

/// Keeps the kernel from buffering much of what the server sends to `s`, so
/// that a large reply has to wait in the server for the client to read it.
fn small_receive_buffer(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 64 * 1024;
    // SAFETY: a valid socket descriptor and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_RCVBUF");
}

#[test]
fn a_slow_reader_of_a_large_reply_is_not_taken_for_dead_by_the_inactivity_probe() {
    let _serial = one_at_a_time();
    let probe_ms = 1000;
    let server = start_with_probe(probe_ms);
    let rows = 100_000;
    {
        // Built beforehand: a writer busy building a request for longer than
        // the probe's two intervals is rightly taken for dead.
        let pad = "p".repeat(64);
        let batches: Vec<Value> = (0..10)
            .map(|batch| {
                let mut params = vec![json!("todo")];
                for i in 0..rows / 10 {
                    let name = format!("{:06}-{pad}", batch * (rows / 10) + i);
                    params.push(json!({"op": "insert", "table": "List", "row": {"name": name}}));
                }
                json!({"method": "transact", "params": params, "id": batch})
            })
            .collect();
        let mut writer = Peer::connect(server.port);
        for (batch, txn) in batches.into_iter().enumerate() {
            let r = writer.call(txn);
            assert!(
                r["error"].is_null()
                    && r["result"].as_array().is_some_and(|a| a.len() == rows / 10),
                "batch {batch} failed"
            );
        }
    }

    let client = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    small_receive_buffer(&client);
    let mut out = client.try_clone().expect("clone");
    out.write_all(json!({"method": "monitor_cond", "params": ["todo", "big", {"List": [{"columns": ["name"]}]}], "id": "big"}).to_string().as_bytes())
        .expect("send");
    // Some 12 MB, read 32 KiB every 10 ms: several probe intervals. The
    // client answers the echo requests it sees, but while it is inside the
    // reply it sees none: only its reading shows that it is alive.
    let slow = SlowReader {
        inner: client,
        chunk: 32 * 1024,
        pause: Duration::from_millis(10),
    };
    let mut messages =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(32 * 1024, slow))
            .into_iter::<Value>();
    // The next message that is not an echo request, answering those.
    let mut next_message = |out: &mut TcpStream| loop {
        let m = messages
            .next()
            .expect("the connection was closed before the message came whole")
            .expect("the connection was closed in the middle of a message");
        if m["method"] == json!("echo") {
            out.write_all(
                json!({"id": m["id"], "result": m["params"], "error": null})
                    .to_string()
                    .as_bytes(),
            )
            .expect("answer echo");
            continue;
        }
        break m;
    };
    let reply = next_message(&mut out);
    assert_eq!(reply["id"], json!("big"));
    let n = reply["result"]["List"].as_object().map_or(0, |t| t.len());
    assert_eq!(n, rows, "every row in the initial reply");
    // Still connected: it answers a request.
    out.write_all(
        json!({"method": "echo", "params": ["still"], "id": "still"})
            .to_string()
            .as_bytes(),
    )
    .expect("send");
    let answer = next_message(&mut out);
    assert_eq!(answer["result"], json!(["still"]));
}

#[test]
fn a_silent_client_with_nothing_to_read_is_still_probed_and_closed() {
    let _serial = one_at_a_time();
    let server = start_with_probe(300);
    let mut client = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    // A safety net only: the server closes long before.
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut bytes = Vec::new();
    client
        .read_to_end(&mut bytes)
        .expect("the server closes the connection");
    let got: Vec<Value> = serde_json::Deserializer::from_slice(&bytes)
        .into_iter::<Value>()
        .map(|v| v.expect("valid JSON"))
        .collect();
    assert_eq!(
        got,
        vec![json!({"id": "echo", "method": "echo", "params": []})],
        "one echo request, then the close"
    );
}

#[test]
fn a_stalled_client_gets_each_commit_and_each_merge_in_ovsdb_servers_monitor_order() {
    let _serial = one_at_a_time();
    let server = start();
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    // Ids whose order in ovsdb-server's table differs from their creation order.
    let ids = [
        json!("m0"),
        json!("m1"),
        json!(7),
        json!(["x"]),
        json!("m4"),
        json!(null),
    ];
    let mut order = oxsdb::db::monitor_order::MonitorOrder::new();
    for (i, id) in ids.iter().enumerate() {
        let method = ["monitor", "monitor_cond", "monitor_cond_since"][i % 3];
        let mut params = vec![
            json!("todo"),
            id.clone(),
            json!({"List": {"columns": ["name"]}}),
        ];
        if method == "monitor_cond_since" {
            params.push(json!("00000000-0000-0000-0000-000000000000"));
        }
        let r = call(
            &mut stalled,
            json!({"method": method, "params": params, "id": i}),
        );
        assert!(r["error"].is_null(), "{r}");
        order.insert(id);
    }
    let walk: Vec<String> = order.walk().iter().map(|s| s.to_string()).collect();
    let created: Vec<String> = ids.iter().map(|v| v.to_string()).collect();
    assert_ne!(
        walk, created,
        "the ids must test an order other than creation"
    );

    let mut writer = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let big = "x".repeat(32 * 1024);
    let n = 120;
    for i in 0..n {
        let r = call(
            &mut writer,
            json!({"method": "transact", "params": ["todo",
                {"op": "insert", "table": "List", "row": {"name": format!("{i}{big}")}},
                {"op": "delete", "table": "List", "where": [["name", "!=", format!("{i}{big}")]]}], "id": i}),
        );
        assert!(r["error"].is_null(), "transaction {i} failed");
    }
    let updates = sync(&mut stalled);
    let got: Vec<String> = updates.iter().map(|u| u["params"][0].to_string()).collect();
    assert!(
        got.len() < n * ids.len(),
        "the stalled client's updates must have been merged: {} notifications for {n} commits",
        got.len()
    );
    assert_eq!(got.len() % ids.len(), 0, "whole rounds: {got:?}");
    for round in got.chunks(ids.len()) {
        assert_eq!(
            round,
            walk.as_slice(),
            "every round in ovsdb-server's order"
        );
    }
}
