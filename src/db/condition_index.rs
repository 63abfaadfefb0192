//! Finding what a row can satisfy without evaluating every clause: the
//! lookup inside one monitor condition ([`AnyLookup`]), the index of a
//! table's monitors by their conditions' equality clauses ([`MonitorIndex`])
//! and the index of a table's rows by the same keys ([`RowProbes`]), which
//! initial replies and condition changes read instead of the whole table.
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
use std::hash::{BuildHasherDefault, Hash, Hasher};

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
    let mut h = ProbeHasher::default();
    v.hash(&mut h);
    h.finish()
}

/// A fast deterministic hasher (FxHash's rotate-xor-multiply) for probe
/// keys: UUIDs and short strings, several per changed row and per clause,
/// where SipHash cost 4% of a Southbound condition change. Probes only
/// narrow candidates, so its weaker mixing costs at worst an evaluation.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProbeHasher(u64);

impl ProbeHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for ProbeHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // A last multiply spreads the low bits into the high ones, which
        // hashbrown's control bytes use.
        (self.0 ^ (self.0 >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// A map keyed by probe keys or hashes.
pub type ProbeMap<K, V> = HashMap<K, V, BuildHasherDefault<ProbeHasher>>;

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
/// independent of the number of equality clauses: a sorted array rather
/// than a hash map, since a thousand OVN chassis each hold one (12 bytes a
/// clause instead of about 40).
#[derive(Debug, Default, Clone)]
pub struct AnyLookup {
    /// (column slot in `columns`, hash, clause), sorted.
    keys: Vec<(u32, u64, u32)>,
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
                    let col = (k.column, k.whole);
                    let slot = match l.columns.iter().position(|c| *c == col) {
                        Some(s) => s,
                        None => {
                            l.columns.push(col);
                            l.columns.len() - 1
                        }
                    };
                    l.keys.push((slot as u32, k.hash, i));
                }
            }
        }
        l.keys.sort_unstable();
        l.keys.shrink_to_fit();
        l
    }

    /// Whether `row` satisfies at least one clause of `cond`, the condition
    /// this lookup was built from.
    pub fn matches_any(&self, cond: &Condition, row: &Row) -> bool {
        for (slot, &(column, whole)) in self.columns.iter().enumerate() {
            let slot = slot as u32;
            let hit = row_probes(row, column, whole, |hash| {
                let from = self
                    .keys
                    .partition_point(|&(s, h, _)| (s, h) < (slot, hash));
                self.keys[from..]
                    .iter()
                    .take_while(|&&(s, h, _)| s == slot && h == hash)
                    .any(|&(_, _, i)| cond.clause_matches(i as usize, row))
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
    keys: ProbeMap<ProbeKey, Vec<usize>>,
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

/// The probe keys that find every row `cond` can select, or `None` when
/// some clause needs a scan (or there is no condition: every row).
pub fn keys_of(cond: Option<&Condition>) -> Option<Vec<ProbeKey>> {
    match placement(cond) {
        Placement::Scan => None,
        Placement::Keys(keys) => Some(keys),
    }
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
        self.file(group, placement(cond));
    }

    /// Removes `group`, added with the same `cond`.
    pub fn remove(&mut self, group: usize, cond: Option<&Condition>) {
        self.unfile(group, placement(cond));
    }

    /// Refiles `group` from condition `old` to `new`, touching only the
    /// keys that differ: a `monitor_cond_change` of an OVN chassis drops
    /// and adds a few datapaths of thousands, and refiling every key was
    /// the largest part of its cost.
    pub fn rekey(&mut self, group: usize, old: Option<&Condition>, new: Option<&Condition>) {
        let (Placement::Keys(old), Placement::Keys(new)) = (placement(old), placement(new)) else {
            self.unfile(group, placement(old));
            self.file(group, placement(new));
            return;
        };
        // Both sorted by `order`: a merge finds the keys only one side has.
        let order = |k: &ProbeKey| (k.column, k.whole, k.hash);
        let (mut i, mut j) = (0, 0);
        loop {
            match (old.get(i), new.get(j)) {
                (Some(a), Some(b)) if order(a) == order(b) => {
                    i += 1;
                    j += 1;
                }
                (Some(a), b) if b.is_none_or(|b| order(a) < order(b)) => {
                    self.drop_key(group, *a);
                    i += 1;
                }
                (_, Some(b)) => {
                    self.add_key(group, *b);
                    j += 1;
                }
                _ => break,
            }
        }
    }

    fn file(&mut self, group: usize, placed: Placement) {
        match placed {
            Placement::Scan => self.scan.push(group),
            Placement::Keys(keys) => keys.into_iter().for_each(|k| self.add_key(group, k)),
        }
    }

    fn unfile(&mut self, group: usize, placed: Placement) {
        match placed {
            Placement::Scan => self.drop_scan(group),
            Placement::Keys(keys) => keys.into_iter().for_each(|k| self.drop_key(group, k)),
        }
    }

    fn add_key(&mut self, group: usize, k: ProbeKey) {
        self.keys.entry(k).or_default().push(group);
        let col = (k.column, k.whole);
        match self.columns.iter_mut().find(|(c, _)| *c == col) {
            Some((_, n)) => *n += 1,
            None => self.columns.push((col, 1)),
        }
    }

    fn drop_key(&mut self, group: usize, k: ProbeKey) {
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

    fn drop_scan(&mut self, group: usize) {
        if let Some(i) = self.scan.iter().position(|g| *g == group) {
            self.scan.swap_remove(i);
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

/// One column's rows by the hash of their values or elements.
type RowsByProbe = ProbeMap<u64, Vec<uuid::Uuid>>;

/// A table's rows by the probe keys of some of its columns, kept for the
/// columns monitor conditions use.
#[derive(Debug, Clone, Default)]
pub struct RowProbes {
    by_column: Vec<((usize, bool), RowsByProbe)>,
}

impl RowProbes {
    /// Whether no column is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_column.is_empty()
    }

    /// Whether (column, whole) is indexed.
    pub fn has(&self, column: usize, whole: bool) -> bool {
        self.by_column.iter().any(|(c, _)| *c == (column, whole))
    }

    /// Indexes (column, whole) over `rows`, unless it is already.
    pub fn ensure<'r>(&mut self, column: usize, whole: bool, rows: impl Iterator<Item = &'r Row>) {
        if self.has(column, whole) {
            return;
        }
        let mut map: ProbeMap<u64, Vec<uuid::Uuid>> = ProbeMap::default();
        for row in rows {
            add_probes(&mut map, row, column, whole);
        }
        self.by_column.push(((column, whole), map));
    }

    /// Takes `row` out of every index.
    pub fn remove(&mut self, row: &Row) {
        for ((column, whole), map) in &mut self.by_column {
            row_probes(row, *column, *whole, |hash| {
                if let Some(rows) = map.get_mut(&hash) {
                    if let Some(i) = rows.iter().position(|u| *u == row.uuid) {
                        rows.swap_remove(i);
                    }
                    if rows.is_empty() {
                        map.remove(&hash);
                    }
                }
                false
            });
        }
    }

    /// Puts `row` into every index.
    pub fn add(&mut self, row: &Row) {
        for ((column, whole), map) in &mut self.by_column {
            add_probes(map, row, *column, *whole);
        }
    }

    /// The rows offering `key` (a superset: hashes may collide), or `None`
    /// if its column is not indexed.
    pub fn rows(&self, key: &ProbeKey) -> Option<&[uuid::Uuid]> {
        let (_, map) = self
            .by_column
            .iter()
            .find(|(c, _)| *c == (key.column, key.whole))?;
        Some(map.get(&key.hash).map(Vec::as_slice).unwrap_or(&[]))
    }
}

fn add_probes(map: &mut ProbeMap<u64, Vec<uuid::Uuid>>, row: &Row, column: usize, whole: bool) {
    row_probes(row, column, whole, |hash| {
        let rows = map.entry(hash).or_default();
        // A set offering one element twice is impossible; a collision of two
        // elements' hashes is not, and must not file the row twice.
        if rows.last() != Some(&row.uuid) {
            rows.push(row.uuid);
        }
        false
    });
}
