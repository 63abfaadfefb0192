//! The lock that keeps two processes from writing one database file: an
//! fcntl write lock on `.<name>.~lock~` beside the file, the same lock
//! ovsdb-server and ovsdb-tool take, so oxsdb and they exclude each other.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// The lock file's path for a database file, as ovsdb-server names it.
    pub fn path_for(db: &Path) -> PathBuf {
        let name = db
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        db.with_file_name(format!(".{name}.~lock~"))
    }

    /// Takes the lock without waiting; `Err(WouldBlock)` if another process holds it.
    pub fn acquire(db: &Path) -> io::Result<FileLock> {
        let path = FileLock::path_for(db);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        // SAFETY: `flock` is a plain C struct for which all-zero is a valid value.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = 0;
        fl.l_len = 0;
        // SAFETY: the descriptor is open for writing and `fl` is initialised.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) };
        if rc == -1 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EACCES) => {
                    io::Error::new(io::ErrorKind::WouldBlock, e)
                }
                _ => e,
            });
        }
        Ok(FileLock { _file: file, path })
    }

    /// Where the lock lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_process_cannot_take_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("x.db");
        let held = FileLock::acquire(&db).expect("first lock");
        assert_eq!(held.path(), dir.path().join(".x.db.~lock~"));
        // fcntl locks are per process: ask a child (flock(1) cannot see them,
        // so use python's fcntl.lockf, which is fcntl-based).
        let script = format!(
            "import fcntl,sys\nf=open({:?},'w')\ntry:\n  fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB)\n  sys.exit(0)\nexcept OSError:\n  sys.exit(3)\n",
            held.path()
        );
        let status = std::process::Command::new("python3")
            .args(["-c", &script])
            .status()
            .expect("python3");
        assert_eq!(
            status.code(),
            Some(3),
            "another process must not get the lock"
        );
        drop(held);
        let status = std::process::Command::new("python3")
            .args(["-c", &script])
            .status()
            .expect("python3");
        assert_eq!(status.code(), Some(0), "released on drop");
    }
}
