//! Replacing a database file atomically, as ovsdb-server does: the new
//! contents go to a file beside it, are fsynced, renamed over the old file,
//! and the directory is fsynced. A crash at any point leaves the old file
//! or the new one, both complete.

use super::error::{io_err, FileStoreError};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// `<path><suffix>`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Where compaction (and creation) writes the new file, as ovsdb-server does.
pub(super) fn tmp_path(path: &Path) -> PathBuf {
    with_suffix(path, ".tmp")
}

/// Where a schema conversion writes the new file: not the compaction's, as
/// a background compaction may be writing that one meanwhile.
pub(super) fn convert_tmp_path(path: &Path) -> PathBuf {
    with_suffix(path, ".convert.tmp")
}

/// fsyncs the directory holding `path`, so that a rename in it is durable.
pub(super) fn fsync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Writes framed `records` into a new (or truncated) file and fsyncs it;
/// returns the file and the end of each record.
pub(super) fn write_new_file(path: &Path, records: &[&[u8]]) -> io::Result<(File, Vec<u64>)> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let mut end = 0u64;
    let mut ends = Vec::with_capacity(records.len());
    for r in records {
        f.write_all_at(r, end)?;
        end += r.len() as u64;
        ends.push(end);
    }
    f.sync_data()?;
    Ok((f, ends))
}

/// Renames `tmp` over `path` and fsyncs the directory (a failure of the
/// latter is only logged: the rename happened).
pub(super) fn rename_over(tmp: &Path, path: &Path) -> io::Result<()> {
    std::fs::rename(tmp, path)?;
    if let Err(e) = fsync_dir(path) {
        tracing::warn!(path = %path.display(), error = %e,
            "file log: fsync of the directory failed");
    }
    Ok(())
}

/// Replaces `path` by a new file holding `records`, written beside it as
/// `tmp` (see the module documentation).
pub(super) fn replace_file(
    path: &Path,
    tmp: &Path,
    records: &[&[u8]],
) -> Result<(File, Vec<u64>), FileStoreError> {
    let (f, ends) = write_new_file(tmp, records).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        io_err(tmp, "write")(e)
    })?;
    rename_over(tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        io_err(path, "rename the new file over")(e)
    })?;
    Ok((f, ends))
}
