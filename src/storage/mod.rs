//! Storage (DESIGN.md): two kinds of store, because they have two kinds of
//! authority.
//! - Local log stores ([`log::LogStore`]): this process is the only writer;
//!   the Database actor's in-memory database is the authority and the store
//!   a log of committed change sets: [`log::MemoryLog`] (keeps nothing) and
//!   [`file_log::FileLog`] (OVSDB's standalone file format: [`ovsdb_log`]
//!   frames its records, [`ovsdb_txn`] reads them).
//! - The shared store ([`Storage`]): a revisioned key-value store shaped like
//!   etcd v3's API, which many oxsdb processes write: `etcd` one to one onto
//!   etcd v3 through `etcd-client`, and [`memory`], in process, to test the
//!   shared-store logic without etcd. Both pass the one conformance suite
//!   (`tests/support/conformance.rs`).
//!
//! The model, which is etcd's:
//! - keys and values are bytes; the store has one global revision that every
//!   commit which changes something increments by exactly one;
//! - [`Storage::commit`] is a transaction: compares, then writes, atomically
//!   at one new revision — or nothing at all;
//! - [`Storage::watch`] streams every later commit touching a prefix, one
//!   [`WatchBatch`] per revision, each event with the previous value;
//! - leases: a key written with a lease is deleted when the lease is revoked
//!   or expires (used by locks, so that a dead server's locks are released).
//!
//! [`keys`] is the key layout of OVSDB data in the store.
//!
//! # Behaviour every backend shares (and the conformance suite checks)
//! - Revisions start above 0 (0 means "no revision / key absent") and a
//!   commit whose writes change nothing (no writes, or only deletes of absent
//!   keys) creates no revision and no watch batch.
//! - A commit may not name the same key twice in its writes, nor use an
//!   empty key ([`StorageError::Invalid`]). A put with a lease that does not
//!   exist fails the commit with [`StorageError::LeaseNotFound`] if the
//!   compares hold (etcd checks only the branch it takes).
//! - [`Compare::ModRevision`] with revision 0 holds exactly when the key is
//!   absent; [`Compare::Value`] never holds for an absent key.
//! - Watching from a revision older than the retained history fails with
//!   [`StorageError::Compacted`], either from [`Storage::watch`] itself or as
//!   the first item of its stream (etcd reports it on the stream).
//! - A watch stream that yields an `Err` ends there. Any error is recovered
//!   from the same way: watch again from the last revision received + 1; if
//!   that fails with `Compacted`, re-read everything with [`Storage::range`]
//!   and watch from its revision + 1.

pub mod db_record;
pub mod etcd;
pub mod file_lock;
pub mod file_log;
pub mod keys;
pub mod log;
pub mod memory;
pub mod ovsdb_log;
pub mod ovsdb_txn;
mod sha1;

pub use file_log::{FileDb, FileLog, FileOptions, FileStoreError};
pub use keys::{KeyError, Keys, ParsedKey};
pub use memory::{MemoryConfig, MemoryStore};

use async_trait::async_trait;
use bytes::Bytes;
use std::time::Duration;

/// A store revision. 0 means "no revision": the key is absent.
pub type Revision = i64;

/// A lease: keys written with it are deleted when it is revoked or expires.
pub type LeaseId = i64;

/// A key with its value and metadata (etcd's `mvccpb.KeyValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
    /// The revision of the commit that created the key (since it was last
    /// absent).
    pub create_revision: Revision,
    /// The revision of the commit that last wrote the key.
    pub mod_revision: Revision,
    /// The lease the key is bound to, if any.
    pub lease: Option<LeaseId>,
}

/// A condition of a commit (etcd's `Compare`, the targets oxsdb needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// `mod_revision(key) == revision`; revision 0 means "the key is absent".
    ModRevision {
        /// The key.
        key: Bytes,
        /// The expected mod_revision, 0 for "absent".
        revision: Revision,
    },
    /// The key exists and its value equals `value` (never holds for an
    /// absent key, as in etcd).
    Value {
        /// The key.
        key: Bytes,
        /// The expected value.
        value: Bytes,
    },
}

impl Compare {
    /// `mod_revision(key) == revision`.
    pub fn mod_revision(key: impl Into<Bytes>, revision: Revision) -> Compare {
        Compare::ModRevision {
            key: key.into(),
            revision,
        }
    }

    /// The key is absent (`mod_revision(key) == 0`).
    pub fn absent(key: impl Into<Bytes>) -> Compare {
        Compare::mod_revision(key, 0)
    }

    /// The key exists with this value.
    pub fn value(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Compare {
        Compare::Value {
            key: key.into(),
            value: value.into(),
        }
    }

    /// The key the compare is about.
    pub fn key(&self) -> &Bytes {
        match self {
            Compare::ModRevision { key, .. } | Compare::Value { key, .. } => key,
        }
    }
}

/// A write of a commit (etcd's `RequestOp` put/delete of one key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Set the key's value, bound to `lease` (a put without a lease detaches
    /// the key from any lease it had, as in etcd).
    Put {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// The lease to bind the key to.
        lease: Option<LeaseId>,
    },
    /// Delete the key (a no-op if it is absent).
    Delete {
        /// The key.
        key: Bytes,
    },
}

impl WriteOp {
    /// A put without a lease.
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>) -> WriteOp {
        WriteOp::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        }
    }

    /// A put bound to a lease.
    pub fn put_with_lease(
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        lease: LeaseId,
    ) -> WriteOp {
        WriteOp::Put {
            key: key.into(),
            value: value.into(),
            lease: Some(lease),
        }
    }

    /// A delete.
    pub fn delete(key: impl Into<Bytes>) -> WriteOp {
        WriteOp::Delete { key: key.into() }
    }

    /// The key written.
    pub fn key(&self) -> &Bytes {
        match self {
            WriteOp::Put { key, .. } | WriteOp::Delete { key } => key,
        }
    }
}

/// The outcome of [`Storage::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitResult {
    /// Whether every compare held (and so the writes were applied).
    pub succeeded: bool,
    /// If succeeded: the commit's revision (the store's current revision if
    /// the writes changed nothing). Otherwise: the store's current revision.
    pub revision: Revision,
}

/// What an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The key was created or overwritten.
    Put,
    /// The key was deleted.
    Delete,
}

/// One key changed by one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key.
    pub key: Bytes,
    /// The new value; `None` for a delete.
    pub value: Option<Bytes>,
    /// The value before the commit; `None` if the key was absent.
    pub prev_value: Option<Bytes>,
    /// The commit's revision.
    pub mod_revision: Revision,
}

/// Everything one commit did under a watched prefix, in the commit's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchBatch {
    /// The commit's revision.
    pub revision: Revision,
    /// Its events under the watched prefix (never empty).
    pub events: Vec<Event>,
}

/// The stream of [`Storage::watch`]. It ends after its first `Err`.
pub type WatchStream = futures_util::stream::BoxStream<'static, Result<WatchBatch, StorageError>>;

/// Errors of every storage backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The backend can't be reached now: retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The requested revision is older than the retained history;
    /// `compacted` is the oldest revision that can still be watched from.
    #[error("required revision has been compacted (the oldest available is {compacted})")]
    Compacted {
        /// The oldest revision still available.
        compacted: Revision,
    },
    /// The request is over the backend's limits; the message names the limit
    /// (and, for etcd, the server flag that raises it).
    #[error("storage request too large: {0}")]
    TooLarge(String),
    /// The lease does not exist (never granted, revoked, or expired).
    #[error("lease {0} not found")]
    LeaseNotFound(LeaseId),
    /// The request is malformed (empty or duplicate key, future revision,
    /// zero TTL, ...): a bug of the caller, retrying won't help.
    #[error("invalid storage request: {0}")]
    Invalid(String),
    /// The stored data is damaged.
    #[error("storage corrupt: {0}")]
    Corrupt(String),
    /// Anything else.
    #[error("storage error: {0}")]
    Other(String),
}

impl StorageError {
    /// Whether the same request may succeed later (the backend was down).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }

    /// A short name of the kind of error (a metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            StorageError::Unavailable(_) => "unavailable",
            StorageError::Compacted { .. } => "compacted",
            StorageError::TooLarge(_) => "too large",
            StorageError::LeaseNotFound(_) => "lease not found",
            StorageError::Invalid(_) => "invalid",
            StorageError::Corrupt(_) => "corrupt",
            StorageError::Other(_) => "other",
        }
    }
}

/// A revisioned key-value store with compare-and-commit, watches and leases,
/// shaped like etcd v3. Object safe: used as `Arc<dyn Storage>`.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Every key under `prefix` (all keys if empty), sorted by key, and the
    /// revision of the snapshot they were read at.
    async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, Revision), StorageError>;

    /// Every key under `prefix` as it was at the past `revision`, sorted by
    /// key: what a client that last saw `revision` missed is the difference
    /// with now. `Err(Compacted)` if the store no longer keeps that revision,
    /// or (the default) keeps no past versions at all.
    async fn range_at(
        &self,
        prefix: &[u8],
        revision: Revision,
    ) -> Result<Vec<KeyValue>, StorageError> {
        let _ = (prefix, revision);
        Err(StorageError::Compacted {
            compacted: self.current_revision().await?,
        })
    }

    /// One key.
    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StorageError>;

    /// Atomic: all compares hold and every write lands at ONE new revision,
    /// or nothing happens (`succeeded: false`). A commit whose writes change
    /// nothing (none, or only deletes of absent keys) creates no revision.
    /// Writes may not name a key twice.
    async fn commit(
        &self,
        compares: Vec<Compare>,
        writes: Vec<WriteOp>,
    ) -> Result<CommitResult, StorageError>;

    /// [`Storage::commit`], and with `durable` the commit is also on stable
    /// storage (fsynced) before this returns: for the `commit` operation's
    /// `"durable": true`. Backends that are always durable (etcd) or never
    /// (memory) just commit.
    async fn commit_durable(
        &self,
        compares: Vec<Compare>,
        writes: Vec<WriteOp>,
        durable: bool,
    ) -> Result<CommitResult, StorageError> {
        let _ = durable;
        self.commit(compares, writes).await
    }

    /// Every commit touching `prefix` (a plain byte prefix: watch `a/`, not
    /// `a`, to exclude `ab/`) with revision >= `from`, one batch per revision,
    /// events with previous values. `from = 0`: only commits after this call
    /// returns (etcd's "now"). Fails with `Compacted` (here or as the stream's
    /// first item) if `from` is older than the retained history.
    async fn watch(&self, prefix: &[u8], from: Revision) -> Result<WatchStream, StorageError>;

    /// As [`Storage::watch`], but events may lack their previous values
    /// (`prev_value` is `None`): for watchers that keep the state themselves.
    /// etcd then reads no older revision per event, which is most of a
    /// watch's cost to it.
    async fn watch_without_prev(
        &self,
        prefix: &[u8],
        from: Revision,
    ) -> Result<WatchStream, StorageError> {
        self.watch(prefix, from).await
    }

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision, StorageError>;

    /// A new lease that expires `ttl` after its grant or its last keep-alive.
    /// Backends may round the TTL up (etcd: whole seconds, at least its
    /// minimum TTL, about 2 s with default settings).
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StorageError>;

    /// Restarts the lease's TTL. `Err(LeaseNotFound)` once it has expired.
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StorageError>;

    /// Ends the lease and deletes its keys in one commit (watchers see the
    /// deletes). `Err(LeaseNotFound)` if it does not exist.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StorageError>;

    /// Drops history before `revision`: watching from an earlier revision then
    /// fails with `Compacted`. `Err(Compacted)` if already compacted at or
    /// past `revision` (callers may ignore that), `Err(Invalid)` for a future
    /// revision.
    async fn compact(&self, revision: Revision) -> Result<(), StorageError>;

    /// Whether the backend answers, as it changes (`Unavailable` and
    /// deadline errors mean down). `None`: always connected (embedded stores).
    fn liveness(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        None
    }

    /// Why the backend was last found unreachable, while it is (`None`: it
    /// answers, or the backend does not say).
    fn unreachable_reason(&self) -> Option<String> {
        None
    }

    /// The members of the cluster behind the store and their health
    /// (`cluster/status`); `Ok(None)` for a store that is no cluster.
    async fn members(&self) -> Result<Option<ClusterView>, StorageError> {
        Ok(None)
    }

    /// Short name for logs (`memory`, `file`, `etcd`).
    fn kind(&self) -> &'static str;
}

/// The cluster behind a shared store, as one member sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// The cluster's id.
    pub cluster_id: u64,
    /// The leader's member id (0: none known).
    pub leader: u64,
    /// The current raft term.
    pub term: u64,
    /// Every member.
    pub members: Vec<MemberView>,
}

/// One member of a store's cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberView {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Where clients reach it.
    pub client_urls: Vec<String>,
    /// Where its peers reach it.
    pub peer_urls: Vec<String>,
    /// Whether it answered a status request (and reported no errors).
    pub healthy: bool,
    /// Why not, if it is not.
    pub problem: Option<String>,
    /// Its raft index, if it answered.
    pub raft_index: Option<u64>,
    /// Whether it is a learner (not voting).
    pub learner: bool,
}
