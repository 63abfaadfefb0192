//! Several oxsdb processes on one real etcd, for the cluster tests: a test
//! schema, servers started with `--store=etcd` on a shared prefix and
//! service, raw JSON-RPC helpers, and reading etcd through its HTTP gateway.
//! Uses `durable.rs` (processes, [`Rpc`]) and `etcd.rs` (etcd members).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::process::Oxsdb;
use super::rpc::Rpc;

/// How long one request may take in these tests.
pub const T: Duration = Duration::from_secs(30);

/// The test database: a counter, entries with a unique key, references.
pub const SCHEMA: &str = r#"{
  "name": "clus",
  "version": "1.0.0",
  "tables": {
    "Counter": {
      "isRoot": true,
      "columns": {"name": {"type": "string"}, "n": {"type": "integer"}},
      "indexes": [["name"]]
    },
    "Entry": {
      "isRoot": true,
      "columns": {
        "key": {"type": "string"},
        "seq": {"type": "integer"},
        "payload": {"type": "string"}
      },
      "indexes": [["key"]]
    },
    "Holder": {
      "isRoot": true,
      "columns": {
        "name": {"type": "string"},
        "entry": {"type": {"key": {"type": "uuid", "refTable": "Entry"}, "min": 0, "max": 1}}
      }
    }
  }
}"#;

/// The database name of [`SCHEMA`].
pub const DB: &str = "clus";

/// Log filter that makes oxsdb log each commit race it lost (see
/// [`conflicts_retried`]).
pub const RUST_LOG: &str = "info,oxsdb::actors::database=debug";

/// The line oxsdb logs (at debug level) each time another server committed
/// first and a transaction is executed again.
pub const RETRY_LINE: &str = "lost a commit race";

/// Writes [`SCHEMA`] (with `version`) into `dir`.
pub fn write_schema(dir: &Path, version: &str) -> PathBuf {
    let path = dir.join(format!("clus-{version}.ovsschema"));
    let text = SCHEMA.replace("\"1.0.0\"", &format!("\"{version}\""));
    std::fs::write(&path, text).expect("write schema");
    path
}

/// A unique etcd key prefix, so that tests sharing an etcd don't meet.
pub fn unique_prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// The arguments of an oxsdb on etcd: endpoints, prefix, service `clus`,
/// short timeouts (so that failures show quickly), then `extra`.
pub fn etcd_args(endpoints: &[String], prefix: &str, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        "--store=etcd".to_string(),
        format!("--etcd-endpoints={}", endpoints.join(",")),
        format!("--etcd-prefix={prefix}"),
        "--service=clus".to_string(),
        "--etcd-timeout=2000".to_string(),
        "--etcd-connect-timeout=1000".to_string(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Starts oxsdb on etcd serving `schema` (or what etcd holds, if `None`).
pub fn start_server(
    endpoints: &[String],
    prefix: &str,
    schema: Option<&Path>,
    extra: &[&str],
    log_dir: &Path,
) -> Oxsdb {
    let mut args = etcd_args(endpoints, prefix, extra);
    if let Some(s) = schema {
        args.push(s.display().to_string());
    }
    Oxsdb::start_with_env(&args, &[("RUST_LOG", RUST_LOG)], log_dir)
}

/// How many commit races the server lost so far (lines of its log).
pub fn conflicts_retried(server: &Oxsdb) -> usize {
    server.all_stderr().matches(RETRY_LINE).count()
}

/// A connection to `server`.
pub fn connect(server: &Oxsdb) -> Rpc {
    Rpc::connect_retry(&server.addr(), T)
}

/// `transact` on [`DB`] with `ops`; the result array (panics on a JSON-RPC
/// error or a lost connection).
pub fn transact(rpc: &mut Rpc, ops: Value) -> Value {
    let mut params = vec![json!(DB)];
    params.extend(ops.as_array().cloned().unwrap_or_default());
    rpc.transact(Value::Array(params), T)
        .unwrap_or_else(|e| panic!("transact: {e}"))
}

/// The first error object of a transact result, if any.
pub fn txn_error(result: &Value) -> Option<Value> {
    result
        .as_array()?
        .iter()
        .find(|o| o.get("error").is_some_and(|e| !e.is_null()))
        .cloned()
}

/// The rows of `table` (all columns).
pub fn select_all(rpc: &mut Rpc, table: &str) -> Vec<Value> {
    let r = transact(rpc, json!([{"op": "select", "table": table, "where": []}]));
    r[0]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("select {table}: {r}"))
        .clone()
}

/// Waits until the server answers transactions on [`DB`] (it opens the
/// database from etcd after it starts listening).
pub fn wait_ready(server: &Oxsdb) {
    let deadline = Instant::now() + T;
    loop {
        let mut rpc = connect(server);
        let r = transact(
            &mut rpc,
            json!([{"op": "select", "table": "Counter", "where": []}]),
        );
        if txn_error(&r).is_none() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "oxsdb did not open {DB} from etcd: {r}\n{}",
            server.all_stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` on a connection to `server` until it returns `Some`.
pub fn wait_until<R>(server: &Oxsdb, what: &str, mut f: impl FnMut(&mut Rpc) -> Option<R>) -> R {
    let deadline = Instant::now() + T;
    let mut rpc = connect(server);
    loop {
        if let Some(r) = f(&mut rpc) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; server log:\n{}",
            server.all_stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The revision inside an oxsdb transaction id (its low 64 bits).
pub fn txn_revision(id: &str) -> i64 {
    let u = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("txn id {id}: {e}"));
    u.as_u64_pair().1 as i64
}

/// An id of the same database with another revision.
pub fn txn_id_with_revision(id: &str, revision: i64) -> String {
    let u = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("txn id {id}: {e}"));
    uuid::Uuid::from_u64_pair(u.as_u64_pair().0, revision as u64).to_string()
}

// ---------------------------------------------------------------------------
// etcd's HTTP gateway (there is no etcdctl in Debian's etcd-server).

/// Standard base64, as etcd's gateway takes keys and values.
pub fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= (val(*c) as u32) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// POSTs `body` to etcd's gateway at `path` (`/v3/kv/range`, ...).
pub fn etcd_post(endpoint: &str, path: &str, body: &Value) -> Value {
    let hostport = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(hostport).unwrap_or_else(|e| panic!("{endpoint}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.to_string();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let json = out.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("etcd {path}: {e}: {out}"))
}

/// Every key under `prefix` with its value, as text.
pub fn etcd_range(endpoint: &str, prefix: &str) -> Vec<(String, String)> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let r = etcd_post(
        endpoint,
        "/v3/kv/range",
        &json!({"key": b64(prefix.as_bytes()), "range_end": b64(&end)}),
    );
    r["kvs"]
        .as_array()
        .map(|kvs| {
            kvs.iter()
                .map(|kv| {
                    let k = unb64(kv["key"].as_str().unwrap_or(""));
                    let v = unb64(kv["value"].as_str().unwrap_or(""));
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// etcd's current revision.
pub fn etcd_revision(endpoint: &str) -> i64 {
    let r = etcd_post(endpoint, "/v3/kv/range", &json!({"key": b64(b"\0")}));
    r["header"]["revision"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {r}"))
}

/// Compacts etcd's history up to `revision`.
pub fn etcd_compact(endpoint: &str, revision: i64) {
    let r = etcd_post(
        endpoint,
        "/v3/kv/compaction",
        &json!({"revision": revision.to_string(), "physical": true}),
    );
    assert!(r.get("header").is_some(), "compaction failed: {r}");
}
