//! The `update` operation.

use crate::db::condition::Condition;
use crate::db::execution::Exec;
use crate::db::ops::{parse_row_columns, parse_table};
use crate::db::rbac::{self, Write};
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};
use serde_json::{json, Map, Value};

/// Sets the given columns of every matching row; the result is `{"count": n}`.
pub fn execute(
    x: &mut Exec<'_, '_>,
    p: &mut Parser<'_>,
    result: &mut Map<String, Value>,
) -> Result<()> {
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
    let columns = parse_row_columns(ts, row_json, Some(&mut x.symtab))?;
    for &(c, _) in &columns {
        let col = ts.column(c);
        if !col.mutable {
            return Err(OvsdbError::syntax(
                Some(p.json()),
                Some("constraint violation"),
                format!(
                    "Cannot update immutable column {} in table {}.",
                    col.name, ts.name
                ),
            ));
        }
    }
    let cond = Condition::from_json(ts, where_json, Some(&mut x.symtab))?;
    let matches = x.txn.matching(t, &cond);
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
                for (c, d) in &columns {
                    m.fields[*c] = d.clone();
                }
            }
        }
    }
    result.insert("count".into(), json!(matches.len()));
    Ok(())
}
