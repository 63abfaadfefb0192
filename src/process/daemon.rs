//! Running as an Open vSwitch daemon (lib/daemon-unix.c): `--detach`
//! (the starting process returns once the server is ready), `--monitor`
//! (a parent process restarts the server after a crash), `--no-chdir`
//! and `--user`.
//!
//! [`start`] must run before any thread exists (fork copies only the
//! calling thread); [`Daemon::ready`] runs once the server listens.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Why daemonizing failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A system call failed.
    #[error("{what} failed: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// `--user` names no user or group, or switching failed.
    #[error("--user {spec}: {message}")]
    User {
        /// The option's value.
        spec: String,
        /// What went wrong and what to do.
        message: String,
    },
}

fn sys(what: &'static str) -> DaemonError {
    DaemonError::Sys {
        what,
        source: std::io::Error::last_os_error(),
    }
}

/// How to run as a daemon.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Run in the background once ready.
    pub detach: bool,
    /// Restart the server when it crashes.
    pub monitor: bool,
    /// With `detach`, stay in the current directory instead of `/`.
    pub no_chdir: bool,
    /// `USER[:GROUP]` to run as.
    pub user: Option<String>,
    /// Where the monitor records restarts (the server's log file).
    pub log_file: Option<std::path::PathBuf>,
}

/// The server process's side of daemonizing.
#[derive(Debug)]
pub struct Daemon {
    /// Written to (one byte) when the server is ready: the detaching parent exits 0.
    ready: Option<OwnedFd>,
    chdir: bool,
    detached: bool,
}

/// Signals after which `--monitor` restarts the server: crashes, not
/// requests to stop. Exit status 101 is a Rust panic.
const CRASH_SIGNALS: [libc::c_int; 9] = [
    libc::SIGABRT,
    libc::SIGALRM,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGPIPE,
    libc::SIGSEGV,
    libc::SIGXCPU,
    libc::SIGXFSZ,
];

/// Whether a wait status is a crash that `--monitor` restarts after.
pub fn is_crash(status: libc::c_int) -> bool {
    (libc::WIFSIGNALED(status) && CRASH_SIGNALS.contains(&libc::WTERMSIG(status)))
        || (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 101)
}

/// Describes a wait status as OVS does in its log.
pub fn describe_status(status: libc::c_int) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else {
        format!("wait status {status}")
    }
}

fn fork() -> Result<libc::pid_t, DaemonError> {
    // SAFETY: called while the process has one thread (see the module doc).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(sys("fork"))
    } else {
        Ok(pid)
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), DaemonError> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(sys("pipe"));
    }
    // SAFETY: pipe just returned these descriptors, owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn wait(pid: libc::pid_t) -> Result<libc::c_int, DaemonError> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(sys("waitpid"));
        }
    }
}

/// The exit code a process should end with to pass on `status`.
fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    }
}

/// Daemonizes if `options` ask for anything; otherwise the process stays
/// as it is ([`Daemon::foreground`]).
pub fn start_if_asked(options: &DaemonOptions) -> Result<Daemon, DaemonError> {
    if options.detach || options.monitor || options.user.is_some() {
        start(options)
    } else {
        Ok(Daemon::foreground())
    }
}

/// Daemonizes as `options` say. Returns only in the process that is to
/// run the server; the detaching parent and the monitor exit from here.
pub fn start(options: &DaemonOptions) -> Result<Daemon, DaemonError> {
    let mut ready = None;
    if options.detach {
        let (rx, tx) = pipe()?;
        if fork()? > 0 {
            drop(tx);
            wait_for_startup(rx);
        }
        drop(rx);
        // SAFETY: plain system call in the child.
        if unsafe { libc::setsid() } < 0 {
            return Err(sys("setsid"));
        }
        ready = Some(tx);
    }
    if options.monitor {
        ready = monitor(ready, options)?;
    }
    if let Some(spec) = &options.user {
        switch_user(spec)?;
    }
    Ok(Daemon {
        ready,
        chdir: options.detach && !options.no_chdir,
        detached: options.detach,
    })
}

/// The detaching parent: exits 0 once the server says it is ready, or with
/// the server's status if it ends first.
fn wait_for_startup(rx: OwnedFd) -> ! {
    let mut f = std::fs::File::from(rx);
    let mut byte = [0u8; 1];
    match f.read(&mut byte) {
        Ok(1) => std::process::exit(0),
        _ => {
            // The pipe closed without a byte: the child (or the monitor)
            // exited before it was ready; pass its status on.
            let mut status = 0;
            // SAFETY: status is a valid out-pointer.
            let r = unsafe { libc::waitpid(-1, &mut status, 0) };
            eprintln!(
                "fork child died before signaling startup ({})",
                if r > 0 {
                    describe_status(status)
                } else {
                    "status unknown".into()
                }
            );
            std::process::exit(if r > 0 { exit_code(status).max(1) } else { 1 })
        }
    }
}

/// The monitor: forks the server, and forks it again each time it crashes.
/// Returns (in the server process) the readiness pipe for the first run
/// only: a restarted server has no one waiting for it.
fn monitor(
    mut ready: Option<OwnedFd>,
    options: &DaemonOptions,
) -> Result<Option<OwnedFd>, DaemonError> {
    let mut last_start: Option<Instant> = None;
    loop {
        // Crash loops are slowed to one start every ten seconds, as in OVS.
        if let Some(t) = last_start {
            let since = t.elapsed();
            if since < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_secs(10) - since);
            }
        }
        last_start = Some(Instant::now());
        let pid = fork()?;
        if pid == 0 {
            return Ok(ready.take());
        }
        // The server holds its own copy; the parent must see EOF if it dies.
        drop(ready.take());
        if options.detach {
            // Whoever started us may wait for our output to end.
            to_dev_null()?;
        }
        let status = wait(pid)?;
        if is_crash(status) {
            log_line(
                options,
                &format!("pid {pid} died, {}, restarting", describe_status(status)),
            );
            continue;
        }
        log_line(
            options,
            &format!("pid {pid} died, {}, exiting", describe_status(status)),
        );
        std::process::exit(exit_code(status));
    }
}

/// The monitor reports to the server's log file, or standard error.
fn log_line(options: &DaemonOptions, s: &str) {
    let line = format!("oxsdb monitor: {s}\n");
    let file = options.log_file.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let _ = match file {
        Some(mut f) => f.write_all(line.as_bytes()),
        None => std::io::stderr().write_all(line.as_bytes()),
    };
}

/// Points the standard streams at /dev/null.
fn to_dev_null() -> Result<(), DaemonError> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| DaemonError::Sys {
            what: "open /dev/null",
            source,
        })?;
    use std::os::fd::AsRawFd;
    for fd in 0..3 {
        // SAFETY: replaces a standard descriptor by /dev/null.
        unsafe { libc::dup2(null.as_raw_fd(), fd) };
    }
    Ok(())
}

/// Looks `name` up in the user database: (uid, primary gid).
fn lookup_user(name: &str) -> Option<(libc::uid_t, libc::gid_t)> {
    let c = CString::new(name).ok()?;
    // SAFETY: pwd and buf outlive the call; result points into them.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16384];
        let mut result = std::ptr::null_mut();
        let r = libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        (r == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
    }
}

fn lookup_group(name: &str) -> Option<libc::gid_t> {
    let c = CString::new(name).ok()?;
    // SAFETY: grp and buf outlive the call; result points into them.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16384];
        let mut result = std::ptr::null_mut();
        let r = libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        (r == 0 && !result.is_null()).then_some(grp.gr_gid)
    }
}

/// Parses `USER[:GROUP]` into (user, uid, gid).
pub fn resolve_user(spec: &str) -> Result<(String, libc::uid_t, libc::gid_t), DaemonError> {
    let err = |message: String| DaemonError::User {
        spec: spec.to_string(),
        message,
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, mut gid) = lookup_user(user).ok_or_else(|| {
        err(format!(
            "no user named {user:?}; give an existing USER[:GROUP]"
        ))
    })?;
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        gid = lookup_group(g).ok_or_else(|| {
            err(format!(
                "no group named {g:?}; give an existing USER[:GROUP]"
            ))
        })?;
    }
    Ok((user.to_string(), uid, gid))
}

/// Runs the rest of the process as `spec`'s user and group.
fn switch_user(spec: &str) -> Result<(), DaemonError> {
    let (user, uid, gid) = resolve_user(spec)?;
    // SAFETY: plain system calls.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid == uid && egid == gid {
        return Ok(());
    }
    let err = |what: &str| DaemonError::User {
        spec: spec.to_string(),
        message: format!(
            "{what} failed: {} (only root can switch to another user)",
            std::io::Error::last_os_error()
        ),
    };
    let name = CString::new(user).map_err(|_| err("user name"))?;
    // SAFETY: plain system calls with a valid NUL-terminated name.
    unsafe {
        if libc::initgroups(name.as_ptr(), gid) != 0 {
            return Err(err("initgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(err("setgid"));
        }
        if libc::setuid(uid) != 0 {
            return Err(err("setuid"));
        }
    }
    Ok(())
}

impl Daemon {
    /// A process that is no daemon (no options): `ready` does nothing.
    pub fn foreground() -> Daemon {
        Daemon {
            ready: None,
            chdir: false,
            detached: false,
        }
    }

    /// Whether this process detached from its starter.
    pub fn detached(&self) -> bool {
        self.detached
    }

    /// The server is ready (listening, pidfile and control socket made):
    /// the detaching parent exits 0, the daemon leaves its directory
    /// unless `--no-chdir`, and a detached daemon's standard streams go
    /// to /dev/null.
    pub fn ready(&mut self) -> Result<(), DaemonError> {
        if let Some(tx) = self.ready.take() {
            let mut f = std::fs::File::from(tx);
            f.write_all(b"r").map_err(|source| DaemonError::Sys {
                what: "signaling startup",
                source,
            })?;
        }
        if self.chdir {
            std::env::set_current_dir("/").map_err(|source| DaemonError::Sys {
                what: "chdir /",
                source,
            })?;
        }
        if self.detached {
            to_dev_null()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crashes_are_signals_and_panics() {
        // Wait statuses as the kernel encodes them.
        let signaled = |sig: libc::c_int| sig;
        let exited = |code: libc::c_int| code << 8;
        assert!(is_crash(signaled(libc::SIGSEGV)));
        assert!(is_crash(signaled(libc::SIGABRT)));
        assert!(is_crash(exited(101)));
        assert!(!is_crash(signaled(libc::SIGTERM)));
        assert!(!is_crash(signaled(libc::SIGKILL)));
        assert!(!is_crash(exited(0)));
        assert!(!is_crash(exited(1)));
        assert_eq!(describe_status(exited(3)), "exit status 3");
        assert_eq!(describe_status(signaled(11)), "killed by signal 11");
    }

    #[test]
    fn users_resolve() {
        let (name, uid, gid) = resolve_user("root").unwrap();
        assert_eq!((name.as_str(), uid, gid), ("root", 0, 0));
        let (_, _, gid) = resolve_user("root:root").unwrap();
        assert_eq!(gid, 0);
        let e = resolve_user("no-such-user-oxsdb").unwrap_err().to_string();
        assert!(e.contains("no user named"), "{e}");
        let e = resolve_user("root:no-such-group-oxsdb")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no group named"), "{e}");
    }
}
