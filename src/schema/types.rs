//! OVSDB types: atomic types, base types with constraints, and column types.

use crate::data::{Atom, Datum};
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};
use serde_json::{json, Map, Value};

/// The five atomic types of RFC 7047.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AtomicType {
    /// 64-bit signed integer.
    Integer,
    /// IEEE double.
    Real,
    /// Boolean.
    Boolean,
    /// UTF-8 string.
    String,
    /// UUID.
    Uuid,
}

impl AtomicType {
    /// The type's name in schemas.
    pub fn name(self) -> &'static str {
        match self {
            AtomicType::Integer => "integer",
            AtomicType::Real => "real",
            AtomicType::Boolean => "boolean",
            AtomicType::String => "string",
            AtomicType::Uuid => "uuid",
        }
    }

    /// Parses a type name.
    pub fn from_name(s: &str) -> Option<AtomicType> {
        Some(match s {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            _ => return None,
        })
    }

    fn from_json(json: &Value) -> Result<AtomicType> {
        match json {
            Value::String(s) => AtomicType::from_name(s).ok_or_else(|| {
                OvsdbError::syntax(Some(json), None, format!("\"{s}\" is not an atomic-type"))
            }),
            _ => Err(OvsdbError::syntax(Some(json), None, "atomic-type expected")),
        }
    }
}

/// Strong references keep their target alive and forbid deleting it; weak ones vanish with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefType {
    /// Referential integrity is enforced.
    Strong,
    /// References to deleted rows are removed.
    Weak,
}

/// An atomic type with its constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseType {
    /// The atomic type.
    pub atomic: AtomicType,
    /// Allowed values, sorted, if the type is an enumeration.
    pub enum_values: Option<Vec<Atom>>,
    /// Integer range (inclusive); `i64::MIN..=i64::MAX` when unconstrained.
    pub min_integer: i64,
    /// See `min_integer`.
    pub max_integer: i64,
    /// Real range (inclusive); `-f64::MAX..=f64::MAX` when unconstrained.
    pub min_real: f64,
    /// See `min_real`.
    pub max_real: f64,
    /// String length range in characters; `0..=u32::MAX` when unconstrained.
    pub min_length: u64,
    /// See `min_length`.
    pub max_length: u64,
    /// Referenced table for a uuid.
    pub ref_table: Option<String>,
    /// Strength of the reference.
    pub ref_type: RefType,
}

impl BaseType {
    /// An unconstrained base type.
    pub fn new(atomic: AtomicType) -> BaseType {
        BaseType {
            atomic,
            enum_values: None,
            min_integer: i64::MIN,
            max_integer: i64::MAX,
            min_real: -f64::MAX,
            max_real: f64::MAX,
            min_length: 0,
            max_length: u32::MAX as u64,
            ref_table: None,
            ref_type: RefType::Strong,
        }
    }

    /// Whether any constraint is set.
    pub fn has_constraints(&self) -> bool {
        self.enum_values.is_some()
            || match self.atomic {
                AtomicType::Integer => self.min_integer != i64::MIN || self.max_integer != i64::MAX,
                AtomicType::Real => self.min_real != -f64::MAX || self.max_real != f64::MAX,
                AtomicType::String => self.min_length != 0 || self.max_length != u32::MAX as u64,
                AtomicType::Uuid => self.ref_table.is_some(),
                AtomicType::Boolean => false,
            }
    }

    /// Whether this is a strong reference to another table.
    pub fn is_strong_ref(&self) -> bool {
        self.ref_table.is_some() && self.ref_type == RefType::Strong
    }

    /// Whether this is a weak reference to another table.
    pub fn is_weak_ref(&self) -> bool {
        self.ref_table.is_some() && self.ref_type == RefType::Weak
    }

    /// Parses a base type: an atomic-type name or an object with constraints.
    pub fn from_json(json: &Value) -> Result<BaseType> {
        match json {
            Value::String(_) => Ok(BaseType::new(AtomicType::from_json(json)?)),
            Value::Object(_) => {
                let mut p = Parser::new(json, "ovsdb type");
                let t = p.member("type", Kinds::STRING);
                let t = match t {
                    Some(t) => t,
                    None => {
                        p.finish()?;
                        return Err(OvsdbError::syntax(Some(json), None, "base type expected"));
                    }
                };
                let mut base = BaseType::new(AtomicType::from_json(t)?);
                let result = base.parse_constraints(&mut p, json);
                match result {
                    Err(e) => Err(e),
                    Ok(()) => {
                        p.finish()?;
                        Ok(base)
                    }
                }
            }
            _ => Err(OvsdbError::syntax(Some(json), None, "base type expected")),
        }
    }

    fn parse_constraints(&mut self, p: &mut Parser<'_>, json: &Value) -> Result<()> {
        if let Some(e) = p.member("enum", Kinds::ANY | Kinds::OPTIONAL) {
            let enum_type = Type {
                key: BaseType::new(self.atomic),
                value: None,
                min: 1,
                max: UNLIMITED,
            };
            let d = Datum::from_json(&enum_type, e, None)?;
            self.enum_values = Some(d.keys);
            return Ok(());
        }
        match self.atomic {
            AtomicType::Integer => {
                let min = p.member("minInteger", Kinds::INTEGER | Kinds::OPTIONAL);
                let max = p.member("maxInteger", Kinds::INTEGER | Kinds::OPTIONAL);
                self.min_integer = min
                    .and_then(crate::data::atom::json_integer)
                    .unwrap_or(i64::MIN);
                self.max_integer = max
                    .and_then(crate::data::atom::json_integer)
                    .unwrap_or(i64::MAX);
                if self.min_integer > self.max_integer {
                    return Err(OvsdbError::syntax(
                        Some(json),
                        None,
                        "minInteger exceeds maxInteger",
                    ));
                }
            }
            AtomicType::Real => {
                let min = p.member("minReal", Kinds::NUMBER | Kinds::OPTIONAL);
                let max = p.member("maxReal", Kinds::NUMBER | Kinds::OPTIONAL);
                self.min_real = min
                    .and_then(crate::data::atom::json_real)
                    .unwrap_or(-f64::MAX);
                self.max_real = max
                    .and_then(crate::data::atom::json_real)
                    .unwrap_or(f64::MAX);
                if self.min_real > self.max_real {
                    return Err(OvsdbError::syntax(
                        Some(json),
                        None,
                        "minReal exceeds maxReal",
                    ));
                }
            }
            AtomicType::String => {
                self.min_length = parse_optional_uint(p, "minLength")?.unwrap_or(0);
                self.max_length = parse_optional_uint(p, "maxLength")?.unwrap_or(u32::MAX as u64);
                if self.min_length > self.max_length {
                    return Err(OvsdbError::syntax(
                        Some(json),
                        None,
                        "minLength exceeds maxLength",
                    ));
                }
            }
            AtomicType::Uuid => {
                if let Some(rt) = p.member("refTable", Kinds::ID | Kinds::OPTIONAL) {
                    self.ref_table = rt.as_str().map(str::to_string);
                    if let Some(kind) = p.member("refType", Kinds::ID | Kinds::OPTIONAL) {
                        self.ref_type = match kind.as_str() {
                            Some("strong") => RefType::Strong,
                            Some("weak") => RefType::Weak,
                            other => {
                                return Err(OvsdbError::syntax(
                                    Some(json),
                                    None,
                                    format!(
                                        "refType must be \"strong\" or \"weak\" (not \"{}\")",
                                        other.unwrap_or("")
                                    ),
                                ))
                            }
                        };
                    }
                }
            }
            AtomicType::Boolean => {}
        }
        Ok(())
    }

    /// The base type as schema JSON: a bare name when unconstrained.
    pub fn to_json(&self) -> Value {
        if !self.has_constraints() {
            return json!(self.atomic.name());
        }
        let mut m = Map::new();
        m.insert("type".into(), json!(self.atomic.name()));
        if let Some(values) = &self.enum_values {
            m.insert(
                "enum".into(),
                Datum {
                    keys: values.clone(),
                    values: None,
                }
                .to_json(),
            );
        }
        match self.atomic {
            AtomicType::Integer => {
                if self.min_integer != i64::MIN {
                    m.insert("minInteger".into(), json!(self.min_integer));
                }
                if self.max_integer != i64::MAX {
                    m.insert("maxInteger".into(), json!(self.max_integer));
                }
            }
            AtomicType::Real => {
                if self.min_real != -f64::MAX {
                    m.insert("minReal".into(), json!(self.min_real));
                }
                if self.max_real != f64::MAX {
                    m.insert("maxReal".into(), json!(self.max_real));
                }
            }
            AtomicType::String => {
                if self.min_length != 0 {
                    m.insert("minLength".into(), json!(self.min_length));
                }
                if self.max_length != u32::MAX as u64 {
                    m.insert("maxLength".into(), json!(self.max_length));
                }
            }
            AtomicType::Uuid => {
                if let Some(t) = &self.ref_table {
                    m.insert("refTable".into(), json!(t));
                    if self.ref_type == RefType::Weak {
                        m.insert("refType".into(), json!("weak"));
                    }
                }
            }
            AtomicType::Boolean => {}
        }
        Value::Object(m)
    }
}

fn parse_optional_uint(p: &mut Parser<'_>, name: &str) -> Result<Option<u64>> {
    match p.member(name, Kinds::INTEGER | Kinds::OPTIONAL) {
        None => Ok(None),
        Some(v) => match crate::data::atom::json_integer(v) {
            Some(i) if i >= 0 && i <= u32::MAX as i64 => Ok(Some(i as u64)),
            _ => Err(OvsdbError::syntax(
                Some(v),
                None,
                format!("{name} out of valid range 0 to {}", u32::MAX),
            )),
        },
    }
}

/// `max` of a type that has no upper bound on its size.
pub const UNLIMITED: u32 = u32::MAX;

/// A column type: key, optional value (a map), and size bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Type {
    /// Type of set elements or map keys.
    pub key: BaseType,
    /// Type of map values; `None` for sets and scalars.
    pub value: Option<BaseType>,
    /// Minimum size: 0 or 1.
    pub min: u32,
    /// Maximum size, at least 1; [`UNLIMITED`] for no bound.
    pub max: u32,
}

impl Type {
    /// A scalar of an unconstrained atomic type.
    pub fn scalar(atomic: AtomicType) -> Type {
        Type {
            key: BaseType::new(atomic),
            value: None,
            min: 1,
            max: 1,
        }
    }

    /// Whether values of this type are maps.
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// Whether this is a single value (min 1, max 1, no value type).
    pub fn is_scalar(&self) -> bool {
        self.min == 1 && self.max == 1 && self.value.is_none()
    }

    /// Whether this is a set (not a map) that may hold other than exactly one element.
    pub fn is_set(&self) -> bool {
        self.value.is_none() && (self.min != 1 || self.max != 1)
    }

    /// Whether this is "optional" (0 or 1 element).
    pub fn is_optional(&self) -> bool {
        self.min == 0 && self.max == 1
    }

    /// Whether a set or map of `n` elements has a size this type allows.
    pub fn allows_count(&self, n: u64) -> bool {
        n >= self.min as u64 && n <= self.max_u64()
    }

    /// `max` as a number, `u32::MAX` meaning unlimited.
    pub fn max_u64(&self) -> u64 {
        self.max as u64
    }

    /// Parses a column type.
    pub fn from_json(json: &Value) -> Result<Type> {
        match json {
            Value::String(_) => Ok(Type::scalar(AtomicType::from_json(json)?)),
            Value::Object(_) => {
                let mut p = Parser::new(json, "ovsdb type");
                let key = p.member("key", Kinds::STRING | Kinds::OBJECT);
                let value = p.member("value", Kinds::STRING | Kinds::OBJECT | Kinds::OPTIONAL);
                let min = p.member("min", Kinds::INTEGER | Kinds::OPTIONAL);
                let max = p.member("max", Kinds::INTEGER | Kinds::STRING | Kinds::OPTIONAL);
                p.finish()?;
                let key = BaseType::from_json(key.unwrap_or(&Value::Null))?;
                let value = match value {
                    Some(v) => Some(BaseType::from_json(v)?),
                    None => None,
                };
                let min = n_from_json(min)?;
                let max = match max {
                    Some(Value::String(s)) if s == "unlimited" => UNLIMITED,
                    other => n_from_json(other)?,
                };
                if min > 1 || max < 1 {
                    return Err(OvsdbError::syntax(
                        Some(json),
                        None,
                        "ovsdb type fails constraint checks",
                    ));
                }
                Ok(Type {
                    key,
                    value,
                    min,
                    max,
                })
            }
            _ => Err(OvsdbError::syntax(Some(json), None, "ovsdb type expected")),
        }
    }

    /// The type as schema JSON, in ovsdb-server's shortest form.
    pub fn to_json(&self) -> Value {
        if self.is_scalar() && !self.key.has_constraints() {
            return self.key.to_json();
        }
        let mut m = Map::new();
        m.insert("key".into(), self.key.to_json());
        if let Some(v) = &self.value {
            m.insert("value".into(), v.to_json());
        }
        if self.min != 1 {
            m.insert("min".into(), json!(self.min));
        }
        if self.max == UNLIMITED {
            m.insert("max".into(), json!("unlimited"));
        } else if self.max != 1 {
            m.insert("max".into(), json!(self.max));
        }
        Value::Object(m)
    }
}

fn n_from_json(json: Option<&Value>) -> Result<u32> {
    match json {
        None => Ok(1),
        Some(v) => match crate::data::atom::json_integer(v) {
            Some(i) if i >= 0 && i < u32::MAX as i64 => Ok(i as u32),
            _ => Err(OvsdbError::syntax(Some(v), None, "bad min or max value")),
        },
    }
}
