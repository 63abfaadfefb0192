//! The command-line options of Open vSwitch daemons that oxsdb takes
//! (flattened into the CLI), with ovsdb-server's defaults for file names:
//! the pidfile and control socket in the run directory (`OVS_RUNDIR`), the
//! log file in the log directory (`OVS_LOGDIR`), named after the program.

use super::daemon::DaemonOptions;
use std::path::{Path, PathBuf};

/// Daemon, logging and control-socket options, as ovsdb-server spells them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DaemonArgs {
    /// Run in the background: the starting process exits once the server
    /// listens (or fails with the server's error).
    #[arg(long)]
    pub detach: bool,

    /// Restart the server if it crashes (a monitor process waits for it).
    #[arg(long)]
    pub monitor: bool,

    /// With --detach, stay in the current directory instead of changing to /.
    #[arg(long = "no-chdir")]
    pub no_chdir: bool,

    /// Write the process id to FILE (default RUNDIR/PROGRAM.pid; a
    /// relative FILE is in RUNDIR); removed at exit. A pidfile held by a
    /// running server makes this one refuse to start.
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub pidfile: Option<String>,

    /// Start even if another running process holds the pidfile.
    #[arg(long = "overwrite-pidfile")]
    pub overwrite_pidfile: bool,

    /// Run as USER (and GROUP, default USER's), switching after start-up checks.
    #[arg(long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Log levels: SPEC is module:destination:level, each part optional
    /// (destinations console, syslog, file; levels off, emer, err, warn,
    /// info, dbg; modules as `ovs-appctl vlog/list` shows them), e.g.
    /// -vconsole:off -vfile:info; -v alone logs everything. Repeatable;
    /// RUST_LOG directives, if set, also apply.
    #[arg(short = 'v', long = "verbose", value_name = "SPEC", num_args = 0..=1,
          require_equals = true, default_missing_value = "", action = clap::ArgAction::Append)]
    pub verbose: Vec<String>,
    // `-vSPEC` reaches clap as `--verbose=SPEC`: see [`ovs_style_args`].
    /// Also log to FILE (default LOGDIR/PROGRAM.log); reopened on SIGHUP
    /// and `ovs-appctl vlog/reopen`, for log rotation.
    #[arg(long = "log-file", value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub log_file: Option<String>,

    /// Control socket for ovs-appctl/ovn-appctl (default
    /// RUNDIR/PROGRAM.PID.ctl; a relative SOCKET is in RUNDIR; "none": no socket).
    #[arg(long, value_name = "SOCKET")]
    pub unixctl: Option<String>,
}

/// The command line with `-vSPEC` spelled `--verbose=SPEC`: getopt gives
/// a short option's optional value only when attached, which clap cannot
/// say (`-v` alone must not take the next argument as its value).
pub fn ovs_style_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut options = true;
    for a in args {
        if options {
            if a == "--" {
                options = false;
            } else if let Some(spec) = a.to_str().and_then(|s| s.strip_prefix("-v")) {
                if !spec.starts_with('-') {
                    out.push(if spec.is_empty() {
                        "--verbose".into()
                    } else {
                        format!("--verbose={spec}").into()
                    });
                    continue;
                }
            }
        }
        out.push(a);
    }
    out
}

/// The run directory: `OVS_RUNDIR`, or Open vSwitch's default.
pub fn rundir() -> PathBuf {
    std::env::var_os("OVS_RUNDIR")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/run/openvswitch"))
}

/// The log directory: `OVS_LOGDIR`, or Open vSwitch's default.
pub fn logdir() -> PathBuf {
    std::env::var_os("OVS_LOGDIR")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/log/openvswitch"))
}

/// The name this program was started as: `oxsdb`, or `ovsdb-server` when
/// started through a link of that name (so that default file names are
/// the ones scripts for ovsdb-server expect).
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(Path::new)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "oxsdb".to_string())
}

/// `name` made absolute: relative names are in `dir` (made absolute
/// against the current directory, which a daemon leaves).
fn in_dir(dir: &Path, name: &Path) -> PathBuf {
    absolute(&dir.join(name))
}

/// `p` made absolute against the current directory.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl DaemonArgs {
    /// The pidfile to write, if any.
    pub fn pidfile_path(&self, program: &str) -> Option<PathBuf> {
        self.pidfile.as_ref().map(|p| {
            if p.is_empty() {
                in_dir(&rundir(), Path::new(&format!("{program}.pid")))
            } else {
                in_dir(&rundir(), Path::new(p))
            }
        })
    }

    /// The log file, if any.
    pub fn log_file_path(&self, program: &str) -> Option<PathBuf> {
        self.log_file.as_ref().map(|p| {
            if p.is_empty() {
                in_dir(&logdir(), Path::new(&format!("{program}.log")))
            } else {
                absolute(Path::new(p))
            }
        })
    }

    /// The control socket for process `pid`, or none (`--unixctl=none`).
    pub fn unixctl_path(&self, program: &str, pid: u32) -> Option<PathBuf> {
        match self.unixctl.as_deref() {
            Some("none") => None,
            Some(p) => Some(in_dir(&rundir(), Path::new(p))),
            None => Some(in_dir(
                &rundir(),
                Path::new(&format!("{program}.{pid}.ctl")),
            )),
        }
    }

    /// The `-v` specs, `-v` alone meaning "everything at DBG".
    pub fn log_specs(&self) -> Vec<String> {
        self.verbose
            .iter()
            .map(|s| {
                if s.is_empty() {
                    "any:any:dbg".to_string()
                } else {
                    s.clone()
                }
            })
            .collect()
    }

    /// How to daemonize.
    pub fn daemon_options(&self, program: &str) -> DaemonOptions {
        DaemonOptions {
            detach: self.detach,
            monitor: self.monitor,
            no_chdir: self.no_chdir,
            user: self.user.clone(),
            log_file: self.log_file_path(program),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        d: DaemonArgs,
        rest: Vec<String>,
    }

    #[test]
    fn ovsdb_server_spellings_parse() {
        let c = Cli::try_parse_from(ovs_style_args(
            [
                "x",
                "--detach",
                "--monitor",
                "--no-chdir",
                "--pidfile",
                "--log-file=/tmp/x.log",
                "-vconsole:off",
                "-vfile:info",
                "--verbose=syslog:err",
                "-v",
                "--unixctl=x.ctl",
                "--user",
                "root:root",
                "db.ovsschema",
            ]
            .map(std::ffi::OsString::from),
        ))
        .unwrap();
        assert!(c.d.detach && c.d.monitor && c.d.no_chdir);
        assert_eq!(c.d.pidfile.as_deref(), Some(""));
        assert_eq!(
            c.d.log_specs(),
            ["console:off", "file:info", "syslog:err", "any:any:dbg"]
        );
        assert_eq!(c.d.user.as_deref(), Some("root:root"));
        assert_eq!(c.rest, ["db.ovsschema"]);
        // A bare --pidfile/--log-file does not swallow the next argument.
        let c = Cli::try_parse_from(ovs_style_args(
            ["x", "--log-file", "--pidfile", "-v", "db"].map(std::ffi::OsString::from),
        ))
        .unwrap();
        assert_eq!(c.d.log_file.as_deref(), Some(""));
        assert_eq!(c.d.log_specs(), ["any:any:dbg"]);
        assert_eq!(c.rest, ["db"]);
    }

    #[test]
    fn default_names_follow_the_program_and_rundir() {
        let d = DaemonArgs {
            pidfile: Some(String::new()),
            log_file: Some(String::new()),
            ..DaemonArgs::default()
        };
        let run = rundir();
        assert_eq!(
            d.pidfile_path("ovsdb-server"),
            Some(absolute(&run.join("ovsdb-server.pid")))
        );
        assert_eq!(
            d.unixctl_path("oxsdb", 42),
            Some(absolute(&run.join("oxsdb.42.ctl")))
        );
        assert_eq!(
            d.log_file_path("oxsdb"),
            Some(absolute(&logdir().join("oxsdb.log")))
        );
        let d = DaemonArgs {
            unixctl: Some("none".into()),
            pidfile: Some("/a/b.pid".into()),
            ..DaemonArgs::default()
        };
        assert_eq!(d.unixctl_path("oxsdb", 1), None);
        assert_eq!(d.pidfile_path("oxsdb"), Some(PathBuf::from("/a/b.pid")));
    }
}
