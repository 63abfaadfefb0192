//! OVN's packaged ovn-ctl runs oxsdb unchanged: with an `ovsdb-server`
//! link to oxsdb first on PATH, it starts, upgrades, checks and stops the
//! NB and SB databases and ovn-northd, and ovn-nbctl, ovn-sbctl and
//! ovn-northd work through the sockets it set up.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::tools::{oxsdb_bin, run, send_signal, tool, Output};

const OVN_CTL: &str = "/usr/share/ovn/scripts/ovn-ctl";
const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";

/// A private OVN installation: its directories, and oxsdb as ovsdb-server.
struct Ovn {
    root: tempfile::TempDir,
    path: String,
}

impl Ovn {
    fn new() -> Ovn {
        if !Path::new(OVN_CTL).is_file() {
            panic!("{OVN_CTL} does not exist: run `apt-get install ovn-central` (ovn-ctl, ovn-northd, ovn-nbctl)");
        }
        for t in [
            "ovn-nbctl",
            "ovn-sbctl",
            "ovn-northd",
            "ovn-appctl",
            "ovsdb-tool",
            "ovsdb-client",
            "ovs-appctl",
        ] {
            tool(t);
        }
        let root = tempfile::Builder::new()
            .prefix("oxsdb-ovn-ctl-")
            .tempdir()
            .expect("tempdir");
        let bin = root.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        std::os::unix::fs::symlink(oxsdb_bin(), bin.join("ovsdb-server")).expect("symlink");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        );
        Ovn { root, path }
    }

    fn dir(&self, d: &str) -> PathBuf {
        self.root.path().join(d)
    }

    /// A command with this installation's environment.
    fn cmd(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("PATH", &self.path)
            .env("OVN_RUNDIR", self.dir("run"))
            .env("OVS_RUNDIR", self.dir("run"))
            .env("OVN_LOGDIR", self.dir("log"))
            .env("OVN_DBDIR", self.dir("db"))
            .env("OVN_SYSCONFDIR", self.dir("etc"))
            .current_dir(self.root.path());
        c
    }

    fn ovn_ctl(&self, args: &[&str]) -> Output {
        let mut c = self.cmd(Path::new(OVN_CTL));
        c.args(args);
        run(&mut c, Duration::from_secs(120))
    }

    fn ovn_ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ovn_ctl(args);
        assert!(
            out.success(),
            "ovn-ctl {args:?}:\n{}\n{}",
            out.all(),
            self.logs()
        );
        out.stdout
    }

    fn tool(&self, name: &str, args: &[&str]) -> Output {
        let mut c = self.cmd(&tool(name));
        c.args(args);
        run(&mut c, Duration::from_secs(30))
    }

    fn nb(&self) -> String {
        format!("--db=unix:{}", self.dir("run/ovnnb_db.sock").display())
    }

    fn sb(&self) -> String {
        format!("--db=unix:{}", self.dir("run/ovnsb_db.sock").display())
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for e in std::fs::read_dir(self.dir("log"))
            .into_iter()
            .flatten()
            .flatten()
        {
            s.push_str(&format!("--- {}\n", e.path().display()));
            s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
        s
    }

    fn pid(&self, name: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir(&format!("run/{name}.pid")))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
}

impl Drop for Ovn {
    fn drop(&mut self) {
        // A failed test leaves daemons behind: a clean stop of each (a
        // monitor exits with its server).
        for name in ["ovn-northd", "ovnnb_db", "ovnsb_db"] {
            if let Some(pid) = self.pid(name) {
                send_signal(pid, libc::SIGTERM);
            }
        }
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
}

#[test]
fn ovn_ctl_starts_upgrades_serves_and_stops_oxsdb() {
    let ovn = Ovn::new();
    // An NB database of an older schema version: start_nb_ovsdb upgrades it.
    std::fs::create_dir_all(ovn.dir("db")).expect("db dir");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(NB).expect("NB schema")).expect("JSON");
    let current = schema["version"].as_str().expect("version").to_string();
    let mut old = schema.clone();
    old["version"] = serde_json::json!("1.0.0");
    let old_path = ovn.dir("old-nb.ovsschema");
    std::fs::write(&old_path, old.to_string()).expect("old schema");
    let created = ovn.tool(
        "ovsdb-tool",
        &[
            "create",
            &ovn.dir("db/ovnnb_db.db").display().to_string(),
            &old_path.display().to_string(),
        ],
    );
    assert!(created.success(), "{}", created.all());

    // TCP remotes too, as deployments open them for chassis and CMSes.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    };
    let (nb_port, sb_port) = (free().to_string(), free().to_string());
    ovn.ovn_ctl_ok(&[
        "--db-nb-create-insecure-remote=yes",
        "--db-nb-addr=127.0.0.1",
        &format!("--db-nb-port={nb_port}"),
        "start_nb_ovsdb",
    ]);
    ovn.ovn_ctl_ok(&[
        "--db-sb-create-insecure-remote=yes",
        "--db-sb-addr=127.0.0.1",
        &format!("--db-sb-port={sb_port}"),
        "start_sb_ovsdb",
    ]);
    let remotes = ovn.tool(
        "ovn-appctl",
        &[
            "-t",
            &ovn.dir("run/ovnnb_db.ctl").display().to_string(),
            "ovsdb-server/list-remotes",
        ],
    );
    assert_eq!(
        remotes.stdout,
        format!(
            "db:OVN_Northbound,NB_Global,connections\nptcp:{nb_port}:127.0.0.1\npunix:{}\n",
            ovn.dir("run/ovnnb_db.sock").display()
        ),
        "{}",
        remotes.all()
    );
    // The daemons are oxsdb, started as ovsdb-server.
    let nb_pid = ovn.pid("ovnnb_db").expect("NB pidfile");
    let comm = std::fs::read_to_string(format!("/proc/{nb_pid}/comm")).expect("comm");
    assert_eq!(comm.trim(), "ovsdb-server");
    let exe = std::fs::read_link(format!("/proc/{nb_pid}/exe")).expect("exe");
    assert_eq!(exe, oxsdb_bin().canonicalize().expect("canonical"));

    let version = ovn.tool(
        "ovsdb-client",
        &[
            "get-schema-version",
            &format!("unix:{}", ovn.dir("run/ovnnb_db.sock").display()),
            "OVN_Northbound",
        ],
    );
    assert_eq!(
        version.stdout.trim(),
        current,
        "upgraded by ovn-ctl: {}",
        version.all()
    );

    assert_eq!(
        ovn.ovn_ctl_ok(&["status_ovsdb"]),
        "OVN Northbound DB is running.\nOVN Southbound DB is running.\n"
    );
    assert_eq!(ovn.ovn_ctl_ok(&["status_ovnnb"]), "running/active\n");
    assert_eq!(ovn.ovn_ctl_ok(&["status_ovnsb"]), "running/active\n");
    let dbs = ovn.tool(
        "ovn-appctl",
        &[
            "-t",
            &ovn.dir("run/ovnsb_db.ctl").display().to_string(),
            "ovsdb-server/list-dbs",
        ],
    );
    assert_eq!(dbs.stdout, "OVN_Southbound\n_Server\n", "{}", dbs.all());

    ovn.ovn_ctl_ok(&["--ovn-manage-ovsdb=yes", "start_northd"]);
    let added = ovn.tool("ovn-nbctl", &[&ovn.nb(), "ls-add", "sw0"]);
    assert!(added.success(), "{}", added.all());
    let nb = ovn.tool(
        "ovn-nbctl",
        &[&format!("--db=tcp:127.0.0.1:{nb_port}"), "ls-list"],
    );
    assert!(nb.stdout.contains("(sw0)"), "{}", nb.all());
    let sb = ovn.tool(
        "ovn-sbctl",
        &[&format!("--db=tcp:127.0.0.1:{sb_port}"), "show"],
    );
    assert!(sb.success(), "{}", sb.all());
    // ovn-northd turns the switch into a southbound datapath.
    wait_until("ovn-northd writes the SB datapath", || {
        ovn.tool(
            "ovn-sbctl",
            &[
                &ovn.sb(),
                "--columns=external_ids",
                "list",
                "Datapath_Binding",
            ],
        )
        .stdout
        .contains("name=sw0")
    });

    // ovn-northd first (its databases stay), then each database.
    let northd = ovn.pid("ovn-northd").expect("northd pidfile");
    ovn.ovn_ctl_ok(&["--ovn-manage-ovsdb=no", "stop_northd"]);
    wait_until("ovn-northd exits", || !alive(northd));
    assert!(ovn.pid("ovnnb_db").is_some_and(alive));
    let sb_pid = ovn.pid("ovnsb_db").expect("SB pidfile");
    let out = ovn.ovn_ctl_ok(&["stop_nb_ovsdb"]);
    assert!(
        out.contains("Exiting ovnnb_db"),
        "stopped with `exit`: {out}"
    );
    wait_until("the NB server exits", || !alive(nb_pid));
    ovn.ovn_ctl_ok(&["stop_sb_ovsdb"]);
    wait_until("the SB server exits", || !alive(sb_pid));
    assert_eq!(
        ovn.ovn_ctl_ok(&["status_ovsdb"]),
        "OVN Northbound DB is not running.\nOVN Southbound DB is not running.\n"
    );
    for f in [
        "ovnnb_db.pid",
        "ovnsb_db.pid",
        "ovnnb_db.ctl",
        "ovnsb_db.ctl",
        "ovnnb_db.sock",
    ] {
        assert!(!ovn.dir("run").join(f).exists(), "{f} left behind");
    }
    // What was written survives: a restart through ovn-ctl serves it.
    ovn.ovn_ctl_ok(&["--ovn-manage-ovsdb=yes", "start_northd"]);
    let nb = ovn.tool("ovn-nbctl", &[&ovn.nb(), "ls-list"]);
    assert!(nb.stdout.contains("(sw0)"), "{}", nb.all());
    let pids: Vec<u32> = ["ovn-northd", "ovnnb_db", "ovnsb_db"]
        .iter()
        .filter_map(|n| ovn.pid(n))
        .collect();
    assert_eq!(pids.len(), 3);
    ovn.ovn_ctl_ok(&["--ovn-manage-ovsdb=yes", "stop_northd"]);
    for pid in pids {
        wait_until("every daemon exits", || !alive(pid));
    }
}

#[test]
fn ovn_ctl_run_nb_ovsdb_keeps_oxsdb_in_the_foreground_as_containers_do() {
    let ovn = Ovn::new();
    let mut c = ovn.cmd(Path::new(OVN_CTL));
    c.arg("run_nb_ovsdb")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().expect("start ovn-ctl run_nb_ovsdb");
    let sock = ovn.dir("run/ovnnb_db.sock");
    let ctl = ovn.dir("run/ovnnb_db.ctl");
    wait_until("the NB server listens", || {
        sock.exists() && ctl.exists() && ovn.pid("ovnnb_db").is_some()
    });
    // ovn-ctl exec'd the server: the container's main process is oxsdb.
    assert_eq!(ovn.pid("ovnnb_db"), Some(child.id()));
    assert_eq!(ovn.ovn_ctl_ok(&["status_ovnnb"]), "running/active\n");
    let init = ovn.tool("ovn-nbctl", &[&ovn.nb(), "init"]);
    assert!(init.success(), "{}", init.all());
    let exit = ovn.tool("ovn-appctl", &["-t", &ctl.display().to_string(), "exit"]);
    assert!(exit.success(), "{}", exit.all());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "run_nb_ovsdb did not exit after `exit`"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!sock.exists() && !ctl.exists());
}
