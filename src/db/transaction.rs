//! A transaction in progress: an overlay of changed rows on a read-only
//! database snapshot, and the commit-time checks that turn it into a
//! [`ChangeSet`], in ovsdb-server's order: determine changes, reference
//! counts and referential integrity, garbage collection, maxRows, weak
//! references, unique indexes, `_version`.

use crate::data::{Datum, FastMap, Row, UuidMap};
use crate::db::changes::{ChangeSet, RowChange, TableChanges};
use crate::db::condition::Condition;
use crate::db::database::{index_key_ref, Database};
use crate::error::{OvsdbError, Result};
use crate::schema::{ColumnSchema, TableSchema};
use std::borrow::Cow;
use std::sync::Arc;
use uuid::Uuid;

/// A row touched by the transaction.
#[derive(Debug, Clone)]
pub struct TxnRow {
    /// The committed row, if it existed before the transaction.
    pub old: Option<Arc<Row>>,
    /// The row as the transaction leaves it; `None` once deleted.
    pub new: Option<Row>,
}

/// Per-table state of a transaction, kept only for the tables it touches:
/// a schema has tens of tables and a transaction touches a few, and a dense
/// vector of them was an allocation of over 1 KiB per transaction (one that
/// sends glibc's malloc consolidating its free lists). Indexing a table
/// not touched reads an empty one; indexing it mutably adds it.
#[derive(Debug, Clone)]
struct PerTable<T> {
    /// Per table of the schema: 1 + its index in `items`, or 0.
    slot: Vec<u32>,
    items: Vec<(usize, T)>,
    empty: T,
}

impl<T: Default> PerTable<T> {
    fn new(n_tables: usize) -> Self {
        PerTable {
            slot: vec![0; n_tables],
            items: Vec::new(),
            empty: T::default(),
        }
    }

    /// The number of tables in the schema.
    fn len(&self) -> usize {
        self.slot.len()
    }

    /// The touched tables, in table order.
    fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slot
            .iter()
            .enumerate()
            .filter(|(_, &i)| i != 0)
            .map(|(t, &i)| (t, &self.items[i as usize - 1].1))
    }

    /// The touched tables, in table order, mutably.
    fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.items.sort_unstable_by_key(|(t, _)| *t);
        for (i, (t, _)) in self.items.iter().enumerate() {
            self.slot[*t] = i as u32 + 1;
        }
        self.items.iter_mut().map(|(t, v)| (*t, v))
    }

    /// The touched tables, in table order, taken.
    fn into_sorted(mut self) -> impl Iterator<Item = (usize, T)> {
        self.items.sort_unstable_by_key(|(t, _)| *t);
        self.items.into_iter()
    }
}

impl<T> std::ops::Index<usize> for PerTable<T> {
    type Output = T;
    fn index(&self, t: usize) -> &T {
        match self.slot[t] {
            0 => &self.empty,
            i => &self.items[i as usize - 1].1,
        }
    }
}

impl<T: Default> std::ops::IndexMut<usize> for PerTable<T> {
    fn index_mut(&mut self, t: usize) -> &mut T {
        let i = match self.slot[t] {
            0 => {
                self.items.push((t, T::default()));
                self.slot[t] = self.items.len() as u32;
                self.items.len() - 1
            }
            i => i as usize - 1,
        };
        &mut self.items[i].1
    }
}

#[derive(Debug, Default, Clone)]
struct TxnTable {
    order: Vec<Uuid>,
    rows: UuidMap<TxnRow>,
}

/// A transaction being executed against a snapshot of a database.
pub struct Txn<'a> {
    db: &'a Database,
    tables: PerTable<TxnTable>,
    /// Comments added by `comment` operations, in order.
    pub comments: Vec<String>,
}

impl<'a> Txn<'a> {
    /// Starts a transaction on `db`.
    pub fn new(db: &'a Database) -> Txn<'a> {
        Txn {
            db,
            tables: PerTable::new(db.schema.tables.len()),
            comments: Vec::new(),
        }
    }

    /// The database the transaction reads.
    pub fn db(&self) -> &'a Database {
        self.db
    }

    /// The current (in-transaction) version of a row.
    pub fn get(&self, t: usize, uuid: &Uuid) -> Option<&Row> {
        match self.tables[t].rows.get(uuid) {
            Some(tr) => tr.new.as_ref(),
            None => self.db.row(t, uuid).map(|r| &**r),
        }
    }

    /// UUIDs of the rows of table `t` that currently satisfy `cond`.
    pub fn matching(&self, t: usize, cond: &Condition) -> Vec<Uuid> {
        if cond.is_always_false() {
            return Vec::new();
        }
        if let Some(u) = cond.uuid_equal() {
            return match self.get(t, &u) {
                Some(r) if cond.evaluate(r) => vec![u],
                _ => Vec::new(),
            };
        }
        let tt = &self.tables[t];
        let mut out = Vec::new();
        for (u, r) in &self.db.tables[t].rows {
            let row: &Row = match tt.rows.get(u) {
                Some(tr) => match &tr.new {
                    Some(n) => n,
                    None => continue,
                },
                None => r,
            };
            if cond.evaluate(row) {
                out.push(*u);
            }
        }
        for u in &tt.order {
            if let Some(TxnRow {
                old: None,
                new: Some(n),
            }) = tt.rows.get(u)
            {
                if cond.evaluate(n) {
                    out.push(*u);
                }
            }
        }
        out
    }

    /// Whether a row with this UUID may be inserted: no such row exists now
    /// or was deleted earlier in this transaction.
    pub fn may_create(&self, t: usize, uuid: &Uuid) -> bool {
        !self.tables[t].rows.contains_key(uuid) && self.db.row(t, uuid).is_none()
    }

    /// Inserts a new row, giving it a fresh `_version` now (as ovsdb-server
    /// does), so a later `select` in the same transaction shows the version
    /// the row will be committed with.
    pub fn insert(&mut self, t: usize, mut row: Row) {
        row.version = Uuid::new_v4();
        let tt = &mut self.tables[t];
        let uuid = row.uuid;
        tt.order.push(uuid);
        tt.rows.insert(
            uuid,
            TxnRow {
                old: None,
                new: Some(row),
            },
        );
    }

    /// The row for writing (copied from the snapshot on first write).
    pub fn modify(&mut self, t: usize, uuid: &Uuid) -> Option<&mut Row> {
        let db = self.db;
        let tt = &mut self.tables[t];
        if !tt.rows.contains_key(uuid) {
            let old = db.row(t, uuid)?.clone();
            tt.order.push(*uuid);
            tt.rows.insert(
                *uuid,
                TxnRow {
                    new: Some((*old).clone()),
                    old: Some(old),
                },
            );
        }
        tt.rows.get_mut(uuid).and_then(|tr| tr.new.as_mut())
    }

    /// Deletes a row.
    pub fn delete(&mut self, t: usize, uuid: &Uuid) {
        let db = self.db;
        let tt = &mut self.tables[t];
        match tt.rows.get_mut(uuid) {
            Some(tr) => tr.new = None,
            None => {
                if let Some(old) = db.row(t, uuid) {
                    tt.order.push(*uuid);
                    tt.rows.insert(
                        *uuid,
                        TxnRow {
                            old: Some(old.clone()),
                            new: None,
                        },
                    );
                }
            }
        }
    }

    /// Runs the commit-time checks and returns what the transaction changed.
    pub fn commit(self) -> Result<ChangeSet> {
        Commit::new(self).run()
    }
}

/// A row during the commit-time checks.
struct WorkRow {
    uuid: Uuid,
    old: Option<Arc<Row>>,
    new: Option<Arc<Row>>,
    n_refs: i64,
    changed: Vec<bool>,
}

impl WorkRow {
    fn any_changed(&self) -> bool {
        self.changed.iter().any(|c| *c)
    }
}

#[derive(Default)]
struct WorkTable {
    rows: Vec<WorkRow>,
    pos: UuidMap<usize>,
}

/// One strong reference a row gains (`delta` 1) or loses (-1) in a column.
#[derive(Clone, Copy)]
struct RefChange<'s> {
    column: usize,
    ref_table: &'s str,
    target: Uuid,
    delta: i64,
}

/// Whether the column's keys or values are strong references.
fn is_strong_column(col: &ColumnSchema) -> bool {
    col.ty.key.is_strong_ref() || col.ty.value.as_ref().is_some_and(|v| v.is_strong_ref())
}

/// Appends the strong references of the elements (pairs) of `from` that are
/// not in `minus` (an absent datum is empty): keys first, then values, as
/// [`added_removed`] followed by a walk of the difference's keys and values
/// would, but without building the difference.
fn push_ref_changes<'s>(
    column: usize,
    col: &'s ColumnSchema,
    from: Option<&Datum>,
    minus: Option<&Datum>,
    delta: i64,
    out: &mut Vec<RefChange<'s>>,
) {
    let Some(from) = from else { return };
    // `Datum::subtract`'s rule for what stays.
    let stays = |i: usize| match minus {
        None => true,
        Some(m) => match (&m.values, m.find_key(&from.keys[i])) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(mv), Some(j)) => from.values.as_ref().map(|v| &v[i]) != Some(&mv[j]),
        },
    };
    // Keys first, then values; each side only if its type is a strong reference.
    let key_side = col
        .ty
        .key
        .ref_table
        .as_ref()
        .filter(|_| col.ty.key.is_strong_ref())
        .map(|rt| (rt, &from.keys));
    let value_side = match (&col.ty.value, &from.values) {
        (Some(vt), Some(vals)) if vt.is_strong_ref() => vt.ref_table.as_ref().map(|rt| (rt, vals)),
        _ => None,
    };
    for (rt, atoms) in key_side.into_iter().chain(value_side) {
        for (i, a) in atoms.iter().enumerate() {
            if let Some(target) = a.as_uuid().filter(|_| stays(i)) {
                out.push(RefChange {
                    column,
                    ref_table: rt,
                    target,
                    delta,
                });
            }
        }
    }
}

struct Commit<'a> {
    db: &'a Database,
    tables: PerTable<WorkTable>,
    touched: Vec<bool>,
}

impl<'a> Commit<'a> {
    fn new(txn: Txn<'a>) -> Commit<'a> {
        let db = txn.db;
        let mut tables = PerTable::new(txn.tables.len());
        let mut touched = vec![false; txn.tables.len()];
        for (t, mut tt) in txn.tables.into_sorted() {
            let n_cols = db.schema.tables[t].columns.len();
            // `pos` is built by `determine_changes`, once the rows that did not change are gone.
            let mut wt = WorkTable {
                rows: Vec::with_capacity(tt.order.len()),
                pos: UuidMap::default(),
            };
            for u in &tt.order {
                if let Some(tr) = tt.rows.remove(u) {
                    if tr.old.is_none() && tr.new.is_none() {
                        continue;
                    }
                    wt.rows.push(WorkRow {
                        uuid: *u,
                        old: tr.old,
                        new: tr.new.map(Arc::new),
                        n_refs: 0,
                        changed: vec![false; n_cols],
                    });
                }
            }
            touched[t] = !wt.rows.is_empty();
            tables[t] = wt;
        }
        Commit {
            db,
            tables,
            touched,
        }
    }

    fn run(mut self) -> Result<ChangeSet> {
        self.determine_changes();
        if self.tables.iter().all(|(_, t)| t.rows.is_empty()) {
            return Ok(ChangeSet::default());
        }
        self.update_ref_counts()?;
        self.collect_garbage();
        self.check_max_rows()?;
        self.assess_weak_refs()?;
        self.check_index_uniqueness()?;
        Ok(self.into_changes())
    }

    fn table_schema(&self, t: usize) -> &'a TableSchema {
        &self.db.schema.tables[t]
    }

    fn determine_changes(&mut self) {
        for (_, wt) in self.tables.iter_mut() {
            for r in &mut wt.rows {
                match (&r.old, &r.new) {
                    (Some(o), Some(n)) => {
                        for (c, flag) in r.changed.iter_mut().enumerate() {
                            *flag = o.fields[c] != n.fields[c];
                        }
                    }
                    _ => r.changed.iter_mut().for_each(|f| *f = true),
                }
            }
            // Rows modified back to their old value are not part of the transaction.
            wt.rows
                .retain(|r| r.old.is_none() || r.new.is_none() || r.any_changed());
            wt.pos = wt
                .rows
                .iter()
                .enumerate()
                .map(|(i, r)| (r.uuid, i))
                .collect();
        }
        for (t, wt) in self.tables.iter_mut() {
            for r in &mut wt.rows {
                r.n_refs = if r.old.is_some() {
                    self.db.strong_refs(t, &r.uuid) as i64
                } else {
                    0
                };
            }
        }
    }

    /// The work row for (t, uuid), pulling an unmodified committed row into the
    /// commit if needed; `None` if no such row exists.
    fn find_or_make(&mut self, t: usize, uuid: &Uuid) -> Option<usize> {
        if let Some(i) = self.tables[t].pos.get(uuid) {
            return Some(*i);
        }
        let old = self.db.row(t, uuid)?.clone();
        let n_cols = self.db.schema.tables[t].columns.len();
        let wt = &mut self.tables[t];
        let i = wt.rows.len();
        wt.pos.insert(*uuid, i);
        wt.rows.push(WorkRow {
            uuid: *uuid,
            new: Some(old.clone()),
            old: Some(old),
            n_refs: self.db.strong_refs(t, uuid) as i64,
            changed: vec![false; n_cols],
        });
        self.touched[t] = true;
        Some(i)
    }

    fn update_ref_counts(&mut self) -> Result<()> {
        let schema = self.db.schema.clone();
        // One buffer for the whole commit: a row's reference changes are
        // gathered from borrowed rows first, then applied (applying pulls
        // rows into the commit, which a borrow of the row would forbid).
        let mut targets: Vec<RefChange<'_>> = Vec::new();
        for t in 0..self.tables.len() {
            // Rows pulled in later have no changed column: nothing to count.
            if self.tables[t].rows.is_empty() {
                continue;
            }
            let ts = &schema.tables[t];
            if !ts.columns.iter().any(is_strong_column) {
                continue;
            }
            let mut i = 0;
            while i < self.tables[t].rows.len() {
                let r = &self.tables[t].rows[i];
                let uuid = r.uuid;
                targets.clear();
                for (c, col) in ts.columns.iter().enumerate() {
                    if !r.changed[c] || !is_strong_column(col) {
                        continue;
                    }
                    let od = r.old.as_deref().map(|o| &o.fields[c]);
                    let nd = r.new.as_deref().map(|n| &n.fields[c]);
                    // Removed references first, then added ones, as ovsdb-server counts them.
                    push_ref_changes(c, col, od, nd, -1, &mut targets);
                    push_ref_changes(c, col, nd, od, 1, &mut targets);
                }
                for &RefChange {
                    column,
                    ref_table,
                    target,
                    delta,
                } in &targets
                {
                    if target == uuid {
                        continue;
                    }
                    let Some(tt) = schema.table_index(ref_table) else {
                        continue;
                    };
                    match self.find_or_make(tt, &target) {
                        Some(j) => self.tables[tt].rows[j].n_refs += delta,
                        None if delta > 0 => {
                            return Err(OvsdbError::new(
                                "referential integrity violation",
                                format!(
                                    "Table {} column {} row {} references nonexistent row {} in table {}.",
                                    ts.name, ts.columns[column].name, uuid, target, ref_table
                                ),
                            ))
                        }
                        None => {}
                    }
                }
                i += 1;
            }
        }
        for (t, wt) in self.tables.iter() {
            for r in &wt.rows {
                if r.new.is_none() && r.n_refs > 0 {
                    return Err(OvsdbError::new(
                        "referential integrity violation",
                        format!(
                            "cannot delete {} row {} because of {} remaining reference(s)",
                            schema.tables[t].name, r.uuid, r.n_refs
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn collect_garbage(&mut self) {
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for t in 0..self.tables.len() {
            if self.table_schema(t).is_root {
                continue;
            }
            for i in 0..self.tables[t].rows.len() {
                let r = &self.tables[t].rows[i];
                if r.new.is_some() && r.n_refs == 0 {
                    stack.push((t, i));
                }
            }
        }
        let mut targets = Vec::new();
        while let Some((t, i)) = stack.pop() {
            let ts = self.table_schema(t);
            if ts.is_root {
                continue;
            }
            let Some(row) = self.tables[t].rows[i].new.take() else {
                continue;
            };
            self.tables[t].rows[i]
                .changed
                .iter_mut()
                .for_each(|f| *f = true);
            targets.clear();
            crate::db::database::for_each_ref(&self.db.schema, ts, &row, |tt, u, strong| {
                if strong {
                    targets.push((tt, u));
                }
            });
            for &(tt, u) in &targets {
                if let Some(j) = self.find_or_make(tt, &u) {
                    let r = &mut self.tables[tt].rows[j];
                    r.n_refs -= 1;
                    if r.n_refs == 0 && r.new.is_some() {
                        stack.push((tt, j));
                    }
                }
            }
        }
    }

    fn check_max_rows(&self) -> Result<()> {
        for (t, wt) in self.tables.iter() {
            if !self.touched[t] {
                continue;
            }
            let ts = self.table_schema(t);
            let Some(max) = ts.max_rows else { continue };
            let mut n = self.db.tables[t].rows.len() as i64;
            for r in &wt.rows {
                n += r.new.is_some() as i64 - r.old.is_some() as i64;
            }
            if n as u64 > max {
                return Err(OvsdbError::constraint(format!(
                    "transaction causes \"{}\" table to contain {} rows, greater than the schema-defined limit of {} row(s)",
                    ts.name, n, max
                )));
            }
        }
        Ok(())
    }

    /// Whether (t, uuid) exists once the transaction commits.
    fn exists_after(&self, t: usize, uuid: &Uuid) -> bool {
        match self.tables[t].pos.get(uuid) {
            Some(i) => self.tables[t].rows[*i].new.is_some(),
            None => self.db.row(t, uuid).is_some(),
        }
    }

    fn assess_weak_refs(&mut self) -> Result<()> {
        // Rows that weakly reference a deleted row must lose those references.
        let mut referrers = Vec::new();
        for (t, wt) in self.tables.iter() {
            for r in &wt.rows {
                if r.old.is_some() && r.new.is_none() {
                    if let Some(m) = self.db.tables[t].weak_referrers.get(&r.uuid) {
                        referrers.extend(m.keys().copied());
                    }
                }
            }
        }
        for (st, su) in referrers {
            self.find_or_make(st, &su);
        }
        let schema = self.db.schema.clone();
        for t in 0..self.tables.len() {
            // No rows are added below: a table without any has nothing to check.
            if self.tables[t].rows.is_empty() {
                continue;
            }
            let ts = &schema.tables[t];
            let weak_cols: Vec<usize> = ts
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    c.ty.key.is_weak_ref() || c.ty.value.as_ref().is_some_and(|v| v.is_weak_ref())
                })
                .map(|(i, _)| i)
                .collect();
            if weak_cols.is_empty() {
                continue;
            }
            for i in 0..self.tables[t].rows.len() {
                let Some(new) = self.tables[t].rows[i].new.clone() else {
                    continue;
                };
                let inserted = self.tables[t].rows[i].old.is_none();
                let mut replaced: Vec<(usize, Datum)> = Vec::new();
                for &c in &weak_cols {
                    let col = &ts.columns[c];
                    let d = &new.fields[c];
                    let key_ref = col
                        .ty
                        .key
                        .ref_table
                        .as_deref()
                        .filter(|_| col.ty.key.is_weak_ref());
                    let val_ref = col
                        .ty
                        .value
                        .as_ref()
                        .and_then(|v| v.ref_table.as_deref().filter(|_| v.is_weak_ref()));
                    let mut keep = Vec::with_capacity(d.len());
                    let mut zero = false;
                    for (k, v) in d.pairs() {
                        let mut ok = true;
                        for (rt, a) in [(key_ref, Some(k)), (val_ref, v)] {
                            if let (Some(rt), Some(a)) = (rt, a) {
                                if let (Some(u), Some(tt)) = (a.as_uuid(), schema.table_index(rt)) {
                                    if u != new.uuid && !self.exists_after(tt, &u) {
                                        ok = false;
                                        zero |= u.is_nil();
                                    }
                                }
                            }
                        }
                        keep.push(ok);
                    }
                    let n_removed = keep.iter().filter(|k| !**k).count();
                    if n_removed == 0 {
                        continue;
                    }
                    let mut nd = d.clone();
                    let mut it = keep.iter();
                    nd.keys.retain(|_| *it.next().unwrap_or(&true));
                    if let Some(vals) = &mut nd.values {
                        let mut it = keep.iter();
                        vals.retain(|_| *it.next().unwrap_or(&true));
                    }
                    if (nd.len() as u64) < col.ty.min as u64 {
                        return Err(if zero && inserted {
                            OvsdbError::constraint(format!(
                                "Weak reference column \"{}\" in \"{}\" row {} (inserted within this transaction) contained all-zeros UUID (probably as the default value for this column) but deleting this value caused a constraint volation because this column is not allowed to be empty.",
                                col.name, ts.name, new.uuid
                            ))
                        } else {
                            OvsdbError::constraint(format!(
                                "Deletion of {} weak reference(s) to deleted (or never-existing) rows from column \"{}\" in \"{}\" row {} {}caused this column to become empty, but constraints on this column disallow an empty column.",
                                n_removed,
                                col.name,
                                ts.name,
                                new.uuid,
                                if inserted { "(inserted within this transaction) " } else { "" }
                            ))
                        });
                    }
                    replaced.push((c, nd));
                }
                if !replaced.is_empty() {
                    let r = &mut self.tables[t].rows[i];
                    if let Some(n) = r.new.as_mut() {
                        let row = Arc::make_mut(n);
                        for (c, nd) in replaced {
                            row.fields[c] = nd;
                            r.changed[c] = true;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn check_index_uniqueness(&self) -> Result<()> {
        for (t, wt) in self.tables.iter() {
            if wt.rows.is_empty() {
                continue;
            }
            let ts = self.table_schema(t);
            for (ix, cols) in ts.indexes.iter().enumerate() {
                let mut local: FastMap<Cow<'_, [Datum]>, usize> = FastMap::default();
                for (i, r) in wt.rows.iter().enumerate() {
                    let Some(new) = &r.new else { continue };
                    let key = index_key_ref(new, cols);
                    if let Some(&j) = local.get(&key) {
                        return Err(self.duplicate_index_row(t, cols, Some(&wt.rows[j]), None, r));
                    }
                    if let Some(other) = self.db.tables[t].indexes[ix].get(&*key) {
                        if !wt.pos.contains_key(other) {
                            let orow = self.db.row(t, other).cloned();
                            return Err(self.duplicate_index_row(t, cols, None, orow, r));
                        }
                    }
                    // Only later rows look the key up: the last one need not be kept.
                    if i + 1 < wt.rows.len() {
                        local.insert(key, i);
                    }
                }
            }
        }
        Ok(())
    }

    fn duplicate_index_row(
        &self,
        t: usize,
        cols: &[usize],
        a_work: Option<&WorkRow>,
        a_committed: Option<Arc<Row>>,
        b: &WorkRow,
    ) -> OvsdbError {
        let ts = self.table_schema(t);
        let a_row: Option<Arc<Row>> = a_work.and_then(|w| w.new.clone()).or(a_committed);
        let (Some(a_row), Some(b_row)) = (a_row, b.new.clone()) else {
            return OvsdbError::constraint("duplicate index values");
        };
        // ovsdb-server orders the two rows by all columns, `_uuid` first, the greater first.
        let (first, first_w, second, second_w) = if a_row.uuid < b_row.uuid {
            (b_row, Some(b), a_row, a_work)
        } else {
            (a_row, a_work, b_row, Some(b))
        };
        let index_names: Vec<String> = cols
            .iter()
            .map(|c| format!("\"{}\"", ts.column_name(*c)))
            .collect();
        let mut s = format!(
            "Transaction causes multiple rows in \"{}\" table to have identical values ({}) for index on {} {}.  ",
            ts.name,
            columns_to_string(ts, &first, cols),
            if cols.len() == 1 { "column" } else { "columns" },
            english_list(&index_names)
        );
        describe_index_row(ts, cols, &first, first_w, "First", &mut s);
        s.push_str("  ");
        describe_index_row(ts, cols, &second, second_w, "Second", &mut s);
        OvsdbError::constraint(s)
    }

    fn into_changes(self) -> ChangeSet {
        let mut cs = ChangeSet::default();
        for (t, wt) in self.tables.into_sorted() {
            let mut rows = Vec::with_capacity(wt.rows.len());
            for mut r in wt.rows {
                let any_changed = r.any_changed();
                match (&r.old, &mut r.new) {
                    (None, None) => continue,
                    (Some(_), Some(_)) if !any_changed => continue,
                    // A modified row gets its new `_version` only now (within
                    // the transaction it showed the old one); an inserted row
                    // keeps the one it got at insert time.
                    (Some(_), Some(n)) => Arc::make_mut(n).version = Uuid::new_v4(),
                    (None, Some(_)) | (Some(_), None) => {}
                }
                // Sized first: collected from a filter, it would regrow a few times.
                let mut changed = Vec::with_capacity(r.changed.iter().filter(|f| **f).count());
                changed.extend(
                    r.changed
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| **f)
                        .map(|(c, _)| c),
                );
                rows.push(RowChange {
                    uuid: r.uuid,
                    old: r.old,
                    new: r.new,
                    changed,
                });
            }
            if !rows.is_empty() {
                cs.tables.push(TableChanges { table: t, rows });
            }
        }
        cs
    }
}

fn describe_index_row(
    ts: &TableSchema,
    cols: &[usize],
    row: &Row,
    work: Option<&WorkRow>,
    title: &str,
    out: &mut String,
) {
    out.push_str(&format!("{title} row, with UUID {}, ", row.uuid));
    match work {
        Some(w) if w.any_changed() => match &w.old {
            None => out.push_str("was inserted by this transaction."),
            Some(old) => {
                if cols.iter().all(|c| old.datum(*c) == row.datum(*c)) {
                    out.push_str(
                        "existed in the database before this transaction, which modified some of the row's columns but not any columns in this index.",
                    );
                } else {
                    out.push_str("had the following index values before the transaction: ");
                    out.push_str(&columns_to_string(ts, old, cols));
                    out.push('.');
                }
            }
        },
        _ => out.push_str(
            "existed in the database before this transaction and was not modified by the transaction.",
        ),
    }
}

/// A row's values for `cols`, as ovsdb-server prints them in messages ("a, 1, and true").
pub fn columns_to_string(ts: &TableSchema, row: &Row, cols: &[usize]) -> String {
    let items: Vec<String> = cols
        .iter()
        .map(|c| datum_to_string(&row.datum(*c), &ts.column(*c).ty))
        .collect();
    english_list(&items)
}

/// Joins items as English does: "a", "a and b", "a, b, and c".
pub fn english_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

/// A datum in ovs-vsctl notation: `[a, b]` for sets, `{k=v}` for maps, bare scalars.
pub fn datum_to_string(d: &Datum, ty: &crate::schema::Type) -> String {
    let bracket = ty.max > 1 || d.is_empty();
    let mut s = String::new();
    if bracket {
        s.push(if d.is_map() { '{' } else { '[' });
    }
    for (i, (k, v)) in d.pairs().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&k.to_display_string());
        if let Some(v) = v {
            s.push('=');
            s.push_str(&v.to_display_string());
        }
    }
    if bracket {
        s.push(if d.is_map() { '}' } else { ']' });
    }
    s
}

/// Elements (pairs) of `new` not in `old`, and of `old` not in `new`.
pub fn added_removed(old: &Datum, new: &Datum) -> (Datum, Datum) {
    let mut added = new.clone();
    added.subtract(old);
    let mut removed = old.clone();
    removed.subtract(new);
    (added, removed)
}

#[cfg(test)]
mod tests {
    use crate::db::Database;
    use crate::schema::DatabaseSchema;
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn db() -> Database {
        let s = DatabaseSchema::from_json(&json!({
            "name": "t", "version": "1.0.0",
            "tables": {
                "P": {"columns": {
                    "name": {"type": "string"},
                    "kids": {"type": {"key": {"type": "uuid", "refTable": "K"}, "min": 0, "max": "unlimited"}},
                    "fav": {"type": {"key": {"type": "uuid", "refTable": "K", "refType": "weak"}, "min": 0, "max": 1}},
                    "must": {"type": {"key": {"type": "uuid", "refTable": "K", "refType": "weak"}, "min": 1, "max": 2}}},
                      "isRoot": true, "indexes": [["name"]], "maxRows": 3},
                "K": {"columns": {"v": {"type": "integer"}}}
            }}))
        .expect("schema");
        Database::new(Arc::new(s))
    }

    // Tables are numbered in name order.
    const K: usize = 0;
    const P: usize = 1;

    fn err(r: &Value) -> Option<String> {
        r.as_array()?
            .iter()
            .find_map(|x| x.get("error").and_then(Value::as_str).map(str::to_string))
    }

    fn insert_p(db: &mut Database, name: &str, kids: usize) -> Value {
        let mut ops = Vec::new();
        let mut refs = Vec::new();
        for i in 0..kids {
            ops.push(json!({"op": "insert", "table": "K", "row": {"v": i}, "uuid-name": format!("k{i}")}));
            refs.push(json!(["named-uuid", format!("k{i}")]));
        }
        let must = if kids > 0 {
            json!(["named-uuid", "k0"])
        } else {
            json!(["set", []])
        };
        ops.push(json!({"op": "insert", "table": "P", "row": {"name": name, "kids": ["set", refs], "must": must}}));
        db.transact(&ops)
    }

    #[test]
    fn garbage_collects_unreferenced_non_root_rows() {
        let mut d = db();
        let r = d.transact(&[json!({"op": "insert", "table": "K", "row": {"v": 1}})]);
        assert_eq!(err(&r), None);
        assert_eq!(
            d.tables[K].rows.len(),
            0,
            "an unreferenced K row is collected at once"
        );
        let r = insert_p(&mut d, "a", 2);
        assert_eq!(err(&r), None, "{r}");
        assert_eq!(d.tables[K].rows.len(), 2);
        d.transact(&[json!({"op": "delete", "table": "P", "where": [["name", "==", "a"]]})]);
        assert_eq!(d.tables[K].rows.len(), 0, "kids go with their parent");
    }

    #[test]
    fn strong_references_protect_rows() {
        let mut d = db();
        insert_p(&mut d, "a", 1);
        let r = d.transact(&[json!({"op": "delete", "table": "K", "where": []})]);
        assert_eq!(
            err(&r).as_deref(),
            Some("referential integrity violation"),
            "{r}"
        );
        let details = r[1]["details"].as_str().unwrap_or_default();
        assert!(
            details.contains("because of 1 remaining reference(s)"),
            "{details}"
        );
        assert_eq!(
            r.as_array().map(Vec::len),
            Some(2),
            "commit failure adds an element"
        );
        let r = d.transact(&[json!({"op": "insert", "table": "P", "row": {"name": "b", "kids": ["uuid", "6f3d2c6e-0000-4000-8000-000000000001"]}})]);
        assert_eq!(err(&r).as_deref(), Some("referential integrity violation"));
    }

    #[test]
    fn weak_references_are_removed_and_min_enforced() {
        let mut d = db();
        insert_p(&mut d, "a", 2);
        // Columns are numbered in name order: fav, kids, must, name.
        let p = d.tables[P].rows.values().next().cloned().expect("P");
        let must = p.fields[2].keys[0].as_uuid();
        let other = d.tables[K]
            .rows
            .keys()
            .copied()
            .find(|k| Some(*k) != must)
            .expect("kid");
        let fav = json!(["uuid", other.to_string()]);
        let r =
            d.transact(&[json!({"op": "update", "table": "P", "where": [], "row": {"fav": fav}})]);
        assert_eq!(err(&r), None, "{r}");
        // Dropping the favourite kid from `kids` collects it, and the weak `fav` empties.
        let r = d.transact(&[json!({"op": "mutate", "table": "P", "where": [], "mutations": [["kids", "delete", fav]]})]);
        assert_eq!(err(&r), None, "{r}");
        let p = d.tables[P].rows.values().next().cloned().expect("P");
        assert!(
            p.fields[0].is_empty(),
            "fav weak reference removed: {:?}",
            p.fields[0]
        );
        // `must` has min 1: deleting its only target is a constraint violation.
        let r = d.transact(&[
            json!({"op": "update", "table": "P", "where": [], "row": {"kids": ["set", []]}}),
        ]);
        assert_eq!(err(&r).as_deref(), Some("constraint violation"), "{r}");
        assert!(
            r[1]["details"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Deletion of 1 weak reference(s)"),
            "{r}"
        );
    }

    #[test]
    fn unique_index_and_max_rows() {
        let mut d = db();
        insert_p(&mut d, "a", 1);
        let r = insert_p(&mut d, "a", 1);
        assert_eq!(err(&r).as_deref(), Some("constraint violation"));
        let details = r
            .as_array()
            .and_then(|a| a.last())
            .and_then(|e| e["details"].as_str())
            .unwrap_or_default();
        assert!(
            details.contains("identical values (a) for index on column \"name\""),
            "{details}"
        );
        // Renaming the old row in the same transaction frees the name.
        let r = d.transact(&[
            json!({"op": "update", "table": "P", "where": [["name", "==", "a"]], "row": {"name": "z"}}),
            json!({"op": "insert", "table": "K", "row": {}, "uuid-name": "k"}),
            json!({"op": "insert", "table": "P", "row": {"name": "a", "kids": ["named-uuid", "k"], "must": ["named-uuid", "k"]}}),
        ]);
        assert_eq!(err(&r), None, "{r}");
        insert_p(&mut d, "c", 1);
        let r = insert_p(&mut d, "d", 1);
        assert_eq!(err(&r).as_deref(), Some("constraint violation"));
        assert!(
            r.to_string()
                .contains("greater than the schema-defined limit of 3 row(s)"),
            "{r}"
        );
    }

    #[test]
    fn no_op_update_changes_nothing() {
        let mut d = db();
        insert_p(&mut d, "a", 1);
        let before = d.tables[P].rows.values().next().cloned().expect("row");
        let (r, cs) = d.transact_with_changes(&[
            json!({"op": "update", "table": "P", "where": [], "row": {"name": "a"}}),
        ]);
        assert_eq!(r, json!([{"count": 1}]));
        assert!(cs.is_empty());
        let after = d.tables[P].rows.values().next().cloned().expect("row");
        assert_eq!(
            before.version, after.version,
            "_version kept when nothing changed"
        );
        let (_, cs) = d.transact_with_changes(&[
            json!({"op": "update", "table": "P", "where": [], "row": {"name": "b"}}),
        ]);
        assert_eq!(cs.n_rows(), 1);
        let after2 = d.tables[P].rows.values().next().cloned().expect("row");
        assert_ne!(after.version, after2.version, "_version renewed on change");
    }
}
