//! Codec: bytes <-> JSON values <-> JSON-RPC 1.0 messages (no OVSDB knowledge).
//!
//! - [`framing`]: [`JsonCodec`], a tokio-util `Decoder`/`Encoder` for JSON
//!   values back to back with no delimiter, with a size limit, and
//!   [`write_json`], the serializer that writes ovsdb-server's exact format.
//! - [`jsonrpc`]: [`Message`] (request, notification, reply, error) with
//!   lib/jsonrpc.c's acceptance rules, and helpers that wrap pre-encoded
//!   monitor bodies into `update`/`update2`/`update3` notifications.
//! - [`json_hash`]: the hash ovsdb-server gives a JSON value (the order of
//!   its hash tables keyed by JSON, such as a session's monitors).
//!
//! # What ovsdb-server 3.1 does with each kind of input
//!
//! Observed on the wire (raw TCP, `ovsdb-server` 3.1.0 with an OVN_Northbound
//! database) with the text it logged. "Drop" means: the connection is closed
//! at once, with no reply, after the replies to the messages that came before
//! it on the same connection (they are processed in order). The session layer
//! reproduces this with the errors of this module.
//!
//! | input | ovsdb-server 3.1 | here |
//! |---|---|---|
//! | `{...}{...}`, with or without whitespace (space, tab, CR, LF) between | each processed in order | [`JsonCodec`] yields each |
//! | message cut short, then the peer closes | dropped silently | `decode_eof` drops it, `Ok(None)` |
//! | bad JSON, e.g. `{bad json}` | drop; log `error parsing stream: line 0, column 4, byte 4: invalid keyword 'bad'` | [`CodecError::Syntax`] |
//! | `{...}, {...}` (garbage between messages) | first replied, then drop (`syntax error at beginning of input`) | first yielded, then `Syntax` |
//! | `{...}x` (a letter after a message) | reply to the first; the connection stays open until the next byte ends the "keyword", then drop (`invalid keyword 'x'`) | first yielded, then `Syntax` at once |
//! | top level not an object or array: `42`, `"abc"`, `null`, a UTF-8 BOM | drop; `syntax error at beginning of input` (BOM: `invalid character U+00ef`) | `Syntax` |
//! | top level array `[1,2]` | drop; `received bad JSON-RPC message: message is not a JSON object` | decodes; [`Message::from_json`] → [`JsonRpcError::NotObject`] |
//! | raw control character in a string | drop; `U+000A must be escaped in quoted string` | `Syntax` |
//! | `"\u0000"` | drop; `null bytes not supported in quoted strings` | `Syntax` |
//! | bad escape `"\x"`, lone surrogate `"\ud83d"`, `01`, `[1,]`, `tru` | drop (`bad escape \x`, `malformed escaped surrogate pair`, `leading zeros not allowed`, `syntax error expecting value`, `invalid keyword 'tru'`) | `Syntax` |
//! | number out of range: `1e400`, denormals such as `1e-310` | drop; `number outside valid range` | `Syntax` (an underflow to zero such as `1e-400` reads as `0` here) |
//! | nesting deeper than 1000 | drop; `input exceeds maximum nesting depth 1000` | `Syntax`; note serde_json already refuses more than 128 levels |
//! | invalid UTF-8 inside a string, e.g. `"\xff\xfe"` | accepted as is: `echo` returns the same bytes; `transact` fails that operation with `{"error":"constraint violation","details":"not a valid UTF-8 string: invalid UTF-8 sequence 0xff"}` and the connection stays open | [`CodecError::InvalidUtf8`], drop (deliberately stricter) |
//! | a 70 MB message | processed (no limit) | [`CodecError::TooLarge`] above `max_size` (default 64 MiB), drop, without buffering past the limit |
//! | `"method"` not a string (`5`, `null`) | drop; `received bad JSON-RPC message: method is not a JSON string` | [`JsonRpcError::MethodNotString`] |
//! | a member other than method/params/result/error/id | drop; `message has unexpected member "extra"` | [`JsonRpcError::UnexpectedMember`] |
//! | `"params"` not an array (`{}`, `5`), also with `"id":null` | drop; `"params" must be JSON array` | [`JsonRpcError::ParamsNotArray`] |
//! | `{"method":"echo","id":1}` / `"params":null` | drop; `request must have "params"` | `Missing` |
//! | `{"params":[],"id":1}` (no method) | drop; `request must have "method"` | `Missing` |
//! | `{}` | drop; `notification must have "method"` | `Missing` |
//! | `{"result":1,"error":"x","id":1}` (both) | drop; `reply must not have "error"` | `Forbidden` |
//! | `{"result":null,"error":null,"id":1}` | drop; `request must have "method"` (nulls are absent members) | `Missing` |
//! | a reply, `{"result":1,"id":12345}` (any id, known or not) | drop; log `received unexpected reply message` | parses as [`Message::Reply`]; the session drops |
//! | an error, `{"error":"boom","id":12345}`, even with id `"echo"` | drop; log `received unexpected error message` | parses as [`Message::Error`]; the session drops |
//! | a reply with id `"echo"` (`{"result":[],"id":"echo"}`) | ignored silently (taken for the answer to its own probe) | [`Message::is_echo_reply`] |
//! | `{"method":"echo","params":P,"id":I}` | `{"id":I,"result":P,"error":null}` | session replies `Message::reply(I, P)` |
//! | `{"method":"frob","params":[],"id":1}` | `{"id":1,"error":"unknown method"}` (no `"result"` member), stays open | session replies `Message::error(id, "unknown method")` |
//! | notification of any method, e.g. `echo` or `frob` with `"id":null` or no id | ignored, no reply, stays open | session ignores it (ovsdb-server acts only on `cancel`) |
//! | duplicate member `{"params":[],"params":[5],...}` | the last one wins | the last one wins (serde_json) |
//!
//! ovsdb-server also sends, after 5 s of silence on TCP,
//! `{"id":"echo","method":"echo","params":[]}`, and writes its envelopes as
//! `{"id":..,"result":..,"error":null}`, `{"id":..,"error":..}` and
//! `{"id":null,"method":..,"params":[..]}`; [`Message::write`] does the same.

pub mod cond_change;
pub mod condition;
pub mod envelope;
pub mod framing;
pub mod json_hash;
pub mod jsonrpc;
pub mod transact;

pub use framing::{
    encode_message, write_json, write_str, CodecError, Frame, FrameCodec, JsonCodec,
    DEFAULT_MAX_MESSAGE_SIZE, MAX_NESTING_DEPTH,
};
pub use jsonrpc::{
    begin_reply, end_reply, notification_bytes, reply_bytes, update3_bytes, write_notification_raw,
    JsonRpcError, Message, MessageKind, UpdateNotification,
};
