//! Framing: JSON values back to back on a byte stream, with no delimiter.
//!
//! ovsdb-server and its clients write one JSON text per message and nothing
//! between them (`{...}{...}`); a reader may find whitespace between messages
//! and must accept it. [`JsonCodec`] splits such a stream incrementally: it
//! keeps its scan state (nesting depth, inside-string, escape, position)
//! across calls, so a 10 MB message that arrives in 4 KB pieces is scanned
//! once, not once per piece. When the scanner sees the brace or bracket that
//! closes the top-level value, the message's bytes are checked for UTF-8 and
//! parsed with serde_json.
//!
//! What the decoder accepts, and what it rejects, follows lib/json.c (the
//! reader of ovsdb-server 3.1); see the table in [`crate::codec`] for what
//! ovsdb-server does with each kind of bad input. In short:
//!
//! - Between messages only JSON whitespace (space, tab, CR, LF) may appear.
//!   Anything else that does not start an object or an array is
//!   [`CodecError::Syntax`] (ovsdb-server: "syntax error at beginning of
//!   input" / "invalid keyword", connection dropped). A top-level *array* is
//!   valid framing: it decodes, and [`Message::from_json`] then rejects it
//!   with "message is not a JSON object", as ovsdb-server does.
//! - Nesting deeper than 1000 levels is a syntax error, as in lib/json.c
//!   ("input exceeds maximum nesting depth 1000"). Note: serde_json (without
//!   its `unbounded_depth` feature) stops at 128 levels, so values nested
//!   129..=1000 deep are a syntax error here but not in ovsdb-server; no
//!   OVSDB message nests anywhere near that deep.
//! - `\u0000` in a string is a syntax error ("null bytes not supported in
//!   quoted strings"), as in lib/json.c; so are raw control characters in
//!   strings, bad escapes, lone surrogates, numbers out of range (`1e400`).
//! - Invalid UTF-8 is [`CodecError::InvalidUtf8`]. This is stricter than
//!   ovsdb-server 3.1, whose reader passes invalid bytes through (`echo`
//!   returns them as they came; `transact` then fails that one operation with
//!   `constraint violation`, "not a valid UTF-8 string"): Rust strings must be
//!   UTF-8, and no OVSDB client sends anything else.
//! - A message longer than the codec's `max_size` is [`CodecError::TooLarge`]
//!   as soon as the buffered bytes of the message exceed the limit, without
//!   buffering the rest. ovsdb-server has no such limit (it echoes a 70 MB
//!   message); the default here, 64 MiB, is far above what ovn-northd sends.
//! - Numbers are read as lib/json.c reads them ([`crate::data::number`]): a
//!   number written with a fraction or exponent whose value is an integer in
//!   the 64-bit range (`1.0`, `1e2`, `-0.0`) becomes an integer, so that
//!   echoing or storing it gives the same bytes as ovsdb-server (`1`, `100`,
//!   `0`); any other number is a real (`9223372036854775808`,
//!   `1.0000000000000001`); a number out of range (`1e400`, subnormal reals)
//!   is a syntax error that drops the connection, as in ovsdb-server.
//!
//! Encoding writes compact JSON exactly as lib/json.c's serializer does:
//! no spaces, integers in decimal, reals as C's `%.15g`
//! ([`crate::data::format_g15`]), strings with `"` `\` and control characters
//! escaped (`\b \f \n \r \t`, others `\u00xx` in lower-case hex), `/`, DEL and
//! non-ASCII left raw. Object members come in the order of the
//! `serde_json::Map` (sorted by key, unless some crate turns on serde_json's
//! `preserve_order`); ovsdb-server's own order is its hash order, which no
//! client depends on. JSON-RPC envelopes ([`Message`]) are written with
//! ovsdb-server's member order, see [`Message::write`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde_json::Value;
use tokio_util::codec::{Decoder, Encoder};

use super::jsonrpc::{Message, UpdateNotification};

/// The default limit on the size of one received message: 64 MiB, well above
/// ovn-northd's largest transactions.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;

/// Maximum nesting of arrays and objects, as lib/json.c's `JSON_MAX_HEIGHT`.
pub const MAX_NESTING_DEPTH: u32 = 1000;

/// Why a stream of JSON-RPC messages could not be decoded (or written). Every
/// decoding error is fatal to the connection: ovsdb-server drops the
/// connection, without a reply, on each of them.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A message was longer than the configured limit.
    #[error(
        "JSON-RPC message larger than the {limit}-byte limit; dropping the \
         connection (if this peer's messages are legitimate, raise the \
         maximum message size)"
    )]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The bytes of a message were not valid UTF-8.
    #[error(
        "JSON-RPC message is not valid UTF-8; OVSDB peers must send UTF-8 \
         JSON text, dropping the connection"
    )]
    InvalidUtf8,
    /// The bytes were not JSON, or not a JSON object or array at the top level.
    #[error("JSON syntax error in JSON-RPC stream: {0}; dropping the connection")]
    Syntax(String),
    /// Reading from or writing to the connection failed.
    #[error("I/O error on JSON-RPC connection: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the scanner is inside the current message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Outside strings.
    Value,
    /// Inside a string.
    Str,
    /// Inside a string, just after a backslash.
    Escape,
    /// Inside a `\uXXXX` escape: `digits` hex digits read so far, `nonzero`
    /// whether any of them was not `0`.
    Unicode { digits: u8, nonzero: bool },
}

/// A [`Decoder`] of back-to-back JSON values (each a JSON-RPC message) and an
/// [`Encoder`] of messages in ovsdb-server's output format.
///
/// Encoder items:
/// - [`Bytes`]: a message encoded beforehand (e.g. by [`encode_message`] or
///   [`Message::encode`]), written as is;
/// - `&Value` / `Value`: any JSON value, written with [`write_json`];
/// - [`Message`] / `&Message`: a JSON-RPC message, with ovsdb-server's
///   member order ([`Message::write`]);
/// - [`UpdateNotification`] / `&UpdateNotification`: a monitor notification
///   around a body encoded once and shared between sessions.
///
/// After a decoding error the codec's state is meaningless: drop the
/// connection (ovsdb-server does).
#[derive(Debug, Clone)]
pub struct JsonCodec {
    max_size: usize,
    /// Whether a message has started (its first byte is `buf[0]`).
    in_message: bool,
    /// Bytes of the current message scanned so far.
    pos: usize,
    depth: u32,
    lex: Lex,
    /// The last byte seen outside strings (to spot exponents: a digit then `e`).
    prev: u8,
    /// Whether a number needing a closer look was seen: one with a fraction
    /// or an exponent, or a long run of digits (possibly beyond 64 bits).
    has_real: bool,
    /// Consecutive digits seen outside strings (saturating).
    digits: u8,
}

impl Default for JsonCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonCodec {
    /// A codec with the default size limit, [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub fn new() -> Self {
        Self::with_max_size(DEFAULT_MAX_MESSAGE_SIZE)
    }

    /// A codec that rejects received messages longer than `max_size` bytes.
    pub fn with_max_size(max_size: usize) -> Self {
        JsonCodec {
            max_size: max_size.max(1),
            in_message: false,
            pos: 0,
            depth: 0,
            lex: Lex::Value,
            prev: 0,
            has_real: false,
            digits: 0,
        }
    }

    /// The size limit on received messages, in bytes.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Changes the size limit on received messages.
    pub fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size.max(1);
    }

    /// Whether part of a message has been received but not yet all of it.
    pub fn is_mid_message(&self) -> bool {
        self.in_message
    }

    fn reset(&mut self) {
        self.in_message = false;
        self.pos = 0;
        self.depth = 0;
        self.lex = Lex::Value;
        self.prev = 0;
        self.has_real = false;
        self.digits = 0;
    }

    /// Scans `data` (the current message from its first byte) from
    /// `self.pos`; returns the length of the message once its end is seen.
    fn scan(&mut self, data: &[u8]) -> Result<Option<usize>, CodecError> {
        let n = data.len();
        let mut i = self.pos;
        let mut depth = self.depth;
        let mut lex = self.lex;
        let mut prev = self.prev;
        let mut has_real = self.has_real;
        let mut digits = self.digits;
        let mut end = None;

        'scan: while i < n {
            match lex {
                Lex::Str => {
                    // Fast path: skip ordinary string bytes, eight at a time
                    // while there are eight, then one at a time.
                    while let Some(chunk) = data.get(i..i + 8) {
                        let mut word = [0u8; 8];
                        word.copy_from_slice(chunk);
                        let special = string_specials(u64::from_le_bytes(word));
                        if special != 0 {
                            i += (special.trailing_zeros() / 8) as usize;
                            break;
                        }
                        i += 8;
                    }
                    while i < n && !STRING_SPECIAL[data[i] as usize] {
                        i += 1;
                    }
                    if i == n {
                        break;
                    }
                    let b = data[i];
                    i += 1;
                    match b {
                        b'"' => lex = Lex::Value,
                        b'\\' => lex = Lex::Escape,
                        _ => {
                            return Err(CodecError::Syntax(format!(
                                "U+{b:04X} must be escaped in quoted string"
                            )))
                        }
                    }
                }
                Lex::Escape => {
                    let b = data[i];
                    i += 1;
                    lex = if b == b'u' {
                        Lex::Unicode {
                            digits: 0,
                            nonzero: false,
                        }
                    } else {
                        // serde_json checks the escape letter when it parses.
                        Lex::Str
                    };
                }
                Lex::Unicode { digits, nonzero } => {
                    let b = data[i];
                    i += 1;
                    if !b.is_ascii_hexdigit() {
                        return Err(CodecError::Syntax("malformed \\u escape".into()));
                    }
                    let nonzero = nonzero || b != b'0';
                    lex = if digits == 3 {
                        if !nonzero {
                            return Err(CodecError::Syntax(
                                "null bytes not supported in quoted strings".into(),
                            ));
                        }
                        Lex::Str
                    } else {
                        Lex::Unicode {
                            digits: digits + 1,
                            nonzero,
                        }
                    };
                }
                Lex::Value => {
                    // Outside strings until a string starts or the message ends.
                    while i < n {
                        let b = data[i];
                        i += 1;
                        if b.is_ascii_digit() {
                            // 19 digits or more may be beyond the 64-bit range.
                            digits = digits.saturating_add(1);
                            has_real |= digits >= 19;
                            prev = b;
                            continue;
                        }
                        digits = 0;
                        match b {
                            b'"' => {
                                prev = b;
                                lex = Lex::Str;
                                break;
                            }
                            b'{' | b'[' => {
                                depth += 1;
                                if depth > MAX_NESTING_DEPTH {
                                    return Err(CodecError::Syntax(format!(
                                        "input exceeds maximum nesting depth {MAX_NESTING_DEPTH}"
                                    )));
                                }
                            }
                            b'}' | b']' => {
                                depth -= 1;
                                if depth == 0 {
                                    end = Some(i);
                                    prev = b;
                                    break 'scan;
                                }
                            }
                            b'.' => has_real = true,
                            b'e' | b'E' if prev.is_ascii_digit() => has_real = true,
                            _ => {}
                        }
                        prev = b;
                    }
                }
            }
        }

        self.pos = i;
        self.depth = depth;
        self.lex = lex;
        self.prev = prev;
        self.has_real = has_real;
        self.digits = digits;
        Ok(end)
    }
}

/// The bytes of `word` (eight bytes, the first in the lowest) that end the
/// fast path inside a string, each flagged by its top bit: exact up to the
/// first one flagged (the carries of the subtractions can flag bytes after
/// it, never before), which is all the scanner uses.
fn string_specials(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & TOPS;
    let quote = zero_in(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word & TOPS;
    quote | backslash | control
}

/// Bytes that end the fast path inside a string: `"`, `\` and control characters.
static STRING_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// One JSON text cut from the stream, not yet parsed: a session may decode
/// some requests straight from the bytes (see `codec::cond_change`).
#[derive(Debug, Clone)]
pub struct Frame {
    /// The text, checked to be UTF-8.
    pub text: Bytes,
    /// Whether a number in it has a fraction or exponent (it then needs
    /// ovsdb-server's number rules, which only the `Value` path applies).
    pub has_real: bool,
}

impl Frame {
    /// The text as a `str`, for serde_json's `from_str`: read from a
    /// `str`, serde_json does not check each string it meets for UTF-8
    /// again (from bytes, that check was a tenth of a small transaction's
    /// decoding). Checking the whole text once more costs far less.
    pub fn as_str(&self) -> Result<&str, CodecError> {
        std::str::from_utf8(&self.text).map_err(|_| CodecError::InvalidUtf8)
    }

    /// The text as a JSON value, numbers read as ovsdb-server reads them.
    pub fn parse(&self) -> Result<Value, CodecError> {
        let mut value: Value =
            serde_json::from_str(self.as_str()?).map_err(|e| CodecError::Syntax(e.to_string()))?;
        if self.has_real {
            normalize_numbers(&mut value)?;
        }
        Ok(value)
    }
}

impl JsonCodec {
    /// The next whole JSON text of the stream, unparsed (UTF-8 checked).
    pub fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        if !self.in_message {
            let skip = buf
                .iter()
                .position(|&b| !is_json_whitespace(b))
                .unwrap_or(buf.len());
            buf.advance(skip);
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            if first != b'{' && first != b'[' {
                return Err(CodecError::Syntax(format!(
                    "expected a JSON object at beginning of input, found {} \
                     (is the peer speaking OVSDB JSON-RPC?)",
                    describe_byte(first)
                )));
            }
            self.reset();
            self.in_message = true;
        }

        // Never scan (or wait for) more than one byte past the limit.
        let limit = self.max_size;
        let window = buf.len().min(limit.saturating_add(1));
        let end = match self.scan(&buf[..window])? {
            Some(end) if end <= limit => end,
            Some(_) => return Err(CodecError::TooLarge { limit }),
            None if window > limit => return Err(CodecError::TooLarge { limit }),
            None => return Ok(None),
        };

        let has_real = self.has_real;
        self.reset();
        std::str::from_utf8(&buf[..end]).map_err(|_| CodecError::InvalidUtf8)?;
        let text = buf.split_to(end).freeze();
        Ok(Some(Frame { text, has_real }))
    }

    /// [`JsonCodec::decode_frame`] at the end of input: a message cut short
    /// is dropped silently, as ovsdb-server drops it when the peer closes.
    pub fn decode_frame_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        match self.decode_frame(buf)? {
            Some(f) => Ok(Some(f)),
            None => {
                buf.clear();
                self.reset();
                Ok(None)
            }
        }
    }
}

/// A [`JsonCodec`] that yields [`Frame`]s, for readers that parse them
/// themselves.
#[derive(Debug, Clone)]
pub struct FrameCodec(pub JsonCodec);

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        self.0.decode_frame(buf)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        self.0.decode_frame_eof(buf)
    }
}

impl Decoder for JsonCodec {
    type Item = Value;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, CodecError> {
        match self.decode_frame(buf)? {
            Some(f) => f.parse().map(Some),
            None => Ok(None),
        }
    }

    /// At end of input, a message cut short is dropped silently, as
    /// ovsdb-server drops it when the peer closes the connection.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, CodecError> {
        match self.decode(buf)? {
            Some(v) => Ok(Some(v)),
            None => {
                buf.clear();
                self.reset();
                Ok(None)
            }
        }
    }
}

/// Reads numbers as lib/json.c's number lexer does, see
/// [`crate::data::number::read_numbers`].
fn normalize_numbers(v: &mut Value) -> Result<(), CodecError> {
    crate::data::number::read_numbers(v).map_err(|e| CodecError::Syntax(e.to_string()))
}

impl Encoder<Bytes> for JsonCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

impl Encoder<&Value> for JsonCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Value, dst: &mut BytesMut) -> Result<(), CodecError> {
        write_json(item, dst);
        Ok(())
    }
}

impl Encoder<Value> for JsonCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Value, dst: &mut BytesMut) -> Result<(), CodecError> {
        write_json(&item, dst);
        Ok(())
    }
}

impl Encoder<&Message> for JsonCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.write(dst);
        Ok(())
    }
}

impl Encoder<Message> for JsonCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.write(dst);
        Ok(())
    }
}

impl Encoder<&UpdateNotification> for JsonCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &UpdateNotification, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.write(dst);
        Ok(())
    }
}

impl Encoder<UpdateNotification> for JsonCodec {
    type Error = CodecError;

    fn encode(&mut self, item: UpdateNotification, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.write(dst);
        Ok(())
    }
}

/// Encodes `v` as one message, compact, in ovsdb-server's format.
pub fn encode_message(v: &Value) -> Bytes {
    let mut out = BytesMut::with_capacity(128);
    write_json(v, &mut out);
    out.freeze()
}

/// Appends `v` to `out` as compact JSON in ovsdb-server's format: reals as
/// `%.15g`, integers beyond `i64` (which lib/json.c reads as reals) as reals
/// too, strings escaped as lib/json.c escapes them.
pub fn write_json(v: &Value, out: &mut BytesMut) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            match crate::data::number::real_or_integer(n) {
                Ok(i) => write_i64(i, out),
                // Beyond i64, or a real: as ovsdb-server prints its reals.
                Err(f) => out.extend_from_slice(crate::data::format_g15(f).as_bytes()),
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Array(a) => {
            out.put_u8(b'[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                write_json(e, out);
            }
            out.put_u8(b']');
        }
        Value::Object(m) => {
            out.put_u8(b'{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                write_str(k, out);
                out.put_u8(b':');
                write_json(e, out);
            }
            out.put_u8(b'}');
        }
    }
}

/// About how many bytes [`write_json`] writes for `v` (exact for text
/// without escapes; numbers counted at 20): enough to size a buffer once.
/// Growing a buffer by doubling instead costs, for a reply of a thousand
/// inserted rows, eight reallocations, and in glibc each large one sorts
/// every free chunk of a fragmented heap.
pub fn json_len_hint(v: &Value) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(_) => 20,
        Value::String(s) => s.len() + 2,
        // Brackets, commas between elements, then the elements.
        Value::Array(a) => {
            2 + a.len().saturating_sub(1) + a.iter().map(json_len_hint).sum::<usize>()
        }
        Value::Object(m) => {
            let members = m.iter().map(|(k, e)| k.len() + 3 + json_len_hint(e));
            2 + m.len().saturating_sub(1) + members.sum::<usize>()
        }
    }
}

/// Appends a decimal integer.
pub(crate) fn write_i64(v: i64, out: &mut BytesMut) {
    if v < 0 {
        out.put_u8(b'-');
    }
    out.extend_from_slice(crate::data::datum_json::decimal(
        v.unsigned_abs(),
        &mut [0u8; 20],
    ));
}

/// For each byte: 0 if it is written as is, else the letter of its escape
/// (`u` for `\u00xx`).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string, escaped as lib/json.c escapes strings.
pub fn write_str(s: &str, out: &mut BytesMut) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.put_u8(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if e == b'u' {
            out.extend_from_slice(b"\\u00");
            out.put_u8(HEX[(b >> 4) as usize]);
            out.put_u8(HEX[(b & 15) as usize]);
        } else {
            out.put_u8(b'\\');
            out.put_u8(e);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn decode_all(codec: &mut JsonCodec, buf: &mut BytesMut) -> Result<Vec<Value>, CodecError> {
        let mut out = Vec::new();
        while let Some(v) = codec.decode(buf)? {
            out.push(v);
        }
        Ok(out)
    }

    fn decode_str(s: &[u8]) -> Result<Vec<Value>, CodecError> {
        let mut codec = JsonCodec::new();
        let mut buf = BytesMut::from(s);
        decode_all(&mut codec, &mut buf)
    }

    fn text(v: &Value) -> String {
        String::from_utf8(encode_message(v).to_vec()).unwrap()
    }

    /// The hint is the written length for text without escapes or
    /// numbers, and at least it when numbers are short.
    #[test]
    fn json_len_hint_sizes_what_write_json_writes() {
        let exact = json!({"a": [true, null, "xyz", {"b": []}], "cd": {}, "e": false});
        assert_eq!(json_len_hint(&exact), encode_message(&exact).len());
        let with_numbers = json!([1, -2.5, 12345678, {"n": 0}]);
        assert!(json_len_hint(&with_numbers) >= encode_message(&with_numbers).len());
    }

    #[test]
    fn splits_back_to_back_messages() {
        let input =
            br#"{"method":"echo","params":[],"id":1}{"method":"echo","params":[2],"id":2}[3]"#;
        let got = decode_str(input).unwrap();
        assert_eq!(
            got,
            vec![
                json!({"method":"echo","params":[],"id":1}),
                json!({"method":"echo","params":[2],"id":2}),
                json!([3]),
            ]
        );
    }

    #[test]
    fn whitespace_between_and_around_messages() {
        let input = b" \r\n\t{\"a\":1}  \n {\"b\":[ 1 , 2 ]}\t\r\n ";
        let mut codec = JsonCodec::new();
        let mut buf = BytesMut::from(&input[..]);
        let got = decode_all(&mut codec, &mut buf).unwrap();
        assert_eq!(got, vec![json!({"a":1}), json!({"b":[1,2]})]);
        assert!(buf.is_empty(), "trailing whitespace is consumed");
        assert!(!codec.is_mid_message());
    }

    #[test]
    fn strings_with_braces_and_escaped_quotes() {
        let input = br#"{"s":"}]{[\"\\","t":"\\\"}"}{"u":"\u007b\"}"}"#;
        let got = decode_str(input).unwrap();
        assert_eq!(
            got,
            vec![json!({"s":"}]{[\"\\","t":"\\\"}"}), json!({"u":"{\"}"})]
        );
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let input: &[u8] =
            br#" {"method":"transact","params":["db",{"op":"insert","row":{"s":"a\"}\\\u00e9]"}}],"id":"x"} [1.5,{"k":[]}]"#;
        let whole = decode_str(input).unwrap();
        assert_eq!(whole.len(), 2);
        for cut in 0..=input.len() {
            let mut codec = JsonCodec::new();
            let mut buf = BytesMut::from(&input[..cut]);
            let mut got = decode_all(&mut codec, &mut buf).unwrap();
            buf.extend_from_slice(&input[cut..]);
            got.extend(decode_all(&mut codec, &mut buf).unwrap());
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time_scans_incrementally() {
        let input = br#"{"a":"\u00e9\\","b":[[[{}]]]}{"c":1}"#;
        let mut codec = JsonCodec::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in input.iter() {
            buf.put_u8(b);
            got.extend(decode_all(&mut codec, &mut buf).unwrap());
        }
        assert_eq!(got, vec![json!({"a":"é\\","b":[[[{}]]]}), json!({"c":1})]);
    }

    #[test]
    fn big_message_in_small_pieces_is_scanned_once() {
        // 10 MB in 4 KB pieces: a rescan per piece would read ~12 GB here.
        let big = "x\\\"{".repeat(10 << 18);
        let msg = encode_message(&json!({"method":"echo","params":[big],"id":1}));
        assert!(msg.len() > 10 << 20);
        let mut codec = JsonCodec::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let started = std::time::Instant::now();
        for piece in msg.chunks(4096) {
            buf.extend_from_slice(piece);
            got.extend(decode_all(&mut codec, &mut buf).unwrap());
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["params"][0].as_str().map(str::len), Some(10 << 20));
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn incomplete_message_waits() {
        let mut codec = JsonCodec::new();
        let mut buf = BytesMut::from(&br#"{"method":"echo","params":[], "id":1"#[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(codec.is_mid_message());
        buf.extend_from_slice(b"}");
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(json!({"method":"echo","params":[],"id":1}))
        );
    }

    #[test]
    fn eof_mid_message_is_dropped() {
        let mut codec = JsonCodec::new();
        let mut buf = BytesMut::from(&br#"{"a":1}{"b":"#[..]);
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), Some(json!({"a":1})));
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn too_large_detected_without_buffering_it_all() {
        let limit = 1000;
        let mut codec = JsonCodec::with_max_size(limit);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(br#"{"method":"echo","params":[""#);
        let mut fed = buf.len();
        let chunk = [b'a'; 64];
        let err = loop {
            buf.extend_from_slice(&chunk);
            fed += chunk.len();
            match codec.decode(&mut buf) {
                Ok(None) => assert!(fed <= limit + chunk.len(), "kept buffering past the limit"),
                Ok(Some(v)) => panic!("decoded {v}"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, CodecError::TooLarge { limit: 1000 }), "{err}");
        assert!(fed <= limit + chunk.len());
    }

    #[test]
    fn too_large_complete_message() {
        let msg = encode_message(&json!({"method":"echo","params":["x".repeat(100)],"id":1}));
        let mut codec = JsonCodec::with_max_size(msg.len() - 1);
        let mut buf = BytesMut::from(&msg[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::TooLarge { .. })
        ));
        // Exactly at the limit is fine.
        let mut codec = JsonCodec::with_max_size(msg.len());
        let mut buf = BytesMut::from(&msg[..]);
        assert!(codec.decode(&mut buf).unwrap().is_some());
    }

    #[test]
    fn limit_applies_per_message() {
        let one = encode_message(&json!({"a":"x".repeat(50)}));
        let mut codec = JsonCodec::with_max_size(one.len());
        let mut buf = BytesMut::new();
        for _ in 0..10 {
            buf.extend_from_slice(&one);
        }
        assert_eq!(decode_all(&mut codec, &mut buf).unwrap().len(), 10);
    }

    #[test]
    fn invalid_utf8() {
        for input in [
            &b"{\"a\":\"\xff\xfe\"}"[..],
            &b"{\"a\":\"\xc3\"}"[..],
            &b"{\"a\":\"\xed\xa0\x80\"}"[..], // encoded surrogate
        ] {
            let err = decode_str(input).unwrap_err();
            assert!(matches!(err, CodecError::InvalidUtf8), "{err}");
        }
        // Valid multi-byte UTF-8 passes, raw.
        assert_eq!(
            decode_str("{\"a\":\"é😀\"}".as_bytes()).unwrap(),
            vec![json!({"a":"é😀"})]
        );
    }

    #[test]
    fn top_level_non_object() {
        for input in [
            &b"42 "[..],
            b"\"abc\"",
            b"null ",
            b"true",
            b"x",
            b"\xef\xbb\xbf{}",
            b"}",
        ] {
            let err = decode_str(input).unwrap_err();
            match err {
                CodecError::Syntax(s) => assert!(s.contains("beginning of input"), "{s}"),
                e => panic!("{e}"),
            }
        }
        // An array frames fine; the JSON-RPC layer rejects it.
        assert_eq!(decode_str(b"[1,2]").unwrap(), vec![json!([1, 2])]);
        // Garbage after a good message: the good message comes first.
        let mut codec = JsonCodec::new();
        let mut buf = BytesMut::from(&b"{\"a\":1}, {\"b\":2}"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(json!({"a":1})));
        assert!(matches!(codec.decode(&mut buf), Err(CodecError::Syntax(_))));
    }

    #[test]
    fn syntax_errors() {
        for input in [
            &b"{bad json}"[..],
            b"{\"a\":[1,]}",
            b"{\"a\":01}",
            b"{\"a\":tru}",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":\"\\ud83d\"}",
            b"{\"a\":1e400}",
            b"{\"a\":1e-310}",
            b"{\"a\":1]",
        ] {
            let err = decode_str(input).unwrap_err();
            assert!(matches!(err, CodecError::Syntax(_)), "{input:?}: {err}");
        }
    }

    #[test]
    fn lib_json_string_rules() {
        // Raw control characters in strings.
        let err = decode_str(b"{\"a\":\"x\ny\"}").unwrap_err();
        assert!(err.to_string().contains("U+000A must be escaped"), "{err}");
        // \u0000 is refused, as lib/json.c refuses it.
        let err = decode_str(br#"{"a":"\u0000"}"#).unwrap_err();
        assert!(
            err.to_string().contains("null bytes not supported"),
            "{err}"
        );
        // ... but not other \u escapes with zeros in them.
        assert_eq!(
            decode_str(br#"{"a":"\u0100\u0010"}"#).unwrap(),
            vec![json!({"a":"\u{100}\u{10}"})]
        );
        // A malformed \u escape must not swallow the closing quote.
        let err = decode_str(br#"{"a":"\u12"}"#).unwrap_err();
        assert!(err.to_string().contains("malformed"), "{err}");
    }

    #[test]
    fn nesting_limit() {
        let deep = |n: usize| {
            let mut s = Vec::new();
            s.extend(std::iter::repeat_n(b'[', n));
            s.extend(std::iter::repeat_n(b']', n));
            s
        };
        let err = decode_str(&deep(1001)).unwrap_err();
        assert!(
            err.to_string().contains("maximum nesting depth 1000"),
            "{err}"
        );
        assert_eq!(decode_str(&deep(100)).unwrap().len(), 1);
    }

    #[test]
    fn numbers_read_as_lib_json_reads_them() {
        // The params of an echo sent to ovsdb-server 3.1, and its reply.
        let input = br#"{"params":[1.0,1e2,-0.0,-0,1.5,12345678901234567890,-9223372036854775808,9223372036854775807,9223372036854775808,1e-5,123456789012345678,0.30000000000000004,1e15,1e16,-1.5e-300,2.2250738585072014e-308,1.7976931348623157e308,100000000000000000000000]}"#;
        let v = decode_str(input).unwrap().remove(0);
        assert_eq!(
            text(&v["params"]),
            "[1,100,0,0,1.5,1.23456789012346e+19,-9223372036854775808,9223372036854775807,9.22337203685478e+18,1e-05,123456789012345678,0.3,1000000000000000,10000000000000000,-1.5e-300,2.2250738585072e-308,1.79769313486232e+308,1e+23]"
        );
        assert!(v["params"][0].is_i64());
        assert!(v["params"][4].is_f64());
        // "true" and "false" contain an 'e' but no number does here.
        assert_eq!(
            decode_str(br#"[true,false,1]"#).unwrap(),
            vec![json!([true, false, 1])]
        );
    }

    #[test]
    fn reals_formatting() {
        assert_eq!(
            text(&json!([2.0, 0.1, 1e300, 1.5, -2.5e-7, 123456789.125])),
            "[2,0.1,1e+300,1.5,-2.5e-07,123456789.125]"
        );
        assert_eq!(
            text(&json!([0.1 + 0.2, 1.0 / 3.0])),
            "[0.3,0.333333333333333]"
        );
        assert_eq!(
            text(&json!([u64::MAX, i64::MIN, i64::MAX, 0, -1])),
            "[1.84467440737096e+19,-9223372036854775808,9223372036854775807,0,-1]"
        );
    }

    #[test]
    fn string_escaping_matches_ovsdb_server() {
        // What ovsdb-server 3.1 echoed for "\u007f\b\f\n\r\t\u0010 \x7f é 😀 \/".
        let v = json!([
            "\u{7f}\u{8}\u{c}\n\r\t\u{10} \u{7f} é 😀 /",
            "\"\\",
            "\u{1f}\u{0}"
        ]);
        assert_eq!(
            text(&v),
            "[\"\u{7f}\\b\\f\\n\\r\\t\\u0010 \u{7f} é 😀 /\",\"\\\"\\\\\",\"\\u001f\\u0000\"]"
        );
        assert_eq!(
            text(&json!({"k\"":{"a\n":null}})),
            r#"{"k\"":{"a\n":null}}"#
        );
    }

    #[test]
    fn encoder_items() {
        let mut codec = JsonCodec::new();
        let mut out = BytesMut::new();
        Encoder::<Bytes>::encode(&mut codec, Bytes::from_static(b"{\"x\":1}"), &mut out).unwrap();
        codec.encode(&json!([1.0]), &mut out).unwrap();
        codec.encode(json!({"a":"b"}), &mut out).unwrap();
        assert_eq!(&out[..], br#"{"x":1}[1]{"a":"b"}"#);
    }

    // ---- property tests ----

    /// Reals that survive `%.15g` exactly and are not integers.
    fn arb_real() -> impl Strategy<Value = f64> {
        (-1_000_000i64..1_000_000, 0u32..4)
            .prop_map(|(k, p)| (2 * k + 1) as f64 / 2f64.powi(p as i32 + 1))
    }

    fn arb_string() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z{}\\[\\]\"\\\\:,/ ]{0,12}",
            any::<String>().prop_map(|s| s.replace('\0', "")),
            Just("\u{1}\u{1f}\u{7f}\t\n\"\\é😀".to_string()),
        ]
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            arb_real().prop_map(Value::from),
            arb_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(arb_string(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_message() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::collection::vec(arb_json(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(arb_string(), arb_json(), 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn word_scan_finds_the_first_special_byte(
            bytes in prop::array::uniform8(prop::sample::select(vec![
                0u8, 0x01, 0x1f, 0x20, 0x21, b'"', b'#', b'\\', b'[', b'a', 0x7f, 0x80, 0xc3, 0xff,
            ])),
        ) {
            let first = bytes.iter().position(|&b| STRING_SPECIAL[b as usize]);
            let special = string_specials(u64::from_le_bytes(bytes));
            let found = (special != 0).then(|| (special.trailing_zeros() / 8) as usize);
            prop_assert_eq!(found, first);
        }

        #[test]
        fn back_to_back_in_random_chunks(
            msgs in prop::collection::vec(arb_message(), 1..6),
            seps in prop::collection::vec(prop::sample::select(vec!["", "", " ", "\n", " \t\r\n "]), 6),
            chunks in prop::collection::vec(1usize..40, 1..200),
        ) {
            let mut stream = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                stream.extend_from_slice(seps[i].as_bytes());
                stream.extend_from_slice(&encode_message(m));
            }
            let mut codec = JsonCodec::new();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut at = 0;
            let mut k = 0;
            while at < stream.len() {
                let n = chunks[k % chunks.len()].min(stream.len() - at);
                k += 1;
                buf.extend_from_slice(&stream[at..at + n]);
                at += n;
                got.extend(decode_all(&mut codec, &mut buf).unwrap());
            }
            prop_assert_eq!(got, msgs);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn write_json_matches_serde_json_without_reals(v in arb_json()) {
            fn has_real(v: &Value) -> bool {
                match v {
                    Value::Number(n) => n.is_f64(),
                    Value::Array(a) => a.iter().any(has_real),
                    Value::Object(o) => o.values().any(has_real),
                    _ => false,
                }
            }
            prop_assume!(!has_real(&v));
            prop_assert_eq!(text(&v), serde_json::to_string(&v).unwrap());
        }

        #[test]
        fn encoding_round_trips(v in arb_message()) {
            let bytes = encode_message(&v);
            let back = decode_str(&bytes).unwrap();
            prop_assert_eq!(back.len(), 1);
            prop_assert_eq!(&back[0], &v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200), cut in 0usize..200) {
            let mut codec = JsonCodec::with_max_size(100);
            let cut = cut.min(data.len());
            let mut buf = BytesMut::from(&data[..cut]);
            let mut ok = decode_all(&mut codec, &mut buf).is_ok();
            if ok {
                buf.extend_from_slice(&data[cut..]);
                ok = decode_all(&mut codec, &mut buf).is_ok();
            }
            let _ = ok;
        }
    }
}
