//! The hash ovsdb-server gives a JSON value (`json_hash()` of lib/json.c,
//! over the portable murmur-style `hash_bytes()`/`hash_int()` of lib/hash.c
//! that x86-64 builds without SSE 4.2 use, the distribution packages among
//! them). ovsdb-server keys some per-session hash tables by JSON values (a
//! session's monitors by monitor id), and what it sends in the order of such
//! a table follows these hashes; see [`crate::db::monitor_order`].
//!
//! Numbers are typed as ovsdb-server's parser types them: a value that is a
//! whole number within `i64` is an integer (also when written `1.0` or
//! `1e3`), anything else a real.

use serde_json::Value;

/// Rotates `x` left by `k` bits.
fn rot(x: u32, k: u32) -> u32 {
    x.rotate_left(k)
}

/// Mixes one 32-bit word into `hash` (murmur3's round; a zero word is skipped).
fn add(hash: u32, data: u32) -> u32 {
    let mut hash = hash;
    if data != 0 {
        let d = rot(data.wrapping_mul(0xcc9e_2d51), 15).wrapping_mul(0x1b87_3593);
        hash ^= d;
    }
    rot(hash, 13).wrapping_mul(5).wrapping_add(0xe654_6b64)
}

/// Finishes a hash with the count of bytes (or other final word) it covered.
fn finish(hash: u32, last: u32) -> u32 {
    let mut h = hash ^ last;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// `hash_bytes()`: little-endian words, the tail zero-padded.
pub fn hash_bytes(bytes: &[u8], basis: u32) -> u32 {
    let mut hash = basis;
    let mut words = bytes.chunks_exact(4);
    for w in &mut words {
        hash = add(hash, u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut t = [0u8; 4];
        t[..tail.len()].copy_from_slice(tail);
        hash = add(hash, u32::from_le_bytes(t));
    }
    // The length is a size_t truncated to the 32-bit final word.
    finish(hash, bytes.len() as u32)
}

/// `hash_string()`: the bytes up to the first NUL (a C string).
pub fn hash_string(s: &str, basis: u32) -> u32 {
    let b = s.as_bytes();
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    hash_bytes(&b[..end], basis)
}

/// `hash_int()`: `hash_2words(x, basis)`.
pub fn hash_int(x: u32, basis: u32) -> u32 {
    finish(add(add(x, 0), basis), 8)
}

/// `hash_double()`: the two words of the IEEE representation and the basis.
fn hash_double(x: f64, basis: u32) -> u32 {
    let bits = x.to_bits();
    let (lo, hi) = (bits as u32, (bits >> 32) as u32);
    finish(add(add(add(lo, 0), hi), basis), 12)
}

/// ovsdb-server's JSON type numbers (`enum json_type`), hashed for literals.
const JSON_NULL: u32 = 0;
const JSON_FALSE: u32 = 1;
const JSON_TRUE: u32 = 2;

/// A number as ovsdb-server's parser would have typed it.
enum OvsNumber {
    Integer(i64),
    Real(f64),
}

fn ovs_number(n: &serde_json::Number) -> OvsNumber {
    if let Some(i) = n.as_i64() {
        return OvsNumber::Integer(i);
    }
    // Above i64::MAX ovsdb-server keeps a real; so does any fraction.
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        OvsNumber::Integer(f as i64)
    } else {
        OvsNumber::Real(f)
    }
}

/// `json_hash(json, basis)`: object members in byte order of their names,
/// arrays prefixed by their length, integers truncated to 32 bits.
pub fn json_hash(v: &Value, basis: u32) -> u32 {
    match v {
        Value::Null => hash_int(JSON_NULL << 8, basis),
        Value::Bool(false) => hash_int(JSON_FALSE << 8, basis),
        Value::Bool(true) => hash_int(JSON_TRUE << 8, basis),
        Value::String(s) => hash_string(s, basis),
        Value::Number(n) => match ovs_number(n) {
            OvsNumber::Integer(i) => hash_int(i as u32, basis),
            OvsNumber::Real(f) => hash_double(f, basis),
        },
        Value::Array(a) => {
            let mut h = hash_int(a.len() as u32, basis);
            for x in a {
                h = json_hash(x, h);
            }
            h
        }
        Value::Object(m) => {
            let mut members: Vec<(&String, &Value)> = m.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let mut h = basis;
            for (k, x) in members {
                h = hash_string(k, h);
                h = json_hash(x, h);
            }
            h
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_hash_as_integers_whatever_their_spelling() {
        let one: Value = serde_json::from_str("1.0").unwrap();
        assert_eq!(json_hash(&one, 0), json_hash(&json!(1), 0));
        let k: Value = serde_json::from_str("1e3").unwrap();
        assert_eq!(json_hash(&k, 0), json_hash(&json!(1000), 0));
        assert_ne!(json_hash(&json!(1.5), 0), json_hash(&json!(1), 0));
    }

    #[test]
    fn object_members_hash_in_name_order() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":[2]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":[2],"b":1}"#).unwrap();
        assert_eq!(json_hash(&a, 0), json_hash(&b, 0));
    }

    /// Values whose hashes, through the order of a session's monitors,
    /// were checked against ovsdb-server 3.1 (see tests/wire/monitor_order.json).
    #[test]
    fn hashes_of_ovsdb_server() {
        let cases = [
            (json!("m1"), 0xe92c_e188u32),
            (json!(""), 0),
            (json!("long-monitor-id-90"), 0xa8c0_360d),
            (json!(60236), 0x851f_c0f3),
            (json!(-7), 0x6fe4_3d82),
            (json!(null), 0x6385_2afc),
            (json!(true), 0x4d47_84e7),
            (json!(false), 0x419c_5c54),
            (json!([6, "a"]), 0x03b6_1837),
            (json!({"k": 1, "j": "x"}), 0xf8ef_85bb),
            (json!(30.5), 0xaf44_86d9),
        ];
        for (v, h) in cases {
            assert_eq!(json_hash(&v, 0), h, "{v}");
        }
    }
}
