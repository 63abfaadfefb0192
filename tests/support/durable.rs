//! Helpers for the server-level durability tests (`tests/durability.rs`) and
//! the durable-commit measurement (`benches/durable_commit.rs`): the oxsdb
//! binary and the reference `ovsdb-server` as child processes that can be
//! stopped (SIGTERM), killed (SIGKILL) and started again on the same port
//! and files; the Open vSwitch command-line tools run with a time limit; a
//! small blocking JSON-RPC client that reports a lost connection as an error
//! (instead of panicking) and can wait for notifications with a timeout; and
//! a reader of OVSDB file record boundaries.
//!
//! Every child is killed when its owner is dropped, and every wait is
//! bounded. A missing Open vSwitch tool fails with an `apt-get` hint.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const INSTALL_HINT: &str = "the Open vSwitch tools are required: run `apt-get install \
     openvswitch-common openvswitch-switch python3-openvswitch` (ovsdb-server, ovsdb-tool, \
     ovsdb-client, ovs-vsctl, vswitch.ovsschema, the Python IDL)";

/// How long a server may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one run of a command-line tool may take.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds an executable in `$PATH` or the sbin directories; panics with
/// [`INSTALL_HINT`] when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        dirs.push(PathBuf::from(d));
    }
    for d in dirs {
        let c = d.join(name);
        if c.is_file() {
            return c;
        }
    }
    panic!("`{name}` not found in $PATH or /usr/sbin: {INSTALL_HINT}");
}

/// Panics with [`INSTALL_HINT`] if `path` is not a file.
pub fn require_file(path: &Path) {
    if !path.is_file() {
        panic!("{} does not exist: {INSTALL_HINT}", path.display());
    }
}

/// The oxsdb binary built by cargo for this test or bench.
pub fn oxsdb_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oxsdb"))
}

pub fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn todo_schema() -> PathBuf {
    manifest_path("examples/todo.ovsschema")
}

/// Sends signal `sig` to process `pid` (libc's `kill(2)`, which std links).
pub fn send_signal(pid: u32, sig: i32) {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        kill(pid as i32, sig);
    }
}
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

/// Waits for a child with a time limit; `None` if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => {}
            Err(e) => panic!("waiting for a child: {e}"),
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a command did.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command with a time limit (killed when it expires, then a panic),
/// capturing its output.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}; {INSTALL_HINT}"));
    // Read both pipes in threads so that a large output can't block the child.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let status = match wait_timeout(&mut child, timeout) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
            panic!("{desc} did not finish within {timeout:?}; stderr:\n{stderr}");
        }
    };
    Output {
        status,
        stdout: String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned(),
    }
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let desc = format!("{cmd:?}");
    let o = run_timeout(cmd, TOOL_TIMEOUT);
    if !o.status.success() {
        panic!(
            "{desc} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            o.status, o.stdout, o.stderr
        );
    }
    o.stdout
}

/// `ovsdb-tool ARGS...`, which must succeed.
pub fn ovsdb_tool<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    run_ok(Command::new(tool("ovsdb-tool")).args(args))
}

/// `ovsdb-client --timeout=30 ARGS...`, which must succeed.
pub fn ovsdb_client<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    run_ok(
        Command::new(tool("ovsdb-client"))
            .arg("--timeout=30")
            .args(args),
    )
}

/// `ovsdb-client transact REMOTE TXN`; returns the parsed result array.
pub fn client_transact(remote: &str, txn: &Value) -> Value {
    let out = ovsdb_client(&["transact".to_string(), remote.to_string(), txn.to_string()]);
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("ovsdb-client transact printed non-JSON ({e}): {out}"));
    if let Some(ops) = v.as_array() {
        for op in ops {
            if op.get("error").is_some() {
                panic!("transaction {txn} failed: {v}");
            }
        }
    }
    v
}

/// `ovsdb-client dump REMOTE DB` (text format: tables by name, rows by
/// `_uuid`, so equal contents with equal UUIDs print identically).
pub fn client_dump(remote: &str, db: &str) -> String {
    ovsdb_client(&["dump", remote, db])
}

/// Sorted values of `column` of every row of `table`, read by `ovsdb-client transact`.
pub fn client_column(remote: &str, db: &str, table: &str, column: &str) -> Vec<Value> {
    let r = client_transact(
        remote,
        &json!([db, {"op": "select", "table": table, "where": [], "columns": [column]}]),
    );
    let mut v: Vec<Value> = r[0]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row[column].clone())
        .collect();
    v.sort_by_key(|a| a.to_string());
    v
}

/// The `name` of a schema file.
pub fn schema_name(schema: &Path) -> String {
    require_file(schema);
    let v: Value = serde_json::from_str(&fs::read_to_string(schema).expect("read schema"))
        .expect("schema JSON");
    v["name"].as_str().expect("schema name").to_string()
}

// ---------------------------------------------------------------------------
// oxsdb as a child process.

/// An oxsdb process (or a stopped one that can be started again with the
/// same arguments and port), killed on drop. Its stderr (where it prints
/// `oxsdb: listening on ...` and, without `--log-file`, its log) goes to a
/// file per instance and start in `log_dir`.
pub struct Oxsdb {
    args: Vec<OsString>,
    /// Environment variables set for the process (e.g. `RUST_LOG`).
    envs: Vec<(OsString, OsString)>,
    /// The TCP port: 0 before the first start, then kept for restarts.
    pub port: u16,
    /// A `punix:` socket, if any.
    pub unix: Option<PathBuf>,
    child: Option<Child>,
    log_dir: PathBuf,
    /// Distinguishes the stderr files of several instances in one directory.
    instance: usize,
    starts: usize,
}

static INSTANCES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

impl Oxsdb {
    /// Starts oxsdb with `args` (everything but `--remote`) listening on
    /// `ptcp:0:127.0.0.1` (and `punix:UNIX` if given).
    pub fn start<S: Into<OsString> + Clone>(
        args: &[S],
        log_dir: &Path,
        unix: Option<PathBuf>,
    ) -> Oxsdb {
        let mut o = Oxsdb {
            args: args.iter().cloned().map(Into::into).collect(),
            envs: Vec::new(),
            port: 0,
            unix,
            child: None,
            log_dir: log_dir.to_path_buf(),
            instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            starts: 0,
        };
        o.launch();
        o
    }

    /// [`Oxsdb::start`] with environment variables set for the process.
    pub fn start_with_env<S: Into<OsString> + Clone>(
        args: &[S],
        envs: &[(&str, &str)],
        log_dir: &Path,
    ) -> Oxsdb {
        let mut o = Oxsdb {
            args: args.iter().cloned().map(Into::into).collect(),
            envs: envs.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            port: 0,
            unix: None,
            child: None,
            log_dir: log_dir.to_path_buf(),
            instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            starts: 0,
        };
        o.launch();
        o
    }

    fn stderr_path(&self, start: usize) -> PathBuf {
        self.log_dir
            .join(format!("oxsdb-{}-{start}.stderr", self.instance))
    }

    fn command(&self) -> Command {
        let mut c = Command::new(oxsdb_bin());
        c.arg(format!("--remote=ptcp:{}:127.0.0.1", self.port));
        if let Some(u) = &self.unix {
            c.arg(format!("--remote=punix:{}", u.display()));
        }
        c.args(&self.args);
        c.envs(self.envs.iter().map(|(k, v)| (k, v)));
        c
    }

    fn launch(&mut self) {
        if let Err((status, text)) = self.try_launch() {
            panic!("oxsdb exited with {status} before listening; stderr:\n{text}");
        }
    }

    /// Starts the process; `Err((exit status, stderr))` if it exits before
    /// listening. Panics if it neither listens nor exits in time.
    fn try_launch(&mut self) -> Result<(), (ExitStatus, String)> {
        assert!(self.child.is_none(), "oxsdb is already running");
        self.starts += 1;
        let path = self.stderr_path(self.starts);
        let stderr = fs::File::create(&path).expect("create stderr file");
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", oxsdb_bin().display()));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = fs::read_to_string(&path).unwrap_or_default();
            if let Some(port) = listening_port(&text) {
                if self.port != 0 {
                    assert_eq!(port, self.port, "oxsdb restarted on another port");
                }
                self.port = port;
                return Ok(());
            }
            let child = self.child.as_mut().unwrap();
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                let text = fs::read_to_string(&path).unwrap_or_default();
                return Err((status, text));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!("oxsdb did not listen within {START_TIMEOUT:?}; stderr:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Like [`Oxsdb::start`], but an oxsdb that exits before listening is
    /// `Err((exit status, stderr))` instead of a panic.
    pub fn try_start<S: Into<OsString> + Clone>(
        args: &[S],
        log_dir: &Path,
        unix: Option<PathBuf>,
    ) -> Result<Oxsdb, (ExitStatus, String)> {
        let mut o = Oxsdb {
            args: args.iter().cloned().map(Into::into).collect(),
            envs: Vec::new(),
            port: 0,
            unix,
            child: None,
            log_dir: log_dir.to_path_buf(),
            instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            starts: 0,
        };
        o.try_launch().map(|()| o)
    }

    /// Starts it again (same arguments, same port) after [`Oxsdb::stop`] or [`Oxsdb::kill9`].
    pub fn start_again(&mut self) {
        self.launch();
    }

    /// SIGTERM; it must exit with status 0 within [`STOP_TIMEOUT`].
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("oxsdb is not running");
        send_signal(child.id(), SIGTERM);
        match wait_timeout(&mut child, STOP_TIMEOUT) {
            Some(s) => assert!(
                s.success(),
                "oxsdb exited with {s} on SIGTERM; stderr:\n{}",
                self.stderr()
            ),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "oxsdb did not exit within {STOP_TIMEOUT:?} of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), SIGKILL);
            let _ = wait_timeout(&mut child, STOP_TIMEOUT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The stderr of the latest start.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path(self.starts)).unwrap_or_default()
    }

    /// The stderr of every start, for failure messages.
    pub fn all_stderr(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                format!(
                    "--- oxsdb start {i}:\n{}",
                    fs::read_to_string(self.stderr_path(i)).unwrap_or_default()
                )
            })
            .collect()
    }

    pub fn tcp(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn unix_remote(&self) -> String {
        format!(
            "unix:{}",
            self.unix.as_ref().expect("no punix remote").display()
        )
    }
}

impl Drop for Oxsdb {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The port of `oxsdb: listening on ptcp:PORT:IP` in oxsdb's stderr.
pub fn listening_port(stderr: &str) -> Option<u16> {
    stderr.lines().find_map(|l| {
        let rest = l.strip_prefix("oxsdb: listening on ptcp:")?;
        rest.split(':').next()?.parse().ok()
    })
}

/// Runs oxsdb with `args` expecting it to fail at start-up; returns what it did.
pub fn oxsdb_fails<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let mut c = Command::new(oxsdb_bin());
    c.arg("--remote=ptcp:0:127.0.0.1").args(args);
    run_timeout(&mut c, START_TIMEOUT)
}

// ---------------------------------------------------------------------------
// The reference ovsdb-server on a given database file.

/// `ovsdb-server` serving one existing database file, killed on drop.
pub struct RefServer {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
}

impl RefServer {
    /// Starts `ovsdb-server` on `db` with its log, pidfile and control
    /// socket in `dir`.
    pub fn start(db: &Path, dir: &Path) -> RefServer {
        let log = dir.join("ovsdb-server.log");
        let _ = fs::remove_file(&log);
        let child = Command::new(tool("ovsdb-server"))
            .arg("--no-chdir")
            .arg("--remote=ptcp:0:127.0.0.1")
            .arg(format!(
                "--unixctl={}",
                dir.join("ovsdb-server.ctl").display()
            ))
            .arg(format!("--log-file={}", log.display()))
            .arg(format!(
                "--pidfile={}",
                dir.join("ovsdb-server.pid").display()
            ))
            .arg("-vconsole:off")
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start ovsdb-server: {e}; {INSTALL_HINT}"));
        let mut s = RefServer {
            child: Some(child),
            port: 0,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = fs::read_to_string(&s.log).unwrap_or_default();
            let port = text.lines().find_map(|l| {
                let rest = &l[l.find("listening on port ")? + "listening on port ".len()..];
                rest.chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect::<String>()
                    .parse()
                    .ok()
            });
            if let Some(p) = port {
                s.port = p;
                return s;
            }
            if let Ok(Some(st)) = s.child.as_mut().unwrap().try_wait() {
                s.child = None;
                panic!("ovsdb-server exited with {st}; log:\n{text}");
            }
            if Instant::now() > deadline {
                panic!("ovsdb-server did not listen within {START_TIMEOUT:?}; log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn tcp(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; it must exit within [`STOP_TIMEOUT`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            send_signal(c.id(), SIGTERM);
            if wait_timeout(&mut c, STOP_TIMEOUT).is_none() {
                let _ = c.kill();
                let _ = c.wait();
                panic!("ovsdb-server did not exit on SIGTERM; log:\n{}", self.log());
            }
        }
    }
}

impl Drop for RefServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// A raw JSON-RPC client.

/// A blocking JSON-RPC 1.0 client over TCP. Unlike the one in
/// `reference.rs`, a lost connection is an `Err` (the kill -9 test needs
/// that), and reading has a timeout after which one can try again.
pub struct Rpc {
    stream: TcpStream,
    buf: Vec<u8>,
    next_id: u64,
    /// Notifications received while waiting for replies.
    pub notifications: Vec<Value>,
}

impl Rpc {
    pub fn connect(addr: &str) -> io::Result<Rpc> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(Rpc {
            stream,
            buf: Vec::new(),
            next_id: 1,
            notifications: Vec::new(),
        })
    }

    /// Connects, retrying for up to `timeout` (a server that is starting).
    pub fn connect_retry(addr: &str, timeout: Duration) -> Rpc {
        let deadline = Instant::now() + timeout;
        loop {
            match Rpc::connect(addr) {
                Ok(c) => return c,
                Err(e) if Instant::now() > deadline => panic!("connect {addr}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    pub fn send(&mut self, msg: &Value) -> io::Result<()> {
        let bytes = serde_json::to_vec(msg).expect("serialize");
        self.stream.write_all(&bytes)
    }

    /// The next complete message, or `Ok(None)` if none arrived within
    /// `timeout`. Echo requests are answered on the way.
    pub fn next_message(&mut self, timeout: Duration) -> io::Result<Option<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = json_end(&self.buf) {
                let msg: Value = serde_json::from_slice(&self.buf[..end]).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad JSON from server: {e}"),
                    )
                })?;
                self.buf.drain(..end);
                if msg.get("method").and_then(Value::as_str) == Some("echo")
                    && !msg.get("id").map_or(true, Value::is_null)
                {
                    let reply = json!({"id": msg["id"], "result": msg["params"], "error": null});
                    self.send(&reply)?;
                    continue;
                }
                return Ok(Some(msg));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ))
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a request and waits (up to `timeout`) for its reply; other
    /// messages without an id are kept in `notifications`.
    pub fn call(&mut self, method: &str, params: Value, timeout: Duration) -> io::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"method": method, "params": params, "id": id}))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(msg) = self.next_message(left)? else {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no reply to {method} within {timeout:?}"),
                ));
            };
            if msg.get("id") == Some(&json!(id)) {
                return Ok(msg);
            }
            if msg.get("id").map_or(true, Value::is_null) && msg.get("method").is_some() {
                self.notifications.push(msg);
            }
        }
    }

    /// `transact`; `Ok(result array)` or an error for a JSON-RPC error.
    pub fn transact(&mut self, params: Value, timeout: Duration) -> io::Result<Value> {
        let reply = self.call("transact", params, timeout)?;
        match reply.get("error") {
            Some(e) if !e.is_null() => Err(io::Error::other(format!("transact error: {e}"))),
            _ => Ok(reply["result"].clone()),
        }
    }
}

/// The end of the first complete JSON value (an object or array) in `buf`,
/// skipping leading white space.
fn json_end(buf: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    let mut started = false;
    for (i, &b) in buf.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                started = true;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if started && depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether every operation of a transact result succeeded.
pub fn txn_ok(result: &Value) -> bool {
    result
        .as_array()
        .is_some_and(|ops| ops.iter().all(|o| o.get("error").is_none()))
}

// ---------------------------------------------------------------------------
// OVSDB files.

/// The `[start, end)` byte ranges of the well-formed records of an OVSDB
/// standalone file (`OVSDB JSON <len> <sha1>\n` + `len` bytes), up to the
/// first one that is not (the checksum is not verified).
pub fn record_bounds(path: &Path) -> Vec<(u64, u64)> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let header = String::from_utf8_lossy(&bytes[pos..pos + nl]);
        let mut parts = header.split(' ');
        if parts.next() != Some("OVSDB") || parts.next() != Some("JSON") {
            break;
        }
        let Some(len) = parts.next().and_then(|l| l.parse::<usize>().ok()) else {
            break;
        };
        let end = pos + nl + 1 + len;
        if end > bytes.len() {
            break;
        }
        out.push((pos as u64, end as u64));
        pos = end;
    }
    out
}

/// The number of `record N:` lines of `ovsdb-tool show-log FILE`.
pub fn show_log_records(path: &Path) -> usize {
    ovsdb_tool(&[OsString::from("show-log"), path.as_os_str().to_owned()])
        .lines()
        .filter(|l| l.starts_with("record "))
        .count()
}

/// A tiny deterministic PRNG (xorshift64*), seeded from the clock unless
/// `OXSDB_TEST_SEED` is set; the seed is printed so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn from_env_or_clock(what: &str) -> Rng {
        let seed = std::env::var("OXSDB_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("{what}: seed {seed} (replay with OXSDB_TEST_SEED={seed})");
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}
