//! The Database actor's asserted locks on a shared store: a transaction
//! that asserts a lock commits only while the lock's key still names its
//! session as owner (the key is part of the commit's compare), and a
//! failed compare is told apart from a lost commit race.

use crate::actors::database::Backend;
use crate::actors::database::DatabaseActor;
use crate::actors::SessionHandle;
use crate::error::OvsdbError;
use actix::prelude::*;
use bytes::Bytes;

impl DatabaseActor {
    /// The lock keys, and the values naming `session` as their owner, that
    /// a commit asserting the locks `asserted` compares.
    pub(super) fn asserted_locks(
        &self,
        session: Option<&SessionHandle>,
        asserted: &[String],
    ) -> Vec<(String, Bytes, Bytes)> {
        let mut locks = Vec::new();
        if let Some(s) = session {
            for name in asserted {
                if let Ok(key) = self.replica.keys.lock(name) {
                    let value = crate::actors::shared_locks::owner_value(self.server_id, s.id);
                    locks.push((name.clone(), key, Bytes::from(value)));
                }
            }
        }
        locks
    }

    /// The group in flight, which asserted locks, failed its compare: a
    /// lock lost to another server fails it with `not owner`, as the
    /// engine would have said; else it lost a commit race.
    pub(super) fn recheck_asserted_locks(&mut self, ctx: &mut Context<Self>) {
        let Backend::Store(store) = &self.backend else {
            return;
        };
        let store = store.clone();
        let asserted = self
            .commits
            .in_flight()
            .map(|f| f.asserted.clone())
            .unwrap_or_default();
        let fut = async move {
            for (name, key, value) in asserted {
                match store.get(&key).await {
                    Ok(Some(kv)) if kv.value == value => {}
                    Ok(_) => return Some(name),
                    Err(_) => return None,
                }
            }
            None
        };
        ctx.spawn(fut.into_actor(self).map(|lost, act, ctx| match lost {
            Some(name) => {
                let e = OvsdbError::new("not owner", format!("Asserted lock {name} not held."));
                let answers = act.commits.fail_all(e.to_json());
                act.finish_all(answers);
                act.pump(ctx);
            }
            None => {
                act.commits.clear_asserted();
                act.committed(
                    Ok(crate::storage::CommitResult {
                        succeeded: false,
                        revision: 0,
                    }),
                    ctx,
                );
            }
        }));
    }
}
