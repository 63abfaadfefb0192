//! The `update` operation.

use crate::data::Datum;
use crate::db::condition::Condition;
use crate::db::execution::Exec;
use crate::db::op_result::OpResult;
use crate::db::ops::{parse_row_columns, parse_table, RowJson};
use crate::db::raw_op::RawUpdate;
use crate::db::rbac::{self, Write};
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};
use crate::schema::{ColumnSchema, TableSchema};

/// Sets the given columns of every matching row; the result is `{"count": n}`.
pub fn execute(x: &mut Exec<'_, '_>, p: &mut Parser<'_>) -> Result<OpResult> {
    let t = parse_table(x, p, "table");
    let where_json = p.member("where", Kinds::ARRAY);
    let row_json = p.member("row", Kinds::OBJECT);
    if let Some(e) = p.error() {
        return Err(e);
    }
    let (Some(t), Some(where_json), Some(row_json)) = (t, where_json, row_json) else {
        return Err(OvsdbError::new(
            "ovsdb error",
            "internal error: missing member",
        ));
    };
    let ts = &x.txn.db().schema.tables[t];
    let columns = parse_row_columns(ts, RowJson::Json(row_json), Some(&mut x.symtab))?;
    if let Some(col) = immutable(ts, &columns) {
        return Err(OvsdbError::syntax(
            Some(p.json()),
            Some("constraint violation"),
            format!(
                "Cannot update immutable column {} in table {}.",
                col.name, ts.name
            ),
        ));
    }
    let cond = Condition::from_json(ts, where_json, Some(&mut x.symtab))?;
    update_rows(x, t, &columns, &cond)
}

/// [`execute`] for an `update` decoded from the bytes (see
/// [`crate::db::ops::execute_raw`]).
pub fn execute_raw(x: &mut Exec<'_, '_>, raw: &RawUpdate) -> Option<Result<OpResult>> {
    let t = x.txn.db().schema.table_index(&raw.table)?;
    let ts = &x.txn.db().schema.tables[t];
    let columns = parse_row_columns(ts, RowJson::Raw(&raw.row), Some(&mut x.symtab)).ok()?;
    if immutable(ts, &columns).is_some() {
        return None;
    }
    let cond = Condition::from_raw(ts, &raw.condition, Some(&mut x.symtab))?;
    Some(update_rows(x, t, &columns, &cond))
}

/// The first of `columns` that may not be updated.
fn immutable<'s>(ts: &'s TableSchema, columns: &[(usize, Datum)]) -> Option<&'s ColumnSchema> {
    columns
        .iter()
        .map(|&(c, _)| ts.column(c))
        .find(|col| !col.mutable)
}

/// Sets `columns` in the rows `cond` selects, once RBAC allows it.
fn update_rows(
    x: &mut Exec<'_, '_>,
    t: usize,
    columns: &[(usize, Datum)],
    cond: &Condition,
) -> Result<OpResult> {
    let ts = &x.txn.db().schema.tables[t];
    let matches = x.txn.matching(t, cond);
    if let Some(who) = x.ctx.rbac {
        let cols: Vec<usize> = columns.iter().map(|(c, _)| *c).collect();
        let rows = matches.iter().filter_map(|u| x.txn.get(t, u));
        if !rbac::may_modify(x.txn.db(), who, t, &cols, rows) {
            return Err(who.denied(Write::Update, &ts.name));
        }
    }
    for u in &matches {
        let differs = x
            .txn
            .get(t, u)
            .is_some_and(|cur| columns.iter().any(|(c, d)| cur.fields[*c] != *d));
        if differs {
            if let Some(m) = x.txn.modify(t, u) {
                for (c, d) in columns {
                    m.fields[*c] = d.clone();
                }
            }
        }
    }
    Ok(OpResult::Count(matches.len()))
}
