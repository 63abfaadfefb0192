//! The Database actor's commits to a local log store (memory, file):
//! applied in place and appended at once, then answered in commit order
//! once the syncs they wait for are done (see `ReleaseQueue`).

use crate::actors::database::{DatabaseActor, Pending};
use crate::db::changes::ChangeSet;
use crate::db::op_result::OpResult;
use crate::error::OvsdbError;
use crate::replica::release_queue::Effect;
use crate::storage::log::{LogError, SyncTicket};
use crate::storage::Revision;
use actix::prelude::*;
use std::sync::Arc;

/// A commit of a local store (or a read behind one) waiting for its turn
/// to be answered (see `ReleaseQueue`).
pub(super) struct Release {
    txn: Pending,
    results: Vec<OpResult>,
    /// The commit's revision and changes; `None` for a read.
    commit: Option<(Revision, Arc<ChangeSet>)>,
}

impl DatabaseActor {
    /// Local stores: what became of appending a transaction's changes
    /// (already applied in place) to the `kind` log: on failure they are
    /// taken out again and the transaction fails; else it is answered in
    /// commit order.
    pub(super) fn appended(
        &mut self,
        txn: Pending,
        results: Vec<OpResult>,
        changes: Arc<ChangeSet>,
        appended: Result<Option<SyncTicket>, LogError>,
        kind: &'static str,
        ctx: &mut Context<Self>,
    ) {
        let ticket = match appended {
            Ok(t) => t,
            Err(e) => {
                self.replica.db.apply(&changes.inverse());
                let mut results = results;
                results.push(OpResult::error(&OvsdbError::new(
                    "I/O error",
                    format!("cannot write the transaction to the {kind} store: {e}"),
                )));
                self.finish(txn, results);
                return;
            }
        };
        let rev = self.replica.revision + 1;
        self.replica.revision = rev;
        self.history.push(rev, changes.clone());
        let needs_sync = ticket.is_some();
        if ticket.is_some() {
            self.sync_ticket = ticket;
        }
        self.answer(txn, results, Some((rev, changes)), needs_sync, ctx);
        // Waits re-run on the new contents, in this same pump.
        self.requeue_blocked();
    }

    /// Local stores: answers a transaction (with its commit, if it wrote)
    /// in commit order, after the sync it or an earlier commit waits for.
    pub(super) fn answer(
        &mut self,
        txn: Pending,
        results: Vec<OpResult>,
        commit: Option<(Revision, Arc<ChangeSet>)>,
        needs_sync: bool,
        ctx: &mut Context<Self>,
    ) {
        let effects = self.release.committed(
            Release {
                txn,
                results,
                commit,
            },
            needs_sync,
        );
        self.carry_out(effects, ctx);
    }

    /// Carries out the release queue's effects.
    fn carry_out(
        &mut self,
        effects: impl IntoIterator<Item = Effect<Release, LogError>>,
        ctx: &mut Context<Self>,
    ) {
        for e in effects {
            match e {
                Effect::Release(r, err) => {
                    let mut results = r.results;
                    if let Some((rev, changes)) = r.commit {
                        self.notify_monitors(rev, changes);
                    }
                    if let Some(e) = err {
                        results.push(OpResult::error(&OvsdbError::new(
                            "I/O error",
                            format!(
                                "the transaction was committed but could not be made durable: {e}"
                            ),
                        )));
                    }
                    self.finish(r.txn, results);
                }
                Effect::StartSync => self.start_sync(ctx),
            }
        }
        self.report_status();
    }

    /// Runs the newest sync ticket off this thread; what it covers is
    /// answered when it returns.
    fn start_sync(&mut self, ctx: &mut Context<Self>) {
        let ticket = self.sync_ticket.take();
        let fut = async move {
            match ticket {
                None => Ok(()),
                Some(t) => tokio::task::spawn_blocking(t)
                    .await
                    .unwrap_or_else(|e| Err(LogError(format!("the sync task failed: {e}")))),
            }
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            let effects = act.release.synced(res);
            act.carry_out(effects, ctx);
            act.pump(ctx);
        }));
    }
}
