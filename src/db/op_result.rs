//! One element of a `transact` reply's result array, typed for the results
//! every write gives (`{"count": n}`, `{"uuid": ["uuid", U]}`, `{}`) and
//! written straight into the reply's bytes.
//!
//! Why: as JSON trees, a small transaction's results were a B-tree per
//! operation with owned keys, numbers held as strings and a string per
//! UUID, built, walked to encode and dropped for every reply: about a
//! twentieth of a small NB transaction's instructions. Everything else
//! (select's rows, errors, the `null` padding) stays JSON.

use crate::codec::framing::{json_len_hint, write_json};
use crate::data::datum_json::decimal;
use bytes::{BufMut, BytesMut};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// One operation's result, or an error or padding element.
#[derive(Debug, Clone, PartialEq)]
pub enum OpResult {
    /// `{}`: the result of an operation that returns nothing.
    Empty,
    /// `{"count": n}`.
    Count(usize),
    /// `{"uuid": ["uuid", U]}`.
    Uuid(Uuid),
    /// Any other element as JSON: a select's `{"rows": [...]}`, an error,
    /// or the `null` of an operation not run.
    Json(Value),
}

impl OpResult {
    /// The error element of `e`.
    pub fn error(e: &crate::error::OvsdbError) -> OpResult {
        OpResult::Json(e.to_json())
    }

    /// The element as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            OpResult::Empty => Value::Object(Map::new()),
            OpResult::Count(n) => json!({ "count": n }),
            OpResult::Uuid(u) => json!({ "uuid": ["uuid", u.hyphenated().to_string()] }),
            OpResult::Json(v) => v.clone(),
        }
    }

    /// The element as JSON, taken.
    pub fn into_json(self) -> Value {
        match self {
            OpResult::Json(v) => v,
            other => other.to_json(),
        }
    }

    /// The tag of the error this element is, if it is one.
    pub fn error_tag(&self) -> Option<&str> {
        match self {
            OpResult::Json(v) => v.get("error").and_then(Value::as_str),
            _ => None,
        }
    }

    /// Whether this element is an error.
    pub fn is_error(&self) -> bool {
        matches!(self, OpResult::Json(v) if v.get("error").is_some())
    }

    /// Bytes [`OpResult::write`] writes, or about as many.
    fn len_hint(&self) -> usize {
        match self {
            OpResult::Empty => 2,
            OpResult::Count(_) => 30,
            OpResult::Uuid(_) => 56,
            OpResult::Json(v) => json_len_hint(v),
        }
    }

    /// Writes the element as `write_json` writes [`OpResult::to_json`].
    pub fn write(&self, out: &mut BytesMut) {
        match self {
            OpResult::Empty => out.put_slice(b"{}"),
            OpResult::Count(n) => {
                out.put_slice(b"{\"count\":");
                out.put_slice(decimal(*n as u64, &mut [0u8; 20]));
                out.put_u8(b'}');
            }
            OpResult::Uuid(u) => {
                out.put_slice(b"{\"uuid\":[\"uuid\",\"");
                out.put_slice(
                    u.hyphenated()
                        .encode_lower(&mut Uuid::encode_buffer())
                        .as_bytes(),
                );
                out.put_slice(b"\"]}");
            }
            OpResult::Json(v) => write_json(v, out),
        }
    }
}

/// The result array as JSON.
pub fn to_json(results: Vec<OpResult>) -> Value {
    Value::Array(results.into_iter().map(OpResult::into_json).collect())
}

/// The tag of the first error in the result array, if any.
pub fn error_tag(results: &[OpResult]) -> Option<&str> {
    results.iter().find_map(OpResult::error_tag)
}

/// Bytes [`write`] writes for `results`, or about as many.
pub fn len_hint(results: &[OpResult]) -> usize {
    2 + results.iter().map(|r| r.len_hint() + 1).sum::<usize>()
}

/// Writes the result array as `write_json` writes [`to_json`]'s.
pub fn write(results: &[OpResult], out: &mut BytesMut) {
    out.put_u8(b'[');
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        r.write(out);
    }
    out.put_u8(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OvsdbError;
    use proptest::prelude::*;

    fn written(results: &[OpResult]) -> String {
        let mut out = BytesMut::new();
        write(results, &mut out);
        String::from_utf8(out.to_vec()).expect("utf-8")
    }

    fn json_text(results: &[OpResult]) -> String {
        let mut out = BytesMut::new();
        write_json(&to_json(results.to_vec()), &mut out);
        String::from_utf8(out.to_vec()).expect("utf-8")
    }

    #[test]
    fn written_as_the_json_would_be() {
        let results = vec![
            OpResult::Uuid(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)),
            OpResult::Count(0),
            OpResult::Count(i64::MAX as usize),
            OpResult::Empty,
            OpResult::Json(json!({"rows": [{"name": "a\"b"}]})),
            OpResult::error(&OvsdbError::new("aborted", "aborted by request")),
            OpResult::Json(Value::Null),
        ];
        assert_eq!(written(&results), json_text(&results));
        assert_eq!(
            written(&results[..2]),
            r#"[{"uuid":["uuid","01234567-89ab-cdef-0123-456789abcdef"]},{"count":0}]"#
        );
        assert_eq!(written(&[]), "[]");
        assert_eq!(error_tag(&results), Some("aborted"));
        assert!(results[5].is_error() && !results[4].is_error());
    }

    proptest! {
        #[test]
        fn counts_and_uuids_as_json(n in 0..=i64::MAX as usize, u in any::<u128>()) {
            let results = [OpResult::Count(n), OpResult::Uuid(Uuid::from_u128(u))];
            prop_assert_eq!(written(&results), json_text(&results));
            prop_assert!(len_hint(&results) >= written(&results).len());
        }
    }
}
