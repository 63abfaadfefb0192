//! Online `convert` of a database shared through a real etcd by two oxsdb
//! servers (issue 18, item 5), with the real clients, compared with the
//! reference `ovsdb-server` converting the same database:
//!
//! 1. `convert_through_one_server_is_followed_by_the_other`:
//!    `ovsdb-client convert` through server A; on server B `get-schema`
//!    shows the new schema, `needs-conversion` answers as ovsdb-server does,
//!    `dump` shows the converted data, an `ovsdb-client monitor` ends as it
//!    does on ovsdb-server, `_Server` has the new schema; a server started
//!    later loads the new schema from etcd.
//! 2. `a_conversion_over_the_etcd_limits_is_staged_and_loses_no_racing_write`:
//!    a database of 2,000 rows (over `--max-txn-ops`) converts through
//!    staging; a change-aware writer on B commits all the while; every
//!    transaction is answered, none fails, every one B acknowledged is in
//!    the converted database on both servers, a
//!    change-aware client of B gets `monitor_canceled`, and the old key
//!    space is deleted from etcd.
//! 3. `python_idl_on_the_other_server_follows`: a Python IDL on B, against
//!    the same script on ovsdb-server: what the IDL connected before the
//!    conversion sees and commits, and a new IDL sees the new column.
//!
//! 4. `a_freeze_left_by_a_dead_converter_ends_by_itself`: the freeze a
//!    converting server commits before its flip, left in etcd as by a
//!    server that died then: the other servers hold their commits for at
//!    most 10 s, then commit them (no error, no hang), saying so in the log.
//!
//! Each test starts its own etcd (free loopback ports, temporary data).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::clients::{mask_remotes, strip_log_timestamps};
use support::cluster::*;
use support::etcd::EtcdCluster;
use support::process::{Kind, Oxsdb};
use support::rpc::Rpc;
use support::servers::Server;
use support::tools::{cmd, run as run_timeout, Background, Output};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("oxsdb-convert-")
        .tempdir()
        .expect("tempdir")
}

/// [`SCHEMA`] 1.1.0: `Entry` gains a `note` column, and a table `Tag` is new.
fn write_newer_schema(dir: &Path) -> PathBuf {
    let mut s: Value = serde_json::from_str(SCHEMA).unwrap();
    s["version"] = json!("1.1.0");
    s["tables"]["Entry"]["columns"]["note"] = json!({"type": "string"});
    s["tables"]["Tag"] = json!({"isRoot": true, "columns": {"label": {"type": "string"}}});
    let path = dir.join("clus-1.1.0.ovsschema");
    std::fs::write(&path, serde_json::to_string_pretty(&s).unwrap()).unwrap();
    path
}

/// Runs ovsdb-client; its output without log timestamps and ports.
fn oc(args: &[&str]) -> Output {
    let mut out = run_timeout(&mut cmd("ovsdb-client", args), T);
    out.stdout = mask_remotes(&out.stdout);
    out.stderr = mask_remotes(&strip_log_timestamps(&out.stderr));
    out
}

fn tcp(s: &Oxsdb) -> String {
    format!("tcp:{}", s.addr())
}

/// Inserts `n` entries `prefix0..` through `rpc`, `per_txn` per transaction.
fn insert_entries(rpc: &mut Rpc, prefix: &str, n: usize, per_txn: usize, payload: &str) {
    for start in (0..n).step_by(per_txn) {
        let ops: Vec<Value> = (start..(start + per_txn).min(n))
            .map(|i| {
                json!({"op": "insert", "table": "Entry",
                       "row": {"key": format!("{prefix}{i}"), "seq": i, "payload": payload}})
            })
            .collect();
        let r = transact(rpc, Value::Array(ops));
        assert!(txn_error(&r).is_none(), "insert: {r}");
    }
}

/// The same on a reference server's connection.
fn insert_entries_db(rpc: &mut Rpc, n: usize) {
    let ops: Vec<Value> = (0..n)
        .map(|i| json!({"op": "insert", "table": "Entry", "row": {"key": format!("e{i}"), "seq": i}}))
        .collect();
    let mut params = vec![json!(DB)];
    params.extend(ops);
    let r = rpc.transact(Value::Array(params), T).unwrap();
    assert!(txn_error(&r).is_none(), "insert: {r}");
}

/// Polls `f` until it is `Some`, at most `timeout`.
fn eventually<R>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<R>) -> R {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = f() {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A monitor's end, as the test compares it: exit code and messages.
fn monitor_end(m: &mut Background) -> String {
    let out = m.wait_exit(T);
    format!(
        "rc={}\n{}",
        support::tools::rc(&out.status),
        mask_remotes(&strip_log_timestamps(&out.stderr))
    )
}

/// Every `Entry` of a server: key -> note (`None` without the column).
fn entries(rpc: &mut Rpc) -> std::collections::BTreeMap<String, Option<String>> {
    select_all(rpc, "Entry")
        .into_iter()
        .map(|r| {
            let key = r["key"].as_str().unwrap_or_default().to_string();
            (key, r.get("note").and_then(Value::as_str).map(String::from))
        })
        .collect()
}

#[test]
fn convert_through_one_server_is_followed_by_the_other() {
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    let dir = tempdir();
    let prefix = unique_prefix();
    let old = write_schema(dir.path(), "1.0.0");
    let newer = write_newer_schema(dir.path());
    let (olds, newers) = (old.to_str().unwrap(), newer.to_str().unwrap());
    let a = start_server(&endpoints, &prefix, Some(&old), &[], dir.path());
    let b = start_server(&endpoints, &prefix, Some(&old), &[], dir.path());
    wait_ready(&a);
    wait_ready(&b);
    let reference = Server::start(Kind::Reference, &[&old]);
    insert_entries(&mut connect(&a), "e", 5, 5, "");
    insert_entries_db(&mut reference.connect(), 5);

    // Monitors on B (the other server) and on ovsdb-server.
    let monitor = |remote: &str| {
        let mut m = Background::spawn(&mut cmd(
            "ovsdb-client",
            ["monitor", remote, DB, "Entry", "key", "--format=json"],
        ));
        m.wait_for("monitor initial", T, |o| o.contains("initial"));
        m
    };
    let mut mon_b = monitor(&tcp(&b));
    let mut mon_ref = monitor(&reference.tcp());

    let needs = |remote: &str, schema: &str| oc(&["needs-conversion", remote, schema]).all();
    assert_eq!(needs(&tcp(&b), newers), needs(&reference.tcp(), newers));
    assert!(needs(&tcp(&b), newers).contains("stdout:\nyes\n"));

    let converted = oc(&["convert", &tcp(&a), newers]);
    assert!(
        converted.success(),
        "convert through A: {}",
        converted.all()
    );
    let converted_ref = oc(&["convert", &reference.tcp(), newers]);
    assert_eq!(converted.all(), converted_ref.all());

    // B follows.
    eventually("B serving 1.1.0", T, || {
        let v = oc(&["get-schema-version", &tcp(&b), DB]);
        (v.stdout == "1.1.0\n").then_some(())
    });
    for (label, schema) in [("new", newers), ("old", olds)] {
        assert_eq!(
            needs(&tcp(&b), schema),
            needs(&reference.tcp(), schema),
            "needs-conversion {label} on B and on ovsdb-server"
        );
    }
    assert!(needs(&tcp(&b), newers).contains("stdout:\nno\n"));
    let schema_a = oc(&["get-schema", &tcp(&a), DB]).stdout;
    let schema_b = oc(&["get-schema", &tcp(&b), DB]).stdout;
    let parsed: Value = serde_json::from_str(&schema_b).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&schema_a).unwrap(),
        parsed,
        "A and B serve one schema"
    );
    assert!(parsed["tables"]["Entry"]["columns"]["note"].is_object());
    // The converted data, as ovsdb-server converted it.
    let dump = |remote: &str| {
        let out = oc(&["dump", remote, DB, "Entry", "key", "note"]);
        assert!(out.success(), "{}", out.all());
        let mut lines: Vec<String> = out.stdout.lines().map(String::from).collect();
        lines.sort();
        lines
    };
    assert_eq!(dump(&tcp(&b)), dump(&reference.tcp()));
    assert_eq!(dump(&tcp(&a)), dump(&tcp(&b)));
    // The monitor on B ends as on ovsdb-server.
    assert_eq!(monitor_end(&mut mon_b), monitor_end(&mut mon_ref));
    // B's `_Server` has the new schema.
    let row = connect(&b)
        .transact(
            json!(["_Server", {"op": "select", "table": "Database", "where": [["name", "==", DB]]}]),
            T,
        )
        .unwrap();
    let served = row[0]["rows"][0]["schema"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        served.contains("\"1.1.0\"") && served.contains("note"),
        "{row}"
    );
    // B writes the new column; A sees it.
    let r = transact(
        &mut connect(&b),
        json!([{"op": "update", "table": "Entry", "where": [["key", "==", "e1"]], "row": {"note": "via B"}}]),
    );
    assert!(txn_error(&r).is_none(), "{r}");
    eventually("A seeing B's note", T, || {
        (entries(&mut connect(&a)).get("e1") == Some(&Some("via B".into()))).then_some(())
    });
    // A server started later loads the new schema from etcd; one given
    // the old schema is refused, saying why.
    let c = start_server(&endpoints, &prefix, None, &[], dir.path());
    wait_ready(&c);
    assert_eq!(oc(&["get-schema-version", &tcp(&c), DB]).stdout, "1.1.0\n");
    assert_eq!(entries(&mut connect(&c)).len(), 5);
    let mut args = etcd_args(&endpoints, &prefix, &[]);
    args.push(olds.to_string());
    match Oxsdb::try_start(&args, dir.path(), None) {
        Ok(_) => panic!("a server of schema 1.0.0 started on the converted database"),
        Err((_, stderr)) => assert!(stderr.contains("1.1.0"), "{stderr}"),
    }
    let stored = etcd_range(&endpoints[0], &format!("{prefix}/clus/_Server/Database/"));
    let record: Value = serde_json::from_str(&stored[0].1).unwrap();
    assert_eq!(record["schema"]["version"], "1.1.0");
}

#[test]
fn a_conversion_over_the_etcd_limits_is_staged_and_loses_no_racing_write() {
    const ROWS: usize = 2000;
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    let dir = tempdir();
    let prefix = unique_prefix();
    let old = write_schema(dir.path(), "1.0.0");
    let newer = write_newer_schema(dir.path());
    let a = start_server(&endpoints, &prefix, Some(&old), &[], dir.path());
    let b = start_server(&endpoints, &prefix, Some(&old), &[], dir.path());
    wait_ready(&a);
    wait_ready(&b);
    let payload = "x".repeat(300);
    insert_entries(&mut connect(&a), "e", ROWS, 100, &payload);

    // A change-aware client of B with a monitor.
    let mut aware = connect(&b);
    let r = aware.call("set_db_change_aware", json!([true]), T).unwrap();
    assert!(r["error"].is_null(), "{r}");
    let r = aware
        .call(
            "monitor_cond",
            json!([DB, "m", {"Entry": [{"columns": ["key"]}]}]),
            T,
        )
        .unwrap();
    assert!(r["error"].is_null(), "monitor_cond: {}", r["error"]);

    // A writer on B, all through the conversion.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let writer = {
        let (stop, acked, failed, addr) = (stop.clone(), acked.clone(), failed.clone(), b.addr());
        std::thread::spawn(move || {
            // Change-aware, as the IDLs: kept connected through the
            // conversion, so that every transaction gets its answer.
            let aware = |addr: &str| {
                let mut rpc = Rpc::connect_retry(addr, T);
                let r = rpc.call("set_db_change_aware", json!([true]), T).unwrap();
                assert!(r["error"].is_null(), "{r}");
                rpc
            };
            let mut rpc = aware(&addr);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{i}");
                i += 1;
                let op = json!({"op": "insert", "table": "Entry", "row": {"key": key, "seq": i}});
                let r = match rpc.transact(json!([DB, op]), T) {
                    Ok(r) => r,
                    Err(e) => {
                        failed
                            .lock()
                            .unwrap()
                            .push(format!("{key}: connection lost: {e}"));
                        rpc = aware(&addr);
                        continue;
                    }
                };
                match txn_error(&r) {
                    None => acked.lock().unwrap().push(key),
                    Some(e) => failed.lock().unwrap().push(format!("{key}: {e}")),
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let out = oc(&["convert", &tcp(&a), newer.to_str().unwrap()]);
    let took = started.elapsed();
    assert!(out.success(), "convert: {}", out.all());
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "the writer committed too little: {}",
        acked.len()
    );

    // The change-aware client was told.
    let canceled = eventually("monitor_canceled on B", T, || {
        match aware.next_message(Duration::from_millis(200)) {
            Ok(Some(m)) if m["method"] == "monitor_canceled" => Some(m),
            Ok(_) => None,
            Err(e) => panic!("the change-aware client was disconnected: {e}"),
        }
    });
    assert_eq!(canceled["params"], json!(["m"]), "{canceled}");

    // Nothing acknowledged is lost, both servers agree, every row converted.
    let on_b = eventually("B converted", T, || {
        let e = entries(&mut connect(&b));
        e.values().all(Option::is_some).then_some(e)
    });
    let on_a = entries(&mut connect(&a));
    assert_eq!(on_a, on_b, "A and B differ after the conversion");
    for i in 0..ROWS {
        assert_eq!(
            on_a.get(&format!("e{i}")),
            Some(&Some(String::new())),
            "e{i}"
        );
    }
    for k in &acked {
        assert!(
            on_a.contains_key(k),
            "acknowledged {k} lost in the conversion"
        );
    }
    // Transactions racing the conversion were executed again after it,
    // on the new schema: none failed, none went unanswered.
    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "transactions failed on B: {failed:?}");

    // The rows moved to a new key space; the old one is deleted.
    let stored = etcd_range(&endpoints[0], &format!("{prefix}/clus/_Server/Database/"));
    let record: Value = serde_json::from_str(&stored[0].1).unwrap();
    let space = record["space"]
        .as_str()
        .expect("a staged conversion names its space")
        .to_string();
    assert!(space.starts_with("clus."), "{record}");
    eventually("the old key space deleted", T, || {
        etcd_range(&endpoints[0], &format!("{prefix}/clus/clus/"))
            .is_empty()
            .then_some(())
    });
    let rows = etcd_range(&endpoints[0], &format!("{prefix}/clus/{space}/Entry/"));
    assert_eq!(rows.len(), on_a.len());
    let log = a.all_stderr();
    assert!(log.contains("staged=true"), "A's log: {log}");
    eprintln!(
        "FIGURES: {ROWS} rows of {} bytes converted through staging in {took:.2?}; the writer on B \
         committed {} transactions ({} failed) meanwhile; races lost by A: {}",
        payload.len(),
        acked.len(),
        failed.len(),
        log.matches("the conversion lost a commit race").count()
    );
}

/// What an IDL connected before a conversion sees and does after it, and
/// what an IDL made from the server's new schema sees.
const IDL_SCRIPT: &str = r#"
import json, sys, time
import ovs.db.idl, ovs.poller, ovs.jsonrpc, ovs.stream

remote, schema = sys.argv[1], sys.argv[2]

def run_until(idl, pred, what, timeout=30.0):
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            print(json.dumps({"timeout": what}), flush=True)
            sys.exit(2)
        idl.run()
        poller = ovs.poller.Poller()
        idl.wait(poller)
        poller.timer_wait(50)
        poller.block()

def view(idl):
    rows = idl.tables["Entry"].rows.values()
    return sorted([r.key] + ([r.note] if "note" in idl.tables["Entry"].columns else []) for r in rows)

def commit(idl, key):
    txn = ovs.db.idl.Transaction(idl)
    row = txn.insert(idl.tables["Entry"])
    row.key = key
    status = txn.commit_block()
    return ovs.db.idl.Transaction.status_to_string(status)

helper = ovs.db.idl.SchemaHelper(location=schema)
helper.register_all()
before = ovs.db.idl.Idl(remote, helper)
run_until(before, lambda: len(before.tables["Entry"].rows) == 3, "initial rows")
print(json.dumps({"before": view(before)}), flush=True)
sys.stdin.readline()
# The conversion happened: the old IDL keeps its schema.
end = time.time() + 1.0
while time.time() < end:
    before.run()
    time.sleep(0.05)
print(json.dumps({"old idl after": view(before), "commit": commit(before, "from-old-idl")}), flush=True)

error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote))
rpc = ovs.jsonrpc.Connection(stream)
error, reply = rpc.transact_block(ovs.jsonrpc.Message.create_request("get_schema", ["clus"]))
rpc.close()
fresh = ovs.db.idl.SchemaHelper(None, reply.result)
fresh.register_all()
after = ovs.db.idl.Idl(remote, fresh)
run_until(after, lambda: after.change_seqno > 0 and len(after.tables["Entry"].rows) >= 3, "rows after")
print(json.dumps({"new idl": view(after), "has note": "note" in after.tables["Entry"].columns}), flush=True)
print(json.dumps({"commit new": commit(after, "from-new-idl")}), flush=True)
run_until(after, lambda: len(after.tables["Entry"].rows) >= 5, "both commits")
print(json.dumps({"new idl end": view(after)}), flush=True)
"#;

#[test]
fn python_idl_on_the_other_server_follows() {
    // The Python IDL of python3-openvswitch, as tests/clients_python_idl.rs.
    let python = "/usr/bin/python3";
    assert!(
        Path::new(python).exists(),
        "{python} is missing: install python3 and python3-openvswitch"
    );
    let dir = tempdir();
    let script = dir.path().join("idl_convert.py");
    std::fs::write(&script, IDL_SCRIPT).unwrap();
    let old = write_schema(dir.path(), "1.0.0");
    let newer = write_newer_schema(dir.path());
    // The script against a remote; `convert` runs once it printed its first line.
    let run = |remote: &str, convert: &dyn Fn()| -> String {
        let mut c = Command::new(python);
        c.arg(&script).arg(remote).arg(&old);
        let mut bg = Background::spawn(&mut c);
        bg.wait_for("the IDL's initial rows", T, |o| o.contains("before"));
        convert();
        bg.send_line("go");
        let out = bg.wait_exit(T);
        assert!(
            out.status.success(),
            "IDL script on {remote}: {}",
            out.all()
        );
        out.stdout
    };

    let reference = Server::start(Kind::Reference, &[&old]);
    insert_entries_db(&mut reference.connect(), 3);
    let expected = run(&reference.tcp(), &|| {
        let out = oc(&["convert", &reference.tcp(), newer.to_str().unwrap()]);
        assert!(out.success(), "{}", out.all());
    });

    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    let prefix = unique_prefix();
    let a = start_server(&endpoints, &prefix, Some(&old), &[], dir.path());
    let b = start_server(&endpoints, &prefix, Some(&old), &[], dir.path());
    wait_ready(&a);
    wait_ready(&b);
    insert_entries(&mut connect(&a), "e", 3, 3, "");
    let got = run(&tcp(&b), &|| {
        let out = oc(&["convert", &tcp(&a), newer.to_str().unwrap()]);
        assert!(out.success(), "{}", out.all());
        eventually("B serving 1.1.0", T, || {
            (oc(&["get-schema-version", &tcp(&b), DB]).stdout == "1.1.0\n").then_some(())
        });
    });
    eprintln!("the IDL script's output (on B and on ovsdb-server):\n{got}");
    assert_eq!(got, expected, "the Python IDL on B and on ovsdb-server");
}

#[test]
fn a_freeze_left_by_a_dead_converter_ends_by_itself() {
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    let dir = tempdir();
    let prefix = unique_prefix();
    let old = write_schema(dir.path(), "1.0.0");
    let a = start_server(&endpoints, &prefix, Some(&old), &[], dir.path());
    let b = start_server(&endpoints, &prefix, Some(&old), &[], dir.path());
    wait_ready(&a);
    wait_ready(&b);
    insert_entries(&mut connect(&a), "e", 3, 3, "");
    // What a converting server commits as its freeze (the fence and the
    // freeze key, in one Txn), and then no flip: it died.
    let put = |key: String, value: &str| json!({"request_put": {"key": b64(key.as_bytes()), "value": b64(value.as_bytes())}});
    let r = etcd_post(
        &endpoints[0],
        "/v3/kv/txn",
        &json!({"success": [
            put(format!("{prefix}/clus/_/_txn/{DB}"), "dead-server 1"),
            put(format!("{prefix}/clus/{DB}/_/converting"), "dead-server"),
        ]}),
    );
    assert_eq!(r["succeeded"], true, "{r}");
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut rpc = connect(&b);
    let r = transact(
        &mut rpc,
        json!([{"op": "insert", "table": "Entry", "row": {"key": "after-freeze"}}]),
    );
    let held = started.elapsed();
    assert!(txn_error(&r).is_none(), "{r}");
    assert!(
        held > Duration::from_secs(8) && held < Duration::from_secs(20),
        "held {held:?}"
    );
    assert!(
        b.all_stderr().contains("did not finish in"),
        "B's log says why it held: {}",
        b.all_stderr()
    );
    // A commits too, and sees B's row.
    let r = transact(
        &mut connect(&a),
        json!([{"op": "insert", "table": "Entry", "row": {"key": "on-a"}}]),
    );
    assert!(txn_error(&r).is_none(), "{r}");
    let on_a = entries(&mut connect(&a));
    assert!(
        on_a.contains_key("after-freeze") && on_a.contains_key("on-a"),
        "{on_a:?}"
    );
    eprintln!("FIGURES: a transaction on B was held {held:?} by a dead converter's freeze");
}
