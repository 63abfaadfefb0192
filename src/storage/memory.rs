//! [`MemoryStore`]: the in-process backend. Nothing is persisted.
//!
//! A `BTreeMap` of keys, a revision counter, a bounded history of batches
//! and per-watcher bounded channels, all behind one mutex that is never held
//! across an `.await`. It needs no async runtime: it works from any tokio
//! runtime, inside an actix System, or from plain threads.
//!
//! - History: the batch of every revision is kept until it is older than the
//!   last [`MemoryConfig::history_revisions`] revisions or the history holds
//!   more than [`MemoryConfig::history_bytes`] (automatic compaction), or until
//!   [`Storage::compact`].
//! - Watchers: a watch first replays the history from its start revision,
//!   then registers for live batches under the same lock as commits, so there
//!   is no gap and no duplicate. A slow watcher never blocks a commit: when
//!   its buffer of [`MemoryConfig::watch_buffer`] batches is full, the store
//!   drops its live registration and the stream, once it has drained its
//!   buffer, catches up from the history by itself, like etcd's unsynced
//!   watchers. Only if the history it needs has been compacted meanwhile does
//!   the stream end with `Err(Compacted)`; the caller then re-reads with
//!   `range` and watches again. Memory is bounded by the buffer and the
//!   history, whatever the watcher's speed.
//! - Leases expire on a background thread (started by the first
//!   [`Storage::grant_lease`], so it needs no runtime) that sleeps until the
//!   next deadline; an expiry is one commit deleting the lease's keys. Any
//!   operation that finds an expired lease also expires it first.
//! - A dropped store ends its watch streams with `Err(Unavailable)`.

use super::{
    CommitResult, Compare, Event, EventKind, KeyValue, LeaseId, Revision, Storage, StorageError,
    WatchBatch, WatchStream, WriteOp,
};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Called with every batch before it becomes visible; an `Err` aborts it.
pub type CommitHook = Arc<dyn Fn(&WatchBatch) -> Result<(), StorageError> + Send + Sync>;

/// Settings of a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// How many revisions of history to keep for watches from the past.
    pub history_revisions: usize,
    /// At most this many bytes of keys and values in the history (the newest
    /// revision is kept whatever its size).
    pub history_bytes: usize,
    /// How many batches a watcher may have unread before it is switched to
    /// catching up from the history.
    pub watch_buffer: usize,
    /// Imitates etcd's `--max-txn-ops`: at most this many compares, and this
    /// many writes, per commit.
    pub max_txn_ops: Option<usize>,
    /// Imitates etcd's `--max-request-bytes`: at most this many bytes of keys
    /// and values per commit.
    pub max_request_bytes: Option<usize>,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            history_revisions: 10_000,
            history_bytes: 256 << 20,
            watch_buffer: 1024,
            max_txn_ops: None,
            max_request_bytes: None,
        }
    }
}

/// The in-memory store. See the module documentation.
pub struct MemoryStore {
    shared: Arc<Shared>,
    reaper: OnceLock<Arc<Reaper>>,
}

struct Shared {
    config: MemoryConfig,
    inner: Mutex<Inner>,
}

struct Entry {
    value: Bytes,
    create_revision: Revision,
    mod_revision: Revision,
    lease: Option<LeaseId>,
}

struct Lease {
    ttl: Duration,
    deadline: Instant,
    keys: BTreeSet<Bytes>,
}

struct Watcher {
    prefix: Bytes,
    tx: mpsc::Sender<WatchBatch>,
}

struct Inner {
    kv: BTreeMap<Bytes, Entry>,
    revision: Revision,
    /// The oldest revision that can still be watched from.
    compacted: Revision,
    /// One batch per revision, oldest first, every key.
    history: VecDeque<WatchBatch>,
    history_bytes: usize,
    watchers: HashMap<u64, Watcher>,
    next_watcher: u64,
    leases: HashMap<LeaseId, Lease>,
    next_lease: LeaseId,
    hook: Option<CommitHook>,
}

/// One key's change: the new value and lease, or `None` for a delete.
type Change = (Bytes, Option<(Bytes, Option<LeaseId>)>);

fn batch_bytes(b: &WatchBatch) -> usize {
    b.events
        .iter()
        .map(|e| {
            e.key.len()
                + e.value.as_ref().map_or(0, Bytes::len)
                + e.prev_value.as_ref().map_or(0, Bytes::len)
        })
        .sum()
}

fn filter_batch(batch: &WatchBatch, prefix: &[u8]) -> Option<WatchBatch> {
    let events: Vec<Event> = batch
        .events
        .iter()
        .filter(|e| e.key.starts_with(prefix))
        .cloned()
        .collect();
    (!events.is_empty()).then(|| WatchBatch {
        revision: batch.revision,
        events,
    })
}

impl Inner {
    fn new() -> Inner {
        Inner {
            kv: BTreeMap::new(),
            // Like a fresh etcd: revision 1, so that 0 always means "none".
            revision: 1,
            compacted: 0,
            history: VecDeque::new(),
            history_bytes: 0,
            watchers: HashMap::new(),
            next_watcher: 0,
            leases: HashMap::new(),
            next_lease: 1,
            hook: None,
        }
    }

    fn holds(&self, c: &Compare) -> bool {
        match c {
            Compare::ModRevision { key, revision } => {
                self.kv.get(key).map_or(0, |e| e.mod_revision) == *revision
            }
            Compare::Value { key, value } => self.kv.get(key).is_some_and(|e| e.value == *value),
        }
    }

    /// Applies `changes` (distinct keys) at the next revision: returns the
    /// new revision, or `None` if nothing changed (only deletes of absent
    /// keys). The hook may veto it.
    fn apply(
        &mut self,
        config: &MemoryConfig,
        changes: Vec<Change>,
    ) -> Result<Option<Revision>, StorageError> {
        let rev = self.revision + 1;
        let mut events = Vec::with_capacity(changes.len());
        for (key, new) in &changes {
            let prev_value = self.kv.get(key).map(|e| e.value.clone());
            match new {
                Some((value, _)) => events.push(Event {
                    kind: EventKind::Put,
                    key: key.clone(),
                    value: Some(value.clone()),
                    prev_value,
                    mod_revision: rev,
                }),
                None if prev_value.is_some() => events.push(Event {
                    kind: EventKind::Delete,
                    key: key.clone(),
                    value: None,
                    prev_value,
                    mod_revision: rev,
                }),
                None => {}
            }
        }
        if events.is_empty() {
            return Ok(None);
        }
        let batch = WatchBatch {
            revision: rev,
            events,
        };
        if let Some(hook) = &self.hook {
            hook(&batch)?;
        }
        for (key, new) in changes {
            let old = match new {
                Some((value, lease)) => {
                    let create_revision = self.kv.get(&key).map_or(rev, |e| e.create_revision);
                    if let Some(l) = lease {
                        if let Some(l) = self.leases.get_mut(&l) {
                            l.keys.insert(key.clone());
                        }
                    }
                    let old = self.kv.insert(
                        key.clone(),
                        Entry {
                            value,
                            create_revision,
                            mod_revision: rev,
                            lease,
                        },
                    );
                    old.filter(|o| o.lease != lease)
                }
                None => self.kv.remove(&key),
            };
            if let Some(old_lease) = old.and_then(|o| o.lease) {
                if let Some(l) = self.leases.get_mut(&old_lease) {
                    l.keys.remove(&key);
                }
            }
        }
        self.revision = rev;
        self.publish(config, batch);
        Ok(Some(rev))
    }

    /// Adds a batch to the history and sends it to the live watchers.
    fn publish(&mut self, config: &MemoryConfig, batch: WatchBatch) {
        self.watchers.retain(|id, w| {
            if w.tx.is_closed() {
                return false;
            }
            let Some(b) = filter_batch(&batch, &w.prefix) else {
                return true;
            };
            match w.tx.try_send(b) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!(
                        watcher = id,
                        revision = batch.revision,
                        "memory store: slow watcher switched to catching up from history"
                    );
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        self.history_bytes += batch_bytes(&batch);
        self.history.push_back(batch);
        while self.history.len() > config.history_revisions.max(1)
            || (self.history_bytes > config.history_bytes && self.history.len() > 1)
        {
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(b) = self.history.pop_front() {
            self.history_bytes -= batch_bytes(&b);
            self.compacted = self.compacted.max(b.revision + 1);
        }
    }

    /// Ends one lease: one commit deleting its keys.
    fn end_lease(&mut self, config: &MemoryConfig, id: LeaseId) -> Result<(), StorageError> {
        let Some(lease) = self.leases.remove(&id) else {
            return Err(StorageError::LeaseNotFound(id));
        };
        let changes: Vec<Change> = lease.keys.iter().map(|k| (k.clone(), None)).collect();
        match self.apply(config, changes) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.leases.insert(id, lease);
                Err(e)
            }
        }
    }

    /// Expires every lease whose deadline has passed.
    fn expire_due(&mut self, config: &MemoryConfig, now: Instant) {
        let due: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            match self.end_lease(config, id) {
                Ok(()) => tracing::debug!(lease = id, "memory store: lease expired"),
                Err(e) => {
                    tracing::warn!(lease = id, error = %e, "memory store: lease expiry failed, retrying in 1 s");
                    if let Some(l) = self.leases.get_mut(&id) {
                        l.deadline = now + Duration::from_secs(1);
                    }
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.leases.values().map(|l| l.deadline).min()
    }

    fn commit(
        &mut self,
        config: &MemoryConfig,
        compares: Vec<Compare>,
        writes: Vec<WriteOp>,
    ) -> Result<CommitResult, StorageError> {
        if let Some(max) = config.max_txn_ops {
            let n = compares.len().max(writes.len());
            if n > max {
                return Err(StorageError::TooLarge(format!(
                    "{n} operations in one commit, over the limit of {max} (etcd: --max-txn-ops)"
                )));
            }
        }
        if let Some(max) = config.max_request_bytes {
            let n: usize = compares
                .iter()
                .map(|c| match c {
                    Compare::ModRevision { key, .. } => key.len() + 8,
                    Compare::Value { key, value } => key.len() + value.len(),
                })
                .chain(writes.iter().map(|w| match w {
                    WriteOp::Put { key, value, .. } => key.len() + value.len() + 8,
                    WriteOp::Delete { key } => key.len(),
                }))
                .sum();
            if n > max {
                return Err(StorageError::TooLarge(format!(
                    "a commit of about {n} bytes, over the limit of {max} bytes (etcd: --max-request-bytes)"
                )));
            }
        }
        let mut seen = HashSet::with_capacity(writes.len());
        for w in &writes {
            let key = w.key();
            if key.is_empty() {
                return Err(StorageError::Invalid("empty key".into()));
            }
            if !seen.insert(key.clone()) {
                return Err(StorageError::Invalid(format!(
                    "duplicate key in one commit: {:?}",
                    String::from_utf8_lossy(key)
                )));
            }
        }
        if compares.iter().any(|c| c.key().is_empty()) {
            return Err(StorageError::Invalid("empty key in a compare".into()));
        }
        self.expire_due(config, Instant::now());
        if !compares.iter().all(|c| self.holds(c)) {
            return Ok(CommitResult {
                succeeded: false,
                revision: self.revision,
            });
        }
        // After the compares, as etcd checks only the branch it takes.
        for w in &writes {
            if let WriteOp::Put { lease: Some(l), .. } = w {
                if !self.leases.contains_key(l) {
                    return Err(StorageError::LeaseNotFound(*l));
                }
            }
        }
        let changes = writes
            .into_iter()
            .map(|w| match w {
                WriteOp::Put { key, value, lease } => (key, Some((value, lease))),
                WriteOp::Delete { key } => (key, None),
            })
            .collect();
        let revision = self.apply(config, changes)?.unwrap_or(self.revision);
        Ok(CommitResult {
            succeeded: true,
            revision,
        })
    }

    fn register(&mut self, prefix: Bytes, capacity: usize) -> mpsc::Receiver<WatchBatch> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let id = self.next_watcher;
        self.next_watcher += 1;
        self.watchers.insert(id, Watcher { prefix, tx });
        rx
    }
}

/// Wakes the lease thread; tells it to stop when the store is dropped.
struct Reaper {
    state: Mutex<ReaperState>,
    cv: Condvar,
}

struct ReaperState {
    shutdown: bool,
    generation: u64,
}

impl Reaper {
    fn state(&self) -> MutexGuard<'_, ReaperState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        self.state().generation += 1;
        self.cv.notify_all();
    }

    fn run(self: Arc<Reaper>, shared: Weak<Shared>) {
        loop {
            let generation = {
                let st = self.state();
                if st.shutdown {
                    return;
                }
                st.generation
            };
            let next = {
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let mut inner = shared.lock();
                inner.expire_due(&shared.config, Instant::now());
                inner.next_deadline()
            };
            let st = self.state();
            if st.shutdown {
                return;
            }
            if st.generation != generation {
                continue;
            }
            // Wake up at least once a minute to notice a dropped store.
            let wait = next.map_or(Duration::from_secs(60), |d| {
                d.saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(60))
            });
            drop(self.cv.wait_timeout(st, wait));
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MemoryStore {
    /// An empty store with the default settings.
    pub fn new() -> Arc<MemoryStore> {
        MemoryStore::with_config(MemoryConfig::default())
    }

    /// An empty store.
    pub fn with_config(config: MemoryConfig) -> Arc<MemoryStore> {
        Arc::new(MemoryStore {
            shared: Arc::new(Shared {
                config,
                inner: Mutex::new(Inner::new()),
            }),
            reaper: OnceLock::new(),
        })
    }

    /// A store holding `kvs` at `revision` (e.g. loaded from a file), with no
    /// history: watching from `revision` or earlier fails with `Compacted`.
    /// The keys' revisions are taken as given (at most `revision`) and their
    /// leases are dropped (leases do not outlive a process).
    pub fn from_snapshot(
        config: MemoryConfig,
        kvs: Vec<KeyValue>,
        revision: Revision,
    ) -> Result<Arc<MemoryStore>, StorageError> {
        let store = MemoryStore::with_config(config);
        {
            let mut inner = store.shared.lock();
            inner.revision = revision.max(1);
            inner.compacted = inner.revision + 1;
            for kv in kvs {
                if kv.key.is_empty() || kv.mod_revision > inner.revision {
                    return Err(StorageError::Corrupt(format!(
                        "snapshot key {:?} at revision {} (snapshot revision {})",
                        String::from_utf8_lossy(&kv.key),
                        kv.mod_revision,
                        inner.revision
                    )));
                }
                inner.kv.insert(
                    kv.key,
                    Entry {
                        value: kv.value,
                        create_revision: kv.create_revision,
                        mod_revision: kv.mod_revision,
                        lease: None,
                    },
                );
            }
        }
        Ok(store)
    }

    /// Sets the hook called, under the store's lock, with every batch before
    /// it becomes visible (commits, revocations and expiries). An `Err`
    /// aborts that batch: a commit or revocation returns the error, an expiry
    /// is retried a second later. For a store that persists its commits.
    /// The hook must not call back into the store (it would deadlock).
    pub fn set_commit_hook(&self, hook: Option<CommitHook>) {
        self.shared.lock().hook = hook;
    }

    /// The settings.
    pub fn config(&self) -> &MemoryConfig {
        &self.shared.config
    }

    /// The oldest revision that can still be watched from.
    pub fn compacted_revision(&self) -> Revision {
        self.shared.lock().compacted
    }

    fn reaper(&self) -> Result<&Arc<Reaper>, StorageError> {
        if let Some(r) = self.reaper.get() {
            return Ok(r);
        }
        let reaper = Arc::new(Reaper {
            state: Mutex::new(ReaperState {
                shutdown: false,
                generation: 0,
            }),
            cv: Condvar::new(),
        });
        // Two racing first grants: only the winner starts a thread.
        if self.reaper.set(reaper.clone()).is_ok() {
            let weak = Arc::downgrade(&self.shared);
            std::thread::Builder::new()
                .name("oxsdb-memory-leases".into())
                .spawn(move || reaper.run(weak))
                .map_err(|e| StorageError::Other(format!("starting the lease thread: {e}")))?;
        }
        self.reaper
            .get()
            .ok_or_else(|| StorageError::Other("the lease thread is not running".into()))
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        if let Some(r) = self.reaper.get() {
            r.state().shutdown = true;
            r.cv.notify_all();
        }
    }
}

/// The state of one watch stream.
struct WatchState {
    shared: Weak<Shared>,
    prefix: Bytes,
    /// The next revision to deliver.
    next: Revision,
    /// Batches read from the history, not yet delivered.
    buf: VecDeque<WatchBatch>,
    /// The live registration, once caught up.
    rx: Option<mpsc::Receiver<WatchBatch>>,
    done: bool,
}

/// Revisions scanned per lock acquisition while catching up.
const CATCH_UP_SCAN: usize = 1024;

impl WatchState {
    /// Reads the history from `next` on; once at its end, registers live.
    fn catch_up(&mut self) -> Result<(), StorageError> {
        let shared = self
            .shared
            .upgrade()
            .ok_or_else(|| StorageError::Unavailable("the memory store was dropped".into()))?;
        let mut inner = shared.lock();
        if self.next < inner.compacted {
            return Err(StorageError::Compacted {
                compacted: inner.compacted,
            });
        }
        let start = inner.history.partition_point(|b| b.revision < self.next);
        let mut scanned = 0;
        for b in inner.history.range(start..) {
            if scanned == CATCH_UP_SCAN {
                break;
            }
            scanned += 1;
            self.next = b.revision + 1;
            if let Some(f) = filter_batch(b, &self.prefix) {
                self.buf.push_back(f);
            }
        }
        if start + scanned == inner.history.len() {
            self.next = self.next.max(inner.revision + 1);
            self.rx = Some(inner.register(self.prefix.clone(), shared.config.watch_buffer));
        }
        Ok(())
    }

    async fn step(mut self) -> Option<(Result<WatchBatch, StorageError>, WatchState)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(b) = self.buf.pop_front() {
                return Some((Ok(b), self));
            }
            if let Some(rx) = &mut self.rx {
                match rx.recv().await {
                    Some(b) if b.revision < self.next => continue,
                    Some(b) => {
                        self.next = b.revision + 1;
                        return Some((Ok(b), self));
                    }
                    // Dropped for lagging (or the store is gone): catch up.
                    None => self.rx = None,
                }
            }
            if let Err(e) = self.catch_up() {
                self.done = true;
                return Some((Err(e), self));
            }
        }
    }
}

#[async_trait]
impl Storage for MemoryStore {
    async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, Revision), StorageError> {
        let inner = self.shared.lock();
        let kvs = inner
            .kv
            .range::<[u8], _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, e)| KeyValue {
                key: k.clone(),
                value: e.value.clone(),
                create_revision: e.create_revision,
                mod_revision: e.mod_revision,
                lease: e.lease,
            })
            .collect();
        Ok((kvs, inner.revision))
    }

    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StorageError> {
        let inner = self.shared.lock();
        Ok(inner.kv.get_key_value(key).map(|(k, e)| KeyValue {
            key: k.clone(),
            value: e.value.clone(),
            create_revision: e.create_revision,
            mod_revision: e.mod_revision,
            lease: e.lease,
        }))
    }

    async fn commit(
        &self,
        compares: Vec<Compare>,
        writes: Vec<WriteOp>,
    ) -> Result<CommitResult, StorageError> {
        self.shared
            .lock()
            .commit(&self.shared.config, compares, writes)
    }

    async fn watch(&self, prefix: &[u8], from: Revision) -> Result<WatchStream, StorageError> {
        if from < 0 {
            return Err(StorageError::Invalid(format!("watch from revision {from}")));
        }
        let prefix = Bytes::copy_from_slice(prefix);
        let mut inner = self.shared.lock();
        if from != 0 && from < inner.compacted {
            return Err(StorageError::Compacted {
                compacted: inner.compacted,
            });
        }
        let next = if from == 0 { inner.revision + 1 } else { from };
        let rx = (next > inner.revision)
            .then(|| inner.register(prefix.clone(), self.shared.config.watch_buffer));
        drop(inner);
        let state = WatchState {
            shared: Arc::downgrade(&self.shared),
            prefix,
            next,
            buf: VecDeque::new(),
            rx,
            done: false,
        };
        Ok(futures_util::stream::unfold(state, WatchState::step).boxed())
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        Ok(self.shared.lock().revision)
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StorageError> {
        if ttl.is_zero() {
            return Err(StorageError::Invalid("lease TTL must be positive".into()));
        }
        let reaper = self.reaper()?;
        let id = {
            let mut inner = self.shared.lock();
            let id = inner.next_lease;
            inner.next_lease += 1;
            inner.leases.insert(
                id,
                Lease {
                    ttl,
                    deadline: Instant::now() + ttl,
                    keys: BTreeSet::new(),
                },
            );
            id
        };
        reaper.wake();
        Ok(id)
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StorageError> {
        let mut inner = self.shared.lock();
        let now = Instant::now();
        inner.expire_due(&self.shared.config, now);
        let l = inner
            .leases
            .get_mut(&lease)
            .ok_or(StorageError::LeaseNotFound(lease))?;
        l.deadline = now + l.ttl;
        Ok(())
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StorageError> {
        let mut inner = self.shared.lock();
        inner.expire_due(&self.shared.config, Instant::now());
        inner.end_lease(&self.shared.config, lease)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        let mut inner = self.shared.lock();
        if revision > inner.revision {
            return Err(StorageError::Invalid(format!(
                "compaction to revision {revision}, a future revision (current {})",
                inner.revision
            )));
        }
        if revision <= inner.compacted {
            return Err(StorageError::Compacted {
                compacted: inner.compacted,
            });
        }
        while inner.history.front().is_some_and(|b| b.revision < revision) {
            inner.drop_oldest();
        }
        inner.compacted = revision;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn put(k: &str, v: &str) -> WriteOp {
        WriteOp::put(k.to_string(), v.to_string())
    }

    async fn next(s: &mut WatchStream) -> Result<WatchBatch, StorageError> {
        tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("watch timed out")
            .expect("watch ended")
    }

    #[tokio::test]
    async fn starts_at_revision_one() {
        let s = MemoryStore::new();
        assert_eq!(s.current_revision().await.unwrap(), 1);
        let r = s.commit(vec![], vec![put("a", "1")]).await.unwrap();
        assert_eq!(
            r,
            CommitResult {
                succeeded: true,
                revision: 2
            }
        );
        assert_eq!(s.kind(), "memory");
    }

    #[tokio::test]
    async fn slow_watcher_catches_up_from_history() {
        let s = MemoryStore::with_config(MemoryConfig {
            watch_buffer: 2,
            ..MemoryConfig::default()
        });
        let mut w = s.watch(b"k/", 0).await.unwrap();
        let first = s.current_revision().await.unwrap() + 1;
        for i in 0..3000 {
            s.commit(vec![], vec![put(&format!("k/{}", i % 7), &i.to_string())])
                .await
                .unwrap();
        }
        // Dropped from the live set at the third commit, not blocking anyone.
        assert!(s.shared.lock().watchers.is_empty());
        for i in 0..3000i64 {
            let b = next(&mut w).await.unwrap();
            assert_eq!(b.revision, first + i);
            assert_eq!(b.events[0].value.as_deref(), Some(i.to_string().as_bytes()));
        }
        // And then live again.
        s.commit(vec![], vec![put("k/x", "live")]).await.unwrap();
        assert_eq!(next(&mut w).await.unwrap().revision, first + 3000);
    }

    #[tokio::test]
    async fn watcher_lagging_past_history_gets_compacted() {
        let s = MemoryStore::with_config(MemoryConfig {
            watch_buffer: 2,
            history_revisions: 10,
            ..MemoryConfig::default()
        });
        let mut w = s.watch(b"", 0).await.unwrap();
        for i in 0..50 {
            s.commit(vec![], vec![put("k", &i.to_string())])
                .await
                .unwrap();
        }
        assert!(next(&mut w).await.is_ok());
        assert!(next(&mut w).await.is_ok());
        match next(&mut w).await {
            // Revisions 2..=51; the history keeps 42..=51.
            Err(StorageError::Compacted { compacted }) => assert_eq!(compacted, 42),
            other => panic!("{other:?}"),
        }
        assert!(w.next().await.is_none());
        // Automatic compaction is visible to new watchers too.
        assert!(matches!(
            s.watch(b"", 41).await,
            Err(StorageError::Compacted { compacted: 42 })
        ));
        assert!(s.watch(b"", 42).await.is_ok());
    }

    #[tokio::test]
    async fn history_bytes_bound() {
        let s = MemoryStore::with_config(MemoryConfig {
            history_bytes: 1000,
            ..MemoryConfig::default()
        });
        for _ in 0..10 {
            s.commit(vec![], vec![WriteOp::put("k", vec![0u8; 400])])
                .await
                .unwrap();
        }
        let inner = s.shared.lock();
        assert!(inner.history_bytes <= 1000, "{}", inner.history_bytes);
        assert!(!inner.history.is_empty());
        assert_eq!(inner.compacted, inner.history.front().unwrap().revision);
    }

    #[tokio::test]
    async fn dropped_store_ends_streams() {
        let s = MemoryStore::new();
        let lease = s.grant_lease(Duration::from_secs(30)).await.unwrap();
        let mut w = s.watch(b"", 0).await.unwrap();
        drop(s);
        assert!(matches!(
            next(&mut w).await,
            Err(StorageError::Unavailable(_))
        ));
        let _ = lease;
    }

    #[tokio::test]
    async fn limits_imitate_etcd() {
        let s = MemoryStore::with_config(MemoryConfig {
            max_txn_ops: Some(2),
            max_request_bytes: Some(100),
            ..MemoryConfig::default()
        });
        let e = s
            .commit(vec![], vec![put("a", "1"), put("b", "1"), put("c", "1")])
            .await
            .unwrap_err();
        assert!(
            matches!(&e, StorageError::TooLarge(m) if m.contains("--max-txn-ops")),
            "{e}"
        );
        let e = s
            .commit(vec![], vec![WriteOp::put("a", vec![1u8; 200])])
            .await
            .unwrap_err();
        assert!(
            matches!(&e, StorageError::TooLarge(m) if m.contains("--max-request-bytes")),
            "{e}"
        );
        assert_eq!(s.current_revision().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn hook_can_veto() {
        let s = MemoryStore::new();
        s.set_commit_hook(Some(Arc::new(|b: &WatchBatch| {
            if b.events.iter().any(|e| e.key == "bad") {
                Err(StorageError::Unavailable("disk full".into()))
            } else {
                Ok(())
            }
        })));
        s.commit(vec![], vec![put("good", "1")]).await.unwrap();
        let e = s
            .commit(vec![], vec![put("bad", "1"), put("x", "1")])
            .await
            .unwrap_err();
        assert_eq!(e, StorageError::Unavailable("disk full".into()));
        assert!(s.get(b"x").await.unwrap().is_none());
        assert_eq!(s.current_revision().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn from_snapshot() {
        let kv = KeyValue {
            key: Bytes::from("a"),
            value: Bytes::from("1"),
            create_revision: 3,
            mod_revision: 7,
            lease: Some(9),
        };
        let s = MemoryStore::from_snapshot(MemoryConfig::default(), vec![kv.clone()], 10).unwrap();
        let got = s.get(b"a").await.unwrap().unwrap();
        assert_eq!(
            got,
            KeyValue {
                lease: None,
                ..kv.clone()
            }
        );
        assert!(matches!(
            s.watch(b"", 10).await,
            Err(StorageError::Compacted { compacted: 11 })
        ));
        let mut w = s.watch(b"", 11).await.unwrap();
        s.commit(vec![], vec![put("a", "2")]).await.unwrap();
        let b = next(&mut w).await.unwrap();
        assert_eq!(b.revision, 11);
        assert_eq!(b.events[0].prev_value.as_deref(), Some(&b"1"[..]));
        assert!(MemoryStore::from_snapshot(MemoryConfig::default(), vec![kv], 5).is_err());
    }

    #[test]
    fn works_without_a_runtime_and_inside_actix() {
        // Built outside any runtime, used from an actix System.
        let s = MemoryStore::new();
        let sys = actix_rt::System::new();
        sys.block_on(async move {
            let lease = s.grant_lease(Duration::from_millis(200)).await.unwrap();
            let mut w = s.watch(b"", 0).await.unwrap();
            s.commit(vec![], vec![WriteOp::put_with_lease("l", "x", lease)])
                .await
                .unwrap();
            assert_eq!(next(&mut w).await.unwrap().events[0].kind, EventKind::Put);
            let b = next(&mut w).await.unwrap();
            assert_eq!(b.events[0].kind, EventKind::Delete);
        });
    }
}
