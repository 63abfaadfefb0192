//! Answering commits of a local store in order, each once its record is as
//! durable as it asked (group commit).
//!
//! A commit on a local store is applied and written at once; if it must be
//! durable (`"durable": true`, or `--fsync`), its reply and monitor updates
//! wait for an fsync, and so does everything answered after it, so that
//! clients see commits in commit order and nobody sees a durable commit
//! before it is durable. One fsync runs at a time; commits that need one
//! while it runs share the next (it covers every record written before it
//! started). Pure: the Database actor feeds it and carries out its effects.

use std::collections::VecDeque;

/// What the caller must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect<T, E> {
    /// Answer this commit (send its monitor updates, then its reply); with
    /// an error when the sync it waited for failed.
    Release(T, Option<E>),
    /// Start one sync covering every record written so far; report its
    /// outcome with [`ReleaseQueue::synced`].
    StartSync,
}

/// Commits waiting to be answered, oldest first.
#[derive(Debug)]
pub struct ReleaseQueue<T> {
    /// Each held commit and whether it waits for a sync itself.
    held: VecDeque<(T, bool)>,
    /// While a sync runs: how many of `held` it covers.
    syncing: Option<usize>,
}

impl<T> Default for ReleaseQueue<T> {
    fn default() -> Self {
        ReleaseQueue {
            held: VecDeque::new(),
            syncing: None,
        }
    }
}

impl<T> ReleaseQueue<T> {
    /// Whether nothing is held (a read of the database then sees only what
    /// was answered).
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// How many commits are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// A commit was applied and written; `needs_sync`: its record must be
    /// durable before it is answered. At most one effect: it is answered at
    /// once, or the first sync starts, or it waits.
    pub fn committed<E>(&mut self, item: T, needs_sync: bool) -> Option<Effect<T, E>> {
        if self.held.is_empty() && !needs_sync {
            return Some(Effect::Release(item, None));
        }
        self.held.push_back((item, needs_sync));
        if needs_sync && self.syncing.is_none() {
            self.syncing = Some(self.held.len());
            return Some(Effect::StartSync);
        }
        None
    }

    /// The running sync finished: answers what it covered and what follows
    /// without needing a sync itself, and starts the next sync if a held
    /// commit still needs one.
    pub fn synced<E: Clone>(&mut self, result: Result<(), E>) -> Vec<Effect<T, E>> {
        let covered = self.syncing.take().unwrap_or(0);
        let mut out = Vec::new();
        for _ in 0..covered {
            if let Some((item, needed)) = self.held.pop_front() {
                let err = match (&result, needed) {
                    (Err(e), true) => Some(e.clone()),
                    _ => None,
                };
                out.push(Effect::Release(item, err));
            }
        }
        while self.held.front().is_some_and(|(_, needed)| !needed) {
            if let Some((item, _)) = self.held.pop_front() {
                out.push(Effect::Release(item, None));
            }
        }
        if !self.held.is_empty() {
            self.syncing = Some(self.held.len());
            out.push(Effect::StartSync);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Q = ReleaseQueue<u32>;
    type Eff = Effect<u32, &'static str>;

    fn released(effects: &[Eff]) -> Vec<u32> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Release(i, _) => Some(*i),
                Effect::StartSync => None,
            })
            .collect()
    }

    fn syncs(effects: &[Eff]) -> usize {
        effects.iter().filter(|e| **e == Effect::StartSync).count()
    }

    #[test]
    fn commits_without_sync_are_answered_at_once() {
        let mut q = Q::default();
        for i in 0..3 {
            let e: Vec<Eff> = q.committed(i, false).into_iter().collect();
            assert_eq!(e, vec![Effect::Release(i, None)]);
        }
        assert!(q.is_empty());
    }

    #[test]
    fn commits_waiting_together_share_one_sync_and_keep_their_order() {
        let mut q = Q::default();
        let e: Vec<Eff> = q.committed(1, true).into_iter().collect();
        assert_eq!(e, vec![Effect::StartSync]);
        // While the first sync runs: a plain commit and two durable ones.
        let mut later: Vec<Eff> = q.committed(2, false).into_iter().collect();
        later.extend(q.committed(3, true));
        later.extend(q.committed(4, true));
        assert!(later.is_empty(), "held behind the sync: {later:?}");
        let e = q.synced(Ok(()));
        // 1 is answered; 2 needs no sync but comes after nothing unsynced;
        // 3 and 4 need the next sync, which covers both.
        assert_eq!(released(&e), vec![1, 2]);
        assert_eq!(syncs(&e), 1);
        let e = q.synced(Ok(()));
        assert_eq!(released(&e), vec![3, 4]);
        assert_eq!(syncs(&e), 0);
        assert!(q.is_empty());
    }

    #[test]
    fn a_plain_commit_after_a_durable_one_waits_for_it() {
        let mut q = Q::default();
        let _: Option<Eff> = q.committed(1, true);
        let e: Vec<Eff> = q.committed(2, false).into_iter().collect();
        assert!(e.is_empty());
        let e = q.synced(Ok(()));
        assert_eq!(released(&e), vec![1, 2]);
        assert_eq!(syncs(&e), 0);
    }

    #[test]
    fn a_failed_sync_is_reported_to_the_commits_that_needed_it() {
        let mut q = Q::default();
        let _: Option<Eff> = q.committed(1, true);
        let _: Option<Eff> = q.committed(2, false);
        let e = q.synced(Err("disk full"));
        assert_eq!(
            e,
            vec![
                Effect::Release(1, Some("disk full")),
                Effect::Release(2, None)
            ]
        );
    }

    #[test]
    fn random_sequences_answer_everything_in_order() {
        // A tiny deterministic generator: every commit is answered exactly
        // once, in commit order, and never before a sync that covers it.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut q = Q::default();
            let mut answered = Vec::new();
            let mut running = false;
            let mut synced_upto = 0u32; // commits < this are durable
            let mut needs: Vec<bool> = Vec::new();
            let mut written = 0u32;
            let mut sync_covers = 0u32;
            for _ in 0..50 {
                let effects: Vec<Eff> = if next() % 3 == 0 && running {
                    running = false;
                    synced_upto = sync_covers;
                    q.synced(Ok(()))
                } else {
                    let d = next() % 2 == 0;
                    needs.push(d);
                    written += 1;
                    q.committed(written - 1, d).into_iter().collect()
                };
                for e in effects {
                    match e {
                        Effect::Release(i, _) => {
                            if needs[i as usize] {
                                assert!(i < synced_upto, "{i} answered before its sync");
                            }
                            answered.push(i);
                        }
                        Effect::StartSync => {
                            assert!(!running, "two syncs at once");
                            running = true;
                            sync_covers = written;
                        }
                    }
                }
            }
            while running {
                running = false;
                synced_upto = sync_covers;
                for e in q.synced::<&str>(Ok(())) {
                    match e {
                        Effect::Release(i, _) => answered.push(i),
                        Effect::StartSync => {
                            running = true;
                            sync_covers = written;
                        }
                    }
                }
            }
            let _ = synced_upto;
            assert_eq!(answered, (0..written).collect::<Vec<_>>());
        }
    }
}
