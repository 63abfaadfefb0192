//! Online schema conversion (`convert`, `ovsdb-client convert`): the data
//! of a database carried over to a new schema, checked like a transaction.

use crate::data::{Datum, Row};
use crate::db::changes::{ChangeSet, RowChange, TableChanges};
use crate::db::database::Database;
use crate::error::{OvsdbError, Result};
use crate::schema::DatabaseSchema;
use std::sync::Arc;

/// Converts `db` to `schema`: tables and columns the new schema lacks are
/// dropped, new columns take their defaults, values are re-checked against
/// the new types (an error names the table, column and row). The converted
/// rows keep their UUIDs, get new `_version`s, and must satisfy the new schema's constraints.
pub fn convert(db: &Database, schema: Arc<DatabaseSchema>) -> Result<Database> {
    if schema.name != db.schema.name {
        return Err(OvsdbError::new(
            "invalid parameters",
            format!(
                "new schema name ({}) does not match database name ({})",
                schema.name, db.schema.name
            ),
        ));
    }
    let mut cs = ChangeSet::default();
    for (nt, nts) in schema.tables.iter().enumerate() {
        let Some(ot) = db.schema.table_index(&nts.name) else {
            continue;
        };
        let ots = &db.schema.tables[ot];
        let mut rows = Vec::new();
        for (u, old) in &db.tables[ot].rows {
            let mut row = Row::new_default(nts, *u);
            // ovsdb-server inserts every converted row anew: a fresh `_version`.
            row.version = uuid::Uuid::new_v4();
            for (nc, col) in nts.columns.iter().enumerate() {
                let Some(oc) = ots
                    .column_index(&col.name)
                    .filter(|c| *c < ots.columns.len())
                else {
                    continue;
                };
                let json = old.fields[oc].to_json();
                // ovsdb-server reports the value's own parse error, unadorned.
                let d = Datum::from_json(&col.ty, &json, None)?;
                row.fields[nc] = d;
            }
            rows.push(RowChange {
                uuid: *u,
                old: None,
                new: Some(Arc::new(row)),
                changed: Vec::new(),
            });
        }
        if !rows.is_empty() {
            cs.tables.push(TableChanges { table: nt, rows });
        }
    }
    let mut out = Database::new(schema);
    check_integrity(&out.schema, &cs)?;
    out.apply(&cs);
    Ok(out)
}

/// Strong references of the converted data must point at existing rows.
fn check_integrity(schema: &DatabaseSchema, cs: &ChangeSet) -> Result<()> {
    let exists = |t: usize, u: &uuid::Uuid| {
        cs.table(t)
            .is_some_and(|tc| tc.rows.iter().any(|r| &r.uuid == u))
    };
    for tc in &cs.tables {
        let ts = &schema.tables[tc.table];
        for rc in &tc.rows {
            let Some(row) = &rc.new else { continue };
            let mut bad = None;
            crate::db::database::for_each_ref(schema, ts, row, |t, u, strong| {
                if strong && bad.is_none() && !exists(t, &u) {
                    bad = Some((t, u));
                }
            });
            if let Some((t, u)) = bad {
                return Err(OvsdbError::new(
                    "referential integrity violation",
                    format!(
                        "Table {} row {} references nonexistent row {} in table {}.",
                        ts.name, row.uuid, u, schema.tables[t].name
                    ),
                ));
            }
        }
    }
    Ok(())
}
