//! Row updates (`<row-update>` of `update`, `<row-update2>` of `update2` and
//! `update3`) written straight into an output buffer.
//!
//! [`Monitor::render`](crate::db::monitor::Monitor) builds a `serde_json`
//! tree that is then written once and dropped; an initial reply of 10,000
//! rows spent most of its time allocating and freeing those trees. These
//! writers put the same bytes into the buffer directly: objects' members in
//! the order a `serde_json::Map` keeps them (sorted by key), every datum as
//! [`Datum::to_json`] would give it. The tests check them byte for byte
//! against the tree.

use bytes::BytesMut;

use crate::codec::framing::write_str;
use crate::data::atom::write_uuid_json;
use crate::data::row::{COL_UUID, COL_VERSION};
use crate::data::Row;
use crate::db::monitor::{datum_diff, Kind, MonitorTable, MonitorVersion};
use crate::schema::TableSchema;

/// One monitored table, ready to have its row updates written: its schema,
/// what the monitor asks of it, and its columns in the order of their names.
pub(crate) struct TableUpdates<'a> {
    ts: &'a TableSchema,
    mt: &'a MonitorTable,
    /// Positions in `mt.columns` in the order of the columns' names: the
    /// order in which a JSON object of them lists its members.
    order: Vec<usize>,
}

impl<'a> TableUpdates<'a> {
    /// The table `ts` as monitored by `mt`.
    pub(crate) fn new(ts: &'a TableSchema, mt: &'a MonitorTable) -> TableUpdates<'a> {
        let mut order: Vec<usize> = (0..mt.columns.len()).collect();
        order.sort_by(|&a, &b| {
            ts.column_name(mt.columns[a].0)
                .cmp(ts.column_name(mt.columns[b].0))
        });
        TableUpdates { ts, mt, order }
    }

    /// What the monitor asks of the table.
    pub(crate) fn monitored(&self) -> &'a MonitorTable {
        self.mt
    }

    /// Writes the row update of a change that [`classify`] said is `kind`,
    /// in `version`'s format.
    ///
    /// [`classify`]: crate::db::monitor::Monitor
    pub(crate) fn write(
        &self,
        version: MonitorVersion,
        kind: Kind,
        old: Option<&Row>,
        new: Option<&Row>,
        out: &mut BytesMut,
    ) {
        match version {
            MonitorVersion::V1 => self.write_update1(kind, old, new, out),
            MonitorVersion::V2 | MonitorVersion::V3 => self.write_update2(kind, old, new, out),
        }
    }

    /// `{"new":{..},"old":{..}}` of `update`: "old" holds the changed
    /// columns of a modified row and every column of a deleted one.
    fn write_update1(&self, kind: Kind, old: Option<&Row>, new: Option<&Row>, out: &mut BytesMut) {
        let (ts, mt, order) = (self.ts, self.mt, &self.order);
        let has_new = matches!(kind, Kind::Initial | Kind::Insert | Kind::Modify);
        let has_old = matches!(kind, Kind::Delete | Kind::Modify);
        out.extend_from_slice(b"{");
        if has_new {
            out.extend_from_slice(b"\"new\":{");
            if let Some(n) = new {
                let mut any = false;
                for &i in order {
                    let (c, sel) = mt.columns[i];
                    if sel.has(kind.select()) {
                        member(ts, c, &mut any, out);
                        write_column(n, c, out);
                    }
                }
            }
            out.extend_from_slice(b"}");
        }
        if has_old {
            if has_new {
                out.extend_from_slice(b",");
            }
            out.extend_from_slice(b"\"old\":{");
            if let Some(o) = old {
                let mut any = false;
                for &i in order {
                    let (c, sel) = mt.columns[i];
                    if !sel.has(kind.select()) {
                        continue;
                    }
                    let changed = match (kind, new) {
                        (Kind::Modify, Some(n)) => column_changed(o, n, c),
                        _ => false,
                    };
                    if changed || kind == Kind::Delete {
                        member(ts, c, &mut any, out);
                        write_column(o, c, out);
                    }
                }
            }
            out.extend_from_slice(b"}");
        }
        out.extend_from_slice(b"}");
    }

    /// `{"<initial|insert|modify>":{..}}` or `{"delete":null}` of
    /// `update2`: a modification carries the difference of each changed
    /// column, an insertion the columns that are not at their default.
    fn write_update2(&self, kind: Kind, old: Option<&Row>, new: Option<&Row>, out: &mut BytesMut) {
        let (ts, mt, order) = (self.ts, self.mt, &self.order);
        let op: &[u8] = match kind {
            Kind::Delete => {
                out.extend_from_slice(b"{\"delete\":null}");
                return;
            }
            Kind::Initial => b"{\"initial\":{",
            Kind::Modify => b"{\"modify\":{",
            Kind::Insert => b"{\"insert\":{",
        };
        out.extend_from_slice(op);
        let mut any = false;
        for &i in order {
            let (c, sel) = mt.columns[i];
            if !sel.has(kind.select()) {
                continue;
            }
            // A modified row shows its changed columns only (the guard must not
            // let an unchanged one fall through to the insertion arm).
            let shown = |n: &Row| {
                c == COL_VERSION || c == COL_UUID || !n.fields[c].is_default_of(&ts.column(c).ty)
            };
            match (kind, old, new) {
                (Kind::Modify, Some(o), Some(n)) if column_changed(o, n, c) => {
                    member(ts, c, &mut any, out);
                    let ty = &ts.column(c).ty;
                    datum_diff(&o.datum(c), &n.datum(c), ty).write_json(out);
                }
                (Kind::Modify, Some(_), Some(_)) => {}
                (_, _, Some(n)) if shown(n) => {
                    member(ts, c, &mut any, out);
                    write_column(n, c, out);
                }
                _ => {}
            }
        }
        out.extend_from_slice(b"}}");
    }
}

/// Writes the JSON of column `c` of `row`, `_uuid` and `_version` included.
fn write_column(row: &Row, c: usize, out: &mut BytesMut) {
    match c {
        COL_UUID => write_uuid_json(&row.uuid, out),
        COL_VERSION => write_uuid_json(&row.version, out),
        _ => row.fields[c].write_json(out),
    }
}

/// Whether column `c` differs between `old` and `new`.
fn column_changed(old: &Row, new: &Row, c: usize) -> bool {
    match c {
        COL_UUID => old.uuid != new.uuid,
        COL_VERSION => old.version != new.version,
        _ => old.fields[c] != new.fields[c],
    }
}

/// Writes `"name":` then starts a member of an object whose previous
/// members, if any, need a comma.
fn member(ts: &TableSchema, c: usize, any: &mut bool, out: &mut BytesMut) {
    if *any {
        out.extend_from_slice(b",");
    }
    *any = true;
    write_str(ts.column_name(c), out);
    out.extend_from_slice(b":");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::framing::write_json;
    use crate::data::{Atom, Datum};
    use crate::db::monitor::Monitor;
    use crate::schema::DatabaseSchema;
    use serde_json::json;

    fn schema() -> DatabaseSchema {
        DatabaseSchema::from_json(&schema_json()).unwrap()
    }

    fn schema_json() -> serde_json::Value {
        json!({
            "name": "W", "version": "1.0.0",
            "tables": {"T": {"columns": {
                "i": {"type": "integer"},
                "r": {"type": "real"},
                "b": {"type": "boolean"},
                "s": {"type": "string"},
                "u": {"type": {"key": "uuid", "min": 0, "max": 1}},
                "set": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                "Map": {"type": {"key": "string", "value": "real", "min": 0, "max": "unlimited"}},
                "ref": {"type": {"key": {"type": "uuid", "refTable": "T", "refType": "weak"},
                                 "min": 0, "max": "unlimited"}}
            }}}
        })
    }

    /// Rows covering defaults, one-element and larger sets, maps, reals
    /// that are integers, negative zero, and strings needing escapes.
    fn rows(ts: &TableSchema) -> Vec<Row> {
        let col = |n: &str| ts.columns.iter().position(|c| c.name == n).unwrap();
        let mut out = vec![Row::new_default(ts, uuid::Uuid::from_u128(1))];
        let mut a = Row::new_default(ts, uuid::Uuid::from_u128(2));
        a.version = uuid::Uuid::from_u128(77);
        a.fields[col("i")] = Datum::scalar(Atom::Integer(-42));
        a.fields[col("r")] = Datum::scalar(Atom::Real(-0.0));
        a.fields[col("b")] = Datum::scalar(Atom::Boolean(true));
        a.fields[col("s")] = Datum::scalar(Atom::string("q\"\\\n\u{1}é"));
        a.fields[col("u")] = Datum::scalar(Atom::Uuid(uuid::Uuid::from_u128(9)));
        a.fields[col("set")] = Datum::scalar(Atom::string("one"));
        a.fields[col("Map")] = Datum {
            keys: vec![Atom::string("k")],
            values: Some(vec![Atom::Real(3.0)]),
        };
        out.push(a.clone());
        let mut b = a.clone();
        b.version = uuid::Uuid::from_u128(78);
        b.fields[col("r")] = Datum::scalar(Atom::Real(0.1));
        b.fields[col("set")] = Datum {
            keys: vec![Atom::string("one"), Atom::string("two")],
            values: None,
        };
        b.fields[col("Map")] = Datum {
            keys: vec![Atom::string("k"), Atom::string("l")],
            values: Some(vec![Atom::Real(2.5), Atom::Real(1e300)]),
        };
        b.fields[col("ref")] = Datum {
            keys: vec![
                Atom::Uuid(uuid::Uuid::from_u128(1)),
                Atom::Uuid(uuid::Uuid::from_u128(2)),
            ],
            values: None,
        };
        out.push(b);
        out
    }

    /// Every kind, every version, with all columns and with a selection of
    /// them and of what is reported: the writer gives the tree's bytes.
    #[test]
    fn written_row_updates_are_the_bytes_of_the_rendered_tree() {
        let schema = schema();
        let ts = &schema.tables[0];
        let rows = rows(ts);
        let requests = [
            json!({"T": {}}),
            json!({"T": {"columns": ["s", "Map", "r", "_version"]}}),
            json!({"T": [{"columns": ["set", "i"], "select": {"modify": false}},
                         {"columns": ["ref"], "select": {"initial": false, "insert": false}}]}),
        ];
        let pairs: Vec<(Option<&Row>, Option<&Row>)> = vec![
            (None, Some(&rows[0])),
            (None, Some(&rows[1])),
            (None, Some(&rows[2])),
            (Some(&rows[1]), Some(&rows[2])),
            (Some(&rows[2]), Some(&rows[0])),
            (Some(&rows[0]), Some(&rows[1])),
            (Some(&rows[2]), None),
            (Some(&rows[0]), None),
        ];
        let mut checked = 0;
        for version in [MonitorVersion::V1, MonitorVersion::V2, MonitorVersion::V3] {
            for req in &requests {
                let m = Monitor::from_json(&schema, version, req).unwrap();
                let mt = &m.tables[0];
                let table = TableUpdates::new(ts, mt);
                for (old, new) in &pairs {
                    let kinds: &[Kind] = match (old, new) {
                        (None, Some(_)) => &[Kind::Initial, Kind::Insert],
                        (Some(_), Some(_)) => &[Kind::Modify],
                        _ => &[Kind::Delete],
                    };
                    for &kind in kinds {
                        let Some(kind) = m.classify(mt, kind, *old, *new) else {
                            continue;
                        };
                        let mut want = BytesMut::new();
                        write_json(&m.render(ts, mt, kind, *old, *new), &mut want);
                        let mut got = BytesMut::new();
                        table.write(version, kind, *old, *new, &mut got);
                        assert_eq!(
                            String::from_utf8_lossy(&got),
                            String::from_utf8_lossy(&want),
                            "{version:?} {req} {kind:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 40, "only {checked} row updates were compared");
    }

    /// A notification body over two tables whose schema order is not their
    /// name order, rows picked out of UUID order and one picked twice: the
    /// written body is the encoded tree.
    #[test]
    fn a_written_body_is_the_bytes_of_the_encoded_tree() {
        use crate::db::changes::{ChangeSet, RowChange, TableChanges};
        use std::sync::Arc;
        let mut j = serde_json::to_value(schema_json()).unwrap();
        j["tables"]["A"] = json!({"columns": {"n": {"type": "integer"}}});
        let schema = DatabaseSchema::from_json(&j).unwrap();
        let t = schema.tables.iter().position(|t| t.name == "T").unwrap();
        let a = schema.tables.iter().position(|t| t.name == "A").unwrap();
        let rows = rows(&schema.tables[t]);
        let mut a_row = Row::new_default(&schema.tables[a], uuid::Uuid::from_u128(5));
        a_row.fields[0] = Datum::scalar(Atom::Integer(3));
        let change = |old: Option<&Row>, new: Option<&Row>, uuid| RowChange {
            uuid,
            old: old.cloned().map(Arc::new),
            new: new.cloned().map(Arc::new),
            changed: Vec::new(),
        };
        let u = |n| uuid::Uuid::from_u128(n);
        let changes = ChangeSet {
            tables: vec![
                TableChanges {
                    table: t,
                    rows: vec![
                        change(None, Some(&rows[2]), u(3)),
                        change(Some(&rows[1]), Some(&rows[2]), u(2)),
                        change(Some(&rows[0]), None, u(1)),
                    ],
                },
                TableChanges {
                    table: a,
                    rows: vec![change(None, Some(&a_row), u(5))],
                },
            ],
        };
        let (ti, ai) = (0u32, 1u32);
        for version in [MonitorVersion::V1, MonitorVersion::V2, MonitorVersion::V3] {
            let m = Monitor::from_json(&schema, version, &json!({"T": {}, "A": {}})).unwrap();
            let picks = [
                (ti, 0, Kind::Insert),
                (ai, 0, Kind::Insert),
                (ti, 1, Kind::Modify),
                (ti, 2, Kind::Delete),
                (ti, 0, Kind::Insert),
            ];
            let mut want = BytesMut::new();
            write_json(&m.body_of(&schema, &changes, &picks), &mut want);
            let got = m.write_body(&schema, &changes, &picks);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{version:?}"
            );
            assert_eq!(&m.write_body(&schema, &changes, &[])[..], b"{}");
        }
    }

    /// An initial reply of a table big enough to be written on several
    /// threads, with rows a condition leaves out and a table left empty:
    /// the same bytes as the encoded tree of `initial`.
    #[test]
    fn a_written_initial_reply_is_the_bytes_of_the_encoded_tree() {
        use crate::db::Database;
        let mut j = schema_json();
        j["tables"]["A"] = json!({"columns": {"n": {"type": "integer"}}});
        let schema = std::sync::Arc::new(DatabaseSchema::from_json(&j).unwrap());
        let mut db = Database::new(schema.clone());
        let ops: Vec<serde_json::Value> = (0..5000)
            .map(|i| {
                json!({"op": "insert", "table": "T", "row": {
                    "i": i % 7, "s": format!("row {i}"), "r": (i % 3) as f64 / 2.0,
                    "set": ["set", (0..i % 4).map(|k| format!("e{k}")).collect::<Vec<_>>()],
                    "Map": ["map", [["k", i as f64]]]}})
            })
            .collect();
        let (result, _) = db.transact_with_changes(&ops);
        assert!(
            result
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r.get("error").is_none()),
            "{result}"
        );
        let requests = [
            (MonitorVersion::V1, json!({"T": {}, "A": {}})),
            (MonitorVersion::V2, json!({"T": {}, "A": {}})),
            (MonitorVersion::V3, json!({"T": {"columns": ["s", "i"]}})),
            (
                MonitorVersion::V2,
                json!({"T": {"where": [["i", "!=", 3]]}}),
            ),
            (
                MonitorVersion::V2,
                json!({"T": {"where": [["i", "==", 100]]}}),
            ),
        ];
        for (version, req) in requests {
            let m = Monitor::from_json(&schema, version, &req).unwrap();
            let mut want = BytesMut::new();
            write_json(&m.initial(&db), &mut want);
            let mut got = BytesMut::new();
            m.write_initial(&db, &mut got);
            assert_eq!(got.len(), want.len(), "{version:?} {req}");
            assert!(got == want, "{version:?} {req}: the bytes differ");
        }
    }
}
