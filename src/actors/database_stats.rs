//! The Database actor's diagnostics: row and revision counts, the
//! metrics' sample, storage health, and compaction on request.

use crate::actors::database::{
    Backend, Compact, DatabaseActor, DbSample, GetStorageHealth, Sample, Stats, StorageHealth,
};
use actix::prelude::*;

impl Handler<Sample> for DatabaseActor {
    type Result = MessageResult<Sample>;
    fn handle(&mut self, _: Sample, _: &mut Context<Self>) -> Self::Result {
        MessageResult(DbSample {
            rows: self.replica.db.n_rows(),
            monitors: self.monitors.len(),
            connected: self.connected,
            queued: self.commits.queued(),
        })
    }
}

impl Handler<Stats> for DatabaseActor {
    type Result = MessageResult<Stats>;
    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.replica.db.n_rows(), self.replica.revision))
    }
}

impl Handler<Compact> for DatabaseActor {
    type Result = Result<bool, String>;
    fn handle(&mut self, _: Compact, _: &mut Context<Self>) -> Self::Result {
        match &mut self.backend {
            Backend::Log(log) => {
                tracing::info!(db = %self.name, "compacting database by user request");
                log.compact(&self.replica.db).map_err(|e| e.to_string())
            }
            Backend::Store(_) => Ok(false),
        }
    }
}

impl Handler<GetStorageHealth> for DatabaseActor {
    type Result = MessageResult<GetStorageHealth>;
    fn handle(&mut self, _: GetStorageHealth, _: &mut Context<Self>) -> Self::Result {
        let (kind, unreachable) = match &self.backend {
            Backend::Log(log) => (log.kind(), None),
            Backend::Store(s) => (s.kind(), s.unreachable_reason()),
        };
        let error = if !self.connected {
            Some(unreachable.unwrap_or_else(|| format!("the {kind} store is unreachable")))
        } else if !self.loaded {
            Some(
                self.load_error
                    .clone()
                    .unwrap_or_else(|| "the database is not loaded yet".into()),
            )
        } else {
            None
        };
        MessageResult(StorageHealth {
            error,
            loaded: self.loaded,
            connected: self.connected,
            revision: self.replica.revision,
            cid: self.replica.cluster_id,
            kind,
        })
    }
}
