//! Monitor bodies (pure): the `<table-updates>` of RFC 7047's `update`
//! and the `<table-updates2>` of `update2`/`update3`, from a change set or
//! from a database's current contents (the initial reply).

use crate::data::atom::write_uuid_str;
use crate::data::row::{COL_UUID, COL_VERSION};
use crate::data::{Datum, Row};
use crate::db::changes::{ChangeSet, RowChange};
use crate::db::condition::Condition;
use crate::db::condition_index::{keys_of, Probe, ProbeKey};
use crate::db::database::Database;
use crate::db::raw_condition::{ChangeRequests, RawRequests};
use crate::db::row_update_writer::TableUpdates;
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};
use crate::schema::{DatabaseSchema, TableSchema, Type};
use serde_json::{Map, Value};

/// Which kinds of change a monitor (or one of its columns) wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Select(u8);

impl Select {
    /// Rows present when the monitor starts.
    pub const INITIAL: Select = Select(1);
    /// Inserted rows.
    pub const INSERT: Select = Select(2);
    /// Deleted rows.
    pub const DELETE: Select = Select(4);
    /// Modified rows.
    pub const MODIFY: Select = Select(8);
    /// Everything.
    pub const ALL: Select = Select(15);

    /// Whether any bit of `other` is set.
    pub fn has(self, other: Select) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOrAssign for Select {
    fn bitor_assign(&mut self, rhs: Select) {
        self.0 |= rhs.0
    }
}

/// The notification format a monitor speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MonitorVersion {
    /// `monitor` / `update` (RFC 7047).
    V1,
    /// `monitor_cond` / `update2`.
    V2,
    /// `monitor_cond_since` / `update3`.
    V3,
}

/// What a monitor watches in one table.
#[derive(Debug, Clone)]
pub struct MonitorTable {
    /// The table's index in the schema.
    pub table: usize,
    /// Union of the selects of every request for this table.
    pub select: Select,
    /// Monitored columns (schema indexes, `_version` included) with their own selects.
    pub columns: Vec<(usize, Select)>,
    /// The condition (monitor_cond and later); `None` matches every row.
    pub condition: Option<Condition>,
}

/// Tables of at least this many rows have their initial rows written on
/// several threads: below it, starting threads costs more than it saves.
const PARALLEL_INITIAL_ROWS: usize = 4096;

/// At most this many threads write one table's initial rows.
const MAX_INITIAL_THREADS: usize = 8;

/// A parsed monitor request: the tables, columns, selects and conditions.
#[derive(Debug, Clone)]
pub struct Monitor {
    /// The notification format.
    pub version: MonitorVersion,
    /// Monitored tables, in schema order.
    pub tables: Vec<MonitorTable>,
}

/// What a row update says of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Initial,
    Insert,
    Delete,
    Modify,
}

impl Kind {
    pub(crate) fn select(self) -> Select {
        match self {
            Kind::Initial => Select::INITIAL,
            Kind::Insert => Select::INSERT,
            Kind::Delete => Select::DELETE,
            Kind::Modify => Select::MODIFY,
        }
    }
}

/// Checks `monitor_cond_since`'s last-txn-id param: ovsdb-server does so
/// only once the monitor requests parsed, so their errors come first.
pub fn check_last_txn_id(last: &Value) -> Result<()> {
    match last {
        Value::String(s) if crate::data::atom::parse_uuid_str(s).is_some() => Ok(()),
        Value::String(_) => Err(OvsdbError::syntax(
            Some(last),
            None,
            "last-txn-id must be UUID format.",
        )),
        _ => Err(OvsdbError::syntax(
            Some(last),
            None,
            "last-txn-id must be string",
        )),
    }
}

impl Monitor {
    /// What ovsdb-server shares one `ovsdb_monitor` between: the tables with
    /// their columns and selects, whatever the version and the conditions.
    pub fn selection_key(&self) -> String {
        let mut key = String::new();
        for t in &self.tables {
            let mut cols = t.columns.clone();
            cols.sort_by_key(|(c, _)| *c);
            key.push_str(&format!("{}:{:?}:", t.table, t.select));
            for (c, sel) in cols {
                key.push_str(&format!("{c}/{sel:?},"));
            }
            key.push(';');
        }
        key
    }

    /// Parses `<monitor-requests>` for `schema` (the third param of `monitor`).
    pub fn from_json(
        schema: &DatabaseSchema,
        version: MonitorVersion,
        requests: &Value,
    ) -> Result<Monitor> {
        let obj = requests.as_object().ok_or_else(|| {
            OvsdbError::syntax(Some(requests), None, "monitor-requests must be object")
        })?;
        let mut tables: Vec<MonitorTable> = Vec::new();
        for (name, mr) in obj {
            let t = schema
                .table_index(name)
                .ok_or_else(|| OvsdbError::syntax(None, None, format!("no table named {name}")))?;
            let ts = &schema.tables[t];
            let mut mt = MonitorTable {
                table: t,
                select: Select::default(),
                columns: Vec::new(),
                condition: None,
            };
            match mr {
                Value::Array(reqs) => {
                    for r in reqs {
                        parse_request(ts, version, r, &mut mt)?;
                    }
                }
                other => parse_request(ts, version, other, &mut mt)?,
            }
            tables.push(mt);
        }
        tables.sort_by_key(|m| m.table);
        Ok(Monitor { version, tables })
    }

    /// The body of the initial reply: every current row the monitor selects.
    /// An empty object when there is nothing.
    pub fn initial(&self, db: &Database) -> Value {
        let mut out = Map::new();
        for mt in &self.tables {
            if !mt.select.has(Select::INITIAL) {
                continue;
            }
            let ts = &db.schema.tables[mt.table];
            let mut rows = Map::new();
            for (u, row) in &db.tables[mt.table].rows {
                if let Some(j) = self.row_update(ts, mt, Kind::Initial, None, Some(row)) {
                    rows.insert(u.hyphenated().to_string(), j);
                }
            }
            if !rows.is_empty() {
                out.insert(ts.name.clone(), Value::Object(rows));
            }
        }
        Value::Object(out)
    }

    /// [`Monitor::initial`] written straight into `out`, byte for byte as
    /// `write_json` would write that value, without building it: a
    /// 100,000-row reply is then one buffer instead of a tree of maps (half
    /// the time, and no peak of memory beside the database).
    pub fn write_initial(&self, db: &Database, out: &mut bytes::BytesMut) {
        use crate::codec::framing::write_str;
        use bytes::BufMut;
        // `Value` objects iterate their keys in order: tables by name, rows
        // by UUID text.
        let mut tables: Vec<&MonitorTable> = self
            .tables
            .iter()
            .filter(|mt| mt.select.has(Select::INITIAL))
            .collect();
        tables.sort_by(|a, b| {
            db.schema.tables[a.table]
                .name
                .cmp(&db.schema.tables[b.table].name)
        });
        out.put_u8(b'{');
        let mut first_table = true;
        for mt in tables {
            let ts = &db.schema.tables[mt.table];
            // Lowercase hyphenated text sorts as the UUID's bytes do.
            let mut rows: Vec<(&uuid::Uuid, &Row)> = match self.probed_initial(db, mt) {
                Some(us) => us
                    .iter()
                    .filter_map(|u| db.tables[mt.table].rows.get_key_value(u))
                    .map(|(u, r)| (u, r.as_ref()))
                    .collect(),
                None => db.tables[mt.table]
                    .rows
                    .iter()
                    .map(|(u, r)| (u, r.as_ref()))
                    .collect(),
            };
            rows.sort_unstable_by_key(|(u, _)| **u);
            let start = out.len();
            if !first_table {
                out.put_u8(b',');
            }
            write_str(&ts.name, out);
            out.extend_from_slice(b":{");
            let table = TableUpdates::new(ts, mt);
            let any = if rows.len() >= PARALLEL_INITIAL_ROWS {
                self.write_initial_rows_in_parallel(&table, &rows, out)
            } else {
                self.write_initial_rows(&table, &rows, out)
            };
            if any {
                out.put_u8(b'}');
                first_table = false;
            } else {
                out.truncate(start);
            }
        }
        out.put_u8(b'}');
    }

    /// Writes `"<uuid>":<row-update>` for each of `rows` the monitor
    /// selects, comma-separated; whether it wrote any.
    fn write_initial_rows(
        &self,
        table: &TableUpdates<'_>,
        rows: &[(&uuid::Uuid, &Row)],
        out: &mut bytes::BytesMut,
    ) -> bool {
        let mut any = false;
        for &(u, row) in rows {
            let Some(kind) = self.classify(table.monitored(), Kind::Initial, None, Some(row))
            else {
                continue;
            };
            if any {
                out.extend_from_slice(b",");
            }
            any = true;
            write_uuid_str(u, out);
            out.extend_from_slice(b":");
            table.write(self.version, kind, None, Some(row), out);
        }
        any
    }

    /// [`write_initial_rows`](Self::write_initial_rows) of a large table,
    /// its rows cut into one run per core, the first written on this thread
    /// and each other on a thread of its own, the runs joined in order: the
    /// database's thread waits for them, but an ovn-northd or IDL starting
    /// on a big database gets its reply in a fraction of the time. A run
    /// whose thread can't be started is written on this thread.
    fn write_initial_rows_in_parallel(
        &self,
        table: &TableUpdates<'_>,
        rows: &[(&uuid::Uuid, &Row)],
        out: &mut bytes::BytesMut,
    ) -> bool {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_INITIAL_THREADS);
        let run = rows.len().div_ceil(threads.max(1));
        let (first, rest) = rows.split_at(run.min(rows.len()));
        if rest.is_empty() {
            return self.write_initial_rows(table, rows, out);
        }
        // A guess at a run's bytes, to spare most of the regrowth.
        let room = run * 256;
        std::thread::scope(|scope| {
            let started: Vec<_> = rest
                .chunks(run)
                .map(|chunk| {
                    let work = move || {
                        let mut part = bytes::BytesMut::with_capacity(room);
                        let any = self.write_initial_rows(table, chunk, &mut part);
                        any.then_some(part)
                    };
                    (chunk, std::thread::Builder::new().spawn_scoped(scope, work))
                })
                .collect();
            // The first run goes straight into `out` on this thread, so
            // that only the others are held twice while being joined.
            let mut any = self.write_initial_rows(table, first, out);
            for (chunk, handle) in started {
                let written = handle.ok().and_then(|h| h.join().ok());
                let part = written.unwrap_or_else(|| {
                    let mut part = bytes::BytesMut::new();
                    let any = self.write_initial_rows(table, chunk, &mut part);
                    any.then_some(part)
                });
                if let Some(part) = part {
                    if any {
                        out.extend_from_slice(b",");
                    }
                    out.extend_from_slice(&part);
                    any = true;
                }
            }
            any
        })
    }

    /// The body of the notification for one committed change set; `None` if
    /// the monitor has nothing to report.
    pub fn update(&self, schema: &DatabaseSchema, changes: &ChangeSet) -> Option<Value> {
        let mut out = Map::new();
        for mt in &self.tables {
            let Some(tc) = changes.table(mt.table) else {
                continue;
            };
            let ts = &schema.tables[mt.table];
            let mut rows = Map::new();
            for rc in &tc.rows {
                let kind = match (&rc.old, &rc.new) {
                    (None, Some(_)) => Kind::Insert,
                    (Some(_), None) => Kind::Delete,
                    (Some(_), Some(_)) => Kind::Modify,
                    (None, None) => continue,
                };
                if let Some(j) = self.row_update(ts, mt, kind, rc.old.as_deref(), rc.new.as_deref())
                {
                    rows.insert(rc.uuid.hyphenated().to_string(), j);
                }
            }
            if !rows.is_empty() {
                out.insert(ts.name.clone(), Value::Object(rows));
            }
        }
        if out.is_empty() {
            None
        } else {
            Some(Value::Object(out))
        }
    }

    /// [`Monitor::with_conditions`] for requests however they were decoded:
    /// those decoded from the bytes are checked against the schema without
    /// a JSON tree, and only one the schema refuses is turned back into
    /// JSON, for ovsdb-server's error.
    pub fn with_change_requests(
        &self,
        schema: &DatabaseSchema,
        requests: &ChangeRequests,
    ) -> Result<Monitor> {
        match requests {
            ChangeRequests::Json(v) => self.with_conditions(schema, v),
            ChangeRequests::Raw(raw) => match self.with_raw_conditions(schema, raw) {
                Some(m) => Ok(m),
                None => self.with_conditions(schema, &raw.to_json()),
            },
        }
    }

    /// [`Monitor::with_conditions`] for requests decoded from the bytes;
    /// `None` wherever that would give an error.
    fn with_raw_conditions(&self, schema: &DatabaseSchema, raw: &RawRequests) -> Option<Monitor> {
        let mut changed: Vec<(usize, Option<Condition>)> = Vec::new();
        for (name, reqs) in &raw.tables {
            let t = schema.table_index(name)?;
            let ts = &schema.tables[t];
            let pos = self.tables.iter().position(|m| m.table == t)?;
            for r in reqs {
                let cond = match &r.condition {
                    Some(c) => Some(Condition::from_raw(ts, c, None)?),
                    None => None,
                };
                match changed.iter_mut().find(|(p, _)| *p == pos) {
                    Some(c) => c.1 = cond,
                    None => changed.push((pos, cond)),
                }
            }
        }
        Some(self.with_changed(changed))
    }

    /// A copy with the conditions of `<monitor-cond-change-requests>` (per
    /// table: a request or array of requests with a `where`); tables not
    /// mentioned keep their condition.
    pub fn with_conditions(&self, schema: &DatabaseSchema, requests: &Value) -> Result<Monitor> {
        let obj = requests.as_object().ok_or_else(|| {
            OvsdbError::syntax(None, None, "monitor-cond-change-requests must be object")
        })?;
        // The new conditions by table position, parsed before anything is
        // copied: cloning the old conditions only to replace them cost as
        // much as parsing a thousand-clause condition.
        let mut changed: Vec<(usize, Option<Condition>)> = Vec::new();
        for (name, reqs) in obj {
            let t = schema
                .table_index(name)
                .ok_or_else(|| OvsdbError::syntax(None, None, format!("no table named {name}")))?;
            let ts = &schema.tables[t];
            let pos = self
                .tables
                .iter()
                .position(|m| m.table == t)
                .ok_or_else(|| {
                    OvsdbError::syntax(
                        None,
                        None,
                        format!("no table named {name} in monitor session"),
                    )
                })?;
            let Some(list) = reqs.as_array() else {
                return Err(OvsdbError::syntax(
                    None,
                    None,
                    format!("table {name} no monitor-cond-change JSON array"),
                ));
            };
            for r in list {
                let mut p = Parser::new(r, format!("table {name}"));
                let w = p.member("where", Kinds::ARRAY | Kinds::OPTIONAL);
                let columns = p.member("columns", Kinds::ARRAY | Kinds::OPTIONAL);
                p.finish()?;
                if columns.is_some() {
                    return Err(OvsdbError::syntax(
                        Some(r),
                        None,
                        "changing columns is unsupported",
                    ));
                }
                let cond = match w {
                    Some(w) => Some(Condition::from_json(ts, w, None)?),
                    None => None,
                };
                match changed.iter_mut().find(|(p, _)| *p == pos) {
                    Some(c) => c.1 = cond,
                    None => changed.push((pos, cond)),
                }
            }
        }
        Ok(self.with_changed(changed))
    }

    /// A copy with the conditions of the tables at the positions in `changed`.
    fn with_changed(&self, mut changed: Vec<(usize, Option<Condition>)>) -> Monitor {
        let tables = self
            .tables
            .iter()
            .enumerate()
            .map(|(i, mt)| MonitorTable {
                table: mt.table,
                select: mt.select,
                columns: mt.columns.clone(),
                condition: match changed.iter_mut().find(|(p, _)| *p == i) {
                    Some((_, c)) => c.take(),
                    None => mt.condition.clone(),
                },
            })
            .collect();
        Monitor {
            version: self.version,
            tables,
        }
    }

    /// The conditions of every table, as JSON (a grouping key).
    pub fn conditions_json(&self) -> Value {
        Value::Array(
            self.tables
                .iter()
                .map(|mt| {
                    mt.condition
                        .as_ref()
                        .map(Condition::to_json)
                        .unwrap_or(Value::Null)
                })
                .collect(),
        )
    }

    /// The `update2` body that moves a client from this monitor's conditions
    /// to `new`'s: rows entering the selection as inserts, rows leaving as deletes.
    pub fn condition_change_update(&self, new: &Monitor, db: &Database) -> Option<Value> {
        let mut out = Map::new();
        for (old_t, new_t) in self.tables.iter().zip(&new.tables) {
            let (oc, nc) = (old_t.condition.as_ref(), new_t.condition.as_ref());
            if oc == nc {
                continue;
            }
            let ts = &db.schema.tables[new_t.table];
            let mut rows = Map::new();
            // Only rows offering a key of a clause in one condition and not
            // the other can move (when the table's rows are indexed by those keys).
            let moved: Option<Vec<uuid::Uuid>> = match (oc, nc) {
                (Some(o), Some(n)) => o
                    .differing_keys(n)
                    .and_then(|keys| probed_rows(db, new_t.table, &keys)),
                _ => None,
            };
            let candidates: Vec<(&uuid::Uuid, &Row)> = match &moved {
                Some(us) => us
                    .iter()
                    .filter_map(|u| db.tables[new_t.table].rows.get_key_value(u))
                    .map(|(u, r)| (u, r.as_ref()))
                    .collect(),
                None => db.tables[new_t.table]
                    .rows
                    .iter()
                    .map(|(u, r)| (u, r.as_ref()))
                    .collect(),
            };
            for (u, row) in candidates {
                let was = oc.is_none_or(|c| c.matches_any(row));
                let is = nc.is_none_or(|c| c.matches_any(row));
                let j = match (was, is) {
                    (true, false) if new_t.select.has(Select::DELETE) => {
                        Some(row_update2(ts, new_t, Kind::Delete, Some(row), None, &[]))
                    }
                    (false, true) if new_t.select.has(Select::INSERT) => {
                        Some(row_update2(ts, new_t, Kind::Insert, None, Some(row), &[]))
                    }
                    _ => None,
                };
                if let Some(j) = j {
                    rows.insert(u.hyphenated().to_string(), j);
                }
            }
            if !rows.is_empty() {
                out.insert(ts.name.clone(), Value::Object(rows));
            }
        }
        (!out.is_empty()).then_some(Value::Object(out))
    }

    fn row_update(
        &self,
        ts: &TableSchema,
        mt: &MonitorTable,
        kind: Kind,
        old: Option<&Row>,
        new: Option<&Row>,
    ) -> Option<Value> {
        let kind = self.classify(mt, kind, old, new)?;
        Some(self.render(ts, mt, kind, old, new))
    }

    /// The rows of `mt` its condition can select, found through the
    /// table's probe index; `None` when they can't be (read the whole table).
    fn probed_initial(&self, db: &Database, mt: &MonitorTable) -> Option<Vec<uuid::Uuid>> {
        if self.version == MonitorVersion::V1 {
            return None;
        }
        let keys = keys_of(Some(mt.condition.as_ref()?))?;
        probed_rows(db, mt.table, &keys)
    }

    /// Every (table, column, whole) a probe key of this monitor's
    /// conditions uses: what [`Database::ensure_probes`] should index before
    /// initial replies and condition changes.
    pub fn probe_columns(&self) -> Vec<(usize, usize, bool)> {
        let mut out = Vec::new();
        for mt in &self.tables {
            let Some(cond) = &mt.condition else {
                continue;
            };
            for p in cond.probes() {
                if let Probe::Key(k) = p {
                    let c = (mt.table, k.column, k.whole);
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
            }
        }
        out
    }

    /// The monitored table `table` (a schema index), if this monitor watches it.
    pub fn table_of(&self, table: usize) -> Option<&MonitorTable> {
        self.tables
            .binary_search_by_key(&table, |m| m.table)
            .ok()
            .map(|i| &self.tables[i])
    }

    /// What the change of one row from `old` to `new` is to `mt`: the kind
    /// of row update it sends, or `None` when it sends nothing (outside the
    /// condition, not selected, or no monitored column changed).
    pub(crate) fn classify(
        &self,
        mt: &MonitorTable,
        mut kind: Kind,
        old: Option<&Row>,
        new: Option<&Row>,
    ) -> Option<Kind> {
        if self.version != MonitorVersion::V1 {
            if let Some(cond) = &mt.condition {
                // A monitor condition selects rows matching ANY of its clauses
                // (ovsdb-server's ovsdb_condition_empty_or_match_any), unlike a "where".
                let old_ok = old.is_some_and(|r| cond.matches_any(r));
                let new_ok = new.is_some_and(|r| cond.matches_any(r));
                if !old_ok && !new_ok {
                    return None;
                }
                kind = match kind {
                    Kind::Initial | Kind::Insert if !new_ok => return None,
                    Kind::Modify if !old_ok => Kind::Insert,
                    Kind::Modify if !new_ok => Kind::Delete,
                    Kind::Delete if !old_ok => return None,
                    k => k,
                };
            }
        }
        if !mt.select.has(kind.select()) {
            return None;
        }
        if kind == Kind::Modify {
            let (o, n) = (old?, new?);
            if !mt.columns.iter().any(|(c, _)| o.datum(*c) != n.datum(*c)) {
                return None;
            }
        }
        Some(kind)
    }

    /// The row update of a change [`classify`](Self::classify) said is `kind`.
    pub(crate) fn render(
        &self,
        ts: &TableSchema,
        mt: &MonitorTable,
        kind: Kind,
        old: Option<&Row>,
        new: Option<&Row>,
    ) -> Value {
        let changed: Vec<bool> = match (kind, old, new) {
            (Kind::Modify, Some(o), Some(n)) => mt
                .columns
                .iter()
                .map(|(c, _)| o.datum(*c) != n.datum(*c))
                .collect(),
            _ => Vec::new(),
        };
        match self.version {
            MonitorVersion::V1 => row_update1(ts, mt, kind, old, new, &changed),
            MonitorVersion::V2 | MonitorVersion::V3 => {
                row_update2(ts, mt, kind, old, new, &changed)
            }
        }
    }

    /// The notification body of the row changes `picks` of `changes`:
    /// (table position in `changes.tables`, row position, kind), as
    /// [`classify`](Self::classify) chose them.
    #[cfg(test)]
    pub(crate) fn body_of(
        &self,
        schema: &DatabaseSchema,
        changes: &ChangeSet,
        picks: &[(u32, u32, Kind)],
    ) -> Value {
        let mut out = Map::new();
        for &(t, r, kind) in picks {
            let Some(tc) = changes.tables.get(t as usize) else {
                continue;
            };
            let (Some(rc), Some(mt)) = (tc.rows.get(r as usize), self.table_of(tc.table)) else {
                continue;
            };
            let ts = &schema.tables[tc.table];
            let j = self.render(ts, mt, kind, rc.old.as_deref(), rc.new.as_deref());
            let rows = out
                .entry(ts.name.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(rows) = rows {
                rows.insert(rc.uuid.hyphenated().to_string(), j);
            }
        }
        Value::Object(out)
    }

    /// [`body_of`](Self::body_of) written straight into a buffer: the same
    /// bytes as encoding that value, without building it.
    pub(crate) fn write_body(
        &self,
        schema: &DatabaseSchema,
        changes: &ChangeSet,
        picks: &[(u32, u32, Kind)],
    ) -> bytes::Bytes {
        use crate::codec::framing::write_str;
        use bytes::BufMut;
        // A JSON object's members are sorted by key: tables by name, rows by
        // UUID text (which sorts as the UUIDs do). A row picked twice keeps
        // its last pick, as a map insertion would.
        let mut rows: Vec<(&str, uuid::Uuid, &MonitorTable, &RowChange, Kind)> = picks
            .iter()
            .filter_map(|&(t, r, kind)| {
                let tc = changes.tables.get(t as usize)?;
                let rc = tc.rows.get(r as usize)?;
                let mt = self.table_of(tc.table)?;
                Some((schema.tables[tc.table].name.as_str(), rc.uuid, mt, rc, kind))
            })
            .collect();
        rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut out = bytes::BytesMut::with_capacity(256 * rows.len().max(1));
        out.put_u8(b'{');
        let mut table: Option<(&str, TableUpdates<'_>)> = None;
        for (i, &(name, uuid, mt, rc, kind)) in rows.iter().enumerate() {
            if rows
                .get(i + 1)
                .is_some_and(|next| (next.0, next.1) == (name, uuid))
            {
                continue;
            }
            match &table {
                Some((current, _)) if *current == name => out.put_u8(b','),
                _ => {
                    if table.is_some() {
                        out.extend_from_slice(b"},");
                    }
                    write_str(name, &mut out);
                    out.extend_from_slice(b":{");
                    table = Some((name, TableUpdates::new(&schema.tables[mt.table], mt)));
                }
            }
            let Some((_, updates)) = &table else {
                continue;
            };
            write_uuid_str(&uuid, &mut out);
            out.put_u8(b':');
            let (old, new) = (rc.old.as_deref(), rc.new.as_deref());
            updates.write(self.version, kind, old, new, &mut out);
        }
        if table.is_some() {
            out.put_u8(b'}');
        }
        out.put_u8(b'}');
        out.freeze()
    }
}

/// The rows of `table` offering one of `keys`, sorted and each once; `None`
/// if some key's column is not indexed.
fn probed_rows(db: &Database, table: usize, keys: &[ProbeKey]) -> Option<Vec<uuid::Uuid>> {
    let mut out = Vec::new();
    for k in keys {
        out.extend_from_slice(db.rows_probed(table, k)?);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// The kind of a committed row change: inserted, deleted or modified.
pub(crate) fn change_kind(rc: &crate::db::changes::RowChange) -> Option<Kind> {
    match (&rc.old, &rc.new) {
        (None, Some(_)) => Some(Kind::Insert),
        (Some(_), None) => Some(Kind::Delete),
        (Some(_), Some(_)) => Some(Kind::Modify),
        (None, None) => None,
    }
}

fn row_update1(
    ts: &TableSchema,
    mt: &MonitorTable,
    kind: Kind,
    old: Option<&Row>,
    new: Option<&Row>,
    changed: &[bool],
) -> Value {
    let mut old_json = Map::new();
    let mut new_json = Map::new();
    for (i, (c, sel)) in mt.columns.iter().enumerate() {
        if !sel.has(kind.select()) {
            continue;
        }
        let name = ts.column_name(*c).to_string();
        if (kind == Kind::Modify && changed[i]) || kind == Kind::Delete {
            if let Some(o) = old {
                old_json.insert(name.clone(), o.datum_json(*c));
            }
        }
        if matches!(kind, Kind::Initial | Kind::Insert | Kind::Modify) {
            if let Some(n) = new {
                new_json.insert(name, n.datum_json(*c));
            }
        }
    }
    let mut row = Map::new();
    if matches!(kind, Kind::Delete | Kind::Modify) {
        row.insert("old".into(), Value::Object(old_json));
    }
    if matches!(kind, Kind::Initial | Kind::Insert | Kind::Modify) {
        row.insert("new".into(), Value::Object(new_json));
    }
    Value::Object(row)
}

fn row_update2(
    ts: &TableSchema,
    mt: &MonitorTable,
    kind: Kind,
    old: Option<&Row>,
    new: Option<&Row>,
    changed: &[bool],
) -> Value {
    let mut row = Map::new();
    if kind == Kind::Delete {
        row.insert("delete".into(), Value::Null);
        return Value::Object(row);
    }
    let mut diff = Map::new();
    for (i, (c, sel)) in mt.columns.iter().enumerate() {
        if !sel.has(kind.select()) {
            continue;
        }
        let ty = &ts.column(*c).ty;
        // The name is copied only for the columns that go out.
        let name = || ts.column_name(*c).to_string();
        match (kind, old, new) {
            (Kind::Modify, Some(o), Some(n)) if changed[i] => {
                diff.insert(name(), datum_diff(&o.datum(*c), &n.datum(*c), ty).to_json());
            }
            (Kind::Modify, Some(_), Some(_)) => {}
            (_, _, Some(n)) => {
                let d = n.datum(*c);
                if *c == COL_VERSION || *c == COL_UUID || !d.is_default_of(ty) {
                    diff.insert(name(), d.to_json());
                }
            }
            _ => {}
        }
    }
    let op = match kind {
        Kind::Initial => "initial",
        Kind::Modify => "modify",
        _ => "insert",
    };
    row.insert(op.into(), Value::Object(diff));
    Value::Object(row)
}

/// The `update2` difference of a column: the new value for scalars and
/// optionals; for sets the symmetric difference; for maps the removed pairs,
/// the added pairs, and the new value of changed keys.
pub fn datum_diff(old: &Datum, new: &Datum, ty: &Type) -> Datum {
    if ty.max <= 1 {
        return new.clone();
    }
    let mut keys = Vec::new();
    let mut values = Vec::new();
    let (ov, nv) = (old.values.as_deref(), new.values.as_deref());
    let (mut i, mut j) = (0, 0);
    while i < old.keys.len() || j < new.keys.len() {
        let ord = match (old.keys.get(i), new.keys.get(j)) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                keys.push(old.keys[i].clone());
                if let Some(ov) = ov {
                    values.push(ov[i].clone());
                }
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                keys.push(new.keys[j].clone());
                if let Some(nv) = nv {
                    values.push(nv[j].clone());
                }
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if let (Some(ov), Some(nv)) = (ov, nv) {
                    if ov[i] != nv[j] {
                        keys.push(new.keys[j].clone());
                        values.push(nv[j].clone());
                    }
                }
                i += 1;
                j += 1;
            }
        }
    }
    Datum {
        keys,
        values: if ty.is_map() { Some(values) } else { None },
    }
}

fn parse_request(
    ts: &TableSchema,
    version: MonitorVersion,
    json: &Value,
    mt: &mut MonitorTable,
) -> Result<()> {
    let mut p = Parser::new(json, format!("table {}", ts.name));
    let where_json = if version != MonitorVersion::V1 {
        p.member("where", Kinds::ARRAY | Kinds::OPTIONAL)
    } else {
        None
    };
    let columns = p.member("columns", Kinds::ARRAY | Kinds::OPTIONAL);
    let select_json = p.member("select", Kinds::OBJECT | Kinds::OPTIONAL);
    p.finish()?;
    let select = match select_json {
        Some(sj) => {
            let mut sp = Parser::new(sj, format!("table {} select", ts.name));
            let mut s = Select::default();
            for (name, bit) in [
                ("initial", Select::INITIAL),
                ("insert", Select::INSERT),
                ("delete", Select::DELETE),
                ("modify", Select::MODIFY),
            ] {
                let on = sp
                    .member(name, Kinds::BOOLEAN | Kinds::OPTIONAL)
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                if on {
                    s |= bit;
                }
            }
            sp.finish()?;
            s
        }
        None => Select::ALL,
    };
    mt.select |= select;
    let add = |c: usize, mt: &mut MonitorTable| -> Result<()> {
        if mt.columns.iter().any(|(x, _)| *x == c) {
            return Err(OvsdbError::syntax(
                columns,
                None,
                format!("column {} mentioned more than once", ts.column_name(c)),
            ));
        }
        mt.columns.push((c, select));
        Ok(())
    };
    match columns {
        Some(cj) => {
            let bad = || OvsdbError::syntax(Some(cj), None, "array of column names expected");
            for v in cj.as_array().ok_or_else(bad)? {
                let s = v.as_str().ok_or_else(bad)?;
                let c = ts.column_index(s).ok_or_else(|| {
                    OvsdbError::syntax(Some(cj), None, format!("{s} is not a valid column name"))
                })?;
                add(c, mt)?;
            }
        }
        None => {
            add(COL_VERSION, mt)?;
            for c in 0..ts.columns.len() {
                add(c, mt)?;
            }
        }
    }
    if version != MonitorVersion::V1 {
        if let Some(w) = where_json {
            mt.condition = Some(Condition::from_json(ts, w, None)?);
        }
    }
    Ok(())
}
