//! Error types, one per layer. [`OvsdbError`] is RFC 7047's error object.

use serde_json::{json, Map, Value};
use std::fmt;

/// The error object of RFC 7047 section 3.1: a tag, details and, for syntax
/// errors, the offending JSON text (an ovsdb-server extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsdbError {
    /// The short error tag, e.g. `constraint violation`.
    pub tag: String,
    /// Human-readable details, worded as ovsdb-server words them.
    pub details: Option<String>,
    /// For syntax errors: the JSON that could not be parsed, serialized.
    pub syntax: Option<String>,
}

impl OvsdbError {
    /// An error with a tag and details.
    pub fn new(tag: impl Into<String>, details: impl Into<String>) -> Self {
        OvsdbError {
            tag: tag.into(),
            details: Some(details.into()),
            syntax: None,
        }
    }

    /// A syntax error about `json`; `tag` defaults to `syntax error` as in ovsdb-server.
    pub fn syntax(json: Option<&Value>, tag: Option<&str>, details: impl Into<String>) -> Self {
        OvsdbError {
            tag: tag.unwrap_or("syntax error").to_string(),
            details: Some(details.into()),
            syntax: json.map(crate::data::json_text),
        }
    }

    /// `constraint violation` with details.
    pub fn constraint(details: impl Into<String>) -> Self {
        Self::new("constraint violation", details)
    }

    /// The error object as JSON: `{"error": tag, "details": ..., "syntax": ...}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("error".into(), json!(self.tag));
        if let Some(d) = &self.details {
            m.insert("details".into(), json!(d));
        }
        if let Some(s) = &self.syntax {
            m.insert("syntax".into(), json!(s));
        }
        Value::Object(m)
    }
}

impl fmt::Display for OvsdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.details {
            Some(d) => write!(f, "{}: {}", self.tag, d),
            None => write!(f, "{}", self.tag),
        }
    }
}

impl std::error::Error for OvsdbError {}

/// Result alias for the pure layers.
pub type Result<T, E = OvsdbError> = std::result::Result<T, E>;
