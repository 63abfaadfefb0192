//! The socket files of `punix:` listeners, removed when their listener
//! goes and when the server exits, as ovsdb-server unlinks them
//! (pstream_close, and fatal_signal's files to unlink at exit).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The socket files of the listeners open now.
#[derive(Debug, Default)]
pub struct SocketFiles {
    paths: Mutex<HashSet<PathBuf>>,
}

impl SocketFiles {
    /// Records the socket file of a listener just bound.
    pub fn add(&self, path: &Path) {
        self.lock().insert(path.to_path_buf());
    }

    /// Removes the file of a listener closed.
    pub fn unlink(&self, path: &Path) {
        if self.lock().remove(path) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Removes every file recorded (the server is exiting).
    pub fn unlink_all(&self) {
        for p in self.lock().drain() {
            let _ = std::fs::remove_file(p);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.paths.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_go_once_with_their_listener_or_all_at_exit() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        let files = SocketFiles::default();
        files.add(&a);
        files.add(&b);
        files.unlink(&a);
        assert!(!a.exists() && b.exists());
        // A file of the same name bound again later is not removed twice.
        std::fs::write(&a, "").unwrap();
        files.unlink(&a);
        assert!(a.exists());
        files.unlink_all();
        assert!(!b.exists());
    }
}
