//! One file per transaction operation (RFC 7047 section 5.2), plus the
//! parsing helpers they share.

pub mod abort;
pub mod assert;
pub mod comment;
pub mod commit;
pub mod delete;
pub mod insert;
pub mod mutate;
pub mod select;
pub mod update;
pub mod wait;

use crate::data::{Datum, Row, SymbolTable};
use crate::db::execution::Exec;
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};
use crate::schema::TableSchema;
use serde_json::Value;
use uuid::Uuid;

/// Parses the table-name member; records "No table named X." in the parser if unknown.
pub fn parse_table(x: &Exec<'_, '_>, p: &mut Parser<'_>, member: &str) -> Option<usize> {
    let name = p.member(member, Kinds::ID)?.as_str()?;
    let t = x.txn.db().schema.table_index(name);
    if t.is_none() {
        p.raise(format!("No table named {name}."));
    }
    t
}

/// Parses a row object into a row of `ts` (unlisted columns at their
/// defaults), returning it with the columns that were listed.
pub fn parse_row(
    ts: &TableSchema,
    json: &Value,
    symtab: Option<&mut SymbolTable>,
    uuid: Uuid,
) -> Result<(Row, Vec<usize>)> {
    let mut row = Row::new_default(ts, uuid);
    let mut listed = Vec::new();
    let obj = json
        .as_object()
        .ok_or_else(|| OvsdbError::syntax(Some(json), None, "row must be JSON object"))?;
    let mut symtab = symtab;
    for (name, value) in obj {
        let (c, datum) = parse_column(ts, json, name, value, symtab.as_deref_mut())?;
        // `_uuid` and `_version` are accepted; insert overrides them, update
        // refuses them as immutable, and wait compares them.
        let atom_uuid = datum.first().and_then(|a| a.as_uuid());
        match c {
            crate::data::row::COL_UUID => row.uuid = atom_uuid.unwrap_or(row.uuid),
            crate::data::row::COL_VERSION => row.version = atom_uuid.unwrap_or(row.version),
            _ => row.fields[c] = datum,
        }
        if !listed.contains(&c) {
            listed.push(c);
        }
    }
    Ok((row, listed))
}

/// One member `name: value` of row object `json`: the column's index and
/// its datum, or ovsdb-server's error for an unknown column or a bad value.
fn parse_column(
    ts: &TableSchema,
    json: &Value,
    name: &str,
    value: &Value,
    symtab: Option<&mut SymbolTable>,
) -> Result<(usize, Datum)> {
    let c = ts.column_index(name).ok_or_else(|| {
        OvsdbError::syntax(
            Some(json),
            Some("unknown column"),
            format!("No column {name} in table {}.", ts.name),
        )
    })?;
    Ok((c, Datum::from_json(&ts.column(c).ty, value, symtab)?))
}

/// Parses a row object into only the columns it lists, in its order, with
/// [`parse_row`]'s checks and errors in the same order: for operations that
/// use the listed columns alone, without building a whole default row.
pub fn parse_row_columns(
    ts: &TableSchema,
    json: &Value,
    symtab: Option<&mut SymbolTable>,
) -> Result<Vec<(usize, Datum)>> {
    let obj = json
        .as_object()
        .ok_or_else(|| OvsdbError::syntax(Some(json), None, "row must be JSON object"))?;
    let mut listed: Vec<(usize, Datum)> = Vec::with_capacity(obj.len());
    let mut symtab = symtab;
    for (name, value) in obj {
        let (c, datum) = parse_column(ts, json, name, value, symtab.as_deref_mut())?;
        match listed.iter_mut().find(|(l, _)| *l == c) {
            Some(slot) => slot.1 = datum,
            None => listed.push((c, datum)),
        }
    }
    Ok(listed)
}

/// Parses a `columns` member: absent means every column (with `_uuid` and `_version`).
pub fn parse_columns(json: Option<&Value>, ts: &TableSchema) -> Result<Vec<usize>> {
    let Some(json) = json else {
        return Ok(ts.all_columns());
    };
    let bad = || OvsdbError::syntax(Some(json), None, "array of distinct column names expected");
    let arr = json.as_array().ok_or_else(bad)?;
    let mut cols = Vec::with_capacity(arr.len());
    for v in arr {
        let s = v.as_str().ok_or_else(bad)?;
        let c = ts.column_index(s).ok_or_else(|| {
            OvsdbError::syntax(Some(json), None, format!("{s} is not a valid column name"))
        })?;
        if cols.contains(&c) {
            return Err(bad());
        }
        cols.push(c);
    }
    Ok(cols)
}
