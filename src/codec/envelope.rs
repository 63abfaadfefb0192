//! The JSON-RPC envelope of a request decoded straight from its bytes
//! (`codec::cond_change`, `codec::transact`): which method a message names,
//! found without parsing it, and its members with the params left as text.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

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
