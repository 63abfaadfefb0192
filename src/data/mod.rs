//! Data: atoms, datums and rows, with RFC 7047 JSON in and out.

pub mod atom;
pub mod datum;
pub mod datum_json;
pub mod fast_map;
pub mod number;
pub mod row;
pub mod symbol;

pub use atom::Atom;
pub use datum::Datum;
pub use fast_map::{FastMap, UuidMap};
pub use row::Row;
pub use symbol::SymbolTable;

use serde_json::Value;

/// Serializes JSON compactly with sorted keys and reals as `%.15g`, as
/// ovsdb-server prints the `syntax` member of its errors.
pub fn json_text(json: &Value) -> String {
    let mut out = String::new();
    write_json(json, &mut out);
    out
}

fn write_json(json: &Value, out: &mut String) {
    match json {
        Value::Number(n) => {
            // Integers beyond 64 bits are reals, as ovsdb-server reads them.
            match number::real_or_integer(n) {
                Ok(i) => out.push_str(&i.to_string()),
                Err(r) => out.push_str(&format_g15(r)),
            }
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(v, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_json(&m[k], out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Formats a double like C's `printf("%.15g")`, as ovsdb-server prints reals.
pub fn format_g15(r: f64) -> String {
    format_g(r, 15)
}

fn format_g(r: f64, precision: usize) -> String {
    if r == 0.0 {
        return if r.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    if !r.is_finite() {
        return if r.is_nan() {
            "nan".into()
        } else if r > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sci = format!("{:.*e}", precision - 1, r);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if exp < -4 || exp >= precision as i32 {
        let m = strip_zeros(&mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, r))
    }
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g15_matches_printf() {
        assert_eq!(format_g15(1.0), "1");
        assert_eq!(format_g15(0.1), "0.1");
        assert_eq!(format_g15(1.5), "1.5");
        assert_eq!(format_g15(1e20), "1e+20");
        assert_eq!(format_g15(1.25e-7), "1.25e-07");
        assert_eq!(format_g15(123456789012345.0), "123456789012345");
        assert_eq!(format_g15(1234567890123456.0), "1.23456789012346e+15");
        assert_eq!(format_g15(-2.5), "-2.5");
        assert_eq!(format_g15(0.0001), "0.0001");
    }

    #[test]
    fn json_text_sorts_keys() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":[1.5,"x"]}"#).unwrap();
        assert_eq!(json_text(&v), r#"{"a":[1.5,"x"],"b":1}"#);
    }
}
