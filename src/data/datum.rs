//! Datums: the value of a column, a sorted set of atoms or a sorted map atom -> atom.

use crate::data::atom::Atom;
use crate::data::symbol::SymbolTable;
use crate::error::{OvsdbError, Result};
use crate::schema::Type;
use serde_json::{json, Value};

/// A column value: keys sorted and unique; `values` is `Some` exactly for map types.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Datum {
    /// The set's elements or the map's keys, sorted, without duplicates.
    pub keys: Vec<Atom>,
    /// The map's values, parallel to `keys`; `None` for a set.
    pub values: Option<Vec<Atom>>,
}

impl Datum {
    /// An empty set.
    pub fn empty_set() -> Datum {
        Datum {
            keys: Vec::new(),
            values: None,
        }
    }

    /// An empty map.
    pub fn empty_map() -> Datum {
        Datum {
            keys: Vec::new(),
            values: Some(Vec::new()),
        }
    }

    /// An empty datum of `ty`'s kind (set or map).
    pub fn empty_of(ty: &Type) -> Datum {
        if ty.is_map() {
            Datum::empty_map()
        } else {
            Datum::empty_set()
        }
    }

    /// A one-element set (a scalar).
    pub fn scalar(a: Atom) -> Datum {
        Datum {
            keys: vec![a],
            values: None,
        }
    }

    /// A set from atoms in any order; duplicates are dropped.
    pub fn set_from(mut atoms: Vec<Atom>) -> Datum {
        atoms.sort();
        atoms.dedup();
        Datum {
            keys: atoms,
            values: None,
        }
    }

    /// A map from pairs in any order; for a repeated key the first pair wins.
    pub fn map_from(mut pairs: Vec<(Atom, Atom)>) -> Datum {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|b, a| a.0 == b.0);
        let (keys, values) = pairs.into_iter().unzip();
        Datum {
            keys,
            values: Some(values),
        }
    }

    /// The default value of a column of type `ty`: empty if `min` is 0, else one default atom (pair).
    pub fn default_of(ty: &Type) -> Datum {
        if ty.min == 0 {
            Datum::empty_of(ty)
        } else {
            let key = Atom::default_of(ty.key.atomic);
            match &ty.value {
                Some(v) => Datum {
                    keys: vec![key],
                    values: Some(vec![Atom::default_of(v.atomic)]),
                },
                None => Datum::scalar(key),
            }
        }
    }

    /// Whether this is [`Datum::default_of`]`(ty)`, without building it
    /// (monitors ask for every column of every row they send).
    pub fn is_default_of(&self, ty: &Type) -> bool {
        if ty.min == 0 {
            return self.keys.is_empty();
        }
        let key_ok = self.keys.len() == 1 && self.keys[0].is_default_of(ty.key.atomic);
        match (&ty.value, &self.values) {
            (Some(v), Some(vals)) => key_ok && vals.len() == 1 && vals[0].is_default_of(v.atomic),
            (None, None) => key_ok,
            _ => false,
        }
    }

    /// Number of elements (or pairs).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the datum has no elements.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether this is a map.
    pub fn is_map(&self) -> bool {
        self.values.is_some()
    }

    /// The single atom of a scalar.
    pub fn first(&self) -> Option<&Atom> {
        self.keys.first()
    }

    /// The index of `key`, if present.
    pub fn find_key(&self, key: &Atom) -> Option<usize> {
        self.keys.binary_search(key).ok()
    }

    /// Whether the datum holds `key` (with `value`, when given, for maps).
    pub fn contains(&self, key: &Atom, value: Option<&Atom>) -> bool {
        match (self.find_key(key), value, &self.values) {
            (Some(i), Some(v), Some(vals)) => &vals[i] == v,
            (Some(_), _, _) => true,
            (None, _, _) => false,
        }
    }

    /// Iterates over `(key, value)` pairs; `value` is `None` for sets.
    pub fn pairs(&self) -> impl Iterator<Item = (&Atom, Option<&Atom>)> {
        self.keys
            .iter()
            .enumerate()
            .map(move |(i, k)| (k, self.values.as_ref().map(|v| &v[i])))
    }

    /// Parses a datum of type `ty` from RFC 7047 JSON, checking atom constraints
    /// and the raw element count as ovsdb-server does.
    pub fn from_json(
        ty: &Type,
        json: &Value,
        mut symtab: Option<&mut SymbolTable>,
    ) -> Result<Datum> {
        let is_set_json =
            matches!(json, Value::Array(a) if !a.is_empty() && a[0].as_str() == Some("set"));
        if !(ty.is_map() || is_set_json) {
            let atom = Atom::from_json(&ty.key, json, symtab)?;
            return Ok(Datum::scalar(atom));
        }
        let class = if ty.is_map() { "map" } else { "set" };
        let inner = match json {
            Value::Array(a) if a.len() == 2 && a[0].as_str() == Some(class) && a[1].is_array() => {
                a[1].as_array().map(|v| v.as_slice()).unwrap_or(&[])
            }
            _ => {
                return Err(OvsdbError::syntax(
                    Some(json),
                    None,
                    format!("expected [\"{class}\", <array>]"),
                ))
            }
        };
        let n = inner.len() as u64;
        if !ty.allows_count(n) {
            return Err(if ty.min == 1 && ty.max == 1 {
                OvsdbError::syntax(
                    Some(json),
                    None,
                    format!("{class} must have exactly one member but {n} are present"),
                )
            } else {
                OvsdbError::syntax(
                    Some(json),
                    None,
                    format!(
                        "{class} must have {} to {} members but {n} are present",
                        ty.min,
                        ty.max_u64()
                    ),
                )
            });
        }
        let mut keys = Vec::with_capacity(inner.len());
        let mut values = if ty.is_map() {
            Some(Vec::with_capacity(inner.len()))
        } else {
            None
        };
        for element in inner {
            match (&ty.value, values.as_mut()) {
                (Some(vt), Some(vals)) => {
                    let (k, v) = match element {
                        Value::Array(p) if p.len() == 2 => (&p[0], &p[1]),
                        _ => {
                            return Err(OvsdbError::syntax(
                                Some(element),
                                None,
                                "expected 2-element array",
                            ))
                        }
                    };
                    keys.push(Atom::from_json(&ty.key, k, symtab.as_deref_mut())?);
                    vals.push(Atom::from_json(vt, v, symtab.as_deref_mut())?);
                }
                _ => keys.push(Atom::from_json(&ty.key, element, symtab.as_deref_mut())?),
            }
        }
        Datum::sorted_unique(keys, values)
    }

    /// Sorts keys (carrying values along) and rejects duplicates with ovsdb-server's error.
    pub fn sorted_unique(keys: Vec<Atom>, values: Option<Vec<Atom>>) -> Result<Datum> {
        let d = Datum::sort(keys, values);
        if d.keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(OvsdbError::new(
                "ovsdb error",
                if d.is_map() {
                    "map contains duplicate key"
                } else {
                    "set contains duplicate"
                },
            ));
        }
        Ok(d)
    }

    fn sort(keys: Vec<Atom>, values: Option<Vec<Atom>>) -> Datum {
        if keys.windows(2).all(|w| w[0] < w[1]) {
            return Datum { keys, values };
        }
        match values {
            None => {
                let mut keys = keys;
                keys.sort();
                Datum { keys, values: None }
            }
            Some(values) => {
                let mut pairs: Vec<(Atom, Atom)> = keys.into_iter().zip(values).collect();
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                let (keys, values) = pairs.into_iter().unzip();
                Datum {
                    keys,
                    values: Some(values),
                }
            }
        }
    }

    /// The datum in RFC 7047 notation: bare atom for a one-element set, else `["set", ..]` / `["map", ..]`.
    pub fn to_json(&self) -> Value {
        match &self.values {
            Some(values) => Value::Array(vec![
                json!("map"),
                Value::Array(
                    self.keys
                        .iter()
                        .zip(values)
                        .map(|(k, v)| Value::Array(vec![k.to_json(), v.to_json()]))
                        .collect(),
                ),
            ]),
            None if self.keys.len() == 1 => self.keys[0].to_json(),
            None => Value::Array(vec![
                json!("set"),
                Value::Array(self.keys.iter().map(Atom::to_json).collect()),
            ]),
        }
    }

    /// [`Datum::to_json`] written straight into `out`, the same bytes as
    /// [`write_json`](crate::codec::framing::write_json) of it.
    pub fn write_json(&self, out: &mut bytes::BytesMut) {
        match &self.values {
            Some(values) => {
                out.extend_from_slice(b"[\"map\",[");
                for (i, (k, v)) in self.keys.iter().zip(values).enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b",");
                    }
                    out.extend_from_slice(b"[");
                    k.write_json(out);
                    out.extend_from_slice(b",");
                    v.write_json(out);
                    out.extend_from_slice(b"]");
                }
                out.extend_from_slice(b"]]");
            }
            None if self.keys.len() == 1 => self.keys[0].write_json(out),
            None => {
                out.extend_from_slice(b"[\"set\",[");
                for (i, k) in self.keys.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b",");
                    }
                    k.write_json(out);
                }
                out.extend_from_slice(b"]]");
            }
        }
    }

    /// Checks every key and value against `ty`'s base-type constraints.
    pub fn check_constraints(&self, ty: &Type) -> Result<()> {
        for k in &self.keys {
            k.check_constraints(&ty.key)?;
        }
        if let (Some(vals), Some(vt)) = (&self.values, &ty.value) {
            for v in vals {
                v.check_constraints(vt)?;
            }
        }
        Ok(())
    }

    /// Whether every element (pair) of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Datum) -> bool {
        self.pairs().all(|(k, v)| other.contains(k, v))
    }

    /// Whether no element (pair) of `self` is in `other`.
    pub fn is_disjoint_from(&self, other: &Datum) -> bool {
        self.pairs().all(|(k, v)| !other.contains(k, v))
    }

    /// A copy with room for `extra` more elements (pairs), so that adding
    /// them does not regrow it.
    pub fn clone_with_room(&self, extra: usize) -> Datum {
        let n = self.keys.len() + extra;
        let mut keys = Vec::with_capacity(n);
        keys.extend_from_slice(&self.keys);
        let values = self.values.as_ref().map(|v| {
            let mut values = Vec::with_capacity(n);
            values.extend_from_slice(v);
            values
        });
        Datum { keys, values }
    }

    /// Adds `other`'s elements; for maps, keys already present keep their value.
    pub fn union_with(&mut self, other: &Datum) {
        // A mutation's usual few elements go straight to their places: no
        // temporary vectors and no sort.
        if other.len() <= 8 && self.is_map() == other.is_map() {
            for (k, v) in other.pairs() {
                if let Err(i) = self.keys.binary_search(k) {
                    self.keys.insert(i, k.clone());
                    if let (Some(values), Some(v)) = (self.values.as_mut(), v) {
                        values.insert(i, v.clone());
                    }
                }
            }
            return;
        }
        let mut keys = Vec::new();
        let mut vals = Vec::new();
        for (k, v) in other.pairs() {
            if self.find_key(k).is_none() {
                keys.push(k.clone());
                if let Some(v) = v {
                    vals.push(v.clone());
                }
            }
        }
        if keys.is_empty() {
            return;
        }
        let mut all_keys = std::mem::take(&mut self.keys);
        all_keys.extend(keys);
        let values = self.values.take().map(|mut v| {
            v.extend(vals);
            v
        });
        *self = Datum::sort(all_keys, values);
    }

    /// Removes `other`'s elements. For a map, `other` is either a map (pairs
    /// removed where key and value match) or a set of keys to remove.
    pub fn subtract(&mut self, other: &Datum) {
        let keep: Vec<bool> = self
            .pairs()
            .map(|(k, v)| match (&other.values, other.find_key(k)) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(ov), Some(i)) => Some(&ov[i]) != v,
            })
            .collect();
        if keep.iter().all(|k| *k) {
            return;
        }
        let mut it = keep.iter();
        self.keys.retain(|_| *it.next().unwrap_or(&true));
        if let Some(values) = &mut self.values {
            let mut it = keep.iter();
            values.retain(|_| *it.next().unwrap_or(&true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Type;
    use serde_json::json;

    fn ty(j: serde_json::Value) -> Type {
        Type::from_json(&j).expect("type")
    }

    #[test]
    fn scalar_and_set_notation() {
        let t = ty(json!({"key": "integer", "min": 0, "max": "unlimited"}));
        let d = Datum::from_json(&t, &json!(["set", [3, 1, 2]]), None).expect("set");
        assert_eq!(d.to_json(), json!(["set", [1, 2, 3]]));
        let one = Datum::from_json(&t, &json!(5), None).expect("bare atom");
        assert_eq!(one.to_json(), json!(5));
        let empty = Datum::from_json(&t, &json!(["set", []]), None).expect("empty");
        assert_eq!(empty.to_json(), json!(["set", []]));
    }

    #[test]
    fn map_notation_sorted() {
        let t = ty(json!({"key": "string", "value": "integer", "min": 0, "max": "unlimited"}));
        let d = Datum::from_json(&t, &json!(["map", [["b", 2], ["a", 1]]]), None).expect("map");
        assert_eq!(d.to_json(), json!(["map", [["a", 1], ["b", 2]]]));
        let e = Datum::from_json(&t, &json!(["map", [["a", 1], ["a", 2]]]), None).expect_err("dup");
        assert_eq!(e.details.as_deref(), Some("map contains duplicate key"));
        let e = Datum::from_json(&t, &json!({"a": 1}), None).expect_err("not a map");
        assert_eq!(e.details.as_deref(), Some("expected [\"map\", <array>]"));
    }

    #[test]
    fn size_bounds_checked_on_raw_count() {
        let t = ty(json!({"key": "integer", "min": 1, "max": 2}));
        let e = Datum::from_json(&t, &json!(["set", [1, 2, 3]]), None).expect_err("too many");
        assert_eq!(
            e.details.as_deref(),
            Some("set must have 1 to 2 members but 3 are present")
        );
        let t = Type::scalar(crate::schema::AtomicType::Integer);
        let e = Datum::from_json(&t, &json!(["set", []]), None).expect_err("scalar");
        assert_eq!(
            e.details.as_deref(),
            Some("set must have exactly one member but 0 are present")
        );
    }

    #[test]
    fn union_and_subtract() {
        let mut a = Datum::set_from(vec![Atom::Integer(1), Atom::Integer(3)]);
        a.union_with(&Datum::set_from(vec![Atom::Integer(2), Atom::Integer(3)]));
        assert_eq!(
            a.keys,
            vec![Atom::Integer(1), Atom::Integer(2), Atom::Integer(3)]
        );
        a.subtract(&Datum::set_from(vec![Atom::Integer(1), Atom::Integer(9)]));
        assert_eq!(a.keys, vec![Atom::Integer(2), Atom::Integer(3)]);
        let mut m = Datum::map_from(vec![
            (Atom::string("k"), Atom::Integer(1)),
            (Atom::string("j"), Atom::Integer(2)),
        ]);
        m.subtract(&Datum::map_from(vec![(
            Atom::string("k"),
            Atom::Integer(5),
        )]));
        assert_eq!(m.len(), 2, "pairs must match value too");
        m.subtract(&Datum::set_from(vec![Atom::string("k")]));
        assert_eq!(m.len(), 1, "a set of keys removes by key");
    }

    #[test]
    fn union_in_place_matches_the_sorted_merge() {
        let pairs = |n: i64, step: i64| -> Vec<(Atom, Atom)> {
            (0..n)
                .map(|i| (Atom::Integer(i * step), Atom::Integer(i)))
                .collect()
        };
        for (n, step) in [(3, 2), (20, 3)] {
            let mut small = Datum::map_from(pairs(5, 5));
            let arg = Datum::map_from(pairs(n, step));
            small.union_with(&arg);
            let mut expected = pairs(5, 5);
            expected.extend(pairs(n, step));
            assert_eq!(small, Datum::map_from(expected), "{n} elements added");
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(
            Datum::default_of(&Type::scalar(crate::schema::AtomicType::String)).to_json(),
            json!("")
        );
        let opt = ty(json!({"key": "uuid", "min": 0}));
        assert!(Datum::default_of(&opt).is_empty());
        let t = ty(json!({"key": "uuid"}));
        assert_eq!(
            Datum::default_of(&t).to_json(),
            json!(["uuid", "00000000-0000-0000-0000-000000000000"])
        );
    }

    #[test]
    fn is_default_of_agrees_with_default_of() {
        for j in [
            json!("string"),
            json!("integer"),
            json!("real"),
            json!("boolean"),
            json!({"key": "uuid"}),
            json!({"key": "uuid", "min": 0}),
            json!({"key": "string", "value": "integer"}),
            json!({"key": "string", "value": "integer", "min": 0, "max": "unlimited"}),
            json!({"key": "integer", "min": 1, "max": 3}),
        ] {
            let t = ty(j.clone());
            assert!(Datum::default_of(&t).is_default_of(&t), "{j}");
            let mut other = Datum::default_of(&t);
            other.keys.push(Atom::Integer(7));
            other.keys.push(Atom::Integer(9));
            assert!(!other.is_default_of(&t), "{j}");
        }
        let s = ty(json!("string"));
        assert!(!Datum::scalar(Atom::string("x")).is_default_of(&s));
    }
}
