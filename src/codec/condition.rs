//! A `where` array decoded straight from its bytes into a
//! [`RawCondition`], for the requests that carry one (`transact`'s
//! `update`, `mutate` and `delete`; `monitor_cond_change`), without a JSON
//! tree of its clauses (see `db::raw_condition` for why).
//!
//! Only plain clauses are taken: `true`, `false`, or `[column, function,
//! argument]` with a known function and an argument that is a string, an
//! integer, a boolean or an array (`["uuid", U]`, `["set", ...]`, ...).
//! Anything else is a decoding error, and the request goes the ordinary
//! way.

use crate::codec::envelope::Text;
use crate::data::atom::parse_uuid_str;
use crate::db::condition::Function;
use crate::db::raw_condition::{RawArg, RawClause, RawCondition};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// A `where` array.
pub struct ConditionSeed;

impl<'de> DeserializeSeed<'de> for ConditionSeed {
    type Value = RawCondition;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawCondition, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ConditionSeed {
    type Value = RawCondition;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of clauses")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawCondition, A::Error> {
        let mut cond = RawCondition::default();
        if let Some(n) = seq.size_hint() {
            cond.clauses.reserve(n);
        }
        while let Some(c) = seq.next_element_seed(ClauseSeed { cond: &mut cond })? {
            cond.clauses.push(c);
        }
        Ok(cond)
    }
}

/// One clause; its column name is kept once in the condition's names.
struct ClauseSeed<'c> {
    cond: &'c mut RawCondition,
}

impl<'de> DeserializeSeed<'de> for ClauseSeed<'_> {
    type Value = RawClause;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawClause, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ClauseSeed<'_> {
    type Value = RawClause;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a clause")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<RawClause, E> {
        Ok(RawClause::Const(b))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawClause, A::Error> {
        let missing = || de::Error::custom("short clause");
        let Text(name) = seq.next_element()?.ok_or_else(missing)?;
        let column = self
            .cond
            .name_index(&name)
            .ok_or_else(|| de::Error::custom("too many columns"))?;
        let Text(function) = seq.next_element()?.ok_or_else(missing)?;
        let function =
            Function::from_name(&function).map_err(|_| de::Error::custom("unknown function"))?;
        let Arg(arg) = seq.next_element()?.ok_or_else(missing)?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("long clause"));
        }
        Ok(RawClause::Compare {
            column,
            function,
            arg,
        })
    }
}

/// A clause's argument.
struct Arg(RawArg);

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Arg;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, integer, boolean or array")
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<Arg, E> {
                Ok(Arg(RawArg::Json(Value::from(i))))
            }
            fn visit_u64<E: de::Error>(self, u: u64) -> Result<Arg, E> {
                Ok(Arg(RawArg::Json(Value::from(u))))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Arg, E> {
                Ok(Arg(RawArg::Json(Value::Bool(b))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Arg, E> {
                Ok(Arg(RawArg::Json(Value::String(s.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Arg, E> {
                Ok(Arg(RawArg::Json(Value::String(s))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arg, A::Error> {
                let Text(tag) = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("empty array"))?;
                if tag == "uuid" {
                    if let Some(Text(s)) = seq.next_element()? {
                        if seq.next_element::<IgnoredAny>()?.is_some() {
                            return Err(de::Error::custom("long uuid"));
                        }
                        // Lower case only, so that the text sent comes back
                        // the same from the parsed UUID.
                        if let Some(u) = parse_uuid_str(&s)
                            .filter(|_| !s.bytes().any(|b| b.is_ascii_uppercase()))
                        {
                            return Ok(Arg(RawArg::Uuid(u)));
                        }
                        return Ok(Arg(RawArg::Json(Value::Array(vec![
                            Value::String("uuid".to_owned()),
                            Value::String(s.into_owned()),
                        ]))));
                    }
                    return Ok(Arg(RawArg::Json(Value::Array(vec![Value::String(
                        "uuid".to_owned(),
                    )]))));
                }
                let mut items = vec![Value::String(tag.into_owned())];
                while let Some(v) = seq.next_element::<Value>()? {
                    items.push(v);
                }
                Ok(Arg(RawArg::Json(Value::Array(items))))
            }
        }
        d.deserialize_any(V)
    }
}
