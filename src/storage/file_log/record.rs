//! [`RecordWriter`]: the transaction records of a file, built straight from
//! a [`ChangeSet`]'s rows into one reused buffer, framed and ready for one
//! `pwrite`.
//!
//! The record rules are ovsdb-server 3.1's (see `ovsdb_txn`'s module
//! documentation, which this follows to the letter): deletes are `null`,
//! inserts list their persistent columns that are not at their default,
//! modifications their changed persistent columns, sets and maps as diffs
//! under `"_is_diff": true` except where ovsdb-server's reader needs the
//! whole value (the old value is the default; or a diff longer than the
//! column's maximum, which makes the whole record a non-diff one), then
//! `_date` and `_comment`. Ephemeral columns and `_version` are never
//! written; a change set touching no persistent column makes no record.
//!
//! The text is byte for byte what `serde_json` writes for the record as a
//! `serde_json::Value` (object members sorted by name, as its map sorts
//! them), so records are the same whichever way they were built.

use crate::data::datum_json::{
    decimal, write_datum, write_diff, write_i64, write_str, write_uuid_str,
};
use crate::data::{Datum, Row};
use crate::db::changes::{ChangeSet, RowChange};
use crate::schema::DatabaseSchema;
use crate::storage::sha1;
use std::sync::Arc;

/// Room left before the body for the header, `OVSDB JSON <len> <sha1>\n`
/// (at most 11 + 20 + 1 + 40 + 1 bytes), so the record needs no copy.
const HEADER_ROOM: usize = 80;

/// A top-level member of a record, in the order they are written.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Table(usize),
    Comment,
    Date,
    IsDiff,
}

/// A diff longer than its column's maximum: ovsdb-server could not read it
/// back, so the record must be written with whole values.
struct DiffTooLong;

/// Builds the records of one database schema (see the module documentation).
pub struct RecordWriter {
    schema: Arc<DatabaseSchema>,
    /// The record's members sorted by name.
    slots: Vec<Slot>,
    /// Per table: `"<name>":`.
    table_keys: Vec<Box<[u8]>>,
    /// Per table: the persistent columns sorted by name, each with `"<name>":`.
    columns: Vec<Vec<(usize, Box<[u8]>)>>,
    /// Per table, per column: its position in `columns`, `u32::MAX` if ephemeral.
    rank: Vec<Vec<u32>>,
    /// Per table, per column: the default value.
    defaults: Vec<Vec<Datum>>,
    /// Header room, then the body of the last record.
    buf: Vec<u8>,
    /// Column ranks of one modified row (reused).
    ranks: Vec<u32>,
}

fn quoted_key(name: &str) -> Box<[u8]> {
    let mut v = Vec::with_capacity(name.len() + 3);
    write_str(&mut v, name);
    v.push(b':');
    v.into_boxed_slice()
}

impl RecordWriter {
    /// A writer for `schema`'s records.
    pub fn new(schema: Arc<DatabaseSchema>) -> RecordWriter {
        let mut named: Vec<(&str, Slot)> = schema
            .tables
            .iter()
            .enumerate()
            .map(|(t, ts)| (ts.name.as_str(), Slot::Table(t)))
            .collect();
        named.extend([
            ("_comment", Slot::Comment),
            ("_date", Slot::Date),
            ("_is_diff", Slot::IsDiff),
        ]);
        named.sort_by(|a, b| a.0.cmp(b.0));
        let mut columns = Vec::new();
        let mut rank = Vec::new();
        for ts in &schema.tables {
            let mut cols: Vec<(usize, &str)> = ts
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.ephemeral)
                .map(|(i, c)| (i, c.name.as_str()))
                .collect();
            cols.sort_by(|a, b| a.1.cmp(b.1));
            let mut r = vec![u32::MAX; ts.columns.len()];
            for (pos, (c, _)) in cols.iter().enumerate() {
                r[*c] = pos as u32;
            }
            rank.push(r);
            columns.push(cols.into_iter().map(|(c, n)| (c, quoted_key(n))).collect());
        }
        RecordWriter {
            slots: named.into_iter().map(|(_, s)| s).collect(),
            table_keys: schema.tables.iter().map(|t| quoted_key(&t.name)).collect(),
            columns,
            rank,
            defaults: schema
                .tables
                .iter()
                .map(|t| t.columns.iter().map(|c| Datum::default_of(&c.ty)).collect())
                .collect(),
            schema,
            buf: Vec::with_capacity(4096),
            ranks: Vec::new(),
        }
    }

    /// The schema records are written for.
    pub fn schema(&self) -> &Arc<DatabaseSchema> {
        &self.schema
    }

    /// The framed record of one committed transaction, `None` if it changed
    /// no persistent column. `column_diffs`: write `_is_diff` records (when
    /// ovsdb-server can read every diff back).
    pub fn transaction(
        &mut self,
        changes: &ChangeSet,
        comment: Option<&str>,
        date_ms: i64,
        column_diffs: bool,
    ) -> Option<&[u8]> {
        let mut by_table: Vec<Option<Vec<&RowChange>>> = vec![None; self.schema.tables.len()];
        for tc in &changes.tables {
            if let Some(slot) = by_table.get_mut(tc.table) {
                let rows = slot.get_or_insert_with(Vec::new);
                rows.extend(
                    tc.rows
                        .iter()
                        .filter(|r| r.old.is_some() || r.new.is_some()),
                );
            }
        }
        for rows in by_table.iter_mut().flatten() {
            rows.sort_unstable_by_key(|r| r.uuid);
        }
        let wrote = match self.body(&by_table, comment, date_ms, column_diffs) {
            Ok(w) => w,
            Err(DiffTooLong) => self
                .body(&by_table, comment, date_ms, false)
                .unwrap_or(false),
        };
        if !wrote {
            return None;
        }
        Some(self.frame())
    }

    /// The framed snapshot record (compaction, conversion): every row as an
    /// insert, `tables[t]` the rows of table `t` in any order.
    pub fn snapshot(
        &mut self,
        tables: &mut [Vec<Arc<Row>>],
        comment: &str,
        date_ms: i64,
        is_diff: bool,
    ) -> &[u8] {
        for rows in tables.iter_mut() {
            rows.sort_unstable_by_key(|r| r.uuid);
        }
        self.buf.clear();
        self.buf.resize(HEADER_ROOM, 0);
        self.buf.push(b'{');
        let mut first = true;
        for i in 0..self.slots.len() {
            match self.slots[i] {
                Slot::Table(t) => {
                    let Some(rows) = tables.get(t).filter(|r| !r.is_empty()) else {
                        continue;
                    };
                    self.member(&mut first, t);
                    self.buf.push(b'{');
                    for (n, row) in rows.iter().enumerate() {
                        if n > 0 {
                            self.buf.push(b',');
                        }
                        self.insert(t, row);
                    }
                    self.buf.push(b'}');
                }
                s => self.annotation(&mut first, s, Some(comment), date_ms, is_diff),
            }
        }
        self.buf.extend_from_slice(b"}\n");
        self.frame()
    }

    /// Frees the buffer of a large record (a snapshot) that later
    /// transaction records will not need.
    pub(super) fn release(&mut self) {
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::with_capacity(4096);
        }
    }

    /// Writes the body after the header room; `Ok(false)` if no row was written.
    fn body(
        &mut self,
        by_table: &[Option<Vec<&RowChange>>],
        comment: Option<&str>,
        date_ms: i64,
        is_diff: bool,
    ) -> Result<bool, DiffTooLong> {
        self.buf.clear();
        self.buf.resize(HEADER_ROOM, 0);
        self.buf.push(b'{');
        let mut first = true;
        let mut any = false;
        for i in 0..self.slots.len() {
            match self.slots[i] {
                Slot::Table(t) => {
                    let Some(rows) = &by_table[t] else { continue };
                    let mut opened = false;
                    for rc in rows {
                        let start = self.buf.len();
                        let (first_before, opened_before) = (first, opened);
                        if opened {
                            self.buf.push(b',');
                        } else {
                            self.member(&mut first, t);
                            self.buf.push(b'{');
                            opened = true;
                        }
                        write_uuid_str(&mut self.buf, &rc.uuid);
                        self.buf.push(b':');
                        let wrote = match (&rc.old, &rc.new) {
                            (_, None) => {
                                self.buf.extend_from_slice(b"null");
                                true
                            }
                            (None, Some(new)) => {
                                self.insert_columns(t, new);
                                true
                            }
                            (Some(old), Some(new)) => self.modify(t, rc, old, new, is_diff)?,
                        };
                        if !wrote {
                            // Nothing persistent changed in this row.
                            self.buf.truncate(start);
                            (first, opened) = (first_before, opened_before);
                        }
                    }
                    if opened {
                        self.buf.push(b'}');
                        any = true;
                    }
                }
                s => self.annotation(&mut first, s, comment, date_ms, is_diff),
            }
        }
        self.buf.extend_from_slice(b"}\n");
        Ok(any)
    }

    /// Starts the member of table `t`: `,"<name>":`.
    fn member(&mut self, first: &mut bool, t: usize) {
        if !*first {
            self.buf.push(b',');
        }
        *first = false;
        self.buf.extend_from_slice(&self.table_keys[t]);
    }

    fn annotation(
        &mut self,
        first: &mut bool,
        slot: Slot,
        comment: Option<&str>,
        date_ms: i64,
        is_diff: bool,
    ) {
        let key: &[u8] = match slot {
            Slot::Comment if comment.is_some() => b"\"_comment\":",
            Slot::Date => b"\"_date\":",
            Slot::IsDiff if is_diff => b"\"_is_diff\":true",
            _ => return,
        };
        if !*first {
            self.buf.push(b',');
        }
        *first = false;
        self.buf.extend_from_slice(key);
        match slot {
            Slot::Comment => write_str(&mut self.buf, comment.unwrap_or_default()),
            Slot::Date => write_i64(&mut self.buf, date_ms),
            _ => {}
        }
    }

    /// `"<uuid>":{<columns>}` of a row as inserted.
    fn insert(&mut self, t: usize, row: &Row) {
        write_uuid_str(&mut self.buf, &row.uuid);
        self.buf.push(b':');
        self.insert_columns(t, row);
    }

    /// `{<columns>}`: the persistent columns not at their default.
    fn insert_columns(&mut self, t: usize, row: &Row) {
        self.buf.push(b'{');
        let mut first = true;
        for (c, key) in &self.columns[t] {
            let Some(d) = row.fields.get(*c) else {
                continue;
            };
            if *d == self.defaults[t][*c] {
                continue;
            }
            if !first {
                self.buf.push(b',');
            }
            first = false;
            self.buf.extend_from_slice(key);
            write_datum(&mut self.buf, d);
        }
        self.buf.push(b'}');
    }

    /// `{<changed columns>}` of a modified row; `Ok(false)` (and garbage to
    /// cut off) if no persistent column changed.
    fn modify(
        &mut self,
        t: usize,
        rc: &RowChange,
        old: &Row,
        new: &Row,
        is_diff: bool,
    ) -> Result<bool, DiffTooLong> {
        let mut ranks = std::mem::take(&mut self.ranks);
        ranks.clear();
        ranks.extend(
            rc.changed
                .iter()
                .filter_map(|c| self.rank[t].get(*c).copied())
                .filter(|r| *r != u32::MAX),
        );
        ranks.sort_unstable();
        ranks.dedup();
        self.buf.push(b'{');
        let mut first = true;
        let mut result = Ok(());
        for r in &ranks {
            let c = self.columns[t][*r as usize].0;
            let (Some(o), Some(n)) = (old.fields.get(c), new.fields.get(c)) else {
                continue;
            };
            let ty = &self.schema.tables[t].columns[c].ty;
            // ovsdb-server's reader replaces a column at its default by the
            // diff, so then the whole value is written (see the module docs).
            let as_diff = is_diff && ty.max > 1 && *o != self.defaults[t][c];
            if !as_diff && o == n {
                continue;
            }
            let (col_start, first_before) = (self.buf.len(), first);
            if !first {
                self.buf.push(b',');
            }
            first = false;
            self.buf.extend_from_slice(&self.columns[t][*r as usize].1);
            if as_diff {
                // One pass: the diff is written and counted together.
                let len = write_diff(&mut self.buf, o, n);
                if len == 0 {
                    self.buf.truncate(col_start);
                    first = first_before;
                } else if len as u64 > ty.max_u64() {
                    result = Err(DiffTooLong);
                    break;
                }
            } else {
                write_datum(&mut self.buf, n);
            }
        }
        self.buf.push(b'}');
        self.ranks = ranks;
        result.map(|()| !first)
    }

    /// Puts the header before the body; the whole record.
    fn frame(&mut self) -> &[u8] {
        let body = &self.buf[HEADER_ROOM..];
        let digest = sha1::sha1(body);
        let mut header = [0u8; HEADER_ROOM];
        let mut n = 0;
        let mut put = |bytes: &[u8]| {
            header[n..n + bytes.len()].copy_from_slice(bytes);
            n += bytes.len();
        };
        put(b"OVSDB JSON ");
        put(decimal(body.len() as u64, &mut [0u8; 20]));
        put(b" ");
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for b in digest {
            put(&[HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
        put(b"\n");
        let start = HEADER_ROOM - n;
        self.buf[start..HEADER_ROOM].copy_from_slice(&header[..n]);
        &self.buf[start..]
    }
}
