//! Durability of oxsdb's default store (the OVSDB standalone file, see
//! `src/storage/file.rs`) at the server level, with real processes and the
//! real Open vSwitch tools:
//!
//! 1. `restart_keeps_rows_and_the_python_idl_reconnects`: rows written with
//!    `ovsdb-client` survive a SIGTERM + restart on the same port (equal
//!    `ovsdb-client dump`); a connected Python IDL (`ovs.db.idl`) reconnects
//!    by itself, sees every row (and one written after the restart), and
//!    commits again; that commit survives another restart.
//! 2. `kill9_during_inserts_loses_no_acknowledged_insert` (and `_with_fsync`):
//!    a client inserts rows one transaction at a time while oxsdb is killed
//!    with SIGKILL at a random moment, three rounds on the same file: after
//!    each restart every acknowledged insert is there, nothing unsent is;
//!    also with `--fsync`, and with compactions running meanwhile.
//! 3. `damaged_tail_*`: a flipped byte in the last record, a record cut in
//!    its body, a record cut in its header: oxsdb serves the good prefix,
//!    logs what it dropped, truncates the file after the last good record,
//!    and what it appends next is read by `ovsdb-tool`.
//! 4. `file_written_by_oxsdb_is_read_by_ovsdb_tool_and_ovsdb_server` and
//!    `file_written_by_ovsdb_server_is_served_and_extended_by_oxsdb`.
//! 5. `compaction_under_load_loses_nothing`: automatic compaction while a
//!    writer runs thousands of transactions and a `monitor_cond` client
//!    watches: the file shrinks, every change reaches the monitor, the final
//!    contents are right, and `ovsdb-tool` reads the compacted file.
//! 6. `ovs_vsctl_on_a_conf_db_survives_restart`: `ovs-vsctl` against a
//!    `conf.db` made by `ovsdb-tool create`, served in place on a unix socket.
//! 7. `schema_version_mismatch_refuses_to_start`.
//! 8. `a_database_file_is_served_by_one_process_at_a_time`: a second oxsdb,
//!    or ovsdb-server, on a file oxsdb serves (and oxsdb on a file
//!    ovsdb-server serves) refuses to start.
//!
//! Every process is killed when its test ends (or fails), and every wait is
//! bounded. Missing tools fail the tests with an `apt-get` hint.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::clients::{client_dump, client_transact, ovsdb_tool};
use support::files::{record_bounds, show_log_records};
use support::process::{oxsdb_fails, Kind, Oxsdb, ServerProcess};
use support::reference::ReferenceServer;
use support::rng::Rng;
use support::rpc::{txn_ok, Rpc};
use support::tools::*;

const PYTHON: &str = "/usr/bin/python3";
const VSWITCH_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
const T: Duration = Duration::from_secs(30);

fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

fn arg(p: &Path) -> String {
    p.display().to_string()
}

/// oxsdb on the todo schema with its file in `dir/data`.
fn start_todo(dir: &Path, extra: &[&str]) -> Oxsdb {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.push(format!("--data-dir={}", dir.join("data").display()));
    args.push(arg(&todo_schema()));
    Oxsdb::start(&args, dir, None)
}

fn todo_db(dir: &Path) -> PathBuf {
    dir.join("data").join("todo.db")
}

/// The names of every List row, sorted, read over a raw connection.
fn list_names(addr: &str) -> Vec<String> {
    let mut c = Rpc::connect_retry(addr, T);
    let r = c
        .transact(
            json!(["todo", {"op": "select", "table": "List", "where": [], "columns": ["name"]}]),
            T,
        )
        .expect("select");
    let mut names: Vec<String> = r[0]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("select failed: {r}"))
        .iter()
        .map(|row| row["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

/// The List names in a todo file, read by `ovsdb-tool query`.
fn tool_list_names(file: &Path) -> Vec<String> {
    let out = ovsdb_tool(&[
        "query".to_string(),
        arg(file),
        json!(["todo", {"op": "select", "table": "List", "where": [], "columns": ["name"]}])
            .to_string(),
    ]);
    let v: Value = serde_json::from_str(out.trim()).expect("ovsdb-tool query JSON");
    let mut names: Vec<String> = v[0]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("ovsdb-tool query: {out}"))
        .iter()
        .map(|row| row["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

fn insert_list(name: &str, items: &[(&str, &str)]) -> Value {
    let mut ops = vec![json!("todo")];
    let mut refs = Vec::new();
    for (i, (d, s)) in items.iter().enumerate() {
        let n = format!("i{i}");
        ops.push(json!({"op": "insert", "table": "Item",
            "row": {"description": d, "status": s}, "uuid-name": n}));
        refs.push(json!(["named-uuid", n]));
    }
    ops.push(json!({"op": "insert", "table": "List",
        "row": {"name": name, "items": ["set", refs]}}));
    Value::Array(ops)
}

// ---------------------------------------------------------------------------
// 1. Restart with a Python IDL connected.

/// The Python IDL client: syncs, waits for the test's signal files, checks
/// that it reconnected and sees the expected contents, commits.
const IDL_SCRIPT: &str = r#"
import json, os, sys, time
import ovs.db.idl, ovs.poller, ovs.vlog

remote, schema, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
helper = ovs.db.idl.SchemaHelper(location=schema)
helper.register_all()
idl = ovs.db.idl.Idl(remote, helper)
session = idl._session

def view():
    lists = []
    for row in idl.tables["List"].rows.values():
        lists.append([row.name, sorted([i.description, i.status] for i in row.items)])
    lists.sort()
    items = sorted([i.description, i.status] for i in idl.tables["Item"].rows.values())
    return {"lists": lists, "items": items}

def load(name):
    with open(os.path.join(workdir, name)) as f:
        return json.load(f)

def out(step, **kw):
    kw["step"] = step
    print(json.dumps(kw, sort_keys=True), flush=True)

disconnects = 0
was_connected = False

def spin(pred, what, timeout=40.0):
    global disconnects, was_connected
    deadline = time.time() + timeout
    while True:
        idl.run()
        c = session.is_connected()
        if was_connected and not c:
            disconnects += 1
        was_connected = c
        if pred():
            return
        if time.time() > deadline:
            out("timeout", what=what, view=view(), connected=c, disconnects=disconnects)
            sys.exit(2)
        poller = ovs.poller.Poller()
        idl.wait(poller)
        poller.timer_wait(20)
        poller.block()

expected = load("expected1.json")
spin(lambda: idl.has_ever_connected() and view() == expected, "initial sync")
seqno = session.get_seqno()
out("synced", view=view())

# The test restarts the server, then writes expected2.json and creates "go".
spin(lambda: os.path.exists(os.path.join(workdir, "go")), "go signal", timeout=120.0)
expected = load("expected2.json")
spin(lambda: session.is_connected() and session.get_seqno() >= seqno + 2 and view() == expected,
     "resync after restart")
out("resynced", view=view(), disconnects=disconnects, seqno_delta=session.get_seqno() - seqno)

txn = ovs.db.idl.Transaction(idl)
l = txn.insert(idl.tables["List"])
l.name = "from-idl"
i = txn.insert(idl.tables["Item"])
i.description = "committed by the IDL after the restart"
i.status = "doing"
l.items = [i]
status = txn.commit_block()
out("commit", status=status, error=txn.get_error() if status == txn.ERROR else None)
"#;

/// What the IDL script's `view()` computes, from a server's rows.
fn idl_view(addr: &str) -> Value {
    let mut c = Rpc::connect_retry(addr, T);
    let r = c
        .transact(
            json!(["todo",
                {"op": "select", "table": "List", "where": []},
                {"op": "select", "table": "Item", "where": []}]),
            T,
        )
        .expect("select");
    let mut items: BTreeMap<String, (String, String)> = BTreeMap::new();
    for row in r[1]["rows"].as_array().expect("Item rows") {
        items.insert(
            row["_uuid"][1].as_str().unwrap().to_string(),
            (
                row["description"].as_str().unwrap().to_string(),
                row["status"].as_str().unwrap().to_string(),
            ),
        );
    }
    let refs = |v: &Value| -> Vec<String> {
        if v[0] == "uuid" {
            vec![v[1].as_str().unwrap().to_string()]
        } else {
            v[1].as_array()
                .unwrap()
                .iter()
                .map(|u| u[1].as_str().unwrap().to_string())
                .collect()
        }
    };
    let mut lists: Vec<(String, Vec<(String, String)>)> = r[0]["rows"]
        .as_array()
        .expect("List rows")
        .iter()
        .map(|row| {
            let mut its: Vec<(String, String)> = refs(&row["items"])
                .iter()
                .map(|u| items[u].clone())
                .collect();
            its.sort();
            (row["name"].as_str().unwrap().to_string(), its)
        })
        .collect();
    lists.sort();
    let mut all: Vec<(String, String)> = items.into_values().collect();
    all.sort();
    let pair = |(a, b): &(String, String)| json!([a, b]);
    json!({
        "lists": lists.iter().map(|(n, its)| json!([n, its.iter().map(pair).collect::<Vec<_>>()])).collect::<Vec<_>>(),
        "items": all.iter().map(pair).collect::<Vec<_>>(),
    })
}

/// A child process whose stdout lines arrive on a channel; killed on drop.
struct LineChild {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl LineChild {
    fn next_line(&mut self, timeout: Duration) -> Value {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")),
            Err(e) => panic!(
                "no output from the Python IDL client within {timeout:?} ({e}); stderr:\n{}",
                fs::read_to_string(&self.stderr).unwrap_or_default()
            ),
        }
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require_python_idl() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import ovs.db.idl"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{PYTHON} with the ovs.db.idl module is required: run `apt-get install python3-openvswitch`"
    );
}

#[test]
fn restart_keeps_rows_and_the_python_idl_reconnects() {
    require_python_idl();
    let dir = tempdir("oxsdb-durable-restart-");
    let mut ox = start_todo(dir.path(), &[]);
    let remote = ox.tcp();

    // Rows from ovsdb-client: inserts, a mutation, an update, a delete (its
    // Items are garbage collected), and a comment.
    client_transact(
        &remote,
        &insert_list("groceries", &[("milk", "todo"), ("eggs", "doing")]),
    );
    client_transact(&remote, &insert_list("chores", &[("dishes", "done")]));
    client_transact(&remote, &insert_list("doomed", &[("gone", "todo")]));
    client_transact(&remote, &insert_list("empty", &[]));
    client_transact(
        &remote,
        &json!(["todo",
            {"op": "insert", "table": "Item", "row": {"description": "bread", "status": "todo"}, "uuid-name": "b"},
            {"op": "mutate", "table": "List", "where": [["name", "==", "groceries"]],
             "mutations": [["items", "insert", ["set", [["named-uuid", "b"]]]]]},
            {"op": "update", "table": "Item", "where": [["description", "==", "milk"]], "row": {"status": "done"}},
            {"op": "comment", "comment": "bread and milk"}]),
    );
    client_transact(
        &remote,
        &json!(["todo", {"op": "delete", "table": "List", "where": [["name", "==", "doomed"]]}]),
    );

    let expected1 = idl_view(&ox.addr());
    assert_eq!(
        expected1["lists"].as_array().unwrap().len(),
        3,
        "{expected1}"
    );
    assert_eq!(
        expected1["items"].as_array().unwrap().len(),
        4,
        "{expected1}"
    );
    fs::write(dir.path().join("expected1.json"), expected1.to_string()).unwrap();

    let stderr = dir.path().join("idl.stderr");
    let mut child = Command::new(PYTHON)
        .args([
            "-c",
            IDL_SCRIPT,
            &remote,
            &arg(&todo_schema()),
            &arg(dir.path()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start python3");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut idl = LineChild {
        child,
        lines: rx,
        stderr,
    };
    let synced = idl.next_line(Duration::from_secs(60));
    assert_eq!(synced["step"], "synced", "{synced}");

    let dump_before = client_dump(&remote, "todo");
    ox.stop();
    ox.start_again();
    let dump_after = client_dump(&remote, "todo");
    assert_eq!(
        dump_before, dump_after,
        "ovsdb-client dump differs after restart"
    );
    assert_eq!(idl_view(&ox.addr()), expected1);

    // A row written after the restart must reach the IDL too.
    client_transact(&remote, &insert_list("after-restart", &[("new", "todo")]));
    let expected2 = idl_view(&ox.addr());
    fs::write(dir.path().join("expected2.json"), expected2.to_string()).unwrap();
    fs::write(dir.path().join("go"), "").unwrap();

    let resynced = idl.next_line(Duration::from_secs(60));
    assert_eq!(
        resynced["step"],
        "resynced",
        "{resynced}\n{}",
        ox.all_stderr()
    );
    assert!(
        resynced["seqno_delta"].as_u64().unwrap() >= 2,
        "the IDL did not reconnect: {resynced}"
    );
    let commit = idl.next_line(Duration::from_secs(60));
    assert_eq!(commit["step"], "commit", "{commit}");
    assert_eq!(
        commit["status"], "success",
        "IDL commit after restart: {commit}"
    );

    // The IDL's commit survives another restart.
    ox.stop();
    ox.start_again();
    let names = list_names(&ox.addr());
    assert_eq!(
        names,
        ["after-restart", "chores", "empty", "from-idl", "groceries"],
        "{}",
        ox.all_stderr()
    );
    ox.stop();
    assert_eq!(tool_list_names(&todo_db(dir.path())), names);
}

// ---------------------------------------------------------------------------
// 2. kill -9 during a stream of transactions.

fn kill9_rounds(extra: &[&str], label: &str) {
    let dir = tempdir("oxsdb-durable-kill9-");
    let mut ox = start_todo(dir.path(), extra);
    let mut rng = Rng::from_env_or_clock(label);
    let mut acked_all: BTreeSet<String> = BTreeSet::new();
    let mut sent_all: BTreeSet<String> = BTreeSet::new();
    for round in 0..3 {
        let addr = ox.addr();
        let acked_count = Arc::new(AtomicUsize::new(0));
        let count = acked_count.clone();
        let writer = std::thread::spawn(move || {
            let mut c = Rpc::connect(&addr).expect("connect");
            let (mut acked, mut sent) = (Vec::new(), Vec::new());
            for i in 0..1_000_000u64 {
                let name = format!("r{round}-{i}");
                sent.push(name.clone());
                let txn = insert_list(&name, &[(&format!("item of {name}"), "todo")]);
                match c.transact(txn, T) {
                    Ok(r) if txn_ok(&r) => {
                        acked.push(name);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => panic!("insert {name} failed: {r}"),
                    Err(_) => break, // the server died
                }
            }
            (acked, sent)
        });
        // Let some inserts through, then kill at a random moment.
        let deadline = Instant::now() + T;
        while acked_count.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < deadline,
                "no insert acknowledged\n{}",
                ox.all_stderr()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let delay = rng.range(20, 600);
        std::thread::sleep(Duration::from_millis(delay));
        ox.kill9();
        let (acked, sent) = writer.join().expect("writer thread");
        eprintln!(
            "{label} round {round}: killed after {delay} ms, {} acknowledged, {} sent",
            acked.len(),
            sent.len()
        );
        acked_all.extend(acked.iter().cloned());
        sent_all.extend(sent.iter().cloned());

        ox.start_again();
        let present: BTreeSet<String> = list_names(&ox.addr()).into_iter().collect();
        let lost: Vec<&String> = acked_all.difference(&present).collect();
        assert!(
            lost.is_empty(),
            "{label} round {round}: acknowledged inserts lost after kill -9: {lost:?}\n{}",
            ox.all_stderr()
        );
        let unknown: Vec<&String> = present.difference(&sent_all).collect();
        assert!(unknown.is_empty(), "rows nobody sent: {unknown:?}");
        // At most the one in-flight insert of this round is there unacknowledged.
        let extra: Vec<String> = present.difference(&acked_all).cloned().collect();
        assert!(
            extra.len() <= 1,
            "{label}: unacknowledged rows present: {extra:?}"
        );
        eprintln!("{label} round {round}: in-flight insert present after restart: {extra:?}");
        // Served once, it must stay.
        acked_all.extend(extra);
        // Every List still has its Item (the transaction was whole).
        let view = idl_view(&ox.addr());
        for l in view["lists"].as_array().unwrap() {
            assert_eq!(
                l[1].as_array().unwrap().len(),
                1,
                "a partial transaction: {l}"
            );
        }
    }
    ox.stop();
    if extra.iter().any(|a| a.starts_with("--compact-min-size")) {
        assert!(
            ox.all_stderr().contains("compacted database file"),
            "{label}: no compaction happened\n{}",
            ox.all_stderr()
        );
    }
    let names: BTreeSet<String> = tool_list_names(&todo_db(dir.path())).into_iter().collect();
    assert_eq!(
        names, acked_all,
        "ovsdb-tool reads the file after the kills"
    );
}

#[test]
fn kill9_during_inserts_loses_no_acknowledged_insert() {
    kill9_rounds(&[], "kill -9");
}

#[test]
fn kill9_during_inserts_loses_no_acknowledged_insert_with_fsync() {
    kill9_rounds(&["--fsync"], "kill -9 (--fsync)");
}

/// With compaction due every few hundred inserts, the kill may also land
/// in the middle of a compaction (the `.tmp` file is then left behind).
#[test]
fn kill9_during_inserts_and_compactions_loses_no_acknowledged_insert() {
    kill9_rounds(
        &["--compact-min-size=20000", "--compact-min-interval=0"],
        "kill -9 (compacting)",
    );
}

// ---------------------------------------------------------------------------
// 3. A damaged tail.

/// Five Lists, one transaction each; the server is stopped. Returns the
/// file and its record bounds (schema + 5).
fn five_lists(dir: &Path) -> (Oxsdb, PathBuf, Vec<(u64, u64)>) {
    let mut ox = start_todo(dir, &[]);
    for i in 0..5 {
        client_transact(
            &ox.tcp(),
            &insert_list(&format!("l{i}"), &[(&format!("d{i}"), "todo")]),
        );
    }
    ox.stop();
    let file = todo_db(dir);
    let bounds = record_bounds(&file);
    assert_eq!(bounds.len(), 6, "schema + 5 transactions: {bounds:?}");
    assert_eq!(bounds[5].1, fs::metadata(&file).unwrap().len());
    (ox, file, bounds)
}

fn damaged_tail(damage: impl FnOnce(&Path, (u64, u64)), what: &str) {
    let dir = tempdir("oxsdb-durable-damage-");
    let (mut ox, file, bounds) = five_lists(dir.path());
    let last = bounds[5];
    let good_end = last.0;
    damage(&file, last);

    ox.start_again();
    let log = ox.stderr();
    assert_eq!(
        list_names(&ox.addr()),
        ["l0", "l1", "l2", "l3"],
        "{what}: the good prefix is served\n{log}"
    );
    assert_eq!(
        fs::metadata(&file).unwrap().len(),
        good_end,
        "{what}: the file is truncated after the last good record"
    );
    assert_eq!(show_log_records(&file), 5, "{what}: ovsdb-tool show-log");

    client_transact(&ox.tcp(), &insert_list("after", &[("new", "doing")]));
    assert_eq!(record_bounds(&file).len(), 6);
    // Readable while oxsdb runs, and after it stopped.
    assert_eq!(tool_list_names(&file), ["after", "l0", "l1", "l2", "l3"]);
    ox.stop();
    assert_eq!(show_log_records(&file), 6, "{what}: ovsdb-tool show-log");
    let shown = ovsdb_tool(&["show-log".to_string(), "-m".to_string(), arg(&file)]);
    assert!(shown.contains("\"after\""), "{shown}");
    assert_eq!(tool_list_names(&file), ["after", "l0", "l1", "l2", "l3"]);
    // And oxsdb starts on it again without complaint.
    ox.start_again();
    assert!(!ox.stderr().contains("dropping"), "{}", ox.stderr());
    assert_eq!(list_names(&ox.addr()), ["after", "l0", "l1", "l2", "l3"]);
    ox.stop();
    // Checked last, so that everything above is checked whatever the log says.
    assert!(
        log.contains("dropping") && log.contains(&format!("offset {good_end}")),
        "{what}: the log of the start on the damaged file says what was dropped \
         (from offset {good_end}):\n{log}"
    );
}

#[test]
fn damaged_tail_flipped_byte_in_last_record() {
    damaged_tail(
        |file, (start, end)| {
            let mut bytes = fs::read(file).unwrap();
            // A byte in the middle of the body: the SHA-1 no longer matches.
            let header = bytes[start as usize..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap() as u64;
            let body_start = start + header + 1;
            let at = (body_start + (end - body_start) / 2) as usize;
            bytes[at] ^= 0x01;
            fs::write(file, bytes).unwrap();
        },
        "flipped byte",
    );
}

#[test]
fn damaged_tail_last_record_cut_in_its_body() {
    damaged_tail(
        |file, (start, end)| {
            let f = fs::OpenOptions::new().write(true).open(file).unwrap();
            f.set_len(end - (end - start) / 3).unwrap();
        },
        "cut in the body",
    );
}

#[test]
fn damaged_tail_last_record_cut_in_its_header() {
    damaged_tail(
        |file, (start, _)| {
            let f = fs::OpenOptions::new().write(true).open(file).unwrap();
            f.set_len(start + 15).unwrap();
        },
        "cut in the header",
    );
}

// ---------------------------------------------------------------------------
// 4. Interoperability with ovsdb-tool and ovsdb-server.

fn alltypes_schema() -> PathBuf {
    manifest_path("examples/alltypes.ovsschema")
}

/// Transactions on alltypes (no ephemeral columns: those are not in files,
/// so a running server and one reading the file would differ): inserts,
/// scalar and optional updates, set and map mutations, strong and weak
/// references, garbage collection, deletes, comments, reals, escapes.
fn workload_a() -> Vec<Value> {
    vec![
        json!(["alltypes",
            {"op": "insert", "table": "Scalars", "row": {"i": 1, "s": "one", "r": 0.5, "b": true,
              "iset": ["set", [1, 2, 3]], "sset": ["set", ["x", "y"]], "rset": ["set", [1.25, -3.0]]},
             "uuid-name": "s1"},
            {"op": "insert", "table": "Scalars", "row": {"i": 2, "s": "two", "ou": ["named-uuid", "s1"]}},
            {"op": "insert", "table": "Maps", "row": {"ss": ["map", [["a", "1"], ["b", "2"]]],
              "req_map": ["map", [["k", 1]]], "ir": ["map", [[1, 1.5], [2, 2.0]]]}},
            {"op": "comment", "comment": "first: two scalars and a map"}]),
        json!(["alltypes", {"op": "mutate", "table": "Scalars", "where": [["i", "==", 1]],
            "mutations": [["iset", "insert", ["set", [4, 5]]], ["iset", "delete", ["set", [1]]],
                          ["sset", "insert", "z"], ["i", "+=", 10]]}]),
        json!(["alltypes", {"op": "mutate", "table": "Maps", "where": [],
            "mutations": [["ss", "insert", ["map", [["c", "3"], ["a", "ignored"]]]],
                          ["ss", "delete", ["set", ["b"]]], ["req_map", "insert", ["map", [["m", 7]]]],
                          ["ir", "delete", ["map", [[1, 1.5]]]]]},
            {"op": "comment", "comment": "map \"mutations\"\nwith escapes \\ é"}]),
        json!(["alltypes",
            {"op": "insert", "table": "Target", "row": {"name": "t1", "n": 1}, "uuid-name": "t1"},
            {"op": "insert", "table": "Target", "row": {"name": "t2", "n": 2}, "uuid-name": "t2"},
            {"op": "insert", "table": "Child", "row": {"name": "c1", "value": 1, "friend": ["named-uuid", "t1"]}, "uuid-name": "c1"},
            {"op": "insert", "table": "Child", "row": {"name": "c2", "value": 2}, "uuid-name": "c2"},
            {"op": "insert", "table": "Parent", "row": {"name": "p",
              "children": ["set", [["named-uuid", "c1"], ["named-uuid", "c2"]]],
              "targets": ["set", [["named-uuid", "t1"], ["named-uuid", "t2"]]],
              "weak_map": ["map", [["first", ["named-uuid", "t1"]]]],
              "child_map": ["map", [["one", ["named-uuid", "c1"]]]]}}]),
        // Deleting a Target removes the weak references to it.
        json!(["alltypes", {"op": "delete", "table": "Target", "where": [["name", "==", "t1"]]},
            {"op": "comment", "comment": "weak refs go"}]),
        // Emptying the strong set garbage-collects c2 (c1 is still in child_map).
        json!(["alltypes", {"op": "update", "table": "Parent", "where": [],
            "row": {"children": ["set", []]}}]),
        json!(["alltypes", {"op": "update", "table": "Scalars", "where": [["i", "==", 2]],
            "row": {"ou": ["set", []], "os": "opt", "or": 2.75, "s": "tab\tnew\nline \u{1} \"q\""}}]),
        json!(["alltypes", {"op": "delete", "table": "Scalars", "where": [["i", "==", 11]]},
            {"op": "insert", "table": "Indexed", "row": {"a": 1, "b": "b", "c": "c", "d": 1e-3}},
            {"op": "commit", "durable": true}]),
    ]
}

/// More transactions, for a file that already has workload_a's rows.
fn workload_b() -> Vec<Value> {
    vec![
        json!(["alltypes", {"op": "mutate", "table": "Maps", "where": [],
            "mutations": [["ss", "insert", ["map", [["d", "4"]]]], ["ss", "delete", ["map", [["a", "1"]]]]]},
            {"op": "comment", "comment": "second writer"}]),
        json!(["alltypes", {"op": "insert", "table": "Scalars", "row": {"i": 99, "s": "late",
            "uset": ["set", [["uuid", "0a7a1b7e-0000-4000-8000-000000000001"]]]}}]),
        json!(["alltypes", {"op": "update", "table": "Parent", "where": [], "row": {"name": "p2"}},
            {"op": "delete", "table": "Indexed", "where": []}]),
        json!(["alltypes", {"op": "mutate", "table": "Scalars", "where": [["i", "==", 2]],
            "mutations": [["rset", "insert", ["set", [0.1, 0.2]]], ["i", "*=", 3]]}]),
    ]
}

/// Every row of every table (all columns), normalised: rows by `_uuid`,
/// `_version` dropped, numbers as f64, set and map elements sorted.
fn normalized_select(result: &Value) -> Value {
    fn norm(v: &Value) -> Value {
        match v {
            Value::Number(n) => json!(n.as_f64().unwrap()),
            Value::Array(a) if a.len() == 2 && (a[0] == "set" || a[0] == "map") => {
                let mut els: Vec<Value> = a[1].as_array().unwrap().iter().map(norm).collect();
                els.sort_by_key(|e| e.to_string());
                json!([a[0], els])
            }
            Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .filter(|(k, _)| *k != "_version")
                    .map(|(k, v)| (k.clone(), norm(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let tables = result.as_array().expect("result array");
    Value::Array(
        tables
            .iter()
            .map(|t| {
                let mut rows: Vec<Value> = t["rows"]
                    .as_array()
                    .unwrap_or_else(|| panic!("select failed: {t}"))
                    .iter()
                    .map(norm)
                    .collect();
                rows.sort_by_key(|r| r["_uuid"].to_string());
                Value::Array(rows)
            })
            .collect(),
    )
}

fn select_all(schema: &Path) -> Value {
    let s: Value = serde_json::from_str(&fs::read_to_string(schema).unwrap()).unwrap();
    let mut ops = vec![s["name"].clone()];
    for t in s["tables"].as_object().unwrap().keys() {
        ops.push(json!({"op": "select", "table": t, "where": []}));
    }
    Value::Array(ops)
}

fn run_workload(remote: &str, txns: &[Value]) {
    for t in txns {
        client_transact(remote, t);
    }
}

/// ovsdb-server logged no warning or error (but the one about SIGTERM).
fn assert_no_complaints(reference: &ReferenceServer) {
    let log = reference.log();
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| (l.contains("|ERR|") || l.contains("|WARN|")) && !l.contains("|fatal_signal|"))
        .collect();
    assert!(bad.is_empty(), "ovsdb-server complained:\n{log}");
}

#[test]
fn file_written_by_oxsdb_is_read_by_ovsdb_tool_and_ovsdb_server() {
    let dir = tempdir("oxsdb-durable-interop-a-");
    let schema = alltypes_schema();
    let mut ox = Oxsdb::start(
        &[
            format!("--data-dir={}", dir.path().join("data").display()),
            arg(&schema),
        ],
        dir.path(),
        None,
    );
    run_workload(&ox.tcp(), &workload_a());
    let ox_dump = client_dump(&ox.tcp(), "alltypes");
    let query = select_all(&schema);
    let ox_rows = normalized_select(
        &Rpc::connect_retry(&ox.addr(), T)
            .transact(query.clone(), T)
            .unwrap(),
    );
    ox.stop();
    let file = dir.path().join("data/alltypes.db");

    // ovsdb-tool show-log -m: every record, with the comments.
    let shown = ovsdb_tool(&["show-log".to_string(), "-m".to_string(), arg(&file)]);
    let records = shown.lines().filter(|l| l.starts_with("record ")).count();
    assert_eq!(records, 1 + workload_a().len(), "show-log -m:\n{shown}");
    for c in ["first: two scalars and a map", "weak refs go"] {
        assert!(
            shown.contains(c),
            "comment {c:?} missing from show-log:\n{shown}"
        );
    }
    // ovsdb-tool query: the same rows as oxsdb served.
    let tool_out = ovsdb_tool(&["query".to_string(), arg(&file), query.to_string()]);
    let tool_rows = normalized_select(&serde_json::from_str(tool_out.trim()).unwrap());
    assert_eq!(tool_rows, ox_rows, "ovsdb-tool query vs oxsdb");

    // ovsdb-server serves the file: the same dump.
    let mut reference = ReferenceServer::on_files(std::slice::from_ref(&file), dir.path());
    let ref_dump = client_dump(&reference.tcp(), "alltypes");
    assert_eq!(ref_dump, ox_dump, "ovsdb-server's dump of oxsdb's file");
    let ref_rows = normalized_select(
        &Rpc::connect_retry(&reference.addr(), T)
            .transact(query, T)
            .unwrap(),
    );
    assert_eq!(ref_rows, ox_rows);
    reference.stop();
    assert_no_complaints(&reference);
}

#[test]
fn file_written_by_ovsdb_server_is_served_and_extended_by_oxsdb() {
    let dir = tempdir("oxsdb-durable-interop-b-");
    let schema = alltypes_schema();
    let file = dir.path().join("alltypes.db");
    ovsdb_tool(&["create".to_string(), arg(&file), arg(&schema)]);
    let query = select_all(&schema);

    let mut reference = ReferenceServer::on_files(std::slice::from_ref(&file), dir.path());
    run_workload(&reference.tcp(), &workload_a());
    let ref_dump = client_dump(&reference.tcp(), "alltypes");
    let ref_rows = normalized_select(
        &Rpc::connect_retry(&reference.addr(), T)
            .transact(query.clone(), T)
            .unwrap(),
    );
    reference.stop();

    // oxsdb serves the file in place.
    let mut ox = Oxsdb::start(&[arg(&file)], dir.path(), None);
    assert_eq!(
        client_dump(&ox.tcp(), "alltypes"),
        ref_dump,
        "oxsdb's dump of ovsdb-server's file"
    );
    let ox_rows = normalized_select(
        &Rpc::connect_retry(&ox.addr(), T)
            .transact(query.clone(), T)
            .unwrap(),
    );
    assert_eq!(ox_rows, ref_rows);
    let records_before = show_log_records(&file);
    // ... and appends to it.
    run_workload(&ox.tcp(), &workload_b());
    let ox_dump = client_dump(&ox.tcp(), "alltypes");
    assert_ne!(ox_dump, ref_dump);
    let ox_rows = normalized_select(
        &Rpc::connect_retry(&ox.addr(), T)
            .transact(query.clone(), T)
            .unwrap(),
    );
    ox.stop();
    assert_eq!(show_log_records(&file), records_before + workload_b().len());
    let shown = ovsdb_tool(&["show-log".to_string(), "-m".to_string(), arg(&file)]);
    assert!(shown.contains("second writer"), "{shown}");

    // ovsdb-server reads it again.
    let mut reference = ReferenceServer::on_files(std::slice::from_ref(&file), dir.path());
    assert_eq!(
        client_dump(&reference.tcp(), "alltypes"),
        ox_dump,
        "ovsdb-server after oxsdb appended"
    );
    let again = normalized_select(
        &Rpc::connect_retry(&reference.addr(), T)
            .transact(query, T)
            .unwrap(),
    );
    assert_eq!(again, ox_rows);
    // ... and can still write to it.
    client_transact(
        &reference.tcp(),
        &json!(["alltypes", {"op": "insert", "table": "Scalars", "row": {"i": 1000}}]),
    );
    reference.stop();
    assert_no_complaints(&reference);
    let mut ox = Oxsdb::start(&[arg(&file)], dir.path(), None);
    let r = Rpc::connect_retry(&ox.addr(), T)
        .transact(
            json!(["alltypes", {"op": "select", "table": "Scalars", "where": [["i", "==", 1000]]}]),
            T,
        )
        .unwrap();
    assert_eq!(r[0]["rows"].as_array().unwrap().len(), 1, "{r}");
    ox.stop();
}

// ---------------------------------------------------------------------------
// 5. Compaction under load.

/// A monitor_cond client's view of the List table: every insert and delete
/// it was told about, by name.
#[derive(Default)]
struct MonitorLog {
    inserted: Vec<String>,
    deleted: Vec<String>,
    live: BTreeMap<String, String>,
    notifications: usize,
}

impl MonitorLog {
    fn apply(&mut self, table_updates: &Value) {
        let Some(rows) = table_updates.get("List").and_then(Value::as_object) else {
            return;
        };
        for (uuid, change) in rows {
            if let Some(new) = change.get("insert").or_else(|| change.get("initial")) {
                let name = new["name"].as_str().unwrap_or("").to_string();
                self.inserted.push(name.clone());
                self.live.insert(uuid.clone(), name);
            } else if change.get("delete").is_some() {
                let name = self.live.remove(uuid).unwrap_or_default();
                self.deleted.push(name);
            } else if let Some(m) = change.get("modify") {
                if let Some(n) = m.get("name").and_then(Value::as_str) {
                    self.live.insert(uuid.clone(), n.to_string());
                }
            }
        }
    }
}

#[test]
fn compaction_under_load_loses_nothing() {
    const N: usize = 3000;
    const KEEP: usize = 20;
    let dir = tempdir("oxsdb-durable-compact-");
    let mut ox = start_todo(
        dir.path(),
        &["--compact-min-size=100000", "--compact-min-interval=0"],
    );
    let file = todo_db(dir.path());
    let addr = ox.addr();

    // The monitor.
    let mut mon = Rpc::connect_retry(&addr, T);
    let reply = mon
        .call(
            "monitor_cond",
            json!(["todo", "mon", {"List": [{"columns": ["name"]}]}]),
            T,
        )
        .expect("monitor_cond");
    assert!(reply["error"].is_null(), "{reply}");
    let mut log = MonitorLog::default();
    log.apply(&reply["result"]);
    let last_name = format!("l{}", N - 1);
    let monitor = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(240);
        while !log.inserted.contains(&last_name) {
            assert!(
                Instant::now() < deadline,
                "the monitor did not see {last_name}"
            );
            match mon.next_message(Duration::from_millis(500)) {
                Ok(Some(m)) if m["method"] == "update2" => {
                    log.notifications += 1;
                    log.apply(&m["params"][1]);
                }
                Ok(_) => {}
                Err(e) => panic!("monitor connection: {e}"),
            }
        }
        log
    });

    // The file size watcher.
    let stop = Arc::new(AtomicBool::new(false));
    let shrinks = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, shrinks, file) = (stop.clone(), shrinks.clone(), file.clone());
        std::thread::spawn(move || {
            let mut last = 0u64;
            let mut max = 0u64;
            while !stop.load(Ordering::SeqCst) {
                if let Ok(m) = fs::metadata(&file) {
                    if m.len() < last {
                        shrinks.fetch_add(1, Ordering::SeqCst);
                    }
                    last = m.len();
                    max = max.max(last);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            max
        })
    };

    // The writer: each transaction inserts l{k} (with an Item) and deletes
    // l{k-KEEP} (its Item is garbage collected), so the file grows and the
    // database doesn't.
    let started = Instant::now();
    let mut w = Rpc::connect_retry(&addr, T);
    let pad = "x".repeat(100);
    for k in 0..N {
        let mut txn = insert_list(&format!("l{k}"), &[(&format!("item {k} {pad}"), "todo")]);
        if k >= KEEP {
            txn.as_array_mut()
                .unwrap()
                .push(json!({"op": "delete", "table": "List",
                "where": [["name", "==", format!("l{}", k - KEEP)]]}));
        }
        let r = w.transact(txn, T).expect("writer transact");
        assert!(txn_ok(&r), "txn {k}: {r}");
        if k >= KEEP {
            assert_eq!(
                r.as_array().unwrap().last().unwrap()["count"],
                1,
                "txn {k}: {r}"
            );
        }
    }
    let elapsed = started.elapsed();
    let log = monitor.join().expect("monitor thread");
    stop.store(true, Ordering::SeqCst);
    let max_size = watcher.join().unwrap();
    let final_size = fs::metadata(&file).unwrap().len();
    let compactions = ox.stderr().matches("compacted database file").count();
    eprintln!(
        "{N} transactions in {elapsed:?}; file max {max_size} bytes, final {final_size}; \
         {} shrinks seen, {compactions} compactions logged; {} monitor notifications",
        shrinks.load(Ordering::SeqCst),
        log.notifications
    );
    assert!(
        shrinks.load(Ordering::SeqCst) >= 1 && compactions >= 1,
        "no compaction happened (file max {max_size}, final {final_size})\n{}",
        ox.stderr()
    );

    let expected: Vec<String> = {
        let mut v: Vec<String> = (N - KEEP..N).map(|k| format!("l{k}")).collect();
        v.sort();
        v
    };
    // The monitor saw every change, in order.
    let all: Vec<String> = (0..N).map(|k| format!("l{k}")).collect();
    assert_eq!(log.inserted, all, "the monitor's inserts");
    let deleted: Vec<String> = (0..N - KEEP).map(|k| format!("l{k}")).collect();
    assert_eq!(log.deleted, deleted, "the monitor's deletes");
    let mut live: Vec<String> = log.live.values().cloned().collect();
    live.sort();
    assert_eq!(live, expected);
    // The server, after a restart, and ovsdb-tool agree.
    assert_eq!(list_names(&addr), expected);
    let view = idl_view(&addr);
    assert_eq!(
        view["items"].as_array().unwrap().len(),
        KEEP,
        "Items garbage collected"
    );
    ox.stop();
    assert_eq!(tool_list_names(&file), expected);
    let records = show_log_records(&file);
    assert!(records < N / 2, "the file was compacted: {records} records");
    ox.start_again();
    assert_eq!(list_names(&addr), expected);
    assert_eq!(idl_view(&addr), view);
    ox.stop();
}

// ---------------------------------------------------------------------------
// 6. ovs-vsctl on conf.db.

fn vsctl(remote: &str, args: &[&str]) -> String {
    let db = format!("--db={remote}");
    run_ok(
        Command::new(tool("ovs-vsctl"))
            .args(["--no-wait", "--timeout=20", db.as_str()])
            .args(args),
        TOOL_TIMEOUT,
    )
}

#[test]
fn ovs_vsctl_on_a_conf_db_survives_restart() {
    require_file(Path::new(VSWITCH_SCHEMA));
    let dir = tempdir("oxsdb-durable-vsctl-");
    let conf = dir.path().join("conf.db");
    ovsdb_tool(&["create".to_string(), arg(&conf), VSWITCH_SCHEMA.to_string()]);
    let sock = dir.path().join("db.sock");
    let mut ox = Oxsdb::start(&[arg(&conf)], dir.path(), Some(sock.clone()));
    let remote = ox.unix_remote();

    vsctl(&remote, &["init"]);
    vsctl(&remote, &["add-br", "br0"]);
    vsctl(&remote, &["add-port", "br0", "p1"]);
    vsctl(&remote, &["set", "Port", "p1", "tag=42"]);
    vsctl(
        &remote,
        &["set", "Bridge", "br0", "external_ids:owner=durability"],
    );
    let bridges = vsctl(&remote, &["list", "Bridge"]);
    assert!(bridges.contains("name                : br0"), "{bridges}");
    assert!(bridges.contains("owner=durability"), "{bridges}");
    let ports = vsctl(&remote, &["list", "Port", "p1"]);
    assert!(ports.contains("tag                 : 42"), "{ports}");
    let show_before = vsctl(&remote, &["show"]);

    ox.stop();
    ox.start_again();
    assert_eq!(vsctl(&remote, &["list-br"]), "br0\n", "{}", ox.all_stderr());
    assert_eq!(vsctl(&remote, &["list-ports", "br0"]), "p1\n");
    assert_eq!(vsctl(&remote, &["get", "Port", "p1", "tag"]), "42\n");
    assert_eq!(
        vsctl(&remote, &["br-get-external-id", "br0", "owner"]),
        "durability\n"
    );
    assert_eq!(vsctl(&remote, &["show"]), show_before);
    // And it keeps working after the restart.
    vsctl(&remote, &["add-port", "br0", "p2"]);
    ox.stop();
    let out = ovsdb_tool(&[
        "query".to_string(),
        arg(&conf),
        json!(["Open_vSwitch", {"op": "select", "table": "Port", "where": [], "columns": ["name"]}])
            .to_string(),
    ]);
    for p in ["\"br0\"", "\"p1\"", "\"p2\""] {
        assert!(out.contains(p), "ovsdb-tool query of conf.db: {out}");
    }
}

// ---------------------------------------------------------------------------
// 7. Schema version mismatch.

#[test]
fn schema_version_mismatch_refuses_to_start() {
    let dir = tempdir("oxsdb-durable-version-");
    let mut ox = start_todo(dir.path(), &[]);
    client_transact(&ox.tcp(), &insert_list("kept", &[]));
    ox.stop();
    let file = todo_db(dir.path());
    let before = fs::read(&file).unwrap();

    let mut schema: Value =
        serde_json::from_str(&fs::read_to_string(todo_schema()).unwrap()).unwrap();
    schema["version"] = json!("2.0.0");
    let newer = dir.path().join("todo-2.ovsschema");
    fs::write(&newer, schema.to_string()).unwrap();
    let out = oxsdb_fails(&[
        format!("--data-dir={}", dir.path().join("data").display()),
        arg(&newer),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit status; stderr:\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("schema version 1.0.0 but version 2.0.0 was given"),
        "the message says so:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&arg(&file)),
        "names the file:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("listening"), "{}", out.stderr);
    assert_eq!(fs::read(&file).unwrap(), before, "the file is untouched");
    // The right schema still opens it.
    ox.start_again();
    assert_eq!(list_names(&ox.addr()), ["kept"]);
    ox.stop();
}

// ---------------------------------------------------------------------------
// 8. One server per database file.

/// Two processes appending to one file at their own offsets overwrite each
/// other's records: ovsdb-server (and ovsdb-tool) hold a lock,
/// `.<file>.~lock~` beside the file (fcntl), and refuse a file another
/// process holds. oxsdb must do the same, with the same lock file, so that
/// it also excludes (and is excluded by) ovsdb-server.
#[test]
fn a_database_file_is_served_by_one_process_at_a_time() {
    let dir = tempdir("oxsdb-durable-lock-");
    let args = [
        format!("--data-dir={}", dir.path().join("data").display()),
        arg(&todo_schema()),
    ];
    let mut a = Oxsdb::start(&args, dir.path(), None);
    client_transact(&a.tcp(), &insert_list("a1", &[]));
    let file = todo_db(dir.path());
    let mut failures = Vec::new();

    // A second oxsdb on the same file.
    match Oxsdb::try_start(&args, dir.path(), None) {
        Ok(mut b) => {
            // Show what it leads to: both acknowledge, the file is damaged.
            client_transact(&b.tcp(), &insert_list("b1-with-a-longer-name", &[]));
            client_transact(&a.tcp(), &insert_list("a2", &[]));
            b.kill9();
            let rc = run(
                Command::new(tool("ovsdb-tool")).args(["show-log".as_ref(), file.as_os_str()]),
                TOOL_TIMEOUT,
            );
            failures.push(format!(
                "a second oxsdb started on {} while another one served it; after one insert \
                 through each, `ovsdb-tool show-log` says: {}: {}",
                file.display(),
                rc.status,
                rc.stderr.trim()
            ));
        }
        Err((status, stderr)) => {
            assert_eq!(status.code(), Some(1), "{stderr}");
            assert!(stderr.contains(&arg(&file)), "names the file: {stderr}");
        }
    }

    // ovsdb-server on the file oxsdb serves.
    match ServerProcess::spawn(Kind::Reference, &[arg(&file)], &[], dir.path(), None) {
        Err((status, output)) => {
            assert!(!status.success(), "{output}");
            assert!(output.contains("failed to lock lockfile"), "{output}");
        }
        Ok(mut reference) => {
            reference.kill9();
            failures.push(format!(
                "ovsdb-server started on {} while oxsdb served it (oxsdb does not hold \
                 ovsdb-server's lock file .{}.~lock~)",
                file.display(),
                file.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    a.kill9();

    // oxsdb on a file ovsdb-server serves.
    let ref_file = dir.path().join("ref.db");
    ovsdb_tool(&["create".to_string(), arg(&ref_file), arg(&todo_schema())]);
    let mut reference = ReferenceServer::on_files(std::slice::from_ref(&ref_file), dir.path());
    match Oxsdb::try_start(&[arg(&ref_file)], dir.path(), None) {
        Ok(mut c) => {
            c.kill9();
            failures.push(format!(
                "oxsdb started on {} while ovsdb-server served it",
                ref_file.display()
            ));
        }
        Err((status, stderr)) => {
            assert_eq!(status.code(), Some(1), "{stderr}");
        }
    }
    reference.stop();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
