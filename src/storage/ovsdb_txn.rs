//! Reading the transaction records of OVSDB standalone files (the JSON
//! inside the framing of `ovsdb_log`); `file_log::record` writes them.
//!
//! A record is `{"<table>": {"<uuid>": <row> | null, ...}, ..., "_date": <ms>,
//! "_comment": "...", "_is_diff": true}`: a deleted row is `null`, an
//! inserted row lists its columns that are not at their default value, a
//! modified row its changed columns. With `"_is_diff": true` (ovsdb-server's
//! default since 2.15) a changed set or map column (maximum size above 1)
//! holds the *difference*, as in `update2`: a set the symmetric difference of
//! old and new, a map the removed pairs, the added pairs and the new pairs of
//! changed keys; other columns hold the new value.
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

/// Milliseconds since the epoch, for `_date`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
            if !ty.allows_count(n) {
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
