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
use crate::db::op_result::OpResult;
use crate::db::raw_op::{RawDatum, RawOp, RawRow};
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};
use crate::schema::TableSchema;
use serde_json::{Map, Value};
use std::borrow::Cow;
use uuid::Uuid;

/// Executes an operation decoded from the bytes: `None` when it must go the
/// JSON way instead (the schema or the transaction refuses it, and the JSON
/// path gives ovsdb-server's error), having changed nothing but named-UUID
/// references (which the JSON path then finds as it would have made them);
/// otherwise its outcome, as the JSON path would have given it.
pub fn execute_raw(x: &mut Exec<'_, '_>, op: &RawOp) -> Option<Result<OpResult>> {
    match op {
        RawOp::Insert(i) => insert::execute_raw(x, i),
        RawOp::Update(u) => update::execute_raw(x, u),
        RawOp::Mutate(m) => mutate::execute_raw(x, m),
        RawOp::Delete(d) => delete::execute_raw(x, d),
    }
}

/// Parses the table-name member; records "No table named X." in the parser if unknown.
pub fn parse_table(x: &Exec<'_, '_>, p: &mut Parser<'_>, member: &str) -> Option<usize> {
    let name = p.member(member, Kinds::ID)?.as_str()?;
    let t = x.txn.db().schema.table_index(name);
    if t.is_none() {
        p.raise(format!("No table named {name}."));
    }
    t
}

/// A row object's members: a JSON object, or a row decoded from the bytes.
#[derive(Clone, Copy)]
pub enum RowJson<'j> {
    /// A JSON object (anything else is refused as ovsdb-server does).
    Json(&'j Value),
    /// A row decoded straight from the request's bytes.
    Raw(&'j RawRow),
}

/// A member's value in a [`RowJson`].
#[derive(Clone, Copy)]
enum MemberValue<'j> {
    Json(&'j Value),
    Raw(&'j RawDatum),
}

impl<'j> RowJson<'j> {
    /// Calls `f` with each member, in the order of a `serde_json::Map`.
    fn for_each(self, mut f: impl FnMut(&'j str, MemberValue<'j>) -> Result<()>) -> Result<()> {
        match self {
            RowJson::Json(json) => {
                let obj = json.as_object().ok_or_else(|| {
                    OvsdbError::syntax(Some(json), None, "row must be JSON object")
                })?;
                for (name, value) in obj {
                    f(name, MemberValue::Json(value))?;
                }
            }
            RowJson::Raw(raw) => {
                for (name, value) in &raw.0 {
                    f(name, MemberValue::Raw(value))?;
                }
            }
        }
        Ok(())
    }

    /// How many members the row has (0 for a non-object).
    fn len(self) -> usize {
        match self {
            RowJson::Json(json) => json.as_object().map_or(0, Map::len),
            RowJson::Raw(raw) => raw.0.len(),
        }
    }

    /// The row object as sent, for an error message.
    fn whole(self) -> Cow<'j, Value> {
        match self {
            RowJson::Json(json) => Cow::Borrowed(json),
            RowJson::Raw(raw) => Cow::Owned(raw.to_json()),
        }
    }
}

/// Parses a row object into a row of `ts` (unlisted columns at their
/// defaults), returning it with the columns that were listed.
pub fn parse_row(
    ts: &TableSchema,
    json: RowJson<'_>,
    symtab: Option<&mut SymbolTable>,
    uuid: Uuid,
) -> Result<(Row, Vec<usize>)> {
    let mut row = Row::new_default(ts, uuid);
    let mut listed = Vec::new();
    let mut symtab = symtab;
    json.for_each(|name, value| {
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
        Ok(())
    })?;
    Ok((row, listed))
}

/// One member `name: value` of row object `json`: the column's index and
/// its datum, or ovsdb-server's error for an unknown column or a bad value.
fn parse_column(
    ts: &TableSchema,
    json: RowJson<'_>,
    name: &str,
    value: MemberValue<'_>,
    symtab: Option<&mut SymbolTable>,
) -> Result<(usize, Datum)> {
    let c = ts.column_index(name).ok_or_else(|| {
        OvsdbError::syntax(
            Some(&json.whole()),
            Some("unknown column"),
            format!("No column {name} in table {}.", ts.name),
        )
    })?;
    let ty = &ts.column(c).ty;
    let datum = match value {
        MemberValue::Json(json) => Datum::from_json(ty, json, symtab)?,
        MemberValue::Raw(raw) => raw.to_datum(ty, symtab)?,
    };
    Ok((c, datum))
}

/// Parses a row object into only the columns it lists, in its order, with
/// [`parse_row`]'s checks and errors in the same order: for operations that
/// use the listed columns alone, without building a whole default row.
pub fn parse_row_columns(
    ts: &TableSchema,
    json: RowJson<'_>,
    symtab: Option<&mut SymbolTable>,
) -> Result<Vec<(usize, Datum)>> {
    let mut listed: Vec<(usize, Datum)> = Vec::with_capacity(json.len());
    let mut symtab = symtab;
    json.for_each(|name, value| {
        let (c, datum) = parse_column(ts, json, name, value, symtab.as_deref_mut())?;
        match listed.iter_mut().find(|(l, _)| *l == c) {
            Some(slot) => slot.1 = datum,
            None => listed.push((c, datum)),
        }
        Ok(())
    })?;
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
