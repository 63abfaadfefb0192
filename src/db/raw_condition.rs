//! `monitor_cond_change` requests as the client sent them, decoded straight
//! from the request's bytes (`codec::cond_change`) and not yet checked
//! against the schema.
//!
//! Why: an OVN chassis rewrites its condition with thousands of
//! `["datapath","==",["uuid",U]]` clauses, and building (then dropping) a
//! JSON tree of them cost more than the rest of the change. Only the plain
//! shapes are taken this way; whatever the schema refuses is turned back
//! into exactly the JSON that was sent ([`RawRequests::to_json`]) and goes
//! the ordinary way, so every error stays ovsdb-server's.

use crate::db::condition::Function;
use crate::db::raw_op::RawName;
use serde_json::{Map, Value};
use uuid::Uuid;

/// A clause's argument.
#[derive(Debug, Clone, PartialEq)]
pub enum RawArg {
    /// `["uuid", U]` with `U` in lower-case 8-4-4-4-12 form (so that
    /// [`RawArg::to_json`] gives back the very text sent).
    Uuid(Uuid),
    /// Any other argument, as JSON.
    Json(Value),
}

impl RawArg {
    /// The argument as the client sent it.
    pub fn to_json(&self) -> Value {
        match self {
            RawArg::Uuid(u) => Value::Array(vec![
                Value::String("uuid".to_owned()),
                Value::String(u.hyphenated().to_string()),
            ]),
            RawArg::Json(j) => j.clone(),
        }
    }
}

/// One clause of a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum RawClause {
    /// `true` or `false`.
    Const(bool),
    /// `[column, function, argument]`, the column an index into the
    /// condition's `names`.
    Compare {
        /// Index of the column's name in [`RawCondition::names`].
        column: u16,
        /// The function (never `True`/`False`).
        function: Function,
        /// The argument.
        arg: RawArg,
    },
}

/// A `where` array.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawCondition {
    /// The column names the clauses use, each once.
    pub names: Vec<RawName>,
    /// The clauses, in the order sent.
    pub clauses: Vec<RawClause>,
}

impl RawCondition {
    /// The index of column `name` in `names`, added if new; `None` past
    /// 65,536 distinct names.
    pub fn name_index(&mut self, name: &str) -> Option<u16> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return u16::try_from(i).ok();
        }
        let i = u16::try_from(self.names.len()).ok()?;
        self.names.push(RawName::from(name));
        Some(i)
    }

    /// The condition as the client sent it.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.clauses
                .iter()
                .map(|c| match c {
                    RawClause::Const(b) => Value::Bool(*b),
                    RawClause::Compare {
                        column,
                        function,
                        arg,
                    } => Value::Array(vec![
                        Value::String(
                            self.names
                                .get(usize::from(*column))
                                .map(RawName::to_string)
                                .unwrap_or_default(),
                        ),
                        Value::String(function.name().to_owned()),
                        arg.to_json(),
                    ]),
                })
                .collect(),
        )
    }
}

/// One `<monitor-cond-change-request>`: `{}` or `{"where": [...]}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawTableRequest {
    /// The new condition; `None` when the request has no `where`.
    pub condition: Option<RawCondition>,
}

/// `<monitor-cond-change-requests>`: per table, an array of requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRequests {
    /// (table name, its requests), each table once.
    pub tables: Vec<(String, Vec<RawTableRequest>)>,
}

impl RawRequests {
    /// The requests as the client sent them.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        for (table, reqs) in &self.tables {
            let list = reqs
                .iter()
                .map(|r| {
                    let mut o = Map::new();
                    if let Some(c) = &r.condition {
                        o.insert("where".to_owned(), c.to_json());
                    }
                    Value::Object(o)
                })
                .collect();
            obj.insert(table.clone(), Value::Array(list));
        }
        Value::Object(obj)
    }
}

/// The third parameter of a `monitor_cond_change`, however it was decoded.
#[derive(Debug, Clone)]
pub enum ChangeRequests {
    /// As a JSON tree (any request).
    Json(Value),
    /// Decoded from the bytes (the plain shapes).
    Raw(RawRequests),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gives_back_what_was_sent() {
        let mut c = RawCondition::default();
        let d = c.name_index("datapath").expect("index");
        assert_eq!(c.name_index("datapath"), Some(d));
        let u = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        c.clauses = vec![
            RawClause::Compare {
                column: d,
                function: Function::Eq,
                arg: RawArg::Uuid(u),
            },
            RawClause::Const(false),
            RawClause::Compare {
                column: c.name_index("type").expect("index"),
                function: Function::Ne,
                arg: RawArg::Json(json!("patch")),
            },
        ];
        let r = RawRequests {
            tables: vec![
                (
                    "Port_Binding".into(),
                    vec![RawTableRequest { condition: Some(c) }],
                ),
                ("Chassis".into(), vec![RawTableRequest::default()]),
            ],
        };
        assert_eq!(
            r.to_json(),
            json!({
                "Port_Binding": [{"where": [
                    ["datapath", "==", ["uuid", "01234567-89ab-cdef-0123-456789abcdef"]],
                    false,
                    ["type", "!=", "patch"],
                ]}],
                "Chassis": [{}],
            })
        );
    }
}
