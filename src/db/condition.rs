//! Conditions: the `where` of RFC 7047 section 5.1, parsed once against a
//! table schema and then evaluated against rows.
//!
//! Behaviour follows ovsdb-server 3.1 (`ovsdb/condition.c`), checked against
//! the real server:
//!
//! - a clause is `[column, function, value]`, or JSON `true`/`false`;
//! - `<`, `<=`, `>`, `>=` are allowed only on integer or real columns that
//!   are scalars or optional scalars (`min` 0, `max` 1); their argument must
//!   be exactly one atom, and they are false when the optional value is absent;
//! - the argument is a datum of the column's type, except that for non-scalar
//!   columns `includes` accepts fewer than `min` elements and `excludes` any
//!   number of elements;
//! - `==`/`!=` compare whole datums, `includes`/`excludes` test that every /
//!   no element (map pair) of the argument is in the column.
//!
//! A `where` is a conjunction ([`Condition::evaluate`]); the condition of a
//! `monitor_cond` table is a disjunction ([`Condition::matches_any`]).

use crate::data::atom::Atom;
use crate::data::datum::Datum;
use crate::data::row::{Row, COL_UUID, COL_VERSION};
use crate::data::symbol::SymbolTable;
use crate::db::condition_index::{hash_of, AnyLookup, Probe, ProbeKey};
use crate::db::raw_condition::{RawArg, RawClause, RawCondition};
use crate::db::raw_op::RawName;
use crate::error::OvsdbError;
use crate::schema::{AtomicType, TableSchema, Type, UNLIMITED};
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;
use uuid::Uuid;

/// A condition function. The order of the variants is ovsdb-server's, which
/// sorts clauses by it (boolean constants first, then by expected selectivity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    /// The constant clause `false`.
    False,
    /// The constant clause `true`.
    True,
    /// `==`.
    Eq,
    /// `includes`.
    Includes,
    /// `<=`.
    Le,
    /// `<`.
    Lt,
    /// `>=`.
    Ge,
    /// `>`.
    Gt,
    /// `excludes`.
    Excludes,
    /// `!=`.
    Ne,
}

impl Function {
    /// The function's name in the protocol.
    pub fn name(self) -> &'static str {
        match self {
            Function::False => "false",
            Function::True => "true",
            Function::Eq => "==",
            Function::Includes => "includes",
            Function::Le => "<=",
            Function::Lt => "<",
            Function::Ge => ">=",
            Function::Gt => ">",
            Function::Excludes => "excludes",
            Function::Ne => "!=",
        }
    }

    /// Parses the function of a `[column, function, value]` clause.
    ///
    /// ovsdb-server 3.1 also accepts `"true"`/`"false"` here and then aborts
    /// (an `OVS_NOT_REACHED`); they are rejected instead, as unknown functions.
    pub fn from_name(name: &str) -> Result<Function, OvsdbError> {
        Ok(match name {
            "==" => Function::Eq,
            "!=" => Function::Ne,
            "<" => Function::Lt,
            "<=" => Function::Le,
            ">" => Function::Gt,
            ">=" => Function::Ge,
            "includes" => Function::Includes,
            "excludes" => Function::Excludes,
            _ => {
                return Err(OvsdbError::syntax(
                    None,
                    Some("unknown function"),
                    format!("No function named {name}."),
                ))
            }
        })
    }
}

/// How a column's values are compared: as one atom, as an atom that may be
/// missing, or as whole sets/maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Shape {
    /// Exactly one atom (`min` 1, `max` 1, no value type).
    Scalar,
    /// Zero or one atom (`min` 0, `max` 1, no value type).
    OptionalScalar,
    /// Any other set, or a map.
    Composite,
}

impl Shape {
    fn of(ty: &Type) -> Shape {
        if ty.is_scalar() {
            Shape::Scalar
        } else if ty.value.is_none() && ty.min == 0 && ty.max == 1 {
            Shape::OptionalScalar
        } else {
            Shape::Composite
        }
    }
}

/// One clause of a condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Clause {
    function: Function,
    /// Column index as [`TableSchema::column_index`] returns it; `_uuid` for
    /// the constant clauses.
    column: usize,
    /// The column's name, for [`Condition::to_json`].
    name: Arc<str>,
    shape: Shape,
    /// The parsed argument; the all-zero UUID for the constant clauses.
    arg: Datum,
}

impl Clause {
    fn constant(value: bool) -> Clause {
        Clause {
            function: if value {
                Function::True
            } else {
                Function::False
            },
            column: COL_UUID,
            name: Arc::from("_uuid"),
            shape: Shape::Scalar,
            arg: Datum::scalar(Atom::Uuid(Uuid::nil())),
        }
    }

    fn from_json(
        table: &TableSchema,
        json: &Value,
        symtab: Option<&mut SymbolTable>,
        names: &mut Vec<(usize, Arc<str>)>,
    ) -> Result<Clause, OvsdbError> {
        let parts = match json {
            Value::Bool(b) => return Ok(Clause::constant(*b)),
            Value::Array(a) if a.len() == 3 => a,
            _ => return Err(parse_error(json)),
        };
        let (Some(column_name), Some(function_name)) = (parts[0].as_str(), parts[1].as_str())
        else {
            return Err(parse_error(json));
        };
        let column = table.column_index(column_name).ok_or_else(|| {
            OvsdbError::syntax(
                Some(json),
                Some("unknown column"),
                format!("No column {column_name} in table {}.", table.name),
            )
        })?;
        let schema = table.column(column);
        let function = Function::from_name(function_name)?;
        let shape = Shape::of(&schema.ty);

        let Some(ty) = argument_type(function, &schema.ty, shape) else {
            return Err(match function {
                Function::True | Function::False => parse_error(json),
                _ => OvsdbError::syntax(
                    Some(json),
                    None,
                    format!(
                        "Type mismatch: \"{}\" operator may not be applied to column {} of type {}.",
                        function.name(),
                        schema.name,
                        type_to_english(&schema.ty)
                    ),
                ),
            });
        };
        let arg = Datum::from_json(&ty, &parts[2], symtab)?;
        Ok(Clause {
            function,
            column,
            name: shared_name(names, column, &schema.name),
            shape,
            arg,
        })
    }

    /// A clause decoded from the request's bytes; `None` where the schema
    /// refuses it (the JSON path then gives the error).
    fn from_raw(
        table: &TableSchema,
        raw_names: &[RawName],
        raw: &RawClause,
        symtab: Option<&mut SymbolTable>,
        names: &mut Vec<(usize, Arc<str>)>,
    ) -> Option<Clause> {
        let (column, function, arg) = match raw {
            RawClause::Const(b) => return Some(Clause::constant(*b)),
            RawClause::Compare {
                column,
                function,
                arg,
            } => (*column, *function, arg),
        };
        let column = table.column_index(raw_names.get(usize::from(column))?)?;
        let schema = table.column(column);
        let shape = Shape::of(&schema.ty);
        let ty = argument_type(function, &schema.ty, shape)?;
        let arg = match arg {
            // What `Datum::from_json` makes of a bare `["uuid", U]`.
            RawArg::Uuid(u) if !ty.is_map() && ty.key.atomic == AtomicType::Uuid => {
                let atom = Atom::Uuid(*u);
                atom.check_constraints(&ty.key).ok()?;
                Datum::scalar(atom)
            }
            RawArg::Uuid(_) => return None,
            RawArg::Json(j) => Datum::from_json(&ty, j, symtab).ok()?,
        };
        Some(Clause {
            function,
            column,
            name: shared_name(names, column, &schema.name),
            shape,
            arg,
        })
    }

    fn to_json(&self) -> Value {
        match self.function {
            Function::True => Value::Bool(true),
            Function::False => Value::Bool(false),
            f => Value::Array(vec![
                Value::String(self.name.to_string()),
                Value::String(f.name().to_string()),
                self.arg.to_json(),
            ]),
        }
    }

    fn evaluate(&self, row: &Row) -> bool {
        match self.function {
            Function::True => return true,
            Function::False => return false,
            _ => {}
        }
        match self.column {
            COL_UUID => self.compare_atom(&Atom::Uuid(row.uuid)),
            COL_VERSION => self.compare_atom(&Atom::Uuid(row.version)),
            c => match row.fields.get(c) {
                Some(field) => self.evaluate_datum(field),
                None => false,
            },
        }
    }

    fn evaluate_datum(&self, field: &Datum) -> bool {
        match self.shape {
            Shape::Scalar => match field.first() {
                Some(atom) => self.compare_atom(atom),
                None => false,
            },
            Shape::OptionalScalar | Shape::Composite => match self.function {
                Function::Eq => field == &self.arg,
                Function::Ne => field != &self.arg,
                Function::Includes => self.arg.is_subset_of(field),
                Function::Excludes => self.arg.is_disjoint_from(field),
                // Only optional scalars get here: false when the value is absent.
                _ => match field.first() {
                    Some(atom) => self.compare_atom(atom),
                    None => false,
                },
            },
        }
    }

    /// The clause applied to a one-atom value: the argument is one atom too.
    fn compare_atom(&self, value: &Atom) -> bool {
        let Some(arg) = self.arg.first() else {
            // A one-atom value never equals or includes an empty argument.
            return matches!(self.function, Function::Ne | Function::Excludes);
        };
        let cmp = value.cmp(arg);
        match self.function {
            Function::Eq | Function::Includes => cmp == Ordering::Equal,
            Function::Ne | Function::Excludes => cmp != Ordering::Equal,
            Function::Lt => cmp == Ordering::Less,
            Function::Le => cmp != Ordering::Greater,
            Function::Gt => cmp == Ordering::Greater,
            Function::Ge => cmp != Ordering::Less,
            Function::True => true,
            Function::False => false,
        }
    }

    /// How the rows satisfying this clause can be found (see `condition_index`).
    fn probe(&self) -> Probe {
        let key = |whole: bool, hash: u64| {
            Probe::Key(ProbeKey {
                column: self.column,
                whole,
                hash,
            })
        };
        match (self.function, self.shape) {
            (Function::False, _) => Probe::Never,
            // A one-atom value never equals or includes an empty argument.
            (Function::Eq | Function::Includes, Shape::Scalar) => match self.arg.first() {
                Some(a) => key(false, hash_of(a)),
                None => Probe::Never,
            },
            (Function::Eq, _) => key(true, hash_of(&self.arg)),
            // A set includes the argument only if it holds its first element
            // (an empty argument is included in every value; map pairs are
            // not elements).
            (Function::Includes, _) if self.arg.values.is_none() => match self.arg.first() {
                Some(a) => key(false, hash_of(a)),
                None => Probe::Scan,
            },
            _ => Probe::Scan,
        }
    }

    /// ovsdb-server's clause order: function, then `_uuid`, `_version`, then
    /// other columns by name, then the argument.
    fn order(&self, other: &Clause) -> Ordering {
        let column_rank = |c: &Clause| match c.column {
            COL_UUID => 0,
            COL_VERSION => 1,
            _ => 2,
        };
        self.function
            .cmp(&other.function)
            .then_with(|| column_rank(self).cmp(&column_rank(other)))
            // Most comparisons are between clauses on one column (an OVN
            // chassis's thousands of `datapath ==`): no need to read names.
            .then_with(|| {
                if self.column == other.column {
                    Ordering::Equal
                } else {
                    self.name.as_bytes().cmp(other.name.as_bytes())
                }
            })
            .then_with(|| datum_order(&self.arg, &other.arg))
    }
}

/// ovsdb-server's datum order: by size, then keys, then values.
fn datum_order(a: &Datum, b: &Datum) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.keys.cmp(&b.keys))
        .then_with(|| a.values.cmp(&b.values))
}

/// The type a clause's argument is read as: the column's, relaxed where
/// ovsdb-server relaxes it; `None` where the function does not apply to the
/// column. Borrowed when unchanged: an OVN chassis sends thousands of `==`
/// clauses, and a copied type is a copied `refTable` string each.
fn argument_type(function: Function, ty: &Type, shape: Shape) -> Option<Cow<'_, Type>> {
    let mut ty = Cow::Borrowed(ty);
    match function {
        Function::Lt | Function::Le | Function::Gt | Function::Ge => {
            let numeric = matches!(ty.key.atomic, AtomicType::Integer | AtomicType::Real);
            if shape == Shape::Composite || !numeric {
                return None;
            }
            // The argument is exactly one atom, even for an optional column.
            let t = ty.to_mut();
            t.min = 1;
            t.max = 1;
        }
        Function::Eq | Function::Ne => {}
        Function::Excludes => {
            if shape != Shape::Scalar {
                let t = ty.to_mut();
                t.min = 0;
                t.max = UNLIMITED;
            }
        }
        Function::Includes => {
            if shape != Shape::Scalar && ty.min != 0 {
                ty.to_mut().min = 0;
            }
        }
        Function::True | Function::False => return None,
    }
    Some(ty)
}

/// One name per column for all of a condition's clauses: an OVN chassis
/// sends thousands of clauses on one column.
fn shared_name(names: &mut Vec<(usize, Arc<str>)>, column: usize, name: &str) -> Arc<str> {
    match names.iter().find(|(c, _)| *c == column) {
        Some((_, n)) => n.clone(),
        None => {
            let n: Arc<str> = Arc::from(name);
            names.push((column, n.clone()));
            n
        }
    }
}

fn parse_error(json: &Value) -> OvsdbError {
    OvsdbError::syntax(Some(json), None, "Parse error in condition.")
}

/// A type in words, as ovsdb-server's messages print it, e.g. `integer`,
/// `set of up to 3 strings`, `map of (string, integer) pairs`.
pub fn type_to_english(ty: &Type) -> String {
    if ty.is_scalar() {
        return ty.key.atomic.name().to_string();
    }
    let mut s = String::from(if ty.is_set() { "set" } else { "map" });
    if ty.max == UNLIMITED {
        if ty.min > 0 {
            s.push_str(&format!(" of {} or more", ty.min));
        } else {
            s.push_str(" of");
        }
    } else if ty.min > 0 {
        s.push_str(&format!(" of {} to {}", ty.min, ty.max));
    } else {
        s.push_str(&format!(" of up to {}", ty.max));
    }
    match &ty.value {
        Some(v) if !ty.is_set() => {
            s.push_str(&format!(
                " ({}, {}) pairs",
                ty.key.atomic.name(),
                v.atomic.name()
            ));
        }
        _ => s.push_str(&format!(" {}s", ty.key.atomic.name())),
    }
    s
}

/// A parsed condition: clauses sorted in ovsdb-server's order, so that two
/// conditions with the same clauses in any order compare (and serialize) equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Condition {
    clauses: Vec<Clause>,
    lookup: Lookup,
}

/// Conditions of this many clauses or more find their clauses through an
/// [`AnyLookup`] in `matches_any` (below it, a loop is as fast).
const LOOKUP_FROM: usize = 8;

/// A long condition's [`AnyLookup`]; derived from the clauses, so it takes
/// no part in comparisons.
#[derive(Debug, Clone, Default)]
struct Lookup(Option<Arc<AnyLookup>>);

impl std::hash::Hash for Lookup {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl PartialEq for Lookup {
    fn eq(&self, _: &Lookup) -> bool {
        true
    }
}

impl Eq for Lookup {}

impl Condition {
    /// Parses a "where" array (RFC 7047 5.1) for `table`; named-uuids resolved via symtab when Some.
    pub fn from_json(
        table: &TableSchema,
        json: &Value,
        mut symtab: Option<&mut SymbolTable>,
    ) -> Result<Condition, OvsdbError> {
        let items = match json {
            Value::Array(a) => a,
            _ => return Err(parse_error(json)),
        };
        let mut clauses = Vec::with_capacity(items.len());
        let mut names = Vec::new();
        for item in items {
            clauses.push(Clause::from_json(
                table,
                item,
                symtab.as_deref_mut(),
                &mut names,
            )?);
        }
        Ok(Condition::of_clauses(clauses))
    }

    /// A condition decoded from the request's bytes; `None` where the
    /// schema refuses it (the JSON path then gives the error). Named-uuids
    /// are resolved via `symtab` when `Some`, as by [`Condition::from_json`].
    pub fn from_raw(
        table: &TableSchema,
        raw: &RawCondition,
        mut symtab: Option<&mut SymbolTable>,
    ) -> Option<Condition> {
        let mut clauses = Vec::with_capacity(raw.clauses.len());
        let mut names = Vec::new();
        for c in &raw.clauses {
            clauses.push(Clause::from_raw(
                table,
                &raw.names,
                c,
                symtab.as_deref_mut(),
                &mut names,
            )?);
        }
        Some(Condition::of_clauses(clauses))
    }

    fn of_clauses(mut clauses: Vec<Clause>) -> Condition {
        clauses.sort_by(Clause::order);
        let lookup = if clauses.len() >= LOOKUP_FROM {
            let probes: Vec<Probe> = clauses.iter().map(Clause::probe).collect();
            Lookup(Some(Arc::new(AnyLookup::new(&probes))))
        } else {
            Lookup(None)
        };
        Condition { clauses, lookup }
    }

    /// How the rows satisfying each clause can be found, in clause order.
    pub fn probes(&self) -> impl Iterator<Item = Probe> + '_ {
        self.clauses.iter().map(Clause::probe)
    }

    /// The probe keys of the clauses in exactly one of `self` and `other`:
    /// only rows offering one of them can match one condition and not the
    /// other. `None` when such a clause needs a scan, or a condition is
    /// empty (it matches every row).
    pub fn differing_keys(&self, other: &Condition) -> Option<Vec<ProbeKey>> {
        if self.is_empty() || other.is_empty() {
            return None;
        }
        let (a, b) = (&self.clauses, &other.clauses);
        let (mut i, mut j) = (0, 0);
        let mut keys = Vec::new();
        let mut push = |c: &Clause| match c.probe() {
            Probe::Never => Some(()),
            Probe::Key(k) => {
                keys.push(k);
                Some(())
            }
            Probe::Scan => None,
        };
        loop {
            match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x == y => {
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) => {
                    if x.order(y) == Ordering::Greater {
                        push(y)?;
                        j += 1;
                    } else {
                        push(x)?;
                        i += 1;
                    }
                }
                (Some(x), None) => {
                    push(x)?;
                    i += 1;
                }
                (None, Some(y)) => {
                    push(y)?;
                    j += 1;
                }
                (None, None) => break,
            }
        }
        Some(keys)
    }

    /// Whether `row` satisfies clause `i` (in clause order).
    pub fn clause_matches(&self, i: usize, row: &Row) -> bool {
        self.clauses.get(i).is_some_and(|c| c.evaluate(row))
    }

    /// Whether `row` satisfies every clause (the semantics of a `where`).
    pub fn evaluate(&self, row: &Row) -> bool {
        self.clauses.iter().all(|c| c.evaluate(row))
    }

    /// Whether the condition is empty or `row` satisfies at least one clause:
    /// the semantics of a `monitor_cond` / `monitor_cond_change` condition.
    pub fn matches_any(&self, row: &Row) -> bool {
        if let Some(l) = &self.lookup.0 {
            return l.matches_any(self, row);
        }
        self.clauses.is_empty() || self.clauses.iter().any(|c| c.evaluate(row))
    }

    /// Whether the condition is empty or made only of `true` clauses (matches every row).
    pub fn is_always_true(&self) -> bool {
        self.clauses.iter().all(|c| c.function == Function::True)
    }

    /// Whether it contains a `false` clause (matches nothing).
    pub fn is_always_false(&self) -> bool {
        self.clauses.iter().any(|c| c.function == Function::False)
    }

    /// For [`matches_any`](Self::matches_any): whether every row matches
    /// (empty, or some clause is `true`).
    pub fn any_is_always_true(&self) -> bool {
        self.clauses.is_empty() || self.clauses.iter().any(|c| c.function == Function::True)
    }

    /// For [`matches_any`](Self::matches_any): whether no row matches
    /// (non-empty and made only of `false` clauses).
    pub fn any_is_always_false(&self) -> bool {
        !self.clauses.is_empty() && self.clauses.iter().all(|c| c.function == Function::False)
    }

    /// Whether there are no clauses.
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// If some clause is `["_uuid", "==", ["uuid", X]]`, the UUID X (lets callers look up one row instead of scanning).
    /// The other clauses still have to be evaluated on that row.
    pub fn uuid_equal(&self) -> Option<Uuid> {
        self.clauses
            .iter()
            .filter(|c| c.function == Function::Eq && c.column == COL_UUID)
            .find_map(|c| c.arg.first().and_then(Atom::as_uuid))
    }

    /// The columns the clauses refer to (the constant clauses excluded), each once.
    pub fn columns(&self) -> Vec<usize> {
        let mut cols: Vec<usize> = Vec::new();
        for c in &self.clauses {
            if !matches!(c.function, Function::True | Function::False) && !cols.contains(&c.column)
            {
                cols.push(c.column);
            }
        }
        cols
    }

    /// The condition back as JSON (clauses), as monitor_cond_change needs to compare conditions.
    pub fn to_json(&self) -> Value {
        Value::Array(self.clauses.iter().map(Clause::to_json).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::DatabaseSchema;
    use proptest::prelude::*;
    use serde_json::json;

    fn schema() -> DatabaseSchema {
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
                    "or": {"type": {"key": "real", "min": 0, "max": 1}},
                    "os": {"type": {"key": "string", "min": 0, "max": 1}},
                    "si": {"type": {"key": "integer", "min": 0, "max": "unlimited"}},
                    "si3": {"type": {"key": "integer", "min": 0, "max": 3}},
                    "si13": {"type": {"key": "integer", "min": 1, "max": 3}},
                    "ss": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                    "ri": {"type": {"key": {"type": "integer", "minInteger": 0, "maxInteger": 10}}},
                    "e": {"type": {"key": {"type": "string", "enum": ["set", ["a", "b", "c"]]},
                                   "min": 0, "max": "unlimited"}},
                    "m": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                    "mi": {"type": {"key": "integer", "value": "string", "min": 0, "max": 2}},
                    "om": {"type": {"key": "string", "value": "integer", "min": 0, "max": 1}},
                    "si1": {"type": {"key": "integer", "min": 1, "max": "unlimited"}}
                }}
            }
        });
        DatabaseSchema::from_json(&j).expect("schema")
    }

    fn table() -> TableSchema {
        schema().table("A").expect("table A").clone()
    }

    const U1: &str = "e4acb029-24e6-4102-ac29-3ccb5a7fe82c";

    /// The row of the reference checks: i=5, si={1,2,3}, m={a=x,b=y}, the rest default.
    fn row(t: &TableSchema) -> Row {
        let mut r = Row::new_default(t, parse_uuid(U1));
        let set = |r: &mut Row, c: &str, v: Value| {
            let idx = t.column_index(c).expect("column");
            r.fields[idx] = Datum::from_json(&t.column(idx).ty, &v, None).expect("datum");
        };
        set(&mut r, "i", json!(5));
        set(&mut r, "si", json!(["set", [1, 2, 3]]));
        set(&mut r, "m", json!(["map", [["a", "x"], ["b", "y"]]]));
        r
    }

    fn parse_uuid(s: &str) -> Uuid {
        crate::data::atom::parse_uuid_str(s).expect("uuid")
    }

    fn cond(t: &TableSchema, j: Value) -> Result<Condition, OvsdbError> {
        Condition::from_json(t, &j, None)
    }

    fn eval(t: &TableSchema, r: &Row, j: Value) -> bool {
        cond(t, j).expect("condition").evaluate(r)
    }

    fn err(t: &TableSchema, j: Value) -> Value {
        cond(t, j).expect_err("error").to_json()
    }

    fn set_field(t: &TableSchema, r: &mut Row, c: &str, v: Value) {
        let idx = t.column_index(c).expect("column");
        r.fields[idx] = Datum::from_json(&t.column(idx).ty, &v, None).expect("datum");
    }

    // ---- parse errors (each checked against ovsdb-server 3.1) ----

    #[test]
    fn parse_errors_match_reference() {
        let t = table();
        assert_eq!(
            err(&t, json!([["i", "<", "x"]])),
            json!({"error": "syntax error", "details": "expected integer", "syntax": "\"x\""})
        );
        assert_eq!(
            err(&t, json!([["nope", "==", 1]])),
            json!({"error": "unknown column", "details": "No column nope in table A.",
                   "syntax": "[\"nope\",\"==\",1]"})
        );
        assert_eq!(
            err(&t, json!([["nope", "foo", 1]])),
            json!({"error": "unknown column", "details": "No column nope in table A.",
                   "syntax": "[\"nope\",\"foo\",1]"})
        );
        assert_eq!(
            err(&t, json!([["i", "foo", 1]])),
            json!({"error": "unknown function", "details": "No function named foo."})
        );
        for bad in [
            json!(["i", "=="]),
            json!(1),
            json!({"a": 1}),
            json!(["i", 1, 1]),
            json!([1, "==", 1]),
            json!(["i", "==", 1, 2]),
            json!(null),
        ] {
            let e = err(&t, json!([bad.clone()]));
            assert_eq!(e["error"], "syntax error");
            assert_eq!(e["details"], "Parse error in condition.");
            assert_eq!(e["syntax"], json!(crate::data::json_text(&bad)));
        }
        // The first bad clause wins, even after a `true`.
        assert_eq!(
            err(&t, json!([true, ["nope", "==", 1]]))["error"],
            "unknown column"
        );
        // Not an array at all.
        assert_eq!(
            err(&t, json!({"x": 1}))["details"],
            "Parse error in condition."
        );
    }

    #[test]
    fn true_false_as_function_names_are_unknown() {
        // ovsdb-server 3.1 aborts on these; we reject them.
        let t = table();
        assert_eq!(
            err(&t, json!([["i", "true", 1]])),
            json!({"error": "unknown function", "details": "No function named true."})
        );
        assert_eq!(
            err(&t, json!([["i", "false", 1]]))["error"],
            "unknown function"
        );
    }

    #[test]
    fn ordering_type_mismatch_messages() {
        let t = table();
        let cases = [
            ("s", "<", "string"),
            ("si", "<", "set of integers"),
            ("os", "<", "set of up to 1 strings"),
            ("m", "<", "map of (string, string) pairs"),
            ("om", "<", "map of up to 1 (string, integer) pairs"),
            ("b", "<", "boolean"),
            ("u", "<", "uuid"),
            ("_uuid", "<", "uuid"),
            ("si3", ">=", "set of up to 3 integers"),
            ("si13", "<=", "set of 1 to 3 integers"),
            ("mi", ">", "map of up to 2 (integer, string) pairs"),
            ("e", "<", "set of strings"),
            ("si1", "<", "set of 1 or more integers"),
        ];
        for (col, f, english) in cases {
            let clause = json!([col, f, 1]);
            assert_eq!(
                err(&t, json!([clause.clone()])),
                json!({
                    "error": "syntax error",
                    "details": format!(
                        "Type mismatch: \"{f}\" operator may not be applied to column {col} of type {english}."
                    ),
                    "syntax": crate::data::json_text(&clause),
                }),
                "{col}"
            );
        }
        // Allowed: integer/real scalars and optional scalars.
        for col in ["i", "r", "oi", "or", "ri"] {
            for f in ["<", "<=", ">", ">="] {
                assert!(cond(&t, json!([[col, f, 1]])).is_ok(), "{col} {f}");
            }
        }
    }

    #[test]
    fn argument_types_and_relaxation() {
        let t = table();
        let r = row(&t);
        // includes: min relaxed to 0 but max kept.
        assert_eq!(
            err(&t, json!([["si3", "includes", ["set", [1, 2, 3, 4]]]])),
            json!({"error": "syntax error", "details": "set must have 0 to 3 members but 4 are present",
                   "syntax": "[\"set\",[1,2,3,4]]"})
        );
        assert!(eval(&t, &r, json!([["si13", "includes", ["set", []]]])));
        // excludes: any size.
        assert!(eval(
            &t,
            &r,
            json!([["si3", "excludes", ["set", [1, 2, 3, 4]]]])
        ));
        assert!(eval(&t, &r, json!([["si13", "excludes", ["set", []]]])));
        // ==: the column's own type.
        assert_eq!(
            err(&t, json!([["si3", "==", ["set", [1, 2, 3, 4]]]]))["details"],
            "set must have 0 to 3 members but 4 are present"
        );
        assert_eq!(
            err(&t, json!([["si13", "==", ["set", []]]]))["details"],
            "set must have 1 to 3 members but 0 are present"
        );
        // Scalars are never relaxed.
        assert_eq!(
            err(&t, json!([["i", "includes", ["set", []]]])),
            json!({"error": "syntax error", "details": "set must have exactly one member but 0 are present",
                   "syntax": "[\"set\",[]]"})
        );
        assert_eq!(
            err(&t, json!([["_uuid", "includes", ["set", []]]]))["details"],
            "set must have exactly one member but 0 are present"
        );
        assert_eq!(
            err(&t, json!([["i", "==", ["set", [5, 6]]]]))["details"],
            "set must have exactly one member but 2 are present"
        );
        // Ordering on an optional column takes exactly one atom.
        assert_eq!(
            err(&t, json!([["oi", "<", ["set", []]]]))["details"],
            "set must have exactly one member but 0 are present"
        );
        assert_eq!(
            err(&t, json!([["oi", "<", ["set", [1, 2]]]]))["details"],
            "set must have exactly one member but 2 are present"
        );
        // Constraints of the column apply to the argument.
        assert_eq!(
            err(&t, json!([["ri", "<", 100]])),
            json!({"error": "constraint violation",
                   "details": "100 is not in the valid range 0 to 10 (inclusive)"})
        );
        assert_eq!(
            err(&t, json!([["e", "includes", ["set", ["z"]]]])),
            json!({"error": "constraint violation",
                   "details": "z is not one of the allowed values ([a, b, c])"})
        );
        // Datum shape errors.
        assert_eq!(
            err(&t, json!([["i", "==", 1.5]]))["details"],
            "expected integer"
        );
        assert_eq!(
            err(&t, json!([["m", "includes", ["map", [["a"]]]]])),
            json!({"error": "syntax error", "details": "expected 2-element array", "syntax": "[\"a\"]"})
        );
        assert_eq!(
            err(&t, json!([["m", "==", ["set", []]]]))["details"],
            "expected [\"map\", <array>]"
        );
        assert_eq!(
            err(&t, json!([["si", "==", ["map", []]]]))["details"],
            "expected integer"
        );
        assert_eq!(
            err(&t, json!([["si", "==", ["set", [3, 2, 1, 1]]]])),
            json!({"error": "ovsdb error", "details": "set contains duplicate"})
        );
        assert_eq!(
            err(&t, json!([["i", "==", 9223372036854775808u64]]))["details"],
            "expected integer"
        );
    }

    // ---- evaluation (each checked against ovsdb-server 3.1 on the same row) ----

    #[test]
    fn scalar_functions() {
        let t = table();
        let r = row(&t);
        assert!(eval(&t, &r, json!([["i", "==", 5]])));
        assert!(!eval(&t, &r, json!([["i", "!=", 5]])));
        assert!(eval(&t, &r, json!([["i", "==", ["set", [5]]]])));
        assert!(eval(&t, &r, json!([["i", "includes", 5]])));
        assert!(eval(&t, &r, json!([["i", "excludes", 4]])));
        assert!(!eval(&t, &r, json!([["i", "excludes", 5]])));
        assert!(eval(&t, &r, json!([["i", "<", 6]])));
        assert!(!eval(&t, &r, json!([["i", "<", 5]])));
        assert!(eval(&t, &r, json!([["i", "<=", 5]])));
        assert!(eval(&t, &r, json!([["i", ">", 4]])));
        assert!(!eval(&t, &r, json!([["i", ">", 5]])));
        assert!(eval(&t, &r, json!([["i", ">=", 5]])));
        assert!(eval(&t, &r, json!([["r", "<", 1]])));
        assert!(eval(&t, &r, json!([["r", "==", -0.0]])));
        assert!(eval(&t, &r, json!([["s", "==", ""]])));
        assert!(eval(&t, &r, json!([["b", "!=", true]])));
        assert!(!eval(&t, &r, json!([["r", "==", 1]])));
    }

    #[test]
    fn uuid_and_version_columns() {
        let t = table();
        let mut r = row(&t);
        r.version = parse_uuid("00000000-0000-0000-0000-000000000001");
        assert!(eval(&t, &r, json!([["_uuid", "==", ["uuid", U1]]])));
        assert!(!eval(&t, &r, json!([["_uuid", "!=", ["uuid", U1]]])));
        assert!(eval(
            &t,
            &r,
            json!([[
                "_version",
                "==",
                ["uuid", "00000000-0000-0000-0000-000000000001"]
            ]])
        ));
        assert!(!eval(
            &t,
            &r,
            json!([[
                "_version",
                "==",
                ["uuid", "00000000-0000-0000-0000-000000000000"]
            ]])
        ));
        // Named UUIDs need a symbol table.
        let mut symtab = SymbolTable::new();
        let c = Condition::from_json(
            &t,
            &json!([["_uuid", "==", ["named-uuid", "foo"]]]),
            Some(&mut symtab),
        )
        .expect("condition");
        assert_eq!(c.uuid_equal(), symtab.get("foo").map(|s| s.uuid));
        assert!(!c.evaluate(&r));
        assert_eq!(
            err(&t, json!([["_uuid", "==", ["named-uuid", "foo"]]]))["details"],
            "expected [\"uuid\", <string>]"
        );
    }

    #[test]
    fn optional_scalar_semantics() {
        let t = table();
        let mut r = row(&t);
        // oi empty.
        assert!(!eval(&t, &r, json!([["oi", "<", 1]])));
        assert!(!eval(&t, &r, json!([["oi", ">=", 1]])));
        assert!(eval(&t, &r, json!([["oi", "==", ["set", []]]])));
        assert!(!eval(&t, &r, json!([["oi", "!=", ["set", []]]])));
        assert!(eval(&t, &r, json!([["oi", "includes", ["set", []]]])));
        assert!(eval(&t, &r, json!([["oi", "excludes", ["set", [1, 2]]]])));
        assert!(eval(&t, &r, json!([["oi", "excludes", ["set", []]]])));
        assert!(!eval(&t, &r, json!([["oi", "==", 1]])));
        assert!(eval(&t, &r, json!([["oi", "!=", 1]])));
        assert!(!eval(&t, &r, json!([["oi", "includes", 1]])));
        assert!(eval(&t, &r, json!([["oi", "excludes", 1]])));
        // oi = 3, or = 2.5.
        set_field(&t, &mut r, "oi", json!(3));
        set_field(&t, &mut r, "or", json!(2.5));
        assert!(eval(&t, &r, json!([["oi", "==", 3]])));
        assert!(eval(&t, &r, json!([["oi", "includes", ["set", []]]])));
        assert!(!eval(&t, &r, json!([["oi", "excludes", ["set", [1, 3]]]])));
        assert!(eval(&t, &r, json!([["oi", "excludes", ["set", [4, 1]]]])));
        assert!(!eval(&t, &r, json!([["oi", "==", ["set", []]]])));
        assert!(eval(&t, &r, json!([["oi", "!=", ["set", []]]])));
        assert!(eval(&t, &r, json!([["oi", "excludes", ["set", []]]])));
        assert!(eval(&t, &r, json!([["oi", "<", 4]])));
        assert!(eval(&t, &r, json!([["oi", "<=", 3]])));
        assert!(!eval(&t, &r, json!([["oi", ">", 3]])));
        assert!(eval(&t, &r, json!([["or", ">", 2.4]])));
        assert!(!eval(&t, &r, json!([["or", "<", 2]])));
    }

    #[test]
    fn set_and_map_functions() {
        let t = table();
        let r = row(&t);
        assert!(eval(&t, &r, json!([["si", "includes", ["set", [1, 2]]]])));
        assert!(eval(&t, &r, json!([["si", "includes", ["set", []]]])));
        assert!(!eval(&t, &r, json!([["si", "includes", ["set", [1, 9]]]])));
        assert!(eval(&t, &r, json!([["si", "excludes", ["set", [7, 9]]]])));
        assert!(!eval(&t, &r, json!([["si", "excludes", ["set", [1, 9]]]])));
        assert!(eval(&t, &r, json!([["si", "==", ["set", [3, 2, 1]]]])));
        assert!(!eval(&t, &r, json!([["si", "==", ["set", [3, 2]]]])));
        assert!(eval(&t, &r, json!([["si", "!=", 1]])));
        assert!(eval(&t, &r, json!([["si", "includes", 2]])));
        assert!(eval(
            &t,
            &r,
            json!([["m", "includes", ["map", [["a", "x"]]]]])
        ));
        assert!(!eval(
            &t,
            &r,
            json!([["m", "includes", ["map", [["a", "y"]]]]])
        ));
        assert!(eval(
            &t,
            &r,
            json!([["m", "excludes", ["map", [["a", "y"]]]]])
        ));
        assert!(!eval(
            &t,
            &r,
            json!([["m", "excludes", ["map", [["a", "x"]]]]])
        ));
        assert!(eval(
            &t,
            &r,
            json!([["m", "==", ["map", [["b", "y"], ["a", "x"]]]]])
        ));
        assert!(!eval(
            &t,
            &r,
            json!([["m", "!=", ["map", [["b", "y"], ["a", "x"]]]]])
        ));
        assert!(eval(&t, &r, json!([["ss", "==", ["set", []]]])));
        assert!(eval(&t, &r, json!([["om", "==", ["map", []]]])));
        assert!(eval(&t, &r, json!([["si13", "==", 0]])));
    }

    #[test]
    fn constant_clauses() {
        let t = table();
        let r = row(&t);
        let c = cond(&t, json!([true])).expect("c");
        assert!(c.evaluate(&r) && c.is_always_true() && !c.is_always_false());
        let c = cond(&t, json!([false])).expect("c");
        assert!(!c.evaluate(&r) && !c.is_always_true() && c.is_always_false());
        let c = cond(&t, json!([true, false])).expect("c");
        assert!(!c.evaluate(&r) && c.is_always_false());
        assert!(c.matches_any(&r) && c.any_is_always_true() && !c.any_is_always_false());
        let c = cond(&t, json!([])).expect("c");
        assert!(c.evaluate(&r) && c.is_always_true() && c.is_empty());
        assert!(c.matches_any(&r) && c.any_is_always_true());
        let c = cond(&t, json!([true, ["i", "==", 4]])).expect("c");
        assert!(!c.is_always_true() && !c.evaluate(&r) && c.matches_any(&r));
        let c = cond(&t, json!([false, false])).expect("c");
        assert!(c.any_is_always_false() && !c.matches_any(&r));
    }

    #[test]
    fn conjunction_and_disjunction() {
        let t = table();
        let r = row(&t);
        let c = cond(&t, json!([["i", "==", 5], ["i", "==", 6]])).expect("c");
        assert!(!c.evaluate(&r));
        assert!(c.matches_any(&r));
        let c = cond(&t, json!([["i", "==", 4], ["i", "==", 6]])).expect("c");
        assert!(!c.matches_any(&r));
        let c = cond(&t, json!([["i", "==", 5], ["si", "includes", 1]])).expect("c");
        assert!(c.evaluate(&r));
    }

    #[test]
    fn uuid_equal_and_columns() {
        let t = table();
        let c = cond(&t, json!([["i", "==", 5], ["_uuid", "==", ["uuid", U1]]])).expect("c");
        assert_eq!(c.uuid_equal(), Some(parse_uuid(U1)));
        let c = cond(&t, json!([["_uuid", "!=", ["uuid", U1]]])).expect("c");
        assert_eq!(c.uuid_equal(), None);
        let c = cond(&t, json!([["u", "==", ["uuid", U1]]])).expect("c");
        assert_eq!(c.uuid_equal(), None);
        let c = cond(
            &t,
            json!([
                true,
                ["i", "==", 5],
                ["i", "<", 7],
                ["_uuid", "!=", ["uuid", U1]]
            ]),
        )
        .expect("c");
        let i = t.column_index("i").expect("i");
        // In clause order: `==` sorts before `<`, which sorts before `!=`.
        assert_eq!(c.columns(), vec![i, COL_UUID]);
    }

    #[test]
    fn to_json_sorted_like_ovsdb_server() {
        let t = table();
        let c = cond(
            &t,
            json!([
                ["s", "!=", "x"],
                ["si", "includes", ["set", [3, 1]]],
                ["i", "==", 5],
                true,
                ["_version", "==", ["uuid", U1]],
                ["_uuid", "==", ["uuid", U1]],
                ["b", "==", true],
                false,
                ["i", "==", 4],
                ["si", "includes", 2],
                ["m", "==", ["map", [["b", "y"], ["a", "x"]]]]
            ]),
        )
        .expect("c");
        assert_eq!(
            c.to_json(),
            json!([
                false,
                true,
                ["_uuid", "==", ["uuid", U1]],
                ["_version", "==", ["uuid", U1]],
                ["b", "==", true],
                ["i", "==", 4],
                ["i", "==", 5],
                ["m", "==", ["map", [["a", "x"], ["b", "y"]]]],
                ["si", "includes", 2],
                ["si", "includes", ["set", [1, 3]]],
                ["s", "!=", "x"]
            ])
        );
        let again = cond(&t, c.to_json()).expect("again");
        assert_eq!(again, c);
    }

    #[test]
    fn english_types() {
        let ty = |j: Value| Type::from_json(&j).expect("type");
        assert_eq!(type_to_english(&ty(json!("integer"))), "integer");
        assert_eq!(
            type_to_english(&ty(json!({"key": "string", "min": 0, "max": 1}))),
            "set of up to 1 strings"
        );
        assert_eq!(
            type_to_english(&ty(json!({"key": "uuid", "min": 1, "max": "unlimited"}))),
            "set of 1 or more uuids"
        );
        assert_eq!(
            type_to_english(&ty(json!({"key": "real", "min": 0, "max": "unlimited"}))),
            "set of reals"
        );
        assert_eq!(
            type_to_english(&ty(json!({"key": "boolean", "min": 1, "max": 2}))),
            "set of 1 to 2 booleans"
        );
        assert_eq!(
            type_to_english(&ty(
                json!({"key": "string", "value": "integer", "min": 1, "max": 1})
            )),
            "map of 1 to 1 (string, integer) pairs"
        );
        assert_eq!(
            type_to_english(&ty(
                json!({"key": "string", "value": "uuid", "min": 1, "max": "unlimited"})
            )),
            "map of 1 or more (string, uuid) pairs"
        );
    }

    // ---- property tests ----

    /// Small atom domains so that random values collide often.
    fn atom_strategy(t: AtomicType) -> BoxedStrategy<Atom> {
        match t {
            AtomicType::Integer => prop_oneof![
                8 => (-4i64..5).prop_map(Atom::Integer),
                1 => any::<i64>().prop_map(Atom::Integer),
            ]
            .boxed(),
            AtomicType::Real => prop_oneof![
                4 => (-3i32..4).prop_map(|i| Atom::Real(f64::from(i) / 2.0)),
                1 => (-1e300f64..1e300).prop_map(Atom::Real),
            ]
            .boxed(),
            AtomicType::Boolean => any::<bool>().prop_map(Atom::Boolean).boxed(),
            AtomicType::String => prop_oneof![
                4 => prop::sample::select(vec!["", "a", "b", "c", "x y", "\u{e9}"]).prop_map(Atom::string),
                1 => ".{0,6}".prop_map(|s: String| Atom::string(&s)),
            ]
            .boxed(),
            AtomicType::Uuid => prop::sample::select(vec![0u128, 1, 2, u128::MAX])
                .prop_map(|n| Atom::Uuid(Uuid::from_u128(n)))
                .boxed(),
        }
    }

    /// A datum valid for `ty` (ignoring atom constraints).
    fn datum_strategy(ty: &Type) -> BoxedStrategy<Datum> {
        let min = ty.min as usize;
        let max = (ty.max as usize).min(min + 4);
        let keys = atom_strategy(ty.key.atomic);
        match &ty.value {
            None => prop::collection::vec(keys, min..=max)
                .prop_map(Datum::set_from)
                .boxed(),
            Some(v) => prop::collection::vec((keys, atom_strategy(v.atomic)), min..=max)
                .prop_map(Datum::map_from)
                .boxed(),
        }
    }

    /// Columns of the test table without atom constraints (so any generated datum is valid).
    const FREE_COLUMNS: &[&str] = &[
        "i", "r", "b", "s", "u", "oi", "or", "os", "si", "si3", "si13", "ss", "m", "mi", "om",
        "si1",
    ];

    /// The columns of `FREE_COLUMNS` that are not scalars.
    const COMPOSITE_COLUMNS: &[&str] = &[
        "oi", "or", "os", "si", "si3", "si13", "si1", "ss", "m", "mi", "om",
    ];

    fn row_strategy() -> impl Strategy<Value = Row> {
        let t = table();
        let fields: Vec<BoxedStrategy<Datum>> = t
            .columns
            .iter()
            .map(|c| {
                if FREE_COLUMNS.contains(&c.name.as_str()) {
                    datum_strategy(&c.ty)
                } else {
                    Just(Datum::default_of(&c.ty)).boxed()
                }
            })
            .collect();
        (fields, 0u128..3).prop_map(|(fields, u)| Row {
            uuid: Uuid::from_u128(u),
            version: Uuid::from_u128(u + 1),
            fields,
        })
    }

    /// A column name and a datum of its type.
    fn column_and_datum() -> impl Strategy<Value = (String, Datum)> {
        prop::sample::select(FREE_COLUMNS.to_vec()).prop_flat_map(|name| {
            let t = table();
            let idx = t.column_index(name).unwrap_or(0);
            datum_strategy(&t.column(idx).ty).prop_map(move |d| (name.to_string(), d))
        })
    }

    fn ty_of(t: &TableSchema, name: &str) -> Type {
        t.column(t.column_index(name).unwrap_or(0)).ty.clone()
    }

    proptest! {
        #[test]
        fn eq_and_ne_are_complementary(r in row_strategy(), (col, d) in column_and_datum()) {
            let t = table();
            let eq = eval(&t, &r, json!([[col, "==", d.to_json()]]));
            let ne = eval(&t, &r, json!([[col, "!=", d.to_json()]]));
            prop_assert_ne!(eq, ne);
            let idx = t.column_index(&col).unwrap_or(0);
            prop_assert_eq!(eq, r.fields[idx] == d);
        }

        #[test]
        fn includes_and_equals_own_value(r in row_strategy(), col in prop::sample::select(FREE_COLUMNS.to_vec())) {
            let t = table();
            let own = r.datum(t.column_index(col).unwrap_or(0)).to_json();
            prop_assert!(eval(&t, &r, json!([[col, "includes", own.clone()]])));
            prop_assert!(eval(&t, &r, json!([[col, "==", own.clone()]])));
            prop_assert!(!eval(&t, &r, json!([[col, "!=", own]])));
        }

        #[test]
        fn excludes_empty_and_includes_empty(r in row_strategy(), col in prop::sample::select(COMPOSITE_COLUMNS.to_vec())) {
            let t = table();
            let ty = ty_of(&t, col);
            prop_assert!(!ty.is_scalar());
            let empty = Datum::empty_of(&ty).to_json();
            prop_assert!(eval(&t, &r, json!([[col, "excludes", empty.clone()]])));
            prop_assert!(eval(&t, &r, json!([[col, "includes", empty]])));
        }

        #[test]
        fn includes_and_excludes_agree_with_set_algebra(r in row_strategy(), (col, d) in column_and_datum()) {
            let t = table();
            let idx = t.column_index(&col).unwrap_or(0);
            let field = &r.fields[idx];
            let inc = eval(&t, &r, json!([[col, "includes", d.to_json()]]));
            let exc = eval(&t, &r, json!([[col, "excludes", d.to_json()]]));
            prop_assert_eq!(inc, d.pairs().all(|(k, v)| field.contains(k, v)));
            prop_assert_eq!(exc, d.pairs().all(|(k, v)| !field.contains(k, v)));
            if inc && exc {
                prop_assert!(d.is_empty());
            }
        }

        #[test]
        fn ordering_is_total_on_integers(r in row_strategy(), x in atom_strategy(AtomicType::Integer)) {
            let t = table();
            let x = x.to_json();
            let lt = eval(&t, &r, json!([["i", "<", x.clone()]]));
            let le = eval(&t, &r, json!([["i", "<=", x.clone()]]));
            let eq = eval(&t, &r, json!([["i", "==", x.clone()]]));
            let gt = eval(&t, &r, json!([["i", ">", x.clone()]]));
            let ge = eval(&t, &r, json!([["i", ">=", x.clone()]]));
            prop_assert_eq!(u8::from(lt) + u8::from(eq) + u8::from(gt), 1);
            prop_assert_eq!(le, lt || eq);
            prop_assert_eq!(ge, gt || eq);
            // Optional column: all false when empty, else as for a scalar.
            let oi = &r.fields[t.column_index("oi").unwrap_or(0)];
            let olt = eval(&t, &r, json!([["oi", "<", x.clone()]]));
            let oge = eval(&t, &r, json!([["oi", ">=", x]]));
            if oi.is_empty() {
                prop_assert!(!olt && !oge);
            } else {
                prop_assert_ne!(olt, oge);
            }
        }

        #[test]
        fn constants_and_conjunction(r in row_strategy(), (c1, d1) in column_and_datum(), (c2, d2) in column_and_datum()) {
            let t = table();
            let a = json!([c1, "==", d1.to_json()]);
            let b = json!([c2, "includes", d2.to_json()]);
            let ea = eval(&t, &r, json!([a.clone()]));
            let eb = eval(&t, &r, json!([b.clone()]));
            prop_assert_eq!(eval(&t, &r, json!([a.clone(), b.clone()])), ea && eb);
            prop_assert_eq!(eval(&t, &r, json!([true, a.clone(), true])), ea);
            prop_assert!(!eval(&t, &r, json!([a.clone(), false])));
            let both = cond(&t, json!([b.clone(), a.clone()])).expect("c");
            prop_assert_eq!(both.matches_any(&r), ea || eb);
            // Clause order does not matter, and JSON round-trips.
            let other = cond(&t, json!([a, b])).expect("c");
            prop_assert_eq!(&other, &both);
            prop_assert_eq!(other.to_json(), both.to_json());
            prop_assert_eq!(cond(&t, both.to_json()).expect("c"), both);
        }

        #[test]
        fn datum_json_round_trip((col, d) in column_and_datum()) {
            let t = table();
            let ty = ty_of(&t, &col);
            let back = Datum::from_json(&ty, &d.to_json(), None).expect("parse");
            prop_assert_eq!(&back, &d);
            prop_assert_eq!(back.to_json(), d.to_json());
        }

        #[test]
        fn lookups_find_what_evaluating_every_clause_finds(
            r in row_strategy(),
            picks in prop::collection::vec((column_and_datum(), 0..6usize, any::<bool>()), 0..24),
        ) {
            let t = table();
            let mut clauses = Vec::new();
            for ((col, d), f, own) in picks {
                let idx = t.column_index(&col).unwrap_or(0);
                let field = &r.fields[idx];
                // Clauses about the row's own value, or one element of it,
                // are the ones a lookup must find.
                let arg = match (own, f, field.values.is_none(), field.first()) {
                    (true, 1, true, Some(first)) => Datum::scalar(first.clone()),
                    (true, _, _, _) => field.clone(),
                    (false, _, _, _) => d,
                };
                let clause = match f {
                    0 => json!([col, "==", arg.to_json()]),
                    1 => json!([col, "includes", arg.to_json()]),
                    2 => json!([col, "!=", arg.to_json()]),
                    3 => json!([col, "excludes", arg.to_json()]),
                    4 => json!(false),
                    _ => json!(["_uuid", "==", ["uuid", r.uuid.to_string()]]),
                };
                if cond(&t, json!([clause.clone()])).is_ok() {
                    clauses.push(clause);
                }
            }
            // Padding with `false` keeps the result and reaches the lookup's size.
            while clauses.len() < LOOKUP_FROM {
                clauses.push(json!(false));
            }
            let c = cond(&t, Value::Array(clauses)).expect("condition");
            prop_assert!(c.lookup.0.is_some());
            let every = (0..c.clauses.len()).any(|i| c.clause_matches(i, &r));
            prop_assert_eq!(c.matches_any(&r), every);
            let mut index = crate::db::condition_index::MonitorIndex::default();
            index.insert(7, Some(&c));
            let mut found = Vec::new();
            index.candidates(None, Some(&r), &mut found);
            if every {
                prop_assert!(found.contains(&7));
            }
            index.remove(7, Some(&c));
            prop_assert!(index.is_empty());
        }

        #[test]
        fn datum_canonical_order(atoms in prop::collection::vec(atom_strategy(AtomicType::String), 0..6), seed in any::<u64>()) {
            let mut shuffled = atoms.clone();
            // A deterministic shuffle driven by the seed.
            let n = shuffled.len();
            if n > 1 {
                let mut s = seed;
                for i in (1..n).rev() {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    shuffled.swap(i, (s >> 33) as usize % (i + 1));
                }
            }
            let a = Datum::set_from(atoms);
            let b = Datum::set_from(shuffled.clone());
            prop_assert_eq!(a.to_json(), b.to_json());
            prop_assert!(a.keys.windows(2).all(|w| w[0] < w[1]));
            // Parsing the shuffled JSON (after removing duplicates) gives the canonical datum.
            let mut unique: Vec<Atom> = Vec::new();
            for x in shuffled {
                if !unique.contains(&x) {
                    unique.push(x);
                }
            }
            let json = json!(["set", unique.iter().map(Atom::to_json).collect::<Vec<_>>()]);
            let ty = ty_of(&table(), "ss");
            prop_assert_eq!(Datum::from_json(&ty, &json, None).expect("parse"), a);
        }

        /// A condition decoded from the request's bytes is the condition
        /// the JSON path makes, and is refused wherever the JSON path gives
        /// an error (the session then takes the JSON path for its error).
        #[test]
        fn conditions_from_bytes_are_the_json_path_s(
            clauses in prop::collection::vec(
                (
                    prop::sample::select(vec!["i", "s", "u", "si", "ss", "m", "e", "nope", "_uuid"]),
                    prop::sample::select(vec!["==", "!=", "<", ">=", "includes", "excludes", "~"]),
                    column_and_datum(),
                    any::<bool>(),
                    0u8..8,
                ),
                0..12,
            )
        ) {
            let t = table();
            let clause_json: Vec<Value> = clauses
                .iter()
                .map(|(col, f, (_, d), upper, kind)| match kind {
                    0 => json!(upper),
                    1 => json!([col, f, ["uuid", if *upper { U1.to_uppercase() } else { U1.to_string() }]]),
                    _ => json!([col, f, d.to_json()]),
                })
                .collect();
            let w = Value::Array(clause_json);
            let msg = json!({"id": 1, "method": "monitor_cond_change",
                             "params": [0, 0, {"A": [{"where": w.clone()}]}]});
            let frame = crate::codec::framing::Frame {
                text: bytes::Bytes::from(serde_json::to_vec(&msg).expect("json")),
                has_real: false,
            };
            let Some(c) = crate::codec::cond_change::decode(&frame) else {
                // Left to the JSON path: nothing to compare.
                return Ok(());
            };
            let raw = c.requests.tables[0].1[0].condition.clone().expect("where");
            prop_assert_eq!(raw.to_json(), w.clone());
            match Condition::from_json(&t, &w, None) {
                Ok(j) => prop_assert_eq!(Condition::from_raw(&t, &raw, None), Some(j)),
                Err(_) => prop_assert!(Condition::from_raw(&t, &raw, None).is_none()),
            }
        }
    }
}
