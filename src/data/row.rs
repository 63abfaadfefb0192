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
    /// [`Row::to_store_json`] serialised as serde_json serialises it (its
    /// members sorted by name, `_version` among them), written straight
    /// into the bytes: building the JSON value first was a fifth of the
    /// server's instructions per etcd commit.
    pub fn to_store_bytes(&self, table: &TableSchema) -> bytes::Bytes {
        use crate::data::datum_json::{write_atom, write_datum, write_str};
        const VERSION: &str = "_version";
        let mut out = Vec::with_capacity(64 + 32 * table.columns.len());
        out.push(b'{');
        let mut version_done = false;
        let mut first = true;
        let mut member = |out: &mut Vec<u8>, name: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, name);
            out.push(b':');
        };
        // The columns are sorted by name, as the JSON object's members are.
        for (c, col) in table.columns.iter().enumerate() {
            if !version_done && col.name.as_str() > VERSION {
                member(&mut out, VERSION);
                write_atom(&mut out, &crate::data::Atom::Uuid(self.version));
                version_done = true;
            }
            member(&mut out, &col.name);
            write_datum(&mut out, &self.fields[c]);
        }
        if !version_done {
            member(&mut out, VERSION);
            write_atom(&mut out, &crate::data::Atom::Uuid(self.version));
        }
        out.push(b'}');
        bytes::Bytes::from(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_bytes_are_serde_jsons_of_the_stored_value() {
        // Upper-case names sort before `_version`, lower-case ones after.
        let table = TableSchema::from_json(
            "T",
            &json!({"columns": {
                "Zed": {"type": "string"},
                "a": {"type": {"key": "real", "min": 0, "max": "unlimited"}},
                "m": {"type": {"key": "string", "value": "integer", "min": 0, "max": "unlimited"}},
                "u": {"type": {"key": "uuid", "min": 0, "max": 1}},
                "b": {"type": "boolean"}}}),
        )
        .expect("schema");
        let mut row = Row::new_default(&table, Uuid::from_u128(7));
        row.version = Uuid::from_u128(0xabcdef);
        assert_eq!(
            row.to_store_bytes(&table),
            serde_json::to_vec(&row.to_store_json(&table)).expect("json")
        );
        let values = [
            ("Zed", json!("quote \" backslash \\ tab \t nul-ish \u{1} é")),
            ("a", json!(["set", [0.5, 1e300, -2.0]])),
            (
                "m",
                json!(["map", [["k", 1], ["\n", -9223372036854775807i64]]]),
            ),
            ("u", json!(["uuid", "01234567-89ab-cdef-0123-456789abcdef"])),
            ("b", json!(true)),
        ];
        for (name, v) in values {
            let c = table.column_index(name).expect("column");
            row.fields[c] = Datum::from_json(&table.columns[c].ty, &v, None).expect("datum");
        }
        assert_eq!(
            row.to_store_bytes(&table),
            serde_json::to_vec(&row.to_store_json(&table)).expect("json")
        );
    }
}
