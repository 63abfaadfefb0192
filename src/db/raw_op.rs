//! `transact` operations as the client sent them, decoded straight from the
//! request's bytes (`codec::transact`) and not yet checked against the
//! schema.
//!
//! Why: a small NB transaction's JSON tree (an object for the envelope, one
//! per operation and one per row, each a B-tree of owned keys) cost more to
//! build and to drop than executing the transaction, and a 10,000-row
//! insert spent a third of its time there. The object levels, the rows'
//! datums, the conditions (`db::raw_condition`) and the mutations are
//! typed here. Only plain shapes are decoded this way: the
//! four write operations, with exactly their members, each once, of the
//! right JSON type. Whatever the schema then refuses is turned back into
//! exactly the JSON that was sent ([`RawOp::to_json`]) and goes the
//! ordinary way, so every error stays ovsdb-server's.

use crate::data::{Atom, Datum, SymbolTable};
use crate::db::mutation::Mutator;
use crate::db::raw_condition::RawCondition;
use crate::error::Result;
use crate::parser::is_id;
use crate::schema::{AtomicType, BaseType, Type};
use compact_str::CompactString;
use serde_json::{Map, Value};
use std::sync::Arc;
use uuid::Uuid;

/// A name as sent (a table, a column, a `uuid-name`): kept inline, without
/// an allocation, up to 24 bytes, which every name of the OVSDB schemas fits.
pub type RawName = CompactString;

/// An atom of a row's datum, as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum RawAtom {
    /// A string.
    Str(Arc<str>),
    /// An integer.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// `["uuid", U]` with `U` in lower-case 8-4-4-4-12 form (so that
    /// [`RawAtom::to_json`] gives back the very text sent).
    Uuid(Uuid),
    /// `["named-uuid", name]`.
    Named(RawName),
}

impl RawAtom {
    /// The atom as the client sent it.
    pub fn to_json(&self) -> Value {
        match self {
            RawAtom::Str(s) => Value::String(s.to_string()),
            RawAtom::Int(i) => Value::from(*i),
            RawAtom::Bool(b) => Value::Bool(*b),
            RawAtom::Uuid(u) => Value::Array(vec![
                Value::String("uuid".to_owned()),
                Value::String(u.hyphenated().to_string()),
            ]),
            RawAtom::Named(n) => Value::Array(vec![
                Value::String("named-uuid".to_owned()),
                Value::String(n.to_string()),
            ]),
        }
    }

    /// The atom as `base` takes it, as `Atom::from_json` reads it; `None`
    /// where that would fail or needs a conversion (an integer for a real).
    fn to_atom(&self, base: &BaseType, symtab: Option<&mut SymbolTable>) -> Option<Atom> {
        let atom = match (self, base.atomic) {
            (RawAtom::Str(s), AtomicType::String) => Atom::String(s.clone()),
            (RawAtom::Int(i), AtomicType::Integer) => Atom::Integer(*i),
            (RawAtom::Bool(b), AtomicType::Boolean) => Atom::Boolean(*b),
            (RawAtom::Uuid(u), AtomicType::Uuid) => Atom::Uuid(*u),
            (RawAtom::Named(n), AtomicType::Uuid) if is_id(n) => Atom::Uuid(symtab?.reference(n)),
            _ => return None,
        };
        atom.check_constraints(base).ok()?;
        Some(atom)
    }
}

/// A datum of a row, as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum RawDatum {
    /// A bare atom.
    Atom(RawAtom),
    /// `["set", [atom, ...]]`.
    Set(Vec<RawAtom>),
    /// `["map", [[key, value], ...]]`.
    Map(Vec<(RawAtom, RawAtom)>),
}

impl RawDatum {
    /// The datum as the client sent it.
    pub fn to_json(&self) -> Value {
        let tagged = |tag: &str, items: Vec<Value>| {
            Value::Array(vec![Value::String(tag.to_owned()), Value::Array(items)])
        };
        match self {
            RawDatum::Atom(a) => a.to_json(),
            RawDatum::Set(v) => tagged("set", v.iter().map(RawAtom::to_json).collect()),
            RawDatum::Map(v) => tagged(
                "map",
                v.iter()
                    .map(|(k, v)| Value::Array(vec![k.to_json(), v.to_json()]))
                    .collect(),
            ),
        }
    }

    /// The datum of type `ty`, exactly as `Datum::from_json` makes it from
    /// [`RawDatum::to_json`], which gives the error (or converts) wherever
    /// the atoms are not plainly of the column's type.
    pub fn to_datum(&self, ty: &Type, mut symtab: Option<&mut SymbolTable>) -> Result<Datum> {
        if let Some(d) = self.convert(ty, symtab.as_deref_mut()) {
            return Ok(d);
        }
        Datum::from_json(ty, &self.to_json(), symtab)
    }

    fn convert(&self, ty: &Type, mut symtab: Option<&mut SymbolTable>) -> Option<Datum> {
        let count_ok = |n: usize| ty.allows_count(n as u64);
        match (self, &ty.value) {
            (RawDatum::Atom(a), None) => Some(Datum::scalar(a.to_atom(&ty.key, symtab)?)),
            (RawDatum::Set(v), None) if count_ok(v.len()) => {
                let mut keys = Vec::with_capacity(v.len());
                for a in v {
                    keys.push(a.to_atom(&ty.key, symtab.as_deref_mut())?);
                }
                Datum::sorted_unique(keys, None).ok()
            }
            (RawDatum::Map(v), Some(vt)) if count_ok(v.len()) => {
                let mut keys = Vec::with_capacity(v.len());
                let mut values = Vec::with_capacity(v.len());
                for (k, x) in v {
                    keys.push(k.to_atom(&ty.key, symtab.as_deref_mut())?);
                    values.push(x.to_atom(vt, symtab.as_deref_mut())?);
                }
                Datum::sorted_unique(keys, Some(values)).ok()
            }
            _ => None,
        }
    }
}

/// A row object: its members, names distinct and sorted as the members of
/// a `serde_json::Map` (so that columns are read in the JSON path's order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRow(pub Vec<(RawName, RawDatum)>);

impl RawRow {
    /// The row object as the client sent it.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_json()))
                .collect::<Map<String, Value>>(),
        )
    }
}

/// One mutation, `[column, mutator, argument]`, as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMutation {
    /// The column's name.
    pub column: RawName,
    /// The mutator.
    pub mutator: Mutator,
    /// The argument.
    pub arg: RawDatum,
}

impl RawMutation {
    /// The mutation as the client sent it.
    pub fn to_json(&self) -> Value {
        Value::Array(vec![
            Value::String(self.column.to_string()),
            Value::String(self.mutator.name().to_owned()),
            self.arg.to_json(),
        ])
    }
}

/// An `insert`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawInsert {
    /// The table's name (an `<id>`).
    pub table: RawName,
    /// The `uuid` member: the row's UUID as text, not yet checked.
    pub uuid: Option<String>,
    /// The `uuid-name` member (an `<id>`).
    pub uuid_name: Option<RawName>,
    /// The row.
    pub row: RawRow,
}

/// An `update`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawUpdate {
    /// The table's name (an `<id>`).
    pub table: RawName,
    /// The `where` array.
    pub condition: RawCondition,
    /// The row.
    pub row: RawRow,
}

/// A `mutate`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMutate {
    /// The table's name (an `<id>`).
    pub table: RawName,
    /// The `where` array.
    pub condition: RawCondition,
    /// The `mutations` array.
    pub mutations: Vec<RawMutation>,
}

/// A `delete`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDelete {
    /// The table's name (an `<id>`).
    pub table: RawName,
    /// The `where` array.
    pub condition: RawCondition,
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
        let s = |t: &str| Value::String(t.to_owned());
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
                o.insert("where".to_owned(), u.condition.to_json());
                o.insert("row".to_owned(), u.row.to_json());
            }
            RawOp::Mutate(m) => {
                o.insert("table".to_owned(), s(&m.table));
                o.insert("where".to_owned(), m.condition.to_json());
                o.insert(
                    "mutations".to_owned(),
                    Value::Array(m.mutations.iter().map(RawMutation::to_json).collect()),
                );
            }
            RawOp::Delete(d) => {
                o.insert("table".to_owned(), s(&d.table));
                o.insert("where".to_owned(), d.condition.to_json());
            }
        }
        Value::Object(o)
    }
}
