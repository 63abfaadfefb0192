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
