//! The `wait` operation.

use crate::data::Datum;
use crate::db::condition::Condition;
use crate::db::execution::Exec;
use crate::db::op_result::OpResult;
use crate::db::ops::{parse_columns, parse_row, parse_table, RowJson};
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};
use std::collections::HashSet;
use uuid::Uuid;

/// Succeeds when the matching rows (on `columns`) equal (`==`) or differ from
/// (`!=`) `rows`; otherwise times out, or reports "not supported" so that the
/// caller re-runs the transaction when the database changes.
pub fn execute(x: &mut Exec<'_, '_>, p: &mut Parser<'_>) -> Result<OpResult> {
    let timeout = p.member("timeout", Kinds::INTEGER | Kinds::OPTIONAL);
    let where_json = p.member("where", Kinds::ARRAY);
    let columns_json = p.member("columns", Kinds::ARRAY | Kinds::OPTIONAL);
    let until = p.member("until", Kinds::STRING);
    let rows = p.member("rows", Kinds::ARRAY);
    let t = parse_table(x, p, "table");
    if let Some(e) = p.error() {
        return Err(e);
    }
    let (Some(t), Some(where_json), Some(until), Some(rows)) = (t, where_json, until, rows) else {
        return Err(OvsdbError::new(
            "ovsdb error",
            "internal error: missing member",
        ));
    };
    let ts = &x.txn.db().schema.tables[t];
    let cond = Condition::from_json(ts, where_json, Some(&mut x.symtab))?;
    let columns = parse_columns(columns_json, ts)?;
    let timeout_ms = match timeout {
        Some(tj) => {
            let ms = crate::data::atom::json_integer(tj).unwrap_or(0);
            if ms < 0 {
                return Err(OvsdbError::syntax(
                    Some(tj),
                    None,
                    "timeout must be nonnegative",
                ));
            }
            x.timeout_ms = Some(x.timeout_ms.map_or(ms, |cur| cur.min(ms)));
            ms
        }
        None => i64::MAX,
    };
    let until_s = until.as_str().unwrap_or("");
    if until_s != "==" && until_s != "!=" {
        return Err(OvsdbError::syntax(
            Some(until),
            None,
            "\"until\" must be \"==\" or \"!=\"",
        ));
    }
    let mut expected: HashSet<Vec<Datum>> = HashSet::new();
    for r in rows.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let (row, _) = parse_row(ts, RowJson::Json(r), Some(&mut x.symtab), Uuid::nil())?;
        expected.insert(columns.iter().map(|c| row.datum(*c).into_owned()).collect());
    }
    let mut actual: HashSet<Vec<Datum>> = HashSet::new();
    let mut equal = true;
    for u in x.txn.matching(t, &cond) {
        let Some(row) = x.txn.get(t, &u) else {
            continue;
        };
        let key: Vec<Datum> = columns.iter().map(|c| row.datum(*c).into_owned()).collect();
        if expected.contains(&key) {
            actual.insert(key);
        } else {
            equal = false;
            break;
        }
    }
    if equal {
        equal = actual.len() == expected.len();
    }
    if (until_s == "==") != equal {
        if timeout.is_some() && x.ctx.elapsed_ms >= timeout_ms {
            if x.ctx.elapsed_ms > 0 {
                return Err(OvsdbError::new(
                    "timed out",
                    format!("\"wait\" timed out after {} ms", x.ctx.elapsed_ms),
                ));
            }
            return Err(OvsdbError::new("timed out", "\"where\" clause test failed"));
        }
        return Err(OvsdbError::new("not supported", "triggers not supported"));
    }
    Ok(OpResult::Empty)
}
