//! `transact` operations as the client sent them, decoded straight from the
//! request's bytes (`codec::transact`) and not yet checked against the
//! schema.
//!
//! Why: a small NB transaction's JSON tree (an object for the envelope, one
//! per operation and one per row, each a B-tree of owned keys) cost more to
//! build and to drop than executing the transaction, and a 10,000-row
//! insert spent a third of its time there. Only the object levels are
//! typed here; datums, conditions and mutations stay JSON, which they are
//! parsed from as before (`Datum::from_json`, `Condition::from_json`,
//! `MutationSet::from_json`). Only plain shapes are decoded this way: the
//! four write operations, with exactly their members, each once, of the
//! right JSON type. Whatever the schema then refuses is turned back into
//! exactly the JSON that was sent ([`RawOp::to_json`]) and goes the
//! ordinary way, so every error stays ovsdb-server's.

use serde_json::{Map, Value};

/// A row object: its members, names distinct and sorted as the members of
/// a `serde_json::Map` (so that columns are read in the JSON path's order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRow(pub Vec<(String, Value)>);

impl RawRow {
    /// The row object as the client sent it.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<String, Value>>(),
        )
    }
}

/// An `insert`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawInsert {
    /// The table's name (an `<id>`).
    pub table: String,
    /// The `uuid` member: the row's UUID as text, not yet checked.
    pub uuid: Option<String>,
    /// The `uuid-name` member (an `<id>`).
    pub uuid_name: Option<String>,
    /// The row.
    pub row: RawRow,
}

/// An `update`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawUpdate {
    /// The table's name (an `<id>`).
    pub table: String,
    /// The `where` array.
    pub condition: Value,
    /// The row.
    pub row: RawRow,
}

/// A `mutate`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMutate {
    /// The table's name (an `<id>`).
    pub table: String,
    /// The `where` array.
    pub condition: Value,
    /// The `mutations` array.
    pub mutations: Value,
}

/// A `delete`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDelete {
    /// The table's name (an `<id>`).
    pub table: String,
    /// The `where` array.
    pub condition: Value,
}

/// One operation of a `transact`, decoded from the bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum RawOp {
    /// `insert`.
    Insert(RawInsert),
    /// `update`.
    Update(RawUpdate),
    /// `mutate`.
    Mutate(RawMutate),
    /// `delete`.
    Delete(RawDelete),
}

impl RawOp {
    /// The operation's name.
    pub fn name(&self) -> &'static str {
        match self {
            RawOp::Insert(_) => "insert",
            RawOp::Update(_) => "update",
            RawOp::Mutate(_) => "mutate",
            RawOp::Delete(_) => "delete",
        }
    }

    /// The operation object as the client sent it.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("op".to_owned(), Value::String(self.name().to_owned()));
        let s = |t: &String| Value::String(t.clone());
        match self {
            RawOp::Insert(i) => {
                o.insert("table".to_owned(), s(&i.table));
                if let Some(u) = &i.uuid {
                    o.insert("uuid".to_owned(), s(u));
                }
                if let Some(n) = &i.uuid_name {
                    o.insert("uuid-name".to_owned(), s(n));
                }
                o.insert("row".to_owned(), i.row.to_json());
            }
            RawOp::Update(u) => {
                o.insert("table".to_owned(), s(&u.table));
                o.insert("where".to_owned(), u.condition.clone());
                o.insert("row".to_owned(), u.row.to_json());
            }
            RawOp::Mutate(m) => {
                o.insert("table".to_owned(), s(&m.table));
                o.insert("where".to_owned(), m.condition.clone());
                o.insert("mutations".to_owned(), m.mutations.clone());
            }
            RawOp::Delete(d) => {
                o.insert("table".to_owned(), s(&d.table));
                o.insert("where".to_owned(), d.condition.clone());
            }
        }
        Value::Object(o)
    }
}
