//! The recent commits of a database, for `monitor_cond_since`: a client that
//! last saw transaction N gets only what changed since, if N is still here.
//!
//! Bounded by count and by bytes (DESIGN.md: at least the last 1,000
//! transactions or 64 MiB), so a database of big transactions does not keep
//! gigabytes of change sets alive; the newest commit is always kept.

use crate::data::{Atom, Datum, Row};
use crate::db::changes::ChangeSet;
use crate::storage::Revision;
use std::collections::VecDeque;
use std::sync::Arc;

/// How many committed transactions are kept.
pub const HISTORY_MAX_TXNS: usize = 1000;
/// How many bytes of change sets (estimated) are kept.
pub const HISTORY_MAX_BYTES: usize = 64 << 20;

/// The commits after `base`, oldest first, each with its revision.
#[derive(Debug)]
pub struct History {
    entries: VecDeque<(Revision, Arc<ChangeSet>, usize)>,
    /// Every change after this revision is in `entries`.
    base: Revision,
    bytes: usize,
    max_txns: usize,
    max_bytes: usize,
}

impl History {
    /// An empty history starting after `base`, with the default bounds.
    pub fn new(base: Revision) -> History {
        History::with_bounds(base, HISTORY_MAX_TXNS, HISTORY_MAX_BYTES)
    }

    /// An empty history with explicit bounds (tests, embedders).
    pub fn with_bounds(base: Revision, max_txns: usize, max_bytes: usize) -> History {
        History {
            entries: VecDeque::new(),
            base,
            bytes: 0,
            max_txns: max_txns.max(1),
            max_bytes,
        }
    }

    /// Forgets everything: only changes after `base` can be asked for now
    /// (after a reload or a conversion).
    pub fn reset(&mut self, base: Revision) {
        self.entries.clear();
        self.bytes = 0;
        self.base = base;
    }

    /// Records the commit at `revision` (after every recorded one).
    pub fn push(&mut self, revision: Revision, changes: Arc<ChangeSet>) {
        let size = approx_bytes(&changes);
        self.bytes += size;
        self.entries.push_back((revision, changes, size));
        while self.entries.len() > self.max_txns
            || (self.bytes > self.max_bytes && self.entries.len() > 1)
        {
            match self.entries.pop_front() {
                Some((r, _, size)) => {
                    self.base = r;
                    self.bytes -= size;
                }
                None => break,
            }
        }
    }

    /// The revision after which every change is kept.
    pub fn base(&self) -> Revision {
        self.base
    }

    /// How many commits are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no commit is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The estimated bytes of the kept change sets.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Everything that changed after `since` up to `current` (the replica's
    /// revision), merged into one change set; `None` if that is no longer
    /// (or not yet) known.
    pub fn changes_since(&self, since: Revision, current: Revision) -> Option<ChangeSet> {
        if since == current {
            return Some(ChangeSet::default());
        }
        if since > current || since < self.base {
            return None;
        }
        let start = self.entries.partition_point(|(r, _, _)| *r <= since);
        let sets: Vec<&ChangeSet> = self.entries.range(start..).map(|(_, c, _)| &**c).collect();
        Some(match sets.as_slice() {
            [] => ChangeSet::default(),
            [one] => (*one).clone(),
            _ => ChangeSet::merge_all(&sets),
        })
    }
}

/// A change set's memory, roughly: what it keeps alive beyond the database
/// (old rows and, once the database moved on, new rows).
pub fn approx_bytes(cs: &ChangeSet) -> usize {
    let mut n = std::mem::size_of::<ChangeSet>();
    for t in &cs.tables {
        for r in &t.rows {
            n += std::mem::size_of_val(r) + r.changed.len() * std::mem::size_of::<usize>();
            n += r.old.as_deref().map_or(0, row_bytes);
            n += r.new.as_deref().map_or(0, row_bytes);
        }
    }
    n
}

fn row_bytes(row: &Row) -> usize {
    std::mem::size_of::<Row>() + row.fields.iter().map(datum_bytes).sum::<usize>()
}

fn datum_bytes(d: &Datum) -> usize {
    let atoms = |v: &[Atom]| -> usize {
        v.iter()
            .map(|a| {
                std::mem::size_of::<Atom>()
                    + match a {
                        Atom::String(s) => s.len(),
                        _ => 0,
                    }
            })
            .sum()
    };
    std::mem::size_of::<Datum>() + atoms(&d.keys) + d.values.as_deref().map_or(0, atoms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::changes::{RowChange, TableChanges};
    use uuid::Uuid;

    fn insert(u: u128, s: &str) -> Arc<ChangeSet> {
        let row = Row {
            uuid: Uuid::from_u128(u),
            version: Uuid::nil(),
            fields: vec![Datum {
                keys: vec![Atom::String(Arc::from(s))],
                values: None,
            }],
        };
        Arc::new(ChangeSet {
            tables: vec![TableChanges {
                table: 0,
                rows: vec![RowChange {
                    uuid: row.uuid,
                    old: None,
                    new: Some(Arc::new(row)),
                    changed: vec![0],
                }],
            }],
        })
    }

    fn uuids(cs: &ChangeSet) -> Vec<u128> {
        let mut v: Vec<u128> = cs
            .tables
            .iter()
            .flat_map(|t| t.rows.iter().map(|r| r.uuid.as_u128()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn changes_since_merges_what_came_after() {
        let mut h = History::new(10);
        for i in 11..=15 {
            h.push(i, insert(i as u128, "x"));
        }
        assert_eq!(uuids(&h.changes_since(12, 15).unwrap()), vec![13, 14, 15]);
        assert_eq!(
            uuids(&h.changes_since(10, 15).unwrap()),
            vec![11, 12, 13, 14, 15]
        );
        assert!(h.changes_since(15, 15).unwrap().is_empty());
        assert!(h.changes_since(9, 15).is_none(), "before the base");
        assert!(h.changes_since(16, 15).is_none(), "from the future");
    }

    #[test]
    fn bounded_by_count() {
        let mut h = History::with_bounds(0, 3, usize::MAX);
        for i in 1..=10 {
            h.push(i, insert(i as u128, "x"));
        }
        assert_eq!(h.len(), 3);
        assert_eq!(h.base(), 7);
        assert!(h.changes_since(6, 10).is_none());
        assert_eq!(uuids(&h.changes_since(7, 10).unwrap()), vec![8, 9, 10]);
    }

    #[test]
    fn bounded_by_bytes_but_keeps_the_newest() {
        let big = "y".repeat(10_000);
        let mut h = History::with_bounds(0, 1000, 25_000);
        for i in 1..=5 {
            h.push(i, insert(i as u128, &big));
        }
        assert_eq!(h.len(), 2, "two 10 kB commits fit in 25 kB, three do not");
        assert!(h.bytes() <= 25_000);
        let mut h = History::with_bounds(0, 1000, 10);
        h.push(1, insert(1, &big));
        assert_eq!(h.len(), 1, "the newest commit is kept whatever its size");
        assert_eq!(uuids(&h.changes_since(0, 1).unwrap()), vec![1]);
    }

    #[test]
    fn reset_forgets() {
        let mut h = History::new(0);
        h.push(1, insert(1, "x"));
        h.reset(5);
        assert!(h.is_empty());
        assert_eq!(h.bytes(), 0);
        assert!(h.changes_since(1, 5).is_none());
        assert!(h.changes_since(5, 5).unwrap().is_empty());
    }
}
