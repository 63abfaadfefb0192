//! What to open and how: [`FileDb`] names a file, [`FileOptions`] holds the
//! settings (ovsdb-server's compaction rule, fsync, column diffs).

use crate::schema::DatabaseSchema;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One database file to open.
#[derive(Debug, Clone)]
pub struct FileDb {
    /// The file.
    pub path: PathBuf,
    /// The schema: required to create a missing file; for an existing one,
    /// checked against the file's (same name and version) and otherwise
    /// unused — the file's own schema is served.
    pub schema: Option<Arc<DatabaseSchema>>,
}

/// Settings of a [`FileLog`](super::FileLog).
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// fsync after every commit that writes a record, not only after those
    /// asking for durability (`--fsync`).
    pub fsync_every_commit: bool,
    /// Compact files automatically.
    pub auto_compact: bool,
    /// ovsdb-server's rule: compact when the file is larger than this and
    /// more than twice its size just after the last compaction (or opening).
    pub compact_min_bytes: u64,
    /// ... and holds at least this many transaction records ...
    pub compact_min_records: u64,
    /// ... and this long has passed since the last compaction (or opening).
    pub compact_min_interval: Duration,
    /// After this long, compact if anything was written, whatever the size.
    pub compact_max_interval: Duration,
    /// Write set and map changes as diffs (`"_is_diff": true`), as
    /// ovsdb-server does unless `--disable-file-column-diff`. Files written
    /// without diffs are also read by ovsdb-server versions before 2.15.
    pub column_diffs: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            fsync_every_commit: false,
            auto_compact: true,
            compact_min_bytes: 10 << 20,
            compact_min_records: 100,
            compact_min_interval: Duration::from_secs(10 * 60),
            compact_max_interval: Duration::from_secs(24 * 60 * 60),
            column_diffs: true,
        }
    }
}
