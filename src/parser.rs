//! A JSON-object member parser with ovsdb-server's error wording
//! ("Parsing X failed: Required 'm' member is missing.").

use crate::error::OvsdbError;
use serde_json::{Map, Value};

/// Which JSON types a member may have (a bit set, as ovsdb-server's `OP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds(u16);

impl Kinds {
    /// `null`.
    pub const NULL: Kinds = Kinds(1);
    /// `true`/`false`.
    pub const BOOLEAN: Kinds = Kinds(2);
    /// An object.
    pub const OBJECT: Kinds = Kinds(4);
    /// An array.
    pub const ARRAY: Kinds = Kinds(8);
    /// An integer.
    pub const INTEGER: Kinds = Kinds(16);
    /// A real (or integer).
    pub const REAL: Kinds = Kinds(32);
    /// A string.
    pub const STRING: Kinds = Kinds(64);
    /// A string that is a valid identifier.
    pub const ID: Kinds = Kinds(128);
    /// The member may be absent.
    pub const OPTIONAL: Kinds = Kinds(256);
    /// Any JSON value.
    pub const ANY: Kinds = Kinds(1 | 2 | 4 | 8 | 16 | 32 | 64);
    /// A number.
    pub const NUMBER: Kinds = Kinds(16 | 32);

    fn has(self, k: Kinds) -> bool {
        self.0 & k.0 != 0
    }
}

impl std::ops::BitOr for Kinds {
    type Output = Kinds;
    fn bitor(self, rhs: Kinds) -> Kinds {
        Kinds(self.0 | rhs.0)
    }
}

/// Whether `s` is an OVSDB identifier: a letter or `_`, then letters, digits or `_`.
pub fn is_id(s: &str) -> bool {
    let mut chars = s.bytes();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Parses members out of one JSON object, remembering the first error and
/// which members were used, so `finish` can reject the unused ones.
pub struct Parser<'a> {
    json: Option<&'a Map<String, Value>>,
    whole: &'a Value,
    name: Context,
    /// Few members per object: a list beats a hash set (and allocates once).
    used: Vec<&'a str>,
    error: Option<OvsdbError>,
}

/// What an error message says was being parsed; formatted only when an
/// error happens (every operation of every transaction has one).
enum Context {
    Text(String),
    Operation { index: usize, of: usize },
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Context::Text(t) => f.write_str(t),
            Context::Operation { index, of } => write!(f, "ovsdb operation {index} of {of}"),
        }
    }
}

impl<'a> Parser<'a> {
    /// Starts parsing `json`, which must be an object; `name` goes into error messages.
    pub fn new(json: &'a Value, name: impl Into<String>) -> Self {
        Parser::with_context(json, Context::Text(name.into()))
    }

    /// Starts parsing operation `index` (from 1) of `of` of a transaction.
    pub fn operation(json: &'a Value, index: usize, of: usize) -> Self {
        Parser::with_context(json, Context::Operation { index, of })
    }

    fn with_context(json: &'a Value, name: Context) -> Self {
        let mut p = Parser {
            json: json.as_object(),
            whole: json,
            name,
            used: Vec::new(),
            error: None,
        };
        if p.json.is_none() {
            p.raise("Object expected.");
        }
        p
    }

    /// Looks up member `name` of one of the `kinds`; records an error and
    /// returns `None` if it is missing (and not optional) or of the wrong type.
    pub fn member(&mut self, name: &str, kinds: Kinds) -> Option<&'a Value> {
        let obj = self.json?;
        let (key, value) = match obj.get_key_value(name) {
            Some(kv) => kv,
            None => {
                if !kinds.has(Kinds::OPTIONAL) {
                    self.raise(format!("Required '{name}' member is missing."));
                }
                return None;
            }
        };
        let ok = match value {
            Value::Null => kinds.has(Kinds::NULL),
            Value::Bool(_) => kinds.has(Kinds::BOOLEAN),
            Value::Object(_) => kinds.has(Kinds::OBJECT),
            Value::Array(_) => kinds.has(Kinds::ARRAY),
            Value::Number(_) => {
                if crate::data::atom::json_integer(value).is_some() {
                    kinds.has(Kinds::INTEGER) || kinds.has(Kinds::REAL)
                } else {
                    kinds.has(Kinds::REAL)
                }
            }
            Value::String(s) => kinds.has(Kinds::STRING) || (kinds.has(Kinds::ID) && is_id(s)),
        };
        if ok {
            if !self.used.contains(&key.as_str()) {
                self.used.push(key.as_str());
            }
            Some(value)
        } else {
            self.raise(format!("Type mismatch for member '{name}'."));
            None
        }
    }

    /// Records an error (only the first one counts).
    pub fn raise(&mut self, msg: impl AsRef<str>) {
        if self.error.is_none() {
            // Like ovsdb-server, a non-object has no "syntax" member in the error.
            let syntax = self.json.map(|_| self.whole);
            self.error = Some(OvsdbError::syntax(
                syntax,
                None,
                format!("Parsing {} failed: {}", self.name, msg.as_ref()),
            ));
        }
    }

    /// The first error so far, if any.
    pub fn error(&self) -> Option<OvsdbError> {
        self.error.clone()
    }

    /// Whether an error was recorded.
    pub fn has_error(&self) -> bool {
        self.error.is_some()
    }

    /// The object being parsed.
    pub fn json(&self) -> &'a Value {
        self.whole
    }

    /// Ends parsing: the first error, or an error about members that were not used.
    pub fn finish(mut self) -> Result<(), OvsdbError> {
        if self.error.is_none() {
            if let Some(obj) = self.json {
                let unused: Vec<&String> = obj
                    .keys()
                    .filter(|k| !self.used.contains(&k.as_str()))
                    .collect();
                match unused.len() {
                    0 => {}
                    1 => self.raise(format!(
                        "Member '{}' is present but not allowed here.",
                        unused[0]
                    )),
                    n => self.raise(format!(
                        "Member '{}' and {} other member{} are present but not allowed here.",
                        unused[0],
                        n - 1,
                        if n > 2 { "s" } else { "" }
                    )),
                }
            }
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
