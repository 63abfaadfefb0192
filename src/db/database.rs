//! The in-memory database: rows of every table, strong reference counts,
//! the weak-reference reverse index and unique indexes. Changed only by
//! applying a committed [`ChangeSet`].

use crate::data::{Datum, FastMap, Row, UuidMap};
use crate::db::changes::ChangeSet;
use crate::db::condition_index::{ProbeKey, RowProbes};
use crate::schema::{DatabaseSchema, TableSchema};
use std::sync::Arc;
use uuid::Uuid;

/// The rows of one table and what is derived from them.
#[derive(Debug, Clone, Default)]
pub struct TableData {
    /// Rows by UUID.
    pub rows: UuidMap<Arc<Row>>,
    /// Number of strong references to each row from other rows (absent = 0).
    pub strong_refs: UuidMap<u32>,
    /// For each row, the rows that reference it weakly: (table, uuid) -> count.
    pub weak_referrers: UuidMap<FastMap<(usize, Uuid), u32>>,
    /// One map per unique index of the schema: index values -> row.
    pub indexes: Vec<FastMap<Vec<Datum>, Uuid>>,
    /// Rows by the probe keys of the columns monitor conditions use.
    pub probes: RowProbes,
}

/// A database: its schema and the contents of its tables.
#[derive(Debug, Clone)]
pub struct Database {
    /// The schema.
    pub schema: Arc<DatabaseSchema>,
    /// Table contents, parallel to `schema.tables`.
    pub tables: Vec<TableData>,
}

impl Database {
    /// An empty database.
    pub fn new(schema: Arc<DatabaseSchema>) -> Database {
        let tables = schema
            .tables
            .iter()
            .map(|t| TableData {
                indexes: vec![FastMap::default(); t.indexes.len()],
                ..TableData::default()
            })
            .collect();
        Database { schema, tables }
    }

    /// A row by table index and UUID.
    pub fn row(&self, table: usize, uuid: &Uuid) -> Option<&Arc<Row>> {
        self.tables[table].rows.get(uuid)
    }

    /// Strong reference count of a row.
    pub fn strong_refs(&self, table: usize, uuid: &Uuid) -> u32 {
        self.tables[table]
            .strong_refs
            .get(uuid)
            .copied()
            .unwrap_or(0)
    }

    /// Number of rows in all tables.
    pub fn n_rows(&self) -> usize {
        self.tables.iter().map(|t| t.rows.len()).sum()
    }

    /// Keeps `table`'s rows indexed by the probe keys of (column, whole),
    /// from now on.
    pub fn ensure_probes(&mut self, table: usize, column: usize, whole: bool) {
        if let Some(t) = self.tables.get_mut(table) {
            let TableData { rows, probes, .. } = t;
            probes.ensure(column, whole, rows.values().map(|r| r.as_ref()));
        }
    }

    /// The rows of `table` that may offer `key`, if its column is indexed
    /// (see [`ensure_probes`](Self::ensure_probes)).
    pub fn rows_probed(&self, table: usize, key: &ProbeKey) -> Option<&[Uuid]> {
        self.tables.get(table)?.probes.rows(key)
    }

    /// Applies a committed change set: rows, reference counts, weak-reference
    /// index and unique indexes. The change set must come from a transaction
    /// checked against this database (or a replica of it).
    pub fn apply(&mut self, changes: &ChangeSet) {
        let schema = self.schema.clone();
        // Remove old index entries and references first, then add new ones,
        // so rows swapping index values within one commit stay consistent.
        for tc in &changes.tables {
            let ts = &schema.tables[tc.table];
            for rc in &tc.rows {
                if let Some(old) = &rc.old {
                    self.unlink(tc.table, ts, old, rc.new.as_deref());
                    if !self.tables[tc.table].probes.is_empty() {
                        self.tables[tc.table].probes.remove(old);
                    }
                }
            }
        }
        for tc in &changes.tables {
            let ts = &schema.tables[tc.table];
            for rc in &tc.rows {
                match &rc.new {
                    Some(new) => {
                        self.link(tc.table, ts, new, rc.old.as_deref());
                        if !self.tables[tc.table].probes.is_empty() {
                            self.tables[tc.table].probes.add(new);
                        }
                        self.tables[tc.table].rows.insert(rc.uuid, new.clone());
                    }
                    None => {
                        let t = &mut self.tables[tc.table];
                        t.rows.remove(&rc.uuid);
                        t.strong_refs.remove(&rc.uuid);
                        t.weak_referrers.remove(&rc.uuid);
                    }
                }
            }
        }
    }

    /// Takes `row` out of the indexes and reference counts; index entries
    /// that `other` (the row's version after the change) keeps are left.
    fn unlink(&mut self, table: usize, ts: &TableSchema, row: &Row, other: Option<&Row>) {
        for (i, cols) in ts.indexes.iter().enumerate() {
            if other.is_some_and(|o| same_index_key(row, o, cols)) {
                continue;
            }
            let key = index_key_ref(row, cols);
            let idx = &mut self.tables[table].indexes[i];
            if idx.get(&*key) == Some(&row.uuid) {
                idx.remove(&*key);
            }
        }
        for_each_ref(&self.schema, ts, row, |target_table, target, strong| {
            let t = &mut self.tables[target_table];
            if strong {
                if let Some(n) = t.strong_refs.get_mut(&target) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        t.strong_refs.remove(&target);
                    }
                }
            } else if let Some(m) = t.weak_referrers.get_mut(&target) {
                if let Some(n) = m.get_mut(&(table, row.uuid)) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        m.remove(&(table, row.uuid));
                    }
                }
                if m.is_empty() {
                    t.weak_referrers.remove(&target);
                }
            }
        });
    }

    /// Puts `row` into the indexes and reference counts; index entries that
    /// `other` (the row's version before the change) had are already there.
    fn link(&mut self, table: usize, ts: &TableSchema, row: &Row, other: Option<&Row>) {
        for (i, cols) in ts.indexes.iter().enumerate() {
            if other.is_some_and(|o| same_index_key(row, o, cols)) {
                continue;
            }
            let key = index_key(row, cols);
            self.tables[table].indexes[i].insert(key, row.uuid);
        }
        for_each_ref(&self.schema, ts, row, |target_table, target, strong| {
            let t = &mut self.tables[target_table];
            if strong {
                *t.strong_refs.entry(target).or_insert(0) += 1;
            } else {
                *t.weak_referrers
                    .entry(target)
                    .or_default()
                    .entry((table, row.uuid))
                    .or_insert(0) += 1;
            }
        });
    }
}

/// The values of a row's index columns.
pub fn index_key(row: &Row, cols: &[usize]) -> Vec<Datum> {
    cols.iter().map(|c| row.datum(*c).into_owned()).collect()
}

/// Whether two versions of one row have the same values in `cols` (an
/// index's columns): a modification that keeps them leaves the index as is.
fn same_index_key(a: &Row, b: &Row, cols: &[usize]) -> bool {
    a.uuid == b.uuid && cols.iter().all(|c| a.datum(*c) == b.datum(*c))
}

/// [`index_key`], borrowed from the row when the index is one user column
/// (the common case), so that looking a row up copies nothing.
pub fn index_key_ref<'r>(row: &'r Row, cols: &[usize]) -> std::borrow::Cow<'r, [Datum]> {
    match cols {
        [c] if *c < row.fields.len() => {
            std::borrow::Cow::Borrowed(std::slice::from_ref(&row.fields[*c]))
        }
        _ => std::borrow::Cow::Owned(index_key(row, cols)),
    }
}

/// Calls `f(target_table, target_uuid, is_strong)` for every reference the
/// row holds to another row (self-references do not count, as in ovsdb-server).
pub fn for_each_ref(
    schema: &DatabaseSchema,
    ts: &TableSchema,
    row: &Row,
    mut f: impl FnMut(usize, Uuid, bool),
) {
    for (c, col) in ts.columns.iter().enumerate() {
        let datum = &row.fields[c];
        if let Some(rt) = &col.ty.key.ref_table {
            if let Some(ti) = schema.table_index(rt) {
                let strong = col.ty.key.is_strong_ref();
                for a in &datum.keys {
                    if let Some(u) = a.as_uuid() {
                        if u != row.uuid {
                            f(ti, u, strong);
                        }
                    }
                }
            }
        }
        if let (Some(vt), Some(values)) = (&col.ty.value, &datum.values) {
            if let Some(rt) = &vt.ref_table {
                if let Some(ti) = schema.table_index(rt) {
                    let strong = vt.is_strong_ref();
                    for a in values {
                        if let Some(u) = a.as_uuid() {
                            if u != row.uuid {
                                f(ti, u, strong);
                            }
                        }
                    }
                }
            }
        }
    }
}
