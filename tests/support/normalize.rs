//! Normalisation of replies for comparing oxsdb with the reference
//! `ovsdb-server`.
//!
//! * Every UUID (in `["uuid", "..."]`, as an object key, or as a substring of
//!   any string such as an error's "details") is replaced by `<N>`, numbered by
//!   first appearance across a whole test case ([`Normalizer`] holds the map
//!   for one case; feed it the steps in order).
//! * `_version` values are UUIDs like any other: numbered, not masked, so a
//!   reused or a missing version is a difference. The all-zero UUID is kept
//!   as it is (never numbered), so a zero where the other side has a real
//!   UUID is a difference too.
//! * Numbers compare numerically: reals are rounded to 15 significant digits
//!   (ovsdb-server prints them with `%.15g`) and integral reals become
//!   integers, so `1.0 == 1`.
//! * Things that come in hash order on the reference are put in a canonical
//!   order that does not depend on UUID values: the elements of sets of UUIDs
//!   and maps with UUID keys, the `"rows"` of select results, and the entries of
//!   objects (e.g. notification bodies keyed by row UUID). The order key is
//!   the value with already-numbered UUIDs replaced by their number and new
//!   UUIDs masked, so both sides number new UUIDs identically. Likewise the
//!   two rows named in a unique index violation message.
//! * The elapsed time in `"wait" timed out after N ms` becomes `<ms>`.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

pub const TXN_PLACEHOLDER: &str = "<txn>";

/// Numbers UUIDs by first appearance; one per test case and side.
#[derive(Default, Debug)]
pub struct Normalizer {
    uuids: HashMap<String, usize>,
    /// Keep numbers exactly as written (see [`Normalizer::exact_numbers`]).
    exact_numbers: bool,
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// Is `s[i..i+36]` a UUID (8-4-4-4-12 hex digits)?
pub fn uuid_at(s: &[u8], i: usize) -> bool {
    if i + 36 > s.len() {
        return false;
    }
    for (k, &b) in s[i..i + 36].iter().enumerate() {
        let ok = match k {
            8 | 13 | 18 | 23 => b == b'-',
            _ => is_hex(b),
        };
        if !ok {
            return false;
        }
    }
    // Not part of a longer hex run.
    let before_ok = i == 0 || !(is_hex(s[i - 1]) || s[i - 1] == b'-');
    let after_ok = i + 36 == s.len() || !(is_hex(s[i + 36]) || s[i + 36] == b'-');
    before_ok && after_ok
}

pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid_at(s.as_bytes(), 0)
}

/// The all-zero UUID.
pub const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// Every UUID in `s`, lowercase, in order of appearance.
pub fn find_uuids(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    replace_uuids(s, |u| {
        out.push(u.to_string());
        String::new()
    });
    out
}

/// Replaces the UUID substrings of `s` by `f(uuid)` (given in lowercase).
pub fn replace_uuids(s: &str, mut f: impl FnMut(&str) -> String) -> String {
    let bytes = s.as_bytes();
    if bytes.len() < 36 {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut last = 0;
    while i + 36 <= bytes.len() {
        if uuid_at(bytes, i) {
            out.push_str(&s[last..i]);
            out.push_str(&f(&s[i..i + 36].to_ascii_lowercase()));
            i += 36;
            last = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[last..]);
    out
}

/// Numbers compare numerically, reals at `%.15g` precision.
pub fn normalize_number(n: &Number) -> Value {
    // serde_json keeps a number's text (arbitrary_precision): compare values.
    if let Some(i) = n.as_i64() {
        return Value::from(i);
    }
    if let Some(u) = n.as_u64() {
        return Value::from(u);
    }
    // Beyond f64 (`%.15g` of DBL_MAX reads back as infinity) parses to inf.
    let x: f64 = n
        .as_f64()
        .or_else(|| n.to_string().parse().ok())
        .unwrap_or(f64::NAN);
    let rounded: f64 = if x.is_finite() {
        format!("{x:.14e}").parse().unwrap_or(x)
    } else {
        x
    };
    if !rounded.is_finite() {
        return Value::String(format!("{rounded}"));
    }
    if rounded.fract() == 0.0 && rounded.abs() < 9.2e18 {
        return Value::from(rounded as i64);
    }
    Number::from_f64(rounded)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn is_uuid_atom(v: &Value) -> bool {
    matches!(v.as_array().map(Vec::as_slice), Some([tag, s]) if tag == "uuid" && s.is_string())
}

/// A `["set", ...]` of UUIDs or a `["map", ...]` with UUID keys: the
/// reference orders those by UUID value, which differs between the sides, so
/// they are put in a canonical order. Other sets and maps keep their order
/// (it is part of what is compared).
pub fn is_uuid_set_or_map(a: &[Value]) -> bool {
    if a.len() != 2 {
        return false;
    }
    let Some(elems) = a[1].as_array() else {
        return false;
    };
    match (a[0].as_str(), elems.first()) {
        (Some("set"), Some(e)) => is_uuid_atom(e),
        (Some("map"), Some(Value::Array(pair))) => pair.first().is_some_and(is_uuid_atom),
        _ => false,
    }
}

impl Normalizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A normaliser that compares numbers by their text, not their value:
    /// for transcripts of bytes both sides printed (serde_json keeps a
    /// number's text), so `1e+300` vs `1e300` or `-0` vs `0` is a difference.
    pub fn exact_numbers() -> Self {
        Self {
            exact_numbers: true,
            ..Self::default()
        }
    }

    fn number_of(&mut self, uuid: &str) -> String {
        let next = self.uuids.len();
        let n = *self.uuids.entry(uuid.to_string()).or_insert(next);
        format!("<{n}>")
    }

    /// A canonical form used only as a sort key: known UUIDs by number, new
    /// ones masked, unordered collections sorted.
    fn canon(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(replace_uuids(s, |u| {
                if u == NIL_UUID {
                    // Kept literally: a zero UUID never equals a numbered one.
                    return u.to_string();
                }
                match self.uuids.get(u) {
                    Some(n) => format!("<{n}>"),
                    None => "<?>".to_string(),
                }
            })),
            Value::Number(n) => normalize_number(n),
            Value::Array(a) if is_uuid_set_or_map(a) => {
                let mut elems: Vec<String> = a[1]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| self.canon(e).to_string())
                    .collect();
                elems.sort();
                Value::Array(vec![a[0].clone(), Value::from(elems)])
            }
            Value::Array(a) => Value::Array(a.iter().map(|e| self.canon(e)).collect()),
            Value::Object(m) => {
                let mut entries: Vec<String> = m
                    .iter()
                    .map(|(k, val)| {
                        Value::Array(vec![self.canon(&Value::String(k.clone())), self.canon(val)])
                            .to_string()
                    })
                    .collect();
                entries.sort();
                Value::Array(vec![Value::from("{}"), Value::from(entries)])
            }
            other => other.clone(),
        }
    }

    fn sort_key(&self, v: &Value) -> String {
        self.canon(v).to_string()
    }

    fn sorted<'a>(&self, items: &'a [Value]) -> Vec<&'a Value> {
        let mut keyed: Vec<(String, &Value)> =
            items.iter().map(|e| (self.sort_key(e), e)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.into_iter().map(|(_, e)| e).collect()
    }

    /// ovsdb-server reports a unique index violation between two rows in
    /// hash order ("First row, with UUID A, ...  Second row, with UUID B,
    /// ..."). Puts the two rows in a canonical order (by their description,
    /// with known UUIDs by number), so either order of the engine compares
    /// equal.
    fn canonical_message(&self, s: &str) -> String {
        // The elapsed time of a timed out wait varies ("after 101 ms").
        const WAIT: &str = "\"wait\" timed out after ";
        if let Some(rest) = s.strip_prefix(WAIT) {
            if let Some(ms) = rest.strip_suffix(" ms") {
                if ms.chars().all(|c| c.is_ascii_digit()) {
                    return format!("{WAIT}<ms> ms");
                }
            }
        }
        self.canonical_index_message(s)
    }

    fn canonical_index_message(&self, s: &str) -> String {
        const FIRST: &str = "  First row, with UUID ";
        const SECOND: &str = "  Second row, with UUID ";
        let (Some(i), Some(j)) = (s.find(FIRST), s.find(SECOND)) else {
            return s.to_string();
        };
        if !s.starts_with("Transaction causes multiple rows in ") || j < i {
            return s.to_string();
        }
        let first = &s[i + FIRST.len()..j];
        let second = &s[j + SECOND.len()..];
        let key = |x: &str| self.sort_key(&Value::String(x.to_string()));
        let (a, b) = if key(second) < key(first) {
            (second, first)
        } else {
            (first, second)
        };
        format!("{}{FIRST}{a}{SECOND}{b}", &s[..i])
    }

    /// Normalises one value, numbering the UUIDs it holds that were not seen
    /// before in this case.
    fn norm(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(replace_uuids(&self.canonical_message(s), |u| {
                if u == NIL_UUID {
                    return u.to_string();
                }
                let next = self.uuids.len();
                let n = *self.uuids.entry(u.to_string()).or_insert(next);
                format!("<{n}>")
            })),
            Value::Number(n) if self.exact_numbers => Value::Number(n.clone()),
            Value::Number(n) => normalize_number(n),
            Value::Array(a) if is_uuid_set_or_map(a) => {
                let elems = a[1].as_array().unwrap();
                let order = self.sorted(elems);
                let elems: Vec<Value> = order.into_iter().map(|e| self.norm(e)).collect();
                Value::Array(vec![a[0].clone(), Value::Array(elems)])
            }
            Value::Array(a) => Value::Array(a.iter().map(|e| self.norm(e)).collect()),
            Value::Object(m) => {
                let mut entries: Vec<(String, &String, &Value)> = m
                    .iter()
                    .map(|(k, val)| {
                        let key = Value::Array(vec![
                            self.canon(&Value::String(k.clone())),
                            self.canon(val),
                        ])
                        .to_string();
                        (key, k, val)
                    })
                    .collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let mut out = Map::new();
                for (_, k, val) in entries {
                    let key = match self.norm(&Value::String(k.clone())) {
                        Value::String(s) => s,
                        _ => unreachable!(),
                    };
                    let val = if k == "rows" && val.is_array() {
                        let rows = val.as_array().unwrap();
                        let order = self.sorted(rows);
                        Value::Array(order.into_iter().map(|r| self.norm(r)).collect())
                    } else {
                        self.norm(val)
                    };
                    out.insert(key, val);
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }

    /// Normalises the record of one step; call in step order for a case.
    pub fn normalize(&mut self, v: &Value) -> Value {
        self.norm(v)
    }

    /// Marks `uuid` as seen (gives it the next number) without normalising anything.
    pub fn see(&mut self, uuid: &str) -> String {
        self.number_of(&uuid.to_ascii_lowercase())
    }
}
