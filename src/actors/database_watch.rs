//! The Database actor's side of a shared store's watch: the commits it
//! brings (other servers', or echoes of this server's own, skipped), the
//! reloads when it lost history or brought what does not decode, and the
//! store's liveness.

use crate::actors::database::{DatabaseActor, StoreLiveness};
use crate::actors::watch::{Delivered, WatchDelivered, WatchEnded, WatchError};
use crate::replica::decode_watch_batch;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

impl Handler<WatchDelivered> for DatabaseActor {
    type Result = ();
    fn handle(&mut self, m: WatchDelivered, ctx: &mut Context<Self>) {
        if m.epoch != self.watch_epoch {
            return;
        }
        if self.commits.in_flight().is_some() {
            // Only the store's answer says whether this is the echo of the
            // group in flight (skipped) or another server's commit (which
            // fails that group's fence): taking it now would undo the
            // group's speculation and apply the same changes again, and
            // leave the group's writers unanswered for the next gather.
            self.watch_held.push((m.epoch, m.batch));
            return;
        }
        if self.apply_watch_batch(m.batch, ctx) {
            self.pump(ctx);
        }
    }
}

impl DatabaseActor {
    /// Applies the watch batches held while a group was in flight, in
    /// order, now that the store answered it (its own echo is skipped).
    pub(super) fn release_watch_held(&mut self, ctx: &mut Context<Self>) {
        for (epoch, batch) in std::mem::take(&mut self.watch_held) {
            // A reload on the way makes the rest stale.
            if epoch == self.watch_epoch {
                self.apply_watch_batch(batch, ctx);
            }
        }
    }

    /// Applies one commit from the watch; `false` when it was skipped or
    /// started a reload (nothing new to run transactions on).
    fn apply_watch_batch(&mut self, batch: Delivered, ctx: &mut Context<Self>) -> bool {
        let revision = batch.revision();
        if revision <= self.replica.revision {
            if self.own_commits.take_echo(revision) {
                // Our own commit's echo (applied when the store answered
                // it), which reached the watch before the answer did.
                return false;
            }
            // A commit below one of ours that the fence did not order (one
            // written without it, by something other than oxsdb): the
            // replica went past it; read the database again.
            tracing::warn!(db = %self.name, revision, applied = self.replica.revision,
                "the store holds a commit this server went past (written without the fence); reloading");
            self.reload(ctx);
            return false;
        }
        let batch = match batch {
            Delivered::Decoded(b) => b,
            // Not our echo after all: another server's commit.
            Delivered::Raw(raw) => {
                let r = &self.replica;
                match decode_watch_batch(&r.db.schema, &r.keys, &r.name, &r.space, &raw) {
                    Ok(b) => b,
                    Err(e) => {
                        // As when the watch meets what it cannot decode
                        // (see the handling of `WatchError::Undecodable`).
                        tracing::error!(db = %self.name, revision, error = %e,
                            "cannot decode a commit from the store; reloading the database from the store");
                        self.metrics.store_error("watch", "undecodable");
                        self.reload(ctx);
                        return false;
                    }
                }
            }
        };
        if batch.converted {
            // Another server converted the database: its new schema and
            // rows are read from the store. Our commit in flight, if any,
            // fails its fence and runs again on the new schema.
            self.reload(ctx);
            return false;
        }
        // Another server's commit (or ours, delivered before the store
        // answered it): paired with exactly the store's state, so the
        // speculative changes come out first. If it is another server's, our
        // commit in flight fails its fence and re-runs.
        self.undo_speculation();
        let converting = batch.converting;
        let changes = Arc::new(self.replica.changes_of(batch));
        self.watch_from = revision + 1;
        if changes.is_empty() {
            self.replica.revision = revision;
        } else {
            self.commit_applied(revision, changes);
        }
        if let Some(on) = converting {
            if on {
                // The freeze moved the fence (outside the watched prefix).
                self.replica.fence_revision = revision;
            }
            // While converting, a freeze is this server's own (its echo
            // arriving before the store's answer): nothing to hold.
            if !self.holds.converting {
                self.hold_for_conversion(on, ctx);
            }
        }
        self.resume_convert(ctx);
        if !self.blocked.is_empty() {
            self.rerun_blocked(ctx);
        }
        true
    }
}

impl Handler<WatchEnded> for DatabaseActor {
    type Result = ();
    fn handle(&mut self, m: WatchEnded, ctx: &mut Context<Self>) {
        if m.epoch != self.watch_epoch {
            return;
        }
        self.watch = None;
        let failed = match &m.why {
            Some(WatchError::Compacted(_)) => Some("compacted"),
            Some(WatchError::Undecodable { .. }) => Some("undecodable"),
            Some(WatchError::Open(e)) => Some(e.kind()),
            Some(WatchError::Broken(_)) => Some("broken"),
            None => None,
        };
        if let Some(kind) = failed {
            self.metrics.store_error("watch", kind);
        }
        match m.why {
            Some(WatchError::Compacted(compacted)) => {
                tracing::warn!(db = %self.name, from = self.watch_from, compacted,
                    "the store compacted history this server had not applied yet; reloading");
                self.reload(ctx);
            }
            Some(WatchError::Undecodable { revision, message }) => {
                // Skipping it would leave the replica behind the store (its
                // other rows, and the fence the commit moved, so that every
                // later commit of ours would fail its compare): read the
                // database again instead, which leaves out the rows that
                // don't decode.
                tracing::error!(db = %self.name, revision, error = %message,
                    "cannot decode a commit from the store; reloading the database from the store");
                self.reload(ctx);
            }
            Some(WatchError::Open(e)) => {
                tracing::debug!(db = %self.name, error = %e, "cannot watch the store; retrying in 1 s");
                ctx.run_later(Duration::from_secs(1), |act, ctx| act.start_watch(ctx));
            }
            Some(WatchError::Broken(e)) => {
                tracing::warn!(db = %self.name, error = %e, from = self.watch_from, "store watch failed; re-watching");
                ctx.run_later(Duration::from_millis(200), |act, ctx| act.start_watch(ctx));
            }
            None if self.reload_needed => self.open(ctx),
            None => {
                tracing::warn!(db = %self.name, from = self.watch_from, "store watch ended; re-watching");
                ctx.run_later(Duration::from_millis(200), |act, ctx| act.start_watch(ctx));
            }
        }
    }
}

impl Handler<StoreLiveness> for DatabaseActor {
    type Result = ();
    fn handle(&mut self, m: StoreLiveness, ctx: &mut Context<Self>) {
        if self.connected != m.0 {
            self.connected = m.0;
            self.report_status();
            // Commits held for a reload go on (and fail) without the store.
            self.pump(ctx);
        }
    }
}
