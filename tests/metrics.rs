//! `--metrics`: the oxsdb binary serves Prometheus text exposition at
//! /metrics, and its counters move with transactions, monitors and sessions.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::etcd::EtcdCluster;
use support::process::Oxsdb;
use support::rpc::{txn_ok, Rpc};

/// A one-table schema with an index (a duplicate is a constraint violation).
const SCHEMA: &str = r#"{"name": "M", "version": "1.0.0", "tables": {"T": {
    "columns": {"name": {"type": "string"}}, "indexes": [["name"]], "isRoot": true}}}"#;

const WAIT: Duration = Duration::from_secs(20);

fn schema_file(dir: &Path) -> PathBuf {
    let p = dir.join("m.ovsschema");
    std::fs::write(&p, SCHEMA).expect("write schema");
    p
}

/// The metrics address from oxsdb's `metrics at http://ADDR/metrics` line.
fn metrics_addr(ox: &Oxsdb) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let err = ox.stderr();
        if let Some(l) = err.lines().find(|l| l.contains("metrics at http://")) {
            let rest = &l[l.find("http://").expect("found") + 7..];
            return rest.trim_end_matches("/metrics").to_string();
        }
        assert!(Instant::now() < deadline, "no metrics line:\n{err}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `request` raw and returns (status line, body).
fn http(addr: &str, request: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.write_all(request).expect("send request");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read response");
    let text = String::from_utf8(out).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.lines().next().unwrap_or("").to_string();
    (status, body.to_string())
}

/// One scrape of /metrics, checked to be well-formed exposition.
fn scrape(addr: &str) -> Exposition {
    let (status, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.0 200 OK", "{body}");
    Exposition::parse(&body)
}

/// The samples of a text exposition: (name, labels, value).
struct Exposition(Vec<(String, String, f64)>);

impl Exposition {
    /// Parses `text`, asserting that every line is a comment or a sample
    /// `name{labels} value`.
    fn parse(text: &str) -> Exposition {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.starts_with("# ") {
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {line:?}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => {
                    let labels = rest
                        .strip_suffix('}')
                        .unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
                    for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                        let (k, v) = pair
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("bad label in {line:?}"));
                        assert!(valid_name(k), "bad label name in {line:?}");
                        assert!(!v.contains('\n'), "{line:?}");
                    }
                    (n, labels.to_string())
                }
                None => (series, String::new()),
            };
            assert!(valid_name(name), "bad metric name in {line:?}");
            samples.push((name.to_string(), labels, value));
        }
        assert!(!samples.is_empty(), "no samples:\n{text}");
        Exposition(samples)
    }

    /// The value of `name` with exactly `labels` (as written, e.g.
    /// `db="M"`), 0 if there is no such sample.
    fn get(&self, name: &str, labels: &str) -> f64 {
        self.0
            .iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map_or(0.0, |s| s.2)
    }

    /// The sum of `name` over all its labels.
    fn sum(&self, name: &str) -> f64 {
        self.0
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|s| s.2)
            .sum()
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn insert(name: &str) -> Value {
    json!(["M", {"op": "insert", "table": "T", "row": {"name": name}}])
}

#[test]
fn metrics_move_with_transactions_monitors_and_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(dir.path());
    let ox = Oxsdb::start(
        &[
            "--store=memory".to_string(),
            "--metrics=127.0.0.1:0".to_string(),
            schema.display().to_string(),
        ],
        dir.path(),
        None,
    );
    let addr = metrics_addr(&ox);
    let before = scrape(&addr);
    assert_eq!(before.get("oxsdb_transactions_committed_total", ""), 0.0);
    assert_eq!(before.get("oxsdb_rows", "db=\"M\""), 0.0);
    assert_eq!(before.get("oxsdb_store_connected", "db=\"M\""), 1.0);
    assert!(before.get("oxsdb_resident_memory_bytes", "") > 0.0);

    let mut watcher = Rpc::open(&ox.addr());
    let m = watcher.request("monitor", json!(["M", "w", {"T": {"columns": ["name"]}}]));
    assert!(m.result().is_some(), "{:?}", m.message);
    let mut writer = Rpc::open(&ox.addr());
    let r = writer.request("transact", insert("a"));
    assert!(txn_ok(&r.message["result"]), "{:?}", r.message);
    let update = watcher.read_message();
    assert_eq!(update["method"], "update", "{update}");

    let after = scrape(&addr);
    assert_eq!(after.get("oxsdb_transactions_committed_total", ""), 1.0);
    assert!(after.get("oxsdb_commit_latency_seconds_count", "") >= 1.0);
    assert_eq!(after.get("oxsdb_notifications_sent_total", ""), 1.0);
    assert!(after.get("oxsdb_notification_bytes_sent_total", "") > 0.0);
    assert_eq!(after.get("oxsdb_sessions", ""), 2.0);
    assert_eq!(after.get("oxsdb_monitors", ""), 1.0);
    assert_eq!(after.get("oxsdb_rows", "db=\"M\""), 1.0);
    assert_eq!(after.get("oxsdb_transactions_queued", "db=\"M\""), 0.0);

    // A duplicate violates the index; a wait that cannot hold times out.
    let dup = writer.request("transact", insert("a"));
    let wait = writer.request(
        "transact",
        json!(["M", {"op": "wait", "table": "T", "where": [], "columns": ["name"],
                     "until": "==", "rows": [{"name": "nope"}], "timeout": 0}]),
    );
    assert!(!txn_ok(&dup.message["result"]), "{:?}", dup.message);
    assert!(!txn_ok(&wait.message["result"]), "{:?}", wait.message);
    let failed = scrape(&addr);
    let f = "oxsdb_transactions_failed_total";
    assert_eq!(failed.get(f, "error=\"constraint violation\""), 1.0);
    assert_eq!(failed.get(f, "error=\"timed out\""), 1.0);
    assert_eq!(failed.get("oxsdb_transactions_committed_total", ""), 1.0);

    drop(watcher);
    drop(writer);
    let deadline = Instant::now() + WAIT;
    while scrape(&addr).get("oxsdb_sessions", "") != 0.0 {
        assert!(Instant::now() < deadline, "sessions never went back to 0");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(scrape(&addr).get("oxsdb_monitors", ""), 0.0);
}

#[test]
fn only_get_metrics_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(dir.path());
    let ox = Oxsdb::start(
        &[
            "--store=memory".to_string(),
            "--metrics=[::1]:0".to_string(),
            schema.display().to_string(),
        ],
        dir.path(),
        None,
    );
    let addr = metrics_addr(&ox);
    assert!(addr.starts_with("[::1]:"), "{addr}");
    let (status, _) = http(&addr, b"GET /other HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.0 404 Not Found");
    let (status, _) = http(&addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.0 405 Method Not Allowed");
    let (status, _) = http(&addr, b"garbage\r\n\r\n");
    assert_eq!(status, "HTTP/1.0 400 Bad Request");
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 20_000));
    let (status, _) = http(&addr, &huge);
    assert_eq!(status, "HTTP/1.0 431 Request Header Fields Too Large");
    // The server is unharmed.
    scrape(&addr);
}

#[test]
fn metrics_on_etcd_count_groups_and_store_requests() {
    let etcd = EtcdCluster::single();
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(dir.path());
    let mut args = support::cluster::etcd_args(
        &etcd.endpoints(),
        &support::cluster::unique_prefix(),
        &["--metrics=127.0.0.1:0"],
    );
    args.push(schema.display().to_string());
    let ox = Oxsdb::start(&args, dir.path(), None);
    let addr = metrics_addr(&ox);
    let mut etcd = etcd;
    // The database opens once the store answers.
    let deadline = Instant::now() + WAIT;
    while scrape(&addr).get("oxsdb_store_connected", "db=\"M\"") != 1.0 {
        assert!(Instant::now() < deadline, "the store never connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = Rpc::connect_retry(&ox.addr(), WAIT);
    let deadline = Instant::now() + WAIT;
    loop {
        let r = c.request("transact", insert("a"));
        if txn_ok(&r.message["result"]) {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", r.message);
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = scrape(&addr);
    assert_eq!(after.get("oxsdb_transactions_committed_total", ""), 1.0);
    assert!(after.get("oxsdb_commit_group_size_count", "") >= 1.0);
    assert!(after.get("oxsdb_commit_group_size_sum", "") >= 1.0);
    assert!(after.get("oxsdb_store_request_seconds_count", "") >= 1.0);
    assert_eq!(after.get("oxsdb_commit_groups_in_flight", ""), 0.0);
    assert_eq!(after.get("oxsdb_rows", "db=\"M\""), 1.0);
    // (Transactions sent before the database opened failed.)
    let failed_before = after.sum("oxsdb_transactions_failed_total");

    // Without etcd, transactions fail and the store is seen gone.
    etcd.members[0].kill();
    let deadline = Instant::now() + WAIT;
    loop {
        let r = c.request("transact", insert("b"));
        if !txn_ok(&r.message["result"]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "etcd is gone, yet transactions commit"
        );
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let down = scrape(&addr);
        if down.get("oxsdb_store_connected", "db=\"M\"") == 0.0 {
            assert!(down.sum("oxsdb_transactions_failed_total") > failed_before);
            assert_eq!(down.get("oxsdb_transactions_committed_total", ""), 1.0);
            break;
        }
        assert!(Instant::now() < deadline, "the store never went down");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn updates_held_back_for_a_stalled_client_are_counted_as_merged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(dir.path());
    let ox = Oxsdb::start(
        &[
            "--store=memory".to_string(),
            "--inactivity-probe=0".to_string(),
            "--metrics=127.0.0.1:0".to_string(),
            schema.display().to_string(),
        ],
        dir.path(),
        None,
    );
    let addr = metrics_addr(&ox);
    let mut stalled = Rpc::open(&ox.addr());
    let m = stalled.request("monitor", json!(["M", "s", {"T": {"columns": ["name"]}}]));
    assert!(m.result().is_some(), "{:?}", m.message);
    // From here on `stalled` reads nothing until the end.
    let mut writer = Rpc::open(&ox.addr());
    let r = writer.request("transact", insert("start"));
    assert!(txn_ok(&r.message["result"]), "{:?}", r.message);
    let big = "x".repeat(64 * 1024);
    let n = 100;
    for i in 0..n {
        // 64 KiB a commit: far more than the socket buffers hold.
        let r = writer.request(
            "transact",
            json!(["M", {"op": "update", "table": "T", "where": [],
                         "row": {"name": format!("{i}{big}")}}]),
        );
        assert!(txn_ok(&r.message["result"]), "{:?}", r.message);
    }
    let merged = scrape(&addr).get("oxsdb_updates_merged_total", "");
    assert!(merged > 0.0, "no update was merged");
    // Once the client reads, every commit reached it: sent on its own, or merged.
    let deadline = Instant::now() + WAIT;
    loop {
        while stalled
            .next_message(Duration::from_millis(100))
            .expect("read")
            .is_some()
        {}
        let e = scrape(&addr);
        let sent = e.get("oxsdb_notifications_sent_total", "");
        let merged = e.get("oxsdb_updates_merged_total", "");
        if sent + merged == f64::from(n + 1) {
            assert!(sent < f64::from(n + 1), "{sent} sent, {merged} merged");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{sent} sent + {merged} merged != {} commits",
            n + 1
        );
    }
}

#[test]
fn a_bad_or_taken_metrics_address_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema_file(dir.path()).display().to_string();
    let bad = support::process::oxsdb_fails(&["--store=memory", "--metrics=nowhere", &schema]);
    assert!(!bad.success(), "{}", bad.all());
    assert!(bad.all().contains("--metrics"), "{}", bad.all());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let at = format!("--metrics={}", taken.local_addr().expect("addr"));
    let out = support::process::oxsdb_fails(&["--store=memory", &at, &schema]);
    assert!(!out.success(), "{}", out.all());
    assert!(out.all().contains("cannot listen"), "{}", out.all());
}
