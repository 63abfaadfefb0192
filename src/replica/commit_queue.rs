//! The commit queue of a shared store (DESIGN.md, "Commit protocol on
//! etcd"): one fenced group in flight per database; the transactions that
//! arrive meanwhile are executed one on top of the other (and on top of the
//! group in flight) into the next group, the replica holding their changes
//! speculatively, and that group leaves the moment the one in flight
//! returns. When the group in flight fails, the group being built is undone
//! with it and its members queued again behind the failed group's.
//!
//! This is the queue's state and its decisions, with no actors and no I/O:
//! which transaction may join the group being built, what a store outcome
//! does to the group in flight (answer it, undo and retry it after a lost
//! race, split it when it is over the store's limits, fail its writers when
//! the store is gone), and when a transaction has lost too many races. The
//! Database actor executes transactions, talks to the store and carries out
//! what these methods return.

use crate::db::changes::ChangeSet;
use crate::db::op_result::OpResult;
use bytes::Bytes;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// At most this many transactions share one store commit.
pub const GROUP_MAX_TXNS: usize = 64;
/// A commit group stops growing at this many changed rows, so that with the
/// fence it stays within etcd's default `--max-txn-ops` (128).
pub const GROUP_MAX_ROWS: usize = 100;
/// How often a transaction is re-executed after losing a commit race before failing.
pub const MAX_COMMIT_RETRIES: u32 = 64;

/// A lock asserted by a commit in a shared store: its name, its key, and the
/// owner value the commit compares the key with.
pub type Asserted = (String, Bytes, Bytes);

/// A transaction waiting to be executed, with the races it has lost.
#[derive(Debug)]
pub struct Queued<T> {
    /// The transaction.
    pub txn: T,
    /// How many times it was executed and lost its commit race.
    pub retries: u32,
}

/// A transaction of a group: executed, waiting for the group's commit.
#[derive(Debug)]
pub struct Member<T> {
    /// The transaction.
    pub txn: Queued<T>,
    /// Its operations' results.
    pub results: Vec<OpResult>,
    /// Whether it changed anything (a read only waits for the writes before it).
    pub writes: bool,
}

/// The group being built.
#[derive(Debug)]
struct Building<T> {
    members: Vec<Member<T>>,
    /// Each writing member's changes, in order.
    changes: Vec<Arc<ChangeSet>>,
    rows: usize,
    durable: bool,
    comment: Option<String>,
    asserted: Vec<Asserted>,
    /// A member that must commit alone (comment, asserted locks) is in.
    solo: bool,
}

impl<T> Default for Building<T> {
    fn default() -> Self {
        Building {
            members: Vec::new(),
            changes: Vec::new(),
            rows: 0,
            durable: false,
            comment: None,
            asserted: Vec::new(),
            solo: false,
        }
    }
}

/// The group in flight: its members in order and what they changed together.
#[derive(Debug)]
pub struct InFlight<T> {
    /// The transactions, in execution order.
    pub members: Vec<Member<T>>,
    /// The members' changes merged: what the commit writes.
    pub changes: Arc<ChangeSet>,
    /// Whether the commit is `durable`.
    pub durable: bool,
    /// The comment the commit records.
    pub comment: Option<String>,
    /// Locks the commit asserts.
    pub asserted: Vec<Asserted>,
    /// Whether the replica holds `changes` ahead of the store.
    pub speculative: bool,
    /// When it was sealed (the store round trip starts).
    pub started: Instant,
}

/// Why the store refused or failed a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Over the store's request limits.
    TooLarge,
    /// Anything else (store unreachable, ...): the writers get the error.
    Other,
}

/// What to answer after a store outcome: each transaction with its results
/// (an error object appended where the transaction failed).
pub type Answers<T> = Vec<(T, Vec<OpResult>)>;

/// The queue. See the module documentation.
#[derive(Debug)]
pub struct CommitQueue<T> {
    queue: VecDeque<Queued<T>>,
    building: Building<T>,
    in_flight: Option<InFlight<T>>,
    /// Commits to make one transaction at a time (a group was over the store's limits).
    solo_txns: usize,
    /// A conversion (or other exclusive work) holds the queue.
    held: bool,
}

impl<T> Default for CommitQueue<T> {
    fn default() -> Self {
        CommitQueue {
            queue: VecDeque::new(),
            building: Building::default(),
            in_flight: None,
            solo_txns: 0,
            held: false,
        }
    }
}

impl<T> CommitQueue<T> {
    /// A new transaction, after every queued one.
    pub fn push(&mut self, txn: T) {
        self.queue.push_back(Queued { txn, retries: 0 });
    }

    /// Whether transactions are waiting to be executed.
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// How many transactions wait to be executed (the pipeline in front of the store).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The group in flight.
    pub fn in_flight(&self) -> Option<&InFlight<T>> {
        self.in_flight.as_ref()
    }

    /// Whether the replica holds changes the store has not confirmed.
    pub fn speculating(&self) -> bool {
        self.in_flight.as_ref().is_some_and(|f| f.speculative) || !self.building.changes.is_empty()
    }

    /// Whether the group being built has members: a transaction executed now
    /// sees their uncommitted changes.
    pub fn building(&self) -> bool {
        !self.building.members.is_empty()
    }

    /// Whether the queue is held (a conversion): nothing executes.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// The next transaction to execute into the group being built (on top
    /// of the group in flight, if any), unless the group is full or the
    /// queue is held. Nothing executes on top of a group in flight whose
    /// changes were taken back out of the replica (a reload or a lock check
    /// came between): its changes would be applied under the new group's.
    pub fn next_to_run(&mut self) -> Option<Queued<T>> {
        if self.held || self.in_flight.as_ref().is_some_and(|f| !f.speculative) {
            return None;
        }
        let b = &self.building;
        let full = !b.members.is_empty()
            && (b.solo
                || self.solo_txns > 0
                || b.members.len() >= GROUP_MAX_TXNS
                || b.rows >= GROUP_MAX_ROWS);
        if full {
            return None;
        }
        self.queue.pop_front()
    }

    /// A transaction that must wait for the group's commit goes back to the head.
    pub fn put_back(&mut self, q: Queued<T>) {
        self.queue.push_front(q);
    }

    /// Whether a write changing `rows` rows may join the group being built
    /// (`solo`: it must commit alone).
    pub fn may_join(&self, rows: usize, solo: bool) -> bool {
        !self.building() || !(solo || self.building.rows + rows > GROUP_MAX_ROWS)
    }

    /// A read executed on top of the group being built: answered with it.
    pub fn join_read(&mut self, txn: Queued<T>, results: Vec<OpResult>) {
        self.building.members.push(Member {
            txn,
            results,
            writes: false,
        });
    }

    /// A write joins the group being built; the replica now holds `changes`.
    pub fn join_write(
        &mut self,
        txn: Queued<T>,
        results: Vec<OpResult>,
        changes: Arc<ChangeSet>,
        durable: bool,
        comment: Option<String>,
        asserted: Vec<Asserted>,
    ) {
        let b = &mut self.building;
        b.rows += changes.n_rows();
        b.durable |= durable;
        b.solo = comment.is_some() || !asserted.is_empty();
        if comment.is_some() {
            b.comment = comment;
        }
        b.asserted.extend(asserted);
        b.changes.push(changes);
        b.members.push(Member {
            txn,
            results,
            writes: true,
        });
    }

    /// The group being built leaves: it becomes the group in flight. `None`
    /// if it is empty.
    pub fn seal(&mut self, now: Instant) -> Option<&InFlight<T>> {
        if self.building.members.is_empty() || self.in_flight.is_some() {
            return None;
        }
        let b = std::mem::take(&mut self.building);
        self.solo_txns = self.solo_txns.saturating_sub(1);
        let changes = match b.changes.as_slice() {
            [] => Arc::new(ChangeSet::default()),
            [one] => one.clone(),
            many => {
                let sets: Vec<&ChangeSet> = many.iter().map(|c| c.as_ref()).collect();
                Arc::new(ChangeSet::merge_all(&sets))
            }
        };
        self.in_flight = Some(InFlight {
            members: b.members,
            speculative: !b.changes.is_empty(),
            changes,
            durable: b.durable,
            comment: b.comment,
            asserted: b.asserted,
            started: now,
        });
        self.in_flight.as_ref()
    }

    /// The group being built is taken apart: its members go back to the
    /// head of the queue in order, and its changes (in execution order) are
    /// returned for the caller to take out of the replica, last first.
    pub fn unbuild(&mut self) -> Vec<Arc<ChangeSet>> {
        let b = std::mem::take(&mut self.building);
        for m in b.members.into_iter().rev() {
            self.queue.push_front(m.txn);
        }
        b.changes
    }

    /// The speculative changes of the group in flight, to be taken back out
    /// of the replica (apply their inverse); `None` if the replica holds none.
    pub fn undo_speculation(&mut self) -> Option<Arc<ChangeSet>> {
        let f = self.in_flight.as_mut()?;
        if !f.speculative {
            return None;
        }
        f.speculative = false;
        Some(f.changes.clone())
    }

    /// The store committed the group in flight: it is done; answer its
    /// members in order.
    pub fn succeeded(&mut self) -> Option<InFlight<T>> {
        self.in_flight.take()
    }

    /// Another server committed first: the group's members go back to the
    /// head of the queue in order, to be executed again once the replica
    /// caught up. Writers that lost too many races are answered with
    /// `give_up` instead. The caller undoes the speculation first.
    pub fn lost_race(&mut self, give_up: impl Fn() -> Value) -> Answers<T> {
        let Some(f) = self.in_flight.take() else {
            return Vec::new();
        };
        let mut answers = Vec::new();
        for m in f.members.into_iter().rev() {
            let mut q = m.txn;
            q.retries += 1;
            if q.retries > MAX_COMMIT_RETRIES && m.writes {
                let mut results = m.results;
                results.push(OpResult::Json(give_up()));
                answers.push((q.txn, results));
            } else {
                self.queue.push_front(q);
            }
        }
        answers.reverse();
        answers
    }

    /// The store failed the commit. Over its limits with several members:
    /// each is committed alone next (the group was too big, not necessarily
    /// any member). Otherwise the writers are answered with `error`, and the
    /// reads held behind them are executed again. The caller undoes the
    /// speculation first.
    pub fn failed(&mut self, failure: Failure, error: Value) -> Answers<T> {
        let Some(f) = self.in_flight.take() else {
            return Vec::new();
        };
        if failure == Failure::TooLarge && f.members.len() > 1 {
            self.solo_txns = f.members.len();
            for m in f.members.into_iter().rev() {
                self.queue.push_front(m.txn);
            }
            return Vec::new();
        }
        let mut answers = Vec::new();
        let mut reads = Vec::new();
        for m in f.members {
            if m.writes {
                let mut results = m.results;
                results.push(OpResult::Json(error.clone()));
                answers.push((m.txn.txn, results));
            } else {
                reads.push(m.txn);
            }
        }
        for q in reads.into_iter().rev() {
            self.queue.push_front(q);
        }
        answers
    }

    /// The group in flight is answered with `error` as a whole (e.g. an
    /// asserted lock turned out to be lost): every member gets it.
    pub fn fail_all(&mut self, error: Value) -> Answers<T> {
        let Some(f) = self.in_flight.take() else {
            return Vec::new();
        };
        f.members
            .into_iter()
            .map(|m| {
                let mut results = m.results;
                results.push(OpResult::Json(error.clone()));
                (m.txn.txn, results)
            })
            .collect()
    }

    /// Forgets the locks the group in flight asserts (they were checked).
    pub fn clear_asserted(&mut self) {
        if let Some(f) = self.in_flight.as_mut() {
            f.asserted.clear();
        }
    }

    /// Drops the queued transactions `keep` refuses (a session that left).
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.queue.retain(|q| keep(&q.txn));
    }

    /// Holds the queue for exclusive work (a conversion): nothing starts
    /// until [`CommitQueue::release`].
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Ends [`CommitQueue::hold`].
    pub fn release(&mut self) {
        self.held = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Row;
    use crate::db::changes::{RowChange, TableChanges};
    use serde_json::json;
    use uuid::Uuid;

    /// A change set inserting `n` rows, distinct for every `txn`.
    fn rows_of(txn: u32, n: usize) -> Arc<ChangeSet> {
        let rows = (0..n)
            .map(|i| RowChange {
                uuid: Uuid::from_u128(((txn as u128) << 32) + i as u128 + 1),
                old: None,
                new: Some(Arc::new(Row {
                    uuid: Uuid::from_u128(((txn as u128) << 32) + i as u128 + 1),
                    version: Uuid::nil(),
                    fields: Vec::new(),
                })),
                changed: Vec::new(),
            })
            .collect();
        Arc::new(ChangeSet {
            tables: vec![TableChanges { table: 0, rows }],
        })
    }

    /// Builds one group from the queue: every transaction a write of `n`
    /// rows, as the actor's pump does. Returns the members' ids.
    fn build(q: &mut CommitQueue<u32>, n: usize) -> Vec<u32> {
        let mut ids = Vec::new();
        while let Some(t) = q.next_to_run() {
            if !q.may_join(n, false) {
                q.put_back(t);
                break;
            }
            ids.push(t.txn);
            let cs = rows_of(t.txn, n);
            q.join_write(t, vec![OpResult::Empty], cs, false, None, Vec::new());
        }
        ids
    }

    fn ids(a: &Answers<u32>) -> Vec<u32> {
        a.iter().map(|(t, _)| *t).collect()
    }

    #[test]
    fn one_group_in_flight_and_the_rest_waits_for_it() {
        let mut q = CommitQueue::default();
        for i in 0..5 {
            q.push(i);
        }
        assert_eq!(build(&mut q, 1), vec![0, 1, 2, 3, 4]);
        assert!(q.speculating());
        let f = q.seal(Instant::now()).expect("sealed");
        assert_eq!(f.changes.n_rows(), 5, "the members' changes merged");
        q.push(5);
        q.push(6);
        assert_eq!(
            build(&mut q, 1),
            vec![5, 6],
            "the next group is executed on top of the one in flight"
        );
        assert!(q.seal(Instant::now()).is_none(), "but waits for it");
        let done = q.succeeded().expect("in flight");
        let order: Vec<u32> = done.members.iter().map(|m| m.txn.txn).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
        let next = q.seal(Instant::now()).expect("leaves when it returned");
        let order: Vec<u32> = next.members.iter().map(|m| m.txn.txn).collect();
        assert_eq!(order, vec![5, 6]);
    }

    #[test]
    fn a_lost_race_undoes_the_speculative_group_too_and_keeps_the_order() {
        let mut q = CommitQueue::default();
        for i in 0..2 {
            q.push(i);
        }
        build(&mut q, 1);
        q.seal(Instant::now());
        for i in 2..4 {
            q.push(i);
        }
        build(&mut q, 1);
        q.push(4);
        // The actor undoes the group being built first, then the one in flight.
        let undone: Vec<usize> = q.unbuild().iter().map(|c| c.n_rows()).collect();
        assert_eq!(undone, vec![1, 1], "each member's changes, in order");
        assert!(!q.building());
        assert!(q.undo_speculation().is_some());
        assert!(!q.speculating());
        assert!(q.lost_race(|| json!("gave up")).is_empty());
        assert_eq!(build(&mut q, 1), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn nothing_is_built_on_a_group_in_flight_that_was_taken_out() {
        let mut q = CommitQueue::default();
        q.push(1);
        build(&mut q, 1);
        q.seal(Instant::now());
        q.push(2);
        q.undo_speculation();
        assert!(q.next_to_run().is_none());
        q.succeeded();
        assert_eq!(build(&mut q, 1), vec![2]);
    }

    #[test]
    fn a_store_error_keeps_the_speculative_group_for_another_try() {
        let mut q = CommitQueue::default();
        q.push(1);
        build(&mut q, 1);
        q.seal(Instant::now());
        q.push(2);
        build(&mut q, 1);
        q.unbuild();
        q.undo_speculation();
        assert_eq!(ids(&q.failed(Failure::Other, json!("gone"))), vec![1]);
        assert_eq!(build(&mut q, 1), vec![2], "executed again, not failed");
    }

    #[test]
    fn groups_are_bounded_by_transactions_and_rows() {
        let mut q = CommitQueue::default();
        for i in 0..(GROUP_MAX_TXNS as u32 + 3) {
            q.push(i);
        }
        assert_eq!(build(&mut q, 1).len(), GROUP_MAX_TXNS);
        let mut q = CommitQueue::default();
        for i in 0..10 {
            q.push(i);
        }
        // 30 rows each: three fit under GROUP_MAX_ROWS (100), a fourth does not.
        assert_eq!(build(&mut q, 30), vec![0, 1, 2]);
        q.seal(Instant::now());
        q.succeeded();
        // A transaction bigger than the limit still commits, alone.
        let mut q = CommitQueue::default();
        q.push(1);
        q.push(2);
        assert_eq!(build(&mut q, 500), vec![1]);
    }

    #[test]
    fn a_solo_member_commits_alone() {
        let mut q = CommitQueue::default();
        q.push(1);
        q.push(2);
        let t = q.next_to_run().expect("first");
        q.join_write(
            t,
            vec![],
            rows_of(0, 1),
            false,
            Some("comment".into()),
            Vec::new(),
        );
        assert!(
            q.next_to_run().is_none(),
            "a commented transaction commits alone"
        );
        let t = q.next_to_run();
        assert!(t.is_none());
        let f = q.seal(Instant::now()).expect("sealed");
        assert_eq!(f.comment.as_deref(), Some("comment"));
    }

    #[test]
    fn a_lost_race_undoes_and_requeues_in_order_until_the_retry_limit() {
        let mut q = CommitQueue::default();
        for i in 0..3 {
            q.push(i);
        }
        q.push(9);
        build(&mut q, 1);
        q.seal(Instant::now());
        assert!(q.undo_speculation().is_some());
        assert!(q.undo_speculation().is_none(), "undone once");
        let answered = q.lost_race(|| json!({"error": "timed out"}));
        assert!(answered.is_empty());
        assert_eq!(
            build(&mut q, 1),
            vec![0, 1, 2, 9],
            "same order, then the rest"
        );
        // Lose every race: the writers give up after MAX_COMMIT_RETRIES.
        let mut given_up = Vec::new();
        for _ in 0..=MAX_COMMIT_RETRIES {
            q.seal(Instant::now());
            q.undo_speculation();
            given_up.extend(ids(&q.lost_race(|| json!({"error": "timed out"}))));
            build(&mut q, 1);
        }
        assert_eq!(given_up, vec![0, 1, 2, 9]);
    }

    #[test]
    fn over_the_store_limits_a_group_is_split_into_solo_commits() {
        let mut q = CommitQueue::default();
        for i in 0..3 {
            q.push(i);
        }
        build(&mut q, 1);
        q.seal(Instant::now());
        q.undo_speculation();
        assert!(q.failed(Failure::TooLarge, json!("too large")).is_empty());
        for i in 0..3 {
            assert_eq!(build(&mut q, 1), vec![i], "one at a time");
            q.seal(Instant::now());
            q.succeeded();
        }
        // A single transaction over the limits fails.
        q.push(7);
        build(&mut q, 1);
        q.seal(Instant::now());
        let a = q.failed(Failure::TooLarge, json!("too large"));
        assert_eq!(ids(&a), vec![7]);
        assert_eq!(a[0].1.last(), Some(&OpResult::Json(json!("too large"))));
    }

    #[test]
    fn a_store_error_fails_the_writers_and_reexecutes_the_reads() {
        let mut q = CommitQueue::default();
        q.push(1);
        q.push(2);
        q.push(3);
        let t = q.next_to_run().expect("1");
        q.join_write(
            t,
            vec![OpResult::Empty],
            rows_of(0, 1),
            false,
            None,
            Vec::new(),
        );
        let t = q.next_to_run().expect("2");
        q.join_read(t, vec![OpResult::Json(json!({"rows": []}))]);
        let t = q.next_to_run().expect("3");
        q.join_write(
            t,
            vec![OpResult::Empty],
            rows_of(0, 1),
            false,
            None,
            Vec::new(),
        );
        q.seal(Instant::now());
        q.undo_speculation();
        let a = q.failed(Failure::Other, json!("store gone"));
        assert_eq!(ids(&a), vec![1, 3]);
        assert_eq!(
            a[0].1,
            vec![OpResult::Empty, OpResult::Json(json!("store gone"))]
        );
        assert_eq!(
            q.next_to_run().map(|t| t.txn),
            Some(2),
            "the read runs again"
        );
    }

    #[test]
    fn a_held_queue_starts_nothing() {
        let mut q = CommitQueue::default();
        q.push(1);
        q.hold();
        assert!(q.is_held());
        assert!(q.next_to_run().is_none());
        q.release();
        assert_eq!(q.next_to_run().map(|t| t.txn), Some(1));
    }
}
