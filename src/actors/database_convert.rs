//! The Database actor's `convert`: in place for a local store; for a
//! shared store, attempts against racing commits (the store writes are
//! `replica::conversion`'s, their bookkeeping `replica::conversion_progress`'s,
//! carried out by `actors::shared_convert`), and the holding of commits
//! while this server's or another's conversion finishes.

use crate::actors::database::{Backend, Convert, DatabaseActor};
use crate::actors::monitor::CancelAll;
use crate::actors::{SendReply, SessionHandle};
use crate::error::OvsdbError;
use crate::replica::conversion::Staged;
use crate::replica::conversion_progress::{Attempts, FREEZE_FOR, MAX_CONVERT_ATTEMPTS};
use crate::replica::Replica;
use crate::schema::DatabaseSchema;
use crate::storage::Revision;
use actix::prelude::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Handler<Convert> for DatabaseActor {
    type Result = ();
    fn handle(&mut self, m: Convert, ctx: &mut Context<Self>) {
        if self.ahead() || self.holds.converting {
            // It reads the replica, which is ahead of the store right now
            // (or another conversion is under way).
            self.deferred.push(Box::new(move |act, ctx| {
                <Self as Handler<Convert>>::handle(act, m, ctx)
            }));
            return;
        }
        if matches!(self.backend, Backend::Store(_)) {
            if let Some(e) = self.unavailable() {
                self.reply_error(&m.session, m.id, &e);
                return;
            }
            // Shared databases are clustered: no ephemeral columns.
            let schema = if self.shared.is_some() {
                crate::storage::db_record::clustered_schema(m.schema)
            } else {
                m.schema
            };
            let job = ConvertJob {
                session: m.session,
                id: m.id,
                schema,
                on_done: m.on_done,
                tries: Attempts::default(),
            };
            // Transactions wait for the conversion, then run on the new schema.
            self.commits.hold();
            self.holds.converting = true;
            self.convert_shared(job, ctx);
            return;
        }
        let converted = match crate::db::convert::convert(&self.replica.db, m.schema.clone()) {
            Ok(c) => c,
            Err(e) => {
                self.reply_error(&m.session, m.id, &e);
                return;
            }
        };
        if let Backend::Log(log) = &mut self.backend {
            // The log holds the new schema and rows before anyone sees them.
            if let Err(e) = log.convert(&converted) {
                let e = OvsdbError::new(
                    "I/O error",
                    format!(
                        "cannot write the converted database to the {} store: {e}",
                        log.kind()
                    ),
                );
                self.reply_error(&m.session, m.id, &e);
                return;
            }
        }
        self.cancel_monitors_for_conversion();
        let keys = self.replica.keys.clone();
        let cluster = self.replica.cluster_id;
        let old_rev = self.replica.revision;
        self.history.reset(old_rev);
        let schema = m.schema.clone();
        self.replica = Replica::new(schema.clone(), keys, cluster);
        self.replica.db = converted;
        self.replica.revision = old_rev + 1;
        self.reply_to(
            &m.session,
            SendReply {
                id: m.id,
                result: Ok(json!({})),
            },
        );
        (m.on_done)(schema);
    }
}

/// A conversion of a shared database under way (see
/// `replica::conversion`).
pub(super) struct ConvertJob {
    session: SessionHandle,
    id: Value,
    schema: Arc<DatabaseSchema>,
    on_done: Box<dyn FnOnce(Arc<DatabaseSchema>) + Send>,
    /// Its attempts so far.
    tries: Attempts,
}

impl DatabaseActor {
    /// Monitors were parsed against the old schema: cancels them, telling
    /// change-aware clients with `monitor_canceled` (the others are
    /// disconnected by the caller's registry update), in ovsdb-server's
    /// order (see `CancelOrder`).
    pub(super) fn cancel_monitors_for_conversion(&mut self) {
        let aware = self.monitors.cancel_all();
        for a in self.monitors.handles() {
            a.do_send(CancelAll {
                notify: aware.clone(),
            });
        }
    }

    /// One attempt of a shared conversion, on the replica as it is now.
    fn convert_shared(&mut self, mut job: ConvertJob, ctx: &mut Context<Self>) {
        use crate::replica::conversion::{carry_over, plan, Before, Limits};
        let Backend::Store(store) = &self.backend else {
            return;
        };
        let store = store.clone();
        if job.tries.needs_freeze() {
            return self.freeze_for_convert(job, ctx);
        }
        let converted = match crate::db::convert::convert(&self.replica.db, job.schema.clone()) {
            Ok(c) => c,
            Err(e) => return self.end_convert(job, Err(e.to_json()), ctx),
        };
        let converted = match &job.tries.staged {
            Some(s) => carry_over(s, &converted),
            None => converted,
        };
        let before = Before {
            keys: &self.replica.keys,
            space: &self.replica.space,
            fence_revision: self.replica.fence_revision,
            cid: self.replica.cluster_id,
            db: &self.replica.db,
        };
        let plan = plan(
            before,
            &converted,
            job.tries.staged.as_ref(),
            job.tries.force_staged,
            job.tries.frozen,
            Limits::default(),
            self.server_id,
        );
        job.tries
            .start(self.replica.fence_revision, &self.replica.space);
        let (space, staged) = (plan.space.clone(), plan.staged);
        tracing::info!(db = %self.name, version = %job.schema.version, staged, space = %space,
            txns = plan.stage.len() + 1, attempt = job.tries.attempt, "converting the database in the store");
        let fut = crate::actors::shared_convert::carry_out(
            store,
            self.replica.keys.clone(),
            self.replica.name.clone(),
            job.tries.space.clone(),
            plan,
            job.tries.attempt == 0,
        );
        ctx.spawn(fut.into_actor(self).map(move |outcome, act, ctx| {
            use crate::actors::shared_convert::Outcome;
            match &outcome {
                Outcome::Committed(revision) => {
                    act.converted(job, converted, space, *revision, ctx)
                }
                Outcome::TooLarge => {
                    job.tries.force_staged = true;
                    act.convert_shared(job, ctx);
                }
                Outcome::LostRace | Outcome::Behind => {
                    // A staging space that lost its flip is kept for the next attempt.
                    let kept = (staged && matches!(outcome, Outcome::LostRace)).then_some(Staged {
                        space,
                        db: converted,
                    });
                    if !job.tries.lost(kept, Instant::now()) {
                        return act.end_convert(job, Err(gave_up().to_json()), ctx);
                    }
                    tracing::debug!(db = %act.name, attempt = job.tries.attempt,
                        "the conversion lost a commit race to another server; converting again");
                    act.retry_convert(job, ctx);
                }
                Outcome::Failed(e) => {
                    // Whatever this attempt staged is deleted, unless the
                    // flip may have applied.
                    let this = staged.then_some(Staged {
                        space,
                        db: converted,
                    });
                    job.tries.failed(e.may_have_committed(), this);
                    let err = OvsdbError::new(e.tag(), e.to_string());
                    act.end_convert(job, Err(err.to_json()), ctx);
                }
            }
        }));
    }

    /// Asks the other servers to hold their commits while the conversion
    /// finishes: commits the freeze, fenced like any commit.
    fn freeze_for_convert(&mut self, mut job: ConvertJob, ctx: &mut Context<Self>) {
        let Backend::Store(store) = &self.backend else {
            return;
        };
        let store = store.clone();
        let before = crate::replica::conversion::Before {
            keys: &self.replica.keys,
            space: &self.replica.space,
            fence_revision: self.replica.fence_revision,
            cid: self.replica.cluster_id,
            db: &self.replica.db,
        };
        let (compares, writes) = crate::replica::conversion::freeze(before, self.server_id);
        job.tries
            .start(self.replica.fence_revision, &self.replica.space);
        let fut = async move { store.commit(compares, writes).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(r) if r.succeeded => {
                // No rows changed; the fence moved, and nothing came between.
                act.replica.fence_revision = r.revision;
                act.replica.revision = act.replica.revision.max(r.revision);
                act.watch_from = act.watch_from.max(r.revision + 1);
                act.own_commits.add(r.revision);
                job.tries.frozen = true;
                act.convert_shared(job, ctx);
            }
            Ok(_) => {
                if !job.tries.lost(None, Instant::now()) {
                    return act.end_convert(job, Err(gave_up().to_json()), ctx);
                }
                act.retry_convert(job, ctx);
            }
            Err(e) => {
                let e = OvsdbError::new(
                    "not leader",
                    format!(
                        "cannot reach the {} store to convert the database ({e}); it was not converted: retry",
                        act.store_kind()
                    ),
                );
                act.end_convert(job, Err(e.to_json()), ctx);
            }
        }));
    }

    /// Another server's conversion is finishing (`on`) or gave up: hold
    /// the commits meanwhile, for at most [`FREEZE_FOR`] (it may have died).
    pub(super) fn hold_for_conversion(&mut self, on: bool, ctx: &mut Context<Self>) {
        if on {
            let epoch = self.holds.freeze();
            self.commits.hold();
            ctx.run_later(FREEZE_FOR, move |act, ctx| {
                if act.holds.freeze_expired(epoch) {
                    tracing::warn!(db = %act.name, "another server's conversion did not finish in {FREEZE_FOR:?}; committing again");
                    act.hold_for_conversion(false, ctx);
                }
            });
        } else if let Some(release) = self.holds.thaw() {
            if release {
                self.commits.release();
            }
            self.pump(ctx);
        }
    }

    /// Tries a conversion again once the replica holds the commit that won
    /// the race (or after [`CONVERT_CATCH_UP`]).
    fn retry_convert(&mut self, job: ConvertJob, ctx: &mut Context<Self>) {
        let ready = job.tries.ready(
            self.replica.fence_revision,
            &self.replica.space,
            self.reload_needed,
            Instant::now(),
        );
        if ready {
            self.convert_shared(job, ctx);
        } else {
            // The watch (or the reload) that brings the winner retries at
            // once; the timer only bounds the wait.
            self.convert_waiting = Some(job);
            ctx.run_later(Duration::from_millis(50), |act, ctx| {
                act.resume_convert(ctx)
            });
        }
    }

    /// Retries a conversion waiting for the replica to catch up, if any.
    pub(super) fn resume_convert(&mut self, ctx: &mut Context<Self>) {
        if let Some(job) = self.convert_waiting.take() {
            self.retry_convert(job, ctx);
        }
    }

    /// A conversion was committed at `revision`: the replica becomes the
    /// converted database (rows in `space`), as every other server's will
    /// when its watch brings the conversion.
    fn converted(
        &mut self,
        job: ConvertJob,
        db: crate::db::Database,
        space: String,
        revision: Revision,
        ctx: &mut Context<Self>,
    ) {
        let old_space = std::mem::replace(&mut self.replica.space, space.clone());
        tracing::info!(db = %self.name, version = %job.schema.version, revision, space = %space,
            "converted the database in the store");
        self.cancel_monitors_for_conversion();
        self.replica.db = db;
        self.replica.revision = revision;
        self.replica.fence_revision = revision;
        self.replica.since = revision;
        self.history.reset(revision);
        self.own_commits.add(revision);
        self.watch_from = revision + 1;
        self.start_watch(ctx);
        self.report_status();
        if old_space != space {
            // No one reads the old space any more.
            if let Backend::Store(store) = &self.backend {
                let (store, keys, name) =
                    (store.clone(), self.replica.keys.clone(), self.name.clone());
                actix::spawn(async move {
                    match crate::actors::shared_convert::delete_space(&*store, &keys, &old_space)
                        .await
                    {
                        Ok(n) => {
                            tracing::info!(db = %name, space = %old_space, keys = n, "deleted the key space of the old schema")
                        }
                        Err(e) => tracing::warn!(db = %name, space = %old_space, error = %e,
                            "cannot delete the key space of the old schema (the next conversion will)"),
                    }
                });
            }
        }
        let schema = self.schema().clone();
        self.reply_to(
            &job.session,
            SendReply {
                id: job.id,
                result: Ok(json!({})),
            },
        );
        (job.on_done)(schema);
        if self.holds.converted() {
            self.commits.release();
        }
        if !self.blocked.is_empty() {
            self.rerun_blocked(ctx);
        }
        self.pump(ctx);
    }

    /// Ends a conversion that was not committed: deletes what it staged,
    /// answers, lets transactions go on.
    fn end_convert(
        &mut self,
        job: ConvertJob,
        result: Result<Value, Value>,
        ctx: &mut Context<Self>,
    ) {
        if let (true, Backend::Store(store)) = (job.tries.frozen, &self.backend) {
            // Lifts the freeze: the other servers commit again at once
            // (else after `FREEZE_FOR`).
            let store = store.clone();
            let key = self
                .replica
                .keys
                .converting(&job.tries.space)
                .unwrap_or_default();
            actix::spawn(async move {
                let _ = store
                    .commit(Vec::new(), vec![crate::storage::WriteOp::delete(key)])
                    .await;
            });
        }
        if let (Some(staged), Backend::Store(store)) = (job.tries.staged, &self.backend) {
            let (store, keys, name) = (store.clone(), self.replica.keys.clone(), self.name.clone());
            actix::spawn(async move {
                if let Err(e) =
                    crate::actors::shared_convert::delete_space(&*store, &keys, &staged.space).await
                {
                    tracing::warn!(db = %name, space = %staged.space, error = %e,
                        "cannot delete the key space of an abandoned conversion");
                }
            });
        }
        self.reply_to(&job.session, SendReply { id: job.id, result });
        if self.holds.converted() {
            self.commits.release();
        }
        self.pump(ctx);
    }
}

/// The error of a conversion that lost too many races.
fn gave_up() -> OvsdbError {
    OvsdbError::new(
        "timed out",
        format!(
            "the conversion lost {MAX_CONVERT_ATTEMPTS} commit races against other servers; \
             the database was not converted: try again"
        ),
    )
}
