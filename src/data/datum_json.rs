//! Datums written as JSON text straight into a byte buffer, with exactly
//! the bytes `serde_json` writes for [`Datum::to_json`]'s value (compact,
//! same escapes, same number formatting), without building that value.
//! Records (file store) and stored rows (etcd) are written on every
//! commit: this is the hot path.

use crate::data::{Atom, Datum};

/// `n` in decimal, at the end of `tmp`: the digits.
pub(crate) fn decimal(n: u64, tmp: &mut [u8; 20]) -> &[u8] {
    let mut n = n;
    let mut pos = tmp.len();
    loop {
        pos -= 1;
        tmp[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &tmp[pos..]
}

/// Appends `i` in decimal.
pub(crate) fn write_i64(out: &mut Vec<u8>, i: i64) {
    if i < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(decimal(i.unsigned_abs(), &mut [0u8; 20]));
}

/// Appends a JSON string (serde_json's escaping).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    // Most strings need no escape: copy them in one go.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Appends a UUID's 36 lower-case hex digits and dashes, quoted.
pub(crate) fn write_uuid_str(out: &mut Vec<u8>, u: &uuid::Uuid) {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.push(b'"');
    out.extend_from_slice(u.hyphenated().encode_lower(&mut buf).as_bytes());
    out.push(b'"');
}

/// Appends an atom as [`Atom::to_json`] gives it.
pub(crate) fn write_atom(out: &mut Vec<u8>, a: &Atom) {
    match a {
        Atom::Integer(i) => write_i64(out, *i),
        // serde_json's own float formatting (and `null` for non-finite
        // values, as `json!` makes them).
        Atom::Real(r) => {
            let _ = serde_json::to_writer(&mut *out, r);
        }
        Atom::Boolean(true) => out.extend_from_slice(b"true"),
        Atom::Boolean(false) => out.extend_from_slice(b"false"),
        Atom::String(s) => write_str(out, s),
        Atom::Uuid(u) => {
            out.extend_from_slice(b"[\"uuid\",");
            write_uuid_str(out, u);
            out.push(b']');
        }
    }
}

/// Appends a datum as [`Datum::to_json`] gives it.
pub(crate) fn write_datum(out: &mut Vec<u8>, d: &Datum) {
    match &d.values {
        Some(values) => {
            out.extend_from_slice(b"[\"map\",[");
            for (i, (k, v)) in d.keys.iter().zip(values).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_pair(out, k, v);
            }
            out.extend_from_slice(b"]]");
        }
        None if d.keys.len() == 1 => write_atom(out, &d.keys[0]),
        None => {
            out.extend_from_slice(b"[\"set\",[");
            for (i, k) in d.keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_atom(out, k);
            }
            out.extend_from_slice(b"]]");
        }
    }
}

fn write_pair(out: &mut Vec<u8>, k: &Atom, v: &Atom) {
    out.push(b'[');
    write_atom(out, k);
    out.push(b',');
    write_atom(out, v);
    out.push(b']');
}

/// Appends the diff of two sets or maps (see [`diff_pairs`]) as
/// [`Datum::to_json`] writes the diff as a datum; returns its number of
/// elements (0: the two are equal).
pub(crate) fn write_diff(out: &mut Vec<u8>, old: &Datum, new: &Datum) -> usize {
    let start = out.len();
    let is_map = new.is_map();
    out.extend_from_slice(if is_map { b"[\"map\",[" } else { b"[\"set\",[" });
    let elements = out.len();
    let mut n = 0;
    for (k, v) in diff_pairs(old, new) {
        if n > 0 {
            out.push(b',');
        }
        match v {
            Some(v) if is_map => write_pair(out, k, v),
            _ => write_atom(out, k),
        }
        n += 1;
    }
    if !is_map && n == 1 {
        // A one-element set is its bare atom.
        out.copy_within(elements.., start);
        out.truncate(out.len() - (elements - start));
    } else {
        out.extend_from_slice(b"]]");
    }
    n
}

/// The elements of the diff of two sets or maps, in order, as
/// `crate::db::monitor::datum_diff` computes it: a set's symmetric
/// difference; a map's removed pairs, added pairs and the new pairs of
/// changed keys.
pub(crate) fn diff_pairs<'a>(
    old: &'a Datum,
    new: &'a Datum,
) -> impl Iterator<Item = (&'a Atom, Option<&'a Atom>)> + 'a {
    let (ov, nv) = (old.values.as_deref(), new.values.as_deref());
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || loop {
        let ord = match (old.keys.get(i), new.keys.get(j)) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => return None,
        };
        match ord {
            std::cmp::Ordering::Less => {
                i += 1;
                return Some((&old.keys[i - 1], ov.map(|v| &v[i - 1])));
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                return Some((&new.keys[j - 1], nv.map(|v| &v[j - 1])));
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
                if let (Some(ov), Some(nv)) = (ov, nv) {
                    if ov[i - 1] != nv[j - 1] {
                        return Some((&new.keys[j - 1], Some(&nv[j - 1])));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Type;
    use serde_json::{json, Value};

    fn ty(j: Value) -> Type {
        Type::from_json(&j).unwrap()
    }

    fn same_as_serde(d: &Datum) {
        let mut out = Vec::new();
        write_datum(&mut out, d);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&d.to_json()).unwrap()
        );
    }

    #[test]
    fn datums_are_written_as_serde_json_writes_their_value() {
        let cases = [
            (json!("integer"), json!(0)),
            (json!("integer"), json!(-9223372036854775807i64 - 1)),
            (json!("integer"), json!(i64::MAX)),
            (json!("real"), json!(1.5)),
            (json!("real"), json!(3.0)),
            (json!("real"), json!(-0.125)),
            (json!("real"), json!(1e300)),
            (json!("real"), json!(1.25e-7)),
            (json!("boolean"), json!(true)),
            (
                json!("string"),
                json!("h\u{e9}llo \"q\" \\ \n\ttab \u{1}\u{7f}\u{2028}"),
            ),
            (
                json!("uuid"),
                json!(["uuid", "0a7a1b7e-0000-4000-8000-00000000000f"]),
            ),
            (
                json!({"key": "integer", "min": 0, "max": "unlimited"}),
                json!(["set", []]),
            ),
            (
                json!({"key": "integer", "min": 0, "max": "unlimited"}),
                json!(["set", [3, 1, 2]]),
            ),
            (
                json!({"key": "string", "value": "real", "min": 0, "max": "unlimited"}),
                json!(["map", [["a", 1.0], ["b", 2.5]]]),
            ),
            (
                json!({"key": "string", "value": "integer", "min": 0, "max": "unlimited"}),
                json!(["map", []]),
            ),
        ];
        for (t, v) in cases {
            let d = Datum::from_json(&ty(t), &v, None).unwrap();
            same_as_serde(&d);
        }
    }

    #[test]
    fn diff_pairs_are_datum_diff() {
        let t = ty(json!({"key": "string", "value": "string", "min": 0, "max": "unlimited"}));
        let a = Datum::from_json(
            &t,
            &json!(["map", [["a", "1"], ["b", "2"], ["d", "4"]]]),
            None,
        )
        .unwrap();
        let b = Datum::from_json(
            &t,
            &json!(["map", [["b", "20"], ["c", "3"], ["d", "4"]]]),
            None,
        )
        .unwrap();
        let d = crate::db::monitor::datum_diff(&a, &b, &t);
        let mine: Vec<_> = diff_pairs(&a, &b).collect();
        assert_eq!(mine, d.pairs().collect::<Vec<_>>());
        let s = ty(json!({"key": "integer", "min": 0, "max": "unlimited"}));
        let a = Datum::from_json(&s, &json!(["set", [1, 2, 3]]), None).unwrap();
        let b = Datum::from_json(&s, &json!(["set", [2, 3, 7]]), None).unwrap();
        let d = crate::db::monitor::datum_diff(&a, &b, &s);
        assert_eq!(
            diff_pairs(&a, &b).collect::<Vec<_>>(),
            d.pairs().collect::<Vec<_>>()
        );
    }
}
