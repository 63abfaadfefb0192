//! Finding what a row can satisfy without evaluating every clause: the
//! lookup inside one monitor condition ([`AnyLookup`]) and the index of a
//! table's monitors by their conditions' equality clauses ([`MonitorIndex`]).
//!
//! An OVN Southbound chassis monitors `Port_Binding` with hundreds to
//! thousands of `["datapath", "==", ["uuid", D]]` clauses, and thousands of
//! chassis monitor the same table. Evaluating every clause of every monitor
//! for every changed row costs sessions × clauses per commit; these lookups
//! make it cost the number of monitors that can match. A lookup only narrows
//! the candidates: each candidate clause is still evaluated exactly, so a
//! hash collision costs an evaluation, never a wrong answer.

use crate::data::atom::Atom;
use crate::data::datum::Datum;
use crate::data::row::{Row, COL_UUID, COL_VERSION};
use crate::db::condition::Condition;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Where the rows satisfying an equality-like clause are found: under the
/// hash of a column's whole value (`==` on sets and maps), or of one of its
/// elements (`==` on scalars, `includes` on sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    /// The column (schema index, `_uuid` and `_version` included).
    pub column: usize,
    /// Whole value (true) or one element (false).
    pub whole: bool,
    /// The hash of the value or element.
    pub hash: u64,
}

/// How the rows satisfying one clause can be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// No row satisfies it (`false`, `==` an empty scalar).
    Never,
    /// Only rows offering this key can satisfy it.
    Key(ProbeKey),
    /// Any row may: it has to be evaluated on every row.
    Scan,
}

/// The hash the probes use, the same in every process run (so that tests
/// and benchmarks repeat).
pub fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// Calls `found` with each probe hash `row` offers for `column` (its
/// elements, or its whole value) until it returns true; returns whether it did.
pub fn row_probes(
    row: &Row,
    column: usize,
    whole: bool,
    mut found: impl FnMut(u64) -> bool,
) -> bool {
    let special = match column {
        COL_UUID => Some(row.uuid),
        COL_VERSION => Some(row.version),
        _ => None,
    };
    if let Some(u) = special {
        return if whole {
            found(hash_of(&Datum::scalar(Atom::Uuid(u))))
        } else {
            found(hash_of(&Atom::Uuid(u)))
        };
    }
    let Some(datum) = row.fields.get(column) else {
        return false;
    };
    if whole {
        found(hash_of(datum))
    } else {
        datum.keys.iter().any(|a| found(hash_of(a)))
    }
}

/// A condition's clauses by probe key, for `matches_any` in time
/// independent of the number of equality clauses.
#[derive(Debug, Default, Clone)]
pub struct AnyLookup {
    keys: HashMap<ProbeKey, Vec<u32>>,
    columns: Vec<(usize, bool)>,
    scan: Vec<u32>,
}

impl AnyLookup {
    /// The lookup of the clauses whose probes are `probes` (in clause order).
    pub fn new(probes: &[Probe]) -> AnyLookup {
        let mut l = AnyLookup::default();
        for (i, p) in probes.iter().enumerate() {
            let i = i as u32;
            match p {
                Probe::Never => {}
                Probe::Scan => l.scan.push(i),
                Probe::Key(k) => {
                    l.keys.entry(*k).or_default().push(i);
                    if !l.columns.contains(&(k.column, k.whole)) {
                        l.columns.push((k.column, k.whole));
                    }
                }
            }
        }
        l
    }

    /// Whether `row` satisfies at least one clause of `cond`, the condition
    /// this lookup was built from.
    pub fn matches_any(&self, cond: &Condition, row: &Row) -> bool {
        for &(column, whole) in &self.columns {
            let hit = row_probes(row, column, whole, |hash| {
                self.keys
                    .get(&ProbeKey {
                        column,
                        whole,
                        hash,
                    })
                    .is_some_and(|cl| cl.iter().any(|&i| cond.clause_matches(i as usize, row)))
            });
            if hit {
                return true;
            }
        }
        self.scan
            .iter()
            .any(|&i| cond.clause_matches(i as usize, row))
    }
}

/// One table's monitor groups by the probe keys of their conditions: which
/// groups a changed row can concern.
#[derive(Debug, Default)]
pub struct MonitorIndex {
    keys: HashMap<ProbeKey, Vec<usize>>,
    /// The (column, whole) pairs some key uses, with how many keys use each.
    columns: Vec<((usize, bool), usize)>,
    /// Groups every row can concern (no condition, a `true` or a clause
    /// that is not an equality).
    scan: Vec<usize>,
}

/// How a group's condition is indexed.
enum Placement {
    Scan,
    Keys(Vec<ProbeKey>),
}

fn placement(cond: Option<&Condition>) -> Placement {
    let Some(cond) = cond else {
        return Placement::Scan;
    };
    if cond.is_empty() {
        return Placement::Scan;
    }
    let mut keys = Vec::new();
    for p in cond.probes() {
        match p {
            Probe::Never => {}
            Probe::Scan => return Placement::Scan,
            Probe::Key(k) => keys.push(k),
        }
    }
    keys.sort_unstable_by_key(|k| (k.column, k.whole, k.hash));
    keys.dedup();
    Placement::Keys(keys)
}

impl MonitorIndex {
    /// Adds `group`, whose condition on this table is `cond` (`None`: every row).
    pub fn insert(&mut self, group: usize, cond: Option<&Condition>) {
        match placement(cond) {
            Placement::Scan => self.scan.push(group),
            Placement::Keys(keys) => {
                for k in keys {
                    self.keys.entry(k).or_default().push(group);
                    let col = (k.column, k.whole);
                    match self.columns.iter_mut().find(|(c, _)| *c == col) {
                        Some((_, n)) => *n += 1,
                        None => self.columns.push((col, 1)),
                    }
                }
            }
        }
    }

    /// Removes `group`, added with the same `cond`.
    pub fn remove(&mut self, group: usize, cond: Option<&Condition>) {
        match placement(cond) {
            Placement::Scan => {
                if let Some(i) = self.scan.iter().position(|g| *g == group) {
                    self.scan.swap_remove(i);
                }
            }
            Placement::Keys(keys) => {
                for k in keys {
                    if let Some(groups) = self.keys.get_mut(&k) {
                        if let Some(i) = groups.iter().position(|g| *g == group) {
                            groups.swap_remove(i);
                        }
                        if groups.is_empty() {
                            self.keys.remove(&k);
                        }
                    }
                    let col = (k.column, k.whole);
                    if let Some(i) = self.columns.iter().position(|(c, _)| *c == col) {
                        self.columns[i].1 -= 1;
                        if self.columns[i].1 == 0 {
                            self.columns.swap_remove(i);
                        }
                    }
                }
            }
        }
    }

    /// Whether no group is indexed.
    pub fn is_empty(&self) -> bool {
        self.scan.is_empty() && self.keys.is_empty()
    }

    /// Appends to `out` every group a change of a row from `old` to `new`
    /// can concern (a group may appear more than once).
    pub fn candidates(&self, old: Option<&Row>, new: Option<&Row>, out: &mut Vec<usize>) {
        out.extend_from_slice(&self.scan);
        for &((column, whole), _) in &self.columns {
            for row in [old, new].into_iter().flatten() {
                row_probes(row, column, whole, |hash| {
                    if let Some(groups) = self.keys.get(&ProbeKey {
                        column,
                        whole,
                        hash,
                    }) {
                        out.extend_from_slice(groups);
                    }
                    false
                });
            }
        }
    }
}
