//! Opening a database file (or creating it from its schema, like
//! `ovsdb-tool create`) and reading it into a [`Database`].
//!
//! The first record is the schema, every later one a transaction, replayed
//! as ovsdb-server replays them (`ovsdb_txn::Replay`). Damage (ovsdb(7)):
//! records are read until the end or the first bad one (truncated, wrong
//! length or SHA-1, not JSON, or a transaction that does not apply, as
//! ovsdb-server judges it); what was read is served, what follows is logged
//! and cut off. A file whose first record (the schema) is bad is refused.

use super::error::{io_err, version_or_none, FileStoreError};
use super::options::FileDb;
use super::replace::{convert_tmp_path, replace_file, tmp_path};
use super::sync::FileState;
use crate::db::changes::{ChangeSet, RowChange, TableChanges};
use crate::db::Database;
use crate::schema::DatabaseSchema;
use crate::storage::file_lock::FileLock;
use crate::storage::ovsdb_log::{self, LogReader, ReadError};
use crate::storage::ovsdb_txn::Replay;
use std::fs::OpenOptions;
use std::io::{self, BufReader};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// An opened file.
pub(super) struct Opened {
    pub state: FileState,
    pub schema: Arc<DatabaseSchema>,
    pub db: Database,
    pub lock: FileLock,
}

/// Opens (or creates) one database file.
pub(super) fn open_db(db: &FileDb) -> Result<Opened, FileStoreError> {
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
                "file log: removing the leftover of an interrupted compaction or conversion");
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
        let record = ovsdb_log::encode(&schema.to_json());
        let (file, ends) = replace_file(path, &tmp_path(path), &[&record])?;
        tracing::info!(path = %p, db = %schema.name, "file log: created database file");
        return Ok(Opened {
            state: FileState::new(file, ends[0], ends[0], 0),
            schema: schema.clone(),
            db: Database::new(schema.clone()),
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
        Ok(None) => {
            return Err(FileStoreError::Unusable {
                path: p,
                message: "the file is empty, so it holds no schema".into(),
            })
        }
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
                "file log: the schema given differs from the file's although both have version {}; \
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
            "file log: {p}: {why}; serving the {n_txns} transactions before it and dropping the \
             {} bytes from offset {offset} on (truncating the file there, as ovsdb-server does)",
            len.saturating_sub(offset)
        );
        file.set_len(offset)
            .map_err(io_err(path, "truncate the damaged end of"))?;
        file.sync_all().map_err(io_err(path, "fsync"))?;
        good_end = offset;
    }
    tracing::info!(path = %p, db = %schema.name, transactions = n_txns, rows = replay.n_rows(),
        "file log: loaded database file");
    let db = load(schema.clone(), replay);
    Ok(Opened {
        state: FileState::new(file, good_end, base, n_txns),
        schema,
        db,
        lock,
    })
}

/// The replayed rows as the engine's database (indexes and references
/// built by applying them as one insert-only change set).
fn load(schema: Arc<DatabaseSchema>, replay: Replay) -> Database {
    let mut tables: Vec<Vec<RowChange>> = vec![Vec::new(); schema.tables.len()];
    for (t, row) in replay.into_rows() {
        if let Some(rows) = tables.get_mut(t) {
            rows.push(RowChange {
                uuid: row.uuid,
                old: None,
                new: Some(Arc::new(row)),
                changed: Vec::new(),
            });
        }
    }
    let cs = ChangeSet {
        tables: tables
            .into_iter()
            .enumerate()
            .filter(|(_, rows)| !rows.is_empty())
            .map(|(table, rows)| TableChanges { table, rows })
            .collect(),
    };
    let mut db = Database::new(schema);
    db.apply(&cs);
    db
}
