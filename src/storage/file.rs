//! [`FileStore`]: the durable embedded backend — the [`MemoryStore`] plus one
//! OVSDB standalone database file per database, in the format of ovsdb(5),
//! so that oxsdb opens ovsdb-server's files in place and leaves files that
//! `ovsdb-tool` and `ovsdb-server` read.
//!
//! # How it works
//! - **Opening** ([`FileStore::open`]) reads each file: the first record is
//!   the schema, every later one a transaction, replayed into rows as
//!   ovsdb-server replays them (see `ovsdb_txn`). The rows go into the
//!   memory store as stored rows under `keys.row(db, table, uuid)`, and each
//!   schema under `keys.server_db(db)`. A file that does not exist is created
//!   from the schema given for it, like `ovsdb-tool create`.
//! - **Writing**: the memory store calls a hook with every commit batch under
//!   its lock, before the batch becomes visible. The hook turns the batch's
//!   row keys into one transaction record per database file, in
//!   ovsdb-server's style (only changed columns, set and map columns as
//!   diffs, `_date`, `_comment` from the commit's `_/_comments/` key), and
//!   writes it with `pwrite(2)` at the end of the file. A failed write
//!   vetoes the commit (and cuts the partial record off again). So a commit
//!   is in the file before anyone can see it, and a process crash (kill -9)
//!   never loses a transaction that was replied to.
//! - **Durability against power loss**: [`Storage::commit_durable`] with
//!   `durable` (the `commit` operation's `"durable": true`), or every commit
//!   with [`FileOptions::fsync_every_commit`], fsyncs the file before
//!   returning — outside the store's lock, so other commits go on meanwhile.
//!   Group commit: fsyncs are shared. An fsync covers every record written
//!   before it started, so of several commits waiting for durability at
//!   once, one fsyncs and the others find their record already covered.
//!   Writes themselves are not batched: each commit's `write(2)` (a copy into
//!   the page cache, microseconds) has to finish before the commit becomes
//!   visible, and visibility is decided per commit under the memory store's
//!   lock.
//! - **Keys that are not rows** (fences, `_Server` entries, locks, comments,
//!   anything else) live only in memory: fences are recreated by the first
//!   commit, `_Server` entries from the schemas.
//! - **Compaction**, automatic by ovsdb-server's rule (see
//!   [`FileOptions`]), or on demand with [`FileStore::compact_file`]: a
//!   background thread reads a snapshot of the database from the memory
//!   store at revision R, writes `<file>.tmp` (the schema and one record of
//!   every row) and fsyncs it, without holding any lock. Commits go on
//!   meanwhile: the hook still appends them to the old file and also keeps a
//!   copy of each record. Then, briefly holding the file's lock (commits to
//!   that database wait), it appends the kept records of revisions after R,
//!   fsyncs, renames the new file over the old one and fsyncs the directory.
//!   A crash at any point leaves either the old file or the new one, both
//!   complete.
//! - **Schema conversion**: a commit that puts a different schema under
//!   `keys.server_db(db)` (what the database actor's `convert` does) must
//!   also rewrite every row of the database; the file is then replaced by a
//!   new one holding the new schema and those rows, within the commit, as
//!   ovsdb-server does.
//! - **Damage** (ovsdb(7)): records are read until the end or the first bad
//!   one (truncated, wrong length or SHA-1, not JSON, or a transaction that
//!   does not apply, as ovsdb-server judges it); what was read is served,
//!   what follows is logged and cut off. A file whose first record (the
//!   schema) is bad is refused.

use super::keys::{KeyError, Keys, ParsedKey};
use super::memory::{MemoryConfig, MemoryStore};
use super::ovsdb_log::{self, LogReader, ReadError};
use super::ovsdb_txn::{self, Codec, Replay, RowEvent};
use super::{
    CommitResult, Compare, EventKind, KeyValue, LeaseId, Revision, Storage, StorageError,
    WatchBatch, WatchStream, WriteOp,
};
use crate::schema::DatabaseSchema;
use crate::storage::file_lock::FileLock;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::FutureExt;
use serde_json::Value;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

/// Settings of a [`FileStore`].
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
    /// The settings of the memory store inside.
    pub memory: MemoryConfig,
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
            memory: MemoryConfig::default(),
        }
    }
}

/// Why a [`FileStore`] could not open (or compact) its files. Every message
/// names the file and, where there is one, what to do.
#[derive(Debug, thiserror::Error)]
pub enum FileStoreError {
    /// A system call failed.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What was being done.
        action: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The file does not exist and there is no schema to create it from.
    #[error(
        "{path}: database file does not exist and no schema was given to create it \
         (create it with `ovsdb-tool create {path} SCHEMA`, or give a schema)"
    )]
    Missing {
        /// The file.
        path: String,
    },
    /// The file is not a usable standalone database.
    #[error("{path}: {message}")]
    Unusable {
        /// The file.
        path: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The schema given has another version than the file's.
    #[error(
        "{path}: database {db} has schema version {file_version} but version \
         {given_version} was given; oxsdb does not convert databases when opening them: \
         migrate it with `ovsdb-client convert` (on a running server) or \
         `ovsdb-tool convert {path} SCHEMA` (offline), or give the schema of version \
         {file_version}"
    )]
    SchemaVersion {
        /// The file.
        path: String,
        /// The database.
        db: String,
        /// The version in the file.
        file_version: String,
        /// The version given.
        given_version: String,
    },
    /// The schema given is for another database than the file's.
    #[error("{path}: the file holds database {file_db}, but the schema given is for database {given_db}")]
    SchemaName {
        /// The file.
        path: String,
        /// The database in the file.
        file_db: String,
        /// The database of the schema given.
        given_db: String,
    },
    /// Two files hold the same database.
    #[error(
        "database {db} is in two files, {first} and {second}; serve each database from one file"
    )]
    Duplicate {
        /// The database.
        db: String,
        /// The first file.
        first: String,
        /// The second file.
        second: String,
    },
    /// The database's name can't be used in store keys.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        source: KeyError,
    },
    /// No file holds this database.
    #[error("no database file holds database {0}")]
    UnknownDb(String),
    /// A compaction of this file is already running.
    #[error("{0}: a compaction is already in progress")]
    Busy(String),
    /// Anything else.
    #[error("{path}: {message}")]
    Other {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

fn io_err<'p>(
    path: &'p Path,
    action: &'static str,
) -> impl FnOnce(io::Error) -> FileStoreError + 'p {
    move |source| FileStoreError::Io {
        path: path.display().to_string(),
        action,
        source,
    }
}

/// The store. See the module documentation.
pub struct FileStore {
    mem: Arc<MemoryStore>,
    writer: Arc<Writer>,
}

/// What the commit hook and the compaction threads share.
struct Writer {
    keys: Keys,
    dbs: Vec<DbFile>,
    by_name: HashMap<String, usize>,
    options: FileOptions,
}

/// One database file.
struct DbFile {
    name: String,
    path: PathBuf,
    /// Held for the store's lifetime.
    _lock: FileLock,
    state: Mutex<DbState>,
    /// Serialises fsyncs, so that waiting committers share them.
    sync_lock: Mutex<()>,
    /// `DbState::written` as of the last completed fsync.
    synced: AtomicU64,
    /// A compaction thread is running.
    compacting: AtomicBool,
    /// fsyncs done for commits (for tests and statistics).
    fsyncs: AtomicU64,
}

struct DbState {
    codec: Arc<Codec>,
    file: Arc<File>,
    /// The end of the file: where the next record goes.
    offset: u64,
    /// The end of the first transaction record (the snapshot), or of the
    /// schema if there is none: the base of the growth rule.
    base: u64,
    /// Transaction records in the file.
    n_txns: u64,
    /// Bytes appended since opening, across file replacements: the measure
    /// of what an fsync covers.
    written: u64,
    /// Rows in the database (for checking conversions).
    rows: u64,
    /// When the file was last compacted (or opened).
    last_compact: Instant,
    /// Don't try to compact before this (after a failure).
    retry_at: Option<Instant>,
    /// Incremented whenever the file is replaced.
    epoch: u64,
    /// While a compaction runs: every record appended meanwhile, with its
    /// revision.
    pending: Option<Vec<(Revision, Arc<Vec<u8>>)>>,
}

/// The rows of one database in one batch.
#[derive(Default)]
struct DbBatch<'b> {
    rows: Vec<(&'b str, uuid::Uuid, &'b super::Event)>,
    schema: Option<&'b Bytes>,
}

/// A record appended by the hook, for undoing it if a later file fails.
struct Appended {
    db: usize,
    offset: u64,
    len: u64,
    rows: u64,
}

impl DbFile {
    fn state(&self) -> MutexGuard<'_, DbState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path_str(&self) -> String {
        self.path.display().to_string()
    }

    /// Makes every record written so far durable, sharing the fsync with
    /// concurrent callers.
    fn sync(&self) -> Result<(), StorageError> {
        let target = self.state().written;
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let _g = self.sync_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let (file, written) = {
            let st = self.state();
            (st.file.clone(), st.written)
        };
        file.sync_data().map_err(|e| {
            tracing::error!(path = %self.path.display(), error = %e, "file store: fsync failed");
            StorageError::Other(format!(
                "{}: fsync failed ({e}); the transaction is committed but may not survive a \
                 power loss",
                self.path.display()
            ))
        })?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.synced.fetch_max(written, Ordering::AcqRel);
        Ok(())
    }
}

/// `<path><suffix>`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Where compaction (and creation) writes the new file, as ovsdb-server does.
fn tmp_path(path: &Path) -> PathBuf {
    with_suffix(path, ".tmp")
}

/// Where a schema conversion writes the new file: not the compaction's, as
/// a compaction may be writing that one meanwhile.
fn convert_tmp_path(path: &Path) -> PathBuf {
    with_suffix(path, ".convert.tmp")
}

fn fsync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Writes `records` into a new (or truncated) file and fsyncs it; returns
/// the file and the end of each record.
fn write_new_file(path: &Path, records: &[Value]) -> io::Result<(File, Vec<u64>)> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for r in records {
        bytes.extend(ovsdb_log::encode(r));
        ends.push(bytes.len() as u64);
    }
    f.write_all_at(&bytes, 0)?;
    f.sync_data()?;
    Ok((f, ends))
}

/// Replaces `path` by a new file holding `records`, atomically: written
/// beside it as `tmp`, fsynced, renamed over it, directory fsynced.
fn replace_file(
    path: &Path,
    tmp: &Path,
    records: &[Value],
) -> Result<(File, Vec<u64>), FileStoreError> {
    let tmp = tmp.to_path_buf();
    let (f, ends) = write_new_file(&tmp, records).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(&tmp, "write")(e)
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path, "rename the new file over")(e)
    })?;
    if let Err(e) = fsync_dir(path) {
        tracing::warn!(path = %path.display(), error = %e, "file store: fsync of the directory failed");
    }
    Ok((f, ends))
}

/// An opened file: its state and rows.
struct Opened {
    state: DbState,
    replay: Replay,
    lock: FileLock,
}

/// Opens (or creates) one database file.
fn open_db(db: &FileDb) -> Result<Opened, FileStoreError> {
    let path = db.path.as_path();
    let p = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err(dir, "create the directory"))?;
    }
    // Before touching the file: another oxsdb, ovsdb-server or ovsdb-tool may own it.
    let lock = FileLock::acquire(path).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            FileStoreError::Unusable {
                path: p.clone(),
                message: format!(
                    "in use by another process (it holds {}); stop that server first",
                    FileLock::path_for(path).display()
                ),
            }
        } else {
            io_err(&FileLock::path_for(path), "lock")(e)
        }
    })?;
    for stale in [tmp_path(path), convert_tmp_path(path)] {
        if stale.exists() {
            tracing::warn!(path = %stale.display(),
                "file store: removing the leftover of an interrupted compaction or conversion");
            let _ = std::fs::remove_file(&stale);
        }
    }
    let exists = match std::fs::metadata(path) {
        Ok(m) => {
            if !m.is_file() {
                return Err(FileStoreError::Unusable {
                    path: p,
                    message: "not a regular file".into(),
                });
            }
            m.len() > 0
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err(path, "read the metadata of")(e)),
    };
    if !exists {
        let Some(schema) = &db.schema else {
            if path.exists() {
                return Err(FileStoreError::Unusable {
                    path: p,
                    message: "the file is empty, so it holds no schema; remove it, or give a \
                              schema to create the database in it"
                        .into(),
                });
            }
            return Err(FileStoreError::Missing { path: p });
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err(dir, "create the directory"))?;
        }
        let (file, ends) = replace_file(path, &tmp_path(path), &[schema.to_json()])?;
        tracing::info!(path = %p, db = %schema.name, "file store: created database file");
        return Ok(Opened {
            state: new_state(Codec::new(schema.clone()), file, ends[0], ends[0], 0, 0),
            replay: Replay::new(schema.clone()),
            lock,
        });
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path, "open"))?;
    let len = file
        .metadata()
        .map_err(io_err(path, "read the metadata of"))?
        .len();
    let mut reader = LogReader::new(BufReader::with_capacity(1 << 16, &file));
    let first = match reader.read() {
        Ok(Some(r)) => r,
        Ok(None) => unreachable_empty(&p)?,
        Err(ReadError::Io(e)) => return Err(io_err(path, "read")(e)),
        Err(ReadError::Bad { message, .. }) => {
            let mut head = [0u8; 16];
            let n = file.read_at(&mut head, 0).unwrap_or(0);
            let head = &head[..n];
            let message = if head.starts_with(ovsdb_log::CLUSTER_MAGIC) {
                "is a clustered (Raft) database; oxsdb's file store serves standalone \
                 databases: convert it with `ovsdb-tool cluster-to-standalone STANDALONE_FILE \
                 CLUSTERED_FILE`"
                    .to_string()
            } else if !head.starts_with(b"OVSDB ") {
                "is not an OVSDB database file (it does not start with an `OVSDB JSON` record)"
                    .to_string()
            } else {
                format!(
                    "the first record, the schema, is damaged ({message}); the database can't \
                     be read without it: restore the file from a backup, or recreate it with \
                     `ovsdb-tool create`"
                )
            };
            return Err(FileStoreError::Unusable { path: p, message });
        }
    };
    let schema = DatabaseSchema::from_json(&first.json).map_err(|e| FileStoreError::Unusable {
        path: p.clone(),
        message: format!(
            "the first record is not a valid database schema ({e}); restore the file from a \
             backup, or recreate it with `ovsdb-tool create`"
        ),
    })?;
    if let Some(given) = &db.schema {
        if given.name != schema.name {
            return Err(FileStoreError::SchemaName {
                path: p,
                file_db: schema.name,
                given_db: given.name.clone(),
            });
        }
        if given.version != schema.version {
            return Err(FileStoreError::SchemaVersion {
                path: p,
                db: schema.name,
                file_version: version_or_none(&schema.version),
                given_version: version_or_none(&given.version),
            });
        }
        if **given != schema {
            tracing::warn!(path = %p, db = %schema.name,
                "file store: the schema given differs from the file's although both have version {}; \
                 serving the file's", version_or_none(&schema.version));
        }
    }
    let schema = Arc::new(schema);
    let mut replay = Replay::new(schema.clone());
    let mut good_end = first.end;
    let mut base = first.end;
    let mut n_txns = 0u64;
    let mut dropped: Option<(u64, String)> = None;
    loop {
        match reader.read() {
            Ok(None) => break,
            Ok(Some(rec)) => match replay.apply(&rec.json) {
                Ok(()) => {
                    n_txns += 1;
                    good_end = rec.end;
                    if n_txns == 1 {
                        base = rec.end;
                    }
                }
                Err(e) => {
                    dropped = Some((
                        rec.offset,
                        format!(
                            "the transaction at offset {} does not apply: {e}",
                            rec.offset
                        ),
                    ));
                    break;
                }
            },
            Err(ReadError::Io(e)) => return Err(io_err(path, "read")(e)),
            Err(ReadError::Bad { offset, message }) => {
                dropped = Some((offset, message));
                break;
            }
        }
    }
    drop(reader);
    if let Some((offset, why)) = dropped {
        tracing::error!(
            path = %p,
            "file store: {p}: {why}; serving the {n_txns} transactions before it and dropping the \
             {} bytes from offset {offset} on (truncating the file there, as ovsdb-server does)",
            len.saturating_sub(offset)
        );
        file.set_len(offset)
            .map_err(io_err(path, "truncate the damaged end of"))?;
        file.sync_all().map_err(io_err(path, "fsync"))?;
        good_end = offset;
    }
    tracing::info!(path = %p, db = %schema.name, transactions = n_txns, rows = replay.n_rows(),
        "file store: loaded database file");
    let rows = replay.n_rows() as u64;
    Ok(Opened {
        state: new_state(Codec::new(schema), file, good_end, base, n_txns, rows),
        replay,
        lock,
    })
}

fn unreachable_empty(p: &str) -> Result<ovsdb_log::Record, FileStoreError> {
    Err(FileStoreError::Unusable {
        path: p.to_string(),
        message: "the file is empty, so it holds no schema".into(),
    })
}

fn version_or_none(v: &str) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.to_string()
    }
}

fn new_state(codec: Codec, file: File, offset: u64, base: u64, n_txns: u64, rows: u64) -> DbState {
    DbState {
        codec: Arc::new(codec),
        file: Arc::new(file),
        offset,
        base,
        n_txns,
        written: 0,
        rows,
        last_compact: Instant::now(),
        retry_at: None,
        epoch: 0,
        pending: None,
    }
}

impl FileStore {
    /// Opens every database file (creating missing ones from their schemas)
    /// and loads them. See the module documentation.
    pub fn open(
        keys: Keys,
        dbs: Vec<FileDb>,
        options: FileOptions,
    ) -> Result<Arc<FileStore>, FileStoreError> {
        let mut files = Vec::with_capacity(dbs.len());
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut kvs = Vec::new();
        const REV: Revision = 1;
        for db in &dbs {
            let p = db.path.display().to_string();
            let opened = open_db(db)?;
            let schema = opened.state.codec.schema.clone();
            let name = schema.name.clone();
            let key_err = |source| FileStoreError::Key {
                path: p.clone(),
                source,
            };
            keys.db_prefix(&name).map_err(key_err)?;
            if let Some(&i) = by_name.get(&name) {
                let first: &DbFile = &files[i];
                return Err(FileStoreError::Duplicate {
                    db: name,
                    first: first.path_str(),
                    second: p,
                });
            }
            kvs.push(KeyValue {
                key: keys.server_db(&name).map_err(key_err)?,
                value: Bytes::from(schema.to_json().to_string()),
                create_revision: REV,
                mod_revision: REV,
                lease: None,
            });
            for (t, row) in opened.replay.into_rows() {
                let ts = &schema.tables[t];
                kvs.push(KeyValue {
                    key: keys.row(&name, &ts.name, &row.uuid).map_err(key_err)?,
                    value: row.to_store_bytes(ts),
                    create_revision: REV,
                    mod_revision: REV,
                    lease: None,
                });
            }
            by_name.insert(name.clone(), files.len());
            files.push(DbFile {
                name,
                path: db.path.clone(),
                _lock: opened.lock,
                state: Mutex::new(opened.state),
                sync_lock: Mutex::new(()),
                synced: AtomicU64::new(0),
                compacting: AtomicBool::new(false),
                fsyncs: AtomicU64::new(0),
            });
        }
        let mem = MemoryStore::from_snapshot(options.memory.clone(), kvs, REV).map_err(|e| {
            FileStoreError::Other {
                path: String::new(),
                message: e.to_string(),
            }
        })?;
        let writer = Arc::new(Writer {
            keys,
            dbs: files,
            by_name,
            options,
        });
        let w = writer.clone();
        mem.set_commit_hook(Some(Arc::new(move |b: &WatchBatch| w.on_batch(b))));
        Ok(Arc::new(FileStore { mem, writer }))
    }

    /// The schemas the files hold (after any conversion), in the order the
    /// files were given.
    pub fn schemas(&self) -> Vec<Arc<DatabaseSchema>> {
        self.writer
            .dbs
            .iter()
            .map(|d| d.state().codec.schema.clone())
            .collect()
    }

    /// The file of a database.
    pub fn path(&self, db: &str) -> Option<&Path> {
        let i = *self.writer.by_name.get(db)?;
        Some(self.writer.dbs[i].path.as_path())
    }

    /// The size of a database's file, as written.
    pub fn file_size(&self, db: &str) -> Option<u64> {
        let i = *self.writer.by_name.get(db)?;
        Some(self.writer.dbs[i].state().offset)
    }

    /// How many fsyncs durable commits of a database have needed so far
    /// (fewer than durable commits when they were grouped).
    pub fn fsync_count(&self, db: &str) -> Option<u64> {
        let i = *self.writer.by_name.get(db)?;
        Some(self.writer.dbs[i].fsyncs.load(Ordering::Relaxed))
    }

    /// The memory store inside (the replica of every key).
    pub fn memory(&self) -> &Arc<MemoryStore> {
        &self.mem
    }

    /// Compacts a database's file now, in the calling thread (it blocks for
    /// as long as writing the database takes; commits go on meanwhile).
    /// `Ok(false)` if a schema conversion replaced the file meanwhile (which
    /// compacts it too). `Err(Busy)` if a compaction is already running.
    pub fn compact_file(&self, db: &str) -> Result<bool, FileStoreError> {
        let i = *self
            .writer
            .by_name
            .get(db)
            .ok_or_else(|| FileStoreError::UnknownDb(db.to_string()))?;
        let d = &self.writer.dbs[i];
        if d.compacting.swap(true, Ordering::AcqRel) {
            return Err(FileStoreError::Busy(d.path_str()));
        }
        let r = compact(&self.mem, &self.writer, i);
        d.compacting.store(false, Ordering::Release);
        r
    }

    /// fsyncs every file.
    pub fn sync_all(&self) -> Result<(), StorageError> {
        for d in &self.writer.dbs {
            d.sync()?;
        }
        Ok(())
    }

    /// The file databases a commit's writes touch.
    fn touched(&self, writes: &[WriteOp]) -> Vec<usize> {
        let w = &self.writer;
        let mut out: Vec<usize> = Vec::new();
        for op in writes {
            let db = match w.keys.parse(op.key()) {
                Some(ParsedKey::Row { db, .. }) | Some(ParsedKey::ServerDb { db }) => db,
                _ => continue,
            };
            if let Some(&i) = w.by_name.get(db) {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out
    }

    /// Starts a background compaction of database `i` if ovsdb-server's rule
    /// says it is due.
    fn maybe_compact(&self, i: usize) {
        let o = &self.writer.options;
        if !o.auto_compact {
            return;
        }
        let d = &self.writer.dbs[i];
        let due = {
            let st = d.state();
            let now = Instant::now();
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
        };
        if !due || d.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        let mem = self.mem.clone();
        let writer = self.writer.clone();
        let spawned = std::thread::Builder::new()
            .name("oxsdb-compact".into())
            .spawn(move || {
                let d = &writer.dbs[i];
                match compact(&mem, &writer, i) {
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(path = %d.path.display(), error = %e,
                            "file store: compaction failed; retrying in a minute");
                        d.state().retry_at = Some(Instant::now() + Duration::from_secs(60));
                    }
                }
                d.compacting.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "file store: cannot start a compaction thread");
            d.compacting.store(false, Ordering::Release);
        }
    }
}

/// Compacts database `i`'s file (see the module documentation). The caller
/// holds the database's `compacting` flag.
fn compact(mem: &MemoryStore, w: &Writer, i: usize) -> Result<bool, FileStoreError> {
    let d = &w.dbs[i];
    let path = d.path.as_path();
    let (epoch, codec, old_size) = {
        let mut st = d.state();
        if st.pending.is_some() {
            return Err(FileStoreError::Busy(d.path_str()));
        }
        st.pending = Some(Vec::new());
        (st.epoch, st.codec.clone(), st.offset)
    };
    let abandon = |e: FileStoreError| {
        let mut st = d.state();
        if st.epoch == epoch {
            st.pending = None;
        }
        e
    };
    let other = |message: String| FileStoreError::Other {
        path: d.path_str(),
        message,
    };
    let prefix = w.keys.db_prefix(&d.name).map_err(|source| {
        abandon(FileStoreError::Key {
            path: d.path_str(),
            source,
        })
    })?;
    // The memory store's range never waits.
    let (kvs, revision) = match mem.range(&prefix).now_or_never() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(abandon(other(e.to_string()))),
        None => return Err(abandon(other("the memory store did not answer".into()))),
    };
    let rows = kvs.iter().filter_map(|kv| match w.keys.parse(&kv.key) {
        Some(ParsedKey::Row { db, table, uuid }) if db == d.name => codec
            .schema
            .table_index(table)
            .map(|t| (t, uuid, &kv.value[..])),
        _ => None,
    });
    let snapshot = codec
        .snapshot(
            rows,
            Some(ovsdb_txn::COMPACT_COMMENT),
            ovsdb_txn::now_ms(),
            w.options.column_diffs,
        )
        .map_err(|e| abandon(other(e)))?;
    drop(kvs);
    let tmp = tmp_path(path);
    let (file, ends) = write_new_file(&tmp, &[codec.schema.to_json(), snapshot]).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        abandon(io_err(&tmp, "write")(e))
    })?;
    let base = ends[1];
    // Swap, holding the file's lock: commits to this database wait.
    let mut st = d.state();
    if st.epoch != epoch || st.pending.is_none() {
        drop(st);
        let _ = std::fs::remove_file(&tmp);
        return Ok(false);
    }
    let pending = st.pending.take().unwrap_or_default();
    let fail = |e: io::Error, action| {
        let _ = std::fs::remove_file(&tmp);
        io_err(&tmp, action)(e)
    };
    let mut end = base;
    let mut n_txns = 1;
    for (_, bytes) in pending.iter().filter(|(r, _)| *r > revision) {
        file.write_all_at(bytes, end)
            .map_err(|e| fail(e, "write"))?;
        end += bytes.len() as u64;
        n_txns += 1;
    }
    file.sync_data().map_err(|e| fail(e, "fsync"))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| fail(e, "rename the compacted file over the old one"))?;
    if let Err(e) = fsync_dir(path) {
        tracing::warn!(path = %path.display(), error = %e, "file store: fsync of the directory failed");
    }
    st.file = Arc::new(file);
    st.offset = end;
    st.base = base;
    st.n_txns = n_txns;
    st.epoch += 1;
    st.last_compact = Instant::now();
    st.retry_at = None;
    let written = st.written;
    drop(st);
    d.synced.fetch_max(written, Ordering::AcqRel);
    tracing::info!(path = %path.display(), from = old_size, to = end,
        "file store: compacted database file");
    Ok(true)
}

impl Writer {
    /// The commit hook: appends the batch's rows to their files (see the
    /// module documentation). Runs under the memory store's lock.
    fn on_batch(&self, batch: &WatchBatch) -> Result<(), StorageError> {
        let mut per_db: Vec<(usize, DbBatch<'_>)> = Vec::new();
        let mut comment: Option<String> = None;
        for ev in &batch.events {
            let (db, row) = match self.keys.parse(&ev.key) {
                Some(ParsedKey::Row { db, table, uuid }) => (db, Some((table, uuid))),
                Some(ParsedKey::ServerDb { db }) => (db, None),
                Some(ParsedKey::Comment { .. }) => {
                    if let Some(v) = &ev.value {
                        comment = Some(String::from_utf8_lossy(v).into_owned());
                    }
                    continue;
                }
                _ => continue,
            };
            let Some(&i) = self.by_name.get(db) else {
                continue;
            };
            let pos = match per_db.iter().position(|(j, _)| *j == i) {
                Some(p) => p,
                None => {
                    per_db.push((i, DbBatch::default()));
                    per_db.len() - 1
                }
            };
            let entry = &mut per_db[pos].1;
            match row {
                Some((table, uuid)) => entry.rows.push((table, uuid, ev)),
                None => {
                    if ev.kind == EventKind::Put {
                        entry.schema = ev.value.as_ref();
                    }
                }
            }
        }
        if per_db.is_empty() {
            return Ok(());
        }
        per_db.sort_by_key(|(i, _)| *i);
        let date = ovsdb_txn::now_ms();
        // Build every record first (no I/O); conversions are done last.
        let mut appends: Vec<(usize, Vec<u8>, u64, u64)> = Vec::new();
        let mut conversions: Vec<(usize, Arc<DatabaseSchema>, &DbBatch<'_>)> = Vec::new();
        for (i, b) in &per_db {
            let d = &self.dbs[*i];
            let codec = d.state().codec.clone();
            if let Some(new_schema) = b.schema.and_then(|v| self.schema_change(d, &codec, v)) {
                conversions.push((*i, new_schema, b));
                continue;
            }
            let mut builder = codec.builder();
            let (mut inserts, mut deletes) = (0u64, 0u64);
            for (table, uuid, ev) in &b.rows {
                let Some(t) = codec.schema.table_index(table) else {
                    tracing::warn!(db = %d.name, table = %table,
                        "file store: a row of a table the schema does not have is kept in memory only");
                    continue;
                };
                match (&ev.prev_value, &ev.value) {
                    (None, Some(_)) => inserts += 1,
                    (Some(_), None) => deletes += 1,
                    _ => {}
                }
                builder
                    .add(RowEvent {
                        table: t,
                        uuid: *uuid,
                        old: ev.prev_value.as_deref(),
                        new: ev.value.as_deref(),
                    })
                    .map_err(|e| {
                        StorageError::Invalid(format!(
                            "database {}: {e}; the file store can only write rows of the schema",
                            d.name
                        ))
                    })?;
            }
            // Inserts and deletes always make a record, so a batch without
            // one changed no row count.
            if let Some(rec) = builder.finish(comment.as_deref(), date, self.options.column_diffs) {
                appends.push((*i, ovsdb_log::encode(&rec), inserts, deletes));
            }
        }
        let mut done: Vec<Appended> = Vec::new();
        for (i, bytes, inserts, deletes) in appends {
            match self.append(i, batch.revision, bytes, inserts, deletes) {
                Ok(a) => done.push(a),
                Err(e) => {
                    self.undo(&done, batch.revision);
                    return Err(e);
                }
            }
        }
        for (i, schema, b) in conversions {
            if let Err(e) = self.convert(i, schema, b, comment.as_deref()) {
                self.undo(&done, batch.revision);
                return Err(e);
            }
        }
        Ok(())
    }

    /// A put of a database's `_Server` schema: the new schema if it differs.
    fn schema_change(
        &self,
        d: &DbFile,
        codec: &Codec,
        value: &Bytes,
    ) -> Option<Arc<DatabaseSchema>> {
        let parsed = serde_json::from_slice::<Value>(value)
            .map_err(|e| e.to_string())
            .and_then(|j| DatabaseSchema::from_json(&j).map_err(|e| e.to_string()));
        match parsed {
            Ok(s) if s == *codec.schema => None,
            Ok(s) if s.name == d.name => Some(Arc::new(s)),
            Ok(s) => {
                tracing::warn!(db = %d.name, schema = %s.name,
                    "file store: ignoring a schema of another database put for this one");
                None
            }
            Err(e) => {
                tracing::warn!(db = %d.name, error = %e,
                    "file store: ignoring an unparsable schema put for this database");
                None
            }
        }
    }

    /// Appends one record.
    fn append(
        &self,
        i: usize,
        revision: Revision,
        bytes: Vec<u8>,
        inserts: u64,
        deletes: u64,
    ) -> Result<Appended, StorageError> {
        let d = &self.dbs[i];
        let mut st = d.state();
        let offset = st.offset;
        let len = bytes.len() as u64;
        if let Err(e) = st.file.write_all_at(&bytes, offset) {
            // Cut off whatever part was written, as ovsdb-server does.
            let _ = st.file.set_len(offset);
            tracing::error!(path = %d.path.display(), error = %e, "file store: write failed");
            return Err(StorageError::Unavailable(format!(
                "{}: write failed: {e}",
                d.path.display()
            )));
        }
        st.offset += len;
        st.written += len;
        st.n_txns += 1;
        if let Some(p) = &mut st.pending {
            p.push((revision, Arc::new(bytes)));
        }
        let before = st.rows;
        st.rows = (st.rows + inserts).saturating_sub(deletes);
        Ok(Appended {
            db: i,
            offset,
            len,
            rows: before,
        })
    }

    /// Undoes appends of a batch that another file vetoed.
    fn undo(&self, done: &[Appended], revision: Revision) {
        for a in done {
            let d = &self.dbs[a.db];
            let mut st = d.state();
            st.rows = a.rows;
            if st.offset != a.offset + a.len {
                continue;
            }
            if let Err(e) = st.file.set_len(a.offset) {
                tracing::error!(path = %d.path.display(), error = %e,
                    "file store: cannot cut off the record of a vetoed commit");
                continue;
            }
            st.offset = a.offset;
            st.written -= a.len;
            st.n_txns -= 1;
            if let Some(p) = &mut st.pending {
                if p.last().is_some_and(|(r, _)| *r == revision) {
                    p.pop();
                }
            }
        }
    }

    /// Replaces database `i`'s file by one in the new schema holding the
    /// rows of the converting commit, which must rewrite every row.
    fn convert(
        &self,
        i: usize,
        schema: Arc<DatabaseSchema>,
        b: &DbBatch<'_>,
        comment: Option<&str>,
    ) -> Result<(), StorageError> {
        let d = &self.dbs[i];
        let codec = Codec::new(schema.clone());
        let mut st = d.state();
        let (mut inserts, mut deletes, mut puts) = (0u64, 0u64, 0u64);
        let mut rows = Vec::new();
        for (table, uuid, ev) in &b.rows {
            match (&ev.prev_value, &ev.value) {
                (None, Some(_)) => inserts += 1,
                (Some(_), None) => deletes += 1,
                _ => {}
            }
            if let Some(v) = &ev.value {
                puts += 1;
                match codec.schema.table_index(table) {
                    Some(t) => rows.push((t, *uuid, &v[..])),
                    None => {
                        return Err(StorageError::Invalid(format!(
                            "converting database {}: table {table} is not in the new schema",
                            d.name
                        )))
                    }
                }
            }
        }
        let after = (st.rows + inserts).saturating_sub(deletes);
        if puts != after {
            return Err(StorageError::Invalid(format!(
                "converting database {} to schema version {}: the commit must rewrite all \
                 {after} rows, it rewrites {puts}",
                d.name,
                version_or_none(&schema.version)
            )));
        }
        let snapshot = codec
            .snapshot(
                rows,
                Some(comment.unwrap_or("converted by oxsdb")),
                ovsdb_txn::now_ms(),
                self.options.column_diffs,
            )
            .map_err(|e| StorageError::Invalid(format!("converting database {}: {e}", d.name)))?;
        let tmp = convert_tmp_path(&d.path);
        let (file, ends) = replace_file(&d.path, &tmp, &[schema.to_json(), snapshot])
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        st.codec = Arc::new(codec);
        st.file = Arc::new(file);
        st.offset = ends[1];
        st.base = ends[1];
        st.n_txns = 1;
        st.rows = after;
        st.epoch += 1;
        st.pending = None;
        st.last_compact = Instant::now();
        let written = st.written;
        drop(st);
        d.synced.fetch_max(written, Ordering::AcqRel);
        tracing::info!(path = %d.path.display(), db = %d.name, version = %schema.version,
            "file store: database converted to a new schema; file rewritten");
        Ok(())
    }
}

/// Runs blocking work off the async runtime's threads when there is one
/// (a multi-threaded tokio runtime or an actix arbiter alike), else here.
async fn blocking(
    f: impl FnOnce() -> Result<(), StorageError> + Send + 'static,
) -> Result<(), StorageError> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h.spawn_blocking(f).await.unwrap_or_else(|e| {
            Err(StorageError::Other(format!(
                "file store: fsync task failed: {e}"
            )))
        }),
        Err(_) => f(),
    }
}

#[async_trait]
impl Storage for FileStore {
    async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, Revision), StorageError> {
        self.mem.range(prefix).await
    }

    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StorageError> {
        self.mem.get(key).await
    }

    async fn commit(
        &self,
        compares: Vec<Compare>,
        writes: Vec<WriteOp>,
    ) -> Result<CommitResult, StorageError> {
        self.commit_durable(compares, writes, false).await
    }

    async fn commit_durable(
        &self,
        compares: Vec<Compare>,
        writes: Vec<WriteOp>,
        durable: bool,
    ) -> Result<CommitResult, StorageError> {
        let touched = self.touched(&writes);
        let r = self.mem.commit(compares, writes).await?;
        if !r.succeeded || touched.is_empty() {
            return Ok(r);
        }
        if durable || self.writer.options.fsync_every_commit {
            let writer = self.writer.clone();
            let t = touched.clone();
            blocking(move || {
                for i in t {
                    writer.dbs[i].sync()?;
                }
                Ok(())
            })
            .await?;
        }
        for i in touched {
            self.maybe_compact(i);
        }
        Ok(r)
    }

    async fn watch(&self, prefix: &[u8], from: Revision) -> Result<WatchStream, StorageError> {
        self.mem.watch(prefix, from).await
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.mem.current_revision().await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StorageError> {
        self.mem.grant_lease(ttl).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StorageError> {
        self.mem.keep_alive(lease).await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StorageError> {
        self.mem.revoke_lease(lease).await
    }

    /// The memory store's history compaction (watch history), not the
    /// file's: see [`FileStore::compact_file`].
    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.mem.compact(revision).await
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn todo() -> Arc<DatabaseSchema> {
        let text = include_str!("../../examples/todo.ovsschema");
        Arc::new(DatabaseSchema::from_json(&serde_json::from_str(text).unwrap()).unwrap())
    }

    fn row_put(keys: &Keys, name: &str) -> WriteOp {
        let s = todo();
        let ts = s.table("List").unwrap();
        let u = uuid::Uuid::new_v4();
        let row = crate::data::Row::from_store_json(ts, u, &json!({ "name": name })).unwrap();
        WriteOp::put(
            keys.row("todo", "List", &u).unwrap(),
            row.to_store_json(ts).to_string(),
        )
    }

    #[tokio::test]
    async fn a_failed_write_vetoes_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("todo.db");
        let keys = Keys::with_service("t").unwrap();
        let store = FileStore::open(
            keys.clone(),
            vec![FileDb {
                path: path.clone(),
                schema: Some(todo()),
            }],
            FileOptions::default(),
        )
        .unwrap();
        store
            .commit(vec![], vec![row_put(&keys, "a")])
            .await
            .unwrap();
        let size = store.file_size("todo").unwrap();
        let rev = store.current_revision().await.unwrap();
        // Swap in a descriptor that can't be written: every write fails.
        let d = &store.writer.dbs[0];
        let good = std::mem::replace(&mut d.state().file, Arc::new(File::open(&path).unwrap()));
        let e = store
            .commit(vec![], vec![row_put(&keys, "b")])
            .await
            .unwrap_err();
        assert!(
            matches!(&e, StorageError::Unavailable(m) if m.contains("write failed")),
            "{e}"
        );
        assert_eq!(store.current_revision().await.unwrap(), rev);
        assert_eq!(
            store
                .range(&keys.db_prefix("todo").unwrap())
                .await
                .unwrap()
                .0
                .len(),
            1
        );
        // Keys that are not rows are not affected.
        store
            .commit(vec![], vec![WriteOp::put("x", "y")])
            .await
            .unwrap();
        d.state().file = good;
        store
            .commit(vec![], vec![row_put(&keys, "c")])
            .await
            .unwrap();
        assert!(store.file_size("todo").unwrap() > size);
        drop(store);
        let store = FileStore::open(
            keys.clone(),
            vec![FileDb { path, schema: None }],
            FileOptions::default(),
        )
        .unwrap();
        assert_eq!(
            store
                .range(&keys.db_prefix("todo").unwrap())
                .await
                .unwrap()
                .0
                .len(),
            2
        );
    }

    #[test]
    fn durable_commits_waiting_together_share_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::with_service("t").unwrap();
        let store = FileStore::open(
            keys.clone(),
            vec![FileDb {
                path: dir.path().join("todo.db"),
                schema: Some(todo()),
            }],
            FileOptions::default(),
        )
        .unwrap();
        let d = &store.writer.dbs[0];
        // An fsync "in progress": every durable commit writes its record,
        // then waits for it.
        let in_progress = d.sync_lock.lock().unwrap();
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let store = store.clone();
                let keys = keys.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    rt.block_on(store.commit_durable(
                        vec![],
                        vec![row_put(&keys, &format!("r{i}"))],
                        true,
                    ))
                    .unwrap()
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while d.state().n_txns < 6 {
            assert!(Instant::now() < deadline, "commits did not write");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(in_progress);
        for t in threads {
            assert!(t.join().unwrap().succeeded);
        }
        // The first waiter's fsync covered every record.
        assert_eq!(store.fsync_count("todo"), Some(1));
        // A durable commit with nothing new to sync needs none... and one
        // with a new record needs one.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(store.commit_durable(vec![], vec![WriteOp::put("k", "v")], true))
            .unwrap();
        assert_eq!(store.fsync_count("todo"), Some(1));
        rt.block_on(store.commit_durable(vec![], vec![row_put(&keys, "z")], true))
            .unwrap();
        assert_eq!(store.fsync_count("todo"), Some(2));
    }

    #[tokio::test]
    async fn a_multi_database_commit_is_undone_in_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::with_service("t").unwrap();
        let mut j = todo().to_json();
        j["name"] = json!("todo2");
        let todo2 = Arc::new(DatabaseSchema::from_json(&j).unwrap());
        let store = FileStore::open(
            keys.clone(),
            vec![
                FileDb {
                    path: dir.path().join("a.db"),
                    schema: Some(todo()),
                },
                FileDb {
                    path: dir.path().join("b.db"),
                    schema: Some(todo2.clone()),
                },
            ],
            FileOptions::default(),
        )
        .unwrap();
        let size_a = store.file_size("todo").unwrap();
        // The second file fails: the first one's record is cut off again.
        let b = &store.writer.dbs[1];
        b.state().file = Arc::new(File::open(dir.path().join("b.db")).unwrap());
        let ts = todo2.table("List").unwrap();
        let u = uuid::Uuid::new_v4();
        let row = crate::data::Row::from_store_json(ts, u, &json!({"name": "x"})).unwrap();
        let e = store
            .commit(
                vec![],
                vec![
                    row_put(&keys, "a"),
                    WriteOp::put(
                        keys.row("todo2", "List", &u).unwrap(),
                        row.to_store_json(ts).to_string(),
                    ),
                ],
            )
            .await;
        assert!(e.is_err());
        assert_eq!(store.file_size("todo").unwrap(), size_a);
        assert_eq!(
            std::fs::metadata(dir.path().join("a.db")).unwrap().len(),
            size_a
        );
    }
}
