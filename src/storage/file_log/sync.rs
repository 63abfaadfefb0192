//! The state of an open file that the database's thread, sync tickets and
//! the compaction thread share, and group fsync: an fsync covers every
//! record written before it started, so of several tickets waiting at once
//! one fsyncs and the others find their record already covered.

use crate::storage::log::{LogError, SyncTicket};
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// What the file's users share.
pub(super) struct Shared {
    /// The file's path.
    pub path: PathBuf,
    /// The file and where it ends; appends, tickets and compactions take it.
    pub state: Mutex<FileState>,
    /// Serialises fsyncs, so that waiting tickets share them.
    pub sync_lock: Mutex<()>,
    /// `FileState::written` as of the start of the last finished fsync.
    pub synced: AtomicU64,
    /// fsyncs done for tickets.
    pub fsyncs: AtomicU64,
    /// Compactions finished.
    pub compactions: AtomicU64,
    /// Records a compaction appended to its new file (written meanwhile).
    pub carried: AtomicU64,
}

/// The open file.
pub(super) struct FileState {
    /// The file (replaced by compaction and conversion).
    pub file: Arc<File>,
    /// The end of the file: where the next record goes.
    pub offset: u64,
    /// The end of the first transaction record (the snapshot), or of the
    /// schema if there is none: the base of the growth rule.
    pub base: u64,
    /// Transaction records in the file.
    pub n_txns: u64,
    /// Bytes appended since opening, across file replacements: the measure
    /// of what an fsync covers.
    pub written: u64,
    /// Incremented whenever the file is replaced: a compaction that started
    /// before is stale.
    pub epoch: u64,
    /// While a compaction runs: every record appended meanwhile.
    pub pending: Option<Vec<Arc<[u8]>>>,
    /// When the file was last compacted (or opened).
    pub last_compact: Instant,
    /// Don't try to compact before this (after a failure).
    pub retry_at: Option<Instant>,
}

impl FileState {
    /// The state of a file just opened, ending at `offset`.
    pub fn new(file: File, offset: u64, base: u64, n_txns: u64) -> FileState {
        FileState {
            file: Arc::new(file),
            offset,
            base,
            n_txns,
            written: 0,
            epoch: 0,
            pending: None,
            last_compact: Instant::now(),
            retry_at: None,
        }
    }
}

impl Shared {
    /// Shared state around an opened file.
    pub fn new(path: PathBuf, state: FileState) -> Shared {
        Shared {
            path,
            state: Mutex::new(state),
            sync_lock: Mutex::new(()),
            synced: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            carried: AtomicU64::new(0),
        }
    }

    /// The state, even if a thread panicked holding it (it is consistent
    /// between statements).
    pub fn state(&self) -> MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the first `target` bytes ever written durable, sharing the
    /// fsync with concurrent callers.
    pub fn sync(&self, target: u64) -> Result<(), LogError> {
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
            tracing::error!(path = %self.path.display(), error = %e, "file log: fsync failed");
            LogError(format!(
                "{}: fsync failed ({e}); the transaction is written but may not survive a \
                 power loss: check the disk",
                self.path.display()
            ))
        })?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.synced.fetch_max(written, Ordering::AcqRel);
        Ok(())
    }

    /// Everything written up to now is durable (a new file was fsynced).
    pub fn mark_synced(&self, written: u64) {
        self.synced.fetch_max(written, Ordering::AcqRel);
    }

    /// A ticket that makes the first `target` bytes ever written durable.
    pub fn ticket(self: &Arc<Self>, target: u64) -> SyncTicket {
        let shared = self.clone();
        Box::new(move || shared.sync(target))
    }
}
