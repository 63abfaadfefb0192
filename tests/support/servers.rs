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

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;

use super::etcd::EtcdCluster;
pub use super::process::Kind;
use super::process::{ServerProcess, START_TIMEOUT};
use super::rpc::Rpc;
use super::tools::{ovsdb_tool_create, schema_name};

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

/// A running server (or a stopped one that can be restarted), killed on drop.
pub struct Server {
    /// Which server.
    pub kind: Kind,
    schemas: Vec<PathBuf>,
    /// The database names, in schema order.
    pub db_names: Vec<String>,
    /// The process (none until the first start).
    process: Option<ServerProcess>,
    /// The TCP port (kept across restarts).
    pub port: u16,
    sock: PathBuf,
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
        let mut server = Server {
            kind,
            schemas,
            db_names,
            process: None,
            port: 0,
            sock,
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

    /// `127.0.0.1:PORT`, for [`Rpc::connect`].
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A raw JSON-RPC client connected over TCP.
    pub fn connect(&self) -> Rpc {
        Rpc::open(&self.addr())
    }

    /// The private directory of this server (for clients' files too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ServerProcess::pid)
    }

    /// Whether it is running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(ServerProcess::is_running)
    }

    /// What the server wrote (log file and stderr of every start), for
    /// failure messages.
    pub fn log(&self) -> String {
        // oxsdb's --log-file (the reference's is the process's own).
        let mut out = fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        if let Some(p) = &self.process {
            out.push_str(&p.output());
        }
        out
    }

    /// The last lines of [`Server::log`].
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn db_file(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("db{i}"))
    }

    /// The arguments of the next start (after the remotes).
    fn args(&mut self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        match self.kind {
            Kind::Oxsdb => {
                args.push(format!("--pidfile={}", self.dir.path().join("pid").display()).into());
                args.push(format!("--log-file={}", self.dir.path().join("log").display()).into());
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
                        args.push("--store=file".into());
                        args.push(format!("--data-dir={}", data.display()).into());
                    }
                    "etcd" => {
                        // A prefix of its own, new at every start (a restart
                        // loses the data, as on the other stores) unless
                        // restarted with the data kept.
                        if !self.keep_data || self.etcd_prefix.is_empty() {
                            self.etcd_prefix = fresh_etcd_prefix();
                        }
                        args.push("--store=etcd".into());
                        args.push(format!("--etcd-endpoints={}", etcd_endpoint()).into());
                        args.push(format!("--etcd-prefix={}", self.etcd_prefix).into());
                    }
                    store => args.push(format!("--store={store}").into()),
                }
                args.extend(self.schemas.iter().map(|s| s.as_os_str().to_owned()));
            }
            Kind::Reference => {
                for (i, schema) in self.schemas.iter().enumerate() {
                    let db = self.db_file(i);
                    if !(self.keep_data && db.exists()) {
                        let _ = fs::remove_file(&db);
                        if let Err(e) = ovsdb_tool_create(&db, schema) {
                            panic!("ovsdb-tool create {} failed: {e}", schema.display());
                        }
                    }
                    args.push(db.into_os_string());
                }
            }
        }
        args
    }

    fn launch(&mut self) {
        let args = self.args();
        let result = match self.process.as_mut() {
            Some(p) => {
                p.args = args;
                p.try_start_again()
            }
            None => ServerProcess::spawn(
                self.kind,
                &args,
                &[],
                self.dir.path(),
                Some(self.sock.clone()),
            )
            .map(|p| {
                self.process = Some(p);
            }),
        };
        if let Err((status, out)) = result {
            panic!(
                "{} exited with {status} before listening; output:\n{out}",
                self.kind.name()
            );
        }
        self.port = self.process.as_ref().map_or(0, |p| p.port);
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
            if !self.is_running() {
                panic!(
                    "oxsdb exited while opening its databases from etcd; output:\n{}",
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

    /// Stops the server with SIGTERM (SIGKILL after a while) and returns its
    /// exit status; `None` when it was not running.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.process.as_mut().and_then(ServerProcess::terminate)
    }

    /// Kills the server at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(p) = self.process.as_mut() {
            p.kill9();
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
