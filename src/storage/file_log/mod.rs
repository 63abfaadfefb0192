//! [`FileLog`]: the file log store — one OVSDB standalone database file per
//! database, in the format of ovsdb(5), so that oxsdb opens ovsdb-server's
//! files in place and leaves files that `ovsdb-tool` and `ovsdb-server` read.
//!
//! The database actor's in-memory [`Database`] is the authority (DESIGN.md,
//! Storage, "Local stores"); the file is the log of its committed change
//! sets:
//! - **Opening** ([`FileLog::open_all`], `open`): the schema record and
//!   every transaction replayed as ovsdb-server replays them; a missing file
//!   is created from its schema, like `ovsdb-tool create`; a damaged tail is
//!   cut off; the file is locked as ovsdb-server locks it.
//! - **Appending** ([`LogStore::append`]): the change set's record, built
//!   straight from its rows (`record`), written with one `pwrite(2)` at the
//!   end of the file before `append` returns, so a killed process (kill -9)
//!   never loses a transaction that was answered. A failed write is cut off
//!   again and reported; the caller undoes the commit.
//! - **Durability against power loss**: with `durable` (the `commit`
//!   operation's `"durable": true`) or [`FileOptions::fsync_every_commit`],
//!   `append` returns a [`SyncTicket`] that fsyncs, sharing fsyncs between
//!   tickets waiting at once (`sync`).
//! - **Compaction** (`compact`): automatic by ovsdb-server's rule in a
//!   background thread while commits go on, or now with [`LogStore::compact`].
//! - **Schema conversion** ([`LogStore::convert`]): the file is rewritten
//!   with the new schema and every row, as ovsdb-server does.

mod compact;
mod error;
mod open;
mod options;
mod record;
mod replace;
mod sync;

pub use error::FileStoreError;
pub use options::{FileDb, FileOptions};
pub use record::RecordWriter;

use crate::db::changes::ChangeSet;
use crate::db::Database;
use crate::schema::DatabaseSchema;
use crate::storage::file_lock::FileLock;
use crate::storage::log::{LogError, LogStore, SyncTicket};
use crate::storage::{ovsdb_log, ovsdb_txn};
use compact::Job;
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sync::{FileState, Shared};

/// The comment of the snapshot record a schema conversion writes.
pub const CONVERT_COMMENT: &str = "converted by oxsdb";

/// The log of one database in its file. See the module documentation.
pub struct FileLog {
    shared: Arc<Shared>,
    writer: RecordWriter,
    options: FileOptions,
    /// The running background compaction, if any.
    compaction: Option<JoinHandle<Result<bool, FileStoreError>>>,
    /// Tells the background compaction to give up (the log is dropped).
    cancel: Arc<AtomicBool>,
    /// Held for the log's lifetime (declared last: released after the
    /// compaction thread was joined).
    _lock: FileLock,
}

impl std::fmt::Debug for FileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLog")
            .field("path", &self.shared.path)
            .field("db", &self.writer.schema().name)
            .finish()
    }
}

impl FileLog {
    /// Opens every database file (creating missing ones from their schemas)
    /// and loads each into a [`Database`]. Two files of one database are refused.
    pub fn open_all(
        dbs: Vec<FileDb>,
        options: FileOptions,
    ) -> Result<Vec<(FileLog, Database)>, FileStoreError> {
        let mut out: Vec<(FileLog, Database)> = Vec::with_capacity(dbs.len());
        let mut by_name: HashMap<String, PathBuf> = HashMap::new();
        let mut paths: HashMap<PathBuf, &Path> = HashMap::new();
        for db in &dbs {
            // The same file twice would take its lock twice, which fcntl
            // locks allow within one process: refuse it before opening.
            let real = std::fs::canonicalize(&db.path).unwrap_or_else(|_| db.path.clone());
            if let Some(first) = paths.insert(real, &db.path) {
                return Err(FileStoreError::Duplicate {
                    db: db.path.display().to_string(),
                    first: first.display().to_string(),
                    second: db.path.display().to_string(),
                });
            }
        }
        for db in &dbs {
            let (log, data) = FileLog::open(db, options.clone())?;
            let name = log.schema().name.clone();
            if let Some(first) = by_name.get(&name) {
                return Err(FileStoreError::Duplicate {
                    db: name,
                    first: first.display().to_string(),
                    second: db.path.display().to_string(),
                });
            }
            by_name.insert(name, db.path.clone());
            out.push((log, data));
        }
        Ok(out)
    }

    /// Opens (or creates) one database file and loads it.
    pub fn open(db: &FileDb, options: FileOptions) -> Result<(FileLog, Database), FileStoreError> {
        let opened = open::open_db(db)?;
        let log = FileLog {
            shared: Arc::new(Shared::new(db.path.clone(), opened.state)),
            writer: RecordWriter::new(opened.schema),
            options,
            compaction: None,
            cancel: Arc::new(AtomicBool::new(false)),
            _lock: opened.lock,
        };
        Ok((log, opened.db))
    }

    /// The schema the file holds (after any conversion).
    pub fn schema(&self) -> Arc<DatabaseSchema> {
        self.writer.schema().clone()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The size of the file, as written.
    pub fn file_size(&self) -> u64 {
        self.shared.state().offset
    }

    /// How many fsyncs sync tickets have needed so far (fewer than tickets
    /// when they were grouped).
    pub fn fsync_count(&self) -> u64 {
        self.shared.fsyncs.load(Ordering::Relaxed)
    }

    /// How many compactions have finished.
    pub fn compactions(&self) -> u64 {
        self.shared.compactions.load(Ordering::Relaxed)
    }

    /// How many records compactions carried into their new file because
    /// they were appended while the compaction ran.
    pub fn carried_records(&self) -> u64 {
        self.shared.carried.load(Ordering::Relaxed)
    }

    /// Starts a background compaction now, whatever the rule says: `false`
    /// if one is already running.
    pub fn start_compaction(&mut self, db: &Database) -> bool {
        self.reap(false);
        if self.compaction.is_some() {
            return false;
        }
        let Some(job) = Job::begin(&self.shared, db, self.options.column_diffs) else {
            return false;
        };
        self.spawn(job);
        self.compaction.is_some()
    }

    /// Waits for the running background compaction, if any: its outcome.
    pub fn wait_compaction(&mut self) -> Option<Result<bool, FileStoreError>> {
        let h = self.compaction.take()?;
        Some(self.finished(h))
    }

    fn spawn(&mut self, job: Job) {
        let shared = self.shared.clone();
        let cancel = self.cancel.clone();
        let spawned = std::thread::Builder::new()
            .name("oxsdb-compact".into())
            .spawn(move || job.run(&shared, &cancel));
        match spawned {
            Ok(h) => self.compaction = Some(h),
            Err(e) => {
                tracing::error!(path = %self.shared.path.display(), error = %e,
                    "file log: cannot start a compaction thread");
                let mut st = self.shared.state();
                st.pending = None;
                st.retry_at = Some(Instant::now() + Duration::from_secs(60));
            }
        }
    }

    /// Collects a finished background compaction (or waits for it with `wait`).
    fn reap(&mut self, wait: bool) {
        if self
            .compaction
            .as_ref()
            .is_some_and(|h| wait || h.is_finished())
        {
            if let Some(h) = self.compaction.take() {
                let _ = self.finished(h);
            }
        }
    }

    /// Joins a compaction thread; logs its failure and backs off.
    fn finished(
        &self,
        h: JoinHandle<Result<bool, FileStoreError>>,
    ) -> Result<bool, FileStoreError> {
        let r = h.join().unwrap_or_else(|_| {
            Err(FileStoreError::Other {
                path: self.shared.path.display().to_string(),
                message: "the compaction thread panicked".into(),
            })
        });
        if let Err(e) = &r {
            tracing::error!(path = %self.shared.path.display(), error = %e,
                "file log: compaction failed; retrying in a minute");
            let mut st = self.shared.state();
            st.pending = None;
            st.retry_at = Some(Instant::now() + Duration::from_secs(60));
        }
        r
    }

    fn log_error(&self, e: FileStoreError) -> LogError {
        LogError(e.to_string())
    }
}

impl LogStore for FileLog {
    fn append(
        &mut self,
        db: &Database,
        changes: &ChangeSet,
        comment: Option<&str>,
        durable: bool,
    ) -> Result<Option<SyncTicket>, LogError> {
        let Some(record) = self.writer.transaction(
            changes,
            comment,
            ovsdb_txn::now_ms(),
            self.options.column_diffs,
        ) else {
            return Ok(None);
        };
        let len = record.len() as u64;
        let (target, due) = {
            let mut st = self.shared.state();
            let offset = st.offset;
            if let Err(e) = st.file.write_all_at(record, offset) {
                // Cut off whatever part was written, as ovsdb-server does.
                let cut = st.file.set_len(offset);
                tracing::error!(path = %self.shared.path.display(), error = %e,
                    "file log: write failed");
                return Err(LogError(format!(
                    "{}: write failed: {e}; the transaction was not committed{}; check the \
                     disk (free space, permissions) and retry",
                    self.shared.path.display(),
                    match cut {
                        Ok(()) => String::new(),
                        Err(c) => format!(
                            " (and cutting off its partial record failed too: {c}; \
                             the server will drop it when it next opens the file)"
                        ),
                    }
                )));
            }
            st.offset += len;
            st.written += len;
            st.n_txns += 1;
            if let Some(p) = &mut st.pending {
                p.push(Arc::from(record));
            }
            let due = self.options.auto_compact && compact::due(&self.options, &st, Instant::now());
            (st.written, due)
        };
        if due {
            self.reap(false);
            if self.compaction.is_none() {
                if let Some(job) = Job::begin(&self.shared, db, self.options.column_diffs) {
                    self.spawn(job);
                }
            }
        }
        Ok((durable || self.options.fsync_every_commit).then(|| self.shared.ticket(target)))
    }

    fn convert(&mut self, db: &Database) -> Result<(), LogError> {
        let schema = db.schema.clone();
        let mut writer = RecordWriter::new(schema.clone());
        let schema_record = ovsdb_log::encode(&schema.to_json());
        let mut rows = compact::rows_of(db);
        let snapshot = writer.snapshot(
            &mut rows,
            CONVERT_COMMENT,
            ovsdb_txn::now_ms(),
            self.options.column_diffs,
        );
        let path = self.shared.path.clone();
        // Holding the state: a background compaction finishing now sees a
        // new epoch and drops its (old-schema) file.
        let mut st = self.shared.state();
        let (file, ends) = replace::replace_file(
            &path,
            &replace::convert_tmp_path(&path),
            &[&schema_record, snapshot],
        )
        .map_err(|e| self.log_error(e))?;
        *st = FileState {
            written: st.written,
            epoch: st.epoch + 1,
            ..FileState::new(file, ends[1], ends[1], 1)
        };
        let written = st.written;
        drop(st);
        self.shared.mark_synced(written);
        drop(rows);
        writer.release();
        self.writer = writer;
        tracing::info!(path = %path.display(), db = %schema.name, version = %schema.version,
            "file log: database converted to a new schema; file rewritten");
        Ok(())
    }

    fn compact(&mut self, db: &Database) -> Result<bool, LogError> {
        // A background compaction still running serves as well (what was
        // appended since it started is carried into its file); one that
        // finished earlier does not.
        let running = self.compaction.as_ref().is_some_and(|h| !h.is_finished());
        if let Some(Ok(true)) = self.wait_compaction() {
            if running {
                return Ok(true);
            }
        }
        let Some(job) = Job::begin(&self.shared, db, self.options.column_diffs) else {
            return Ok(false);
        };
        job.run(&self.shared, &self.cancel)
            .map_err(|e| self.log_error(e))
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

impl Drop for FileLog {
    fn drop(&mut self) {
        // The thread must not rename its file over ours once the lock is
        // released (another opener may be writing it by then).
        self.cancel.store(true, Ordering::Release);
        self.reap(true);
    }
}

#[cfg(test)]
mod tests;
