//! Column schemas.

use crate::error::{OvsdbError, Result};
use crate::parser::{is_id, Kinds, Parser};
use crate::schema::types::{AtomicType, Type};
use serde_json::{json, Map, Value};

/// One column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    /// The column's name.
    pub name: String,
    /// The column's type.
    pub ty: Type,
    /// Whether updates may change it after insertion.
    pub mutable: bool,
    /// Whether it is not written to disk (kept across restarts only in memory).
    pub ephemeral: bool,
}

impl ColumnSchema {
    /// Parses the column named `name` from its schema JSON.
    pub fn from_json(name: &str, json: &Value) -> Result<ColumnSchema> {
        let mut p = Parser::new(json, format!("schema for column {name}"));
        // ovsdb-server's member order: the first bad member is the one reported.
        let mutable = p.member("mutable", Kinds::BOOLEAN | Kinds::OPTIONAL);
        let ephemeral = p.member("ephemeral", Kinds::BOOLEAN | Kinds::OPTIONAL);
        let ty = p.member("type", Kinds::STRING | Kinds::OBJECT);
        p.finish()?;
        let ty = Type::from_json(ty.unwrap_or(&Value::Null))?;
        // A weak reference cannot be immutable: it changes when the rows it
        // points to are deleted (ovsdb-server quietly makes it mutable).
        let weak = ty.key.is_weak_ref() || ty.value.as_ref().is_some_and(|v| v.is_weak_ref());
        Ok(ColumnSchema {
            name: name.to_string(),
            mutable: mutable.and_then(Value::as_bool).unwrap_or(true) || weak,
            ephemeral: ephemeral.and_then(Value::as_bool).unwrap_or(false),
            ty,
        })
    }

    /// Checks the column's name is usable: an identifier not starting with `_`.
    pub fn check_name(name: &str, json: &Value) -> Result<()> {
        if name.starts_with('_') {
            Err(OvsdbError::syntax(
                Some(json),
                None,
                "names beginning with \"_\" are reserved",
            ))
        } else if !is_id(name) {
            Err(OvsdbError::syntax(
                Some(json),
                None,
                "name must be a valid id",
            ))
        } else {
            Ok(())
        }
    }

    /// The `_uuid` and `_version` pseudo-columns every table has.
    pub fn builtin(name: &str) -> ColumnSchema {
        ColumnSchema {
            name: name.to_string(),
            ty: Type::scalar(AtomicType::Uuid),
            mutable: false,
            // ovsdb-server does not write `_version` to disk, so it may not
            // be indexed (`_uuid` may).
            ephemeral: name == "_version",
        }
    }

    /// The column as schema JSON.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), self.ty.to_json());
        if self.ephemeral {
            m.insert("ephemeral".into(), json!(true));
        }
        if !self.mutable {
            m.insert("mutable".into(), json!(false));
        }
        Value::Object(m)
    }
}
