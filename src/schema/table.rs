//! Table schemas.

use crate::data::row::{COL_UUID, COL_VERSION};
use crate::data::FastMap;
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};
use crate::schema::column::ColumnSchema;
use serde_json::{json, Map, Value};

/// One table: its columns, root-ness, row limit and unique indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// The table's name.
    pub name: String,
    /// User columns, in a fixed order (sorted by name); rows store fields in this order.
    pub columns: Vec<ColumnSchema>,
    by_name: FastMap<String, usize>,
    /// Whether rows are kept when nothing references them.
    pub is_root: bool,
    /// Maximum number of rows, if limited.
    pub max_rows: Option<u64>,
    /// The table's `mutable` flag: kept and served, as ovsdb-server 3.1 does
    /// (which enforces nothing with it).
    pub mutable: bool,
    /// Unique indexes, each a list of column indexes.
    pub indexes: Vec<Vec<usize>>,
    uuid_column: ColumnSchema,
    version_column: ColumnSchema,
}

impl TableSchema {
    /// Parses the table named `name`; `isRoot` is resolved later by the database schema.
    pub fn from_json(name: &str, json: &Value) -> Result<TableSchema> {
        let mut p = Parser::new(json, format!("table schema for table {name}"));
        // ovsdb-server's member order: the first bad member is the one reported.
        let columns = p.member("columns", Kinds::OBJECT);
        let mutable = p.member("mutable", Kinds::BOOLEAN | Kinds::OPTIONAL);
        let max_rows = p.member("maxRows", Kinds::INTEGER | Kinds::OPTIONAL);
        let is_root = p.member("isRoot", Kinds::BOOLEAN | Kinds::OPTIONAL);
        let indexes = p.member("indexes", Kinds::ARRAY | Kinds::OPTIONAL);
        p.finish()?;
        let columns_json = columns
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let max_rows = match max_rows {
            None => None,
            Some(v) => match crate::data::atom::json_integer(v) {
                // ovsdb-server keeps the limit as an unsigned int: UINT_MAX
                // and beyond mean no limit (and are not served back).
                Some(n) if n >= i64::from(u32::MAX) => None,
                Some(n) if n >= 1 => Some(n as u64),
                _ => {
                    return Err(OvsdbError::syntax(
                        Some(json),
                        None,
                        "maxRows must be at least 1",
                    ))
                }
            },
        };
        if columns_json.is_empty() {
            return Err(OvsdbError::syntax(
                Some(json),
                None,
                "table must have at least one column",
            ));
        }
        let mut cols = Vec::new();
        for (cname, cjson) in &columns_json {
            ColumnSchema::check_name(cname, json)?;
            cols.push(ColumnSchema::from_json(cname, cjson)?);
        }
        let by_name = cols
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let mut table = TableSchema {
            name: name.to_string(),
            columns: cols,
            by_name,
            is_root: is_root.and_then(Value::as_bool).unwrap_or(false),
            max_rows,
            mutable: mutable.and_then(Value::as_bool).unwrap_or(true),
            indexes: Vec::new(),
            uuid_column: ColumnSchema::builtin("_uuid"),
            version_column: ColumnSchema::builtin("_version"),
        };
        if let Some(indexes) = indexes.and_then(Value::as_array) {
            for index in indexes {
                let parsed = table.parse_index(index, json)?;
                table.indexes.push(parsed);
            }
        }
        Ok(table)
    }

    /// Parses one index as ovsdb-server does (`ovsdb_column_set_from_json`
    /// plus the table's checks): distinct column names, `_uuid` and
    /// `_version` included, at least one, none ephemeral.
    fn parse_index(&self, index: &Value, table_json: &Value) -> Result<Vec<usize>> {
        let distinct =
            || OvsdbError::syntax(Some(index), None, "array of distinct column names expected");
        let names = index.as_array().ok_or_else(distinct)?;
        let mut cols = Vec::new();
        for n in names {
            let cname = n.as_str().ok_or_else(distinct)?;
            let c = self.column_index(cname).ok_or_else(|| {
                OvsdbError::syntax(
                    Some(index),
                    None,
                    format!("{cname} is not a valid column name"),
                )
            })?;
            if cols.contains(&c) {
                return Err(distinct());
            }
            cols.push(c);
        }
        if cols.is_empty() {
            return Err(OvsdbError::syntax(
                Some(table_json),
                None,
                "index must have at least one column",
            ));
        }
        if let Some(c) = cols.iter().find(|c| self.column(**c).ephemeral) {
            return Err(OvsdbError::syntax(
                Some(table_json),
                None,
                format!(
                    "ephemeral columns (such as {}) may not be indexed",
                    self.column_name(*c)
                ),
            ));
        }
        Ok(cols)
    }

    /// The index of a column by name; `_uuid` and `_version` map to [`COL_UUID`] and [`COL_VERSION`].
    pub fn column_index(&self, name: &str) -> Option<usize> {
        match name {
            "_uuid" => Some(COL_UUID),
            "_version" => Some(COL_VERSION),
            _ => self.by_name.get(name).copied(),
        }
    }

    /// The column schema for an index from [`column_index`](Self::column_index).
    pub fn column(&self, index: usize) -> &ColumnSchema {
        match index {
            COL_UUID => &self.uuid_column,
            COL_VERSION => &self.version_column,
            _ => &self.columns[index],
        }
    }

    /// The name of a column by index.
    pub fn column_name(&self, index: usize) -> &str {
        &self.column(index).name
    }

    /// Every column index including `_uuid` and `_version`, as `select` returns them by default.
    pub fn all_columns(&self) -> Vec<usize> {
        let mut v = vec![COL_UUID, COL_VERSION];
        v.extend(0..self.columns.len());
        v
    }

    /// The table as schema JSON; `isRoot` printed when it differs from `default_root`.
    pub fn to_json(&self, default_root: bool) -> Value {
        let mut m = Map::new();
        if !self.mutable {
            m.insert("mutable".into(), json!(false));
        }
        let cols: Map<String, Value> = self
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.to_json()))
            .collect();
        m.insert("columns".into(), Value::Object(cols));
        if self.is_root != default_root {
            m.insert("isRoot".into(), json!(self.is_root));
        }
        if let Some(n) = self.max_rows {
            m.insert("maxRows".into(), json!(n));
        }
        if !self.indexes.is_empty() {
            let idx: Vec<Value> = self
                .indexes
                .iter()
                .map(|cols| {
                    Value::Array(cols.iter().map(|c| json!(self.column_name(*c))).collect())
                })
                .collect();
            m.insert("indexes".into(), Value::Array(idx));
        }
        Value::Object(m)
    }
}
