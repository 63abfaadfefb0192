//! A server as a child process — oxsdb or the reference `ovsdb-server` —
//! with its output in files of a directory, waited on until it listens, and
//! stopped (SIGTERM), killed (SIGKILL) or started again on the same port and
//! socket. Every wait is bounded; the process is killed on drop.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::tools::{
    oxsdb_bin, run, send_signal, tool, wait_timeout, Output, INSTALL_HINT, SIGKILL, SIGTERM,
};

/// How long a server may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The server under test: `target/*/oxsdb`.
    Oxsdb,
    /// Open vSwitch's `ovsdb-server`.
    Reference,
}

impl Kind {
    /// The program's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Oxsdb => "oxsdb",
            Kind::Reference => "ovsdb-server",
        }
    }

    /// The kind that plays oxsdb's part in comparisons: oxsdb, unless
    /// `OXSDB_CLIENT_TESTS_SUBJECT=reference` (to check a test itself: both
    /// sides must then be equal).
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

static INSTANCES: AtomicUsize = AtomicUsize::new(1);

/// A server process (or a stopped one that can be started again with the
/// same arguments, port and socket), killed on drop.
pub struct ServerProcess {
    /// Which server.
    pub kind: Kind,
    /// Its arguments after the remotes (and, for the reference, the
    /// control, log and pid files); may be changed between starts.
    pub args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    /// The TCP port: 0 before the first start, then kept for restarts.
    pub port: u16,
    /// A `punix:` socket, if any.
    pub unix: Option<PathBuf>,
    child: Option<Child>,
    dir: PathBuf,
    /// Distinguishes the files of several servers in one directory.
    instance: usize,
    starts: usize,
}

/// oxsdb, the process most tests start.
pub type Oxsdb = ServerProcess;

impl ServerProcess {
    /// Starts a server of `kind` with `args`, listening on
    /// `ptcp:0:127.0.0.1` (and `punix:UNIX`), its files in `dir`;
    /// `Err((exit status, output))` if it exits before listening.
    pub fn spawn<S: Into<OsString> + Clone>(
        kind: Kind,
        args: &[S],
        envs: &[(&str, &str)],
        dir: &Path,
        unix: Option<PathBuf>,
    ) -> Result<ServerProcess, (ExitStatus, String)> {
        let mut p = ServerProcess {
            kind,
            args: args.iter().cloned().map(Into::into).collect(),
            envs: envs.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            port: 0,
            unix,
            child: None,
            dir: dir.to_path_buf(),
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            starts: 0,
        };
        p.try_start_again().map(|()| p)
    }

    /// oxsdb with `args` (everything but the remotes); panics if it exits
    /// before listening.
    pub fn start<S: Into<OsString> + Clone>(
        args: &[S],
        log_dir: &Path,
        unix: Option<PathBuf>,
    ) -> Oxsdb {
        Self::spawn(Kind::Oxsdb, args, &[], log_dir, unix).unwrap_or_else(|(s, text)| {
            panic!("oxsdb exited with {s} before listening; output:\n{text}")
        })
    }

    /// [`Oxsdb::start`] with environment variables set for the process.
    pub fn start_with_env<S: Into<OsString> + Clone>(
        args: &[S],
        envs: &[(&str, &str)],
        log_dir: &Path,
    ) -> Oxsdb {
        Self::spawn(Kind::Oxsdb, args, envs, log_dir, None).unwrap_or_else(|(s, text)| {
            panic!("oxsdb exited with {s} before listening; output:\n{text}")
        })
    }

    /// Like [`Oxsdb::start`], but an oxsdb that exits before listening is
    /// `Err((exit status, output))`.
    pub fn try_start<S: Into<OsString> + Clone>(
        args: &[S],
        log_dir: &Path,
        unix: Option<PathBuf>,
    ) -> Result<Oxsdb, (ExitStatus, String)> {
        Self::spawn(Kind::Oxsdb, args, &[], log_dir, unix)
    }

    fn file(&self, what: &str) -> PathBuf {
        self.dir
            .join(format!("{}-{}.{what}", self.kind.name(), self.instance))
    }

    fn stderr_path(&self, start: usize) -> PathBuf {
        self.file(&format!("{start}.stderr"))
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.file(&format!("{start}.log"))
    }

    fn command(&self) -> Command {
        let mut c = match self.kind {
            Kind::Oxsdb => {
                let mut c = Command::new(oxsdb_bin());
                // Its control socket beside its output, not in the run directory.
                // (If the path fits a socket address.)
                let ctl = self.file("ctl");
                if !self
                    .args
                    .iter()
                    .any(|a| a.to_string_lossy().starts_with("--unixctl"))
                    && ctl.as_os_str().len() < 100
                {
                    c.arg(format!("--unixctl={}", ctl.display()));
                }
                c
            }
            Kind::Reference => {
                let mut c = Command::new(tool("ovsdb-server"));
                c.arg("--no-chdir")
                    .arg(format!("--unixctl={}", self.file("ctl").display()))
                    .arg(format!(
                        "--log-file={}",
                        self.log_path(self.starts).display()
                    ))
                    .arg(format!("--pidfile={}", self.file("pid").display()))
                    .arg("-vconsole:off");
                c
            }
        };
        c.arg(format!("--remote=ptcp:{}:127.0.0.1", self.port));
        if let Some(u) = &self.unix {
            c.arg(format!("--remote=punix:{}", u.display()));
        }
        c.args(&self.args);
        c.envs(self.envs.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Starts it again (same arguments, port and socket) after a stop or a
    /// kill; panics if it does not listen.
    pub fn start_again(&mut self) {
        if let Err((status, text)) = self.try_start_again() {
            panic!(
                "{} exited with {status} before listening; output:\n{text}",
                self.kind.name()
            );
        }
    }

    /// Starts the process; `Err((exit status, output))` if it exits before
    /// listening. Panics if it neither listens nor exits in time.
    pub fn try_start_again(&mut self) -> Result<(), (ExitStatus, String)> {
        assert!(
            self.child.is_none(),
            "{} is already running",
            self.kind.name()
        );
        self.starts += 1;
        if let Some(u) = &self.unix {
            let _ = fs::remove_file(u);
        }
        let stderr_path = self.stderr_path(self.starts);
        let stderr = fs::File::create(&stderr_path).expect("create stderr file");
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| match self.kind {
                Kind::Oxsdb => panic!("cannot start {}: {e}", oxsdb_bin().display()),
                Kind::Reference => panic!("cannot start ovsdb-server: {e}; {INSTALL_HINT}"),
            });
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let port = match self.kind {
                Kind::Oxsdb => oxsdb_port(&fs::read_to_string(&stderr_path).unwrap_or_default()),
                // ovsdb-server logs the port only when it chose it.
                Kind::Reference if self.port != 0 => {
                    std::net::TcpStream::connect(("127.0.0.1", self.port))
                        .ok()
                        .map(|_| self.port)
                }
                Kind::Reference => self.logged_ports().first().copied(),
            };
            if let Some(port) = port {
                if self.unix.as_ref().is_none_or(|u| u.exists()) {
                    assert!(
                        self.port == 0 || self.port == port,
                        "{} restarted on port {port}, not {}",
                        self.kind.name(),
                        self.port
                    );
                    self.port = port;
                    return Ok(());
                }
            }
            let child = self.child.as_mut().expect("started above");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err((status, self.output()));
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!(
                    "{} did not listen within {START_TIMEOUT:?}; output:\n{}",
                    self.kind.name(),
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The ports of ovsdb-server's "listening on port N" log lines of the
    /// latest start, in order (a `db:` remote adds one).
    pub fn logged_ports(&self) -> Vec<u16> {
        reference_ports(&fs::read_to_string(self.log_path(self.starts)).unwrap_or_default())
    }

    /// The control socket (`--unixctl`) the process was given by default.
    pub fn ctl(&self) -> PathBuf {
        self.file("ctl")
    }

    /// SIGTERM; it must exit within [`STOP_TIMEOUT`], oxsdb with status 0
    /// (ovsdb-server dies of the signal).
    pub fn stop(&mut self) {
        let name = self.kind.name();
        match self.terminate() {
            Some(s) => assert!(
                s.success() || self.kind == Kind::Reference,
                "{name} exited with {s} on SIGTERM; output:\n{}",
                self.output()
            ),
            None => panic!("{name} is not running"),
        }
    }

    /// SIGTERM (SIGKILL and a panic if it does not exit within
    /// [`STOP_TIMEOUT`]); its exit status, `None` if it was not running.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        send_signal(child.id(), SIGTERM);
        match wait_timeout(&mut child, STOP_TIMEOUT) {
            Some(s) => Some(s),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within {STOP_TIMEOUT:?} of SIGTERM; output:\n{}",
                    self.kind.name(),
                    self.output()
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

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether it is running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The directory of its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stderr of the latest start.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path(self.starts)).unwrap_or_default()
    }

    /// The log file of the latest start (ovsdb-server's `--log-file`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path(self.starts)).unwrap_or_default()
    }

    /// The stderr of every start, for failure messages.
    pub fn all_stderr(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                format!(
                    "--- {} start {i}:\n{}",
                    self.kind.name(),
                    fs::read_to_string(self.stderr_path(i)).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Everything it wrote at every start (log files and stderr).
    pub fn output(&self) -> String {
        let mut out = String::new();
        for i in 1..=self.starts {
            for (what, path) in [("log", self.log_path(i)), ("stderr", self.stderr_path(i))] {
                if let Ok(t) = fs::read_to_string(path) {
                    if !t.is_empty() {
                        out.push_str(&format!("--- {what} of start {i}:\n{t}"));
                    }
                }
            }
        }
        out
    }

    /// `tcp:127.0.0.1:PORT`, the active remote clients connect to.
    pub fn tcp(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, for raw connections.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `unix:PATH`.
    pub fn unix_remote(&self) -> String {
        format!(
            "unix:{}",
            self.unix.as_ref().expect("no punix remote").display()
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs oxsdb with `args` expecting it to fail at start-up; returns what it did.
pub fn oxsdb_fails<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let mut c = Command::new(oxsdb_bin());
    c.arg("--remote=ptcp:0:127.0.0.1").args(args);
    run(&mut c, START_TIMEOUT)
}

/// The port of `oxsdb: listening on ptcp:PORT:IP` in oxsdb's stderr.
pub fn oxsdb_port(stderr: &str) -> Option<u16> {
    stderr.lines().find_map(|l| {
        let rest = &l[l.find("listening on ptcp:")? + "listening on ptcp:".len()..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok().filter(|&p| p != 0)
    })
}

/// The ports of ovsdb-server's `...: listening on port N` log lines.
pub fn reference_ports(log: &str) -> Vec<u16> {
    let mut ports = Vec::new();
    for line in log.lines() {
        if let Some(pos) = line.find("listening on port ") {
            let rest = &line[pos + "listening on port ".len()..];
            let mut digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            // ovsdb-server's log sometimes has the next record's timestamp
            // glued to the port ("...port 346272026-11-22T..."): drop the year.
            if digits.len() > 5 && rest[digits.len()..].starts_with('-') {
                digits.truncate(digits.len() - 4);
            }
            if let Ok(p) = digits.parse() {
                ports.push(p);
            }
        }
    }
    ports
}
