//! Failures under real etcd and real oxsdb processes:
//!
//! 1. `locks_pass_to_a_waiter_on_another_server_after_kill_9`: a lock held
//!    through server A passes to the waiter on server B once A is killed
//!    with SIGKILL (its lease expires); `steal` from a restarted A reaches B
//!    as `stolen`; `unlock` hands it back to B; `assert` follows ownership.
//!    Replies and notifications have ovsdb-server's shapes.
//! 2. `etcd_killed_and_restarted_under_a_writer_and_a_monitor`: the only
//!    etcd member is killed for ~4 s under a writer on A and a
//!    `monitor_cond_since` on B: nothing acknowledged is lost, nothing
//!    unacknowledged appears (but ambiguous replies), errors are clear, the
//!    monitor sees every row exactly once, `_Server` follows etcd.
//! 3. `three_member_etcd_survives_one_member_killed`: the leader of a
//!    three-member etcd (moved to the first endpoint) is killed under a
//!    writer and a monitor: no error later than 2 s after the kill (etcd's
//!    election at its default timings), the monitor sees no error and every
//!    row exactly once.
//! 4. `etcd_down_at_start_then_up`: oxsdb starts (and listens) while etcd
//!    is down, answers with a clear error at once, and serves once etcd is up.
//! 5. `undecodable_rows_written_into_etcd_make_servers_reload`: a foreign
//!    fenced commit with a row that is not JSON, a row of the wrong shape, a
//!    row of an unknown table and a key that is no row, written into etcd
//!    under a writer and a monitor: the servers log and reload, no
//!    transaction fails, the monitor stays exact, the valid rows are kept and
//!    a server started afterwards loads the database without the bad rows.
//!
//! Each test starts its own etcd (free loopback ports, temporary data),
//! prints a `FIGURES:` line with what it measured, and on failure the logs
//! of its oxsdb servers and etcd members. The tests run one at a time (they
//! are sensitive to CPU starvation: etcd elections, lease expiry).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::cluster::*;
use support::etcd::EtcdCluster;
use support::process::Oxsdb;
use support::rpc::Rpc;

/// The tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The longest a reply may take before the test calls it a hang: etcd's
/// request timeout in these tests is 2 s, a commit waits at most 5 s for the
/// watch to deliver it.
const REPLY_LIMIT: Duration = Duration::from_secs(20);

const ZERO_TXN_ID: &str = "00000000-0000-0000-0000-000000000000";

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("oxsdb-failures-")
        .tempdir()
        .expect("tempdir")
}

/// Prints, when the test panics, the end of every oxsdb stderr file of
/// `dir` and of every etcd log. Declare it after the etcd cluster, the
/// servers and the directory, so that it is dropped first.
struct LogsOnPanic {
    dir: PathBuf,
    etcd_logs: Vec<PathBuf>,
}

impl LogsOnPanic {
    fn new(dir: &Path, etcd: &EtcdCluster) -> LogsOnPanic {
        LogsOnPanic {
            dir: dir.to_path_buf(),
            etcd_logs: etcd
                .members
                .iter()
                .map(|m| m.dir.with_extension("log"))
                .collect(),
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

impl Drop for LogsOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "stderr"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        for f in files.iter().chain(&self.etcd_logs) {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            eprintln!(
                "===== {} (last 150 lines) =====\n{}",
                f.display(),
                tail(&text, 150)
            );
        }
    }
}

/// `n` servers of the test schema on `endpoints` (one prefix), each ready.
fn servers(endpoints: &[String], n: usize, dir: &Path, extra: &[&str]) -> Vec<Oxsdb> {
    let schema = write_schema(dir, "1.0.0");
    let prefix = unique_prefix();
    let v: Vec<Oxsdb> = (0..n)
        .map(|_| start_server(endpoints, &prefix, Some(&schema), extra, dir))
        .collect();
    for s in &v {
        wait_ready(s);
    }
    v
}

/// Like [`servers`], with oxsdb's default etcd timeouts.
fn servers_with_default_timeouts(endpoints: &[String], n: usize, dir: &Path) -> Vec<Oxsdb> {
    let schema = write_schema(dir, "1.0.0");
    let prefix = unique_prefix();
    let args = vec![
        "--store=etcd".to_string(),
        format!("--etcd-endpoints={}", endpoints.join(",")),
        format!("--etcd-prefix={prefix}"),
        "--service=clus".to_string(),
        schema.display().to_string(),
    ];
    let v: Vec<Oxsdb> = (0..n)
        .map(|_| Oxsdb::start_with_env(&args, &[("RUST_LOG", RUST_LOG)], dir))
        .collect();
    for s in &v {
        wait_ready(s);
    }
    v
}

/// The `Database` row of [`DB`] in the server's `_Server` database.
fn server_row(rpc: &mut Rpc) -> Value {
    let r = rpc
        .transact(
            json!(["_Server", {"op": "select", "table": "Database",
                   "where": [["name", "==", DB]]}]),
            REPLY_LIMIT,
        )
        .unwrap_or_else(|e| panic!("select from _Server: {e}"));
    let rows = r[0]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("_Server select: {r}"));
    assert_eq!(rows.len(), 1, "one Database row for {DB}: {r}");
    rows[0].clone()
}

/// What `_Server` says, briefly: `connected`, `leader`, `index`.
fn row_brief(row: &Value) -> String {
    format!(
        "connected={} leader={} index={}",
        row["connected"], row["leader"], row["index"]
    )
}

// ---------------------------------------------------------------------------
// 1. Locks.

/// Waits for the notification `{"method": method, "params": ["L"], "id": null}`
/// (anything else that arrives is kept); the time it took.
fn wait_lock_notification(rpc: &mut Rpc, method: &str, timeout: Duration) -> Option<Duration> {
    let began = Instant::now();
    let wanted = json!({"id": null, "method": method, "params": ["L"]});
    loop {
        if let Some(i) = rpc.notifications.iter().position(|n| *n == wanted) {
            rpc.notifications.remove(i);
            return Some(began.elapsed());
        }
        if let Some(n) = rpc
            .notifications
            .iter()
            .find(|n| n["method"] == method && **n != wanted)
        {
            panic!("`{method}` notification of the wrong shape: {n} (ovsdb-server sends {wanted})");
        }
        if began.elapsed() >= timeout {
            return None;
        }
        match rpc.next_message(Duration::from_millis(50)) {
            Ok(Some(m)) => rpc.notifications.push(m),
            Ok(None) => {}
            Err(e) => panic!("connection lost waiting for `{method}`: {e}"),
        }
    }
}

/// `lock`/`steal`/`unlock` "L": the `result` of a successful reply.
fn lock_call(rpc: &mut Rpc, method: &str) -> Value {
    let r = rpc
        .call(method, json!(["L"]), REPLY_LIMIT)
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    assert!(r["error"].is_null(), "{method} failed: {r}");
    r["result"].clone()
}

static ASSERT_KEYS: AtomicUsize = AtomicUsize::new(0);

/// `[assert lock L, insert an Entry]`: the result array.
fn assert_and_insert(rpc: &mut Rpc) -> Value {
    let key = format!("lock-{}", ASSERT_KEYS.fetch_add(1, Ordering::Relaxed));
    transact(
        rpc,
        json!([{"op": "assert", "lock": "L"},
               {"op": "insert", "table": "Entry", "row": {"key": key}}]),
    )
}

/// What ovsdb-server answers `[assert, insert]` from a session that does
/// not own the lock (checked with ovsdb-server 3.x).
fn not_owner_result() -> Value {
    json!([{"error": "not owner", "details": "Asserted lock L not held."}, null])
}

fn assert_owner(rpc: &mut Rpc, who: &str) {
    let r = assert_and_insert(rpc);
    assert!(
        txn_error(&r).is_none(),
        "{who} owns L, its assert must pass: {r}"
    );
}

fn assert_not_owner(rpc: &mut Rpc, who: &str) {
    let r = assert_and_insert(rpc);
    assert_eq!(
        txn_error(&r).map(|e| e["error"].clone()),
        Some(json!("not owner")),
        "{who} does not own L: {r}"
    );
    assert_eq!(r, not_owner_result(), "{who}: the reply's shape");
}

#[test]
fn locks_pass_to_a_waiter_on_another_server_after_kill_9() {
    let _serial = serial();
    let etcd = EtcdCluster::single();
    let dir = tempdir();
    let mut srv = servers(&etcd.endpoints(), 2, dir.path(), &["--lock-ttl=2"]);
    let _logs = LogsOnPanic::new(dir.path(), &etcd);

    let mut holder = connect(&srv[0]);
    let mut waiter = connect(&srv[1]);
    assert_eq!(lock_call(&mut holder, "lock"), json!({"locked": true}));
    assert_eq!(lock_call(&mut waiter, "lock"), json!({"locked": false}));
    assert_not_owner(&mut waiter, "B's client (waiting)");
    assert_owner(&mut holder, "A's client");

    // A dies: its lease expires after --lock-ttl, B's waiter is told.
    let killed = Instant::now();
    srv[0].kill9();
    // Until then B's client still does not own it.
    assert_not_owner(&mut waiter, "B's client (A just killed)");
    let waited = wait_lock_notification(&mut waiter, "locked", Duration::from_secs(20))
        .map(|_| killed.elapsed())
        .unwrap_or_else(|| {
            panic!(
                "B's client got no `locked` within 20 s of kill -9 of the holder's server; \
                 B's log:\n{}",
                srv[1].all_stderr()
            )
        });
    assert_owner(&mut waiter, "B's client (after `locked`)");

    // A comes back; a client there steals it from B.
    srv[0].start_again();
    wait_ready(&srv[0]);
    let restarted = Instant::now();
    let mut thief = connect(&srv[0]);
    assert_eq!(
        lock_call(&mut thief, "steal"),
        json!({"locked": true}),
        "`steal` on the restarted A ({:.2?} after it answered transactions) must succeed at once, \
         as in ovsdb-server",
        restarted.elapsed()
    );
    let stolen_after = wait_lock_notification(&mut waiter, "stolen", Duration::from_secs(20))
        .unwrap_or_else(|| {
            panic!(
                "B's client got no `stolen` within 20 s of a steal on A; B's log:\n{}",
                srv[1].all_stderr()
            )
        });
    assert_not_owner(&mut waiter, "B's client (robbed)");
    assert_owner(&mut thief, "A's thief");

    // The thief unlocks: as in ovsdb-server, the robbed session is still in
    // line and gets the lock back.
    assert_eq!(lock_call(&mut thief, "unlock"), json!({}));
    let back_after = wait_lock_notification(&mut waiter, "locked", Duration::from_secs(20))
        .unwrap_or_else(|| {
            panic!(
                "B's client (robbed, still queued) got no `locked` within 20 s of the thief's \
                 unlock (ovsdb-server sends it); B's log:\n{}",
                srv[1].all_stderr()
            )
        });
    assert_owner(&mut waiter, "B's client (after the thief's unlock)");
    assert_not_owner(&mut thief, "A's former thief");
    assert_eq!(lock_call(&mut waiter, "unlock"), json!({}));
    let unexpected: Vec<&Value> = waiter
        .notifications
        .iter()
        .chain(&thief.notifications)
        .filter(|n| n["method"] == "locked" || n["method"] == "stolen")
        .collect();
    eprintln!(
        "FIGURES: locks: after kill -9 of the holder's server (--lock-ttl=2) the waiter on the \
         other server got `locked` in {waited:.2?}; a steal on the restarted server reached the \
         robbed client as `stolen` in {stolen_after:.2?}; after the thief's unlock the robbed \
         client got `locked` back in {back_after:.2?}; extra lock notifications {}",
        unexpected.len()
    );
    assert!(
        unexpected.is_empty(),
        "lock notifications nobody expected: {unexpected:?}"
    );
}

// ---------------------------------------------------------------------------
// A writer and a monitor, for the etcd failure tests.

#[derive(Debug, Clone)]
enum Outcome {
    Committed,
    /// A clear error: nothing was committed.
    Failed(Value),
    /// "may or may not have been committed".
    Ambiguous(Value),
}

#[derive(Debug, Clone)]
struct Attempt {
    key: String,
    /// Since the test's start.
    sent: Duration,
    replied: Duration,
    outcome: Outcome,
}

/// Inserts `Entry{key: "w<i>", seq: i}` one transaction at a time through
/// `addr` until `stop`; after an error it pauses 100 ms. No reply within
/// [`REPLY_LIMIT`] is a panic (a hang).
fn spawn_writer(addr: String, t0: Instant, stop: Arc<AtomicBool>) -> JoinHandle<Vec<Attempt>> {
    std::thread::spawn(move || {
        let mut rpc = Rpc::connect_retry(&addr, T);
        let mut out = Vec::new();
        let mut i: i64 = 0;
        while !stop.load(Ordering::Relaxed) {
            let key = format!("w{i}");
            let sent = t0.elapsed();
            let r = rpc
                .transact(
                    json!([DB, {"op": "insert", "table": "Entry",
                                "row": {"key": key, "seq": i}}]),
                    REPLY_LIMIT,
                )
                .unwrap_or_else(|e| {
                    panic!("writer: insert of {key} sent at {sent:.2?} got no transact result: {e}")
                });
            let replied = t0.elapsed();
            let outcome = match txn_error(&r) {
                None => Outcome::Committed,
                Some(e) => {
                    let details = e["details"].as_str().unwrap_or("");
                    if details.contains("may or may not have been committed") {
                        Outcome::Ambiguous(e)
                    } else {
                        Outcome::Failed(e)
                    }
                }
            };
            let failed = !matches!(outcome, Outcome::Committed);
            out.push(Attempt {
                key,
                sent,
                replied,
                outcome,
            });
            i += 1;
            if failed {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        out
    })
}

/// What a monitor connection received.
struct MonitorLog {
    /// The reply to `monitor_cond_since`.
    reply: Value,
    /// The params of every `update3`, in order.
    updates: Vec<Value>,
    /// Any other message.
    other: Vec<Value>,
    /// How the connection ended, if it did.
    lost: Option<String>,
}

struct MonitorThread {
    stop: Arc<AtomicBool>,
    /// Row insertions seen so far.
    inserts: Arc<AtomicUsize>,
    handle: JoinHandle<MonitorLog>,
}

/// A `monitor_cond_since` on every column of Entry from the all-zeros id
/// (so the full state first) on `server`, read continuously (echo requests
/// answered) in a thread until stopped.
fn spawn_monitor(server: &Oxsdb) -> MonitorThread {
    let mut rpc = connect(server);
    let reply = rpc
        .call(
            "monitor_cond_since",
            json!([DB, "m", {"Entry": [{}]}, ZERO_TXN_ID]),
            REPLY_LIMIT,
        )
        .unwrap_or_else(|e| panic!("monitor_cond_since: {e}"));
    assert!(reply["error"].is_null(), "monitor_cond_since: {reply}");
    assert_eq!(
        reply["result"][0],
        json!(false),
        "all-zeros id: not found, full state: {reply}"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let inserts = Arc::new(AtomicUsize::new(0));
    let handle = {
        let (stop, inserts) = (stop.clone(), inserts.clone());
        std::thread::spawn(move || {
            let mut log = MonitorLog {
                reply,
                updates: Vec::new(),
                other: Vec::new(),
                lost: None,
            };
            let mut pending: Vec<Value> = std::mem::take(&mut rpc.notifications);
            loop {
                for m in pending.drain(..) {
                    if m["method"] == "update3" {
                        let n = m["params"][2]["Entry"].as_object().map_or(0, |rows| {
                            rows.values().filter(|u| u.get("insert").is_some()).count()
                        });
                        inserts.fetch_add(n, Ordering::Relaxed);
                        log.updates.push(m["params"].clone());
                    } else {
                        log.other.push(m);
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    return log;
                }
                match rpc.next_message(Duration::from_millis(100)) {
                    Ok(Some(m)) => pending.push(m),
                    Ok(None) => {}
                    Err(e) => {
                        log.lost = Some(e.to_string());
                        return log;
                    }
                }
            }
        })
    };
    MonitorThread {
        stop,
        inserts,
        handle,
    }
}

/// `_uuid` -> (key, seq) of every Entry row.
fn entry_rows(rpc: &mut Rpc) -> BTreeMap<String, (String, i64)> {
    select_all(rpc, "Entry")
        .iter()
        .map(|r| {
            (
                r["_uuid"][1].as_str().unwrap_or_default().to_string(),
                (
                    r["key"].as_str().unwrap_or_default().to_string(),
                    r["seq"].as_i64().unwrap_or(-1),
                ),
            )
        })
        .collect()
}

/// What the writer, the servers and the monitor ended with.
struct Summary {
    sent: usize,
    committed: usize,
    failed: usize,
    ambiguous: usize,
    ambiguous_present: usize,
    /// Longest time from a first error to the next commit.
    downtime: Duration,
    final_rows: BTreeMap<String, (String, i64)>,
    /// Acknowledged keys missing from a server's table, per server.
    missing: Vec<Vec<String>>,
    /// Keys present that were neither acknowledged nor ambiguous, per server.
    unexplained: Vec<Vec<String>>,
    /// Rows whose seq is not the writer's.
    wrong_seq: Vec<String>,
    tables_equal: bool,
    lost: usize,
    duplicated: usize,
    /// Rows the monitor saw inserted that are not in the table.
    phantom: usize,
    /// Row updates other than insertions, notifications other than update3.
    unexpected: Vec<Value>,
    /// update3 ids whose revision did not increase.
    out_of_order: usize,
    monitor_lost: Option<String>,
    /// Errors whose details name neither etcd nor the store.
    unclear_errors: Vec<Value>,
}

/// Waits for the servers to converge on a table holding every acknowledged
/// row, then for the monitor to have seen as many insertions, and compares.
fn summarize(srv: &[Oxsdb], attempts: &[Attempt], monitor: MonitorThread) -> Summary {
    let acked: BTreeSet<&str> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Committed))
        .map(|a| a.key.as_str())
        .collect();
    let ambiguous: BTreeSet<&str> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Ambiguous(_)))
        .map(|a| a.key.as_str())
        .collect();
    let errors: Vec<&Value> = attempts
        .iter()
        .filter_map(|a| match &a.outcome {
            Outcome::Failed(e) | Outcome::Ambiguous(e) => Some(e),
            Outcome::Committed => None,
        })
        .collect();
    let unclear_errors = errors
        .iter()
        .filter(|e| {
            let d = e["details"].as_str().unwrap_or("");
            !(e["error"].is_string() && (d.contains("etcd") || d.contains("store")))
        })
        .map(|e| (*e).clone())
        .collect();
    let mut downtime = Duration::ZERO;
    let mut first_error: Option<Duration> = None;
    for a in attempts {
        match a.outcome {
            Outcome::Committed => {
                if let Some(t) = first_error.take() {
                    downtime = downtime.max(a.replied.saturating_sub(t));
                }
            }
            _ => {
                first_error.get_or_insert(a.replied);
            }
        }
    }
    // Every server's table, once it holds every acknowledged row and the
    // servers agree (the other one may still be applying the last commits).
    let deadline = Instant::now() + T;
    let mut rpcs: Vec<Rpc> = srv.iter().map(connect).collect();
    let tables: Vec<BTreeMap<String, (String, i64)>> = loop {
        let tables: Vec<BTreeMap<String, (String, i64)>> =
            rpcs.iter_mut().map(entry_rows).collect();
        let complete = tables.iter().all(|t| {
            let keys: BTreeSet<&str> = t.values().map(|(k, _)| k.as_str()).collect();
            acked.is_subset(&keys)
        });
        if (complete && tables.windows(2).all(|w| w[0] == w[1])) || Instant::now() > deadline {
            break tables;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut missing = Vec::new();
    let mut unexplained = Vec::new();
    for t in &tables {
        let keys: BTreeSet<&str> = t.values().map(|(k, _)| k.as_str()).collect();
        missing.push(
            acked
                .difference(&keys)
                .map(|k| k.to_string())
                .collect::<Vec<_>>(),
        );
        unexplained.push(
            keys.iter()
                .filter(|k| !acked.contains(*k) && !ambiguous.contains(*k))
                .map(|k| k.to_string())
                .collect::<Vec<_>>(),
        );
    }
    let final_rows = tables[0].clone();
    let tables_equal = tables.windows(2).all(|w| w[0] == w[1]);
    let wrong_seq = final_rows
        .values()
        .filter(|(k, s)| format!("w{s}") != *k)
        .map(|(k, s)| format!("{k} has seq {s}"))
        .collect();
    let present: BTreeSet<&str> = final_rows.values().map(|(k, _)| k.as_str()).collect();
    let ambiguous_present = ambiguous.intersection(&present).count();

    // The monitor: as many insertions as rows (bounded), then a little more
    // time for anything sent twice.
    let deadline = Instant::now() + T;
    while monitor.inserts.load(Ordering::Relaxed) < final_rows.len()
        && Instant::now() < deadline
        && !monitor.handle.is_finished()
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    monitor.stop.store(true, Ordering::Relaxed);
    let log = monitor.handle.join().expect("monitor thread");
    let mut unexpected: Vec<Value> = log.other.clone();
    let mut seen: Vec<(String, (String, i64))> = Vec::new();
    // The initial state (the table was empty when the monitor started).
    for (uuid, u) in log.reply["result"][2]["Entry"]
        .as_object()
        .into_iter()
        .flatten()
    {
        match u.get("initial") {
            Some(row) => seen.push((
                uuid.clone(),
                (
                    row["key"].as_str().unwrap_or_default().to_string(),
                    row["seq"].as_i64().unwrap_or(0),
                ),
            )),
            None => unexpected.push(json!({"in the reply": u})),
        }
    }
    let mut out_of_order = 0;
    let mut last_rev = i64::MIN;
    for p in &log.updates {
        let rev = txn_revision(p[1].as_str().unwrap_or(ZERO_TXN_ID));
        if rev <= last_rev {
            out_of_order += 1;
        }
        last_rev = rev;
        for (table, rows) in p[2].as_object().into_iter().flatten() {
            for (uuid, u) in rows.as_object().into_iter().flatten() {
                match (table.as_str(), u.get("insert")) {
                    // update2/update3 leave out columns with default values.
                    ("Entry", Some(row)) if u.as_object().is_some_and(|o| o.len() == 1) => seen
                        .push((
                            uuid.clone(),
                            (
                                row["key"].as_str().unwrap_or_default().to_string(),
                                row["seq"].as_i64().unwrap_or(0),
                            ),
                        )),
                    _ => unexpected.push(json!({table.clone(): {uuid.clone(): u.clone()}})),
                }
            }
        }
    }
    let unique: BTreeMap<String, (String, i64)> = seen.iter().cloned().collect();
    let duplicated = seen.len() - unique.len();
    let lost = final_rows
        .iter()
        .filter(|(u, row)| unique.get(*u) != Some(row))
        .count();
    let phantom = unique
        .keys()
        .filter(|u| !final_rows.contains_key(*u))
        .count();
    Summary {
        sent: attempts.len(),
        committed: acked.len(),
        failed: errors.len() - ambiguous.len(),
        ambiguous: ambiguous.len(),
        ambiguous_present,
        downtime,
        final_rows,
        missing,
        unexplained,
        wrong_seq,
        tables_equal,
        lost,
        duplicated,
        phantom,
        unexpected,
        out_of_order,
        monitor_lost: log.lost,
        unclear_errors,
    }
}

/// The assertions every writer-and-monitor test makes.
fn assert_summary(s: &Summary) {
    assert!(
        s.unclear_errors.is_empty(),
        "errors that name neither etcd nor the store: {:?}",
        s.unclear_errors
    );
    for (i, m) in s.missing.iter().enumerate() {
        assert!(
            m.is_empty(),
            "server {i} lacks {} acknowledged rows: {:?}",
            m.len(),
            &m[..m.len().min(20)]
        );
    }
    for (i, u) in s.unexplained.iter().enumerate() {
        assert!(
            u.is_empty(),
            "server {i} has {} rows whose insert failed with a clear error (\"nothing was \
             committed\"): {:?}",
            u.len(),
            &u[..u.len().min(20)]
        );
    }
    assert!(s.wrong_seq.is_empty(), "rows changed: {:?}", s.wrong_seq);
    assert!(s.tables_equal, "the servers' tables differ");
    assert!(
        s.monitor_lost.is_none(),
        "the monitor's connection ended: {:?}",
        s.monitor_lost
    );
    assert_eq!(s.duplicated, 0, "row insertions sent twice to the monitor");
    assert_eq!(s.lost, 0, "rows the monitor never saw inserted");
    assert_eq!(
        s.phantom, 0,
        "rows the monitor saw that are not in the table"
    );
    assert!(
        s.unexpected.is_empty(),
        "unexpected monitor messages: {:?}",
        &s.unexpected[..s.unexpected.len().min(10)]
    );
    assert_eq!(
        s.out_of_order, 0,
        "update3 last-txn-ids whose revision did not increase"
    );
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

// ---------------------------------------------------------------------------
// 2. The only etcd member killed and restarted.

#[test]
fn etcd_killed_and_restarted_under_a_writer_and_a_monitor() {
    let _serial = serial();
    let mut etcd = EtcdCluster::single();
    let dir = tempdir();
    let srv = servers(&etcd.endpoints(), 2, dir.path(), &[]);
    let _logs = LogsOnPanic::new(dir.path(), &etcd);
    let mut status = connect(&srv[0]);
    let before = server_row(&mut status);
    assert_eq!(before["connected"], json!(true), "{before}");

    let monitor = spawn_monitor(&srv[1]);
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(srv[0].addr(), t0, stop.clone());

    sleep_until(t0 + Duration::from_secs(3));
    etcd.members[0].kill_keeping_data();
    let killed = t0.elapsed();
    // During the outage: what `_Server` on A says, every 100 ms.
    let mut seen: Vec<(Duration, String)> = Vec::new();
    let mut saw_disconnected: Option<Duration> = None;
    while t0.elapsed() < killed + Duration::from_secs(4) {
        let row = server_row(&mut status);
        let brief = row_brief(&row);
        if row["connected"] == json!(false) && saw_disconnected.is_none() {
            saw_disconnected = Some(t0.elapsed() - killed);
        }
        if seen.last().map(|(_, b)| b) != Some(&brief) {
            seen.push((t0.elapsed(), brief));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let restarting = t0.elapsed();
    etcd.members[0].restart();
    let healthy = t0.elapsed();
    let deadline = Instant::now() + T;
    let reconnected = loop {
        let row = server_row(&mut status);
        let brief = row_brief(&row);
        if seen.last().map(|(_, b)| b) != Some(&brief) {
            seen.push((t0.elapsed(), brief));
        }
        if row["connected"] == json!(true) {
            break Some(t0.elapsed() - healthy);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The writer goes on for a while after etcd is back.
    sleep_until((t0 + Duration::from_secs(12)).max(Instant::now() + Duration::from_secs(3)));
    stop.store(true, Ordering::Relaxed);
    let attempts = writer.join().expect("writer thread");
    let after = server_row(&mut status);

    // Commits acknowledged while etcd was certainly down (sent after the
    // kill, answered before it was started again) are impossible.
    let impossible: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| {
            matches!(a.outcome, Outcome::Committed) && a.sent > killed && a.replied < restarting
        })
        .collect();
    let committed_after = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Committed) && a.sent > healthy)
        .count();
    let error_kinds: BTreeSet<String> = attempts
        .iter()
        .filter_map(|a| match &a.outcome {
            Outcome::Failed(e) => Some(format!("{}", e["error"])),
            Outcome::Ambiguous(e) => Some(format!("{} (ambiguous)", e["error"])),
            Outcome::Committed => None,
        })
        .collect();
    let s = summarize(&srv, &attempts, monitor);
    let seen_text: Vec<String> = seen
        .iter()
        .map(|(t, b)| format!("t={:.1}s {b}", t.as_secs_f64()))
        .collect();
    eprintln!(
        "FIGURES: etcd killed at t={:.1}s, restarted at t={:.1}s (healthy at t={:.1}s): \
         transactions sent {}, committed {}, failed with clear errors {}, ambiguous {} (of which \
         {} committed), error kinds {:?}, downtime seen by the writer {:.2?}, commits after etcd \
         was back {committed_after}, rows {}, updates lost {}, duplicated {}, monitor connection \
         {}; _Server on A: not connected {:.2?} after the kill, connected again {:.2?} after etcd \
         was healthy; _Server timeline: {}",
        killed.as_secs_f64(),
        restarting.as_secs_f64(),
        healthy.as_secs_f64(),
        s.sent,
        s.committed,
        s.failed,
        s.ambiguous,
        s.ambiguous_present,
        error_kinds,
        s.downtime,
        s.final_rows.len(),
        s.lost,
        s.duplicated,
        s.monitor_lost.as_deref().unwrap_or("stayed open"),
        saw_disconnected,
        reconnected,
        seen_text.join("; ")
    );
    assert_summary(&s);
    assert!(
        impossible.is_empty(),
        "transactions acknowledged as committed while etcd was down: {:?}",
        &impossible[..impossible.len().min(5)]
    );
    assert!(
        s.failed + s.ambiguous > 0,
        "the writer never noticed that etcd was down"
    );
    assert!(committed_after > 0, "nothing committed after etcd was back");
    assert!(
        saw_disconnected.is_some(),
        "_Server on A never said connected false while etcd was down: {seen_text:?}"
    );
    assert!(
        reconnected.is_some(),
        "_Server on A never said connected true again after etcd was back: {seen_text:?}"
    );
    assert_eq!(after["connected"], json!(true), "{after}");
    assert_eq!(after["leader"], json!(true), "{after}");
    assert!(
        after["index"].as_i64().unwrap_or(0) >= before["index"].as_i64().unwrap_or(0),
        "the index went backwards: {before} -> {after}"
    );
}

#[test]
fn etcd_paused_with_commits_in_flight_applies_each_at_most_once() {
    // A Txn whose outcome is unknown: etcd freezes (SIGSTOP) for longer than
    // --etcd-timeout with commits in flight, so oxsdb answers them with an
    // error saying they may or may not have been committed; when etcd goes
    // on it may still apply them. Nothing acknowledged may be lost, nothing
    // applied twice, and every monitor must see each commit once.
    let _serial = serial();
    let etcd = EtcdCluster::single();
    let dir = tempdir();
    let srv = servers(&etcd.endpoints(), 2, dir.path(), &[]);
    let _logs = LogsOnPanic::new(dir.path(), &etcd);
    let monitor = spawn_monitor(&srv[1]);
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(srv[0].addr(), t0, stop.clone());
    sleep_until(t0 + Duration::from_secs(2));
    etcd.members[0].pause();
    let paused = t0.elapsed();
    sleep_until(t0 + Duration::from_secs(5));
    etcd.members[0].resume();
    let resumed = t0.elapsed();
    sleep_until(t0 + Duration::from_secs(9));
    stop.store(true, Ordering::Relaxed);
    let attempts = writer.join().expect("writer thread");
    let committed_after = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Committed) && a.sent > resumed)
        .count();
    let s = summarize(&srv, &attempts, monitor);
    eprintln!(
        "FIGURES: etcd paused at t={:.1}s, resumed at t={:.1}s: transactions sent {}, committed {}, failed {}, ambiguous {} (of which {} committed), commits after the resume {committed_after}, rows {}, updates lost {}, duplicated {}, monitor connection {}",
        paused.as_secs_f64(),
        resumed.as_secs_f64(),
        s.sent,
        s.committed,
        s.failed,
        s.ambiguous,
        s.ambiguous_present,
        s.final_rows.len(),
        s.lost,
        s.duplicated,
        s.monitor_lost.as_deref().unwrap_or("stayed open"),
    );
    assert_summary(&s);
    assert!(
        s.failed + s.ambiguous > 0,
        "the writer never noticed that etcd was frozen"
    );
    assert!(committed_after > 0, "nothing committed after etcd went on");
}

// ---------------------------------------------------------------------------
// 3. One member of three killed.

/// (this member's id, the leader's id) from etcd's status.
fn etcd_status(endpoint: &str) -> (String, String) {
    let r = etcd_post(endpoint, "/v3/maintenance/status", &json!({}));
    let id = r["header"]["member_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let leader = r["leader"].as_str().unwrap_or_default().to_string();
    assert!(!id.is_empty() && !leader.is_empty(), "etcd status: {r}");
    (id, leader)
}

/// Makes member `target` the leader; whether it worked.
fn move_leader(etcd: &EtcdCluster, target: usize) -> bool {
    let endpoints = etcd.endpoints();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let (target_id, leader) = etcd_status(&endpoints[target]);
        if leader == target_id {
            return true;
        }
        if let Some(ep) = endpoints.iter().find(|ep| etcd_status(ep).0 == leader) {
            let _ = etcd_post(
                ep,
                "/v3/maintenance/transfer-leadership",
                &json!({"targetID": target_id}),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn three_member_etcd_survives_one_member_killed() {
    /// Errors are allowed this long after the kill: a lost member must cost
    /// no more than etcd's election (its default timings: the followers
    /// notice after 1 s, and elect within about as much).
    const WINDOW: Duration = Duration::from_secs(2);
    let _serial = serial();
    let mut etcd = EtcdCluster::start(3, &[]);
    let dir = tempdir();
    // The member killed below is the leader and the first endpoint.
    let leader_moved = move_leader(&etcd, 0);
    // oxsdb's default etcd timeouts (5 s a request), not the tests' short
    // ones: a 2 s request timeout is shorter than an election at etcd's
    // default timings (the followers notice after 1 to 2 s), so a
    // transaction sent at the kill would fail instead of waiting for it.
    let srv = servers_with_default_timeouts(&etcd.endpoints(), 2, dir.path());
    let _logs = LogsOnPanic::new(dir.path(), &etcd);
    let monitor = spawn_monitor(&srv[1]);
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(srv[0].addr(), t0, stop.clone());
    sleep_until(t0 + Duration::from_secs(3));
    let was_leader = {
        let (id, leader) = etcd_status(&etcd.members[0].endpoint());
        id == leader
    };
    etcd.members[0].kill();
    let killed = t0.elapsed();
    // After the window, long enough to show that commits go on.
    sleep_until(t0 + killed + WINDOW + Duration::from_secs(8));
    stop.store(true, Ordering::Relaxed);
    let attempts = writer.join().expect("writer thread");
    let mut status = connect(&srv[0]);
    let row_a = server_row(&mut status);
    let row_b = server_row(&mut connect(&srv[1]));

    let before_kill = attempts.iter().filter(|a| a.sent < killed).count();
    let in_window: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.sent >= killed && a.sent < killed + WINDOW)
        .collect();
    let window_errors = in_window
        .iter()
        .filter(|a| !matches!(a.outcome, Outcome::Committed))
        .count();
    let later: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.sent >= killed + WINDOW)
        .collect();
    let later_errors: Vec<&Attempt> = later
        .iter()
        .copied()
        .filter(|a| !matches!(a.outcome, Outcome::Committed))
        .collect();
    let last_error = attempts
        .iter()
        .filter(|a| !matches!(a.outcome, Outcome::Committed))
        .map(|a| a.replied.saturating_sub(killed))
        .max();
    // The longest a transaction waited for its reply around the kill.
    let stall = attempts
        .iter()
        .filter(|a| a.replied >= killed)
        .map(|a| a.replied - a.sent)
        .max()
        .unwrap_or_default();
    // What failed when, and how (relative to the kill).
    let error_timeline: Vec<String> = attempts
        .iter()
        .filter_map(|a| {
            let e = match &a.outcome {
                Outcome::Committed => return None,
                Outcome::Failed(e) | Outcome::Ambiguous(e) => e,
            };
            Some(format!(
                "sent {:+.3}s replied {:+.3}s: {}",
                a.sent.as_secs_f64() - killed.as_secs_f64(),
                a.replied.as_secs_f64() - killed.as_secs_f64(),
                e["details"].as_str().unwrap_or_default()
            ))
        })
        .collect();
    if error_timeline.is_empty() {
        eprintln!("FIGURES: errors after the kill: none");
    } else {
        eprintln!(
            "FIGURES: errors after the kill:\n  {}",
            error_timeline.join("\n  ")
        );
    }
    let s = summarize(&srv, &attempts, monitor);
    eprintln!(
        "FIGURES: three-member etcd, member 0 (the first endpoint; leader: {was_leader}, moved \
         there: {leader_moved}) killed at t={:.1}s: sent {} ({before_kill} before the kill), \
         committed {}, failed with clear errors {}, ambiguous {} (of which {} committed); in the \
         {WINDOW:?} after the kill: sent {}, errors {window_errors}; later: sent {}, errors {}; \
         last error {:?} after the kill; downtime seen by the writer {:.2?}; longest wait for \
         a reply around the kill {stall:.2?}; rows {}, updates lost {}, duplicated {}, monitor \
         connection {}; _Server A {} / B {}",
        killed.as_secs_f64(),
        s.sent,
        s.committed,
        s.failed,
        s.ambiguous,
        s.ambiguous_present,
        in_window.len(),
        later.len(),
        later_errors.len(),
        last_error,
        s.downtime,
        s.final_rows.len(),
        s.lost,
        s.duplicated,
        s.monitor_lost.as_deref().unwrap_or("stayed open"),
        row_brief(&row_a),
        row_brief(&row_b),
    );
    assert_summary(&s);
    assert!(
        last_error.is_none_or(|t| t < WINDOW) && later_errors.is_empty(),
        "transactions failed more than {WINDOW:?} after one member of three was killed \
         (last error {last_error:?} after the kill): {:?}",
        &later_errors[..later_errors.len().min(5)]
    );
    assert!(!later.is_empty(), "nothing was sent after the window");
    for row in [&row_a, &row_b] {
        assert_eq!(row["connected"], json!(true), "{row}");
        assert_eq!(row["leader"], json!(true), "{row}");
    }
}

// ---------------------------------------------------------------------------
// 4. etcd down when oxsdb starts.

#[test]
fn etcd_down_at_start_then_up() {
    let _serial = serial();
    let mut etcd = EtcdCluster::single();
    let dir = tempdir();
    let _logs = LogsOnPanic::new(dir.path(), &etcd);
    etcd.members[0].kill_keeping_data();
    let schema = write_schema(dir.path(), "1.0.0");
    // Oxsdb::start panics if it does not listen within 20 s.
    let started = Instant::now();
    let srv = start_server(
        &etcd.endpoints(),
        &unique_prefix(),
        Some(&schema),
        &[],
        dir.path(),
    );
    let listening_after = started.elapsed();
    let mut rpc = connect(&srv);
    let echo = rpc
        .call("echo", json!(["x"]), REPLY_LIMIT)
        .unwrap_or_else(|e| panic!("echo while etcd is down: {e}"));
    assert_eq!(echo["result"], json!(["x"]), "{echo}");

    // A write: a clear error, soon (etcd's timeout is 2 s here).
    let began = Instant::now();
    let r = rpc
        .transact(
            json!([DB, {"op": "insert", "table": "Entry", "row": {"key": "early", "seq": 1}}]),
            Duration::from_secs(12),
        )
        .unwrap_or_else(|e| {
            panic!(
                "a transaction while etcd is down must get a transact reply within the etcd \
                 timeout (2 s) and a margin: {e}"
            )
        });
    let write_reply = began.elapsed();
    let write_error = txn_error(&r).unwrap_or_else(|| panic!("committed with etcd down: {r}"));
    // A read: the database is not loaded, so the same.
    let began = Instant::now();
    let r = rpc
        .transact(
            json!([DB, {"op": "select", "table": "Entry", "where": []}]),
            Duration::from_secs(12),
        )
        .unwrap_or_else(|e| panic!("a select while etcd is down: {e}"));
    let read_reply = began.elapsed();
    let read_error = txn_error(&r);
    // `_Server` answers (it is local) and says not connected.
    let row_down = server_row(&mut rpc);

    etcd.members[0].restart();
    let up = Instant::now();
    let mut first_error_after_up: Option<Value> = None;
    let mut tries = 0;
    let committed_after = loop {
        tries += 1;
        let r = rpc
            .transact(
                json!([DB, {"op": "insert", "table": "Entry",
                            "row": {"key": format!("late{tries}"), "seq": tries}}]),
                REPLY_LIMIT,
            )
            .unwrap_or_else(|e| panic!("transact after etcd came back: {e}"));
        match txn_error(&r) {
            None => break Some(up.elapsed()),
            Some(e) => {
                first_error_after_up.get_or_insert(e);
            }
        }
        if up.elapsed() > T {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let deadline = Instant::now() + T;
    let (row_up, connected_after) = loop {
        let row = server_row(&mut rpc);
        if row["connected"] == json!(true) || Instant::now() > deadline {
            break (row, up.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let keys: BTreeSet<String> = select_all(&mut rpc, "Entry")
        .iter()
        .filter_map(|r| r["key"].as_str().map(str::to_string))
        .collect();
    eprintln!(
        "FIGURES: etcd down at start: oxsdb listened after {listening_after:.2?}; a write was \
         answered in {write_reply:.2?} with {write_error}; a read in {read_reply:.2?} with {}; \
         _Server while down: {}; after etcd was restarted the first write committed after \
         {committed_after:.2?} (first error meanwhile: {}), _Server connected after \
         {connected_after:.2?}: {}",
        read_error
            .as_ref()
            .map_or("no error".into(), |e| e.to_string()),
        row_brief(&row_down),
        first_error_after_up
            .as_ref()
            .map_or("none".into(), |e| e.to_string()),
        row_brief(&row_up),
    );

    // While down.
    assert_eq!(write_error["error"], json!("not leader"), "{write_error}");
    let details = write_error["details"].as_str().unwrap_or("");
    assert!(
        details.contains("not available")
            && (details.contains("etcd") || details.contains("store")),
        "the error says the database is not available and why (the store): {write_error}"
    );
    let read_error =
        read_error.unwrap_or_else(|| panic!("a select served with etcd down, from nothing"));
    assert_eq!(read_error["error"], json!("not leader"), "{read_error}");
    assert_eq!(
        row_down["connected"],
        json!(false),
        "_Server while etcd is down: {row_down}"
    );
    assert_eq!(
        row_down["leader"],
        json!(false),
        "_Server while etcd is down: {row_down}"
    );
    assert_eq!(row_down["model"], json!("clustered"), "{row_down}");
    // Once up.
    assert!(
        committed_after.is_some(),
        "no transaction committed within {T:?} of etcd's restart; last error {first_error_after_up:?}"
    );
    assert_eq!(
        row_up["connected"],
        json!(true),
        "_Server after etcd is back: {row_up}"
    );
    assert_eq!(row_up["leader"], json!(true), "{row_up}");
    assert_eq!(row_up["model"], json!("clustered"), "{row_up}");
    let cid = &row_up["cid"];
    assert!(
        cid[0] == "uuid"
            && cid[1]
                .as_str()
                .is_some_and(|u| uuid::Uuid::parse_str(u).is_ok()),
        "_Server cid: {row_up}"
    );
    assert!(
        row_up["index"].as_i64().unwrap_or(0) > 0,
        "_Server index: {row_up}"
    );
    assert!(
        keys.contains(&format!("late{tries}")) && !keys.contains("early"),
        "the write acknowledged after etcd came back is there, the one refused before is not: \
         {keys:?}"
    );
}

// ---------------------------------------------------------------------------
// 5. Rows in etcd that oxsdb cannot decode.

/// Writes to etcd as a foreign program would, through oxsdb's etcd store
/// (its own client and runtime): `writes` in one Txn.
fn etcd_write(endpoints: &[String], writes: Vec<oxsdb::storage::WriteOp>) {
    use oxsdb::storage::etcd::{EtcdOptions, EtcdStore};
    use oxsdb::storage::Storage;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let store = EtcdStore::connect(EtcdOptions::new(endpoints.to_vec()))
            .await
            .unwrap_or_else(|e| panic!("etcd client: {e}"));
        let r = store
            .commit(Vec::new(), writes)
            .await
            .unwrap_or_else(|e| panic!("etcd write: {e}"));
        assert!(r.succeeded, "an unconditional Txn failed");
    });
}

#[test]
fn undecodable_rows_written_into_etcd_make_servers_reload() {
    use oxsdb::storage::keys::Keys;
    use oxsdb::storage::WriteOp;
    let _serial = serial();
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    let dir = tempdir();
    let schema = write_schema(dir.path(), "1.0.0");
    let prefix = unique_prefix();
    let srv: Vec<Oxsdb> = (0..2)
        .map(|_| start_server(&endpoints, &prefix, Some(&schema), &[], dir.path()))
        .collect();
    for s in &srv {
        wait_ready(s);
    }
    let _logs = LogsOnPanic::new(dir.path(), &etcd);
    let keys = Keys::new(&prefix, "clus").expect("keys");
    let row_key = |table: &str| keys.row(DB, table, &uuid::Uuid::new_v4()).expect("row key");
    let fence = keys.fence(DB).expect("fence key");

    let monitor = spawn_monitor(&srv[1]);
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(srv[0].addr(), t0, stop.clone());

    // A commit as a server of another version would make it: the fence, a
    // valid row and a row that is not JSON, in one Txn.
    sleep_until(t0 + Duration::from_secs(2));
    let injected_key = "w1000000";
    let injected_at = t0.elapsed();
    etcd_write(
        &endpoints,
        vec![
            WriteOp::put(fence.clone(), "another-server"),
            WriteOp::put(
                row_key("Entry"),
                json!({"key": injected_key, "seq": 1_000_000}).to_string(),
            ),
            WriteOp::put(row_key("Entry"), "not json {"),
        ],
    );
    // A row of the wrong shape written alone (no fence).
    sleep_until(t0 + Duration::from_secs(4));
    etcd_write(
        &endpoints,
        vec![WriteOp::put(
            row_key("Entry"),
            json!({"key": ["set", [1, 2]], "seq": "many"}).to_string(),
        )],
    );
    // A row of a table the schema does not have, and a key that is no row.
    sleep_until(t0 + Duration::from_secs(5));
    let mut bad_uuid = keys.table_prefix(DB, "Entry").expect("table key").to_vec();
    bad_uuid.extend_from_slice(b"not-a-uuid");
    etcd_write(
        &endpoints,
        vec![
            WriteOp::put(row_key("NoSuchTable"), json!({"x": 1}).to_string()),
            WriteOp::put(bad_uuid, json!({"key": "zz", "seq": 1}).to_string()),
        ],
    );
    sleep_until(t0 + Duration::from_secs(8));
    stop.store(true, Ordering::Relaxed);
    let mut attempts = writer.join().expect("writer thread");
    // The valid row of the foreign commit counts as acknowledged: every
    // server must hold it and the monitor must see it once.
    attempts.push(Attempt {
        key: injected_key.to_string(),
        sent: injected_at,
        replied: injected_at,
        outcome: Outcome::Committed,
    });
    // A server started now loads the database, without the bad rows.
    let late = start_server(&endpoints, &prefix, Some(&schema), &[], dir.path());
    wait_ready(&late);
    let mut all = srv;
    all.push(late);
    let errors: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| !matches!(a.outcome, Outcome::Committed))
        .collect();
    // Each bad commit makes a server reload: through its watch, which
    // cannot decode it, or, when the unfenced one lands below a commit of
    // the writer's server still in flight, because that server went past it.
    let reloads: Vec<usize> = all
        .iter()
        .map(|s| {
            let log = s.all_stderr();
            log.matches("cannot decode a commit from the store; reloading")
                .count()
                + log
                    .matches("the store holds a commit this server went past")
                    .count()
        })
        .collect();
    let skipped: Vec<usize> = all
        .iter()
        .map(|s| {
            s.all_stderr()
                .matches("a stored row does not decode; serving the database without it")
                .count()
        })
        .collect();
    let s = summarize(&all, &attempts, monitor);
    eprintln!(
        "FIGURES: undecodable rows written into etcd under a writer and a monitor: sent {}, \
         committed {}, errors {}, downtime {:.2?}; reloads logged per server {reloads:?}, \
         rows left out per load logged per server {skipped:?}; rows {}, updates lost {}, \
         duplicated {}",
        s.sent,
        s.committed,
        errors.len(),
        s.downtime,
        s.final_rows.len(),
        s.lost,
        s.duplicated,
    );
    assert_summary(&s);
    assert!(
        errors.is_empty(),
        "transactions failed around the undecodable rows: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert!(
        s.committed > 20,
        "the writer hardly committed: {}",
        s.committed
    );
    for (i, n) in reloads.iter().take(2).enumerate() {
        // The not-JSON row and the wrong-shaped one.
        assert!(*n >= 2, "server {i} logged {n} reloads, expected 2 or more");
    }
    for (i, n) in skipped.iter().enumerate() {
        assert!(
            *n >= 2,
            "server {i} logged {n} rows left out of a load, expected the 2 bad ones each time"
        );
    }
}
