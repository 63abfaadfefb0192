//! The Database actor: one per database. Owns the replica, turns
//! transactions into store commits one at a time (DESIGN.md's commit
//! protocol), applies every commit from the store's watch, fans monitor
//! updates out to sessions, and re-runs blocked `wait`s.

use crate::actors::database_convert::ConvertJob;
use crate::actors::database_local::Release;
use crate::actors::monitor::{ForgetSession, MonitorActor, Outgoing};
use crate::actors::watch::{Delivered, OwnCommits, StopWatch, WatchActor, WatchConfig};
use crate::actors::{SendEncodedReply, SessionGone, SessionHandle};
use crate::codec::jsonrpc::{begin_reply, end_reply};
use crate::db::changes::ChangeSet;
use crate::db::execution::{execute, ExecContext, Execution, Op};
use crate::db::monitor_routing::MonitorRouting;
use crate::db::op_result::{self, OpResult};
use crate::db::rbac::Identity;
use crate::error::OvsdbError;
use crate::metrics::Metrics;
use crate::replica::commit_errors::{self, Standing};
use crate::replica::commit_queue::{Answers, CommitQueue, Member as GroupMember, Queued};
use crate::replica::conversion_progress::Holds;
use crate::replica::gather::Gather;
use crate::replica::history::History;
use crate::replica::release_queue::ReleaseQueue;
use crate::replica::Replica;
use crate::schema::DatabaseSchema;
use crate::storage::log::{LogStore, SyncTicket};
use crate::storage::{Revision, Storage, StorageError};
use actix::prelude::*;
use bytes::BytesMut;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub use crate::actors::database_messages::{
    AddMonitor, CancelTxn, ChangeMonitor, Compact, Convert, DbSample, DbStatusChanged,
    GetStorageHealth, InternalTransact, RemoveMonitor, Sample, SetChangeAware, Stats,
    StorageHealth, StoreLiveness, Transact,
};

/// The longest pause between attempts to open a database while the store is down.
pub const MAX_OPEN_BACKOFF: Duration = Duration::from_secs(5);

/// Where commits go.
pub enum Backend {
    /// A shared store (etcd): commits go to it as fenced groups; the other
    /// servers' commits come back through its watch.
    Store(Arc<dyn Storage>),
    /// A local log store (memory, file; `_Server` in memory): this process
    /// is the only writer, so commits apply in place and are appended.
    Log(Box<dyn LogStore>),
}

/// How a database in a shared store (etcd) behaves: clustered semantics.
pub struct Shared {
    /// Where to report connectivity and the applied revision.
    pub status: Recipient<DbStatusChanged>,
    /// The schema given on the command line, checked against the stored one
    /// when the database is first opened (later opens take the stored one:
    /// another server may have converted the database).
    pub given_schema: Option<Arc<DatabaseSchema>>,
    /// Called with the stored schema when it is not the one served so far:
    /// another server converted the database (or, at the first open, the
    /// stored schema differs from the one given). Records it in the
    /// registry and `_Server`, and disconnects the clients that are not
    /// change-aware.
    pub on_schema_changed: Option<Box<dyn Fn(Arc<DatabaseSchema>) + Send>>,
}

/// A transaction to execute and answer: a session's, or an internal one.
pub(super) struct Pending {
    pub(super) session: Option<SessionHandle>,
    pub(super) id: Value,
    ops: Vec<Op>,
    owned_locks: Vec<String>,
    pub(super) received: Instant,
    read_only: bool,
    internal: Option<tokio::sync::oneshot::Sender<Value>>,
    rbac: Option<Identity>,
}

/// A request handled later, on the replica without uncommitted changes.
type Deferred = Box<dyn FnOnce(&mut DatabaseActor, &mut Context<DatabaseActor>)>;

/// The Database actor.
pub struct DatabaseActor {
    pub(super) replica: Replica,
    pub(super) backend: Backend,
    pub(super) server_id: Uuid,
    /// Transactions waiting, the group being built and the group in
    /// flight (shared stores); local stores only queue.
    pub(super) commits: CommitQueue<Pending>,
    /// Requests that read the replica, held while it is ahead of the store.
    pub(super) deferred: Vec<Deferred>,
    pub(super) blocked: Vec<(Pending, Option<Instant>)>,
    /// Every session's monitors (their groups live in the Monitor actors),
    /// and the Monitor actor of each session lane that had monitors.
    pub(super) monitors: MonitorRouting<Addr<MonitorActor>, ArbiterHandle>,
    /// Recent commits, for `monitor_cond_since`.
    pub(super) history: History,
    /// Local stores: commits applied and written, waiting for a sync or
    /// for the commits before them to be answered.
    pub(super) release: ReleaseQueue<Release>,
    /// Shared stores: whom the next group waits for (see `Gather`).
    gather: Gather,
    /// The timer ending that wait.
    gather_timer: Option<SpawnHandle>,
    /// Local stores: the newest sync ticket not yet run (it covers every
    /// record written before it).
    pub(super) sync_ticket: Option<SyncTicket>,
    pub(super) watch_from: Revision,
    pub(super) name: Arc<str>,
    /// Whether the replica holds the store's data (false while the store
    /// was unreachable at start).
    pub(super) loaded: bool,
    /// Why the database is not loaded, for transaction errors.
    pub(super) load_error: Option<String>,
    open_backoff: Duration,
    /// Whether the store answers (always, for embedded stores).
    pub(super) connected: bool,
    /// The watch lost history to a compaction, or brought a commit that
    /// does not decode: reload before watching again.
    pub(super) reload_needed: bool,
    /// The Watch actor reading the store (shared stores).
    pub(super) watch: Option<Addr<WatchActor>>,
    /// Which watch is current: messages of older ones are ignored.
    pub(super) watch_epoch: u64,
    /// The thread watches decode on, off the database's thread.
    watch_arbiter: Option<Arbiter>,
    /// This server's commits applied when the store said yes, for the watch
    /// to skip their echoes.
    pub(super) own_commits: OwnCommits,
    /// Watch batches that came while a group was in flight (with their
    /// watch's epoch), applied once the store answered it.
    pub(super) watch_held: Vec<(u64, Delivered)>,
    pub(super) shared: Option<Shared>,
    /// Whether a conversion of the shared database, this server's or
    /// another's, holds commits.
    pub(super) holds: Holds,
    /// This server's conversion lost a race and waits for the replica to
    /// catch up.
    pub(super) convert_waiting: Option<ConvertJob>,
    /// The server's metrics.
    pub(super) metrics: Arc<Metrics>,
}

impl DatabaseActor {
    /// A Database actor over a loaded replica; with a store, it watches from
    /// the revision after the replica's.
    pub fn new(replica: Replica, backend: Backend, server_id: Uuid) -> DatabaseActor {
        let name: Arc<str> = Arc::from(replica.name.as_str());
        let watch_from = replica.revision + 1;
        DatabaseActor {
            replica,
            backend,
            server_id,
            commits: CommitQueue::default(),
            deferred: Vec::new(),
            blocked: Vec::new(),
            monitors: MonitorRouting::default(),
            history: History::new(watch_from - 1),
            release: ReleaseQueue::default(),
            sync_ticket: None,
            gather: Gather::default(),
            gather_timer: None,
            watch_from,
            name,
            loaded: true,
            load_error: None,
            open_backoff: Duration::from_millis(100),
            connected: true,
            reload_needed: false,
            watch: None,
            watch_epoch: 0,
            watch_arbiter: None,
            own_commits: OwnCommits::default(),
            watch_held: Vec::new(),
            shared: None,
            holds: Holds::default(),
            convert_waiting: None,
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// The same actor, running the Monitor actors of session lane `i` on
    /// `lanes[i]` (by default they run on this actor's arbiter).
    pub fn with_lanes(mut self, lanes: Arc<Vec<ArbiterHandle>>) -> DatabaseActor {
        self.monitors.set_lanes(lanes);
        self
    }

    /// The same actor, counting into `metrics` (by default a set of its own).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> DatabaseActor {
        self.metrics = metrics;
        self
    }

    /// A Database actor for a shared store (etcd) that opens the database
    /// itself once started, retrying while the store is unreachable; until
    /// then transactions and monitors get an error saying why.
    pub fn shared(
        schema: Arc<DatabaseSchema>,
        keys: crate::storage::keys::Keys,
        store: Arc<dyn Storage>,
        server_id: Uuid,
        shared: Shared,
    ) -> DatabaseActor {
        let replica = Replica::new(schema, keys, Uuid::nil());
        let mut a = DatabaseActor::new(replica, Backend::Store(store), server_id);
        a.loaded = false;
        // A store that reports no liveness is taken as always reachable.
        a.connected = match &a.backend {
            Backend::Store(s) => s.liveness().is_none(),
            Backend::Log(_) => true,
        };
        a.shared = Some(shared);
        a
    }

    /// Opens (or re-opens, after a compaction) the database from the store.
    pub(super) fn open(&mut self, ctx: &mut Context<Self>) {
        let Backend::Store(store) = &self.backend else {
            return;
        };
        let store = store.clone();
        let keys = self.replica.keys.clone();
        let name = self.replica.name.clone();
        let given = match &self.shared {
            // Once open, the stored schema is the authority: another server
            // may have converted the database.
            Some(_) if self.loaded => None,
            Some(sh) => sh.given_schema.clone(),
            None => Some(self.schema().clone()),
        };
        let fut = async move {
            crate::actors::loader::open_replica(&*store, &keys, &name, given.as_ref()).await
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok(replica) => act.opened(replica, ctx),
            Err(e) => {
                let retry = e.is_retryable();
                let kind = if retry { "unavailable" } else { "refused" };
                act.metrics.store_error("open", kind);
                if act.load_error.as_deref() != Some(&e.to_string()) {
                    if retry {
                        tracing::warn!(db = %act.name, error = %e, "cannot open the database; retrying");
                    } else {
                        tracing::error!(db = %act.name, error = %e, "cannot open the database");
                    }
                }
                act.load_error = Some(e.to_string());
                if act.loaded {
                    // Transactions held for this reload must not wait for
                    // the next attempt.
                    act.pump(ctx);
                }
                if retry || act.loaded {
                    let delay = act.open_backoff;
                    act.open_backoff = (delay * 2).min(MAX_OPEN_BACKOFF);
                    ctx.run_later(delay, |act, ctx| act.open(ctx));
                }
            }
        }));
    }

    /// A fresh replica from the store: the first one, or one replacing the
    /// current replica after the watch lost history (monitors then get
    /// exactly the difference).
    fn opened(&mut self, fresh: Replica, ctx: &mut Context<Self>) {
        if self.loaded && fresh.revision < self.replica.revision {
            // One of our commits was applied while the database was read:
            // read again, or monitors would see it undone then redone.
            self.open(ctx);
            return;
        }
        // The diff below must be between committed states.
        self.undo_speculation();
        self.open_backoff = Duration::from_millis(100);
        self.load_error = None;
        let revision = fresh.revision;
        let new_schema = fresh.since != self.replica.since
            && (self.loaded || fresh.db.schema.to_json() != self.schema().to_json());
        if self.loaded && new_schema {
            // Another server converted the database: as ovsdb-server's
            // followers do on a schema change, monitors are canceled and
            // the database replaced.
            tracing::info!(db = %self.name, revision, version = %fresh.db.schema.version,
                space = %fresh.space, "another server converted the database; serving its new schema");
            self.cancel_monitors_for_conversion();
            self.replica = fresh;
            self.history.reset(revision);
        } else if self.loaded {
            let diff = crate::db::changes::diff(&self.replica.db, &fresh.db);
            tracing::info!(db = %self.name, revision, rows = diff.n_rows(), "reloaded from the store");
            self.replica = fresh;
            // Ids older than the reload can no longer be resumed from memory.
            self.history.reset(revision);
            if !diff.is_empty() {
                self.notify_monitors(revision, Arc::new(diff));
            }
        } else {
            tracing::info!(db = %self.name, revision, rows = fresh.db.n_rows(), "opened from the {} store", self.store_kind());
            self.replica = fresh;
            self.loaded = true;
            self.history.reset(revision);
        }
        self.watch_from = revision + 1;
        self.reload_needed = false;
        self.report_status();
        self.start_watch(ctx);
        if new_schema && self.holds.thaw() == Some(true) {
            self.commits.release();
        }
        self.resume_convert(ctx);
        if new_schema {
            if let Some(hook) = self
                .shared
                .as_ref()
                .and_then(|s| s.on_schema_changed.as_ref())
            {
                hook(self.schema().clone());
            }
        }
        if !self.blocked.is_empty() {
            self.rerun_blocked(ctx);
        }
        self.pump(ctx);
    }

    /// Tells `_Server` the current state (clustered model only).
    pub(super) fn report_status(&self) {
        if let Some(sh) = &self.shared {
            sh.status.do_send(DbStatusChanged {
                name: self.replica.name.clone(),
                connected: self.loaded && self.connected,
                index: self.replica.revision,
                cid: self.replica.cluster_id,
            });
        }
    }

    /// Why a write can't be committed now, if it can't.
    pub(super) fn unavailable(&self) -> Option<OvsdbError> {
        let standing = Standing {
            name: &self.name[..],
            kind: self.store_kind(),
            loaded: self.loaded,
            connected: self.connected,
            load_error: self.load_error.as_deref(),
        };
        commit_errors::unavailable(standing, || self.store_unreachable_reason())
    }

    /// The schema served.
    pub(super) fn schema(&self) -> &Arc<DatabaseSchema> {
        &self.replica.db.schema
    }

    /// The store prefix of this database's rows.
    pub(super) fn db_prefix(&self) -> bytes::Bytes {
        self.replica
            .keys
            .db_prefix(&self.replica.space)
            .unwrap_or_default()
    }

    /// Drops the watch and reads the database again (monitors then get
    /// exactly the difference); commits wait for it while the store answers.
    pub(super) fn reload(&mut self, ctx: &mut Context<Self>) {
        if let Some(w) = self.watch.take() {
            w.do_send(StopWatch);
        }
        // Whatever the stopped watch still sends is stale.
        self.watch_epoch += 1;
        self.reload_needed = true;
        self.open(ctx);
    }

    /// Starts a Watch actor (on the database's watch arbiter) reading the
    /// store from `watch_from`; any earlier one is stopped.
    pub(super) fn start_watch(&mut self, ctx: &mut Context<Self>) {
        let Backend::Store(store) = &self.backend else {
            return;
        };
        let store = store.clone();
        if let Some(w) = self.watch.take() {
            w.do_send(StopWatch);
        }
        self.watch_epoch += 1;
        let arbiter = self.watch_arbiter.get_or_insert_with(Arbiter::new).handle();
        let addr = ctx.address();
        let config = WatchConfig {
            store,
            prefix: self.db_prefix(),
            from: self.watch_from,
            keys: self.replica.keys.clone(),
            name: self.replica.name.clone(),
            space: self.replica.space.clone(),
            schema: self.schema().clone(),
            epoch: self.watch_epoch,
            delivered: addr.clone().recipient(),
            ended: addr.recipient(),
            own: self.own_commits.clone(),
        };
        self.watch = Some(WatchActor::start_on(&arbiter, config));
    }

    /// Whether the replica holds changes the store has not confirmed.
    fn speculating(&self) -> bool {
        self.commits.speculating()
    }

    /// Whether the replica holds changes not answered yet: speculative ones
    /// ahead of a shared store, or local commits waiting for a sync. Requests
    /// that read the replica for a client (new monitors, condition changes,
    /// conversion) wait until it is not.
    pub(super) fn ahead(&self) -> bool {
        self.speculating() || !self.release.is_empty()
    }

    /// Handles the requests deferred while the replica was ahead of the store.
    fn run_deferred(&mut self, ctx: &mut Context<Self>) {
        if self.ahead() {
            return;
        }
        // The deferred handlers read and monitor; none starts a commit.
        for d in std::mem::take(&mut self.deferred) {
            d(self, ctx);
        }
    }

    /// Executes queued transactions. Reads and failed transactions are
    /// answered at once. Local stores commit each write in place. Shared
    /// stores commit writes in groups (DESIGN.md: one fenced group in
    /// flight): the queued transactions are executed one after the other,
    /// each on top of the previous ones and of the group in flight (the
    /// replica holds their changes ahead of the store, undone if a commit
    /// fails), and the group leaves as one store transaction when nothing
    /// is in flight (and the clients just answered had their moment to
    /// join: see `Gather`), its members answered in order once the store
    /// said yes.
    pub(super) fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.commits.is_held() {
            return;
        }
        if self.reload_needed && self.loaded && self.connected && self.load_error.is_none() {
            // The replica is behind the store: a commit would fail its
            // fence. `opened` pumps again; were the store lost meanwhile, or
            // the reload failed, commits go on and fail with an error rather
            // than wait.
            return;
        }
        self.run_deferred(ctx);
        // Requests waiting for a replica without uncommitted changes (new
        // monitors, conversions) would starve if every answer found the next
        // group already executed: until they ran, nothing new is executed
        // ahead of the store.
        if self.deferred.is_empty() || !self.ahead() {
            while let Some(q) = self.commits.next_to_run() {
                if let Some(q) = self.run(q, ctx) {
                    // It can't join this group: it runs after the group's commit.
                    self.commits.put_back(q);
                    break;
                }
            }
        }
        if self.commits.in_flight().is_some() {
            // The group being built leaves when the one in flight returns.
            return;
        }
        if matches!(self.backend, Backend::Store(_)) && self.commits.building() {
            let now = Instant::now();
            if let Some(at) = self.gather.wait_until(now) {
                if self.gather_timer.is_none() {
                    self.gather_timer = Some(ctx.run_later(at - now, |act, ctx| {
                        act.gather_timer = None;
                        act.pump(ctx);
                    }));
                }
                return;
            }
        }
        self.start_commit(ctx);
    }

    /// Executes one transaction on the replica (which holds the changes of
    /// the group being built already): answers it, parks it (`wait`), or
    /// adds it to the group. Returns it when it must wait for the group's
    /// commit instead.
    fn run(&mut self, q: Queued<Pending>, ctx: &mut Context<Self>) -> Option<Queued<Pending>> {
        let speculating = self.commits.speculating();
        if !self.loaded {
            if let Some(e) = self.unavailable() {
                self.finish(q.txn, vec![OpResult::error(&e)]);
                return None;
            }
        }
        let p = &q.txn;
        let locks = p.owned_locks.clone();
        let asserted = std::cell::RefCell::new(Vec::<String>::new());
        let owns = |name: &str| {
            asserted.borrow_mut().push(name.to_string());
            locks.iter().any(|l| l == name)
        };
        let ectx = ExecContext {
            elapsed_ms: p.received.elapsed().as_millis() as i64,
            owns_lock: &owns,
            read_only: p.read_only,
            allow_reserved: p.internal.is_some(),
            rbac: p.rbac.as_ref(),
        };
        let execution = execute(&self.replica.db, &p.ops, &ectx);
        let asserted = asserted.into_inner();
        match execution {
            Execution::Blocked { .. } if speculating => {
                // It saw uncommitted changes: it waits on committed ones.
                Some(q)
            }
            Execution::Blocked { timeout_ms } => {
                self.park(q.txn, timeout_ms, ctx);
                None
            }
            Execution::Done(done) => {
                if done.changes.is_empty() {
                    if speculating {
                        // Its results may show uncommitted changes: answered
                        // with the group, re-executed if the group fails.
                        self.commits.join_read(q, done.results);
                    } else {
                        self.answer(q.txn, done.results, None, false, ctx);
                    }
                    return None;
                }
                if let Some(e) = self.unavailable() {
                    let mut results = done.results;
                    results.push(OpResult::error(&e));
                    self.finish(q.txn, results);
                    return None;
                }
                let changes = Arc::new(done.changes);
                if let Backend::Log(log) = &mut self.backend {
                    // DESIGN.md's local commit: apply in place, append, answer.
                    self.replica.db.apply(&changes);
                    let appended = log.append(
                        &self.replica.db,
                        &changes,
                        done.comment.as_deref(),
                        done.durable,
                    );
                    let kind = log.kind();
                    self.appended(q.txn, done.results, changes, appended, kind, ctx);
                    return None;
                }
                // A comment or an asserted lock in a shared store is part of
                // the commit itself: such a transaction commits alone.
                let asserts = self.shared.is_some() && !asserted.is_empty();
                let solo = done.comment.is_some() || asserts;
                if !self.commits.may_join(changes.n_rows(), solo) {
                    return Some(q);
                }
                let locks = if asserts {
                    self.asserted_locks(q.txn.session.as_ref(), &asserted)
                } else {
                    Vec::new()
                };
                self.replica.db.apply(&changes);
                self.commits.join_write(
                    q,
                    done.results,
                    changes,
                    done.durable,
                    done.comment,
                    locks,
                );
                None
            }
        }
    }

    /// Seals the group being built and sends it to the store as one commit.
    fn start_commit(&mut self, ctx: &mut Context<Self>) {
        let Backend::Store(store) = &self.backend else {
            return;
        };
        let store = store.clone();
        let Some(f) = self.commits.seal(Instant::now()) else {
            return;
        };
        let (mut cmp, writes) =
            self.replica
                .commit_request(&f.changes, self.server_id, f.comment.as_deref());
        for (_, key, value) in &f.asserted {
            cmp.push(crate::storage::Compare::value(key.clone(), value.clone()));
        }
        let durable = f.durable;
        let members = f.members.len();
        if writes.len() <= 1 {
            // Only reads held back behind writes that merged into nothing
            // (a row inserted and deleted again): nothing to commit.
            self.committed(
                Ok(crate::storage::CommitResult {
                    succeeded: true,
                    revision: self.replica.revision,
                }),
                ctx,
            );
            return;
        }
        tracing::trace!(db = %self.name, transactions = members, writes = writes.len(), "committing a group");
        self.metrics.group_size.observe(members as f64);
        self.metrics.groups_in_flight.inc();
        self.own_commits.set_in_flight(true);
        let fut = async move {
            let sent = Instant::now();
            let res = store.commit_durable(cmp, writes, durable).await;
            (res, sent.elapsed())
        };
        ctx.spawn(fut.into_actor(self).map(|(res, took), act, ctx| {
            act.metrics.groups_in_flight.dec();
            act.own_commits.set_in_flight(false);
            act.metrics.store_latency.observe(took.as_secs_f64());
            if let Err(e) = &res {
                act.metrics.store_error("commit", e.kind());
            }
            act.committed(res, ctx)
        }));
    }

    /// Takes the speculative changes (the group being built, then the group
    /// in flight) back out of the replica.
    pub(super) fn undo_speculation(&mut self) {
        // The group being built sits on top of the one in flight: out first,
        // last member first; its members are queued again.
        for changes in self.commits.unbuild().iter().rev() {
            self.replica.db.apply(&changes.inverse());
        }
        if let Some(changes) = self.commits.undo_speculation() {
            self.replica.db.apply(&changes.inverse());
        }
    }

    /// Answers transactions in order.
    pub(super) fn finish_all(&mut self, answers: Answers<Pending>) {
        for (txn, results) in answers {
            self.finish(txn, results);
        }
    }

    /// Answers the members of a committed group in order.
    fn finish_group(&mut self, members: Vec<GroupMember<Pending>>) {
        for m in members {
            self.finish(m.txn.txn, m.results);
        }
    }

    /// What the store said about the group in flight.
    pub(super) fn committed(
        &mut self,
        res: Result<crate::storage::CommitResult, StorageError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(f) = self.commits.in_flight() else {
            return;
        };
        let has_asserted = !f.asserted.is_empty();
        let n_members = f.members.len();
        match res {
            Ok(r) if r.succeeded => {
                if self.replica.revision >= r.revision {
                    // The watch already delivered (and applied) our commit,
                    // or there was nothing to commit: the speculation (if
                    // any) was undone by the watch, or never reached the store.
                    self.undo_speculation();
                    if let Some(f) = self.commits.succeeded() {
                        self.finish_group(f.members);
                    }
                    self.release_watch_held(ctx);
                    self.pump(ctx);
                    return;
                }
                // DESIGN.md: the fence held, so no other commit came
                // between the replica's state and ours: the replica (which
                // holds the group's changes) is the store at this revision.
                // Answer now; the watch skips the echo (its revision is not
                // above the replica's).
                if let Some(f) = self.commits.succeeded() {
                    let writers = f
                        .members
                        .iter()
                        .filter(|m| m.writes)
                        .filter_map(|m| m.txn.txn.session.as_ref().map(|s| s.id));
                    self.gather
                        .answered(writers, Instant::now(), f.started.elapsed());
                    self.replica.fence_revision = r.revision;
                    // No other commit of this database came before it (the
                    // fence held): the watch has nothing to bring up to it.
                    self.watch_from = self.watch_from.max(r.revision + 1);
                    self.own_commits.add(r.revision);
                    if f.changes.is_empty() {
                        self.replica.revision = r.revision;
                        self.report_status();
                    } else if f.speculative {
                        self.replica.revision = r.revision;
                        self.record_commit(r.revision, f.changes);
                    } else {
                        // The speculation was taken out (a reload came in
                        // between): the changes go in now.
                        self.commit_applied(r.revision, f.changes);
                    }
                    self.finish_group(f.members);
                }
                // Our echo among them is skipped; commits after ours apply.
                self.release_watch_held(ctx);
                if !self.blocked.is_empty() {
                    self.rerun_blocked(ctx);
                }
                self.pump(ctx);
            }
            Ok(_) if has_asserted => {
                // A failed compare may be a lock lost to another server:
                // `not owner` then, as the engine would have said.
                self.undo_speculation();
                self.release_watch_held(ctx);
                self.recheck_asserted_locks(ctx);
            }
            Ok(_) => {
                // Another server committed first: execute again once our replica has caught up.
                self.undo_speculation();
                tracing::debug!(db = %self.name, transactions = n_members,
                    "lost a commit race to another server; executing the transaction again");
                let answers = self
                    .commits
                    .lost_race(|| commit_errors::too_many_races().to_json());
                self.finish_all(answers);
                // The commits that won the race, if the watch brought them.
                self.release_watch_held(ctx);
                // Re-running waits for the watch to bring the newer fence.
                ctx.run_later(Duration::from_millis(1), |act, ctx| act.pump(ctx));
            }
            Err(e) => {
                self.undo_speculation();
                let (failure, err) = commit_errors::store_failure(&e, self.store_kind());
                let answers = self.commits.failed(failure, err.to_json());
                self.finish_all(answers);
                self.release_watch_held(ctx);
                self.pump(ctx);
            }
        }
    }

    /// Why the store was last found unreachable, if it says.
    fn store_unreachable_reason(&self) -> Option<String> {
        match &self.backend {
            Backend::Store(s) => s.unreachable_reason(),
            Backend::Log(_) => None,
        }
    }

    /// The store's kind (`file`, `memory`, `etcd`).
    pub(super) fn store_kind(&self) -> &'static str {
        match &self.backend {
            Backend::Store(s) => s.kind(),
            Backend::Log(l) => l.kind(),
        }
    }

    /// Answers a transaction: its session, after everything sent it
    /// before, or the internal caller.
    pub(super) fn finish(&mut self, p: Pending, results: Vec<OpResult>) {
        if let Some(tx) = p.internal {
            let _ = tx.send(op_result::to_json(results));
        } else if let Some(s) = p.session {
            self.metrics.transaction_answered(
                op_result::error_tag(&results),
                p.received.elapsed().as_secs_f64(),
            );
            // Written straight into the reply, without a JSON tree of the results.
            let mut frame = BytesMut::with_capacity(op_result::len_hint(&results) + 64);
            begin_reply(&p.id, &mut frame);
            let start = frame.len();
            op_result::write(&results, &mut frame);
            let result = start..frame.len();
            end_reply(&mut frame);
            let reply = SendEncodedReply {
                id: p.id,
                frame: frame.freeze(),
                result,
            };
            self.send_after(&s, Outgoing::EncodedReply(reply));
        }
    }

    /// A commit is in the replica's future: apply it, tell monitors, re-run waits.
    pub(super) fn commit_applied(&mut self, revision: Revision, changes: Arc<ChangeSet>) {
        self.replica.apply(&changes, revision);
        self.record_commit(revision, changes);
    }

    /// Keeps a commit applied to the replica for `monitor_cond_since` and
    /// sends it to the monitors.
    fn record_commit(&mut self, revision: Revision, changes: Arc<ChangeSet>) {
        self.history.push(revision, changes.clone());
        self.notify_monitors(revision, changes);
        self.report_status();
    }

    /// The changes since `rev` (exclusive), if the in-memory history still
    /// covers them.
    pub(super) fn changes_since(&self, rev: Revision) -> Option<ChangeSet> {
        self.history.changes_since(rev, self.replica.revision)
    }
}

impl Actor for DatabaseActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Backend::Store(store) = &self.backend {
            if let Some(mut rx) = store.liveness() {
                let addr = ctx.address();
                actix::spawn(async move {
                    loop {
                        let up = *rx.borrow_and_update();
                        if !addr.connected() {
                            break;
                        }
                        addr.do_send(StoreLiveness(up));
                        if rx.changed().await.is_err() {
                            break;
                        }
                    }
                });
            }
        }
        if self.loaded {
            self.start_watch(ctx);
        } else {
            self.open(ctx);
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(w) = self.watch.take() {
            w.do_send(StopWatch);
        }
        if let Some(a) = self.watch_arbiter.take() {
            a.stop();
        }
    }
}

impl Handler<Transact> for DatabaseActor {
    type Result = ();
    fn handle(&mut self, m: Transact, ctx: &mut Context<Self>) {
        self.gather.arrived(m.session.id);
        self.commits.push(Pending {
            session: Some(m.session),
            id: m.id,
            ops: m.ops,
            owned_locks: m.owned_locks,
            received: m.received,
            read_only: m.read_only,
            internal: None,
            rbac: m.rbac,
        });
        self.pump(ctx);
    }
}

impl Handler<InternalTransact> for DatabaseActor {
    type Result = ResponseFuture<Value>;
    fn handle(&mut self, m: InternalTransact, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commits.push(Pending {
            session: None,
            id: Value::Null,
            ops: m.ops.into_iter().map(Op::Json).collect(),
            owned_locks: Vec::new(),
            received: Instant::now(),
            read_only: false,
            internal: Some(tx),
            rbac: None,
        });
        self.pump(ctx);
        Box::pin(async move { rx.await.unwrap_or(Value::Null) })
    }
}

impl Handler<SessionGone> for DatabaseActor {
    type Result = ();
    fn handle(&mut self, m: SessionGone, _: &mut Context<Self>) {
        if self.monitors.forget_session(m.id) {
            for a in self.monitors.handles() {
                a.do_send(ForgetSession(m.id));
            }
        }
        self.blocked
            .retain(|(p, _)| p.session.as_ref().map(|s| s.id) != Some(m.id));
        self.commits
            .retain(|p| p.session.as_ref().map(|s| s.id) != Some(m.id));
    }
}
