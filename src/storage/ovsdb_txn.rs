//! Transaction records of OVSDB standalone files: the JSON inside the framing
//! of `ovsdb_log`, in both directions.
//!
//! A record is `{"<table>": {"<uuid>": <row> | null, ...}, ..., "_date": <ms>,
//! "_comment": "...", "_is_diff": true}` (`_comment` only when there is
//! one). What ovsdb-server 3.1 writes, and so what [`RecordBuilder`] writes:
//! - a deleted row is `null`;
//! - an inserted row lists its columns that are not at their default value;
//! - a modified row lists only its changed columns. With `"_is_diff": true`
//!   (ovsdb-server's default since 2.15; `--disable-file-column-diff` turns
//!   it off) a changed set or map column (maximum size above 1) holds the
//!   *difference*, as in `update2`: a set the symmetric difference of old and
//!   new, a map the removed pairs, the added pairs and the new pairs of
//!   changed keys; other columns hold the new value;
//! - ephemeral columns and `_version` are never written;
//! - a transaction that changes no persistent column writes no record.
//!
//! Two quirks of ovsdb-server 3.1's reader shape what may be written:
//! - it applies a column's diff only when the row's current value of that
//!   column is not the column's default; otherwise it *replaces* the value
//!   with the diff. So when the old value is the default the new value is
//!   written whole (for an empty default the two coincide anyway);
//! - it parses a diff with the column's own size limits, so a diff of a set
//!   or map with a bounded maximum that has more elements than that maximum
//!   cannot be read back (ovsdb-server itself writes such records and then
//!   drops them at its next start). A transaction with such a change is
//!   written without `_is_diff`, with whole new values, which every version
//!   reads.
//!
//! [`Replay`] reads records as ovsdb-server does (the default-value rule
//! above included) into rows; it is a little more lenient than ovsdb-server
//! in one way: a diff may have more elements than the column's maximum as
//! long as the value it produces fits.

use crate::data::{Atom, Datum, Row};
use crate::schema::types::UNLIMITED;
use crate::schema::{DatabaseSchema, Type};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// The comment of snapshot records written by compaction (ovsdb-server's).
pub const COMPACT_COMMENT: &str = "compacting database online";

/// One database schema with what record building needs precomputed.
#[derive(Debug)]
pub struct Codec {
    /// The schema.
    pub schema: Arc<DatabaseSchema>,
    /// Per table, per column: the JSON of the column's default value.
    defaults: Vec<Vec<Value>>,
}

/// A row change to put in a record: the stored-row JSON (see
/// [`Row::to_store_json`]) before and after; `None` for absent.
#[derive(Debug, Clone, Copy)]
pub struct RowEvent<'a> {
    /// Index of the table in the schema.
    pub table: usize,
    /// The row.
    pub uuid: Uuid,
    /// The stored row before, if it existed.
    pub old: Option<&'a [u8]>,
    /// The stored row after, if it exists.
    pub new: Option<&'a [u8]>,
}

/// A column of a row in a record: the whole new value, and the diff when it
/// differs from that.
struct ColOut<'s> {
    name: &'s str,
    full: Value,
    diff: Option<Value>,
}

/// Builds one transaction record.
pub struct RecordBuilder<'c> {
    codec: &'c Codec,
    /// (table, uuid, None for a delete).
    rows: Vec<(usize, Uuid, Option<Vec<ColOut<'c>>>)>,
    /// Whether every diff can be read back by ovsdb-server.
    diff_ok: bool,
}

/// Milliseconds since the epoch, for `_date`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn parse_stored(bytes: &[u8], what: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!("{what}: a stored row must be a JSON object")),
        Err(e) => Err(format!("{what}: a stored row is not valid JSON: {e}")),
    }
}

impl Codec {
    /// Precomputes defaults for `schema`.
    pub fn new(schema: Arc<DatabaseSchema>) -> Codec {
        let defaults = schema
            .tables
            .iter()
            .map(|t| {
                t.columns
                    .iter()
                    .map(|c| Datum::default_of(&c.ty).to_json())
                    .collect()
            })
            .collect();
        Codec { schema, defaults }
    }

    /// A builder for one record.
    pub fn builder(&self) -> RecordBuilder<'_> {
        RecordBuilder {
            codec: self,
            rows: Vec::new(),
            diff_ok: true,
        }
    }

    /// The columns of a whole row (an insert): those not at their default.
    fn insert_columns(&self, table: usize, new: &Map<String, Value>) -> Vec<ColOut<'_>> {
        let ts = &self.schema.tables[table];
        let mut cols = Vec::new();
        for (c, col) in ts.columns.iter().enumerate() {
            if col.ephemeral {
                continue;
            }
            if let Some(v) = new.get(&col.name) {
                if *v != self.defaults[table][c] {
                    cols.push(ColOut {
                        name: &col.name,
                        full: v.clone(),
                        diff: None,
                    });
                }
            }
        }
        cols
    }

    /// A snapshot record (as written by compaction and conversion): every
    /// row as an insert, with `comment`; `is_diff` marks it `_is_diff` as
    /// ovsdb-server does (the rows read the same either way, but readers
    /// older than 2.15 reject the member).
    pub fn snapshot<'a>(
        &self,
        rows: impl IntoIterator<Item = (usize, Uuid, &'a [u8])>,
        comment: Option<&str>,
        date_ms: i64,
        is_diff: bool,
    ) -> Result<Value, String> {
        let mut b = self.builder();
        for (table, uuid, value) in rows {
            b.add(RowEvent {
                table,
                uuid,
                old: None,
                new: Some(value),
            })?;
        }
        Ok(b.finish(comment, date_ms, is_diff).unwrap_or_else(|| {
            let mut m = Map::new();
            annotate(&mut m, comment, date_ms, is_diff);
            Value::Object(m)
        }))
    }
}

fn annotate(m: &mut Map<String, Value>, comment: Option<&str>, date_ms: i64, is_diff: bool) {
    m.insert("_date".into(), Value::from(date_ms));
    if let Some(c) = comment {
        m.insert("_comment".into(), Value::from(c));
    }
    if is_diff {
        m.insert("_is_diff".into(), Value::Bool(true));
    }
}

impl<'c> RecordBuilder<'c> {
    /// Adds one row change. An `Err` means a stored row could not be read
    /// (the store holds something that is not a row of this schema).
    pub fn add(&mut self, ev: RowEvent<'_>) -> Result<(), String> {
        let codec = self.codec;
        let Some(ts) = codec.schema.tables.get(ev.table) else {
            return Err(format!("no table {} in the schema", ev.table));
        };
        let what = format!("table {} row {}", ts.name, ev.uuid);
        let Some(new) = ev.new else {
            if ev.old.is_some() {
                self.rows.push((ev.table, ev.uuid, None));
            }
            return Ok(());
        };
        let new = parse_stored(new, &what)?;
        let Some(old) = ev.old else {
            let cols = codec.insert_columns(ev.table, &new);
            self.rows.push((ev.table, ev.uuid, Some(cols)));
            return Ok(());
        };
        let old = parse_stored(old, &what)?;
        let mut cols = Vec::new();
        for (c, col) in ts.columns.iter().enumerate() {
            if col.ephemeral {
                continue;
            }
            let default = &codec.defaults[ev.table][c];
            let o = old.get(&col.name).unwrap_or(default);
            let n = new.get(&col.name).unwrap_or(default);
            if o == n {
                continue;
            }
            let diff = if o == default || col.ty.max <= 1 {
                None
            } else {
                let od = Datum::from_json(&col.ty, o, None)
                    .map_err(|e| format!("{what} column {}: {e}", col.name))?;
                let nd = Datum::from_json(&col.ty, n, None)
                    .map_err(|e| format!("{what} column {}: {e}", col.name))?;
                let d = crate::db::monitor::datum_diff(&od, &nd, &col.ty);
                if d.len() as u64 > col.ty.max_u64() {
                    self.diff_ok = false;
                }
                Some(d.to_json())
            };
            cols.push(ColOut {
                name: &col.name,
                full: n.clone(),
                diff,
            });
        }
        if !cols.is_empty() {
            self.rows.push((ev.table, ev.uuid, Some(cols)));
        }
        Ok(())
    }

    /// Whether nothing persistent changed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The record, `None` if nothing persistent changed. `prefer_diff`:
    /// write `_is_diff` records (when every diff can be read back).
    pub fn finish(self, comment: Option<&str>, date_ms: i64, prefer_diff: bool) -> Option<Value> {
        if self.rows.is_empty() {
            return None;
        }
        let is_diff = prefer_diff && self.diff_ok;
        let mut tables: Map<String, Value> = Map::new();
        for (table, uuid, cols) in self.rows {
            let tname = &self.codec.schema.tables[table].name;
            let row = match cols {
                None => Value::Null,
                Some(cols) => Value::Object(
                    cols.into_iter()
                        .map(|c| {
                            let v = match (is_diff, c.diff) {
                                (true, Some(d)) => d,
                                _ => c.full,
                            };
                            (c.name.to_string(), v)
                        })
                        .collect(),
                ),
            };
            if let Value::Object(t) = tables
                .entry(tname.clone())
                .or_insert_with(|| Value::Object(Map::new()))
            {
                t.insert(uuid.hyphenated().to_string(), row);
            }
        }
        annotate(&mut tables, comment, date_ms, is_diff);
        Some(Value::Object(tables))
    }
}

/// Rows of one database rebuilt by replaying records, as ovsdb-server
/// replays a file.
pub struct Replay {
    schema: Arc<DatabaseSchema>,
    /// Per table: uuid -> column values.
    tables: Vec<HashMap<Uuid, Vec<Datum>>>,
    defaults: Vec<Vec<Datum>>,
    /// The same types with no size limits, for parsing diffs.
    relaxed: Vec<Vec<Type>>,
}

/// What one record does to one row.
enum Change {
    Delete,
    Put(Vec<Datum>),
}

impl Replay {
    /// An empty database.
    pub fn new(schema: Arc<DatabaseSchema>) -> Replay {
        let defaults = schema
            .tables
            .iter()
            .map(|t| t.columns.iter().map(|c| Datum::default_of(&c.ty)).collect())
            .collect();
        let relaxed = schema
            .tables
            .iter()
            .map(|t| {
                t.columns
                    .iter()
                    .map(|c| Type {
                        min: 0,
                        max: UNLIMITED,
                        ..c.ty.clone()
                    })
                    .collect()
            })
            .collect();
        Replay {
            tables: vec![HashMap::new(); schema.tables.len()],
            schema,
            defaults,
            relaxed,
        }
    }

    /// The number of rows.
    pub fn n_rows(&self) -> usize {
        self.tables.iter().map(HashMap::len).sum()
    }

    /// Applies one transaction record, all or nothing. The error says what
    /// is wrong, in ovsdb-server's words where it has some.
    pub fn apply(&mut self, record: &Value) -> Result<(), String> {
        let Value::Object(obj) = record else {
            return Err("transaction record: object expected".into());
        };
        let is_diff = obj.get("_is_diff") == Some(&Value::Bool(true));
        let mut changes: Vec<(usize, Uuid, Change)> = Vec::new();
        for (tname, tjson) in obj {
            let Some(t) = self.schema.table_index(tname) else {
                match tname.as_str() {
                    "_date" if tjson.is_i64() || tjson.is_u64() => continue,
                    "_comment" | "_is_diff" => continue,
                    _ => return Err(format!("unknown table: No table named {tname}.")),
                }
            };
            let Value::Object(rows) = tjson else {
                return Err(format!("table {tname}: object expected"));
            };
            for (ustr, rjson) in rows {
                let uuid = crate::data::atom::parse_uuid_str(ustr)
                    .ok_or_else(|| format!("\"{ustr}\" is not a valid UUID"))?;
                let current = self.tables[t].get(&uuid);
                match rjson {
                    Value::Null => {
                        if current.is_none() {
                            return Err(format!(
                                "transaction deletes row {uuid} that does not exist"
                            ));
                        }
                        changes.push((t, uuid, Change::Delete));
                    }
                    Value::Object(cols) => {
                        let mut fields = match current {
                            Some(f) => f.clone(),
                            None => self.defaults[t].clone(),
                        };
                        self.update_row(t, &mut fields, cols, is_diff)?;
                        changes.push((t, uuid, Change::Put(fields)));
                    }
                    _ => return Err(format!("table {tname} row {uuid}: row must be JSON object")),
                }
            }
        }
        for (t, uuid, ch) in changes {
            match ch {
                Change::Delete => {
                    self.tables[t].remove(&uuid);
                }
                Change::Put(f) => {
                    self.tables[t].insert(uuid, f);
                }
            }
        }
        Ok(())
    }

    fn update_row(
        &self,
        t: usize,
        fields: &mut [Datum],
        cols: &Map<String, Value>,
        is_diff: bool,
    ) -> Result<(), String> {
        let ts = &self.schema.tables[t];
        for (cname, v) in cols {
            let Some(c) = ts.column_index(cname) else {
                return Err(format!(
                    "unknown column: No column {cname} in table {}.",
                    ts.name
                ));
            };
            if c >= ts.columns.len() {
                // `_uuid` / `_version`: never written by ovsdb-server.
                continue;
            }
            let ty = &ts.columns[c].ty;
            let err =
                |e: crate::error::OvsdbError| format!("table {} column {cname}: {e}", ts.name);
            let datum = Datum::from_json(&self.relaxed[t][c], v, None).map_err(err)?;
            let value = if is_diff && fields[c] != self.defaults[t][c] && ty.max > 1 {
                apply_diff(&fields[c], &datum)
            } else {
                datum
            };
            let n = value.len() as u64;
            if n < ty.min as u64 || n > ty.max_u64() {
                return Err(format!(
                    "table {} column {cname}: {} must have {} to {} members but {n} are present",
                    ts.name,
                    if ty.is_map() { "map" } else { "set" },
                    ty.min,
                    ty.max_u64()
                ));
            }
            fields[c] = value;
        }
        Ok(())
    }

    /// The rows, as stored rows with a fresh `_version` each.
    pub fn into_rows(self) -> impl Iterator<Item = (usize, Row)> {
        self.tables.into_iter().enumerate().flat_map(|(t, rows)| {
            rows.into_iter().map(move |(uuid, fields)| {
                (
                    t,
                    Row {
                        uuid,
                        version: Uuid::new_v4(),
                        fields,
                    },
                )
            })
        })
    }
}

/// ovsdb-server's `ovsdb_datum_apply_diff_in_place` for sets and maps: each
/// element of the diff is added if absent, removed if present (with the same
/// value, for maps), and for maps replaces the value of a present key with a
/// different value.
pub fn apply_diff(current: &Datum, diff: &Datum) -> Datum {
    let (ck, dk) = (&current.keys, &diff.keys);
    let (cv, dv) = (current.values.as_deref(), diff.values.as_deref());
    let is_map = cv.is_some();
    let mut keys: Vec<Atom> = Vec::with_capacity(ck.len() + dk.len());
    let mut values: Vec<Atom> = Vec::new();
    let (mut i, mut j) = (0, 0);
    let push = |keys: &mut Vec<Atom>, values: &mut Vec<Atom>, k: &Atom, v: Option<&Atom>| {
        keys.push(k.clone());
        if let Some(v) = v {
            values.push(v.clone());
        }
    };
    while i < ck.len() || j < dk.len() {
        let ord = match (ck.get(i), dk.get(j)) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                push(&mut keys, &mut values, &ck[i], cv.map(|v| &v[i]));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                push(&mut keys, &mut values, &dk[j], dv.map(|v| &v[j]));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if let (Some(cv), Some(dv)) = (cv, dv) {
                    if cv[i] != dv[j] {
                        push(&mut keys, &mut values, &dk[j], Some(&dv[j]));
                    }
                }
                i += 1;
                j += 1;
            }
        }
    }
    Datum {
        keys,
        values: is_map.then_some(values),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Arc<DatabaseSchema> {
        Arc::new(
            DatabaseSchema::from_json(&json!({
                "name": "t", "version": "1.0.0",
                "tables": {"T": {"columns": {
                    "i": {"type": "integer"},
                    "o": {"type": {"key": "integer", "min": 0, "max": 1}},
                    "s": {"type": {"key": "integer", "min": 0, "max": "unlimited"}},
                    "small": {"type": {"key": "integer", "min": 0, "max": 2}},
                    "pair": {"type": {"key": "string", "min": 1, "max": 2}},
                    "m": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                    "e": {"type": "integer", "ephemeral": true}
                }}}
            }))
            .unwrap(),
        )
    }

    fn stored(schema: &DatabaseSchema, uuid: Uuid, cols: Value) -> Vec<u8> {
        let ts = &schema.tables[0];
        let row = Row::from_store_json(ts, uuid, &cols).unwrap();
        row.to_store_json(ts).to_string().into_bytes()
    }

    #[test]
    fn records_in_ovsdb_server_style() {
        let s = schema();
        let codec = Codec::new(s.clone());
        let u = Uuid::new_v4();
        let us = u.hyphenated().to_string();
        let r0 = stored(
            &s,
            u,
            json!({"i": 5, "s": ["set", [1, 2, 3]], "m": ["map", [["a", "1"], ["b", "2"]]], "e": 9}),
        );
        // Insert: non-default persistent columns.
        let mut b = codec.builder();
        b.add(RowEvent {
            table: 0,
            uuid: u,
            old: None,
            new: Some(&r0),
        })
        .unwrap();
        let rec = b.finish(Some("hi"), 7, true).unwrap();
        assert_eq!(
            rec,
            json!({"T": {us.clone(): {"i": 5, "s": ["set", [1, 2, 3]], "m": ["map", [["a", "1"], ["b", "2"]]]}},
                   "_date": 7, "_comment": "hi", "_is_diff": true})
        );
        // Modify: only changed columns, sets and maps as diffs.
        let r1 = stored(
            &s,
            u,
            json!({"i": 6, "o": 4, "s": ["set", [2, 3, 7]], "m": ["map", [["b", "22"], ["c", "3"]]], "e": 10}),
        );
        let mut b = codec.builder();
        b.add(RowEvent {
            table: 0,
            uuid: u,
            old: Some(&r0),
            new: Some(&r1),
        })
        .unwrap();
        let rec = b.finish(None, 8, true).unwrap();
        assert_eq!(
            rec,
            json!({"T": {us.clone(): {"i": 6, "o": 4, "s": ["set", [1, 7]], "m": ["map", [["a", "1"], ["b", "22"], ["c", "3"]]]}},
                   "_date": 8, "_is_diff": true})
        );
        // Without column diffs (`--disable-file-column-diff`): whole values.
        let mut b = codec.builder();
        b.add(RowEvent {
            table: 0,
            uuid: u,
            old: Some(&r0),
            new: Some(&r1),
        })
        .unwrap();
        let rec = b.finish(None, 8, false).unwrap();
        assert_eq!(rec["T"][&us]["s"], json!(["set", [2, 3, 7]]));
        assert!(rec.get("_is_diff").is_none());
        // Only an ephemeral column changed: no record.
        let r2 = stored(
            &s,
            u,
            json!({"i": 6, "o": 4, "s": ["set", [2, 3, 7]], "m": ["map", [["b", "22"], ["c", "3"]]], "e": 11}),
        );
        let mut b = codec.builder();
        b.add(RowEvent {
            table: 0,
            uuid: u,
            old: Some(&r1),
            new: Some(&r2),
        })
        .unwrap();
        assert!(b.finish(None, 9, true).is_none());
        // Delete.
        let mut b = codec.builder();
        b.add(RowEvent {
            table: 0,
            uuid: u,
            old: Some(&r2),
            new: None,
        })
        .unwrap();
        assert_eq!(
            b.finish(None, 9, true).unwrap(),
            json!({"T": {us.clone(): null}, "_date": 9, "_is_diff": true})
        );
    }

    #[test]
    fn writes_what_ovsdb_server_reads_back() {
        let s = schema();
        let codec = Codec::new(s.clone());
        let u = Uuid::new_v4();
        let us = u.hyphenated().to_string();
        // Old value at the default: the whole new value (ovsdb-server replaces).
        let a = stored(&s, u, json!({}));
        let b1 = stored(&s, u, json!({"pair": ["set", ["", "y"]]}));
        let mut b = codec.builder();
        b.add(RowEvent {
            table: 0,
            uuid: u,
            old: Some(&a),
            new: Some(&b1),
        })
        .unwrap();
        let rec = b.finish(None, 1, true).unwrap();
        assert_eq!(rec["T"][&us]["pair"], json!(["set", ["", "y"]]));
        // A diff over the column's maximum: the record is not a diff.
        let c0 = stored(&s, u, json!({"small": ["set", [1, 2]], "s": ["set", [1]]}));
        let c1 = stored(&s, u, json!({"small": ["set", [3, 4]], "s": ["set", [2]]}));
        let mut b = codec.builder();
        b.add(RowEvent {
            table: 0,
            uuid: u,
            old: Some(&c0),
            new: Some(&c1),
        })
        .unwrap();
        let rec = b.finish(None, 1, true).unwrap();
        assert_eq!(
            rec,
            json!({"T": {us.clone(): {"small": ["set", [3, 4]], "s": 2}}, "_date": 1})
        );
        // And each replays to the right contents.
        let mut r = Replay::new(s.clone());
        r.apply(&json!({"T": {us.clone(): {"small": ["set", [1, 2]], "s": 1}}, "_is_diff": true}))
            .unwrap();
        r.apply(&rec).unwrap();
        let rows: Vec<_> = r.into_rows().collect();
        assert_eq!(
            rows[0].1.fields[s.tables[0].column_index("small").unwrap()].len(),
            2
        );
        assert_eq!(rows[0].1.to_store_json(&s.tables[0])["s"], json!(2));
    }

    #[test]
    fn replays_like_ovsdb_server() {
        let s = schema();
        let ts = &s.tables[0];
        let u = "c3de264c-589b-45ef-b0a4-97382c86489d";
        let mut r = Replay::new(s.clone());
        for rec in [
            json!({"T": {u: {"s": ["set", [1, 2, 3]], "o": 3, "i": 5, "m": ["map", [["a", "1"], ["b", "2"]]]}}, "_date": 1, "_is_diff": true, "_comment": "x"}),
            json!({"T": {u: {"o": 4, "i": 6}}, "_date": 2, "_is_diff": true}),
            json!({"T": {u: {"s": ["set", [1, 7]]}}, "_date": 3, "_is_diff": true}),
            json!({"T": {u: {"m": ["map", [["a", "1"], ["c", "3"]]]}}, "_is_diff": true}),
            json!({"T": {u: {"m": ["map", [["b", "22"]]]}}, "_is_diff": true}),
            json!({"T": {u: {"o": ["set", []]}}, "_is_diff": true}),
            // The ovsdb-server quirk: a diff applied to a default value replaces it.
            json!({"T": {u: {"pair": "y"}}, "_is_diff": true}),
        ] {
            r.apply(&rec).unwrap();
        }
        let rows: Vec<_> = r.into_rows().collect();
        let j = rows[0].1.to_store_json(ts);
        assert_eq!(j["i"], json!(6));
        assert_eq!(j["o"], json!(["set", []]));
        assert_eq!(j["s"], json!(["set", [2, 3, 7]]));
        assert_eq!(j["m"], json!(["map", [["b", "22"], ["c", "3"]]]));
        assert_eq!(j["pair"], json!("y"));
        // Non-diff records replace.
        let mut r = Replay::new(s.clone());
        r.apply(&json!({"T": {u: {"s": ["set", [1, 2]]}}})).unwrap();
        r.apply(&json!({"T": {u: {"s": ["set", [1, 7]]}}})).unwrap();
        let rows: Vec<_> = r.into_rows().collect();
        assert_eq!(rows[0].1.to_store_json(ts)["s"], json!(["set", [1, 7]]));
    }

    #[test]
    fn bad_records_change_nothing() {
        let s = schema();
        let u = "c3de264c-589b-45ef-b0a4-97382c86489d";
        let mut r = Replay::new(s.clone());
        r.apply(&json!({"T": {u: {"i": 1}}})).unwrap();
        for (bad, why) in [
            (json!({"Nope": {}}), "No table named Nope"),
            (json!({"T": {u: {"zz": 1}}}), "No column zz"),
            (
                json!({"T": {"c3de264c-589b-45ef-b0a4-97382c86489e": null}}),
                "does not exist",
            ),
            (json!({"T": {u: {"i": "x"}}}), "column i"),
            (json!({"T": {"not-a-uuid": {}}}), "not a valid UUID"),
            (
                json!({"T": {u: {"small": ["set", [1, 2, 3]]}}, "_is_diff": true}),
                "0 to 2 members",
            ),
            (json!({"_date": "yesterday"}), "No table named _date"),
        ] {
            let e = r.apply(&bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(r.n_rows(), 1);
    }

    #[test]
    fn apply_diff_inverts_datum_diff() {
        let ty = &schema().tables[0].columns[schema().tables[0].column_index("m").unwrap()]
            .ty
            .clone();
        let a = Datum::from_json(
            ty,
            &json!(["map", [["a", "1"], ["b", "2"], ["d", "4"]]]),
            None,
        )
        .unwrap();
        let b = Datum::from_json(
            ty,
            &json!(["map", [["b", "20"], ["c", "3"], ["d", "4"]]]),
            None,
        )
        .unwrap();
        let d = crate::db::monitor::datum_diff(&a, &b, ty);
        assert_eq!(apply_diff(&a, &d), b);
    }
}
