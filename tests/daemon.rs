//! Open vSwitch daemon conventions: --detach, --monitor, --no-chdir,
//! --pidfile (its default name and lock), --overwrite-pidfile, --user,
//! -v specs and --log-file defaults, run as ovn-ctl and systemd units do.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::process::Oxsdb;
use support::tools::{oxsdb_bin, run, send_signal, tool, Output, TOOL_TIMEOUT};

const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";

fn appctl(env: &[(&str, &Path)], target: &str, args: &[&str]) -> Output {
    let mut c = Command::new(tool("ovs-appctl"));
    c.args(["-t", target]).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c, TOOL_TIMEOUT)
}

/// Runs oxsdb to completion (a detaching one returns once ready).
fn oxsdb_run(args: &[String], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(oxsdb_bin());
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c, Duration::from_secs(60))
}

fn read_pid(pidfile: &Path) -> u32 {
    let text = std::fs::read_to_string(pidfile).expect("pidfile");
    text.trim().parse().expect("a pid")
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a detached server through its control socket.
fn stop(ctl: &Path, pid: u32) {
    let out = appctl(&[], &ctl.display().to_string(), &["exit"]);
    assert!(out.success(), "{}", out.all());
    wait_until("the daemon exits", || !alive(pid));
}

fn common(dir: &Path) -> (Vec<String>, PathBuf, PathBuf) {
    let ctl = dir.join("db.ctl");
    let pidfile = dir.join("db.pid");
    let args = vec![
        format!("--pidfile={}", pidfile.display()),
        format!("--unixctl={}", ctl.display()),
        format!("--log-file={}", dir.join("db.log").display()),
        "-vconsole:off".to_string(),
        format!("--remote=punix:{}", dir.join("db.sock").display()),
        format!("--data-dir={}", dir.display()),
    ];
    (args, ctl, pidfile)
}

#[test]
fn detach_returns_once_ready_and_exit_cleans_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut args, ctl, pidfile) = common(dir.path());
    args.extend(["--detach".to_string(), NB.to_string()]);
    // Returns (its output closed) with the server listening.
    let out = oxsdb_run(&args, &[]);
    assert!(out.success(), "{}", out.all());
    let pid = read_pid(&pidfile);
    assert!(alive(pid));
    assert!(dir.path().join("db.sock").exists());
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).expect("cwd");
    assert_eq!(
        cwd,
        Path::new("/"),
        "a detached daemon leaves its directory"
    );
    let dbs = appctl(&[], &ctl.display().to_string(), &["ovsdb-server/list-dbs"]);
    assert_eq!(dbs.stdout, "OVN_Northbound\n_Server\n");
    stop(&ctl, pid);
    assert!(!pidfile.exists(), "pidfile removed");
    assert!(!ctl.exists(), "control socket removed");
    assert!(!dir.path().join("db.sock").exists(), "socket removed");
}

#[test]
fn no_chdir_keeps_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut args, ctl, pidfile) = common(dir.path());
    args.extend(["--detach".into(), "--no-chdir".into(), NB.to_string()]);
    let mut c = Command::new(oxsdb_bin());
    c.args(&args).current_dir(dir.path()).stdin(Stdio::null());
    let out = run(&mut c, Duration::from_secs(60));
    assert!(out.success(), "{}", out.all());
    let pid = read_pid(&pidfile);
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).expect("cwd");
    assert_eq!(cwd, dir.path().canonicalize().expect("canonical"));
    stop(&ctl, pid);
}

#[test]
fn detach_passes_on_a_start_up_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut args, _, pidfile) = common(dir.path());
    args.extend([
        "--detach".into(),
        "--remote=punix:/nonexistent/dir/db.sock".into(),
        NB.to_string(),
    ]);
    let out = oxsdb_run(&args, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
    assert!(
        out.stderr.contains("/nonexistent/dir/db.sock"),
        "{}",
        out.all()
    );
    assert!(!pidfile.exists(), "no pidfile left behind");
}

#[test]
fn monitor_restarts_a_crashed_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut args, ctl, pidfile) = common(dir.path());
    args.extend(["--detach".into(), "--monitor".into(), NB.to_string()]);
    let out = oxsdb_run(&args, &[]);
    assert!(out.success(), "{}", out.all());
    let first = read_pid(&pidfile);
    send_signal(first, libc::SIGABRT);
    wait_until("a new server runs", || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .is_some_and(|p| p != first && alive(p))
    });
    let second = read_pid(&pidfile);
    wait_until("the new server answers", || {
        appctl(&[], &ctl.display().to_string(), &["version"]).success()
    });
    let log = std::fs::read_to_string(dir.path().join("db.log")).expect("log");
    assert!(
        log.contains(&format!("pid {first} died, killed by signal 6, restarting")),
        "{log}"
    );
    // A clean exit is not restarted: the monitor exits too.
    stop(&ctl, second);
    wait_until("the monitor records the exit", || {
        std::fs::read_to_string(dir.path().join("db.log"))
            .is_ok_and(|l| l.contains(&format!("pid {second} died, exit status 0, exiting")))
    });
}

#[test]
fn a_held_pidfile_refuses_a_second_server_unless_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("x.pid");
    let schema_dir = tempfile::tempdir().expect("tempdir");
    let first = Oxsdb::start(
        &[
            format!("--pidfile={}", pidfile.display()),
            format!("--data-dir={}", schema_dir.path().display()),
            "--store=memory".into(),
            NB.into(),
        ],
        dir.path(),
        None,
    );
    let holder = first.pid().expect("running");
    let out = support::process::oxsdb_fails(&[
        format!("--pidfile={}", pidfile.display()),
        "--unixctl=none".into(),
        "--store=memory".into(),
        NB.into(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
    assert!(
        out.stderr.contains(&format!(
            "{}: already running as pid {holder}",
            pidfile.display()
        )),
        "{}",
        out.all()
    );
    let second = Oxsdb::start(
        &[
            format!("--pidfile={}", pidfile.display()),
            "--overwrite-pidfile".into(),
            "--unixctl=none".into(),
            "--store=memory".into(),
            NB.into(),
        ],
        dir.path(),
        None,
    );
    assert_eq!(read_pid(&pidfile), second.pid().expect("running"));
}

#[test]
fn default_file_names_follow_the_program_name_and_ovs_dirs() {
    let run_dir = tempfile::tempdir().expect("tempdir");
    let rundir = run_dir.path();
    // Started through a link named ovsdb-server, as ovn-ctl finds it on PATH.
    let link = rundir.join("ovsdb-server");
    std::os::unix::fs::symlink(oxsdb_bin(), &link).expect("symlink");
    let env = [("OVS_RUNDIR", rundir), ("OVS_LOGDIR", rundir)];
    let mut c = Command::new(&link);
    c.args([
        "--detach",
        "--pidfile",
        "--log-file",
        "-vconsole:off",
        "--store=memory",
        NB,
    ])
    .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = run(&mut c, Duration::from_secs(60));
    assert!(out.success(), "{}", out.all());
    let pid = read_pid(&rundir.join("ovsdb-server.pid"));
    assert!(rundir.join(format!("ovsdb-server.{pid}.ctl")).exists());
    assert!(rundir.join("ovsdb-server.log").exists());
    // ovs-appctl finds the server by name through the pidfile.
    let v = appctl(&env, "ovsdb-server", &["ovsdb-server/list-dbs"]);
    assert_eq!(v.stdout, "OVN_Northbound\n_Server\n", "{}", v.all());
    stop(&rundir.join(format!("ovsdb-server.{pid}.ctl")), pid);
}

#[test]
fn user_switches_or_says_why_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    // SAFETY: plain system call.
    let uid = unsafe { libc::geteuid() };
    let me = std::fs::read_to_string("/etc/passwd")
        .expect("passwd")
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2) == Some(&uid.to_string().as_str())).then(|| f[0].to_string())
        })
        .expect("this user in /etc/passwd");
    let ox = Oxsdb::start(
        &[
            format!("--user={me}"),
            "--unixctl=none".into(),
            "--store=memory".into(),
            NB.into(),
        ],
        dir.path(),
        None,
    );
    assert!(ox.pid().is_some());
    let out = support::process::oxsdb_fails(&[
        "--user=no-such-user-oxsdb".to_string(),
        "--store=memory".into(),
        NB.into(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
    assert!(
        out.stderr
            .contains("--user no-such-user-oxsdb: no user named"),
        "{}",
        out.all()
    );
}

#[test]
fn bad_log_specs_are_refused_like_ovsdb_server() {
    let out = support::process::oxsdb_fails(&["-vnosuch", "--store=memory", NB]);
    assert_eq!(out.status.code(), Some(1), "{}", out.all());
    assert!(
        out.stderr
            .contains("processing \"nosuch\": no destination, level, or module \"nosuch\""),
        "{}",
        out.all()
    );
}

#[test]
fn ovn_ctl_ssl_and_db_remote_flags_are_followed_without_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("x.log");
    let mut ox = Oxsdb::start(
        &[
            format!("--log-file={}", log.display()),
            "--unixctl=none".into(),
            "--remote=db:OVN_Northbound,NB_Global,connections".into(),
            "--private-key=db:OVN_Northbound,SSL,private_key".into(),
            "--certificate=db:OVN_Northbound,SSL,certificate".into(),
            "--ca-cert=db:OVN_Northbound,SSL,ca_cert".into(),
            "--ssl-protocols=db:OVN_Northbound,SSL,ssl_protocols".into(),
            "--ssl-ciphers=db:OVN_Northbound,SSL,ssl_ciphers".into(),
            "--store=memory".into(),
            NB.into(),
        ],
        dir.path(),
        None,
    );
    // Followed (tests/tls.rs checks how): an empty database configures
    // nothing, which is no error and nothing to warn about.
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains("WARN"), "{text}");
    assert!(ox.is_running());
    // A key file that does not exist yet does not stop the start (as with
    // ovsdb-server, TLS connections fail until it exists).
    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut ox2 = Oxsdb::start(
        &["--private-key=/nonexistent/key.pem", "--store=memory", NB],
        dir2.path(),
        None,
    );
    assert!(ox2.is_running());
}

#[test]
fn user_nobody_runs_as_nobody_when_root_may_switch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nobody_uid = std::fs::read_to_string("/etc/passwd")
        .expect("passwd")
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == "nobody").then(|| f[2].to_string())
        })
        .expect("a nobody user");
    let args = [
        "--user=nobody".to_string(),
        "--unixctl=none".into(),
        "--store=memory".into(),
        NB.into(),
    ];
    // SAFETY: plain system call.
    if unsafe { libc::geteuid() } == 0 {
        let ox = Oxsdb::start(&args, dir.path(), None);
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", ox.pid().expect("running")))
                .expect("status");
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .expect("Uid line");
        assert!(
            uid.split_whitespace().skip(1).all(|u| u == nobody_uid),
            "{uid}"
        );
    } else {
        let out = support::process::oxsdb_fails(&args);
        assert_eq!(out.status.code(), Some(1), "{}", out.all());
        assert!(out.stderr.contains("only root can switch"), "{}", out.all());
    }
}

#[test]
fn sighup_without_a_log_file_leaves_the_server_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctl = dir.path().join("x.ctl");
    let mut ox = Oxsdb::start(
        &[
            format!("--unixctl={}", ctl.display()),
            "--store=memory".into(),
            NB.into(),
        ],
        dir.path(),
        None,
    );
    send_signal(ox.pid().expect("running"), libc::SIGHUP);
    let out = appctl(&[], &ctl.display().to_string(), &["ovsdb-server/list-dbs"]);
    assert_eq!(out.stdout, "OVN_Northbound\n_Server\n", "{}", out.all());
    assert!(ox.is_running());
}

#[test]
fn detach_with_the_etcd_store_starts_its_client_after_forking() {
    let etcd = support::etcd::EtcdCluster::single();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut args, ctl, pidfile) = common(dir.path());
    args.extend(support::cluster::etcd_args(
        &etcd.endpoints(),
        &support::cluster::unique_prefix(),
        &["--detach", NB],
    ));
    let out = oxsdb_run(&args, &[]);
    assert!(out.success(), "{}", out.all());
    let pid = read_pid(&pidfile);
    wait_until("the database is served from etcd", || {
        let st = appctl(
            &[],
            &ctl.display().to_string(),
            &["cluster/status", "OVN_Northbound"],
        );
        st.stdout.contains("Status: cluster member\n")
    });
    let mut c = Command::new(tool("ovsdb-client"));
    c.arg("list-dbs")
        .arg(format!("unix:{}", dir.path().join("db.sock").display()));
    assert_eq!(
        run(&mut c, TOOL_TIMEOUT).stdout,
        "OVN_Northbound\n_Server\n"
    );
    stop(&ctl, pid);
}
