//! The Database actor's blocked transactions (`wait` until a condition
//! holds): parked until the database changes or their timeout, then
//! executed again; `cancel` fails one with "canceled".

use crate::actors::database::{CancelTxn, DatabaseActor, Pending};
use crate::actors::monitor::Outgoing;
use crate::actors::{SendReply, TxnBlocked};
use actix::prelude::*;
use serde_json::json;
use std::time::{Duration, Instant};

impl DatabaseActor {
    /// Parks a blocked transaction until the database changes, or until
    /// its timeout (`timeout_ms` after it arrived), and tells its session,
    /// which may go on reading requests.
    pub(super) fn park(&mut self, p: Pending, timeout_ms: Option<i64>, ctx: &mut Context<Self>) {
        let deadline = timeout_ms.map(|ms| p.received + Duration::from_millis(ms.max(0) as u64));
        if let Some(d) = deadline {
            ctx.run_later(d.saturating_duration_since(Instant::now()), |act, ctx| {
                act.rerun_blocked(ctx)
            });
        }
        if let Some(s) = &p.session {
            self.send_after(s, Outgoing::Blocked(TxnBlocked { id: p.id.clone() }));
        }
        self.blocked.push((p, deadline));
    }

    /// Blocked `wait`s go back to the queue, to be executed on the new contents.
    pub(super) fn requeue_blocked(&mut self) {
        for (p, _) in std::mem::take(&mut self.blocked) {
            self.commits.push(p);
        }
    }

    /// Blocked `wait`s are executed again, on the database as it is now.
    pub(super) fn rerun_blocked(&mut self, ctx: &mut Context<Self>) {
        self.requeue_blocked();
        self.pump(ctx);
    }
}

impl Handler<CancelTxn> for DatabaseActor {
    type Result = ();
    fn handle(&mut self, m: CancelTxn, _: &mut Context<Self>) {
        let mut i = 0;
        while i < self.blocked.len() {
            let p = &self.blocked[i].0;
            if p.session.as_ref().map(|s| s.id) == Some(m.session) && p.id == m.id {
                let (p, _) = self.blocked.remove(i);
                if let Some(s) = p.session {
                    self.reply_to(
                        &s,
                        SendReply {
                            id: p.id,
                            result: Err(json!("canceled")),
                        },
                    );
                }
            } else {
                i += 1;
            }
        }
    }
}
