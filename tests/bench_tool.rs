//! The load tool (`oxsdb-bench`) against oxsdb and ovsdb-server, briefly:
//! every scenario runs to completion on both, its checks find nothing wrong
//! on either (no error, no missed or duplicated notification, whole
//! snapshots), and its report holds the figures the side-by-side script
//! reads. `etcd-txn` runs against a real etcd. `condfanout` runs small on
//! the Southbound schema against both: a differential test of conditional
//! monitors (initial rows, updates, condition changes, final rows all
//! checked row by row by the tool). Timings are not asserted.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::etcd::EtcdCluster;
use support::servers::{Kind, Server};

const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";
const T: std::time::Duration = std::time::Duration::from_secs(20);

/// Runs the tool; returns its JSON report after checking its exit status.
fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_oxsdb-bench"))
        .args(args)
        .output()
        .expect("running oxsdb-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "oxsdb-bench {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("report {last:?}: {e}\n{stderr}"))
}

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("report without {key}: {report}"))
}

/// Every scenario against one server.
fn scenarios(kind: Kind) {
    support::tools::require_file(Path::new(NB_SCHEMA));
    let server = Server::start(kind, &[Path::new(NB_SCHEMA)]);
    let remote = server.tcp();
    let pid = server.pid().expect("server pid").to_string();
    let global = ["--remote", remote.as_str(), "--server-pid", pid.as_str()];
    let with = |rest: &[&str]| -> Value {
        let args: Vec<&str> = global.iter().chain(rest).copied().collect();
        bench(&args)
    };
    let name = kind.name();

    let r = with(&["txn", "--clients", "4", "--seconds", "1"]);
    assert!(number(&r, "committed") >= 4.0, "{name} txn: {r}");
    assert_eq!(number(&r, "errors"), 0.0, "{name} txn: {r}");
    assert!(
        number(&r, "rate") > 0.0 && number(&r, "p99_ms") >= number(&r, "p50_ms"),
        "{name}: {r}"
    );
    assert!(
        r["cpu_us_per_op"].is_number(),
        "{name} txn: CPU from /proc: {r}"
    );

    let r = with(&["fanout", "--monitors", "50", "--txns", "20"]);
    assert_eq!(
        number(&r, "delivered"),
        1000.0,
        "{name} fanout: every monitor, every insert: {r}"
    );
    for k in ["missed", "duplicated", "unexpected", "errors"] {
        assert_eq!(number(&r, k), 0.0, "{name} fanout {k}: {r}");
    }
    assert!(number(&r, "max_ms") >= number(&r, "p99_ms"), "{name}: {r}");

    let r = with(&[
        "snapshot",
        "--ports",
        "1000",
        "--switches",
        "10",
        "--fetches",
        "2",
    ]);
    assert_eq!(number(&r, "rows"), 1010.0, "{name} snapshot: {r}");
    assert_eq!(number(&r, "errors"), 0.0, "{name} snapshot: {r}");

    let r = with(&["bulk", "--rows", "1000", "--repeat", "2"]);
    assert_eq!(number(&r, "errors"), 0.0, "{name} bulk: {r}");
    assert!(number(&r, "rows_per_s") > 0.0, "{name} bulk: {r}");
}

#[test]
fn every_scenario_on_oxsdb() {
    scenarios(Kind::Oxsdb);
}

#[test]
fn every_scenario_on_ovsdb_server() {
    scenarios(Kind::Reference);
}

/// `condfanout` small against one server: every exactness check passes and
/// the counts are those the parameters imply.
fn condfanout(kind: Kind) {
    support::tools::require_file(Path::new(SB_SCHEMA));
    let server = Server::start(kind, &[Path::new(SB_SCHEMA)]);
    let remote = server.tcp();
    let pid = server.pid().expect("server pid").to_string();
    let (datapaths, ports, sessions, clauses, changes, churn) = (50, 3, 20, 10, 40, 4);
    let args = [
        "--remote".to_string(),
        remote,
        "--server-pid".to_string(),
        pid,
        "condfanout".to_string(),
        format!("--datapaths={datapaths}"),
        format!("--ports={ports}"),
        format!("--sessions={sessions}"),
        format!("--clauses={clauses}"),
        "--writes=150".to_string(),
        format!("--changes={changes}"),
        "--change-parallelism=4".to_string(),
        format!("--churn={churn}"),
        "--seed=7".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = bench(&args);
    let name = kind.name();
    for (k, v) in r["exactness"].as_object().expect("exactness section") {
        assert_eq!(v.as_u64(), Some(0), "{name} condfanout {k}: {r}");
    }
    for k in ["missed", "duplicated", "unexpected", "errors"] {
        assert_eq!(number(&r, k), 0.0, "{name} condfanout {k}: {r}");
    }
    assert_eq!(number(&r, "writes"), 150.0, "{name}: {r}");
    // 150 writes over 150 distinct ports, each seen by the sessions listing
    // its datapath: with 20 x 10 of 50 datapaths, some reach none, most
    // reach several.
    assert!(number(&r, "notifications") > 0.0, "{name}: {r}");
    assert_eq!(
        number(&r, "notifications"),
        number(&r, "notifications_expected"),
        "{name}: {r}"
    );
    assert_eq!(number(&r, "changes"), changes as f64, "{name}: {r}");
    let moved = (changes * churn) as f64;
    assert_eq!(number(&r, "datapaths_added"), moved, "{name}: {r}");
    assert_eq!(number(&r, "datapaths_removed"), moved, "{name}: {r}");
    assert_eq!(
        number(&r, "change_rows"),
        2.0 * moved * ports as f64,
        "{name}: {r}"
    );
    assert_eq!(
        number(&r, "final_rows"),
        (sessions * clauses * ports) as f64,
        "{name}: every session holds the ports of its {clauses} datapaths: {r}"
    );
    assert!(r["cpu_ms_per_setup"].is_number(), "{name}: {r}");
}

#[test]
fn condfanout_on_oxsdb() {
    condfanout(Kind::Oxsdb);
}

#[test]
fn condfanout_on_ovsdb_server() {
    condfanout(Kind::Reference);
}

/// `condfanout` over two oxsdb servers sharing one etcd member: the
/// sessions alternate between them (the writer on the first), every check
/// passes on both, and the report gives each server's own share.
#[test]
fn condfanout_over_two_servers_on_one_etcd() {
    support::tools::require_file(Path::new(SB_SCHEMA));
    let etcd = EtcdCluster::single();
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = support::cluster::unique_prefix();
    let endpoints = etcd.endpoints();
    let a = support::cluster::start_server(
        &endpoints,
        &prefix,
        Some(Path::new(SB_SCHEMA)),
        &[],
        dir.path(),
    );
    let b = support::cluster::start_server(&endpoints, &prefix, None, &[], dir.path());
    for server in [&a, &b] {
        support::cluster::wait_until(server, "OVN_Southbound served", |rpc| {
            let dbs = rpc.call("list_dbs", serde_json::json!([]), T).ok()?;
            dbs["result"]
                .to_string()
                .contains("OVN_Southbound")
                .then_some(())
        });
    }
    let pids = [a.pid().expect("pid"), b.pid().expect("pid")].map(|p| p.to_string());
    let (ra, rb) = (a.tcp(), b.tcp());
    let r = bench(&[
        "--remote",
        &ra,
        "--remote",
        &rb,
        "--server-pid",
        &pids[0],
        "--server-pid",
        &pids[1],
        "condfanout",
        "--datapaths=40",
        "--ports=2",
        "--sessions=10",
        "--clauses=8",
        "--writes=80",
        "--changes=20",
        "--change-parallelism=4",
        "--churn=3",
        "--seed=3",
    ]);
    for (k, v) in r["exactness"].as_object().expect("exactness section") {
        assert_eq!(v.as_u64(), Some(0), "two servers condfanout {k}: {r}");
    }
    assert_eq!(
        number(&r, "notifications"),
        number(&r, "notifications_expected"),
        "{r}"
    );
    let per = r["per_server"].as_array().expect("per_server");
    assert_eq!(per.len(), 2, "{r}");
    let total: f64 = per.iter().map(|s| number(s, "notifications")).sum();
    assert_eq!(total, number(&r, "notifications"), "{r}");
    for (s, remote) in per.iter().zip([&ra, &rb]) {
        assert_eq!(s["remote"].as_str(), Some(remote.as_str()), "{r}");
        assert!(
            number(s, "notifications") > 0.0,
            "each server's sessions got some: {r}"
        );
        assert!(s["cpu_us_per_notification"].is_number(), "{r}");
    }
}

#[test]
fn etcd_txn_on_a_real_etcd() {
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints().join(",");
    let r = bench(&[
        "etcd-txn",
        "--endpoints",
        &endpoints,
        "--clients",
        "4",
        "--seconds",
        "1",
    ]);
    assert!(number(&r, "committed") >= 4.0, "{r}");
    assert_eq!(number(&r, "errors"), 0.0, "{r}");
}

#[test]
fn a_server_that_is_not_there_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_oxsdb-bench"))
        .args(["--remote", "tcp:127.0.0.1:1", "txn", "--seconds", "0.1"])
        .output()
        .expect("running oxsdb-bench");
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connecting to tcp:127.0.0.1:1"), "{stderr}");
}
