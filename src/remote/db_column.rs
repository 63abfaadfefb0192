//! What a `db:DB,TABLE,COLUMN` names, checked against the schema with
//! ovsdb-server's wording (parse_db_column): a column of remote strings,
//! or of references to Connection-like rows.

use crate::remote::target::DbColumn;
use crate::schema::types::AtomicType;
use crate::schema::DatabaseSchema;

/// What the column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    /// Strings: remote names, or a setting's value.
    Strings,
    /// References to rows of this table, each with a `target`.
    Refs(String),
    /// Anything else: yields no remote (as ovsdb-server ignores it).
    Other,
}

/// Checks `c` against the schema of its database (`None`: no database by that name).
pub fn column_kind(
    schema: Option<&DatabaseSchema>,
    c: &DbColumn,
    name: &str,
) -> Result<ColumnKind, String> {
    let schema = schema.ok_or_else(|| format!("\"{name}\": no database named {}", c.db))?;
    let table = schema
        .table(&c.table)
        .ok_or_else(|| format!("\"{name}\": no table named {}", c.table))?;
    let column = table
        .column_index(&c.column)
        .map(|i| table.column(i))
        .filter(|col| col.name == c.column)
        .ok_or_else(|| {
            format!(
                "\"{name}\": table \"{}\" has no column \"{}\"",
                c.table, c.column
            )
        })?;
    let ty = &column.ty;
    if ty.value.is_some() {
        return Ok(ColumnKind::Other);
    }
    Ok(match (&ty.key.atomic, &ty.key.ref_table) {
        (AtomicType::String, _) => ColumnKind::Strings,
        (AtomicType::Uuid, Some(t)) => ColumnKind::Refs(t.clone()),
        _ => ColumnKind::Other,
    })
}

/// As [`column_kind`], for a setting: the column must hold strings.
pub fn string_column(
    schema: Option<&DatabaseSchema>,
    c: &DbColumn,
    name: &str,
) -> Result<(), String> {
    match column_kind(schema, c, name)? {
        ColumnKind::Strings => Ok(()),
        _ => Err(format!(
            "\"{name}\": table \"{}\" column \"{}\" is not string or set of strings",
            c.table, c.column
        )),
    }
}
