//! Local log stores (DESIGN.md, Storage): this process is the only writer,
//! so the Database actor's in-memory database is the authority and the store
//! is only a log of committed change sets.
//!
//! A commit on a local store is: execute, commit-time checks, apply the
//! change set in place, [`LogStore::append`] one record, notify monitors,
//! reply. There is no key-value encoding, no watch and no revision history
//! in the store (`monitor_cond_since` history lives in `replica::history`).
//!
//! Durability: `append` returns once the record is written (in the page
//! cache for the file store, so a killed process loses nothing that was
//! answered). When the commit asked for it (`"durable": true`) or the store
//! syncs every commit, `append` also returns a [`SyncTicket`]: blocking work
//! (an fsync) that the caller runs off the database's thread; the commit and
//! every later one are answered only after it finished. Tickets share
//! fsyncs: one that finds its record already covered by a finished fsync
//! returns at once (group commit).

use crate::db::changes::ChangeSet;
use crate::db::Database;

/// Why a log store could not write. The message names the file and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LogError(pub String);

/// Blocking work that makes appended records durable; run it off the
/// database's thread (`spawn_blocking`).
pub type SyncTicket = Box<dyn FnOnce() -> Result<(), LogError> + Send + 'static>;

/// A log of one database's committed change sets.
pub trait LogStore: Send + 'static {
    /// Writes the record of one committed transaction: `changes` (with the
    /// transaction's `comment`) took the database to `db`. On error nothing
    /// was written (a partial record is cut off again) and the caller undoes
    /// the change set. With `durable` (or a store that syncs every commit)
    /// the returned ticket makes the record durable.
    fn append(
        &mut self,
        db: &Database,
        changes: &ChangeSet,
        comment: Option<&str>,
        durable: bool,
    ) -> Result<Option<SyncTicket>, LogError>;

    /// Replaces the log by `db`, which has a new schema (`convert`): on
    /// success the log holds exactly the new schema and `db`'s rows.
    fn convert(&mut self, db: &Database) -> Result<(), LogError>;

    /// Compacts the log now if it can (`ovsdb-server/compact`): `Ok(false)`
    /// if the store has nothing to compact (memory).
    fn compact(&mut self, db: &Database) -> Result<bool, LogError>;

    /// Short name for logs and errors (`memory`, `file`).
    fn kind(&self) -> &'static str;
}

/// The memory store: a log that keeps nothing (tests, scratch servers).
#[derive(Debug, Default)]
pub struct MemoryLog;

impl LogStore for MemoryLog {
    fn append(
        &mut self,
        _: &Database,
        _: &ChangeSet,
        _: Option<&str>,
        _: bool,
    ) -> Result<Option<SyncTicket>, LogError> {
        Ok(None)
    }

    fn convert(&mut self, _: &Database) -> Result<(), LogError> {
        Ok(())
    }

    fn compact(&mut self, _: &Database) -> Result<bool, LogError> {
        Ok(false)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
