//! Finding and running the real tools the tests drive: Open vSwitch's and
//! OVN's programs (a missing one FAILS the test with the package to
//! install), the oxsdb binary, commands with time limits, background
//! clients, signals.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// What to install for the reference tools and schemas.
pub const INSTALL_HINT: &str =
    "the reference OVSDB tools are required: run `apt-get install openvswitch-common \
     openvswitch-switch ovn-central python3-openvswitch` (ovsdb-server, ovsdb-tool, ovsdb-client, \
     ovs-vsctl, ovn-nbctl, ovn-northd, /usr/share/ovn/*.ovsschema, the Python IDL)";

/// How long one run of a command-line tool may take by default.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Hint for the package that provides a client tool.
pub fn install_hint(tool: &str) -> &'static str {
    match tool {
        "ovsdb-client" | "ovsdb-tool" | "ovsdb-server" | "ovs-appctl" | "ovs-pki" => {
            "apt-get install openvswitch-common"
        }
        "ovs-vsctl" => "apt-get install openvswitch-switch",
        "ovn-nbctl" | "ovn-sbctl" | "ovn-appctl" => "apt-get install ovn-common (or ovn-central)",
        "ovn-northd" => "apt-get install ovn-central",
        "etcd" => "apt-get install etcd-server",
        "etcdctl" => "apt-get install etcd-client",
        "openssl" => "apt-get install openssl",
        "python3" => "apt-get install python3-openvswitch",
        _ => "apt-get install openvswitch-common ovn-central openvswitch-switch",
    }
}

/// The path of a client tool; panics (the test FAILS) with the package to
/// install when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in [
        "/usr/sbin",
        "/usr/local/sbin",
        "/sbin",
        "/usr/bin",
        "/usr/local/bin",
        "/bin",
    ] {
        dirs.push(PathBuf::from(d));
    }
    for d in dirs {
        let candidate = d.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not installed: run `{}`", install_hint(name))
}

/// The output of a finished command.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// `rc=N` + stdout + stderr: everything a comparison should look at.
    pub fn all(&self) -> String {
        format!(
            "rc={}\nstdout:\n{}stderr:\n{}",
            rc(&self.status),
            self.stdout,
            self.stderr
        )
    }
}

/// The exit code, or `signal N`.
pub fn rc(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.code() {
        Some(c) => c.to_string(),
        None => format!("signal {}", status.signal().unwrap_or(0)),
    }
}

/// Describes a command for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        let a = a.to_string_lossy();
        if a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') && a.len() < 300 {
            s.push_str(&format!("'{a}'"));
        } else if a.len() >= 300 {
            s.push_str(&format!("'{}...'", &a[..200]));
        } else {
            s.push_str(&a);
        }
    }
    s
}

fn reader_thread(mut r: impl Read + Send + 'static, buf: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
    })
}

/// Runs `cmd` to completion with `stdin` as its input; kills it and panics
/// when it takes longer than `timeout`.
pub fn run_with_input(cmd: &mut Command, stdin: &[u8], timeout: Duration) -> Output {
    let what = describe(cmd);
    // The input comes from a (seekable) file: `ovsdb-client restore` seeks.
    let mut input = tempfile::tempfile().expect("temporary file");
    input.write_all(stdin).expect("write input");
    use std::io::Seek;
    input.seek(std::io::SeekFrom::Start(0)).expect("seek");
    let mut child = cmd
        .stdin(Stdio::from(input))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let out = Arc::new(Mutex::new(Vec::new()));
    let err = Arc::new(Mutex::new(Vec::new()));
    let t1 = reader_thread(child.stdout.take().unwrap(), out.clone());
    let t2 = reader_thread(child.stderr.take().unwrap(), err.clone());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = t1.join();
            let _ = t2.join();
            panic!(
                "timed out after {timeout:?}: {what}\nstdout so far:\n{}\nstderr so far:\n{}",
                String::from_utf8_lossy(&out.lock().unwrap()),
                String::from_utf8_lossy(&err.lock().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = t1.join();
    let _ = t2.join();
    let stdout = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Runs `cmd` to completion (no input) within `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    run_with_input(cmd, b"", timeout)
}

/// Runs `cmd` and panics unless it succeeds; returns its stdout.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> String {
    let what = describe(cmd);
    let out = run(cmd, timeout);
    if !out.success() {
        panic!("{what} failed: {}", out.all());
    }
    out.stdout
}

/// `Command::new(tool(name))` with `args`.
pub fn cmd<I, S>(name: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(tool(name));
    c.args(args);
    c
}

/// A client running in the background whose stdout and stderr are collected
/// as they arrive; killed on drop.
pub struct Background {
    pub what: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    threads: Vec<JoinHandle<()>>,
    /// The exit status, once collected.
    status: Option<ExitStatus>,
}

impl Background {
    pub fn spawn(cmd: &mut Command) -> Background {
        let what = describe(cmd);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let threads = vec![
            reader_thread(child.stdout.take().unwrap(), out.clone()),
            reader_thread(child.stderr.take().unwrap(), err.clone()),
        ];
        let stdin = child.stdin.take();
        Background {
            what,
            child: Some(child),
            stdin,
            out,
            err,
            threads,
            status: None,
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Writes a line to the child's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").unwrap_or_else(|e| panic!("writing to {}: {e}", self.what));
        stdin.flush().ok();
    }

    /// Closes the child's stdin.
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Has the child exited?
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if let Some(s) = self.status {
            return Some(s);
        }
        let s = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        self.status = s;
        s
    }

    /// Waits until `pred(stdout)` holds; panics with `context` and both
    /// outputs when it does not within `timeout` (or when the child exits
    /// first and the predicate still fails).
    pub fn wait_for(
        &mut self,
        context: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.stdout();
            if pred(&out) {
                return out;
            }
            let exited = self.exited();
            if exited.is_some() {
                // Let the reader threads drain the pipes, then look once more.
                std::thread::sleep(Duration::from_millis(20));
                let out = self.stdout();
                if pred(&out) {
                    return out;
                }
            }
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "{context}: {} ({}) did not produce the expected output within {timeout:?}\n\
                     stdout:\n{out}\nstderr:\n{}",
                    self.what,
                    match exited {
                        Some(s) => format!("exited rc={}", rc(&s)),
                        None => "still running".into(),
                    },
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Like [`Background::wait_for`] but returns whether it happened instead
    /// of panicking.
    pub fn poll_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.stdout()) {
                return true;
            }
            if Instant::now() > deadline || self.exited().is_some() {
                std::thread::sleep(Duration::from_millis(20));
                return pred(&self.stdout());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the child to exit by itself within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.exited() {
                break s;
            }
            if Instant::now() > deadline {
                let (out, err) = (self.stdout(), self.stderr());
                self.kill();
                panic!(
                    "{} did not exit within {timeout:?}\nstdout:\n{out}\nstderr:\n{err}",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.child = None;
        self.finish(status)
    }

    /// Stops the child with SIGTERM (SIGKILL after 5 s); returns its output.
    pub fn terminate(&mut self) -> Output {
        if let Some(child) = &self.child {
            send_signal(child.id(), SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.exited().is_none() {
            if let Some(c) = self.child.as_mut() {
                let _ = c.kill();
            }
        }
        let status = match self.child.take() {
            Some(mut c) => c.wait().expect("wait"),
            None => self.status.expect("a child that was started"),
        };
        self.stdin.take();
        self.finish(status)
    }

    /// Records the exit, lets the readers drain the pipes, and returns
    /// everything the child wrote.
    fn finish(&mut self, status: ExitStatus) -> Output {
        self.status = Some(status);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        Output {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Panics with [`INSTALL_HINT`] if `path` (e.g. an OVN schema) is not a file.
pub fn require_file(path: &Path) {
    if !path.is_file() {
        panic!("{} does not exist: {INSTALL_HINT}", path.display());
    }
}

/// The oxsdb binary built by cargo for this test or bench.
pub fn oxsdb_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oxsdb"))
}

/// A path inside the repository.
pub fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `examples/todo.ovsschema`.
pub fn todo_schema() -> PathBuf {
    manifest_path("examples/todo.ovsschema")
}

/// The `name` of a schema file.
pub fn schema_name(schema: &Path) -> String {
    require_file(schema);
    let text = fs::read_to_string(schema).unwrap_or_else(|e| panic!("{}: {e}", schema.display()));
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", schema.display()));
    json["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no name", schema.display()))
        .to_string()
}

/// `ovsdb-tool create DB SCHEMA`; its stderr on failure.
pub fn ovsdb_tool_create(db: &Path, schema: &Path) -> Result<(), String> {
    let out = run(
        Command::new(tool("ovsdb-tool"))
            .arg("create")
            .arg(db)
            .arg(schema),
        TOOL_TIMEOUT,
    );
    if out.success() {
        Ok(())
    } else {
        Err(out.stderr)
    }
}

/// Sends signal `sig` to process `pid` (`kill(2)`).
pub fn send_signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}
/// SIGINT, what Ctrl-C sends.
pub const SIGINT: i32 = libc::SIGINT;
/// SIGKILL.
pub const SIGKILL: i32 = libc::SIGKILL;
/// SIGTERM.
pub const SIGTERM: i32 = libc::SIGTERM;

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
