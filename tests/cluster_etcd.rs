//! Several oxsdb processes serving one database through one real etcd:
//!
//! 1. `concurrent_increments_from_every_server_end_at_the_number_sent`:
//!    clients of three servers `mutate` one counter at once; every increment
//!    commits exactly once (commit races are retried by re-executing).
//! 2. `same_unique_value_inserted_through_every_server_commits_once`.
//! 3. `monitors_on_every_server_see_every_commit_in_commit_order`.
//! 4. `ovn_northd_on_one_server_while_ovn_nbctl_writes_through_another`.
//! 5. `monitor_cond_since_resumes_on_another_server`: after the first
//!    server is killed, on a restarted server (from etcd's history), and the
//!    full state for compacted, foreign and future ids.
//! 6. `ten_thousand_rows_in_one_transaction_and_over_the_limit`.
//! 7. `schemas_live_in_etcd`: a second server with no schema serves the
//!    stored one, with the same cid; a different version refuses to start;
//!    `convert` through one server is followed by the other; comments are
//!    stored with the commit.
//! 8. `a_reference_racing_a_delete_through_two_servers_never_dangles`.
//! 9. `a_client_reads_its_own_write_on_the_server_it_wrote_through`.
//!
//! Each test starts its own etcd (free loopback ports, temporary data) and
//! prints a `FIGURES:` line with what it measured.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::cluster::*;
use support::etcd::EtcdCluster;
use support::process::Oxsdb;
use support::rpc::Rpc;
use support::tools::{run as run_timeout, tool};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("oxsdb-cluster-")
        .tempdir()
        .expect("tempdir")
}

/// `n` servers of `schema` on `etcd` (one prefix), each ready.
fn servers(etcd: &EtcdCluster, n: usize, dir: &Path, extra: &[&str]) -> Vec<Oxsdb> {
    let schema = write_schema(dir, "1.0.0");
    let prefix = unique_prefix();
    let v: Vec<Oxsdb> = (0..n)
        .map(|_| start_server(&etcd.endpoints(), &prefix, Some(&schema), extra, dir))
        .collect();
    for s in &v {
        wait_ready(s);
    }
    v
}

fn counter_value(rpc: &mut Rpc) -> Option<i64> {
    select_all(rpc, "Counter")
        .first()
        .and_then(|r| r["n"].as_i64())
}

#[test]
fn concurrent_increments_from_every_server_end_at_the_number_sent() {
    let etcd = EtcdCluster::single();
    let dir = tempdir();
    let srv = servers(&etcd, 3, dir.path(), &[]);
    let mut a = connect(&srv[0]);
    let r = transact(
        &mut a,
        json!([{"op": "insert", "table": "Counter", "row": {"name": "c", "n": 0}}]),
    );
    assert!(txn_error(&r).is_none(), "{r}");
    for s in &srv {
        wait_until(s, "the counter on every server", |rpc| {
            counter_value(rpc).filter(|n| *n == 0)
        });
    }
    const CLIENTS_PER_SERVER: usize = 2;
    const EACH: usize = 50;
    let start = Arc::new(Barrier::new(srv.len() * CLIENTS_PER_SERVER));
    let began = Instant::now();
    let handles: Vec<_> = srv
        .iter()
        .flat_map(|s| (0..CLIENTS_PER_SERVER).map(move |_| s.addr()))
        .map(|addr| {
            let start = start.clone();
            std::thread::spawn(move || {
                let mut rpc = Rpc::connect_retry(&addr, T);
                start.wait();
                let mut errors = Vec::new();
                for _ in 0..EACH {
                    let r = transact(
                        &mut rpc,
                        json!([{"op": "mutate", "table": "Counter",
                                "where": [["name", "==", "c"]],
                                "mutations": [["n", "+=", 1]]}]),
                    );
                    match txn_error(&r) {
                        None => assert_eq!(r[0]["count"], 1, "{r}"),
                        Some(e) => errors.push(e),
                    }
                }
                errors
            })
        })
        .collect();
    let errors: Vec<Value> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect();
    let elapsed = began.elapsed();
    let sent = srv.len() * CLIENTS_PER_SERVER * EACH;
    let committed = sent - errors.len();
    for s in &srv {
        wait_until(s, "the final count on every server", |rpc| {
            counter_value(rpc).filter(|n| *n == committed as i64)
        });
    }
    let retried: usize = srv.iter().map(conflicts_retried).sum();
    eprintln!(
        "FIGURES: concurrent increments: {} servers x {CLIENTS_PER_SERVER} clients, sent {sent}, \
         committed {committed}, failed {}, commit races retried {retried}, {:.0} txn/s",
        srv.len(),
        errors.len(),
        sent as f64 / elapsed.as_secs_f64()
    );
    assert!(errors.is_empty(), "increments failed: {errors:?}");
    // Clients of different servers at once do race: the retries are real.
    assert!(retried > 0, "no commit race was ever retried");
}

#[test]
fn same_unique_value_inserted_through_every_server_commits_once() {
    let etcd = EtcdCluster::single();
    let dir = tempdir();
    let srv = servers(&etcd, 3, dir.path(), &[]);
    const ROUNDS: usize = 15;
    let barrier = Arc::new(Barrier::new(srv.len()));
    let handles: Vec<_> = srv
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let addr = s.addr();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut rpc = Rpc::connect_retry(&addr, T);
                (0..ROUNDS)
                    .map(|round| {
                        barrier.wait();
                        transact(
                            &mut rpc,
                            json!([{"op": "insert", "table": "Entry",
                                    "row": {"key": format!("k{round}"), "seq": i as i64}}]),
                        )
                    })
                    .collect::<Vec<Value>>()
            })
        })
        .collect();
    let results: Vec<Vec<Value>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut violations = 0;
    for round in 0..ROUNDS {
        let outcomes: Vec<&Value> = results.iter().map(|r| &r[round]).collect();
        let ok = outcomes.iter().filter(|r| txn_error(r).is_none()).count();
        assert_eq!(ok, 1, "round {round}: {outcomes:?}");
        for r in &outcomes {
            if let Some(e) = txn_error(r) {
                assert_eq!(e["error"], "constraint violation", "round {round}: {r}");
                let details = e["details"].as_str().unwrap_or("");
                assert!(
                    details.contains("identical values") && details.contains("Entry"),
                    "{details}"
                );
                violations += 1;
            }
        }
    }
    for s in &srv {
        let rows = wait_until(s, "every winner on every server", |rpc| {
            let rows = select_all(rpc, "Entry");
            (rows.len() == ROUNDS).then_some(rows)
        });
        let keys: BTreeSet<&str> = rows.iter().filter_map(|r| r["key"].as_str()).collect();
        assert_eq!(keys.len(), ROUNDS, "{rows:?}");
    }
    let retried: usize = srv.iter().map(conflicts_retried).sum();
    eprintln!(
        "FIGURES: unique-index race: {ROUNDS} rounds x {} servers, committed {ROUNDS}, \
         constraint violations {violations}, commit races retried {retried}",
        srv.len()
    );
}

#[test]
fn a_reference_racing_a_delete_through_two_servers_never_dangles() {
    // Server 0 deletes an Entry while server 1 inserts a Holder referencing
    // it: exactly one of the two commits (the loser sees the winner's commit
    // through the fence and fails its referential integrity check).
    let etcd = EtcdCluster::single();
    let dir = tempdir();
    let srv = servers(&etcd, 2, dir.path(), &[]);
    const ROUNDS: usize = 15;
    let mut setup = Rpc::connect_retry(&srv[0].addr(), T);
    let uuids: Vec<String> = (0..ROUNDS)
        .map(|round| {
            let r = transact(
                &mut setup,
                json!([{"op": "insert", "table": "Entry", "row": {"key": format!("e{round}"), "seq": 0}}]),
            );
            r[0]["uuid"][1].as_str().expect("inserted uuid").to_string()
        })
        .collect();
    // Both servers must know every Entry before the races start.
    wait_until(&srv[1], "the entries on server 1", |rpc| {
        (select_all(rpc, "Entry").len() == ROUNDS).then_some(())
    });
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let addr = srv[i].addr();
            let barrier = barrier.clone();
            let uuids = uuids.clone();
            std::thread::spawn(move || {
                let mut rpc = Rpc::connect_retry(&addr, T);
                (0..ROUNDS)
                    .map(|round| {
                        let target = json!(["uuid", uuids[round]]);
                        let ops = if i == 0 {
                            json!([{"op": "delete", "table": "Entry", "where": [["_uuid", "==", target]]}])
                        } else {
                            json!([{"op": "insert", "table": "Holder",
                                    "row": {"name": format!("h{round}"), "entry": target}}])
                        };
                        barrier.wait();
                        transact(&mut rpc, ops)
                    })
                    .collect::<Vec<Value>>()
            })
        })
        .collect();
    let results: Vec<Vec<Value>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let (mut deletes_won, mut references_won) = (0, 0);
    for (round, (del, ins)) in results[0].iter().zip(&results[1]).enumerate() {
        match (txn_error(del), txn_error(ins)) {
            (None, Some(e)) => {
                assert_eq!(
                    e["error"], "referential integrity violation",
                    "round {round}: {ins}"
                );
                assert_eq!(del[0]["count"], 1, "round {round}: {del}");
                deletes_won += 1;
            }
            (Some(e), None) => {
                assert_eq!(
                    e["error"], "referential integrity violation",
                    "round {round}: {del}"
                );
                references_won += 1;
            }
            other => panic!("round {round}: exactly one must commit: {other:?} ({del} / {ins})"),
        }
    }
    // Every server ends with the same rows, and no Holder refers to a
    // missing Entry.
    for s in &srv {
        let (entries, holders) = wait_until(s, "the same rows on every server", |rpc| {
            let e = select_all(rpc, "Entry");
            let h = select_all(rpc, "Holder");
            (e.len() == ROUNDS - deletes_won && h.len() == references_won).then_some((e, h))
        });
        let live: BTreeSet<&str> = entries
            .iter()
            .filter_map(|r| r["_uuid"][1].as_str())
            .collect();
        for h in &holders {
            let to = h["entry"][1].as_str().unwrap_or("");
            assert!(
                live.contains(to),
                "dangling reference {h} (entries {live:?})"
            );
        }
    }
    eprintln!(
        "FIGURES: reference/delete race: {ROUNDS} rounds, deletes won {deletes_won}, references won {references_won}"
    );
}

#[test]
fn a_client_reads_its_own_write_on_the_server_it_wrote_through() {
    // Commits are answered when etcd says yes, before the watch echoes them:
    // the replica must already hold them, for this connection and any other
    // connection to the same server, while other servers write too.
    let etcd = EtcdCluster::single();
    let dir = tempdir();
    let srv = servers(&etcd, 2, dir.path(), &[]);
    const WRITES: usize = 60;
    let handles: Vec<_> = (0..4)
        .map(|w| {
            let addr = srv[w % 2].addr();
            std::thread::spawn(move || {
                let mut writer = Rpc::connect_retry(&addr, T);
                let mut reader = Rpc::connect_retry(&addr, T);
                let mut stale = Vec::new();
                for k in 0..WRITES {
                    let key = format!("w{w}-{k}");
                    let r = transact(
                        &mut writer,
                        json!([{"op": "insert", "table": "Entry", "row": {"key": key, "seq": k as i64}}]),
                    );
                    assert!(txn_error(&r).is_none(), "{r}");
                    let where_ = json!([["key", "==", key]]);
                    for rpc in [&mut writer, &mut reader] {
                        let got = transact(
                            rpc,
                            json!([{"op": "select", "table": "Entry", "where": where_}]),
                        );
                        if got[0]["rows"].as_array().map_or(0, |r| r.len()) != 1 {
                            stale.push(key.clone());
                        }
                    }
                }
                stale
            })
        })
        .collect();
    let stale: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(
        stale.is_empty(),
        "writes not visible right after their reply: {stale:?}"
    );
    for s in &srv {
        wait_until(s, "every write on every server", |rpc| {
            (select_all(rpc, "Entry").len() == 4 * WRITES).then_some(())
        });
    }
}

/// A `monitor_cond_since` on every Entry column from the beginning; the
/// reply.
fn monitor_entries(rpc: &mut Rpc, last_id: &str) -> Value {
    let reply = rpc
        .call(
            "monitor_cond_since",
            json!([DB, "m", {"Entry": [{"columns": ["key", "seq"]}]}, last_id]),
            T,
        )
        .expect("monitor_cond_since");
    assert!(reply["error"].is_null(), "{reply}");
    reply["result"].clone()
}

const ZERO_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The `update3` notifications received so far, each as (txn id, inserted
/// keys, other row updates).
fn drain_updates(rpc: &mut Rpc, into: &mut Vec<(String, Vec<String>, usize)>) {
    while let Ok(Some(m)) = rpc.next_message(Duration::from_millis(30)) {
        rpc.notifications.push(m);
    }
    for n in rpc.notifications.drain(..) {
        if n["method"] != "update3" {
            continue;
        }
        let id = n["params"][1].as_str().unwrap_or("").to_string();
        let (mut keys, mut other) = (Vec::new(), 0);
        for (_, u) in n["params"][2]["Entry"].as_object().into_iter().flatten() {
            match u.get("insert") {
                Some(row) => keys.push(row["key"].as_str().unwrap_or("").to_string()),
                None => other += 1,
            }
        }
        into.push((id, keys, other));
    }
}

#[test]
fn monitors_on_every_server_see_every_commit_in_commit_order() {
    let etcd = EtcdCluster::single();
    let dir = tempdir();
    let srv = servers(&etcd, 3, dir.path(), &[]);
    let mut monitors: Vec<Rpc> = srv.iter().map(connect).collect();
    for m in &mut monitors {
        let r = monitor_entries(m, ZERO_ID);
        assert_eq!(r[0], false, "{r}");
    }
    // Two writers at once, through the first and the third server.
    const EACH: usize = 40;
    let writers: Vec<_> = [0usize, 2]
        .iter()
        .map(|&w| {
            let addr = srv[w].addr();
            std::thread::spawn(move || {
                let mut rpc = Rpc::connect_retry(&addr, T);
                for i in 0..EACH {
                    let r = transact(
                        &mut rpc,
                        json!([{"op": "insert", "table": "Entry",
                                "row": {"key": format!("w{w}-{i}"), "seq": i as i64}}]),
                    );
                    assert!(txn_error(&r).is_none(), "{r}");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let total = 2 * EACH;
    let mut seen: Vec<Vec<(String, Vec<String>, usize)>> = vec![Vec::new(); srv.len()];
    let deadline = Instant::now() + T;
    while seen.iter().map(Vec::len).min() < Some(total) && Instant::now() < deadline {
        for (m, s) in monitors.iter_mut().zip(seen.iter_mut()) {
            drain_updates(m, s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A moment more for anything extra (a duplicate) to arrive.
    std::thread::sleep(Duration::from_millis(300));
    for (m, s) in monitors.iter_mut().zip(seen.iter_mut()) {
        drain_updates(m, s);
    }
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.len(), total, "server {i}: {} notifications", s.len());
        for (id, keys, other) in s {
            assert_eq!((keys.len(), *other), (1, 0), "one insert per commit: {id}");
        }
        let revs: Vec<i64> = s.iter().map(|(id, _, _)| txn_revision(id)).collect();
        assert!(
            revs.windows(2).all(|w| w[0] < w[1]),
            "server {i}: revisions out of order: {revs:?}"
        );
        // Each writer's commits in the order it made them.
        for w in [0, 2] {
            let mine: Vec<&String> = s
                .iter()
                .map(|(_, k, _)| &k[0])
                .filter(|k| k.starts_with(&format!("w{w}-")))
                .collect();
            let expected: Vec<String> = (0..EACH).map(|i| format!("w{w}-{i}")).collect();
            assert_eq!(mine, expected.iter().collect::<Vec<_>>(), "server {i}");
        }
    }
    // Every server saw the same commits, with the same ids, in the same order.
    for s in &seen[1..] {
        assert_eq!(s, &seen[0]);
    }
    let interleavings = seen[0]
        .windows(2)
        .filter(|w| w[0].1[0][..2] != w[1].1[0][..2])
        .count();
    eprintln!(
        "FIGURES: monitors: {total} commits from 2 servers seen by 3 monitors, \
         each once in revision order; writers interleaved {interleavings} times"
    );
}

const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";

fn nbctl(server: &Oxsdb, args: &[&str]) -> String {
    let mut c = Command::new(tool("ovn-nbctl"));
    c.arg(format!("--db={}", server.tcp()))
        .arg("--timeout=60")
        .args(args);
    let out = run_timeout(&mut c, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "ovn-nbctl {args:?}: {}{}\nserver log:\n{}",
        out.stdout,
        out.stderr,
        server.all_stderr()
    );
    out.stdout
}

#[test]
fn ovn_northd_on_one_server_while_ovn_nbctl_writes_through_another() {
    for s in [NB_SCHEMA, SB_SCHEMA] {
        assert!(
            Path::new(s).exists(),
            "{s} is missing: apt-get install ovn-central"
        );
    }
    let etcd = EtcdCluster::single();
    let dir = tempdir();
    let prefix = unique_prefix();
    let mut args = etcd_args(&etcd.endpoints(), &prefix, &[]);
    args.extend([NB_SCHEMA.to_string(), SB_SCHEMA.to_string()]);
    let a = Oxsdb::start_with_env(&args, &[("RUST_LOG", RUST_LOG)], dir.path());
    let b = Oxsdb::start_with_env(&args, &[("RUST_LOG", RUST_LOG)], dir.path());
    for s in [&a, &b] {
        wait_until(s, "OVN_Northbound open", |rpc| {
            let r = rpc
                .transact(
                    json!(["OVN_Northbound", {"op": "select", "table": "NB_Global", "where": []}]),
                    T,
                )
                .ok()?;
            txn_error(&r).is_none().then_some(())
        });
    }
    let log = dir.path().join("northd.log");
    let mut northd = Command::new(tool("ovn-northd"))
        .arg(format!("--ovnnb-db={}", b.tcp()))
        .arg(format!("--ovnsb-db={}", b.tcp()))
        .arg(format!("--log-file={}", log.display()))
        .arg(format!(
            "--pidfile={}",
            dir.path().join("northd.pid").display()
        ))
        .arg(format!(
            "--unixctl={}",
            dir.path().join("northd.ctl").display()
        ))
        .arg("-vconsole:off")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ovn-northd");
    let began = Instant::now();
    nbctl(&a, &["ls-add", "sw0"]);
    for p in ["p1", "p2", "p3"] {
        nbctl(&a, &["lsp-add", "sw0", p]);
    }
    nbctl(&a, &["lr-add", "r0"]);
    nbctl(
        &a,
        &[
            "lrp-add",
            "r0",
            "r0-sw0",
            "00:00:00:00:ff:01",
            "10.0.0.1/24",
        ],
    );
    // Returns once northd (through B) has answered through the Southbound.
    nbctl(&a, &["--wait=sb", "sync"]);
    let synced = began.elapsed();
    // What northd wrote through B, read through A.
    let mut rpc = connect(&a);
    let r = rpc
        .transact(
            json!(["OVN_Southbound",
                   {"op": "select", "table": "Port_Binding", "where": [], "columns": ["logical_port"]},
                   {"op": "select", "table": "Datapath_Binding", "where": []},
                   {"op": "select", "table": "Logical_Flow", "where": [], "columns": ["table_id"]}]),
            T,
        )
        .unwrap();
    let ports: BTreeSet<&str> = r[0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|row| row["logical_port"].as_str())
        .collect();
    for p in ["p1", "p2", "p3", "r0-sw0"] {
        assert!(ports.contains(p), "no Port_Binding for {p}: {ports:?}");
    }
    assert_eq!(r[1]["rows"].as_array().unwrap().len(), 2, "{}", r[1]);
    let flows = r[2]["rows"].as_array().unwrap().len();
    assert!(flows > 0, "no logical flows");
    // A deletion goes through too.
    nbctl(&a, &["--wait=sb", "lsp-del", "p3"]);
    let r = rpc
        .transact(
            json!(["OVN_Southbound",
                   {"op": "select", "table": "Port_Binding", "where": [["logical_port", "==", "p3"]]}]),
            T,
        )
        .unwrap();
    assert_eq!(r[0]["rows"], json!([]), "p3 still bound");
    // northd took the Southbound lock through B and says it is active.
    let status = run_timeout(
        Command::new(tool("ovs-appctl"))
            .arg("-t")
            .arg(dir.path().join("northd.ctl"))
            .arg("status"),
        T,
    );
    assert!(status.stdout.contains("active"), "{}", status.stdout);
    let _ = northd.kill();
    let _ = northd.wait();
    eprintln!(
        "FIGURES: ovn-northd on B, ovn-nbctl on A: {} ports, {flows} logical flows, synced in {:.2?}",
        ports.len(),
        synced
    );
}

#[test]
fn monitor_cond_since_resumes_on_another_server() {
    let etcd = EtcdCluster::single();
    let endpoint = etcd.endpoints()[0].clone();
    let dir = tempdir();
    let mut srv = servers(&etcd, 2, dir.path(), &[]);
    let insert = |rpc: &mut Rpc, key: &str| {
        let r = transact(
            rpc,
            json!([{"op": "insert", "table": "Entry", "row": {"key": key, "seq": 0}}]),
        );
        assert!(txn_error(&r).is_none(), "{r}");
    };
    // A client follows the database on A.
    let mut client = connect(&srv[0]);
    let r = monitor_entries(&mut client, ZERO_ID);
    assert_eq!(r[0], false);
    let mut writer = connect(&srv[0]);
    for i in 0..5 {
        insert(&mut writer, &format!("a{i}"));
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + T;
    while seen.len() < 5 && Instant::now() < deadline {
        drain_updates(&mut client, &mut seen);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    let last_id = seen[4].0.clone();
    // A dies; what is written meanwhile goes through B.
    srv[0].kill9();
    drop(client);
    let mut writer = connect(&srv[1]);
    for i in 0..3 {
        insert(&mut writer, &format!("b{i}"));
    }
    let inserted_keys = |r: &Value| -> BTreeSet<String> {
        r[2]["Entry"]
            .as_object()
            .map(|rows| {
                rows.values()
                    .filter_map(|u| {
                        // `initial` in a full state, `insert` in a difference.
                        let row = u.get("insert").or_else(|| u.get("initial"))?;
                        row["key"].as_str().map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let missed: BTreeSet<String> = ["b0", "b1", "b2"].iter().map(|s| s.to_string()).collect();
    // On B, from its memory.
    let mut client = connect(&srv[1]);
    let r = monitor_entries(&mut client, &last_id);
    assert_eq!(r[0], true, "{r}");
    assert_eq!(inserted_keys(&r), missed, "{r}");
    assert_eq!(r[2]["Entry"].as_object().unwrap().len(), 3, "{r}");
    let b_id = r[1].as_str().unwrap().to_string();
    assert!(txn_revision(&b_id) > txn_revision(&last_id));
    drop(client);
    // On a server that started after those commits: from etcd's history.
    srv[1].kill9();
    srv[1].start_again();
    wait_ready(&srv[1]);
    let mut client = connect(&srv[1]);
    let r = monitor_entries(&mut client, &last_id);
    assert_eq!(r[0], true, "after a restart: {r}");
    assert_eq!(inserted_keys(&r), missed, "{r}");
    // ... then an empty update3 with the id of the reply (the Python IDL
    // takes its id from notifications only) ...
    let resumed_id = r[1].as_str().unwrap_or("").to_string();
    // ... and it goes on following.
    insert(&mut connect(&srv[1]), "c0");
    let mut more = Vec::new();
    let deadline = Instant::now() + T;
    while more.len() < 2 && Instant::now() < deadline {
        drain_updates(&mut client, &mut more);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(more.len(), 2, "{more:?}");
    assert_eq!(more[0], (resumed_id, Vec::new(), 0), "{more:?}");
    assert_eq!(more[1].1, vec!["c0".to_string()]);
    drop(client);
    // Ids it can't resume from: the full state, found false.
    let all: BTreeSet<String> = ["a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "c0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let future = txn_id_with_revision(&last_id, txn_revision(&last_id) + 1_000_000);
    let foreign = uuid::Uuid::new_v4().to_string();
    for id in [future.as_str(), foreign.as_str()] {
        let mut client = connect(&srv[1]);
        let r = monitor_entries(&mut client, id);
        assert_eq!(r[0], false, "{id}: {r}");
        assert_eq!(inserted_keys(&r), all, "{id}: {r}");
    }
    // Compacted away: etcd no longer has that revision.
    etcd_compact(&endpoint, etcd_revision(&endpoint));
    srv[1].kill9();
    srv[1].start_again();
    wait_ready(&srv[1]);
    let mut client = connect(&srv[1]);
    let r = monitor_entries(&mut client, &last_id);
    assert_eq!(r[0], false, "compacted: {r}");
    assert_eq!(inserted_keys(&r), all, "{r}");
    eprintln!(
        "FIGURES: monitor_cond_since: resumed with found=true on the other server (3 missed rows) \
         and after its restart; found=false with the full state (9 rows) for future, foreign and \
         compacted ids"
    );
}

#[test]
fn ten_thousand_rows_in_one_transaction_and_over_the_limit() {
    const ROWS: usize = 10_000;
    let rows_op = |tag: &str| -> Value {
        let ops: Vec<Value> = (0..ROWS)
            .map(|i| {
                json!({"op": "insert", "table": "Entry",
                       "row": {"key": format!("{tag}{i}"), "seq": i as i64, "payload": "x".repeat(64)}})
            })
            .collect();
        Value::Array(ops)
    };
    // Raised limits: every row, the fence, a comment.
    let etcd = EtcdCluster::start(1, &["--max-txn-ops=20000"]);
    let dir = tempdir();
    let srv = servers(&etcd, 2, dir.path(), &[]);
    let mut a = connect(&srv[0]);
    let began = Instant::now();
    let r = transact(&mut a, rows_op("r"));
    let took = began.elapsed();
    assert!(
        txn_error(&r).is_none(),
        "{}",
        &r.to_string()[..500.min(r.to_string().len())]
    );
    assert_eq!(r.as_array().unwrap().len(), ROWS);
    let rows = wait_until(&srv[1], "10,000 rows on the other server", |rpc| {
        let rows = select_all(rpc, "Entry");
        (rows.len() == ROWS).then_some(rows.len())
    });
    drop(srv);
    drop(etcd);
    // Each of etcd's two limits at its default (128 operations per Txn,
    // 1.5 MiB per request), the other raised.
    let mut refusals = Vec::new();
    for (limits, flag) in [
        (
            ["--max-txn-ops=128", "--max-request-bytes=33554432"],
            "--max-txn-ops",
        ),
        (
            ["--max-txn-ops=20000", "--max-request-bytes=1572864"],
            "--max-request-bytes",
        ),
    ] {
        let etcd = EtcdCluster::start(1, &limits);
        let dir2 = tempdir();
        let srv = servers(&etcd, 1, dir2.path(), &[]);
        let mut a = connect(&srv[0]);
        let r = transact(&mut a, rows_op("o"));
        let e = txn_error(&r).unwrap_or_else(|| panic!("committed over {limits:?}"));
        assert_eq!(e["error"], "resources exhausted", "{e}");
        let details = e["details"].as_str().unwrap_or("").to_string();
        assert!(
            details.contains(flag),
            "the message names {flag}: {details}"
        );
        // Failed whole: nothing of it is in the database.
        assert_eq!(select_all(&mut a, "Entry").len(), 0);
        // A transaction within the limits still commits.
        let r = transact(
            &mut a,
            json!([{"op": "insert", "table": "Entry", "row": {"key": "small"}}]),
        );
        assert!(txn_error(&r).is_none(), "{r}");
        refusals.push(details);
    }
    eprintln!(
        "FIGURES: a {ROWS}-row transaction committed in {took:.2?} with --max-txn-ops=20000 and \
         reached the other server ({rows} rows); over each default limit it failed whole: {refusals:?}"
    );
}

#[test]
fn schemas_live_in_etcd() {
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    let dir = tempdir();
    let prefix = unique_prefix();
    let schema = write_schema(dir.path(), "1.0.0");
    let a = start_server(&endpoints, &prefix, Some(&schema), &[], dir.path());
    wait_ready(&a);
    // A server given no schema serves what the first one stored.
    let b = start_server(&endpoints, &prefix, None, &[], dir.path());
    wait_ready(&b);
    let mut rb = connect(&b);
    let dbs = rb.call("list_dbs", json!([]), T).unwrap();
    assert_eq!(dbs["result"], json!(["_Server", DB]), "{dbs}");
    let schema_a = connect(&a).call("get_schema", json!([DB]), T).unwrap();
    let schema_b = rb.call("get_schema", json!([DB]), T).unwrap();
    assert_eq!(schema_a["result"], schema_b["result"]);
    // One cid for the service, one sid per process, the clustered model.
    let server_rows = |s: &Oxsdb| -> Value {
        let r = connect(s)
            .transact(
                json!(["_Server", {"op": "select", "table": "Database",
                       "where": [["name", "==", DB]]}]),
                T,
            )
            .unwrap();
        r[0]["rows"][0].clone()
    };
    let (ra, rbrow) = (server_rows(&a), server_rows(&b));
    assert_eq!(ra["model"], "clustered", "{ra}");
    assert_eq!(ra["connected"], true, "{ra}");
    assert_eq!(ra["leader"], true, "{ra}");
    assert_eq!(ra["cid"], rbrow["cid"], "{ra} {rbrow}");
    assert_ne!(ra["cid"], json!(["set", []]), "{ra}");
    assert_ne!(ra["sid"], rbrow["sid"], "{ra} {rbrow}");
    // A transaction's comment is stored with it.
    let r = transact(
        &mut rb,
        json!([{"op": "insert", "table": "Entry", "row": {"key": "k"}},
               {"op": "comment", "comment": "added k from B"}]),
    );
    assert!(txn_error(&r).is_none(), "{r}");
    let comments = etcd_range(&endpoints[0], &format!("{prefix}/clus/_/_comments/"));
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0].1, "added k from B");
    // The row and its fence went in that same revision.
    let row_keys = etcd_range(&endpoints[0], &format!("{prefix}/clus/{DB}/Entry/"));
    assert_eq!(row_keys.len(), 1, "{row_keys:?}");
    // A different version of the schema: refused, saying why.
    let newer = write_schema(dir.path(), "1.1.0");
    let mut args = etcd_args(&endpoints, &prefix, &[]);
    args.push(newer.display().to_string());
    match Oxsdb::try_start(&args, dir.path(), None) {
        Ok(_) => panic!("a server with schema version 1.1.0 started on 1.0.0"),
        Err((status, stderr)) => {
            assert!(!status.success());
            assert!(
                stderr.contains("1.0.0") && stderr.contains("1.1.0"),
                "the refusal names both versions: {stderr}"
            );
        }
    }
    // Online conversion through B: A follows (tests/convert_etcd.rs covers it).
    let newer_json: Value =
        serde_json::from_str(&std::fs::read_to_string(&newer).unwrap()).unwrap();
    let r = rb.call("convert", json!([DB, newer_json]), T).unwrap();
    assert_eq!(r["result"], json!({}), "{r}");
    // A fresh connection each time: A disconnects clients that are not
    // change-aware when it takes the new schema, as ovsdb-server does.
    let deadline = Instant::now() + T;
    while connect(&a)
        .call("get_schema", json!([DB]), T)
        .ok()
        .map(|s| s["result"]["version"].clone())
        != Some(json!("1.1.0"))
    {
        assert!(Instant::now() < deadline, "A did not follow the conversion");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stored = etcd_range(&endpoints[0], &format!("{prefix}/clus/_Server/Database/"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    let record: Value = serde_json::from_str(&stored[0].1).unwrap();
    assert_eq!(record["schema"]["version"], "1.1.0");
}
