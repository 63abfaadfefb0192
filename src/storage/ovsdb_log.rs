//! The record framing of OVSDB standalone database files (ovsdb(5)).
//!
//! A file is a sequence of records, each
//!
//! ```text
//! OVSDB JSON <length> <sha1>\n
//! <length bytes: one JSON value, then a new-line>
//! ```
//!
//! where `<length>` is the decimal byte count of the body (the new-line
//! included, as ovsdb-server writes it) and `<sha1>` the SHA-1 of those bytes
//! in 40 hex digits. The first record is the schema, each later one a
//! transaction (see `ovsdb_txn`). This module only frames and checks records:
//! [`encode`] writes one exactly as `ovsdb_log_write()` does, and
//! [`LogReader`] reads them back, stopping with [`ReadError::Bad`] at the
//! first record that is truncated, has a bad header, a wrong length or hash,
//! or is not JSON — the point after which ovsdb(7) says a file is cut.

use super::sha1::{self, Sha1};
use serde_json::Value;
use std::io::{self, BufRead, Read};

/// The header magic of standalone records.
pub const MAGIC: &[u8] = b"OVSDB JSON ";
/// The header magic of clustered (Raft) database files.
pub const CLUSTER_MAGIC: &[u8] = b"OVSDB CLUSTER ";
/// ovsdb-server reads a header line with `fgets()` into 128 bytes.
const MAX_HEADER: usize = 128;

/// One record as written: header and body.
pub fn encode(json: &Value) -> Vec<u8> {
    // serde_json::to_vec cannot fail for a Value.
    let mut body = serde_json::to_vec(json).unwrap_or_default();
    body.push(b'\n');
    encode_body(&body)
}

/// One record around a body that already ends with its new-line.
pub fn encode_body(body: &[u8]) -> Vec<u8> {
    let header = format!(
        "OVSDB JSON {} {}\n",
        body.len(),
        sha1::to_hex(&sha1::sha1(body))
    );
    let mut out = Vec::with_capacity(header.len() + body.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

/// A record read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Where its header starts.
    pub offset: u64,
    /// Just past its body: where the next record starts.
    pub end: u64,
    /// The body.
    pub json: Value,
}

/// Why [`LogReader::read`] stopped.
#[derive(Debug)]
pub enum ReadError {
    /// Reading the file failed (not a property of its contents).
    Io(io::Error),
    /// The record at `offset` is damaged or incomplete; `message` says how,
    /// in ovsdb-server's words.
    Bad {
        /// Where the bad record starts (the end of the last good one).
        offset: u64,
        /// What is wrong.
        message: String,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "read failed: {e}"),
            ReadError::Bad { message, .. } => f.write_str(message),
        }
    }
}

/// Reads records one by one from a buffered reader positioned at a record
/// boundary (normally the start of the file).
pub struct LogReader<R> {
    r: R,
    offset: u64,
}

impl<R: BufRead> LogReader<R> {
    /// A reader whose first byte is at file offset 0.
    pub fn new(r: R) -> LogReader<R> {
        LogReader { r, offset: 0 }
    }

    /// The offset just past the last record read successfully.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record; `Ok(None)` at a clean end of file.
    pub fn read(&mut self) -> Result<Option<Record>, ReadError> {
        let start = self.offset;
        let bad = |message: String| ReadError::Bad {
            offset: start,
            message,
        };
        let mut header = Vec::with_capacity(80);
        (&mut self.r)
            .take(MAX_HEADER as u64 - 1)
            .read_until(b'\n', &mut header)
            .map_err(ReadError::Io)?;
        if header.is_empty() {
            return Ok(None);
        }
        let Some((length, expected)) = parse_header(&header) else {
            let line = String::from_utf8_lossy(header.strip_suffix(b"\n").unwrap_or(&header));
            return Err(bad(if header.last() == Some(&b'\n') {
                format!("parse error at offset {start} in header line \"{line}\"")
            } else {
                format!("incomplete header line \"{line}\" at offset {start}")
            }));
        };
        let data_offset = start + header.len() as u64;
        // Never trust the length for an allocation: read what is there.
        let mut body = Vec::with_capacity(length.min(1 << 20) as usize);
        (&mut self.r)
            .take(length)
            .read_to_end(&mut body)
            .map_err(ReadError::Io)?;
        if (body.len() as u64) < length {
            return Err(bad(format!(
                "error reading {length} bytes starting at offset {data_offset}: \
                 the file ends after {} bytes (a truncated record)",
                body.len()
            )));
        }
        let mut h = Sha1::new();
        h.update(&body);
        let actual = h.finish();
        if actual != expected {
            return Err(bad(format!(
                "{length} bytes starting at offset {data_offset} have SHA-1 hash {} \
                 but should have hash {}",
                sha1::to_hex(&actual),
                sha1::to_hex(&expected)
            )));
        }
        let json: Value = match serde_json::from_slice(&body) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
            Ok(other) => {
                return Err(bad(format!(
                    "{length} bytes starting at offset {data_offset} are not a JSON object \
                     or array ({})",
                    kind(&other)
                )))
            }
            Err(e) => {
                return Err(bad(format!(
                    "{length} bytes starting at offset {data_offset} are not valid JSON ({e})"
                )))
            }
        };
        self.offset = data_offset + length;
        Ok(Some(Record {
            offset: start,
            end: self.offset,
            json,
        }))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `OVSDB JSON <length> <sha1>\n` -> (length, sha1).
fn parse_header(h: &[u8]) -> Option<(u64, [u8; 20])> {
    let rest = h.strip_prefix(MAGIC)?.strip_suffix(b"\n")?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let (len, hash) = (&rest[..sp], &rest[sp + 1..]);
    if len.is_empty() || len.len() > 19 || !len.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let length: u64 = std::str::from_utf8(len).ok()?.parse().ok()?;
    if length == 0 {
        return None;
    }
    Some((length, sha1::from_hex(hash)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_all(bytes: &[u8]) -> (Vec<Record>, Option<ReadError>) {
        let mut r = LogReader::new(bytes);
        let mut out = Vec::new();
        loop {
            match r.read() {
                Ok(Some(rec)) => out.push(rec),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn matches_ovsdb_tool_create() {
        // The first record `ovsdb-tool create` wrote for examples/todo.ovsschema.
        let body = br#"{"name":"todo","version":"1.0.0","tables":{"List":{"isRoot":true,"indexes":[["name"]],"columns":{"name":{"type":"string"},"items":{"type":{"max":"unlimited","min":0,"key":{"type":"uuid","refTable":"Item"}}}}},"Item":{"columns":{"description":{"type":"string"},"status":{"type":{"key":{"type":"string","enum":["set",["doing","done","todo"]]}}}}}}}
"#;
        let rec = encode_body(body);
        let header = "OVSDB JSON 347 45e1742f3c18449bb6d1e2de21e5d388fa18b90f\n";
        assert!(rec.starts_with(header.as_bytes()));
        let (recs, err) = read_all(&rec);
        assert!(err.is_none());
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].json["name"], "todo");
        assert_eq!(recs[0].end, rec.len() as u64);
    }

    #[test]
    fn round_trip_and_offsets() {
        let mut file = encode(&json!({"a": 1}));
        let first = file.len() as u64;
        file.extend(encode(&json!({"b": [1, 2, "x\n\u{e9}"]})));
        let (recs, err) = read_all(&file);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].end, first);
        assert_eq!(recs[1].offset, first);
        assert_eq!(recs[1].json, json!({"b": [1, 2, "x\n\u{e9}"]}));
    }

    #[test]
    fn damage_stops_at_the_last_good_record() {
        let good = encode(&json!({"a": 1}));
        let second = encode(&json!({"b": 2}));
        let n = good.len() as u64;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            // A flipped byte in the body.
            (
                {
                    let mut s = second.clone();
                    let i = s.len() - 3;
                    s[i] ^= 1;
                    s
                },
                "SHA-1",
            ),
            // Truncated body.
            (second[..second.len() - 4].to_vec(), "truncated"),
            // Truncated header.
            (second[..10].to_vec(), "incomplete header"),
            // Garbage header.
            (b"GARBAGE\n".to_vec(), "header line"),
            // Length that is not a number.
            (b"OVSDB JSON x 00\n".to_vec(), "header line"),
            // Valid framing around something that is not JSON.
            (encode_body(b"{nope\n"), "not valid JSON"),
        ];
        for (tail, what) in cases {
            let mut file = good.clone();
            file.extend(&tail);
            let (recs, err) = read_all(&file);
            assert_eq!(recs.len(), 1, "{what}");
            match err {
                Some(ReadError::Bad { offset, message }) => {
                    assert_eq!(offset, n, "{what}");
                    assert!(message.contains(what), "{what}: {message}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn huge_declared_length_does_not_allocate_it() {
        let mut file = b"OVSDB JSON 999999999999 ".to_vec();
        file.extend(sha1::to_hex(&sha1::sha1(b"")).as_bytes());
        file.extend(b"\n{}\n");
        let (recs, err) = read_all(&file);
        assert!(recs.is_empty());
        assert!(matches!(err, Some(ReadError::Bad { offset: 0, .. })));
    }
}
