//! [`FileStoreError`]: why a file could not be opened, compacted or
//! converted. Every message names the file and, where there is one, what to do.

use std::io;
use std::path::Path;

/// Why a [`FileLog`](super::FileLog) could not open (or compact) its files.
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

/// A mapper of an `io::Error` into [`FileStoreError::Io`] about `path`.
pub(super) fn io_err<'p>(
    path: &'p Path,
    action: &'static str,
) -> impl FnOnce(io::Error) -> FileStoreError + 'p {
    move |source| FileStoreError::Io {
        path: path.display().to_string(),
        action,
        source,
    }
}

/// A schema version for messages: `(none)` when empty.
pub(super) fn version_or_none(v: &str) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.to_string()
    }
}
