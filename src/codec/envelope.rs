//! The JSON-RPC envelope of a request decoded straight from its bytes
//! (`codec::cond_change`, `codec::transact`): which method a message names,
//! found without parsing it, and its members with the params left as text.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// How far into a message its method name is looked for before a full
/// decode is tried: clients put `method` before the long `params`.
pub const METHOD_WITHIN: usize = 512;

/// Whether the start of a message has a `"method"` member whose value is
/// the JSON string `method` (given with its quotes). Every message passes
/// here, so it looks only at the places a string starts; a method written
/// some other way (escapes, the member after a long `params`) is left to
/// the ordinary path.
pub fn names_method(text: &[u8], method: &[u8]) -> bool {
    const KEY: &[u8] = b"\"method\"";
    let head = &text[..text.len().min(METHOD_WITHIN)];
    let mut from = 0;
    while let Some(p) = head[from..].iter().position(|&b| b == b'"') {
        let at = from + p;
        if let Some(rest) = head[at..].strip_prefix(KEY) {
            let rest = rest.trim_ascii_start();
            return rest
                .strip_prefix(b":")
                .is_some_and(|v| v.trim_ascii_start().starts_with(method));
        }
        from = at + 1;
    }
    false
}

/// A request's members, its params left undecoded. A message with any
/// other member, or a member twice, does not decode.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<'a> {
    /// The request id.
    pub id: Value,
    /// The method.
    #[serde(borrow)]
    pub method: std::borrow::Cow<'a, str>,
    /// The params, as sent.
    #[serde(borrow)]
    pub params: &'a RawValue,
}

/// A JSON string, borrowed from the message's text where it has no escapes
/// (member names, methods, table and column names, tags such as `"set"`).
pub struct Text<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}
