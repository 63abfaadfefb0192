//! The `insert` operation.

use crate::data::atom::parse_uuid_str;
use crate::data::Row;
use crate::db::execution::Exec;
use crate::db::op_result::OpResult;
use crate::db::ops::{parse_row, parse_table, RowJson};
use crate::db::raw_op::RawInsert;
use crate::db::rbac::{self, Write};
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};
use uuid::Uuid;

/// Inserts one row; the result is `{"uuid": ["uuid", ...]}`.
pub fn execute(x: &mut Exec<'_, '_>, p: &mut Parser<'_>) -> Result<OpResult> {
    let t = parse_table(x, p, "table");
    let uuid_json = p.member("uuid", Kinds::STRING | Kinds::OPTIONAL);
    let uuid_name = p.member("uuid-name", Kinds::ID | Kinds::OPTIONAL);
    let row_json = p.member("row", Kinds::OBJECT);
    if let Some(e) = p.error() {
        return Err(e);
    }
    let (Some(t), Some(row_json)) = (t, row_json) else {
        return Err(OvsdbError::new(
            "ovsdb error",
            "internal error: missing table or row",
        ));
    };
    let mut row_uuid = None;
    if let Some(uj) = uuid_json {
        let s = uj.as_str().unwrap_or("");
        let u = parse_uuid_str(s).ok_or_else(|| OvsdbError::syntax(Some(uj), None, "bad uuid"))?;
        if !x.txn.may_create(t, &u) {
            return Err(OvsdbError::syntax(
                Some(uj),
                Some("duplicate uuid"),
                "This UUID would duplicate a UUID already present within the table or deleted within the same transaction.",
            ));
        }
        row_uuid = Some(u);
    }
    if let Some(name_json) = uuid_name {
        let name = name_json.as_str().unwrap_or("");
        if x.symtab.is_created(name) {
            return Err(OvsdbError::syntax(
                Some(name_json),
                Some("duplicate uuid-name"),
                "This \"uuid-name\" appeared on an earlier \"insert\" operation.",
            ));
        }
        row_uuid = Some(x.symtab.bind(name, row_uuid));
        x.symtab.mark_created(name);
    }
    let uuid = row_uuid.unwrap_or_else(Uuid::new_v4);
    let ts = &x.txn.db().schema.tables[t];
    let (row, _) = parse_row(ts, RowJson::Json(row_json), Some(&mut x.symtab), uuid)?;
    insert_row(x, t, row, uuid)
}

/// [`execute`] for an `insert` decoded from the bytes (see
/// [`crate::db::ops::execute_raw`]). The `uuid-name` is marked as inserted
/// last, so that falling back leaves the JSON path what it expects.
pub fn execute_raw(x: &mut Exec<'_, '_>, raw: &RawInsert) -> Option<Result<OpResult>> {
    let t = x.txn.db().schema.table_index(&raw.table)?;
    let mut row_uuid = match &raw.uuid {
        Some(s) => Some(parse_uuid_str(s).filter(|u| x.txn.may_create(t, u))?),
        None => None,
    };
    if let Some(name) = &raw.uuid_name {
        if x.symtab.is_created(name) {
            return None;
        }
        row_uuid = Some(x.symtab.bind(name, row_uuid));
    }
    let uuid = row_uuid.unwrap_or_else(Uuid::new_v4);
    let ts = &x.txn.db().schema.tables[t];
    let (row, _) = parse_row(ts, RowJson::Raw(&raw.row), Some(&mut x.symtab), uuid).ok()?;
    if let Some(name) = &raw.uuid_name {
        x.symtab.mark_created(name);
    }
    Some(insert_row(x, t, row, uuid))
}

/// The checks that follow parsing, and the insertion itself.
fn insert_row(x: &mut Exec<'_, '_>, t: usize, mut row: Row, uuid: Uuid) -> Result<OpResult> {
    let ts = &x.txn.db().schema.tables[t];
    row.uuid = uuid;
    // Defaults may violate constraints (an enum without "" for a string, say).
    for (c, col) in ts.columns.iter().enumerate() {
        if row.fields[c].len() == 1 {
            row.fields[c].check_constraints(&col.ty)?;
        }
    }
    if let Some(who) = x.ctx.rbac {
        if !rbac::may_insert(x.txn.db(), who, t, &row) {
            return Err(who.denied(Write::Insert, &ts.name));
        }
    }
    x.txn.insert(t, row);
    Ok(OpResult::Uuid(uuid))
}
