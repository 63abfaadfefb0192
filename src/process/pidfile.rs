//! The pidfile of Open vSwitch daemons (lib/daemon-unix.c): written
//! atomically, locked for the process's life so that a second server with
//! the same pidfile refuses to start, removed at exit.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Why the pidfile could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PidfileError {
    /// Another live process holds it.
    #[error("{path}: already running as pid {pid}, aborting (stop it first, or give --overwrite-pidfile)")]
    AlreadyRunning {
        /// The pidfile.
        path: PathBuf,
        /// The holder's pid.
        pid: i64,
    },
    /// Creating, locking, writing or renaming failed.
    #[error("{path}: cannot write pidfile: {source} (check the directory exists and is writable)")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A written pidfile; removed when dropped.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    // Holds the lock that tells other processes this one is alive.
    _file: File,
}

/// A `struct flock` covering the whole file.
fn whole_file(kind: libc::c_short) -> libc::flock {
    // SAFETY: flock is plain old data; all-zero is a valid value.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = kind;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l
}

/// The pid of the process holding a write lock on `path`, if any.
pub fn holder(path: &Path) -> Option<i64> {
    let f = File::open(path).ok()?;
    let mut l = whole_file(libc::F_WRLCK as libc::c_short);
    // SAFETY: a valid descriptor and a valid flock struct.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut l) };
    (r == 0 && l.l_type != libc::F_UNLCK as libc::c_short).then_some(i64::from(l.l_pid))
}

impl Pidfile {
    /// Writes this process's pid to `path`: refused if a live process
    /// holds the file, unless `overwrite`.
    pub fn create(path: &Path, overwrite: bool) -> Result<Pidfile, PidfileError> {
        let io = |source| PidfileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if !overwrite {
            if let Some(pid) = holder(path) {
                return Err(PidfileError::AlreadyRunning {
                    path: path.to_path_buf(),
                    pid,
                });
            }
        }
        let pid = std::process::id();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{pid}"));
        let tmp = PathBuf::from(tmp);
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io)?;
        let l = whole_file(libc::F_WRLCK as libc::c_short);
        // SAFETY: a valid descriptor and a valid flock struct.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &l) } != 0 {
            let e = std::io::Error::last_os_error();
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        let written = file
            .write_all(format!("{pid}\n").as_bytes())
            .and_then(|()| file.flush())
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok(Pidfile {
            path: path.to_path_buf(),
            _file: file,
        })
    }

    /// The file's name.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        // Only our own file: --overwrite-pidfile may have let another
        // process replace it since.
        if std::fs::read_to_string(&self.path)
            .is_ok_and(|s| s.trim() == std::process::id().to_string())
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_locked_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pid");
        let f = Pidfile::create(&p, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{}\n", std::process::id())
        );
        // fcntl locks do not conflict within one process: F_GETLK reports
        // no holder to the owner itself, so the refusal is tested across
        // processes (tests/daemon.rs).
        drop(f);
        assert!(!p.exists());
        // No leftover temporary file.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn unwritable_directory_names_the_file() {
        let e = Pidfile::create(Path::new("/nonexistent/dir/x.pid"), false).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/dir/x.pid"), "{e}");
    }

    #[test]
    fn stale_pidfile_without_lock_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pid");
        std::fs::write(&p, "999999\n").unwrap();
        assert_eq!(holder(&p), None);
        let _f = Pidfile::create(&p, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap().trim(),
            std::process::id().to_string()
        );
    }
}
