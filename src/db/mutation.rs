//! Mutations: the `mutations` of RFC 7047 section 5.1 (`mutate` operation),
//! parsed once against a table schema and then applied to rows.
//!
//! Behaviour follows ovsdb-server 3.1 (`ovsdb/mutation.c`), checked against
//! the real server:
//!
//! - `+=`, `-=`, `*=`, `/=` apply to integer and real scalars and sets (every
//!   element), `%=` to integers only; the argument is one atom of the key's
//!   atomic type, free of the column's constraints; the results must satisfy
//!   them and stay distinct;
//! - `insert` and `delete` apply to sets and maps; the argument is a datum of
//!   the column's type with `min` 0 (and any size for `delete`); a map's
//!   `delete` also takes a set of keys; the result must fit the column's size;
//! - immutable columns, `_uuid` and `_version` cannot be mutated.

use crate::data::atom::Atom;
use crate::data::datum::Datum;
use crate::data::row::Row;
use crate::data::symbol::SymbolTable;
use crate::db::condition::type_to_english;
use crate::db::raw_op::RawMutation;
use crate::error::OvsdbError;
use crate::schema::{AtomicType, BaseType, TableSchema, Type, UNLIMITED};
use serde_json::Value;
use std::sync::Arc;

/// A mutator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutator {
    /// `+=`.
    Add,
    /// `-=`.
    Sub,
    /// `*=`.
    Mul,
    /// `/=`.
    Div,
    /// `%=`.
    Mod,
    /// `insert`.
    Insert,
    /// `delete`.
    Delete,
}

impl Mutator {
    /// The mutator's name in the protocol.
    pub fn name(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Sub => "-=",
            Mutator::Mul => "*=",
            Mutator::Div => "/=",
            Mutator::Mod => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }

    /// The mutator named `name` in the protocol; ovsdb-server's error if none is.
    pub fn from_name(name: &str) -> Result<Mutator, OvsdbError> {
        Ok(match name {
            "+=" => Mutator::Add,
            "-=" => Mutator::Sub,
            "*=" => Mutator::Mul,
            "/=" => Mutator::Div,
            "%=" => Mutator::Mod,
            "insert" => Mutator::Insert,
            "delete" => Mutator::Delete,
            _ => {
                return Err(OvsdbError::syntax(
                    None,
                    Some("unknown mutator"),
                    format!("No mutator named {name}."),
                ))
            }
        })
    }

    fn is_arithmetic(self) -> bool {
        !matches!(self, Mutator::Insert | Mutator::Delete)
    }

    fn range_error(self) -> OvsdbError {
        OvsdbError::new(
            "range error",
            format!("Result of \"{}\" operation is out of range.", self.name()),
        )
    }

    fn domain_error() -> OvsdbError {
        OvsdbError::new("domain error", "Division by zero.")
    }

    /// `x op y` on integers, with ovsdb-server's errors.
    fn integer(self, x: i64, y: i64) -> Result<i64, OvsdbError> {
        let result = match self {
            Mutator::Add => x.checked_add(y),
            Mutator::Sub => x.checked_sub(y),
            Mutator::Mul => {
                // ovsdb-server's overflow test for two positive factors also
                // rejects products that land exactly on a boundary below
                // i64::MAX (e.g. 2 * 4611686018427387903): reproduced here.
                if x > 0 && y > 0 && x >= i64::MAX / y {
                    None
                } else {
                    x.checked_mul(y)
                }
            }
            Mutator::Div | Mutator::Mod if y == 0 => return Err(Mutator::domain_error()),
            Mutator::Div => x.checked_div(y),
            Mutator::Mod => x.checked_rem(y),
            Mutator::Insert | Mutator::Delete => Some(x),
        };
        result.ok_or_else(|| self.range_error())
    }

    /// `x op y` on reals, with ovsdb-server's errors (results must stay finite).
    fn real(self, x: f64, y: f64) -> Result<f64, OvsdbError> {
        let r = match self {
            Mutator::Add => x + y,
            Mutator::Sub => x - y,
            Mutator::Mul => x * y,
            Mutator::Div if y == 0.0 => return Err(Mutator::domain_error()),
            Mutator::Div => x / y,
            Mutator::Mod | Mutator::Insert | Mutator::Delete => x,
        };
        if (-f64::MAX..=f64::MAX).contains(&r) {
            Ok(r)
        } else {
            Err(self.range_error())
        }
    }
}

/// One parsed mutation.
#[derive(Debug, Clone)]
struct Mutation {
    /// Column index (never `_uuid`/`_version`: those are immutable).
    column: usize,
    /// The column's name.
    name: Arc<str>,
    mutator: Mutator,
    /// For arithmetic, one atom; for `insert`/`delete`, a set or map (or, for
    /// `delete` on a map, possibly a set of keys).
    arg: Datum,
}

impl Mutation {
    fn from_json(
        table: &TableSchema,
        json: &Value,
        symtab: Option<&mut SymbolTable>,
    ) -> Result<Mutation, OvsdbError> {
        let parts = match json {
            Value::Array(a) if a.len() == 3 => a,
            _ => return Err(parse_error(json)),
        };
        let (Some(column_name), Some(mutator_name)) = (parts[0].as_str(), parts[1].as_str()) else {
            return Err(parse_error(json));
        };
        Mutation::parse(
            table,
            column_name,
            || Mutator::from_name(mutator_name),
            |ty, symtab| Datum::from_json(ty, &parts[2], symtab),
            symtab,
            Some(json),
        )
    }

    /// A mutation decoded from the request's bytes; `None` where the schema
    /// refuses it (the JSON path then gives the error).
    fn from_raw(
        table: &TableSchema,
        raw: &RawMutation,
        symtab: Option<&mut SymbolTable>,
    ) -> Option<Mutation> {
        Mutation::parse(
            table,
            &raw.column,
            || Ok(raw.mutator),
            |ty, symtab| raw.arg.to_datum(ty, symtab),
            symtab,
            None,
        )
        .ok()
    }

    /// The mutation of `column_name` by `mutator`, its argument read by
    /// `arg` as a datum of the type given; `json`, the mutation as sent, is
    /// what syntax errors quote.
    fn parse(
        table: &TableSchema,
        column_name: &str,
        mutator: impl FnOnce() -> Result<Mutator, OvsdbError>,
        arg: impl Fn(&Type, Option<&mut SymbolTable>) -> Result<Datum, OvsdbError>,
        mut symtab: Option<&mut SymbolTable>,
        json: Option<&Value>,
    ) -> Result<Mutation, OvsdbError> {
        let column = table.column_index(column_name).ok_or_else(|| {
            OvsdbError::syntax(
                json,
                Some("unknown column"),
                format!("No column {column_name} in table {}.", table.name),
            )
        })?;
        let schema = table.column(column);
        if !schema.mutable {
            return Err(OvsdbError::syntax(
                json,
                Some("constraint violation"),
                format!(
                    "Cannot mutate immutable column {column_name} in table {}.",
                    table.name
                ),
            ));
        }
        let mutator = mutator()?;
        let ty = &schema.ty;
        let type_mismatch = || {
            OvsdbError::syntax(
                json,
                None,
                format!(
                    "Type mismatch: \"{}\" operator may not be applied to column {} of type {}.",
                    mutator.name(),
                    schema.name,
                    type_to_english(ty)
                ),
            )
        };
        let arg = if mutator.is_arithmetic() {
            let numeric = match ty.key.atomic {
                AtomicType::Integer => true,
                AtomicType::Real => mutator != Mutator::Mod,
                _ => false,
            };
            if !(ty.is_scalar() || ty.is_set()) || !numeric {
                return Err(type_mismatch());
            }
            // One atom, without the column's constraints (the result is checked instead).
            let arg_ty = Type {
                key: BaseType::new(ty.key.atomic),
                value: None,
                min: 1,
                max: 1,
            };
            arg(&arg_ty, symtab)?
        } else {
            if !(ty.is_set() || ty.is_map()) {
                return Err(type_mismatch());
            }
            let mut arg_ty = ty.clone();
            arg_ty.min = 0;
            if mutator == Mutator::Delete {
                arg_ty.max = UNLIMITED;
            }
            match arg(&arg_ty, symtab.as_deref_mut()) {
                Ok(d) => d,
                Err(_) if mutator == Mutator::Delete && ty.is_map() => {
                    // A map's "delete" also takes a set of keys.
                    arg_ty.value = None;
                    arg(&arg_ty, symtab)?
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Mutation {
            column,
            name: Arc::from(schema.name.as_str()),
            mutator,
            arg,
        })
    }

    /// The mutated value of `field`, a datum of type `ty`.
    fn apply(&self, ty: &Type, field: &Datum) -> Result<Datum, OvsdbError> {
        match self.mutator {
            Mutator::Insert => {
                let mut d = field.clone_with_room(self.arg.len());
                d.union_with(&self.arg);
                check_count(&d, ty)?;
                Ok(d)
            }
            Mutator::Delete => {
                let mut d = field.clone();
                d.subtract(&self.arg);
                check_count(&d, ty)?;
                Ok(d)
            }
            m => {
                let Some(y) = self.arg.first() else {
                    return Err(internal(&self.name));
                };
                let mut keys = Vec::with_capacity(field.len());
                for x in &field.keys {
                    keys.push(match (x, y) {
                        (Atom::Integer(x), Atom::Integer(y)) => Atom::Integer(m.integer(*x, *y)?),
                        (Atom::Real(x), Atom::Real(y)) => Atom::Real(m.real(*x, *y)?),
                        _ => return Err(internal(&self.name)),
                    });
                }
                for k in &keys {
                    k.check_constraints(&ty.key)?;
                }
                Datum::sorted_unique(keys, field.values.clone()).map_err(|_| {
                    OvsdbError::constraint(format!(
                        "Result of \"{}\" operation contains duplicates.",
                        m.name()
                    ))
                })
            }
        }
    }
}

/// `constraint violation` when `d` has too few or too many elements for `ty`.
fn check_count(d: &Datum, ty: &Type) -> Result<(), OvsdbError> {
    let n = d.len() as u64;
    if n < u64::from(ty.min) || n > ty.max_u64() {
        return Err(OvsdbError::constraint(format!(
            "Attempted to store {n} elements in {}.",
            type_to_english(ty)
        )));
    }
    Ok(())
}

fn parse_error(json: &Value) -> OvsdbError {
    OvsdbError::syntax(Some(json), None, "Parse error in mutation.")
}

/// A row whose value does not have its column's type: a bug elsewhere.
fn internal(column: &str) -> OvsdbError {
    OvsdbError::new(
        "ovsdb error",
        format!("internal error: value of column {column} does not match its type"),
    )
}

/// A parsed list of mutations, applied in order.
#[derive(Debug, Clone, Default)]
pub struct MutationSet {
    mutations: Vec<Mutation>,
}

impl MutationSet {
    /// Parses a "mutations" array for `table`.
    pub fn from_json(
        table: &TableSchema,
        json: &Value,
        mut symtab: Option<&mut SymbolTable>,
    ) -> Result<MutationSet, OvsdbError> {
        let items = match json {
            Value::Array(a) => a,
            _ => return Err(parse_error(json)),
        };
        let mut mutations = Vec::with_capacity(items.len());
        for item in items {
            mutations.push(Mutation::from_json(table, item, symtab.as_deref_mut())?);
        }
        Ok(MutationSet { mutations })
    }

    /// A "mutations" array decoded from the request's bytes; `None` where
    /// the schema refuses it (the JSON path then gives the error).
    pub fn from_raw(
        table: &TableSchema,
        raw: &[RawMutation],
        mut symtab: Option<&mut SymbolTable>,
    ) -> Option<MutationSet> {
        let mut mutations = Vec::with_capacity(raw.len());
        for m in raw {
            mutations.push(Mutation::from_raw(table, m, symtab.as_deref_mut())?);
        }
        Some(MutationSet { mutations })
    }

    /// Applies every mutation in order to `row.fields`, with ovsdb-server's errors
    /// (range error for overflow, domain error for division by zero, constraint violation
    /// after mutation: duplicates, set size bounds, enum/range of result atoms, ...).
    ///
    /// On error the failing mutation has changed nothing, but the mutations
    /// before it have been applied: the caller discards the row.
    pub fn apply(&self, table: &TableSchema, row: &mut Row) -> Result<(), OvsdbError> {
        for m in &self.mutations {
            let ty = &table.column(m.column).ty;
            let field = row
                .fields
                .get_mut(m.column)
                .ok_or_else(|| internal(&m.name))?;
            *field = m.apply(ty, field)?;
        }
        Ok(())
    }

    /// The number of mutations.
    pub fn len(&self) -> usize {
        self.mutations.len()
    }

    /// Whether there are no mutations.
    pub fn is_empty(&self) -> bool {
        self.mutations.is_empty()
    }

    /// The columns mutated, each once, in the order first mutated.
    pub fn columns(&self) -> Vec<usize> {
        let mut cols: Vec<usize> = Vec::new();
        for m in &self.mutations {
            if !cols.contains(&m.column) {
                cols.push(m.column);
            }
        }
        cols
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::condition::Condition;
    use crate::schema::DatabaseSchema;
    use proptest::prelude::*;
    use serde_json::json;
    use uuid::Uuid;

    fn table() -> TableSchema {
        let j = json!({
            "name": "T",
            "tables": {
                "A": {"columns": {
                    "i": {"type": "integer"},
                    "r": {"type": "real"},
                    "b": {"type": "boolean"},
                    "s": {"type": "string"},
                    "u": {"type": "uuid"},
                    "oi": {"type": {"key": "integer", "min": 0, "max": 1}},
                    "si": {"type": {"key": "integer", "min": 0, "max": "unlimited"}},
                    "si3": {"type": {"key": "integer", "min": 0, "max": 3}},
                    "si13": {"type": {"key": "integer", "min": 1, "max": 3}},
                    "sr": {"type": {"key": "real", "min": 0, "max": "unlimited"}},
                    "ss": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                    "ri": {"type": {"key": {"type": "integer", "minInteger": 0, "maxInteger": 10}}},
                    "sri": {"type": {"key": {"type": "integer", "minInteger": 0, "maxInteger": 10},
                                     "min": 0, "max": "unlimited"}},
                    "rr": {"type": {"key": {"type": "real", "minReal": 0, "maxReal": 10}}},
                    "ei": {"type": {"key": {"type": "integer", "enum": ["set", [1, 2, 4]]}}},
                    "e": {"type": {"key": {"type": "string", "enum": ["set", ["a", "b", "c"]]},
                                   "min": 0, "max": "unlimited"}},
                    "m": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                    "mi": {"type": {"key": "integer", "value": "string", "min": 0, "max": 2}},
                    "om": {"type": {"key": "string", "value": "integer", "min": 0, "max": 1}},
                    "mm": {"type": {"key": "string", "value": "integer", "min": 1, "max": 1}},
                    "im": {"type": "integer", "mutable": false},
                    "ref": {"type": {"key": {"type": "uuid", "refTable": "B"}, "min": 0, "max": "unlimited"}}
                }, "isRoot": true},
                "B": {"columns": {"x": {"type": "integer"}}, "isRoot": true}
            }
        });
        DatabaseSchema::from_json(&j)
            .expect("schema")
            .table("A")
            .expect("table")
            .clone()
    }

    /// The row of the reference checks: i=5, si={1,2,3}, m={a=x,b=y}, the rest default.
    fn row(t: &TableSchema) -> Row {
        let mut r = Row::new_default(t, Uuid::from_u128(1));
        set(t, &mut r, "i", json!(5));
        set(t, &mut r, "si", json!(["set", [1, 2, 3]]));
        set(t, &mut r, "m", json!(["map", [["a", "x"], ["b", "y"]]]));
        r
    }

    fn idx(t: &TableSchema, c: &str) -> usize {
        t.column_index(c).expect("column")
    }

    fn set(t: &TableSchema, r: &mut Row, c: &str, v: Value) {
        let i = idx(t, c);
        r.fields[i] = Datum::from_json(&t.column(i).ty, &v, None).expect("datum");
    }

    fn get(t: &TableSchema, r: &Row, c: &str) -> Value {
        r.fields[idx(t, c)].to_json()
    }

    fn parse(t: &TableSchema, j: Value) -> Result<MutationSet, OvsdbError> {
        MutationSet::from_json(t, &j, None)
    }

    /// Applies `mutations` to `r`; on error, returns the error's JSON and leaves `r` alone.
    fn mutate(t: &TableSchema, r: &mut Row, j: Value) -> Result<(), Value> {
        let ms = parse(t, j).map_err(|e| e.to_json())?;
        let mut copy = r.clone();
        ms.apply(t, &mut copy).map_err(|e| e.to_json())?;
        *r = copy;
        Ok(())
    }

    fn err(t: &TableSchema, r: &mut Row, j: Value) -> Value {
        match mutate(t, r, j) {
            Err(e) => e,
            Ok(()) => json!("no error"),
        }
    }

    // ---- parse errors (each checked against ovsdb-server 3.1) ----

    #[test]
    fn parse_errors_match_reference() {
        let t = table();
        let e = |j: Value| parse(&t, j).expect_err("error").to_json();
        for bad in [
            json!(["i", "+="]),
            json!(1),
            json!(true),
            json!(["i", 1, 1]),
            json!([1, "+=", 1]),
        ] {
            assert_eq!(
                e(json!([bad.clone()])),
                json!({"error": "syntax error", "details": "Parse error in mutation.",
                       "syntax": crate::data::json_text(&bad)})
            );
        }
        assert_eq!(
            e(json!([["nope", "+=", 2]])),
            json!({"error": "unknown column", "details": "No column nope in table A.",
                   "syntax": "[\"nope\",\"+=\",2]"})
        );
        assert_eq!(
            e(json!([["nope", "foo", 2]])),
            json!({"error": "unknown column", "details": "No column nope in table A.",
                   "syntax": "[\"nope\",\"foo\",2]"})
        );
        assert_eq!(
            e(json!([["i", "foo", 2]])),
            json!({"error": "unknown mutator", "details": "No mutator named foo."})
        );
        for (col, m) in [
            ("im", "+="),
            ("_uuid", "+="),
            ("_version", "insert"),
            ("im", "foo"),
        ] {
            assert_eq!(
                e(json!([[col, m, 2]])),
                json!({"error": "constraint violation",
                       "details": format!("Cannot mutate immutable column {col} in table A."),
                       "syntax": format!("[\"{col}\",\"{m}\",2]")})
            );
        }
        // The first bad mutation wins.
        assert_eq!(
            e(json!([["i", "+=", 1], ["s", "insert", 1]]))["details"],
            "Type mismatch: \"insert\" operator may not be applied to column s of type string."
        );
        assert_eq!(e(json!({"a": 1}))["details"], "Parse error in mutation.");
    }

    #[test]
    fn type_mismatches() {
        let t = table();
        let cases = [
            ("mm", "+=", "map of 1 to 1 (string, integer) pairs"),
            ("r", "%=", "real"),
            ("sr", "%=", "set of reals"),
            ("s", "+=", "string"),
            ("b", "+=", "boolean"),
            ("u", "-=", "uuid"),
            ("ss", "*=", "set of strings"),
            ("m", "+=", "map of (string, string) pairs"),
            ("mi", "/=", "map of up to 2 (integer, string) pairs"),
            ("i", "insert", "integer"),
            ("s", "delete", "string"),
            ("ri", "insert", "integer"),
        ];
        for (col, m, english) in cases {
            let mutation = json!([col, m, 1]);
            assert_eq!(
                parse(&t, json!([mutation.clone()]))
                    .expect_err("error")
                    .to_json(),
                json!({"error": "syntax error",
                       "details": format!(
                           "Type mismatch: \"{m}\" operator may not be applied to column {col} of type {english}."),
                       "syntax": crate::data::json_text(&mutation)}),
                "{col} {m}"
            );
        }
    }

    #[test]
    fn argument_errors() {
        let t = table();
        let e = |j: Value| parse(&t, j).expect_err("error").to_json();
        assert_eq!(
            e(json!([["i", "+=", "x"]])),
            json!({"error": "syntax error", "details": "expected integer", "syntax": "\"x\""})
        );
        assert_eq!(e(json!([["i", "+=", 1.5]]))["details"], "expected integer");
        assert_eq!(
            e(json!([["i", "+=", ["set", [1, 2]]]])),
            json!({"error": "syntax error", "details": "set must have exactly one member but 2 are present",
                   "syntax": "[\"set\",[1,2]]"})
        );
        assert_eq!(
            e(json!([["si", "+=", ["set", []]]]))["details"],
            "set must have exactly one member but 0 are present"
        );
        assert_eq!(
            e(json!([["si3", "insert", ["set", [1, 2, 3, 4]]]])),
            json!({"error": "syntax error", "details": "set must have 0 to 3 members but 4 are present",
                   "syntax": "[\"set\",[1,2,3,4]]"})
        );
        assert_eq!(
            e(json!([[
                "mi",
                "insert",
                ["map", [[1, "a"], [2, "b"], [3, "c"]]]
            ]])),
            json!({"error": "syntax error", "details": "map must have 0 to 2 members but 3 are present",
                   "syntax": "[\"map\",[[1,\"a\"],[2,\"b\"],[3,\"c\"]]]"})
        );
        assert_eq!(
            e(json!([["si13", "insert", ["set", [1, 1]]]])),
            json!({"error": "ovsdb error", "details": "set contains duplicate"})
        );
        // Argument atoms keep the column's constraints for insert/delete...
        assert_eq!(
            e(json!([["e", "insert", ["set", ["a", "z"]]]])),
            json!({"error": "constraint violation",
                   "details": "z is not one of the allowed values ([a, b, c])"})
        );
        assert_eq!(
            e(json!([["e", "delete", "z"]]))["details"],
            "z is not one of the allowed values ([a, b, c])"
        );
        assert_eq!(
            e(json!([["sri", "insert", ["set", [11]]]]))["details"],
            "11 is not in the valid range 0 to 10 (inclusive)"
        );
        assert_eq!(
            e(json!([["sri", "delete", ["set", [11]]]]))["details"],
            "11 is not in the valid range 0 to 10 (inclusive)"
        );
        // ...but not for arithmetic.
        assert!(parse(&t, json!([["ri", "+=", 100]])).is_ok());
        assert!(parse(&t, json!([["ei", "+=", 3]])).is_ok());
        // Map arguments; a map's delete falls back to a set of keys.
        assert_eq!(
            e(json!([["m", "delete", ["map", [["a"]]]]])),
            json!({"error": "syntax error", "details": "expected string", "syntax": "[\"map\",[[\"a\"]]]"})
        );
        assert_eq!(
            e(json!([["m", "delete", ["set", [1]]]])),
            json!({"error": "syntax error", "details": "expected string", "syntax": "1"})
        );
        assert_eq!(
            e(json!([["m", "delete", 1]])),
            json!({"error": "syntax error", "details": "expected string", "syntax": "1"})
        );
        assert_eq!(
            e(json!([["m", "insert", ["set", ["x"]]]])),
            json!({"error": "syntax error", "details": "expected [\"map\", <array>]",
                   "syntax": "[\"set\",[\"x\"]]"})
        );
        // Delete takes any number of elements.
        assert!(parse(&t, json!([["si3", "delete", ["set", [1, 2, 3, 4, 5]]]])).is_ok());
        assert!(parse(
            &t,
            json!([["mi", "delete", ["map", [[1, "a"], [2, "b"], [3, "c"]]]]])
        )
        .is_ok());
    }

    #[test]
    fn named_uuids_in_arguments() {
        let t = table();
        let mut r = row(&t);
        let mut symtab = SymbolTable::new();
        let ms = MutationSet::from_json(
            &t,
            &json!([["ref", "insert", ["named-uuid", "x"]]]),
            Some(&mut symtab),
        )
        .expect("parse");
        ms.apply(&t, &mut r).expect("apply");
        let u = symtab.get("x").map(|s| s.uuid).expect("symbol");
        assert_eq!(
            get(&t, &r, "ref"),
            json!(["uuid", u.hyphenated().to_string()])
        );
        assert_eq!(ms.columns(), vec![idx(&t, "ref")]);
        assert_eq!(ms.len(), 1);
        assert!(!ms.is_empty());
    }

    // ---- arithmetic (each checked against ovsdb-server 3.1) ----

    #[test]
    fn integer_arithmetic() {
        let t = table();
        let mut r = row(&t);
        mutate(&t, &mut r, json!([["i", "+=", 1]])).expect("ok");
        assert_eq!(get(&t, &r, "i"), json!(6));
        assert_eq!(
            err(&t, &mut r, json!([["i", "+=", i64::MAX]])),
            json!({"error": "range error", "details": "Result of \"+=\" operation is out of range."})
        );
        mutate(&t, &mut r, json!([["i", "-=", i64::MAX]])).expect("ok");
        assert_eq!(get(&t, &r, "i"), json!(-9223372036854775801i64));
        mutate(&t, &mut r, json!([["i", "*=", 0]])).expect("ok");
        assert_eq!(get(&t, &r, "i"), json!(0));
        mutate(&t, &mut r, json!([["i", "+=", ["set", [1]]]])).expect("ok");
        assert_eq!(get(&t, &r, "i"), json!(1));
        for m in ["/=", "%="] {
            assert_eq!(
                err(&t, &mut r, json!([["i", m, 0]])),
                json!({"error": "domain error", "details": "Division by zero."})
            );
        }
        set(&t, &mut r, "i", json!(-7));
        mutate(&t, &mut r, json!([["i", "%=", 3]])).expect("ok");
        assert_eq!(get(&t, &r, "i"), json!(-1));
        set(&t, &mut r, "i", json!(-7));
        mutate(&t, &mut r, json!([["i", "/=", 2]])).expect("ok");
        assert_eq!(get(&t, &r, "i"), json!(-3));
        set(&t, &mut r, "i", json!(i64::MIN));
        for m in ["/=", "%="] {
            assert_eq!(
                err(&t, &mut r, json!([["i", m, -1]]))["details"],
                json!(format!("Result of \"{m}\" operation is out of range."))
            );
        }
        assert_eq!(
            err(&t, &mut r, json!([["i", "-=", 1]]))["error"],
            "range error"
        );
        // The reference computes i64::MIN * -1 by wrapping around; it overflows.
        assert_eq!(
            err(&t, &mut r, json!([["i", "*=", -1]]))["error"],
            "range error"
        );
        set(&t, &mut r, "i", json!(-1_000_000_000_000_000_000i64));
        assert_eq!(
            err(&t, &mut r, json!([["i", "*=", -10]]))["error"],
            "range error"
        );
        // The reference crashes on a negative value times 0; the answer is 0.
        mutate(&t, &mut r, json!([["i", "*=", 0]])).expect("ok");
        assert_eq!(get(&t, &r, "i"), json!(0));
        set(&t, &mut r, "i", json!(-3));
        mutate(&t, &mut r, json!([["i", "*=", -3]])).expect("ok");
        assert_eq!(get(&t, &r, "i"), json!(9));
    }

    #[test]
    fn multiplication_boundary_quirk() {
        // ovsdb-server rejects these although the products fit in 64 bits.
        let t = table();
        let mut r = row(&t);
        set(&t, &mut r, "i", json!(4611686018427387903i64));
        assert_eq!(
            err(&t, &mut r, json!([["i", "*=", 2]])),
            json!({"error": "range error", "details": "Result of \"*=\" operation is out of range."})
        );
        set(&t, &mut r, "i", json!(2));
        assert_eq!(
            err(&t, &mut r, json!([["i", "*=", 4611686018427387903i64]]))["error"],
            "range error"
        );
        assert_eq!(
            err(&t, &mut r, json!([["i", "*=", 4611686018427387904i64]]))["error"],
            "range error"
        );
        // Mixed signs are exact: -2 * 4611686018427387904 == i64::MIN.
        set(&t, &mut r, "i", json!(-2));
        mutate(&t, &mut r, json!([["i", "*=", 4611686018427387904i64]])).expect("ok");
        assert_eq!(get(&t, &r, "i"), json!(i64::MIN));
        set(&t, &mut r, "i", json!(1));
        mutate(&t, &mut r, json!([["i", "*=", i64::MIN]])).expect("ok");
        assert_eq!(get(&t, &r, "i"), json!(i64::MIN));
        set(&t, &mut r, "i", json!(3));
        mutate(&t, &mut r, json!([["i", "*=", 5]])).expect("ok");
        assert_eq!(get(&t, &r, "i"), json!(15));
    }

    #[test]
    fn real_arithmetic() {
        let t = table();
        let mut r = row(&t);
        assert_eq!(
            err(&t, &mut r, json!([["r", "/=", 0]])),
            json!({"error": "domain error", "details": "Division by zero."})
        );
        assert_eq!(
            err(&t, &mut r, json!([["r", "/=", -0.0]]))["error"],
            "domain error"
        );
        mutate(&t, &mut r, json!([["r", "+=", 1.5]])).expect("ok");
        assert_eq!(get(&t, &r, "r"), json!(1.5));
        mutate(&t, &mut r, json!([["r", "*=", 1e308]])).expect("ok");
        assert_eq!(get(&t, &r, "r"), json!(1.5e308));
        assert_eq!(
            err(&t, &mut r, json!([["r", "+=", 1e308]])),
            json!({"error": "range error", "details": "Result of \"+=\" operation is out of range."})
        );
        assert_eq!(
            err(&t, &mut r, json!([["r", "*=", -2]]))["details"],
            "Result of \"*=\" operation is out of range."
        );
        set(&t, &mut r, "r", json!(1e300));
        assert_eq!(
            err(&t, &mut r, json!([["r", "/=", 1e-300]])),
            json!({"error": "range error", "details": "Result of \"/=\" operation is out of range."})
        );
        assert_eq!(
            err(&t, &mut r, json!([["r", "*=", -1e10]]))["error"],
            "range error"
        );
        set(&t, &mut r, "r", json!(1));
        mutate(&t, &mut r, json!([["r", "/=", 4], ["r", "-=", 0.25]])).expect("ok");
        assert_eq!(get(&t, &r, "r"), json!(0.0));
        // An integer argument is a real for a real column.
        mutate(&t, &mut r, json!([["r", "+=", 2]])).expect("ok");
        assert_eq!(get(&t, &r, "r"), json!(2.0));
    }

    #[test]
    fn set_arithmetic() {
        let t = table();
        let mut r = row(&t);
        mutate(&t, &mut r, json!([["si", "+=", 10]])).expect("ok");
        assert_eq!(get(&t, &r, "si"), json!(["set", [11, 12, 13]]));
        assert_eq!(
            err(&t, &mut r, json!([["si", "*=", 0]])),
            json!({"error": "constraint violation",
                   "details": "Result of \"*=\" operation contains duplicates."})
        );
        assert_eq!(
            err(&t, &mut r, json!([["si", "/=", 0]]))["error"],
            "domain error"
        );
        mutate(&t, &mut r, json!([["si", "%=", 5]])).expect("ok");
        assert_eq!(get(&t, &r, "si"), json!(["set", [1, 2, 3]]));
        // Order is restored after a mutation that reverses it.
        mutate(&t, &mut r, json!([["si", "*=", -1]])).expect("ok");
        assert_eq!(get(&t, &r, "si"), json!(["set", [-3, -2, -1]]));
        // An empty set is unaffected, even by a division by zero.
        mutate(&t, &mut r, json!([["sr", "+=", 1], ["sr", "/=", 0]])).expect("ok");
        assert_eq!(get(&t, &r, "sr"), json!(["set", []]));
        // Optional scalars.
        mutate(&t, &mut r, json!([["oi", "+=", 2]])).expect("ok");
        assert_eq!(get(&t, &r, "oi"), json!(["set", []]));
        mutate(&t, &mut r, json!([["oi", "insert", 1], ["oi", "+=", 2]])).expect("ok");
        assert_eq!(get(&t, &r, "oi"), json!(3));
    }

    #[test]
    fn results_must_satisfy_constraints() {
        let t = table();
        let mut r = row(&t);
        assert_eq!(
            err(&t, &mut r, json!([["ri", "+=", 11]])),
            json!({"error": "constraint violation",
                   "details": "11 is not in the valid range 0 to 10 (inclusive)"})
        );
        assert_eq!(
            err(&t, &mut r, json!([["ri", "-=", 1]]))["details"],
            "-1 is not in the valid range 0 to 10 (inclusive)"
        );
        mutate(&t, &mut r, json!([["sri", "insert", ["set", [1, 5]]]])).expect("ok");
        assert_eq!(get(&t, &r, "sri"), json!(["set", [1, 5]]));
        assert_eq!(
            err(&t, &mut r, json!([["sri", "+=", 6]]))["details"],
            "11 is not in the valid range 0 to 10 (inclusive)"
        );
        assert_eq!(
            err(&t, &mut r, json!([["rr", "+=", 10.5]]))["details"],
            "10.5 is not in the valid range 0 to 10 (inclusive)"
        );
        assert_eq!(
            err(&t, &mut r, json!([["rr", "-=", 0.5]]))["details"],
            "-0.5 is not in the valid range 0 to 10 (inclusive)"
        );
        set(&t, &mut r, "ei", json!(1));
        mutate(&t, &mut r, json!([["ei", "*=", 4]])).expect("ok");
        assert_eq!(get(&t, &r, "ei"), json!(4));
        assert_eq!(
            err(&t, &mut r, json!([["ei", "-=", 1]])),
            json!({"error": "constraint violation",
                   "details": "3 is not one of the allowed values ([1, 2, 4])"})
        );
    }

    // ---- insert / delete (each checked against ovsdb-server 3.1) ----

    #[test]
    fn set_insert_delete() {
        let t = table();
        let mut r = row(&t);
        mutate(&t, &mut r, json!([["si3", "insert", ["set", [1, 2, 3]]]])).expect("ok");
        assert_eq!(get(&t, &r, "si3"), json!(["set", [1, 2, 3]]));
        assert_eq!(
            err(&t, &mut r, json!([["si3", "insert", ["set", [4]]]])),
            json!({"error": "constraint violation",
                   "details": "Attempted to store 4 elements in set of up to 3 integers."})
        );
        mutate(&t, &mut r, json!([["si3", "insert", 2]])).expect("ok");
        assert_eq!(get(&t, &r, "si3"), json!(["set", [1, 2, 3]]));
        mutate(
            &t,
            &mut r,
            json!([["si3", "delete", ["set", [1, 2, 3, 4, 5]]]]),
        )
        .expect("ok");
        assert_eq!(get(&t, &r, "si3"), json!(["set", []]));
        assert_eq!(
            err(&t, &mut r, json!([["si13", "delete", ["set", [0]]]])),
            json!({"error": "constraint violation",
                   "details": "Attempted to store 0 elements in set of 1 to 3 integers."})
        );
        mutate(&t, &mut r, json!([["si13", "insert", ["set", [0]]]])).expect("ok");
        assert_eq!(get(&t, &r, "si13"), json!(0));
        mutate(&t, &mut r, json!([["si", "delete", 1]])).expect("ok");
        assert_eq!(get(&t, &r, "si"), json!(["set", [2, 3]]));
        mutate(&t, &mut r, json!([["si", "insert", ["set", []]]])).expect("ok");
        assert_eq!(get(&t, &r, "si"), json!(["set", [2, 3]]));
        mutate(&t, &mut r, json!([["e", "insert", ["set", ["b", "a"]]]])).expect("ok");
        assert_eq!(get(&t, &r, "e"), json!(["set", ["a", "b"]]));
        assert_eq!(
            err(
                &t,
                &mut r,
                json!([["oi", "insert", ["set", [1]]], ["oi", "insert", 2]])
            ),
            json!({"error": "constraint violation",
                   "details": "Attempted to store 2 elements in set of up to 1 integers."})
        );
        mutate(
            &t,
            &mut r,
            json!([
                ["i", "+=", 1],
                ["i", "-=", 1],
                ["si", "delete", ["set", [2]]]
            ]),
        )
        .expect("ok");
        assert_eq!(get(&t, &r, "si"), json!(3));
        assert_eq!(get(&t, &r, "i"), json!(5));
    }

    #[test]
    fn map_insert_delete() {
        let t = table();
        let mut r = row(&t);
        // Existing keys keep their value.
        mutate(
            &t,
            &mut r,
            json!([["m", "insert", ["map", [["a", "NEW"], ["c", "z"]]]]]),
        )
        .expect("ok");
        assert_eq!(
            get(&t, &r, "m"),
            json!(["map", [["a", "x"], ["b", "y"], ["c", "z"]]])
        );
        // A map argument removes matching pairs only.
        mutate(
            &t,
            &mut r,
            json!([["m", "delete", ["map", [["a", "nomatch"], ["b", "y"]]]]]),
        )
        .expect("ok");
        assert_eq!(get(&t, &r, "m"), json!(["map", [["a", "x"], ["c", "z"]]]));
        // A set argument removes keys.
        mutate(&t, &mut r, json!([["m", "delete", ["set", ["a", "q"]]]])).expect("ok");
        assert_eq!(get(&t, &r, "m"), json!(["map", [["c", "z"]]]));
        mutate(&t, &mut r, json!([["m", "delete", "c"]])).expect("ok");
        assert_eq!(get(&t, &r, "m"), json!(["map", []]));
        mutate(
            &t,
            &mut r,
            json!([["mi", "insert", ["map", [[2, "b"], [1, "a"]]]]]),
        )
        .expect("ok");
        assert_eq!(get(&t, &r, "mi"), json!(["map", [[1, "a"], [2, "b"]]]));
        assert_eq!(
            err(&t, &mut r, json!([["mi", "insert", ["map", [[3, "a"]]]]])),
            json!({"error": "constraint violation",
                   "details": "Attempted to store 3 elements in map of up to 2 (integer, string) pairs."})
        );
        mutate(&t, &mut r, json!([["om", "insert", ["map", [["k", 1]]]]])).expect("ok");
        assert_eq!(get(&t, &r, "om"), json!(["map", [["k", 1]]]));
        mutate(&t, &mut r, json!([["om", "delete", ["set", ["k"]]]])).expect("ok");
        assert_eq!(get(&t, &r, "om"), json!(["map", []]));
    }

    #[test]
    fn failing_mutation_changes_nothing_of_its_column() {
        let t = table();
        let mut r = row(&t);
        let ms = parse(&t, json!([["i", "+=", 1], ["si", "+=", i64::MAX]])).expect("parse");
        let e = ms.apply(&t, &mut r).expect_err("overflow");
        assert_eq!(e.tag, "range error");
        assert_eq!(get(&t, &r, "si"), json!(["set", [1, 2, 3]]));
        assert_eq!(get(&t, &r, "i"), json!(6));
    }

    // ---- property tests ----

    fn int_set() -> impl Strategy<Value = Vec<i64>> {
        prop::collection::vec(-20i64..20, 0..8)
    }

    fn set_json(v: &[i64]) -> Value {
        json!(["set", v])
    }

    fn small_map() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(
            (
                prop::sample::select(vec!["a", "b", "c", "d"]),
                prop::sample::select(vec!["x", "y"]),
            )
                .prop_map(|(k, v)| (k.to_string(), v.to_string())),
            0..5,
        )
    }

    fn map_json(pairs: &[(String, String)]) -> Value {
        // Keep the first pair of each key so that the JSON has unique keys.
        let mut seen: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for (k, v) in pairs {
            if !seen.contains(&k.as_str()) {
                seen.push(k);
                out.push(json!([k, v]));
            }
        }
        json!(["map", out])
    }

    fn dedup(v: &[i64]) -> Vec<i64> {
        let mut v = v.to_vec();
        v.sort_unstable();
        v.dedup();
        v
    }

    proptest! {
        #[test]
        fn insert_then_delete_of_new_elements_restores(orig in int_set(), extra in int_set()) {
            let t = table();
            let mut r = row(&t);
            set(&t, &mut r, "si", set_json(&dedup(&orig)));
            let before = r.clone();
            let new: Vec<i64> = dedup(&extra).into_iter().filter(|x| !orig.contains(x)).collect();
            mutate(&t, &mut r, json!([["si", "insert", set_json(&new)]])).expect("insert");
            let includes = Condition::from_json(&t, &json!([["si", "includes", set_json(&new)]]), None)
                .expect("cond");
            prop_assert!(includes.evaluate(&r));
            prop_assert_eq!(r.fields[idx(&t, "si")].len(), dedup(&orig).len() + new.len());
            mutate(&t, &mut r, json!([["si", "delete", set_json(&new)]])).expect("delete");
            prop_assert_eq!(r, before);
        }

        #[test]
        fn insert_and_delete_are_idempotent(orig in int_set(), arg in int_set()) {
            let t = table();
            let mut r = row(&t);
            set(&t, &mut r, "si", set_json(&dedup(&orig)));
            let arg = set_json(&dedup(&arg));
            mutate(&t, &mut r, json!([["si", "insert", arg.clone()]])).expect("insert");
            let once = r.clone();
            mutate(&t, &mut r, json!([["si", "insert", arg.clone()]])).expect("insert");
            prop_assert_eq!(&r, &once);
            mutate(&t, &mut r, json!([["si", "delete", arg.clone()]])).expect("delete");
            let deleted = r.clone();
            mutate(&t, &mut r, json!([["si", "delete", arg.clone()]])).expect("delete");
            prop_assert_eq!(&r, &deleted);
            let excludes = Condition::from_json(&t, &json!([["si", "excludes", arg]]), None).expect("cond");
            prop_assert!(excludes.evaluate(&r));
        }

        #[test]
        fn union_matches_model(a in int_set(), b in int_set()) {
            let t = table();
            let mut r = row(&t);
            set(&t, &mut r, "si", set_json(&dedup(&a)));
            mutate(&t, &mut r, json!([["si", "insert", set_json(&dedup(&b))]])).expect("insert");
            let mut all = a.clone();
            all.extend(&b);
            prop_assert_eq!(get(&t, &r, "si"), Datum::set_from(dedup(&all).into_iter().map(Atom::Integer).collect()).to_json());
            let mut r2 = row(&t);
            set(&t, &mut r2, "si", set_json(&dedup(&a)));
            mutate(&t, &mut r2, json!([["si", "delete", set_json(&dedup(&b))]])).expect("delete");
            let rest: Vec<i64> = dedup(&a).into_iter().filter(|x| !b.contains(x)).collect();
            prop_assert_eq!(get(&t, &r2, "si"), Datum::set_from(rest.into_iter().map(Atom::Integer).collect()).to_json());
        }

        #[test]
        fn map_insert_keeps_existing_values(orig in small_map(), arg in small_map()) {
            let t = table();
            let mut r = row(&t);
            set(&t, &mut r, "m", map_json(&orig));
            let before = r.fields[idx(&t, "m")].clone();
            let arg_d = Datum::from_json(&t.column(idx(&t, "m")).ty, &map_json(&arg), None).expect("datum");
            mutate(&t, &mut r, json!([["m", "insert", map_json(&arg)]])).expect("insert");
            let after = &r.fields[idx(&t, "m")];
            for (k, v) in before.pairs() {
                prop_assert!(after.contains(k, v));
            }
            for (k, _) in arg_d.pairs() {
                prop_assert!(after.find_key(k).is_some());
            }
            prop_assert_eq!(after.len(), before.len() + arg_d.keys.iter().filter(|k| before.find_key(k).is_none()).count());
            // Deleting the argument's keys leaves exactly the original keys not in the argument.
            let keys = json!(["set", arg_d.keys.iter().map(Atom::to_json).collect::<Vec<_>>()]);
            mutate(&t, &mut r, json!([["m", "delete", keys]])).expect("delete");
            let mut expect = before.clone();
            expect.subtract(&Datum::set_from(arg_d.keys.clone()));
            prop_assert_eq!(&r.fields[idx(&t, "m")], &expect);
            // Deleting pairs removes only the matching ones.
            let mut r2 = row(&t);
            set(&t, &mut r2, "m", map_json(&orig));
            mutate(&t, &mut r2, json!([["m", "delete", map_json(&arg)]])).expect("delete");
            for (k, v) in before.pairs() {
                prop_assert_eq!(r2.fields[idx(&t, "m")].contains(k, v), !arg_d.contains(k, v));
            }
        }

        #[test]
        fn add_then_sub_restores(x in any::<i64>(), y in any::<i64>()) {
            let t = table();
            let mut r = row(&t);
            set(&t, &mut r, "i", json!(x));
            let before = r.clone();
            match x.checked_add(y) {
                Some(sum) => {
                    mutate(&t, &mut r, json!([["i", "+=", y]])).expect("add");
                    prop_assert_eq!(get(&t, &r, "i"), json!(sum));
                    mutate(&t, &mut r, json!([["i", "-=", y]])).expect("sub");
                    prop_assert_eq!(r, before);
                }
                None => {
                    prop_assert_eq!(err(&t, &mut r, json!([["i", "+=", y]]))["error"].clone(), json!("range error"));
                    prop_assert_eq!(r, before);
                }
            }
        }

        #[test]
        fn set_add_then_sub_restores(orig in int_set(), y in -1000i64..1000) {
            let t = table();
            let mut r = row(&t);
            set(&t, &mut r, "si", set_json(&dedup(&orig)));
            let before = r.clone();
            mutate(&t, &mut r, json!([["si", "+=", y], ["si", "-=", y]])).expect("ok");
            prop_assert_eq!(&r, &before);
            mutate(&t, &mut r, json!([["si", "*=", 1], ["si", "/=", 1]])).expect("ok");
            prop_assert_eq!(&r, &before);
        }

        #[test]
        fn integer_ops_match_checked_arithmetic(x in any::<i64>(), y in prop_oneof![any::<i64>(), -3i64..4]) {
            let t = table();
            for (m, expect) in [
                ("*=", if x > 0 && y > 0 && x >= i64::MAX / y { None } else { x.checked_mul(y) }),
                ("/=", x.checked_div(y)),
                ("%=", x.checked_rem(y)),
            ] {
                let mut r = row(&t);
                set(&t, &mut r, "i", json!(x));
                let res = mutate(&t, &mut r, json!([["i", m, y]]));
                match expect {
                    Some(v) => {
                        prop_assert!(res.is_ok());
                        prop_assert_eq!(get(&t, &r, "i"), json!(v));
                    }
                    None => {
                        let e = res.expect_err("error");
                        let tag = if y == 0 { "domain error" } else { "range error" };
                        prop_assert_eq!(&e["error"], tag);
                    }
                }
            }
        }

        #[test]
        fn mod_results_are_smaller_than_divisor(v in int_set(), y in 1i64..7) {
            let t = table();
            let mut r = row(&t);
            let v: Vec<i64> = dedup(&v).into_iter().filter(|x| *x >= 0).collect();
            set(&t, &mut r, "si", set_json(&v));
            let res = mutate(&t, &mut r, json!([["si", "%=", y]]));
            let mut residues: Vec<i64> = v.iter().map(|x| x % y).collect();
            residues.sort_unstable();
            let distinct = residues.windows(2).all(|w| w[0] != w[1]);
            prop_assert_eq!(res.is_ok(), distinct);
            if distinct {
                prop_assert_eq!(get(&t, &r, "si"), Datum::set_from(residues.into_iter().map(Atom::Integer).collect()).to_json());
            }
        }

        #[test]
        fn size_bounds_are_enforced(orig in prop::collection::vec(0i64..6, 0..4), arg in prop::collection::vec(0i64..6, 0..4)) {
            let t = table();
            let mut r = row(&t);
            let orig = dedup(&orig);
            let arg = dedup(&arg);
            set(&t, &mut r, "si3", set_json(&orig));
            let mut union = orig.clone();
            union.extend(&arg);
            let n = dedup(&union).len();
            let res = mutate(&t, &mut r, json!([["si3", "insert", set_json(&arg)]]));
            if n <= 3 {
                prop_assert!(res.is_ok());
            } else {
                prop_assert_eq!(
                    res.expect_err("too big"),
                    json!({"error": "constraint violation",
                           "details": format!("Attempted to store {n} elements in set of up to 3 integers.")})
                );
            }
        }
    }
}
