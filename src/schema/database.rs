//! Database schemas: the parsed `.ovsschema`.

use crate::data::FastMap;
use crate::error::{OvsdbError, Result};
use crate::parser::{is_id, Kinds, Parser};
use crate::schema::table::TableSchema;
use crate::schema::types::BaseType;
use serde_json::{json, Map, Value};
use std::path::Path;

/// A database schema: name, version, checksum and tables.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSchema {
    /// The database's name.
    pub name: String,
    /// The version, `x.y.z`, or empty for old schemas without one.
    pub version: String,
    /// The checksum member, if any (kept, not verified, as ovsdb-server does).
    pub cksum: Option<String>,
    /// Tables, sorted by name; tables are referred to by index into this.
    pub tables: Vec<TableSchema>,
    by_name: FastMap<String, usize>,
}

/// Why a schema file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaFileError {
    /// The file could not be read.
    #[error("{path}: cannot read schema: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{path}: not valid JSON ({source}); an .ovsschema file is one JSON object")]
    Json {
        /// The file.
        path: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The JSON is not a valid schema.
    #[error("{path}: failed to parse as ovsdb schema: {error}")]
    Schema {
        /// The file.
        path: String,
        /// What is wrong, naming the table/column/member.
        error: OvsdbError,
    },
}

/// What [`DatabaseSchema::persist_ephemeral_columns`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedColumns {
    /// How many columns.
    pub count: usize,
    /// One of them: (table, column), for the log.
    pub example: (String, String),
}

impl DatabaseSchema {
    /// Makes every ephemeral column persistent, as ovsdb-server does for
    /// clustered databases (`ovsdb_schema_persist_ephemeral_columns`): so
    /// that `ovsdb-client needs-conversion` and `convert`, which do the
    /// same to the schema file for a clustered database, find it equal.
    /// `None` if nothing was ephemeral.
    pub fn persist_ephemeral_columns(&mut self) -> Option<PersistedColumns> {
        let mut changed: Option<PersistedColumns> = None;
        for t in &mut self.tables {
            for c in &mut t.columns {
                // `_uuid` and `_version` are the server's, not the schema's.
                if c.ephemeral && !c.name.starts_with('_') {
                    c.ephemeral = false;
                    match &mut changed {
                        Some(p) => {
                            p.count += 1;
                            p.example = (t.name.clone(), c.name.clone());
                        }
                        None => {
                            changed = Some(PersistedColumns {
                                count: 1,
                                example: (t.name.clone(), c.name.clone()),
                            })
                        }
                    }
                }
            }
        }
        changed
    }

    /// Reads and parses an `.ovsschema` file.
    pub fn from_file(
        path: impl AsRef<Path>,
    ) -> std::result::Result<DatabaseSchema, SchemaFileError> {
        let p = path.as_ref();
        let name = p.display().to_string();
        let text = std::fs::read_to_string(p).map_err(|source| SchemaFileError::Io {
            path: name.clone(),
            source,
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|source| SchemaFileError::Json {
            path: name.clone(),
            source,
        })?;
        DatabaseSchema::from_json_located(&json)
            .map_err(|error| SchemaFileError::Schema { path: name, error })
    }

    /// Like [`from_json`](Self::from_json), with the offending table and
    /// column named at the front of the error's details (ovsdb-server's own
    /// messages, which `from_json` keeps exact, often omit them).
    pub fn from_json_located(json: &Value) -> Result<DatabaseSchema> {
        DatabaseSchema::from_json(json).map_err(|mut e| {
            if let Some(place) = locate_error(json) {
                e.details = Some(format!("{place}: {}", e.details.unwrap_or_default()));
            }
            e
        })
    }

    /// Parses and validates a schema from JSON.
    pub fn from_json(json: &Value) -> Result<DatabaseSchema> {
        let mut p = Parser::new(json, "database schema");
        let name = p.member("name", Kinds::ID);
        let version = p.member("version", Kinds::STRING | Kinds::OPTIONAL);
        let cksum = p.member("cksum", Kinds::STRING | Kinds::OPTIONAL);
        let tables = p.member("tables", Kinds::OBJECT);
        p.finish()?;
        let version = match version.and_then(Value::as_str) {
            Some(v) => {
                if !is_valid_version(v) {
                    return Err(OvsdbError::syntax(
                        Some(json),
                        None,
                        format!("schema version \"{v}\" not in format x.y.z"),
                    ));
                }
                v.to_string()
            }
            None => String::new(),
        };
        let mut parsed = Vec::new();
        for (tname, tjson) in tables.and_then(Value::as_object).into_iter().flatten() {
            if tname.starts_with('_') {
                return Err(OvsdbError::syntax(
                    Some(json),
                    None,
                    "names beginning with \"_\" are reserved",
                ));
            }
            if !is_id(tname) {
                return Err(OvsdbError::syntax(
                    Some(json),
                    None,
                    "name must be a valid id",
                ));
            }
            parsed.push(TableSchema::from_json(tname, tjson)?);
        }
        // Before "isRoot" existed there was no garbage collection: a schema
        // with no root table keeps every table's rows.
        if !parsed.iter().any(|t| t.is_root) {
            for t in &mut parsed {
                t.is_root = true;
            }
        }
        let by_name: FastMap<String, usize> = parsed
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let roots: Vec<bool> = parsed.iter().map(|t| t.is_root).collect();
        for t in &mut parsed {
            for c in &mut t.columns {
                let mut persist = false;
                for (base, which) in [(Some(&c.ty.key), "key"), (c.ty.value.as_ref(), "value")] {
                    if let Some(BaseType {
                        ref_table: Some(rt),
                        ..
                    }) = base
                    {
                        let Some(&target) = by_name.get(rt) else {
                            return Err(OvsdbError::syntax(
                                None,
                                None,
                                format!(
                                    "column {} {} refers to undefined table {}",
                                    c.name, which, rt
                                ),
                            ));
                        };
                        // A strong reference to a non-root table must be on
                        // disk: replaying the log without it would collect
                        // the row it keeps alive.
                        if base.is_some_and(|b| b.is_strong_ref()) && !roots[target] {
                            persist = true;
                        }
                    }
                }
                if persist {
                    c.ephemeral = false;
                }
            }
        }
        Ok(DatabaseSchema {
            name: name.and_then(Value::as_str).unwrap_or_default().to_string(),
            version,
            // An empty checksum is no checksum (and is not served back).
            cksum: cksum
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            tables: parsed,
            by_name,
        })
    }

    /// The index of a table by name.
    pub fn table_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.table_index(name).map(|i| &self.tables[i])
    }

    /// The schema as JSON, as `get_schema` returns it.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if !self.version.is_empty() {
            m.insert("version".into(), json!(self.version));
        }
        if let Some(c) = &self.cksum {
            if !c.is_empty() {
                m.insert("cksum".into(), json!(c));
            }
        }
        let default_root = self.tables.iter().all(|t| t.is_root);
        let tables: Map<String, Value> = self
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.to_json(default_root)))
            .collect();
        m.insert("tables".into(), Value::Object(tables));
        Value::Object(m)
    }

    /// The schema of the `_Server` database that every server provides.
    pub fn server_schema() -> DatabaseSchema {
        let json: Value = match serde_json::from_str(SERVER_SCHEMA) {
            Ok(j) => j,
            Err(_) => Value::Null,
        };
        match DatabaseSchema::from_json(&json) {
            Ok(s) => s,
            // The text is a constant checked by a unit test; this arm is unreachable.
            Err(_) => DatabaseSchema {
                name: "_Server".into(),
                version: String::new(),
                cksum: None,
                tables: Vec::new(),
                by_name: FastMap::default(),
            },
        }
    }
}

/// The `_Server` schema text, as ovsdb-server 3.1 serves it.
pub const SERVER_SCHEMA: &str = include_str!("_server.ovsschema");

/// Whether `s` is a version as ovsdb-server reads one: `ovs_scan(s,
/// "%u.%u.%u%n")` consuming the whole string, so each number may have
/// leading white space and a sign, and may be any length.
pub fn is_valid_version(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    for part in 0..3 {
        if part > 0 {
            if b.get(i) != Some(&b'.') {
                return false;
            }
            i += 1;
        }
        // C's isspace: space, \t, \n, \v, \f, \r.
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            i += 1;
        }
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Which table (and column) of a schema fails to parse, if one does.
fn locate_error(json: &Value) -> Option<String> {
    let tables = json.get("tables")?.as_object()?;
    for (tname, tjson) in tables {
        if TableSchema::from_json(tname, tjson).is_ok() {
            if let Some(cols) = tjson.get("columns").and_then(Value::as_object) {
                for (cname, cjson) in cols {
                    if let Some(rt) = ref_tables(cjson)
                        .into_iter()
                        .find(|rt| !tables.contains_key(rt))
                    {
                        return Some(format!("table {tname} column {cname} (refTable {rt})"));
                    }
                }
            }
            continue;
        }
        if let Some(cols) = tjson.get("columns").and_then(Value::as_object) {
            for (cname, cjson) in cols {
                let bad = crate::schema::ColumnSchema::check_name(cname, tjson).is_err()
                    || crate::schema::ColumnSchema::from_json(cname, cjson).is_err();
                if bad {
                    return Some(format!("table {tname} column {cname}"));
                }
            }
        }
        return Some(format!("table {tname}"));
    }
    None
}

fn ref_tables(column: &Value) -> Vec<String> {
    let ty = column.get("type");
    ["key", "value"]
        .iter()
        .filter_map(|k| {
            ty.and_then(|t| t.get(*k))
                .and_then(|b| b.get("refTable"))
                .and_then(Value::as_str)
        })
        .map(str::to_string)
        .collect()
}
