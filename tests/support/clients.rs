//! Running real OVSDB clients (ovsdb-client, ovn-nbctl, ovs-vsctl, python)
//! with time limits, and normalising their text output so that the outputs
//! against oxsdb and against ovsdb-server can be compared.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::normalize::is_uuid_set_or_map;
pub use super::normalize::{find_uuids, replace_uuids};
use super::rpc::Rpc;
use super::tools::TOOL_TIMEOUT;
pub use super::tools::{cmd, rc, run, run_ok, run_with_input, tool, Background, Output};

// ---------------------------------------------------------------------------
// ovsdb-tool and ovsdb-client as plain commands.

/// `ovsdb-tool ARGS...`, which must succeed.
pub fn ovsdb_tool<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    run_ok(Command::new(tool("ovsdb-tool")).args(args), TOOL_TIMEOUT)
}

/// `ovsdb-client --timeout=30 ARGS...`, which must succeed.
pub fn ovsdb_client<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    run_ok(
        Command::new(tool("ovsdb-client"))
            .arg("--timeout=30")
            .args(args),
        TOOL_TIMEOUT,
    )
}

/// `ovsdb-client transact REMOTE TXN`; returns the parsed result array.
pub fn client_transact(remote: &str, txn: &Value) -> Value {
    let out = ovsdb_client(&["transact".to_string(), remote.to_string(), txn.to_string()]);
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("ovsdb-client transact printed non-JSON ({e}): {out}"));
    if let Some(ops) = v.as_array() {
        for op in ops {
            if op.get("error").is_some() {
                panic!("transaction {txn} failed: {v}");
            }
        }
    }
    v
}

/// `ovsdb-client dump REMOTE DB` (text format: tables by name, rows by
/// `_uuid`, so equal contents with equal UUIDs print identically).
pub fn client_dump(remote: &str, db: &str) -> String {
    ovsdb_client(&["dump", remote, db])
}

/// Sorted values of `column` of every row of `table`, read by `ovsdb-client transact`.
pub fn client_column(remote: &str, db: &str, table: &str, column: &str) -> Vec<Value> {
    let r = client_transact(
        remote,
        &json!([db, {"op": "select", "table": table, "where": [], "columns": [column]}]),
    );
    let mut v: Vec<Value> = r[0]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row[column].clone())
        .collect();
    v.sort_by_key(|a| a.to_string());
    v
}

/// Removes OVS log-line prefixes (`2026-11-22T04:57:27Z|00001|module|LEVEL|`)
/// from the lines of `text`, keeping `module|LEVEL|message`.
pub fn strip_log_timestamps(text: &str) -> String {
    text.lines()
        .map(|l| {
            let parts: Vec<&str> = l.splitn(3, '|').collect();
            if parts.len() == 3
                && parts[0].len() >= 19
                && parts[0].as_bytes()[4] == b'-'
                && parts[1].chars().all(|c| c.is_ascii_digit())
            {
                parts[2].to_string()
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect()
}

/// Names UUIDs in text: known ones (from [`UuidNames::name`] or a canonical
/// labelling of a database) by their name, others `<N>` by first appearance.
#[derive(Default, Debug, Clone)]
pub struct UuidNames {
    names: HashMap<String, String>,
    next: usize,
}

impl UuidNames {
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives `uuid` the name `<name>`.
    pub fn name(&mut self, uuid: &str, name: &str) {
        self.names
            .insert(uuid.to_ascii_lowercase(), format!("<{name}>"));
    }

    /// Gives every UUID of `text` not yet named the next number.
    pub fn number_all(&mut self, text: &str) {
        for u in find_uuids(text) {
            self.get(&u);
        }
    }

    pub fn get(&mut self, uuid: &str) -> String {
        let uuid = uuid.to_ascii_lowercase();
        if let Some(n) = self.names.get(&uuid) {
            return n.clone();
        }
        let n = format!("<{}>", self.next);
        self.next += 1;
        self.names.insert(uuid, n.clone());
        n
    }

    pub fn known(&self, uuid: &str) -> bool {
        self.names.contains_key(&uuid.to_ascii_lowercase())
    }

    /// Replaces the UUIDs of `text` (numbering new ones in order).
    pub fn text(&mut self, text: &str) -> String {
        let text = canonical_index_message(text);
        replace_uuids(&text, |u| self.get(u))
    }

    /// Replaces the UUIDs in every string of `v` (numbering new ones in order).
    pub fn json(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|e| self.json(e)).collect()),
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, val) in m {
                    out.insert(self.text(k), self.json(val));
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
}

/// ovsdb-server names the two rows of a unique index violation ("...  First
/// row, with UUID A, <how>.  Second row, with UUID B, <how>.") in hash
/// order: puts the two descriptions in the order of their text with UUIDs
/// masked, wherever the message appears in `text`.
pub fn canonical_index_message(text: &str) -> String {
    const FIRST: &str = "  First row, with UUID ";
    const SECOND: &str = "  Second row, with UUID ";
    let (Some(i), Some(j)) = (text.find(FIRST), text.find(SECOND)) else {
        return text.to_string();
    };
    if j < i {
        return text.to_string();
    }
    let first = &text[i + FIRST.len()..j];
    // The second description ends with the sentence: "... transaction."
    let rest = &text[j + SECOND.len()..];
    // It ends at a '.' that ends the string (or the JSON string it is in).
    let bytes = rest.as_bytes();
    let end = (0..bytes.len())
        .find(|&k| bytes[k] == b'.' && matches!(bytes.get(k + 1), None | Some(b'"') | Some(b'\\')))
        .map_or(rest.len(), |k| k + 1);
    let second = &rest[..end];
    let tail = &rest[end..];
    let first_t = first.trim_end_matches('.');
    let second_t = second.trim_end_matches('.');
    let key = |x: &str| replace_uuids(x, |_| "<uuid>".to_string());
    let (a, b) = if key(second_t) < key(first_t) {
        (second_t, first_t)
    } else {
        (first_t, second_t)
    };
    format!("{}{FIRST}{a}.{SECOND}{b}.{tail}", &text[..i])
}

/// Sorts the elements of bracketed, comma-separated lists whose elements are
/// all UUID names (`[<a>, <b>]`), since their order follows UUID values.
pub fn sort_name_lists(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) => {
                let inner = &after[..close];
                let elems: Vec<&str> = inner.split(", ").collect();
                if elems.len() > 1
                    && elems
                        .iter()
                        .all(|e| e.starts_with('<') && e.ends_with('>') && !e[1..].contains('<'))
                {
                    let mut sorted = elems.clone();
                    sorted.sort();
                    out.push('[');
                    out.push_str(&sorted.join(", "));
                    out.push(']');
                } else {
                    out.push('[');
                    out.push_str(inner);
                    out.push(']');
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Sorts an indented listing (`ovn-nbctl show`, `ovs-vsctl show`) as a tree:
/// the children of each line (the lines indented deeper below it) are sorted
/// by their whole text, recursively, so that hash order does not matter.
pub fn sort_tree(text: &str) -> String {
    struct Node {
        line: String,
        children: Vec<Node>,
    }
    fn indent(l: &str) -> usize {
        l.len() - l.trim_start().len()
    }
    fn parse(lines: &[&str], i: &mut usize, level: usize) -> Vec<Node> {
        let mut nodes = Vec::new();
        while *i < lines.len() {
            let l = lines[*i];
            let ind = indent(l);
            if ind < level {
                break;
            }
            *i += 1;
            let mut node = Node {
                line: l.to_string(),
                children: Vec::new(),
            };
            if *i < lines.len() && indent(lines[*i]) > ind {
                let child_level = indent(lines[*i]);
                node.children = parse(lines, i, child_level);
            }
            nodes.push(node);
        }
        nodes
    }
    fn render(n: &Node, out: &mut String) {
        out.push_str(&n.line);
        out.push('\n');
        let mut kids: Vec<String> = n
            .children
            .iter()
            .map(|c| {
                let mut s = String::new();
                render(c, &mut s);
                s
            })
            .collect();
        kids.sort();
        for k in kids {
            out.push_str(&k);
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut tops = Vec::new();
    while i < lines.len() {
        let level = indent(lines[i]);
        tops.extend(parse(&lines, &mut i, level));
    }
    let mut blocks: Vec<String> = tops
        .iter()
        .map(|n| {
            let mut s = String::new();
            render(n, &mut s);
            s
        })
        .collect();
    blocks.sort();
    blocks.concat()
}

/// Sorts the records of a `list` output (records separated by blank lines),
/// after sorting the lists of UUID names in each line.
pub fn sort_records(text: &str) -> String {
    let mut records: Vec<String> = text
        .split("\n\n")
        .map(|r| r.trim_matches('\n'))
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.lines()
                .map(sort_name_lists)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    records.sort();
    records.join("\n\n") + "\n"
}

// ---------------------------------------------------------------------------
// Database contents and their canonical UUID names.

/// Every row of every table of `db` (`select` with no condition), by table,
/// read over a raw JSON-RPC connection to `addr` (`127.0.0.1:PORT`).
pub fn read_db(addr: &str, db: &str) -> BTreeMap<String, Vec<Map<String, Value>>> {
    let mut c = Rpc::open(addr);
    let schema = c.request("get_schema", json!([db]));
    let schema = schema
        .result()
        .unwrap_or_else(|| panic!("get_schema {db}: {:?}", schema.message))
        .clone();
    let tables: Vec<String> = schema["tables"]
        .as_object()
        .expect("tables")
        .keys()
        .cloned()
        .collect();
    let mut params = vec![json!(db)];
    for t in &tables {
        params.push(json!({"op": "select", "table": t, "where": []}));
    }
    let reply = c.request("transact", Value::Array(params));
    let results = reply
        .result()
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("select all of {db}: {:?}", reply.message))
        .clone();
    let mut out = BTreeMap::new();
    for (t, r) in tables.iter().zip(results) {
        let rows = r["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("select {t}: {r}"))
            .iter()
            .map(|row| row.as_object().expect("row").clone())
            .collect();
        out.insert(t.clone(), rows);
    }
    out
}

fn uuid_of(v: &Value) -> Option<&str> {
    match v.as_array().map(Vec::as_slice) {
        Some([tag, Value::String(u)]) if tag == "uuid" => Some(u.as_str()),
        _ => None,
    }
}

/// Replaces UUID atoms in `v` by `f(uuid)` strings, sorting sets and maps
/// (their order follows UUID values).
fn relabel(v: &Value, f: &dyn Fn(&str) -> String) -> Value {
    if let Some(u) = uuid_of(v) {
        return Value::String(f(u));
    }
    match v {
        Value::Array(a) if a.len() == 2 && (a[0] == "set" || a[0] == "map") => {
            let mut elems: Vec<String> = a[1]
                .as_array()
                .map(|es| es.iter().map(|e| relabel(e, f).to_string()).collect())
                .unwrap_or_default();
            elems.sort();
            json!([a[0], elems])
        }
        Value::Array(a) => Value::Array(a.iter().map(|e| relabel(e, f)).collect()),
        Value::String(s) => Value::String(replace_uuids(s, f)),
        other => other.clone(),
    }
}

/// Gives every row of `data` a name that does not depend on UUID values:
/// `Table#i`, `i` the rank of the row among its table's rows ordered by a
/// content label. Labels are refined a few rounds with the labels of the
/// rows a row refers to and of the rows that refer to it, so rows equal but
/// for their references are told apart (Weisfeiler-Lehman style).
pub fn canonical_names(data: &BTreeMap<String, Vec<Map<String, Value>>>) -> UuidNames {
    // uuid -> (table, row)
    let mut rows: BTreeMap<String, (&str, &Map<String, Value>)> = BTreeMap::new();
    for (t, rs) in data {
        for r in rs {
            if let Some(u) = r.get("_uuid").and_then(uuid_of) {
                rows.insert(u.to_string(), (t.as_str(), r));
            }
        }
    }
    // Incoming references: target -> [(source uuid, column)].
    let mut incoming: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (u, (_, r)) in &rows {
        for (col, val) in r.iter() {
            if col == "_uuid" || col == "_version" {
                continue;
            }
            let mut refs = Vec::new();
            collect_uuids(val, &mut refs);
            for target in refs {
                incoming
                    .entry(target)
                    .or_default()
                    .push((u.clone(), col.clone()));
            }
        }
    }
    let content = |r: &Map<String, Value>, labels: &HashMap<String, String>| -> String {
        let f = |u: &str| labels.get(u).cloned().unwrap_or_else(|| "?".to_string());
        let mut parts: Vec<String> = r
            .iter()
            .filter(|(c, _)| *c != "_uuid" && *c != "_version")
            .map(|(c, v)| format!("{c}={}", relabel(v, &f)))
            .collect();
        parts.sort();
        parts.join(",")
    };
    let mut labels: HashMap<String, String> = rows
        .iter()
        .map(|(u, (t, _))| (u.clone(), t.to_string()))
        .collect();
    for _round in 0..4 {
        let mut next = HashMap::new();
        for (u, (t, r)) in &rows {
            let mut inc: Vec<String> = incoming
                .get(u)
                .map(|v| {
                    v.iter()
                        .map(|(s, c)| format!("{}.{c}", labels[s]))
                        .collect()
                })
                .unwrap_or_default();
            inc.sort();
            let full = format!("{t}{{{}}}<-[{}]", content(r, &labels), inc.join(";"));
            next.insert(u.clone(), short_hash(&full));
        }
        labels = next;
    }
    let mut by_table: BTreeMap<&str, Vec<(String, &str)>> = BTreeMap::new();
    for (u, (t, _)) in &rows {
        by_table
            .entry(t)
            .or_default()
            .push((labels[u].clone(), u.as_str()));
    }
    let mut names = UuidNames::new();
    for (t, mut v) in by_table {
        v.sort();
        for (i, (_, u)) in v.iter().enumerate() {
            names.name(u, &format!("{t}#{i}"));
        }
    }
    names
}

fn collect_uuids(v: &Value, out: &mut Vec<String>) {
    if let Some(u) = uuid_of(v) {
        out.push(u.to_string());
        return;
    }
    if let Value::Array(a) = v {
        for e in a {
            collect_uuids(e, out);
        }
    }
}

/// A stable 64-bit FNV-1a hash as hex (labels stay short across rounds).
fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// Row counts by table.
pub fn counts(data: &BTreeMap<String, Vec<Map<String, Value>>>) -> BTreeMap<String, usize> {
    data.iter().map(|(t, rs)| (t.clone(), rs.len())).collect()
}

/// The database contents with UUIDs replaced by canonical names, `_version`
/// dropped, rows sorted: equal for equal contents whatever the UUIDs.
pub fn canonical_contents(
    data: &BTreeMap<String, Vec<Map<String, Value>>>,
) -> BTreeMap<String, Vec<String>> {
    let names = canonical_names(data);
    let f = |u: &str| {
        names
            .names
            .get(u)
            .cloned()
            .unwrap_or_else(|| "<dangling>".to_string())
    };
    data.iter()
        .map(|(t, rs)| {
            let mut rows: Vec<String> = rs
                .iter()
                .map(|r| {
                    let mut m = BTreeMap::new();
                    for (c, v) in r {
                        if c != "_version" {
                            m.insert(c.clone(), relabel(v, &f));
                        }
                    }
                    serde_json::to_string(&m).unwrap()
                })
                .collect();
            rows.sort();
            (t.clone(), rows)
        })
        .collect()
}

/// Compares two texts line by line; panics with the first differences.
pub fn assert_same_text(what: &str, reference: &str, subject: &str, subject_name: &str) {
    if reference == subject {
        return;
    }
    let a: Vec<&str> = reference.lines().collect();
    let b: Vec<&str> = subject.lines().collect();
    let mut diff = String::new();
    let mut shown = 0;
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied(), b.get(i).copied());
        if x != y {
            diff.push_str(&format!(
                "line {}:\n  ovsdb-server: {}\n  {subject_name:>12}: {}\n",
                i + 1,
                x.unwrap_or("<none>"),
                y.unwrap_or("<none>")
            ));
            shown += 1;
            if shown >= 15 {
                diff.push_str("  ...\n");
                break;
            }
        }
    }
    let clip = |s: &str| -> String {
        if s.len() > 6000 {
            format!(
                "{}\n...[{} more bytes]",
                &s[..s.char_indices().nth(6000).map(|x| x.0).unwrap_or(s.len())],
                s.len() - 6000
            )
        } else {
            s.to_string()
        }
    };
    panic!(
        "{what}: outputs differ ({} vs {} lines)\n{diff}\n=== ovsdb-server:\n{}\n=== {subject_name}:\n{}",
        a.len(),
        b.len(),
        clip(reference),
        clip(subject)
    );
}

/// Polls `f` until it returns `Some`, panicking with `what` after `timeout`.
pub fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// JSON output with UUIDs.

/// Replaces every `_version` member's value by `"<version>"`: the clients'
/// outputs are compared by content, and versions differ on every run.
fn mask_versions(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if k == "_version" {
                    *val = Value::String("<version>".into());
                } else {
                    mask_versions(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_versions),
        _ => {}
    }
}

impl UuidNames {
    /// `v` as text with known UUIDs named and unknown ones masked: an order
    /// key that does not depend on the values of new UUIDs.
    pub fn key_of(&self, v: &Value) -> String {
        let s = v.to_string();
        replace_uuids(&s, |u| {
            self.names.get(u).cloned().unwrap_or_else(|| "<?>".into())
        })
    }

    /// Normalises JSON output: `_version` values masked, UUIDs named (new
    /// ones numbered in a canonical order), and what comes in UUID-hash
    /// order sorted: sets of UUIDs, maps with UUID keys, objects keyed by
    /// UUID, and the `rows`/`data` arrays of select results and dumps.
    pub fn canon_json(&mut self, v: &Value) -> Value {
        let mut v = v.clone();
        mask_versions(&mut v);
        self.canon(&v)
    }

    fn sorted_by_key<'a>(&self, items: impl Iterator<Item = &'a Value>) -> Vec<&'a Value> {
        let mut keyed: Vec<(String, &Value)> = items.map(|e| (self.key_of(e), e)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.into_iter().map(|(_, e)| e).collect()
    }

    fn canon(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) if is_uuid_set_or_map(a) => {
                let order = self.sorted_by_key(a[1].as_array().unwrap().iter());
                let mut elems: Vec<Value> = order.into_iter().map(|e| self.canon(e)).collect();
                elems.sort_by_key(|e| e.to_string());
                json!([a[0], elems])
            }
            Value::Array(a) => Value::Array(a.iter().map(|e| self.canon(e)).collect()),
            Value::Object(m) => {
                let mut entries: Vec<(String, &String, &Value)> = m
                    .iter()
                    .map(|(k, val)| (self.key_of(&json!([k, val])), k, val))
                    .collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let mut out = Map::new();
                for (_, k, val) in entries {
                    let key = self.text(k);
                    let val = match val {
                        Value::Array(rows) if k == "rows" || k == "data" => {
                            let order = self.sorted_by_key(rows.iter());
                            let mut rows: Vec<Value> =
                                order.into_iter().map(|r| self.canon(r)).collect();
                            rows.sort_by_key(|r| r.to_string());
                            Value::Array(rows)
                        }
                        _ => self.canon(val),
                    };
                    out.insert(key, val);
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }

    /// Normalises lines whose order follows UUID hashes: sorted by their
    /// text with new UUIDs masked, UUIDs then named in that order, lists of
    /// names sorted, and the lines sorted again.
    pub fn sorted_lines(&mut self, lines: &[&str]) -> Vec<String> {
        let mut keyed: Vec<(String, &str)> = lines
            .iter()
            .map(|l| {
                let k = replace_uuids(l, |u| {
                    self.names.get(u).cloned().unwrap_or_else(|| "<?>".into())
                });
                (k, *l)
            })
            .collect();
        keyed.sort();
        let mut out: Vec<String> = keyed
            .into_iter()
            .map(|(_, l)| sort_name_lists(&self.text(l)))
            .collect();
        out.sort();
        out
    }

    /// Normalises the output of `ovsdb-client dump` (table format): blocks
    /// of a caption, a heading, a rule and rows in UUID order.
    pub fn dump_text(&mut self, text: &str) -> String {
        let mut out = String::new();
        for block in text.split("\n\n") {
            let lines: Vec<&str> = block.lines().collect();
            let head = table_head_len(&lines);
            for l in &lines[..head] {
                out.push_str(l);
                out.push('\n');
            }
            for l in self.sorted_lines(&lines[head..]) {
                out.push_str(&l);
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }

    /// Normalises one line of `ovsdb-client monitor --format=json` output
    /// (`{"data": [[row, action, ...]...], "headings": [...]}`): `_version`
    /// masked, rows grouped (a "new" row, with an empty row id, belongs to
    /// the "old" row before it), groups in canonical order. Lines that are
    /// not JSON are kept as they are (with UUIDs named).
    pub fn monitor_json_line(&mut self, line: &str) -> String {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return self.text(line);
        };
        let headings: Vec<String> = v["headings"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let version_col = headings.iter().position(|h| h == "_version");
        let mut groups: Vec<Vec<Value>> = Vec::new();
        for row in v["data"].as_array().cloned().unwrap_or_default() {
            let mut row = row;
            if let (Some(i), Some(a)) = (version_col, row.as_array_mut()) {
                if i < a.len() && !a[i].is_null() {
                    a[i] = json!("<version>");
                }
            }
            let continues = row.get(0).and_then(Value::as_str) == Some("");
            match groups.last_mut() {
                Some(g) if continues => g.push(row),
                _ => groups.push(vec![row]),
            }
        }
        let group_values: Vec<Value> = groups.into_iter().map(Value::Array).collect();
        let order = self.sorted_by_key(group_values.iter());
        let canon: Vec<Value> = order.into_iter().map(|g| self.canon(g)).collect();
        let mut canon: Vec<String> = canon.iter().map(|g| g.to_string()).collect();
        canon.sort();
        format!("headings={} rows={}", json!(headings), canon.join(" "))
    }
}

/// The number of heading lines of a table block (`ovsdb-client` table or
/// csv format): a caption, the column headings, and (table format) a rule.
pub fn table_head_len(lines: &[&str]) -> usize {
    let mut head = lines.len().min(2);
    if lines.len() > 2
        && lines[2].starts_with('-')
        && lines[2].chars().all(|c| c == '-' || c == ' ')
    {
        head = 3;
    }
    head
}

/// Masks what differs between two server instances in clients' messages:
/// TCP ports of 127.0.0.1 and the servers' private directories.
pub fn mask_remotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..i + "127.0.0.1:".len()]);
        rest = &rest[i + "127.0.0.1:".len()..];
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 {
            out.push_str("<port>");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    // /tmp/oxsdb-srv-XXXX/ and /tmp/oxsdb-ref-srv-XXXX/
    let tmp = std::env::temp_dir()
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string();
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    loop {
        let found = ["/oxsdb-srv-", "/oxsdb-ref-srv-"]
            .iter()
            .filter_map(|p| {
                rest.find(&format!("{tmp}{p}"))
                    .map(|i| (i, tmp.len() + p.len()))
            })
            .min();
        match found {
            Some((i, plen)) => {
                result.push_str(&rest[..i]);
                result.push_str("<server-dir>");
                let after = &rest[i + plen..];
                let end = after.find('/').unwrap_or(after.len());
                rest = &after[end..];
            }
            None => break,
        }
    }
    result.push_str(rest);
    result
}

/// Steps of a scenario with their normalised outputs.
#[derive(Default, Debug, Clone)]
pub struct Transcript {
    pub steps: Vec<(String, String)>,
}

impl Transcript {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, label: impl Into<String>, text: impl Into<String>) {
        self.steps.push((label.into(), text.into()));
    }

    /// The output recorded for step `label` (the first with that label).
    pub fn get(&self, label: &str) -> Option<&str> {
        self.steps
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, t)| t.as_str())
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for (l, t) in &self.steps {
            s.push_str(&format!("### {l}\n{t}"));
            if !t.ends_with('\n') {
                s.push('\n');
            }
        }
        s
    }
}

/// Compares the transcripts of the reference and of the subject; panics
/// with every step that differs.
pub fn assert_same_transcript(
    what: &str,
    reference: &Transcript,
    subject: &Transcript,
    subject_name: &str,
) {
    let mut problems = String::new();
    let n = reference.steps.len().max(subject.steps.len());
    let mut bad = 0;
    for i in 0..n {
        let r = reference.steps.get(i);
        let s = subject.steps.get(i);
        if r == s {
            continue;
        }
        bad += 1;
        if bad > 6 {
            continue;
        }
        let fmt = |x: Option<&(String, String)>| match x {
            Some((l, t)) => format!("[{l}]\n{}", clip(t, 3000)),
            None => "<no step>".to_string(),
        };
        problems.push_str(&format!(
            "--- step {i}\n  ovsdb-server: {}\n  {subject_name}: {}\n",
            fmt(r).replace('\n', "\n    "),
            fmt(s).replace('\n', "\n    ")
        ));
    }
    if bad > 0 {
        panic!("{what}: {bad} of {n} steps differ between ovsdb-server and {subject_name}:\n{problems}");
    }
}

/// At most `n` bytes of `s` (on a char boundary).
pub fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...[{} more bytes]", &s[..end], s.len() - end)
}

/// Runs `scenario` against the reference and then against the subject
/// (oxsdb, see [`Kind::subject`](super::servers::Kind::subject)), giving it
/// the reference's transcript as the expectation, and compares the two.
pub fn run_both(
    what: &str,
    scenario: impl Fn(super::servers::Kind, Option<&Transcript>) -> Transcript,
) {
    use super::servers::Kind;
    let t0 = Instant::now();
    let reference = scenario(Kind::Reference, None);
    let t1 = Instant::now();
    let subject_kind = Kind::subject();
    let subject = scenario(subject_kind, Some(&reference));
    let t2 = Instant::now();
    eprintln!(
        "{what}: ovsdb-server {:.2?}, {} {:.2?}, {} steps",
        t1 - t0,
        subject_kind.name(),
        t2 - t1,
        reference.steps.len()
    );
    if std::env::var_os("OXSDB_CLIENT_TESTS_VERBOSE").is_some() {
        eprintln!("=== {what} (ovsdb-server):\n{}", reference.render());
    }
    assert_same_transcript(what, &reference, &subject, subject_kind.name());
}
