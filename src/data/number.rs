//! JSON numbers as ovsdb-server reads them (lib/json.c's number lexer): the
//! original text of a number decides whether it is an integer or a real.
//!
//! A number is an integer when its exact decimal value is a whole number in
//! the 64-bit signed range, however it is written (`3`, `3.0`, `1e3`, `-0`,
//! `-0.0`); everything else is a real (`9223372036854775808`, `1.5`,
//! `1.0000000000000001`), converted as `strtod` converts it. A real that
//! overflows or is subnormal, and an exponent beyond `INT_MAX`, are
//! "outside valid range": ovsdb-server refuses the whole message.
//!
//! serde_json is built with `arbitrary_precision`, so a parsed
//! [`serde_json::Number`] still holds the text it was written with, and the
//! decision can be made exactly as lib/json.c makes it.

use serde_json::{Number, Value};

/// A JSON number as lib/json.c classifies it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JsonNumber {
    /// A whole number in the `i64` range.
    Integer(i64),
    /// Any other finite number (never negative zero).
    Real(f64),
}

impl JsonNumber {
    /// The number as a real (integers converted, as `json_real` does).
    pub fn as_f64(self) -> f64 {
        match self {
            JsonNumber::Integer(i) => i as f64,
            JsonNumber::Real(r) => r,
        }
    }
}

/// Numbers outside the valid range (see [`classify_text`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("number outside valid range: {0}")]
pub struct OutOfRange(pub String);

/// Reads every number of `v` as lib/json.c reads a message: a number that is
/// an integer becomes `Value::from(i64)` (`1.0` -> `1`, `1e2` -> `100`,
/// `-0.0` -> `0`); a real keeps its text (so it stays a real, even `1.0`
/// written with more digits than a double holds, and writers print it with
/// `%.15g`); a number outside the valid range is an error (ovsdb-server
/// refuses the whole message).
pub fn read_numbers(v: &mut Value) -> Result<(), OutOfRange> {
    match v {
        Value::Number(n) => match classify(n) {
            Some(JsonNumber::Integer(i)) => *v = Value::from(i),
            Some(JsonNumber::Real(_)) => {}
            None => return Err(OutOfRange(n.to_string())),
        },
        Value::Array(a) => a.iter_mut().try_for_each(read_numbers)?,
        Value::Object(o) => o.values_mut().try_for_each(read_numbers)?,
        _ => {}
    }
    Ok(())
}

/// A number as a writer prints it, once numbers were read with
/// [`read_numbers`] (or built from `i64`/`f64`): integers in decimal, every
/// other number as a real (`%.15g` of its value: `1e+15`, `-0`, `0.1`).
pub fn real_or_integer(n: &Number) -> Result<i64, f64> {
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    // Text beyond f64 (built in-process, never read) prints as its value.
    let f = n
        .as_f64()
        .or_else(|| n.to_string().parse().ok())
        .unwrap_or(0.0);
    // A read real that underflowed (`-1e-400`) is 0, never -0; only a
    // negative zero computed in-process (serde writes it `-0.0`) is -0.
    if f == 0.0 && n.to_string() != "-0.0" {
        return Err(0.0);
    }
    Err(f)
}

/// Classifies a JSON value that is a number; `None` for other values and
/// for numbers outside the valid range.
pub fn classify_value(json: &Value) -> Option<JsonNumber> {
    match json {
        Value::Number(n) => classify(n),
        _ => None,
    }
}

/// Classifies a number by its text; `None` if it is outside the valid range.
pub fn classify(n: &Number) -> Option<JsonNumber> {
    // Fast path: a plain integer (also what `Value::from(i64)` makes).
    if let Some(i) = n.as_i64() {
        return Some(JsonNumber::Integer(i));
    }
    classify_text(&n.to_string())
}

/// lib/json.c's `json_lex_number` on the text of a (grammatically valid)
/// JSON number; `None` when it reports a range error.
pub fn classify_text(text: &str) -> Option<JsonNumber> {
    let b = text.as_bytes();
    let mut i = 0;
    let negative = b.first() == Some(&b'-');
    if negative {
        i += 1;
    }
    // Significant digits as an unsigned 64-bit number (wrapping exactly as
    // the C code does at the edge), and the power of ten that scales them.
    let mut significand: u64 = 0;
    let mut pow10: i64 = 0;
    let mut imprecise = false;
    while i < b.len() && b[i].is_ascii_digit() {
        let d = u64::from(b[i] - b'0');
        if significand <= u64::MAX / 10 {
            significand = significand.wrapping_mul(10).wrapping_add(d);
        } else {
            pow10 += 1;
            imprecise |= d != 0;
        }
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            let d = u64::from(b[i] - b'0');
            if significand <= u64::MAX / 10 {
                significand = significand.wrapping_mul(10).wrapping_add(d);
                pow10 -= 1;
            } else {
                imprecise |= d != 0;
            }
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let mut negative_exponent = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            negative_exponent = b[i] == b'-';
            i += 1;
        }
        let mut exponent: i64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            // "exponent outside valid range", at the same digit as the C code.
            if exponent >= i64::from(i32::MAX / 10) {
                return None;
            }
            exponent = exponent * 10 + i64::from(b[i] - b'0');
            i += 1;
        }
        if negative_exponent {
            if pow10 < i64::from(i32::MIN) + exponent {
                return None;
            }
            pow10 -= exponent;
        } else {
            if pow10 > i64::from(i32::MAX) - exponent {
                return None;
            }
            pow10 += exponent;
        }
    }
    if significand == 0 {
        // Negative zeros are suppressed: `-0` and `-0.0e5` are integer 0.
        return Some(JsonNumber::Integer(0));
    }
    if !imprecise {
        while pow10 > 0 && significand < u64::MAX / 10 {
            significand *= 10;
            pow10 -= 1;
        }
        while pow10 < 0 && significand % 10 == 0 {
            significand /= 10;
            pow10 += 1;
        }
        let limit = if negative {
            i64::MAX as u64 + 1
        } else {
            i64::MAX as u64
        };
        if pow10 == 0 && significand <= limit {
            let v = if negative {
                (significand as i64).wrapping_neg()
            } else {
                significand as i64
            };
            return Some(JsonNumber::Integer(v));
        }
    }
    // strtod: correctly rounded; overflow and subnormal results are range
    // errors (ERANGE with a non-zero result), underflow to zero is not.
    let r: f64 = text.parse().ok()?;
    if !r.is_finite() || r.is_subnormal() {
        return None;
    }
    Some(JsonNumber::Real(if r == 0.0 { 0.0 } else { r }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use JsonNumber::{Integer, Real};

    fn c(s: &str) -> Option<JsonNumber> {
        classify_text(s)
    }

    #[test]
    fn whole_numbers_in_range_are_integers() {
        assert_eq!(c("3"), Some(Integer(3)));
        assert_eq!(c("3.0"), Some(Integer(3)));
        assert_eq!(c("1e3"), Some(Integer(1000)));
        assert_eq!(c("1E+2"), Some(Integer(100)));
        assert_eq!(c("-0"), Some(Integer(0)));
        assert_eq!(c("-0.0"), Some(Integer(0)));
        assert_eq!(c("0e400"), Some(Integer(0)));
        assert_eq!(c("1500e-3"), Some(Real(1.5)));
        assert_eq!(c("2500e-3"), Some(Real(2.5)));
        assert_eq!(c("25000e-4"), Some(Real(2.5)));
        assert_eq!(c("120e-1"), Some(Integer(12)));
        assert_eq!(c("9223372036854775807"), Some(Integer(i64::MAX)));
        assert_eq!(c("-9223372036854775808"), Some(Integer(i64::MIN)));
        assert_eq!(c("-9223372036854775808.0"), Some(Integer(i64::MIN)));
        assert_eq!(
            c("100000000000000000000e-2"),
            Some(Integer(1_000_000_000_000_000_000))
        );
    }

    #[test]
    fn everything_else_is_a_real() {
        assert_eq!(c("9223372036854775808"), Some(Real(2f64.powi(63))));
        assert_eq!(c("-9223372036854775809"), Some(Real(-(2f64.powi(63)))));
        assert_eq!(c("1.0000000000000001"), Some(Real(1.0)));
        assert_eq!(c("0.1"), Some(Real(0.1)));
        assert_eq!(c("1e300"), Some(Real(1e300)));
        assert_eq!(c("1e-400"), Some(Real(0.0)));
        assert_eq!(c("-1e-400"), Some(Real(0.0)));
        assert!(matches!(c("-1e-400"), Some(Real(r)) if r.is_sign_positive()));
    }

    #[test]
    fn read_then_printed_as_ovsdb_server_prints() {
        let mut v: Value =
            serde_json::from_str("[1.0, 1e3, -0.0, 1e-400, -1e-400, 0.5, 9223372036854775808]")
                .unwrap_or_default();
        assert_eq!(read_numbers(&mut v), Ok(()));
        let printed: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| match x {
                Value::Number(n) => Some(match real_or_integer(n) {
                    Ok(i) => i.to_string(),
                    Err(f) => crate::data::format_g15(f),
                }),
                _ => None,
            })
            .collect();
        assert_eq!(
            printed,
            ["1", "1000", "0", "0", "0", "0.5", "9.22337203685478e+18"]
        );
        // Reals computed in-process keep their kind: 1e15 and -0 are reals.
        assert_eq!(real_or_integer(&Number::from_f64(1e15).unwrap()), Err(1e15));
        let neg = real_or_integer(&Number::from_f64(-0.0).unwrap());
        assert!(matches!(neg, Err(z) if z == 0.0 && z.is_sign_negative()));
        let mut big: Value = serde_json::from_str("[1e400]").unwrap_or_default();
        assert!(read_numbers(&mut big).is_err());
    }

    #[test]
    fn out_of_range() {
        assert_eq!(c("1e400"), None);
        assert_eq!(c("-1e309"), None);
        assert_eq!(c("5e-324"), None);
        assert_eq!(c("1e2147483648"), None);
        let long = format!("1{}", "0".repeat(400));
        assert_eq!(c(&long), None);
    }
}
