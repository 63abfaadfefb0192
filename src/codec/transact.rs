//! `transact` requests decoded straight from their bytes into
//! [`RawOp`]s, without a JSON tree for the envelope, the operations and
//! the rows (see `db::raw_op` for why).
//!
//! Only a request of the plain shape is taken: exactly `id` (not null),
//! `method` and `params` members, no duplicate member, no number with a
//! fraction or exponent, a database name, then operations that are all
//! `insert`, `update`, `mutate` or `delete` with exactly the members their
//! operation allows, each once and of the right JSON type (`table` and
//! `uuid-name` identifiers). Anything else gives `None` and the request goes
//! the ordinary way, which gives ovsdb-server's answer to every malformed
//! request and runs the other operations.

use crate::codec::condition::ConditionSeed;
use crate::codec::envelope::{names_method, Text};
use crate::codec::framing::Frame;
use crate::data::atom::parse_uuid_str;
use crate::db::mutation::Mutator;
use crate::db::raw_condition::RawCondition;
use crate::db::raw_op::{
    RawAtom, RawDatum, RawDelete, RawInsert, RawMutate, RawMutation, RawName, RawOp, RawRow,
    RawUpdate,
};
use crate::parser::is_id;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// A `transact` request, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTransact {
    /// The request id.
    pub id: Value,
    /// The database's name.
    pub db: RawName,
    /// The operations.
    pub ops: Vec<RawOp>,
}

impl RawTransact {
    /// The request's params as the client sent them (for the ordinary path).
    pub fn params_json(&self) -> Value {
        let mut params = Vec::with_capacity(self.ops.len() + 1);
        params.push(Value::String(self.db.to_string()));
        params.extend(self.ops.iter().map(RawOp::to_json));
        Value::Array(params)
    }
}

/// The request in `frame`, if it is a `transact` of the plain shape;
/// `None` for every other message.
pub fn decode(frame: &Frame) -> Option<RawTransact> {
    if frame.has_real || !names_method(&frame.text, b"\"transact\"") {
        return None;
    }
    serde_json::from_str::<Request>(frame.as_str().ok()?)
        .ok()
        .map(|r| r.0)
}

/// The whole request in one pass: unlike `codec::envelope::Envelope`, the
/// params are decoded where they stand rather than first cut out as text
/// (which is a second scan of every byte), on the strength of the method
/// found by `names_method`; a request that then names another method, or
/// has a null id, does not decode.
struct Request(RawTransact);

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Request;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a transact request")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
                let mut id: Option<Value> = None;
                let mut method = false;
                let mut params: Option<Params> = None;
                while let Some(Text(key)) = map.next_key()? {
                    match &*key {
                        "id" => once(&mut id, map.next_value()?)?,
                        "method" => {
                            let Text(m) = map.next_value()?;
                            if method || m != "transact" {
                                return Err(de::Error::custom("not a transact"));
                            }
                            method = true;
                        }
                        "params" => once(&mut params, map.next_value()?)?,
                        _ => return Err(de::Error::custom("unknown member")),
                    }
                }
                match (id, method, params) {
                    (Some(id), true, Some(Params { db, ops })) if !id.is_null() => {
                        Ok(Request(RawTransact { id, db, ops }))
                    }
                    _ => Err(de::Error::custom("not a plain transact")),
                }
            }
        }
        d.deserialize_map(V)
    }
}

/// `[<db-name>, <operation>*]`.
struct Params {
    db: RawName,
    ops: Vec<RawOp>,
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("transact params")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Params, A::Error> {
                let db: RawName = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("no database"))?;
                let mut ops = Vec::with_capacity(seq.size_hint().unwrap_or(4));
                while let Some(Op(op)) = seq.next_element()? {
                    ops.push(op);
                }
                Ok(Params { db, ops })
            }
        }
        d.deserialize_seq(V)
    }
}

/// One operation object.
struct Op(RawOp);

/// The operations decoded here.
#[derive(Clone, Copy)]
enum Kind {
    Insert,
    Update,
    Mutate,
    Delete,
}

/// The members an operation object may have.
#[derive(Default)]
struct Members {
    op: Option<Kind>,
    table: Option<RawName>,
    uuid: Option<String>,
    uuid_name: Option<RawName>,
    row: Option<RawRow>,
    condition: Option<RawCondition>,
    mutations: Option<Vec<RawMutation>>,
}

/// Stores `value` in `slot`, refusing a member seen before.
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::custom("duplicate member"));
    }
    Ok(())
}

impl Members {
    /// The operation, if the members are exactly those of a plain one.
    fn into_op(self) -> Option<RawOp> {
        let table = self.table.filter(|t| is_id(t))?;
        let only_insert = self.uuid.is_some() || self.uuid_name.is_some();
        match self.op? {
            Kind::Insert if self.condition.is_none() && self.mutations.is_none() => {
                Some(RawOp::Insert(RawInsert {
                    table,
                    uuid: self.uuid,
                    uuid_name: match self.uuid_name {
                        Some(n) if !is_id(&n) => return None,
                        n => n,
                    },
                    row: self.row?,
                }))
            }
            _ if only_insert => None,
            Kind::Update if self.mutations.is_none() => Some(RawOp::Update(RawUpdate {
                table,
                condition: self.condition?,
                row: self.row?,
            })),
            Kind::Mutate if self.row.is_none() => Some(RawOp::Mutate(RawMutate {
                table,
                condition: self.condition?,
                mutations: self.mutations?,
            })),
            Kind::Delete if self.row.is_none() && self.mutations.is_none() => {
                Some(RawOp::Delete(RawDelete {
                    table,
                    condition: self.condition?,
                }))
            }
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Op;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an operation object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Op, A::Error> {
                let mut m = Members::default();
                while let Some(Text(key)) = map.next_key()? {
                    match &*key {
                        "op" => {
                            let Text(name) = map.next_value()?;
                            let kind = match &*name {
                                "insert" => Kind::Insert,
                                "update" => Kind::Update,
                                "mutate" => Kind::Mutate,
                                "delete" => Kind::Delete,
                                _ => return Err(de::Error::custom("not a plain operation")),
                            };
                            once(&mut m.op, kind)?
                        }
                        "table" => once(&mut m.table, map.next_value()?)?,
                        "uuid" => once(&mut m.uuid, map.next_value()?)?,
                        "uuid-name" => once(&mut m.uuid_name, map.next_value()?)?,
                        "row" => once(&mut m.row, map.next_value_seed(RowSeed)?)?,
                        "where" => once(&mut m.condition, map.next_value_seed(ConditionSeed)?)?,
                        "mutations" => {
                            let Mutations(mutations) = map.next_value()?;
                            once(&mut m.mutations, mutations)?
                        }
                        _ => return Err(de::Error::custom("unknown member")),
                    }
                }
                m.into_op()
                    .map(Op)
                    .ok_or_else(|| de::Error::custom("not a plain operation"))
            }
        }
        d.deserialize_map(V)
    }
}

/// A `mutations` array.
struct Mutations(Vec<RawMutation>);

impl<'de> Deserialize<'de> for Mutations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Mutations;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of mutations")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Mutations, A::Error> {
                let mut mutations = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(MutationDe(m)) = seq.next_element()? {
                    mutations.push(m);
                }
                Ok(Mutations(mutations))
            }
        }
        d.deserialize_seq(V)
    }
}

/// One mutation: `[column, mutator, argument]` with a known mutator and a
/// plain datum for its argument.
struct MutationDe(RawMutation);

impl<'de> Deserialize<'de> for MutationDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MutationDe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mutation")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MutationDe, A::Error> {
                let missing = || de::Error::custom("short mutation");
                let column: RawName = seq.next_element()?.ok_or_else(missing)?;
                let Text(mutator) = seq.next_element()?.ok_or_else(missing)?;
                let mutator = Mutator::from_name(&mutator)
                    .map_err(|_| de::Error::custom("unknown mutator"))?;
                let DatumDe(arg) = seq.next_element()?.ok_or_else(missing)?;
                end(&mut seq)?;
                Ok(MutationDe(RawMutation {
                    column,
                    mutator,
                    arg,
                }))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A row object: its members sorted by name, each name once.
struct RowSeed;

impl<'de> DeserializeSeed<'de> for RowSeed {
    type Value = RawRow;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawRow, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed {
    type Value = RawRow;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRow, A::Error> {
        let mut columns: Vec<(RawName, RawDatum)> =
            Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(name) = map.next_key::<RawName>()? {
            let DatumDe(value) = map.next_value()?;
            columns.push((name, value));
        }
        columns.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if columns.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(de::Error::custom("duplicate column"));
        }
        Ok(RawRow(columns))
    }
}

/// A datum: a bare atom, `["set", [atom, ...]]` or `["map", [[k, v], ...]]`.
struct DatumDe(RawDatum);

/// An atom: a string, an integer, a boolean, `["uuid", U]` (`U` in lower
/// case) or `["named-uuid", name]`.
struct AtomDe(RawAtom);

/// A map's `[key, value]`.
struct PairDe(RawAtom, RawAtom);

/// The visitor of an atom or a datum: `datum` says whether `"set"` and
/// `"map"` arrays are taken.
struct AtomVisitor {
    datum: bool,
}

/// Refuses more elements in an array that has all it takes.
fn end<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<(), A::Error> {
    match seq.next_element::<de::IgnoredAny>()? {
        Some(_) => Err(de::Error::custom("extra element")),
        None => Ok(()),
    }
}

impl<'de> Visitor<'de> for AtomVisitor {
    type Value = RawDatum;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an atom or a datum")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<RawDatum, E> {
        Ok(RawDatum::Atom(RawAtom::Bool(b)))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<RawDatum, E> {
        Ok(RawDatum::Atom(RawAtom::Int(i)))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<RawDatum, E> {
        let i = i64::try_from(u).map_err(|_| E::custom("integer out of range"))?;
        Ok(RawDatum::Atom(RawAtom::Int(i)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<RawDatum, E> {
        Ok(RawDatum::Atom(RawAtom::Str(Arc::from(s))))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawDatum, A::Error> {
        let Text(tag) = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("empty array"))?;
        let datum = match &*tag {
            "uuid" => {
                let Text(text) = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("no uuid"))?;
                // Lower case only, so that the text sent comes back the same.
                let u = parse_uuid_str(&text)
                    .filter(|_| !text.bytes().any(|b| b.is_ascii_uppercase()))
                    .ok_or_else(|| de::Error::custom("not a plain uuid"))?;
                RawDatum::Atom(RawAtom::Uuid(u))
            }
            "named-uuid" => {
                let name: RawName = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("no name"))?;
                RawDatum::Atom(RawAtom::Named(name))
            }
            "set" if self.datum => {
                let atoms: Vec<AtomDe> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("no set"))?;
                RawDatum::Set(atoms.into_iter().map(|a| a.0).collect())
            }
            "map" if self.datum => {
                let pairs: Vec<PairDe> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("no map"))?;
                RawDatum::Map(pairs.into_iter().map(|p| (p.0, p.1)).collect())
            }
            _ => return Err(de::Error::custom("not a plain datum")),
        };
        end(&mut seq)?;
        Ok(datum)
    }
}

impl<'de> Deserialize<'de> for DatumDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AtomVisitor { datum: true }).map(DatumDe)
    }
}

impl<'de> Deserialize<'de> for AtomDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(AtomVisitor { datum: false })? {
            RawDatum::Atom(a) => Ok(AtomDe(a)),
            _ => Err(de::Error::custom("not an atom")),
        }
    }
}

impl<'de> Deserialize<'de> for PairDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PairDe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [key, value] pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PairDe, A::Error> {
                let k: AtomDe = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("no key"))?;
                let v: AtomDe = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("no value"))?;
                end(&mut seq)?;
                Ok(PairDe(k.0, v.0))
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn text(s: &str) -> Frame {
        Frame {
            text: Bytes::copy_from_slice(s.as_bytes()),
            has_real: false,
        }
    }

    /// The request as the client sent it.
    fn request_json(t: &RawTransact) -> Value {
        json!({"id": t.id, "method": "transact", "params": t.params_json()})
    }

    fn frame(v: &Value) -> Frame {
        text(&serde_json::to_string(v).expect("json"))
    }

    #[test]
    fn plain_transactions_come_back_as_sent() {
        let msg = json!({"id": ["txn", 7], "method": "transact", "params": ["OVN_Northbound",
            {"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "p",
             "row": {"name": "p1", "addresses": ["set", ["00:00:00:00:00:01 10.0.0.1"]],
                     "options": ["map", [["a", "b"]]], "tag_request": 7}},
            {"op": "insert", "table": "Logical_Switch", "uuid": "01234567-89ab-cdef-0123-456789abcdef",
             "row": {"ports": ["set", [["named-uuid", "p"]]], "name": "s\u{e9}\"\n"}},
            {"op": "update", "table": "Logical_Switch", "where": [["name", "==", "s"]],
             "row": {"other_config": ["map", []]}},
            {"op": "mutate", "table": "Logical_Switch", "where": [],
             "mutations": [["ports", "insert", ["set", []]]]},
            {"op": "delete", "table": "Logical_Switch", "where": [true]},
            {"op": "mutate", "table": "Logical_Switch_Port",
             "where": [["_uuid", "==", ["uuid", "01234567-89ab-cdef-0123-456789abcdef"]],
                       ["tag", "<", -3], ["ha", "includes", ["named-uuid", "p"]], false],
             "mutations": [["tag_request", "+=", 2],
                           ["options", "delete", ["set", ["a"]]],
                           ["external_ids", "insert", ["map", [["k", "v"]]]]]},
        ]});
        let t = decode(&frame(&msg)).expect("plain");
        assert_eq!(t.db, "OVN_Northbound");
        assert_eq!(t.ops.len(), 6);
        let RawOp::Mutate(m) = &t.ops[5] else {
            panic!("a mutate: {:?}", t.ops[5]);
        };
        assert_eq!(m.condition.clauses.len(), 4);
        assert_eq!(m.condition.names, ["_uuid", "tag", "ha"]);
        let mutators: Vec<Mutator> = m.mutations.iter().map(|m| m.mutator).collect();
        assert_eq!(mutators, [Mutator::Add, Mutator::Delete, Mutator::Insert]);
        assert_eq!(m.mutations[0].arg, RawDatum::Atom(RawAtom::Int(2)));
        assert_eq!(request_json(&t), msg);
        let RawOp::Insert(port) = &t.ops[0] else {
            panic!("an insert: {:?}", t.ops[0]);
        };
        let names: Vec<&str> = port.row.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["addresses", "name", "options", "tag_request"]);
        assert_eq!(
            port.row.0[3].1,
            RawDatum::Atom(RawAtom::Int(7)),
            "an integer is an atom"
        );
        let RawOp::Insert(switch) = &t.ops[1] else {
            panic!("an insert: {:?}", t.ops[1]);
        };
        assert_eq!(
            switch.row.0[1].1,
            RawDatum::Set(vec![RawAtom::Named("p".into())]),
            "a set of a named UUID"
        );
        // Member order, spacing and escapes in names do not matter.
        let spaced = r#"{ "params" : ["D", {"row": {"b": 1, "\u0061": 2}, "table": "T", "op": "insert"}],
            "method": "transact", "id": 1 }"#;
        let t = decode(&text(spaced)).expect("spaced");
        let want = json!({"id": 1, "method": "transact", "params": ["D",
            {"op": "insert", "table": "T", "row": {"a": 2, "b": 1}}]});
        assert_eq!(request_json(&t), want);
        // No operations at all is plain too.
        let empty = decode(&text(r#"{"id":1,"method":"transact","params":["D"]}"#));
        assert_eq!(empty.map(|t| t.ops.len()), Some(0));
    }

    #[test]
    fn other_messages_and_odd_shapes_go_the_ordinary_way() {
        for s in [
            r#"{"id":1,"method":"echo","params":[]}"#,
            r#"{"id":null,"method":"transact","params":["D"]}"#,
            r#"{"method":"transact","params":["D"]}"#,
            r#"{"id":1,"method":"transact","params":["D"],"x":1}"#,
            r#"{"id":1,"id":2,"method":"transact","params":["D"]}"#,
            r#"{"id":1,"method":"transact","params":[]}"#,
            r#"{"id":1,"method":"transact","params":[1]}"#,
            r#"{"id":1,"method":"transact","params":{}}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"select","table":"T","where":[]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"wait","table":"T","where":[],"until":"==","rows":[]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"commit","durable":true}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T"}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{},"where":[]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":[]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":1,"a":2}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{},"row":{}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"1T","row":{}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","uuid-name":"a-b","row":{}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","uuid":1,"row":{}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"update","table":"T","where":{},"row":{}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"update","table":"T","where":[]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"update","table":"T","where":[],"row":{},"uuid-name":"x"}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"mutate","table":"T","where":[],"mutations":[],"row":{}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"delete","table":"T"}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"delete","table":"T","where":[],"comment":"x"}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"table":"T","where":[]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":1,"table":"T","where":[]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"delete","table":"T","where":[]},3]}"#,
            // Conditions and mutations other than plain ones.
            r#"{"id":1,"method":"transact","params":["D",{"op":"delete","table":"T","where":[{}]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"delete","table":"T","where":[["a","=="]]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"delete","table":"T","where":[["a","~",1]]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"delete","table":"T","where":[["a","==",{}]]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"mutate","table":"T","where":[],"mutations":{}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"mutate","table":"T","where":[],"mutations":[["a","<<",1]]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"mutate","table":"T","where":[],"mutations":[["a","+="]]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"mutate","table":"T","where":[],"mutations":[["a","+=",1,2]]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"mutate","table":"T","where":[],"mutations":[[1,"+=",1]]}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"mutate","table":"T","where":[],"mutations":[["a","+=",null]]}]}"#,
            // Datums other than plain atoms, sets and maps of plain atoms.
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":null}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":{"b":1}}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":["set",[1],2]}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":["set",[["set",[]]]]}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":["map",[[1]]]}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":["map",[[1,2,3]]]}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":["set","x"]}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":["list",[]]}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":[]}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":["uuid","01234567-89AB-cdef-0123-456789abcdef"]}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":["uuid","x"]}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":["named-uuid",1]}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":18446744073709551615}}]}"#,
            r#"{"id":1,"method":"transact","params":["D",{"op":"insert","table":"T","row":{"a":-0}}]}"#,
        ] {
            assert!(decode(&text(s)).is_none(), "{s}");
        }
        let mut real = text(r#"{"id":1,"method":"transact","params":["D"]}"#);
        assert!(decode(&real).is_some());
        real.has_real = true;
        assert!(decode(&real).is_none());
    }
}
