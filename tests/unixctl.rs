//! The control socket: the real `ovs-appctl` and `ovn-appctl` against
//! oxsdb, outputs compared with the reference ovsdb-server's where scripts
//! read them.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::etcd::EtcdCluster;
use support::process::Oxsdb;
use support::reference::ReferenceServer;
use support::tools::{ovsdb_tool_create, run, tool, Output, TOOL_TIMEOUT};

const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";

/// `ovs-appctl -t CTL ARGS...` (or another appctl program).
fn appctl_with(program: &str, ctl: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(tool(program));
    c.arg("-t").arg(ctl).args(args);
    run(&mut c, TOOL_TIMEOUT)
}

fn appctl(ctl: &Path, args: &[&str]) -> Output {
    appctl_with("ovs-appctl", ctl, args)
}

/// rc, stdout and stderr, with the socket's path (which differs) replaced.
fn shown(o: &Output, ctl: &Path) -> String {
    o.all().replace(&ctl.display().to_string(), "CTL")
}

/// A fresh NB database file in `dir`, made by ovsdb-tool.
fn nb_file(dir: &Path, name: &str) -> PathBuf {
    support::tools::require_file(Path::new(NB));
    let db = dir.join(name);
    ovsdb_tool_create(&db, Path::new(NB)).expect("ovsdb-tool create");
    db
}

/// oxsdb on `db` with its control socket and log file in `dir`.
fn oxsdb_on(dir: &Path, db: &Path, extra: &[&str]) -> (Oxsdb, PathBuf) {
    let ctl = dir.join("oxsdb.ctl");
    let mut args = vec![
        format!("--unixctl={}", ctl.display()),
        format!("--log-file={}", dir.join("oxsdb.log").display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(db.display().to_string());
    (Oxsdb::start(&args, dir, None), ctl)
}

#[test]
fn commands_answer_as_ovsdb_server_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = ReferenceServer::start(Path::new(NB));
    let db = nb_file(dir.path(), "nb.db");
    let (_ox, ctl) = oxsdb_on(dir.path(), &db, &[]);
    let rctl = reference.ctl();
    for cmd in [
        &["ovsdb-server/list-dbs"][..],
        &["ovsdb-server/list-remotes"],
        &["ovsdb-server/sync-status"],
        &["ovsdb-server/get-db-storage-status", "OVN_Northbound"],
        &["ovsdb-server/get-db-storage-status", "_Server"],
        &["ovsdb-server/get-db-storage-status", "nope"],
        &["ovsdb-server/compact"],
        &["ovsdb-server/compact", "OVN_Northbound"],
        &["ovsdb-server/compact", "nope"],
        &["ovsdb-server/compact", "_Server"],
        &["ovsdb-server/reconnect"],
        &["ovsdb-server/add-remote"],
        &["ovsdb-server/remove-remote", "punix:/nonexistent"],
        &["ovsdb-server/remove-db", "nope"],
        &["ovsdb-server/remove-db", "_Server"],
        &["vlog/reopen"],
        &["vlog/set", "nosuch"],
        &["vlog/set", "console:file"],
        &["vlog/set", "info:dbg"],
        &["vlog/set", "console:off"],
        &["version", "extra"],
        &["list-commands", "extra"],
        &["no-such-command"],
        &["cluster/status", "OVN_Northbound"],
        &["ovsdb-server/disconnect-active-ovsdb-server"],
        &["ovsdb-server/get-active-ovsdb-server"],
        &["ovsdb-server/memory-trim-on-compaction", "on"],
        &["ovsdb-server/memory-trim-on-compaction", "maybe"],
        &["vlog/disable-rate-limit"],
    ] {
        let want = shown(&appctl(&rctl, cmd), &rctl);
        let got = shown(&appctl(&ctl, cmd), &ctl);
        assert_eq!(got, want, "ovs-appctl {cmd:?}");
    }
    // ovn-appctl speaks the same protocol.
    let want = shown(
        &appctl_with("ovn-appctl", &rctl, &["ovsdb-server/list-dbs"]),
        &rctl,
    );
    let got = shown(
        &appctl_with("ovn-appctl", &ctl, &["ovsdb-server/list-dbs"]),
        &ctl,
    );
    assert_eq!(got, want);
}

#[test]
fn version_reads_as_a_recent_ovsdb_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = nb_file(dir.path(), "nb.db");
    let (_ox, ctl) = oxsdb_on(dir.path(), &db, &[]);
    let out = appctl(&ctl, &["version"]);
    assert!(out.success(), "{}", out.all());
    let first = out.stdout.lines().next().unwrap_or_default();
    // ovn-lib's stop_ovn_daemon takes the first line's last word and uses
    // `exit` for versions from 2.5.90 on.
    assert!(first.contains(" (Open vSwitch) "), "{first}");
    let version: Vec<u32> = first
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    assert!(version >= vec![2, 5, 90], "{first}");
    assert!(out.stdout.contains("oxsdb"), "{}", out.stdout);
}

#[test]
fn list_commands_has_the_operators_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = nb_file(dir.path(), "nb.db");
    let (_ox, ctl) = oxsdb_on(dir.path(), &db, &[]);
    let out = appctl(&ctl, &["list-commands"]);
    assert!(out.success(), "{}", out.all());
    assert!(out.stdout.starts_with("The available commands are:\n"));
    for cmd in [
        "list-commands",
        "version",
        "exit",
        "ovsdb-server/compact",
        "ovsdb-server/reconnect",
        "ovsdb-server/add-remote REMOTE",
        "ovsdb-server/remove-remote REMOTE",
        "ovsdb-server/list-remotes",
        "ovsdb-server/list-dbs",
        "ovsdb-server/add-db     DB",
        "ovsdb-server/remove-db  DB",
        "ovsdb-server/get-db-storage-status DB",
        "memory/show",
        "vlog/set",
        "vlog/list",
        "vlog/reopen",
        "coverage/show",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("  {cmd}"))),
            "{cmd} missing:\n{}",
            out.stdout
        );
    }
}

#[test]
fn exit_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = nb_file(dir.path(), "nb.db");
    let pidfile = dir.path().join("x.pid");
    let (mut ox, ctl) = oxsdb_on(
        dir.path(),
        &db,
        &[&format!("--pidfile={}", pidfile.display())],
    );
    let out = appctl(&ctl, &["exit"]);
    assert_eq!(out.all(), "rc=0\nstdout:\nstderr:\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ox.is_running() {
        assert!(Instant::now() < deadline, "oxsdb did not exit after `exit`");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!ctl.exists(), "control socket removed at exit");
    assert!(!pidfile.exists(), "pidfile removed at exit");
    // `exit --cleanup` (ovs-vswitchd's) is accepted too.
    let (mut ox, ctl) = oxsdb_on(dir.path(), &db, &[]);
    assert!(appctl(&ctl, &["exit", "--cleanup"]).success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while ox.is_running() {
        assert!(
            Instant::now() < deadline,
            "oxsdb did not exit after `exit --cleanup`"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn vlog_levels_are_set_and_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = nb_file(dir.path(), "nb.db");
    let (_ox, ctl) = oxsdb_on(dir.path(), &db, &["-vconsole:off", "-vfile:info"]);
    let list = appctl(&ctl, &["vlog/list"]).stdout;
    assert!(list.starts_with("                 console    syslog    file\n                 -------    ------    ------\n"), "{list}");
    assert!(
        list.contains("\nstorage            OFF        OFF       INFO\n"),
        "{list}"
    );
    assert!(appctl(&ctl, &["vlog/set", "storage:file:dbg", "syslog:warn"]).success());
    let list = appctl(&ctl, &["vlog/list"]).stdout;
    assert!(
        list.contains("\nstorage            OFF       WARN        DBG\n"),
        "{list}"
    );
    assert!(
        list.contains("\nactors             OFF       WARN       INFO\n"),
        "{list}"
    );
    // New levels take effect at once: the control socket logs each
    // request at DBG.
    let log = dir.path().join("oxsdb.log");
    assert!(appctl(&ctl, &["vlog/list"]).success());
    assert!(!std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("control request"));
    assert!(appctl(&ctl, &["vlog/set", "unixctl:file:dbg"]).success());
    assert!(appctl(&ctl, &["ovsdb-server/list-dbs"]).success());
    let text = wait_for_text(&log, "control request");
    assert!(
        text.contains("|unixctl|DBG|control request method=ovsdb-server/list-dbs"),
        "{text}"
    );
    // No argument: everything at DBG, as in OVS.
    assert!(appctl(&ctl, &["vlog/set"]).success());
    let list = appctl(&ctl, &["vlog/list"]).stdout;
    assert!(
        list.contains("\nactors             DBG        DBG        DBG\n"),
        "{list}"
    );
}

/// Waits until `path` contains `what`.
fn wait_for_text(path: &Path, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(what) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {what:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn log_file_reopens_after_rotation_by_vlog_reopen_and_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = nb_file(dir.path(), "nb.db");
    let (ox, ctl) = oxsdb_on(dir.path(), &db, &["-vconsole:off"]);
    let log = dir.path().join("oxsdb.log");
    wait_for_text(&log, "listening on");
    std::fs::rename(&log, dir.path().join("oxsdb.log.1")).expect("rotate");
    assert!(appctl(&ctl, &["vlog/reopen"]).success());
    // Compaction logs a line at INFO.
    assert!(appctl(&ctl, &["ovsdb-server/compact"]).success());
    wait_for_text(&log, "compacting database by user request");
    std::fs::rename(&log, dir.path().join("oxsdb.log.2")).expect("rotate");
    support::tools::send_signal(ox.pid().expect("running"), libc::SIGHUP);
    wait_for_text(&log, "log file reopened");
    let old = std::fs::read_to_string(dir.path().join("oxsdb.log.1")).expect("rotated log");
    assert!(!old.contains("compacting"), "{old}");
    // Lines in ovsdb-server's layout: TIME|SEQUENCE|MODULE|LEVEL|MESSAGE.
    for line in old.lines().filter(|l| !l.starts_with("oxsdb: ")) {
        let f: Vec<&str> = line.splitn(5, '|').collect();
        assert_eq!(f.len(), 5, "{line}");
        assert!(
            f[0].len() == 24 && f[0].ends_with('Z') && f[0].as_bytes()[10] == b'T',
            "{line}"
        );
        assert!(
            f[1].len() == 5 && f[1].bytes().all(|b| b.is_ascii_digit()),
            "{line}"
        );
        assert!(["ERR", "WARN", "INFO", "DBG"].contains(&f[3]), "{line}");
    }
    assert!(
        old.contains("|actors|INFO|listening on punix:") || old.contains("|INFO|listening on"),
        "{old}"
    );
}

#[test]
fn add_db_and_remove_db_change_what_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = nb_file(dir.path(), "nb.db");
    let sb = dir.path().join("sb.db");
    ovsdb_tool_create(&sb, Path::new("/usr/share/ovn/ovn-sb.ovsschema")).expect("create sb");
    let (ox, ctl) = oxsdb_on(dir.path(), &db, &[]);
    let sbs = sb.display().to_string();
    let add = appctl(&ctl, &["ovsdb-server/add-db", &sbs]);
    assert!(add.success(), "{}", add.all());
    assert_eq!(
        appctl(&ctl, &["ovsdb-server/list-dbs"]).stdout,
        "OVN_Northbound\nOVN_Southbound\n_Server\n"
    );
    let mut c = Command::new(tool("ovsdb-client"));
    c.args(["list-dbs", &ox.tcp()]);
    let listed = run(&mut c, TOOL_TIMEOUT);
    assert_eq!(
        listed.stdout,
        "OVN_Northbound\nOVN_Southbound\n_Server\n",
        "{}",
        listed.all()
    );
    let again = appctl(&ctl, &["ovsdb-server/add-db", &sbs]);
    assert_eq!(again.status.code(), Some(2));
    assert!(again.stderr.contains("already open"), "{}", again.all());
    assert!(appctl(&ctl, &["ovsdb-server/remove-db", "OVN_Southbound"]).success());
    assert_eq!(
        appctl(&ctl, &["ovsdb-server/list-dbs"]).stdout,
        "OVN_Northbound\n_Server\n"
    );
    // Removed for good: clients no longer see it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = run(&mut c, TOOL_TIMEOUT);
        if listed.stdout == "OVN_Northbound\n_Server\n" {
            break;
        }
        assert!(Instant::now() < deadline, "{}", listed.all());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends raw bytes to the control socket and reads what comes back until
/// the server closes the connection or a JSON value arrives.
fn raw(ctl: &Path, bytes: &[u8]) -> Option<Value> {
    let mut s = UnixStream::connect(ctl).expect("connect to the control socket");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                    return Some(v);
                }
            }
        }
    }
}

#[test]
fn bad_input_gets_an_error_or_a_closed_connection_never_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = nb_file(dir.path(), "nb.db");
    let (mut ox, ctl) = oxsdb_on(dir.path(), &db, &[]);
    let reply = raw(&ctl, br#"{"method": "version", "params": [1], "id": 7}"#).expect("a reply");
    assert_eq!(
        reply["error"],
        json!("\"version\" command takes at most 0 arguments\n")
    );
    let reply = raw(
        &ctl,
        br#"{"method": "ovsdb-server/compact", "params": [1], "id": 8}"#,
    )
    .expect("a reply");
    assert_eq!(
        reply["error"],
        json!("\"ovsdb-server/compact\" command has non-string argument\n")
    );
    assert_eq!(reply["id"], json!(8));
    // Not JSON, not a request, a notification, too large: the connection closes.
    assert_eq!(raw(&ctl, b"}}}not json"), None);
    assert_eq!(
        raw(&ctl, br#"{"result": "x", "error": null, "id": 1}"#),
        None
    );
    assert_eq!(
        raw(&ctl, br#"{"method": "exit", "params": [], "id": null}"#),
        None
    );
    let mut huge = br#"{"method": "version", "params": [""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 2 << 20));
    huge.extend(br#""], "id": 1}"#);
    assert_eq!(raw(&ctl, &huge), None);
    assert!(ox.is_running(), "oxsdb died");
    assert!(appctl(&ctl, &["ovsdb-server/list-dbs"]).success());
}

#[test]
fn cluster_status_on_etcd_reports_members_and_health() {
    let etcd = EtcdCluster::single();
    let dir = tempfile::tempdir().expect("tempdir");
    let ctl = dir.path().join("oxsdb.ctl");
    let mut args =
        support::cluster::etcd_args(&etcd.endpoints(), &support::cluster::unique_prefix(), &[]);
    args.push(format!("--unixctl={}", ctl.display()));
    args.push(NB.to_string());
    let ox = Oxsdb::start(&args, dir.path(), None);
    // Databases open once the store answers.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let out = appctl_with("ovn-appctl", &ctl, &["cluster/status", "OVN_Northbound"]);
        if out.stdout.contains("Status: cluster member") {
            break out.stdout;
        }
        assert!(Instant::now() < deadline, "{}", out.all());
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(lines[1], "Name: OVN_Northbound", "{status}");
    for want in ["Role: leader", "Leader: self", "Servers:"] {
        assert!(lines.contains(&want), "{want} missing:\n{status}");
    }
    assert!(
        lines.iter().any(|l| l.starts_with("Cluster ID: ")),
        "{status}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Server ID: ")),
        "{status}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Applied revision: ")),
        "{status}"
    );
    let servers = &lines[lines.iter().position(|l| *l == "Servers:").unwrap_or(0) + 1..];
    assert_eq!(servers.len(), 1, "{status}");
    assert!(servers[0].contains("(leader) healthy"), "{status}");
    assert!(servers[0].contains(&etcd.endpoints()[0]), "{status}");
    let bad = appctl(&ctl, &["cluster/status", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stderr.starts_with("unknown cluster\n"), "{}", bad.all());
    let sid = appctl(&ctl, &["cluster/sid", "OVN_Northbound"]).stdout;
    assert!(
        status.contains(&format!("({})", sid.trim())),
        "{sid} {status}"
    );
    // A clustered database has no ephemeral columns, so that
    // needs-conversion with the same schema says "no", as for ovsdb-server.
    let mut c = Command::new(tool("ovsdb-client"));
    c.args(["needs-conversion", &ox.tcp(), NB]);
    let out = run(&mut c, TOOL_TIMEOUT);
    // (ovsdb-client warns on stderr that it made the columns persistent.)
    assert!(out.success(), "{}", out.all());
    assert_eq!(out.stdout, "no\n", "{}", out.all());
}

#[test]
fn needs_conversion_on_a_clustered_reference_says_no_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("nb.db");
    let mut c = Command::new(tool("ovsdb-tool"));
    c.arg("create-cluster")
        .arg(&db)
        .arg(NB)
        .arg("tcp:127.0.0.1:0");
    let created = run(&mut c, TOOL_TIMEOUT);
    assert!(created.success(), "{}", created.all());
    let reference = ReferenceServer::on_files(&[db], dir.path());
    let mut c = Command::new(tool("ovsdb-client"));
    c.args(["needs-conversion", &reference.tcp(), NB]);
    // Waits for the one-member cluster to elect itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run(&mut c, TOOL_TIMEOUT);
        if out.success() {
            assert_eq!(out.stdout, "no\n");
            break;
        }
        assert!(Instant::now() < deadline, "{}", out.all());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `cluster/status` of `db` once `f` accepts it.
fn cluster_status_until(ctl: &Path, what: &str, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = appctl(ctl, &["cluster/status", "OVN_Northbound"]);
        if out.success() && f(&out.stdout) {
            return out.stdout;
        }
        assert!(Instant::now() < deadline, "{what}: {}", out.all());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cluster_status_follows_etcd_members_health_and_reachability() {
    let mut etcd = EtcdCluster::start(3, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let ctl = dir.path().join("oxsdb.ctl");
    let mut args =
        support::cluster::etcd_args(&etcd.endpoints(), &support::cluster::unique_prefix(), &[]);
    args.push(format!("--unixctl={}", ctl.display()));
    args.push(NB.to_string());
    let _ox = Oxsdb::start(&args, dir.path(), None);
    let servers = |s: &str| -> Vec<String> {
        s.lines()
            .skip_while(|l| *l != "Servers:")
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    let status = cluster_status_until(&ctl, "three healthy members", |s| {
        s.contains("Status: cluster member\n")
            && servers(s).iter().filter(|l| l.contains(" healthy")).count() == 3
    });
    assert_eq!(servers(&status).len(), 3, "{status}");
    assert_eq!(
        servers(&status)
            .iter()
            .filter(|l| l.contains("(leader)"))
            .count(),
        1,
        "{status}"
    );
    // One member down: still a member, the lost one unhealthy.
    etcd.members[2].kill_keeping_data();
    let status = cluster_status_until(&ctl, "one unhealthy member", |s| {
        servers(s).iter().any(|l| l.contains(" unhealthy: "))
    });
    assert!(status.contains("Status: cluster member\n"), "{status}");
    assert!(
        status.contains("Store members: 2 healthy of 3\n"),
        "{status}"
    );
    // The whole store stalled: disconnected, and the storage status says why.
    etcd.members[0].pause();
    etcd.members[1].pause();
    let status = cluster_status_until(&ctl, "disconnected", |s| {
        s.contains("Status: disconnected from the cluster (")
    });
    assert!(status.contains("Leader: unknown\n"), "{status}");
    let st = appctl(
        &ctl,
        &["ovsdb-server/get-db-storage-status", "OVN_Northbound"],
    );
    assert!(
        st.success() && st.stdout.starts_with("status: ") && st.stdout != "status: ok\n",
        "{}",
        st.all()
    );
    // Back again (with two of three members: a quorum).
    etcd.members[0].resume();
    etcd.members[1].resume();
    cluster_status_until(&ctl, "a member again", |s| {
        s.contains("Status: cluster member\n")
    });
    let st = appctl(
        &ctl,
        &["ovsdb-server/get-db-storage-status", "OVN_Northbound"],
    );
    assert_eq!(st.stdout, "status: ok\n", "{}", st.all());
}

/// A port free now on the loopback address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn add_and_remove_remotes_act_as_ovsdb_server_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = ReferenceServer::start(Path::new(NB));
    let db = nb_file(dir.path(), "nb.db");
    let (_ox, ctl) = oxsdb_on(dir.path(), &db, &[]);
    let mut transcripts = Vec::new();
    for ctl in [ctl, reference.ctl()] {
        let port = free_port();
        let remote = format!("ptcp:{port}:127.0.0.1");
        let mut t = String::new();
        let step = |t: &mut String, args: &[&str]| {
            let o = appctl(&ctl, args);
            let line = format!("{args:?} -> {}\n", shown(&o, &ctl));
            t.push_str(&line.replace(&port.to_string(), "PORT"));
        };
        step(&mut t, &["ovsdb-server/add-remote", &remote]);
        step(&mut t, &["ovsdb-server/add-remote", &remote]);
        step(&mut t, &["ovsdb-server/list-remotes"]);
        // The new listener serves clients.
        let connected = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        t.push_str(&format!("connects after add: {connected}\n"));
        step(&mut t, &["ovsdb-server/remove-remote", &remote]);
        step(&mut t, &["ovsdb-server/remove-remote", &remote]);
        step(&mut t, &["ovsdb-server/list-remotes"]);
        let refused = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        });
        t.push_str(&format!("refused after remove: {refused}\n"));
        for bad in [
            "db:Nope,NB_Global,connections",
            "db:OVN_Northbound,Nope,connections",
            "db:OVN_Northbound,NB_Global,nope",
            "db:OVN_Northbound",
        ] {
            step(&mut t, &["ovsdb-server/add-remote", bad]);
        }
        step(
            &mut t,
            &[
                "ovsdb-server/add-remote",
                "db:OVN_Northbound,NB_Global,connections",
            ],
        );
        step(&mut t, &["ovsdb-server/list-remotes"]);
        transcripts.push(t);
    }
    assert_eq!(
        transcripts[0], transcripts[1],
        "oxsdb (left) and ovsdb-server (right) differ"
    );
}
