//! Rows: a table's columns by position, plus `_uuid` and `_version`.

use crate::data::datum::Datum;
use crate::schema::TableSchema;
use serde_json::{Map, Value};
use uuid::Uuid;

/// One row: `fields[i]` is the datum of the table schema's column `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row's `_uuid`.
    pub uuid: Uuid,
    /// The row's `_version`, renewed whenever the row changes.
    pub version: Uuid,
    /// Column values, in the table schema's column order.
    pub fields: Vec<Datum>,
}

impl Row {
    /// A row with every column at its default value.
    pub fn new_default(table: &TableSchema, uuid: Uuid) -> Row {
        Row {
            uuid,
            version: Uuid::nil(),
            fields: table
                .columns
                .iter()
                .map(|c| Datum::default_of(&c.ty))
                .collect(),
        }
    }

    /// The datum of column `index`; `_uuid` and `_version` are not in `fields`.
    pub fn field(&self, index: usize) -> &Datum {
        &self.fields[index]
    }

    /// The row as a JSON object with the columns chosen by `columns` (indexes
    /// into the schema, or the special [`COL_UUID`]/[`COL_VERSION`]).
    pub fn to_json_columns(&self, table: &TableSchema, columns: &[usize]) -> Value {
        let mut m = Map::new();
        for &c in columns {
            m.insert(table.column_name(c).to_string(), self.datum_json(c));
        }
        Value::Object(m)
    }

    /// The JSON of one column, `_uuid` and `_version` included.
    pub fn datum_json(&self, c: usize) -> Value {
        match c {
            COL_UUID => crate::data::Atom::Uuid(self.uuid).to_json(),
            COL_VERSION => crate::data::Atom::Uuid(self.version).to_json(),
            _ => self.fields[c].to_json(),
        }
    }

    /// The datum of a column, `_uuid` and `_version` included (those built on demand).
    pub fn datum(&self, c: usize) -> std::borrow::Cow<'_, Datum> {
        match c {
            COL_UUID => std::borrow::Cow::Owned(Datum::scalar(crate::data::Atom::Uuid(self.uuid))),
            COL_VERSION => {
                std::borrow::Cow::Owned(Datum::scalar(crate::data::Atom::Uuid(self.version)))
            }
            _ => std::borrow::Cow::Borrowed(&self.fields[c]),
        }
    }
}

/// Column index standing for `_uuid`.
pub const COL_UUID: usize = usize::MAX;
/// Column index standing for `_version`.
pub const COL_VERSION: usize = usize::MAX - 1;

impl Row {
    /// [`Row::to_store_json`] serialised, as a store value (serde's writer
    /// into a byte vector: cheaper than formatting through `Display`).
    pub fn to_store_bytes(&self, table: &TableSchema) -> bytes::Bytes {
        bytes::Bytes::from(serde_json::to_vec(&self.to_store_json(table)).unwrap_or_default())
    }

    /// The row as stored: every column's datum plus `_version`, keyed by name.
    pub fn to_store_json(&self, table: &TableSchema) -> Value {
        let mut m = Map::new();
        for (c, col) in table.columns.iter().enumerate() {
            m.insert(col.name.clone(), self.fields[c].to_json());
        }
        m.insert(
            "_version".into(),
            crate::data::Atom::Uuid(self.version).to_json(),
        );
        Value::Object(m)
    }

    /// Reads a stored row back; columns missing from the JSON (an older
    /// schema) take their defaults, unknown ones are ignored.
    pub fn from_store_json(
        table: &TableSchema,
        uuid: Uuid,
        json: &Value,
    ) -> Result<Row, crate::error::OvsdbError> {
        let mut row = Row::new_default(table, uuid);
        let obj = json.as_object().ok_or_else(|| {
            crate::error::OvsdbError::syntax(Some(json), None, "stored row must be a JSON object")
        })?;
        for (name, v) in obj {
            if name == "_version" {
                if let Some(Value::String(s)) = v.as_array().and_then(|a| a.get(1)) {
                    row.version = crate::data::atom::parse_uuid_str(s).unwrap_or(row.version);
                }
                continue;
            }
            if let Some(c) = table
                .column_index(name)
                .filter(|c| *c < table.columns.len())
            {
                row.fields[c] = Datum::from_json(&table.columns[c].ty, v, None)?;
            }
        }
        Ok(row)
    }
}
