//! Where a conversion of a shared database stands (see
//! `replica::conversion` for the design): the converting server's attempts
//! against racing commits, and why a server holds its commits meanwhile.
//! Plain state the Database actor keeps and asks; it does the I/O.

use crate::replica::conversion::Staged;
use crate::storage::Revision;
use std::time::{Duration, Instant};

/// How long a server holds its commits for another server's conversion
/// to finish (it may have died).
pub const FREEZE_FOR: Duration = Duration::from_secs(10);

/// How many times a conversion is tried against racing commits.
pub const MAX_CONVERT_ATTEMPTS: u32 = 50;

/// How long a conversion that lost a race waits for the watch to bring
/// the commit that won before trying again anyway.
pub const CONVERT_CATCH_UP: Duration = Duration::from_secs(2);

/// The attempts of one conversion.
#[derive(Debug, Default)]
pub struct Attempts {
    /// Attempts that lost their flip to another commit.
    pub attempt: u32,
    /// What an earlier attempt staged.
    pub staged: Option<Staged>,
    /// The in-place Txn was too large for the store.
    pub force_staged: bool,
    /// The fence and key space the current attempt started from.
    pub fence_revision: Revision,
    /// The key space of the rows the current attempt converts.
    pub space: String,
    /// When the last attempt lost its race.
    pub lost_at: Option<Instant>,
    /// The other servers hold their commits (see `replica::conversion`).
    pub frozen: bool,
}

impl Attempts {
    /// Whether the next attempt must first freeze the other servers' commits:
    /// an earlier one lost a race, and nothing holds them now.
    pub fn needs_freeze(&self) -> bool {
        self.attempt > 0 && !self.frozen
    }

    /// An attempt (or its freeze) starts from the replica at
    /// `fence_revision`, its rows in `space`.
    pub fn start(&mut self, fence_revision: Revision, space: &str) {
        self.fence_revision = fence_revision;
        self.space = space.to_string();
    }

    /// The attempt (or its freeze) lost a race at `now`; `kept` is what it
    /// staged, kept for the next attempt. Whatever held the others did not
    /// hold: the next attempt freezes again. Returns whether to try again
    /// (else the conversion gives up).
    pub fn lost(&mut self, kept: Option<Staged>, now: Instant) -> bool {
        self.attempt += 1;
        self.frozen = false;
        if let Some(s) = kept {
            self.staged = Some(s);
        }
        if self.attempt >= MAX_CONVERT_ATTEMPTS {
            return false;
        }
        self.lost_at = Some(now);
        true
    }

    /// The attempt failed; `staged` is what it staged, if anything.
    /// Whatever was staged is deleted, unless the flip may have been
    /// committed.
    pub fn failed(&mut self, may_have_committed: bool, staged: Option<Staged>) {
        if may_have_committed {
            self.staged = None;
        } else if staged.is_some() {
            self.staged = staged;
        }
    }

    /// Whether to try again now that the replica's fence is at
    /// `fence_revision` and its rows in `space`: once the replica holds the
    /// commit that won (or after [`CONVERT_CATCH_UP`]), and never while it
    /// is to be read again.
    pub fn ready(
        &self,
        fence_revision: Revision,
        space: &str,
        reload_needed: bool,
        now: Instant,
    ) -> bool {
        let caught_up = fence_revision != self.fence_revision || space != self.space;
        let waited = self
            .lost_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        (caught_up || waited > CONVERT_CATCH_UP) && !reload_needed
    }
}

/// Why commits are held: this server's own conversion, or another server's
/// that is finishing (its freeze). Commits go on once neither holds them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Holds {
    /// A conversion of this server is under way.
    pub converting: bool,
    /// Another server's conversion is finishing.
    pub frozen: bool,
    /// Which freeze the timer ending it belongs to.
    pub epoch: u64,
}

impl Holds {
    /// Another server froze commits: returns the freeze's epoch, for the
    /// timer that ends it after [`FREEZE_FOR`].
    pub fn freeze(&mut self) -> u64 {
        self.epoch += 1;
        self.frozen = true;
        self.epoch
    }

    /// Whether the freeze of `epoch` is still on when its timer fires.
    pub fn freeze_expired(&self, epoch: u64) -> bool {
        self.epoch == epoch && self.frozen
    }

    /// The freeze ends: `None` if there was none, else whether commits go
    /// on (no conversion of this server holds them).
    pub fn thaw(&mut self) -> Option<bool> {
        if !self.frozen {
            return None;
        }
        self.frozen = false;
        Some(!self.converting)
    }

    /// This server's conversion ends: whether commits go on (no freeze
    /// holds them).
    pub fn converted(&mut self) -> bool {
        self.converting = false;
        !self.frozen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;
    use crate::schema::DatabaseSchema;
    use serde_json::json;
    use std::sync::Arc;

    fn staged(space: &str) -> Staged {
        let schema = DatabaseSchema::from_json(&json!({"name": "db", "tables": {
            "T": {"columns": {"n": {"type": "integer"}}}}}))
        .expect("schema");
        Staged {
            space: space.to_string(),
            db: Database::new(Arc::new(schema)),
        }
    }

    #[test]
    fn a_lost_race_freezes_the_next_attempt_and_keeps_what_it_staged() {
        let t0 = Instant::now();
        let mut a = Attempts::default();
        assert!(!a.needs_freeze());
        a.frozen = true;
        assert!(a.lost(Some(staged("db.x")), t0));
        assert_eq!((a.attempt, a.frozen, a.lost_at), (1, false, Some(t0)));
        assert!(a.needs_freeze());
        assert_eq!(a.staged.as_ref().map(|s| s.space.as_str()), Some("db.x"));
        // An in-place attempt, or one behind, keeps the earlier staging.
        assert!(a.lost(None, t0));
        assert_eq!(a.staged.as_ref().map(|s| s.space.as_str()), Some("db.x"));
        a.frozen = true;
        assert!(!a.needs_freeze());
    }

    #[test]
    fn gives_up_after_max_attempts_keeping_the_staging_to_delete() {
        let t0 = Instant::now();
        let mut a = Attempts::default();
        for _ in 1..MAX_CONVERT_ATTEMPTS {
            assert!(a.lost(None, t0));
        }
        a.lost_at = None;
        assert!(!a.lost(Some(staged("db.y")), t0));
        assert_eq!(a.attempt, MAX_CONVERT_ATTEMPTS);
        assert!(a.staged.is_some());
        assert_eq!(a.lost_at, None);
    }

    #[test]
    fn a_failure_keeps_the_staging_unless_the_flip_may_have_committed() {
        let mut a = Attempts {
            staged: Some(staged("db.old")),
            ..Attempts::default()
        };
        a.failed(false, None);
        assert_eq!(a.staged.as_ref().map(|s| s.space.as_str()), Some("db.old"));
        a.failed(false, Some(staged("db.new")));
        assert_eq!(a.staged.as_ref().map(|s| s.space.as_str()), Some("db.new"));
        a.failed(true, Some(staged("db.newer")));
        assert!(a.staged.is_none());
    }

    #[test]
    fn retries_once_caught_up_or_after_the_catch_up_time() {
        let t0 = Instant::now();
        let mut a = Attempts::default();
        a.start(7, "db");
        assert!(a.lost(None, t0));
        assert!(!a.ready(7, "db", false, t0));
        assert!(a.ready(8, "db", false, t0));
        assert!(a.ready(7, "db.z", false, t0));
        assert!(!a.ready(8, "db", true, t0));
        let later = t0 + CONVERT_CATCH_UP + Duration::from_millis(1);
        assert!(a.ready(7, "db", false, later));
        assert!(!a.ready(7, "db", true, later));
        assert!(!a.ready(7, "db", false, t0 + CONVERT_CATCH_UP));
    }

    #[test]
    fn commits_go_on_once_neither_a_freeze_nor_a_conversion_holds_them() {
        let mut h = Holds::default();
        assert_eq!(h.thaw(), None);
        let e1 = h.freeze();
        let e2 = h.freeze();
        assert!(!h.freeze_expired(e1));
        assert!(h.freeze_expired(e2));
        h.converting = true;
        assert_eq!(h.thaw(), Some(false));
        assert!(!h.freeze_expired(e2));
        assert!(h.converted());
        h.converting = true;
        h.freeze();
        assert!(!h.converted());
        assert_eq!(h.thaw(), Some(true));
    }
}
