//! Atoms: the scalar values of OVSDB (integer, real, boolean, string, uuid).

use crate::data::symbol::SymbolTable;
use crate::error::{OvsdbError, Result};
use crate::schema::{AtomicType, BaseType};
use serde_json::{json, Value};
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use uuid::Uuid;

/// The empty string, shared: every default string column of every new row
/// would otherwise allocate its own.
fn empty_string() -> Arc<str> {
    static EMPTY: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::from("")).clone()
}

/// `"<uuid>"` written into `out`: a UUID as a JSON string (a row's key in
/// table updates, a transaction id), lower-case and hyphenated, with
/// nothing to escape.
pub fn write_uuid_str(u: &Uuid, out: &mut bytes::BytesMut) {
    let mut text = Uuid::encode_buffer();
    out.extend_from_slice(b"\"");
    out.extend_from_slice(u.hyphenated().encode_lower(&mut text).as_bytes());
    out.extend_from_slice(b"\"");
}

/// `["uuid","<uuid>"]` written into `out`: a UUID atom's JSON.
pub fn write_uuid_json(u: &Uuid, out: &mut bytes::BytesMut) {
    out.extend_from_slice(b"[\"uuid\",");
    write_uuid_str(u, out);
    out.extend_from_slice(b"]");
}

/// One OVSDB scalar value.
#[derive(Debug, Clone)]
pub enum Atom {
    /// A 64-bit signed integer.
    Integer(i64),
    /// A finite double.
    Real(f64),
    /// A boolean.
    Boolean(bool),
    /// A UTF-8 string (shared, so copying rows is cheap).
    String(Arc<str>),
    /// A UUID.
    Uuid(Uuid),
}

impl Atom {
    /// A string atom.
    pub fn string(s: &str) -> Atom {
        Atom::String(Arc::from(s))
    }

    /// The atom's type.
    pub fn atomic_type(&self) -> AtomicType {
        match self {
            Atom::Integer(_) => AtomicType::Integer,
            Atom::Real(_) => AtomicType::Real,
            Atom::Boolean(_) => AtomicType::Boolean,
            Atom::String(_) => AtomicType::String,
            Atom::Uuid(_) => AtomicType::Uuid,
        }
    }

    /// The default value of a type, as ovsdb-server chooses it (0, 0.0, false, "", all-zero UUID).
    pub fn default_of(t: AtomicType) -> Atom {
        match t {
            AtomicType::Integer => Atom::Integer(0),
            AtomicType::Real => Atom::Real(0.0),
            AtomicType::Boolean => Atom::Boolean(false),
            AtomicType::String => Atom::String(empty_string()),
            AtomicType::Uuid => Atom::Uuid(Uuid::nil()),
        }
    }

    /// Parses an atom of type `t` from JSON without checking constraints;
    /// `symtab` resolves `["named-uuid", name]` where named UUIDs are allowed.
    pub fn from_json_untyped(
        t: AtomicType,
        json: &Value,
        symtab: Option<&mut SymbolTable>,
    ) -> Result<Atom> {
        match t {
            AtomicType::Integer => {
                if let Some(i) = json_integer(json) {
                    return Ok(Atom::Integer(i));
                }
            }
            AtomicType::Real => {
                if let Some(f) = json_real(json) {
                    return Ok(Atom::Real(f));
                }
            }
            AtomicType::Boolean => {
                if let Value::Bool(b) = json {
                    return Ok(Atom::Boolean(*b));
                }
            }
            AtomicType::String => {
                if let Value::String(s) = json {
                    return Ok(Atom::String(Arc::from(s.as_str())));
                }
            }
            AtomicType::Uuid => return parse_uuid_json(json, symtab).map(Atom::Uuid),
        }
        Err(OvsdbError::syntax(
            Some(json),
            None,
            format!("expected {}", t.name()),
        ))
    }

    /// Parses an atom of `base`'s type and checks `base`'s constraints.
    pub fn from_json(
        base: &BaseType,
        json: &Value,
        symtab: Option<&mut SymbolTable>,
    ) -> Result<Atom> {
        let atom = Atom::from_json_untyped(base.atomic, json, symtab)?;
        atom.check_constraints(base)?;
        Ok(atom)
    }

    /// The atom in RFC 7047 notation.
    pub fn to_json(&self) -> Value {
        match self {
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::String(s) => json!(&**s),
            Atom::Uuid(u) => json!(["uuid", u.hyphenated().to_string()]),
        }
    }

    /// [`Atom::to_json`] written straight into `out`, the same bytes as
    /// [`write_json`](crate::codec::framing::write_json) of it, without
    /// building the value (initial replies and notifications write every
    /// atom of every row they carry).
    pub fn write_json(&self, out: &mut bytes::BytesMut) {
        use crate::codec::framing::{write_i64, write_json, write_str};
        match self {
            Atom::Integer(i) => write_i64(*i, out),
            // As `json!` builds it: a real is a float number, or null if it
            // is not finite (which a stored real never is).
            Atom::Real(r) => match serde_json::Number::from_f64(*r) {
                Some(n) => write_json(&Value::Number(n), out),
                None => out.extend_from_slice(b"null"),
            },
            Atom::Boolean(true) => out.extend_from_slice(b"true"),
            Atom::Boolean(false) => out.extend_from_slice(b"false"),
            Atom::String(s) => write_str(s, out),
            Atom::Uuid(u) => write_uuid_json(u, out),
        }
    }

    /// Whether this is the default atom of type `t` (what
    /// `*self == Atom::default_of(t)` says, without building that atom).
    pub fn is_default_of(&self, t: AtomicType) -> bool {
        match (self, t) {
            (Atom::Integer(i), AtomicType::Integer) => *i == 0,
            // 0.0 and -0.0 compare equal, as in `Ord for Atom`.
            (Atom::Real(r), AtomicType::Real) => *r == 0.0,
            (Atom::Boolean(b), AtomicType::Boolean) => !*b,
            (Atom::String(s), AtomicType::String) => s.is_empty(),
            (Atom::Uuid(u), AtomicType::Uuid) => u.is_nil(),
            _ => false,
        }
    }

    /// Checks `base`'s enum, range and length constraints, with ovsdb-server's messages.
    pub fn check_constraints(&self, base: &BaseType) -> Result<()> {
        if let Some(allowed) = &base.enum_values {
            if allowed.binary_search(self).is_err() {
                // ovsdb-server prints the enum as a set of unlimited size: always bracketed.
                let mut valid = String::from("[");
                for (i, a) in allowed.iter().enumerate() {
                    if i > 0 {
                        valid.push_str(", ");
                    }
                    a.write_string(&mut valid);
                }
                valid.push(']');
                return Err(OvsdbError::constraint(format!(
                    "{} is not one of the allowed values ({})",
                    self.to_display_string(),
                    valid
                )));
            }
        }
        match self {
            Atom::Integer(i) => {
                let (min, max) = (base.min_integer, base.max_integer);
                if *i >= min && *i <= max {
                    Ok(())
                } else if min != i64::MIN {
                    if max != i64::MAX {
                        Err(OvsdbError::constraint(format!(
                            "{i} is not in the valid range {min} to {max} (inclusive)"
                        )))
                    } else {
                        Err(OvsdbError::constraint(format!(
                            "{i} is less than minimum allowed value {min}"
                        )))
                    }
                } else {
                    Err(OvsdbError::constraint(format!(
                        "{i} is greater than maximum allowed value {max}"
                    )))
                }
            }
            Atom::Real(r) => {
                let (min, max) = (base.min_real, base.max_real);
                if *r >= min && *r <= max {
                    Ok(())
                } else if min != -f64::MAX {
                    if max != f64::MAX {
                        Err(OvsdbError::constraint(format!(
                            "{} is not in the valid range {} to {} (inclusive)",
                            fmt_real(*r),
                            fmt_real(min),
                            fmt_real(max)
                        )))
                    } else {
                        Err(OvsdbError::constraint(format!(
                            "{} is less than minimum allowed value {}",
                            fmt_real(*r),
                            fmt_real(min)
                        )))
                    }
                } else {
                    Err(OvsdbError::constraint(format!(
                        "{} is greater than maximum allowed value {}",
                        fmt_real(*r),
                        fmt_real(max)
                    )))
                }
            }
            Atom::String(s) => {
                let n = s.chars().count() as u64;
                if n < base.min_length {
                    Err(OvsdbError::constraint(format!(
                        "\"{s}\" length {n} is less than minimum allowed length {}",
                        base.min_length
                    )))
                } else if n > base.max_length {
                    Err(OvsdbError::constraint(format!(
                        "\"{s}\" length {n} is greater than maximum allowed length {}",
                        base.max_length
                    )))
                } else {
                    Ok(())
                }
            }
            Atom::Boolean(_) | Atom::Uuid(_) => Ok(()),
        }
    }

    /// The atom as ovs-vsctl and ovsdb-server's messages print it.
    pub fn to_display_string(&self) -> String {
        let mut s = String::new();
        self.write_string(&mut s);
        s
    }

    fn write_string(&self, out: &mut String) {
        match self {
            Atom::Integer(i) => {
                let _ = write!(out, "{i}");
            }
            Atom::Real(r) => out.push_str(&fmt_real(*r)),
            Atom::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            Atom::String(s) => {
                if string_needs_quotes(s) {
                    out.push_str(&json_text(&json!(&**s)));
                } else {
                    out.push_str(s);
                }
            }
            Atom::Uuid(u) => {
                let _ = write!(out, "{}", u.hyphenated());
            }
        }
    }

    /// The integer, if this is one.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The UUID, if this is one.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
        }
    }
}

/// A JSON value as an OVSDB integer: a number that ovsdb-server's JSON
/// reader reads as an integer (a whole number in the `i64` range, however
/// written: `3`, `3.0`, `1e3`), see [`crate::data::number`].
pub fn json_integer(json: &Value) -> Option<i64> {
    match crate::data::number::classify_value(json)? {
        crate::data::number::JsonNumber::Integer(i) => Some(i),
        crate::data::number::JsonNumber::Real(_) => None,
    }
}

/// A JSON value as an OVSDB real: any number in the valid range.
pub fn json_real(json: &Value) -> Option<f64> {
    crate::data::number::classify_value(json).map(|n| n.as_f64())
}

/// Formats a real as ovsdb-server does (`%.15g`).
pub fn fmt_real(r: f64) -> String {
    crate::data::format_g15(r)
}

fn string_needs_quotes(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
        _ => return true,
    }
    for c in bytes {
        if !c.is_ascii_alphanumeric() && c != b'_' && c != b'-' && c != b'.' {
            return true;
        }
    }
    if s == "true" || s == "false" {
        return true;
    }
    Uuid::try_parse(s).is_ok() && s.len() == 36
}

/// Parses `["uuid", "..."]`, or `["named-uuid", name]` when a symbol table is given.
fn parse_uuid_json(json: &Value, symtab: Option<&mut SymbolTable>) -> Result<Uuid> {
    match unwrap_json(json, "uuid") {
        Ok(Value::String(s)) => match parse_uuid_str(s) {
            Some(u) => Ok(u),
            None => Err(OvsdbError::syntax(
                Some(json),
                None,
                format!("\"{s}\" is not a valid UUID"),
            )),
        },
        Ok(_) | Err(_) => {
            if let Some(symtab) = symtab {
                if let Ok(Value::String(name)) = unwrap_json(json, "named-uuid") {
                    // A name that is not an <id> could never be a uuid-name.
                    if !crate::parser::is_id(name) {
                        return Err(OvsdbError::syntax(
                            Some(json),
                            None,
                            "named-uuid string is not a valid <id>",
                        ));
                    }
                    return Ok(symtab.reference(name));
                }
            }
            Err(OvsdbError::syntax(
                Some(json),
                None,
                "expected [\"uuid\", <string>]",
            ))
        }
    }
}

/// Parses a UUID in the only form ovsdb-server accepts: 8-4-4-4-12 hex digits.
pub fn parse_uuid_str(s: &str) -> Option<Uuid> {
    let b: &[u8; 36] = s.as_bytes().try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    // One pass through a table, without a branch per digit: an OVN
    // chassis's condition carries thousands of UUIDs, and their parsing was
    // 8% of a `monitor_cond_change`.
    let mut bytes = [0u8; 16];
    let mut bad = 0u8;
    for (i, out) in bytes.iter_mut().enumerate() {
        let hi = HEX_VALUE[usize::from(b[UUID_DIGITS[2 * i]])];
        let lo = HEX_VALUE[usize::from(b[UUID_DIGITS[2 * i + 1]])];
        bad |= hi | lo;
        *out = (hi << 4) | lo;
    }
    (bad & 0xf0 == 0).then(|| Uuid::from_bytes(bytes))
}

/// Where the 32 hex digits of an 8-4-4-4-12 UUID are.
const UUID_DIGITS: [usize; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 19, 20, 21, 22, 24, 25, 26, 27, 28, 29,
    30, 31, 32, 33, 34, 35,
];

/// Each byte's value as a hex digit; 0xff for bytes that are not one.
static HEX_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// `[name, value]` with a string value: the value, or an error.
fn unwrap_json<'a>(json: &'a Value, name: &str) -> std::result::Result<&'a Value, ()> {
    match json {
        Value::Array(a) if a.len() == 2 && a[0].as_str() == Some(name) && a[1].is_string() => {
            Ok(&a[1])
        }
        _ => Err(()),
    }
}

/// Serializes JSON compactly with sorted object keys, as ovsdb-server's error "syntax" member.
pub fn json_text(json: &Value) -> String {
    crate::data::json_text(json)
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            // A row copied for writing shares its strings with the committed
            // row: comparing the two (every column of every modified row, at
            // commit) mostly finds the same string, without reading it.
            (Atom::String(a), Atom::String(b)) => Arc::ptr_eq(a, b) || a.as_bytes() == b.as_bytes(),
            (Atom::Integer(a), Atom::Integer(b)) => a == b,
            (Atom::Uuid(a), Atom::Uuid(b)) => a == b,
            _ => self.cmp(other) == Ordering::Equal,
        }
    }
}

impl Eq for Atom {}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            // ovsdb-server compares reals with < and >, so 0.0 and -0.0 are equal.
            (Atom::Real(a), Atom::Real(b)) => a.partial_cmp(b).unwrap_or_else(|| a.total_cmp(b)),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(a), Atom::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl Hash for Atom {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Atom::Integer(i) => i.hash(state),
            Atom::Real(r) => {
                let r = if *r == 0.0 { 0.0 } else { *r };
                r.to_bits().hash(state)
            }
            Atom::Boolean(b) => b.hash(state),
            Atom::String(s) => s.hash(state),
            Atom::Uuid(u) => u.hash(state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The one-pass parser takes exactly the hyphenated form, in either
        /// case, as the uuid crate reads it, and nothing else.
        #[test]
        fn uuid_strings_parse_as_the_uuid_crate_reads_them(
            v in proptest::num::u128::ANY,
            upper in proptest::bool::ANY,
            at in 0usize..36,
            with in proptest::char::range(' ', '~'),
        ) {
            let text = Uuid::from_u128(v).hyphenated().to_string();
            let text = if upper { text.to_uppercase() } else { text };
            proptest::prop_assert_eq!(parse_uuid_str(&text), Some(Uuid::from_u128(v)));
            let mut bent: Vec<char> = text.chars().collect();
            bent[at] = with;
            let bent: String = bent.into_iter().collect();
            let hyphenated = bent.len() == 36
                && bent.char_indices().all(|(i, c)| {
                    if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() }
                });
            let expected = if hyphenated { Uuid::try_parse(&bent).ok() } else { None };
            proptest::prop_assert_eq!(parse_uuid_str(&bent), expected);
            proptest::prop_assert_eq!(parse_uuid_str(&Uuid::from_u128(v).simple().to_string()), None);
        }
    }
    use serde_json::json;

    #[test]
    fn integers_accept_exact_reals_like_ovsdb_json() {
        assert_eq!(json_integer(&json!(3)), Some(3));
        assert_eq!(json_integer(&json!(3.0)), Some(3));
        assert_eq!(json_integer(&json!(3.5)), None);
        assert_eq!(json_integer(&json!(u64::MAX)), None);
    }

    #[test]
    fn constraint_messages() {
        let mut b = BaseType::new(AtomicType::Integer);
        b.min_integer = 1;
        b.max_integer = 10;
        let e = Atom::Integer(11).check_constraints(&b).expect_err("range");
        assert_eq!(
            e.details.as_deref(),
            Some("11 is not in the valid range 1 to 10 (inclusive)")
        );
        b.max_integer = i64::MAX;
        let e = Atom::Integer(0).check_constraints(&b).expect_err("min");
        assert_eq!(
            e.details.as_deref(),
            Some("0 is less than minimum allowed value 1")
        );
        let mut s = BaseType::new(AtomicType::String);
        s.max_length = 2;
        let e = Atom::string("abc").check_constraints(&s).expect_err("len");
        assert_eq!(
            e.details.as_deref(),
            Some("\"abc\" length 3 is greater than maximum allowed length 2")
        );
        let mut en = BaseType::new(AtomicType::String);
        en.enum_values = Some(vec![Atom::string("a b"), Atom::string("c")]);
        let e = Atom::string("x").check_constraints(&en).expect_err("enum");
        assert_eq!(
            e.details.as_deref(),
            Some("x is not one of the allowed values ([\"a b\", c])")
        );
    }

    #[test]
    fn uuid_forms() {
        let mut st = SymbolTable::new();
        let u =
            Atom::from_json_untyped(AtomicType::Uuid, &json!(["named-uuid", "x"]), Some(&mut st))
                .expect("named");
        assert_eq!(u.as_uuid(), st.get("x").map(|s| s.uuid));
        let e = Atom::from_json_untyped(AtomicType::Uuid, &json!(["named-uuid", "x"]), None)
            .expect_err("no symtab");
        assert_eq!(e.details.as_deref(), Some("expected [\"uuid\", <string>]"));
        let e = Atom::from_json_untyped(AtomicType::Uuid, &json!(["uuid", "nope"]), None)
            .expect_err("bad");
        assert_eq!(e.details.as_deref(), Some("\"nope\" is not a valid UUID"));
    }
}
