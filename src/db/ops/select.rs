//! The `select` operation.

use crate::data::Row;
use crate::db::condition::Condition;
use crate::db::execution::Exec;
use crate::db::op_result::OpResult;
use crate::db::ops::{parse_columns, parse_table};
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Returns the matching rows' chosen columns, without duplicate rows when `_uuid` is not chosen.
pub fn execute(x: &mut Exec<'_, '_>, p: &mut Parser<'_>) -> Result<OpResult> {
    let t = parse_table(x, p, "table");
    let where_json = p.member("where", Kinds::ARRAY);
    let columns_json = p.member("columns", Kinds::ARRAY | Kinds::OPTIONAL);
    let sort_json = p.member("sort", Kinds::ARRAY | Kinds::OPTIONAL);
    if let Some(e) = p.error() {
        return Err(e);
    }
    let (Some(t), Some(where_json)) = (t, where_json) else {
        return Err(OvsdbError::new(
            "ovsdb error",
            "internal error: missing table or where",
        ));
    };
    let ts = &x.txn.db().schema.tables[t];
    let cond = Condition::from_json(ts, where_json, Some(&mut x.symtab))?;
    let columns = parse_columns(columns_json, ts)?;
    let sort = match sort_json {
        Some(s) => parse_columns(Some(s), ts)?,
        None => Vec::new(),
    };
    let mut rows: Vec<&Row> = x
        .txn
        .matching(t, &cond)
        .iter()
        .filter_map(|u| x.txn.get(t, u))
        .collect();
    if !columns.contains(&crate::data::row::COL_UUID) {
        let mut seen = HashSet::new();
        rows.retain(|r| {
            seen.insert(
                columns
                    .iter()
                    .map(|c| r.datum(*c).into_owned())
                    .collect::<Vec<_>>(),
            )
        });
    }
    if !sort.is_empty() {
        rows.sort_by(|a, b| {
            for c in &sort {
                let o = a.datum(*c).cmp(&b.datum(*c));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let out: Vec<Value> = rows
        .iter()
        .map(|r| r.to_json_columns(ts, &columns))
        .collect();
    let mut result = Map::new();
    result.insert("rows".into(), Value::Array(out));
    Ok(OpResult::Json(Value::Object(result)))
}
