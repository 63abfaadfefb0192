//! Change sets: what one committed transaction did to each table.

use crate::data::Row;
use std::sync::Arc;
use uuid::Uuid;

/// One row's change: inserted (`old` none), deleted (`new` none) or modified.
#[derive(Debug, Clone)]
pub struct RowChange {
    /// The row's UUID.
    pub uuid: Uuid,
    /// The row before the transaction.
    pub old: Option<Arc<Row>>,
    /// The row after the transaction.
    pub new: Option<Arc<Row>>,
    /// Indexes of the user columns whose value changed (all columns for inserts and deletes).
    pub changed: Vec<usize>,
}

/// The changes to one table.
#[derive(Debug, Clone)]
pub struct TableChanges {
    /// The table's index in the schema.
    pub table: usize,
    /// Changed rows.
    pub rows: Vec<RowChange>,
}

/// Everything a committed transaction changed, table by table (tables in schema order).
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    /// Tables with at least one changed row.
    pub tables: Vec<TableChanges>,
}

impl ChangeSet {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Total number of changed rows.
    pub fn n_rows(&self) -> usize {
        self.tables.iter().map(|t| t.rows.len()).sum()
    }

    /// The changes to table `table`, if any.
    pub fn table(&self, table: usize) -> Option<&TableChanges> {
        self.tables.iter().find(|t| t.table == table)
    }
}

impl ChangeSet {
    /// The combined effect of `self` followed by `later`: per row the oldest
    /// `old` and the newest `new`; a row inserted and then deleted vanishes.
    /// Used to merge the pending updates of a slow client into one.
    pub fn merge(&self, later: &ChangeSet) -> ChangeSet {
        ChangeSet::merge_all(&[self, later])
    }

    /// The combined effect of several change sets in order (see [`ChangeSet::merge`]).
    pub fn merge_all(sets: &[&ChangeSet]) -> ChangeSet {
        let mut tables: std::collections::BTreeMap<
            usize,
            (Vec<Uuid>, crate::data::UuidMap<RowChange>),
        > = std::collections::BTreeMap::new();
        for cs in sets {
            for tc in &cs.tables {
                let (order, rows) = tables.entry(tc.table).or_default();
                for rc in &tc.rows {
                    match rows.get_mut(&rc.uuid) {
                        Some(prev) => {
                            prev.new = rc.new.clone();
                            for c in &rc.changed {
                                if !prev.changed.contains(c) {
                                    prev.changed.push(*c);
                                }
                            }
                        }
                        None => {
                            order.push(rc.uuid);
                            rows.insert(rc.uuid, rc.clone());
                        }
                    }
                }
            }
        }
        let mut out = ChangeSet::default();
        for (table, (order, mut rows)) in tables {
            let rows: Vec<RowChange> = order
                .into_iter()
                .filter_map(|u| rows.remove(&u))
                .filter(|rc| rc.old.is_some() || rc.new.is_some())
                .collect();
            if !rows.is_empty() {
                out.tables.push(TableChanges { table, rows });
            }
        }
        out
    }
}

impl ChangeSet {
    /// The change set that undoes this one (every row's `old` and `new`
    /// swapped): applied after it, the database is as before.
    pub fn inverse(&self) -> ChangeSet {
        ChangeSet {
            tables: self
                .tables
                .iter()
                .map(|tc| TableChanges {
                    table: tc.table,
                    rows: tc
                        .rows
                        .iter()
                        .map(|rc| RowChange {
                            uuid: rc.uuid,
                            old: rc.new.clone(),
                            new: rc.old.clone(),
                            changed: rc.changed.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The change set that turns database `old` into `new` (same schema): rows
/// only in `new` inserted, only in `old` deleted, different ones modified.
/// Used after a reload from the store, so monitors get exactly the difference.
pub fn diff(old: &crate::db::Database, new: &crate::db::Database) -> ChangeSet {
    let mut cs = ChangeSet::default();
    for (t, (ot, nt)) in old.tables.iter().zip(&new.tables).enumerate() {
        let n = new.schema.tables[t].columns.len();
        let mut rows = Vec::new();
        for (u, o) in &ot.rows {
            match nt.rows.get(u) {
                None => rows.push(RowChange {
                    uuid: *u,
                    old: Some(o.clone()),
                    new: None,
                    changed: (0..n).collect(),
                }),
                Some(nw) => {
                    let changed: Vec<usize> =
                        (0..n).filter(|c| o.fields[*c] != nw.fields[*c]).collect();
                    if !changed.is_empty() {
                        rows.push(RowChange {
                            uuid: *u,
                            old: Some(o.clone()),
                            new: Some(nw.clone()),
                            changed,
                        });
                    }
                }
            }
        }
        for (u, nw) in &nt.rows {
            if !ot.rows.contains_key(u) {
                rows.push(RowChange {
                    uuid: *u,
                    old: None,
                    new: Some(nw.clone()),
                    changed: (0..n).collect(),
                });
            }
        }
        if !rows.is_empty() {
            rows.sort_by_key(|r| r.uuid);
            cs.tables.push(TableChanges { table: t, rows });
        }
    }
    cs
}
