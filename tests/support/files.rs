//! OVSDB database files as the durability tests look at them: record
//! boundaries read directly, and records counted by `ovsdb-tool show-log`.

use std::fs;
use std::path::Path;

use super::clients::ovsdb_tool;

/// The `[start, end)` byte ranges of the well-formed records of an OVSDB
/// standalone file (`OVSDB JSON <len> <sha1>\n` + `len` bytes), up to the
/// first one that is not (the checksum is not verified).
pub fn record_bounds(path: &Path) -> Vec<(u64, u64)> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let header = String::from_utf8_lossy(&bytes[pos..pos + nl]);
        let mut parts = header.split(' ');
        if parts.next() != Some("OVSDB") || parts.next() != Some("JSON") {
            break;
        }
        let Some(len) = parts.next().and_then(|l| l.parse::<usize>().ok()) else {
            break;
        };
        let end = pos + nl + 1 + len;
        if end > bytes.len() {
            break;
        }
        out.push((pos as u64, end as u64));
        pos = end;
    }
    out
}

/// The number of `record N:` lines of `ovsdb-tool show-log FILE`.
pub fn show_log_records(path: &Path) -> usize {
    ovsdb_tool(&[
        std::ffi::OsString::from("show-log"),
        path.as_os_str().to_owned(),
    ])
    .lines()
    .filter(|l| l.starts_with("record "))
    .count()
}
