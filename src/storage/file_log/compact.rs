//! Compaction, by ovsdb-server's rule or on demand: the file is replaced by
//! one holding the schema and one snapshot record of every row.
//!
//! The rows are taken on the database's thread (a clone of each table's
//! `Arc` rows, cheap) and written to `<file>.tmp` by a background thread
//! without holding any lock, then fsynced. Commits go on meanwhile: they
//! are appended to the old file, and a copy of each record is kept. Then,
//! briefly holding the file's state (appends wait), the thread appends the
//! kept records to the new file, fsyncs it, renames it over the old one and
//! fsyncs the directory. A crash at any point leaves either the old file or
//! the new one, both complete. A conversion that replaces the file
//! meanwhile makes the compaction stale: it is dropped.

use super::error::{io_err, FileStoreError};
use super::record::RecordWriter;
use super::replace::{rename_over, tmp_path, write_new_file};
use super::sync::Shared;
use crate::data::Row;
use crate::db::Database;
use crate::schema::DatabaseSchema;
use crate::storage::{ovsdb_log, ovsdb_txn};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The rows of every table, for a snapshot.
pub(super) fn rows_of(db: &Database) -> Vec<Vec<Arc<Row>>> {
    db.tables
        .iter()
        .map(|t| t.rows.values().cloned().collect())
        .collect()
}

/// One compaction's input, taken on the database's thread.
pub(super) struct Job {
    /// The schema of the rows.
    pub schema: Arc<DatabaseSchema>,
    /// The rows of every table.
    pub rows: Vec<Vec<Arc<Row>>>,
    /// The file's epoch when the rows were taken.
    pub epoch: u64,
    /// Mark the snapshot `_is_diff`, as ovsdb-server does with column diffs.
    pub column_diffs: bool,
}

impl Job {
    /// Takes `db`'s rows and starts keeping the records appended from now on.
    /// `None` if a compaction is already under way.
    pub fn begin(shared: &Shared, db: &Database, column_diffs: bool) -> Option<Job> {
        let mut st = shared.state();
        if st.pending.is_some() {
            return None;
        }
        st.pending = Some(Vec::new());
        Some(Job {
            schema: db.schema.clone(),
            rows: rows_of(db),
            epoch: st.epoch,
            column_diffs,
        })
    }

    /// Writes the new file and puts it in place (see the module
    /// documentation). `Ok(false)` if the file was replaced meanwhile or
    /// `cancel` was set.
    pub fn run(mut self, shared: &Shared, cancel: &AtomicBool) -> Result<bool, FileStoreError> {
        let path = shared.path.as_path();
        let epoch = self.epoch;
        let abandon = |e: FileStoreError| {
            let mut st = shared.state();
            if st.epoch == epoch {
                st.pending = None;
            }
            e
        };
        let schema_record = ovsdb_log::encode(&self.schema.to_json());
        let mut writer = RecordWriter::new(self.schema.clone());
        let snapshot = writer.snapshot(
            &mut self.rows,
            ovsdb_txn::COMPACT_COMMENT,
            ovsdb_txn::now_ms(),
            self.column_diffs,
        );
        drop(std::mem::take(&mut self.rows));
        let old_size = shared.state().offset;
        let tmp = tmp_path(path);
        let (file, ends) = write_new_file(&tmp, &[&schema_record, snapshot]).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            abandon(io_err(&tmp, "write")(e))
        })?;
        drop(writer);
        let base = ends[1];
        // Swap, holding the file's state: appends wait.
        let mut st = shared.state();
        if st.epoch != epoch || st.pending.is_none() || cancel.load(Ordering::Acquire) {
            if st.epoch == epoch {
                st.pending = None;
            }
            drop(st);
            let _ = std::fs::remove_file(&tmp);
            return Ok(false);
        }
        let pending = st.pending.take().unwrap_or_default();
        let fail = |e: std::io::Error, action| {
            let _ = std::fs::remove_file(&tmp);
            io_err(&tmp, action)(e)
        };
        let mut end = base;
        for bytes in &pending {
            file.write_all_at(bytes, end)
                .map_err(|e| fail(e, "write"))?;
            end += bytes.len() as u64;
        }
        if !pending.is_empty() {
            file.sync_data().map_err(|e| fail(e, "fsync"))?;
        }
        rename_over(&tmp, path)
            .map_err(|e| fail(e, "rename the compacted file over the old one"))?;
        st.file = Arc::new(file);
        st.offset = end;
        st.base = base;
        st.n_txns = 1 + pending.len() as u64;
        st.epoch += 1;
        st.last_compact = Instant::now();
        st.retry_at = None;
        let written = st.written;
        drop(st);
        shared.mark_synced(written);
        shared.compactions.fetch_add(1, Ordering::Relaxed);
        shared
            .carried
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
        tracing::info!(path = %path.display(), from = old_size, to = end,
            carried = pending.len(), "file log: compacted database file");
        Ok(true)
    }
}

/// ovsdb-server's rule: whether a file of `offset` bytes, `base` bytes just
/// after its last compaction, with `n_txns` records, is due.
pub(super) fn due(o: &super::FileOptions, st: &super::sync::FileState, now: Instant) -> bool {
    let since = now.saturating_duration_since(st.last_compact);
    if st.pending.is_some()
        || st.retry_at.is_some_and(|t| now < t)
        || since < o.compact_min_interval
    {
        false
    } else if since >= o.compact_max_interval {
        st.n_txns > 1
    } else {
        st.n_txns >= o.compact_min_records
            && st.offset > o.compact_min_bytes
            && st.offset / 2 > st.base
    }
}
