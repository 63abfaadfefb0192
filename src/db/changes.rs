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
        let mut tables: std::collections::BTreeMap<
            usize,
            (Vec<Uuid>, std::collections::HashMap<Uuid, RowChange>),
        > = std::collections::BTreeMap::new();
        for cs in [self, later] {
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
