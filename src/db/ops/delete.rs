//! The `delete` operation.

use crate::db::condition::Condition;
use crate::db::execution::Exec;
use crate::db::op_result::OpResult;
use crate::db::ops::parse_table;
use crate::db::raw_op::RawDelete;
use crate::db::rbac::{self, Write};
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};

/// Deletes every matching row; the result is `{"count": n}`.
pub fn execute(x: &mut Exec<'_, '_>, p: &mut Parser<'_>) -> Result<OpResult> {
    let where_json = p.member("where", Kinds::ARRAY);
    let t = parse_table(x, p, "table");
    if let Some(e) = p.error() {
        return Err(e);
    }
    let (Some(t), Some(where_json)) = (t, where_json) else {
        return Err(OvsdbError::new(
            "ovsdb error",
            "internal error: missing member",
        ));
    };
    let ts = &x.txn.db().schema.tables[t];
    let cond = Condition::from_json(ts, where_json, Some(&mut x.symtab))?;
    delete_rows(x, t, &cond)
}

/// [`execute`] for a `delete` decoded from the bytes (see
/// [`crate::db::ops::execute_raw`]).
pub fn execute_raw(x: &mut Exec<'_, '_>, raw: &RawDelete) -> Option<Result<OpResult>> {
    let t = x.txn.db().schema.table_index(&raw.table)?;
    let ts = &x.txn.db().schema.tables[t];
    let cond = Condition::from_raw(ts, &raw.condition, Some(&mut x.symtab))?;
    Some(delete_rows(x, t, &cond))
}

/// Deletes the rows `cond` selects, once RBAC allows it.
fn delete_rows(x: &mut Exec<'_, '_>, t: usize, cond: &Condition) -> Result<OpResult> {
    let ts = &x.txn.db().schema.tables[t];
    let matches = x.txn.matching(t, cond);
    if let Some(who) = x.ctx.rbac {
        let rows = matches.iter().filter_map(|u| x.txn.get(t, u));
        if !rbac::may_delete(x.txn.db(), who, t, rows) {
            return Err(who.denied(Write::Delete, &ts.name));
        }
    }
    for u in &matches {
        x.txn.delete(t, u);
    }
    Ok(OpResult::Count(matches.len()))
}
