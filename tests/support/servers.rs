//! "A running OVSDB server": oxsdb (the binary built by cargo) or the
//! reference `ovsdb-server`, behind one type, for the real-client tests.
//!
//! Both are started the same way: on `ptcp:0:127.0.0.1` (or a fixed port when
//! restarted) plus a `punix:` socket in a private temporary directory, serving
//! the databases of one or more schema files, with empty data. oxsdb keeps
//! its data in memory; the reference gets fresh database files made by
//! `ovsdb-tool create`, so a [`Server::restart`] loses the data on both sides.
//! The process is killed on drop.
//!
//! Every client test runs one scenario against both kinds and compares the
//! normalised outputs. `OXSDB_CLIENT_TESTS_SUBJECT=reference` replaces oxsdb
//! by a second reference server (to check a test itself: both sides must then
//! be equal). `OXSDB_CLIENT_TESTS_STORE=file` runs oxsdb on its file store,
//! `OXSDB_CLIENT_TESTS_STORE=etcd` on etcd (default: `--store=memory`).
//!
//! On etcd, one etcd member serves the whole test process (started at the
//! first oxsdb launch, killed when the process exits) and every [`Server`]
//! keeps its data under a key prefix of its own, so that tests running in
//! parallel never see each other's databases; a [`Server::restart`] moves
//! to a fresh prefix (empty databases, like the other stores), a
//! [`Server::restart_keeping_data`] stays on the same one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::etcd::EtcdCluster;
use super::reference::{find_tool, ovsdb_tool_create, require_file, Client, INSTALL_HINT};

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The server under test: `target/*/oxsdb`.
    Oxsdb,
    /// Open vSwitch's `ovsdb-server`.
    Reference,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Oxsdb => "oxsdb",
            Kind::Reference => "ovsdb-server",
        }
    }

    /// The kind that plays oxsdb's part: oxsdb, unless
    /// `OXSDB_CLIENT_TESTS_SUBJECT=reference`.
    pub fn subject() -> Kind {
        match std::env::var("OXSDB_CLIENT_TESTS_SUBJECT").as_deref() {
            Ok("reference") | Ok("ovsdb-server") => Kind::Reference,
            _ => Kind::Oxsdb,
        }
    }

    /// The two sides of a comparison, reference first.
    pub fn both() -> [Kind; 2] {
        [Kind::Reference, Kind::subject()]
    }
}

/// The store oxsdb runs on: `memory` unless `OXSDB_CLIENT_TESTS_STORE`
/// says otherwise (`file`: database files in the server's directory, removed
/// at every start; `etcd`: a fresh key prefix in the process's etcd, see
/// [`etcd_endpoint`]).
pub fn oxsdb_store() -> String {
    std::env::var("OXSDB_CLIENT_TESTS_STORE").unwrap_or_else(|_| "memory".to_string())
}

/// The client URL of the etcd member that every oxsdb of this test process
/// uses on the etcd store: started at the first call, killed by its
/// watchdog when the process exits (a `static` is never dropped).
pub fn etcd_endpoint() -> String {
    static ETCD: OnceLock<EtcdCluster> = OnceLock::new();
    ETCD.get_or_init(EtcdCluster::single).endpoints()[0].clone()
}

/// A key prefix no other server uses.
fn fresh_etcd_prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// The path of the oxsdb binary built for the integration tests.
pub fn oxsdb_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oxsdb"))
}

/// The `name` of a schema file.
pub fn schema_name(schema: &Path) -> String {
    require_file(schema);
    let text = fs::read_to_string(schema).unwrap_or_else(|e| panic!("{}: {e}", schema.display()));
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", schema.display()));
    json["name"]
        .as_str()
        .expect("schema has a name")
        .to_string()
}

/// A running server (or a stopped one that can be restarted), killed on drop.
pub struct Server {
    pub kind: Kind,
    schemas: Vec<PathBuf>,
    /// The database names, in schema order.
    pub db_names: Vec<String>,
    child: Option<Child>,
    /// The TCP port (kept across restarts).
    pub port: u16,
    sock: PathBuf,
    log: PathBuf,
    stderr: PathBuf,
    /// Number of starts so far (a fresh stderr file per start).
    starts: usize,
    /// oxsdb's store (`memory`, `file` or `etcd`).
    store: String,
    /// The etcd key prefix of the current start (etcd store).
    etcd_prefix: String,
    /// Keep the data of the previous start (database files) at the next.
    keep_data: bool,
    // Kept last: removed after the server has been killed.
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server of `kind` with empty databases of `schemas` (oxsdb on
    /// the store of [`oxsdb_store`]).
    pub fn start(kind: Kind, schemas: &[&Path]) -> Server {
        Server::start_on_store(kind, schemas, &oxsdb_store())
    }

    /// Starts a server whose data survives [`Server::restart_keeping_data`]:
    /// oxsdb on its file store (on etcd when the tests run on etcd, which is
    /// durable too), ovsdb-server on its database files.
    pub fn start_durable(kind: Kind, schemas: &[&Path]) -> Server {
        let store = match oxsdb_store().as_str() {
            "etcd" => "etcd",
            _ => "file",
        };
        Server::start_on_store(kind, schemas, store)
    }

    fn start_on_store(kind: Kind, schemas: &[&Path], store: &str) -> Server {
        let schemas: Vec<PathBuf> = schemas.iter().map(|p| p.to_path_buf()).collect();
        let db_names = schemas.iter().map(|s| schema_name(s)).collect();
        let prefix = match kind {
            Kind::Oxsdb => "oxsdb-srv-",
            Kind::Reference => "oxsdb-ref-srv-",
        };
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir");
        let sock = dir.path().join("sock");
        let log = dir.path().join("log");
        let stderr = dir.path().join("stderr");
        let mut server = Server {
            kind,
            schemas,
            db_names,
            child: None,
            port: 0,
            sock,
            log,
            stderr,
            starts: 0,
            store: store.to_string(),
            etcd_prefix: String::new(),
            keep_data: false,
            dir,
        };
        server.launch();
        server
    }

    /// `tcp:127.0.0.1:PORT`, the active remote clients connect to.
    pub fn tcp(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.port)
    }

    /// `unix:PATH`.
    pub fn unix(&self) -> String {
        format!("unix:{}", self.sock.display())
    }

    /// `127.0.0.1:PORT`, for [`Client::connect`].
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A raw JSON-RPC client connected over TCP.
    pub fn connect(&self) -> Client {
        Client::connect(&self.addr())
    }

    /// The private directory of this server (for clients' files too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// What the server wrote (log file and stderr of every start), for
    /// failure messages.
    pub fn log(&self) -> String {
        let mut out = String::new();
        if let Ok(t) = fs::read_to_string(&self.log) {
            out.push_str(&t);
        }
        for i in 1..=self.starts {
            if let Ok(t) = fs::read_to_string(self.stderr_path(i)) {
                if !t.is_empty() {
                    out.push_str(&format!("--- stderr of start {i}:\n{t}"));
                }
            }
        }
        out
    }

    /// The last lines of [`Server::log`].
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn stderr_path(&self, start: usize) -> PathBuf {
        PathBuf::from(format!("{}.{start}", self.stderr.display()))
    }

    fn db_file(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("db{i}"))
    }

    fn launch(&mut self) {
        self.starts += 1;
        let _ = fs::remove_file(&self.sock);
        let stderr_path = self.stderr_path(self.starts);
        let stderr = fs::File::create(&stderr_path).expect("stderr file");
        let tcp_remote = format!("--remote=ptcp:{}:127.0.0.1", self.port);
        let unix_remote = format!("--remote=punix:{}", self.sock.display());
        let pidfile = format!("--pidfile={}", self.dir.path().join("pid").display());
        let logfile = format!("--log-file={}", self.log.display());
        let mut cmd = match self.kind {
            Kind::Oxsdb => {
                let bin = oxsdb_bin();
                assert!(bin.is_file(), "{} was not built", bin.display());
                let mut cmd = Command::new(bin);
                cmd.arg(&tcp_remote)
                    .arg(&unix_remote)
                    .arg(&pidfile)
                    .arg(&logfile);
                match self.store.as_str() {
                    "file" => {
                        // Fresh database files at every start, like the
                        // reference's (a restart loses the data on both),
                        // unless restarted with the data kept.
                        let data = self.dir.path().join("data");
                        if !self.keep_data {
                            let _ = fs::remove_dir_all(&data);
                        }
                        fs::create_dir_all(&data).expect("data dir");
                        cmd.arg("--store=file")
                            .arg(format!("--data-dir={}", data.display()));
                    }
                    "etcd" => {
                        // A prefix of its own, new at every start (a restart
                        // loses the data, as on the other stores) unless
                        // restarted with the data kept.
                        if !self.keep_data || self.etcd_prefix.is_empty() {
                            self.etcd_prefix = fresh_etcd_prefix();
                        }
                        cmd.arg("--store=etcd")
                            .arg(format!("--etcd-endpoints={}", etcd_endpoint()))
                            .arg(format!("--etcd-prefix={}", self.etcd_prefix));
                    }
                    store => {
                        cmd.arg(format!("--store={store}"));
                    }
                }
                cmd.args(&self.schemas);
                cmd
            }
            Kind::Reference => {
                let mut cmd = Command::new(find_tool("ovsdb-server"));
                cmd.arg("--no-chdir")
                    .arg(&tcp_remote)
                    .arg(&unix_remote)
                    .arg(format!(
                        "--unixctl={}",
                        self.dir.path().join("ctl").display()
                    ))
                    .arg(&logfile)
                    .arg(&pidfile)
                    .arg("-vconsole:off");
                for (i, schema) in self.schemas.iter().enumerate() {
                    let db = self.db_file(i);
                    if !(self.keep_data && db.exists()) {
                        let _ = fs::remove_file(&db);
                        if let Err(e) = ovsdb_tool_create(&db, schema) {
                            panic!("ovsdb-tool create {} failed: {e}", schema.display());
                        }
                    }
                    cmd.arg(db);
                }
                cmd
            }
        };
        // A fresh log per start, so that the port found is this start's.
        let _ = fs::remove_file(&self.log);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|e| match self.kind {
                Kind::Oxsdb => panic!("cannot start {}: {e}", oxsdb_bin().display()),
                Kind::Reference => panic!("cannot start ovsdb-server: {e}; {INSTALL_HINT}"),
            });
        self.child = Some(child);
        let port = self.wait_ready(&stderr_path);
        assert!(
            self.port == 0 || self.port == port,
            "restarted on port {port}, not {}",
            self.port
        );
        self.port = port;
        if self.kind == Kind::Oxsdb && self.store == "etcd" {
            self.wait_opened();
        }
    }

    /// On etcd, oxsdb listens first and then opens its databases from the
    /// store (until then transactions fail with "not leader"): waits until
    /// `_Server` says that every database is connected, so that a test's
    /// first client finds the server as ready as a standalone one.
    fn wait_opened(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut client = self.connect();
        loop {
            let reply = client.request(
                "transact",
                json!(["_Server", {"op": "select", "table": "Database", "where": [],
                                   "columns": ["name", "connected"]}]),
            );
            let rows = reply
                .result()
                .and_then(|r| r[0]["rows"].as_array())
                .cloned()
                .unwrap_or_default();
            let connected = |name: &str| {
                rows.iter()
                    .any(|r| r["name"] == json!(name) && r["connected"] == json!(true))
            };
            if self.db_names.iter().all(|n| connected(n)) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "oxsdb exited with {status} while opening its databases from etcd; output:\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "oxsdb did not open {:?} from etcd within {START_TIMEOUT:?} (last _Server reply: {}); output:\n{}",
                    self.db_names,
                    reply.message,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the server reports its TCP port and its unix socket exists.
    fn wait_ready(&mut self, stderr_path: &Path) -> u16 {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut port = None;
        loop {
            if port.is_none() {
                port = match self.kind {
                    Kind::Oxsdb => fs::read_to_string(stderr_path)
                        .ok()
                        .and_then(|t| oxsdb_port(&t)),
                    // ovsdb-server logs the port only when it chose it.
                    Kind::Reference if self.port != 0 => {
                        std::net::TcpStream::connect(("127.0.0.1", self.port))
                            .ok()
                            .map(|_| self.port)
                    }
                    Kind::Reference => fs::read_to_string(&self.log)
                        .ok()
                        .and_then(|t| reference_port(&t)),
                };
            }
            if let Some(p) = port {
                if self.sock.exists() {
                    return p;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "{} exited with {status} before listening; output:\n{}",
                    self.kind.name(),
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not report a listening port (and create {}) within {:?}; output:\n{}",
                    self.kind.name(),
                    self.sock.display(),
                    START_TIMEOUT,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the server with SIGTERM (SIGKILL after a while) and returns its
    /// exit status; `None` when it was not running.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        signal(child.id(), "TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "{} did not exit within {STOP_TIMEOUT:?} of SIGTERM (killed: {status:?}); output:\n{}",
                    self.kind.name(),
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the server at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server (SIGTERM) and starts it again on the same port and
    /// socket with empty databases; returns the exit status of the stop.
    pub fn restart(&mut self) -> Option<ExitStatus> {
        let status = self.stop();
        self.keep_data = false;
        self.launch();
        status
    }

    /// Stops the server (SIGTERM) and starts it again on the same port and
    /// socket with the data it had (oxsdb: only on the file and etcd stores,
    /// see [`Server::start_durable`]); returns the exit status of the stop.
    pub fn restart_keeping_data(&mut self) -> Option<ExitStatus> {
        let status = self.stop();
        self.keep_data = true;
        self.launch();
        self.keep_data = false;
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends a signal (`TERM`, `KILL`, ...) to a process with `kill(1)`.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The port of `oxsdb: listening on ptcp:PORT:IP`.
fn oxsdb_port(stderr: &str) -> Option<u16> {
    for line in stderr.lines() {
        if let Some(pos) = line.find("listening on ptcp:") {
            let rest = &line[pos + "listening on ptcp:".len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Ok(port) = digits.parse::<u16>() {
                if port != 0 {
                    return Some(port);
                }
            }
        }
    }
    None
}

/// The port of ovsdb-server's `...: listening on port N` log line.
fn reference_port(log: &str) -> Option<u16> {
    for line in log.lines() {
        if let Some(pos) = line.find("listening on port ") {
            let rest = &line[pos + "listening on port ".len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Ok(port) = digits.parse() {
                return Some(port);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_are_parsed() {
        assert_eq!(
            super::oxsdb_port("x\noxsdb: listening on ptcp:4567:127.0.0.1\n"),
            Some(4567)
        );
        assert_eq!(
            super::oxsdb_port("oxsdb: listening on punix:/tmp/x\n"),
            None
        );
        assert_eq!(
            super::reference_port(
                "2026|00002|socket_util|INFO|0:127.0.0.1: listening on port 45815"
            ),
            Some(45815)
        );
    }
}
