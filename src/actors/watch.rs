//! The Watch actor (DESIGN.md, Actors): one per watch of a shared store's
//! database. It reads the store's watch stream and decodes every batch into
//! rows on its own arbiter (thread), so that parsing the other servers'
//! commits does not take the database's thread; the Database actor gets the
//! decoded rows and only pairs them with the rows it holds.
//!
//! One exception: while this server's own group is in flight, a batch is
//! most likely that group's echo, which the database skips; such batches
//! go to it undecoded ([`Delivered::Raw`]) and are decoded there only if
//! they prove to be another server's (decoding every echo was a fifth of
//! the server's instructions per etcd commit).
//!
//! It carries no policy: when the stream ends or fails (compaction, store
//! gone, an undecodable row), it says so once and stops; the Database
//! actor decides whether to watch again or to reload.

use crate::replica::{decode_watch_batch, DecodedBatch};
use crate::schema::DatabaseSchema;
use crate::storage::keys::Keys;
use crate::storage::{Revision, Storage, StorageError, WatchBatch};
use actix::prelude::*;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One commit of the watched database.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchDelivered {
    /// Which watch of the database it comes from (older ones are ignored).
    pub epoch: u64,
    /// The commit.
    pub batch: Delivered,
}

/// A commit as the watch delivers it.
pub enum Delivered {
    /// Decoded by the watch.
    Decoded(DecodedBatch),
    /// As the store sent it: it came while this server's group was in
    /// flight, so it is most likely that group's echo, which is never
    /// decoded; the database decodes it if it is not.
    Raw(WatchBatch),
}

impl Delivered {
    /// The commit's revision.
    pub fn revision(&self) -> Revision {
        match self {
            Delivered::Decoded(b) => b.revision,
            Delivered::Raw(b) => b.revision,
        }
    }
}

/// The watch is over.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchEnded {
    /// Which watch of the database it comes from.
    pub epoch: u64,
    /// Why; `None` when the stream just ended.
    pub why: Option<WatchError>,
}

/// Why a watch ended.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WatchError {
    /// The store compacted revisions this watch had not read: reload.
    #[error("the store compacted history this server had not applied yet (oldest available: {0})")]
    Compacted(Revision),
    /// A commit's row does not decode: reload (which skips such rows).
    #[error("cannot decode a commit (revision {revision}) from the store: {message}")]
    Undecodable {
        /// The commit.
        revision: Revision,
        /// What is wrong with it.
        message: String,
    },
    /// The watch could not be opened (the store is unreachable): try again later.
    #[error("cannot watch the store: {0}")]
    Open(StorageError),
    /// The stream failed (the store went away): watch again from the last revision.
    #[error("store watch failed: {0}")]
    Broken(StorageError),
}

/// Stops a watch (the database reloads, or watches again from elsewhere).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopWatch;

/// What a watch reads and where it reports.
pub struct WatchConfig {
    /// The store.
    pub store: Arc<dyn Storage>,
    /// The database's key prefix.
    pub prefix: Bytes,
    /// The first revision to read.
    pub from: Revision,
    /// The key layout.
    pub keys: Keys,
    /// The database's name.
    pub name: String,
    /// The key space of its rows.
    pub space: String,
    /// Its schema, to decode rows.
    pub schema: Arc<DatabaseSchema>,
    /// This watch's number.
    pub epoch: u64,
    /// Where decoded commits go.
    pub delivered: Recipient<WatchDelivered>,
    /// Where the end goes.
    pub ended: Recipient<WatchEnded>,
    /// The revisions of this server's own commits that the database applied
    /// when the store said yes, oldest first: their echoes are skipped
    /// without being decoded.
    pub own: OwnCommits,
}

/// The revisions of a server's own commits, already applied, shared by the
/// Database actor (which adds them, and asks about an echo that reached the
/// watch before the store's answer reached the database) and its watch
/// (which skips their echoes). Bounded: the oldest are forgotten.
#[derive(Debug, Clone, Default)]
pub struct OwnCommits(Arc<Mutex<VecDeque<Revision>>>, Arc<AtomicBool>);

impl OwnCommits {
    /// The most remembered.
    const MAX: usize = 4096;

    /// A commit of this server at `revision` was applied.
    pub fn add(&self, revision: Revision) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.push_back(revision);
        while q.len() > Self::MAX {
            q.pop_front();
        }
    }

    /// The database sent a group to the store (`true`), or heard back
    /// (`false`).
    pub fn set_in_flight(&self, in_flight: bool) {
        self.1.store(in_flight, Ordering::SeqCst);
    }

    /// Whether a group of this server is in flight: a batch now is most
    /// likely its echo.
    pub fn in_flight(&self) -> bool {
        self.1.load(Ordering::SeqCst)
    }

    /// The watch's question: whether the batch at `revision` is such a
    /// commit's echo (then forgotten). Older revisions stay: their batches
    /// may have gone to the database before their commits were answered,
    /// and it asks about them later (it holds batches while a group is in
    /// flight).
    pub fn skip_echo(&self, revision: Revision) -> bool {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match q.binary_search(&revision) {
            Ok(i) => q.remove(i).is_some(),
            Err(_) => false,
        }
    }

    /// The database's question: whether the batch at `revision` is such a
    /// commit's echo; forgets the revisions before it (the database sees
    /// every batch the watch did not skip, in order).
    pub fn take_echo(&self, revision: Revision) -> bool {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        while q.front().is_some_and(|r| *r < revision) {
            q.pop_front();
        }
        if q.front() == Some(&revision) {
            q.pop_front();
            return true;
        }
        false
    }
}

/// The actor. See the module documentation.
pub struct WatchActor {
    config: WatchConfig,
    /// The end was reported: report nothing more.
    done: bool,
}

impl WatchActor {
    /// Starts a watch on `arbiter`.
    pub fn start_on(arbiter: &ArbiterHandle, config: WatchConfig) -> Addr<WatchActor> {
        WatchActor::start_in_arbiter(arbiter, move |_| WatchActor {
            config,
            done: false,
        })
    }

    /// Reports the end once and stops.
    fn end(&mut self, why: Option<WatchError>, ctx: &mut Context<Self>) {
        if !self.done {
            self.done = true;
            self.config.ended.do_send(WatchEnded {
                epoch: self.config.epoch,
                why,
            });
        }
        ctx.stop();
    }
}

impl Actor for WatchActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let store = self.config.store.clone();
        let prefix = self.config.prefix.clone();
        let from = self.config.from;
        let fut = async move { store.watch_without_prev(&prefix, from).await };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok(stream) => {
                ctx.add_stream(stream);
            }
            Err(StorageError::Compacted { compacted }) => {
                act.end(Some(WatchError::Compacted(compacted)), ctx)
            }
            Err(e) => act.end(Some(WatchError::Open(e)), ctx),
        }));
    }
}

impl StreamHandler<Result<WatchBatch, StorageError>> for WatchActor {
    fn handle(&mut self, item: Result<WatchBatch, StorageError>, ctx: &mut Context<Self>) {
        if self.done {
            return;
        }
        let batch = match item {
            Ok(b) => b,
            Err(StorageError::Compacted { compacted }) => {
                return self.end(Some(WatchError::Compacted(compacted)), ctx);
            }
            Err(e) => return self.end(Some(WatchError::Broken(e)), ctx),
        };
        let c = &self.config;
        if c.own.skip_echo(batch.revision) {
            // The echo of a commit this server made and applied already.
            return;
        }
        if c.own.in_flight() {
            return c.delivered.do_send(WatchDelivered {
                epoch: c.epoch,
                batch: Delivered::Raw(batch),
            });
        }
        match decode_watch_batch(&c.schema, &c.keys, &c.name, &c.space, &batch) {
            Ok(decoded) => c.delivered.do_send(WatchDelivered {
                epoch: c.epoch,
                batch: Delivered::Decoded(decoded),
            }),
            Err(e) => {
                let why = WatchError::Undecodable {
                    revision: batch.revision,
                    message: e.to_string(),
                };
                self.end(Some(why), ctx)
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.end(None, ctx);
    }
}

impl Handler<StopWatch> for WatchActor {
    type Result = ();
    fn handle(&mut self, _: StopWatch, ctx: &mut Context<Self>) {
        self.done = true;
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::OwnCommits;

    #[test]
    fn the_watch_skipping_an_echo_keeps_older_ones_the_database_asks_about() {
        let own = OwnCommits::default();
        // 411's batch went to the database before 411 was answered; 412 was
        // answered before its batch reached the watch.
        own.add(411);
        own.add(412);
        assert!(own.skip_echo(412));
        assert!(!own.skip_echo(412), "each echo once");
        assert!(own.take_echo(411), "still known to the database");
        assert!(!own.skip_echo(413));
    }

    #[test]
    fn only_the_echoes_of_own_applied_commits_are_skipped() {
        let own = OwnCommits::default();
        own.add(5);
        own.add(7);
        assert!(!own.take_echo(4), "another server's commit");
        assert!(own.take_echo(5));
        assert!(!own.take_echo(6));
        assert!(own.take_echo(7));
        assert!(!own.take_echo(7), "each echo once");
        own.add(9);
        own.add(12);
        // The watch went past 9 (a reload): it is forgotten, 12 still skipped.
        assert!(!own.take_echo(10));
        assert!(own.take_echo(12));
    }
}
