//! Monitor fan-out: the monitors of a database's sessions gathered into
//! groups of equal monitors, and for each committed change set the groups
//! it concerns with their notification bodies.
//!
//! Sessions asking for the same monitor (version, tables, columns, selects
//! and conditions) share one group. Which groups a changed row concerns is
//! found through each table's [`MonitorIndex`], never by asking every
//! group; groups with the same selection that report the same row changes
//! share one encoded body, so a commit that 100 distinct conditions select
//! is rendered and encoded once.

use crate::db::changes::ChangeSet;
use crate::db::condition_index::MonitorIndex;
use crate::db::monitor::{change_kind, Kind, Monitor, MonitorVersion};
use crate::schema::DatabaseSchema;
use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One session's monitor in a group, with whatever its owner needs to reach it.
#[derive(Debug, Clone)]
pub struct Member<H> {
    /// The session.
    pub session: u64,
    /// The session's id for the monitor (the `json-value` of its request).
    pub monitor_id: Value,
    /// How to reach the session.
    pub handle: H,
}

/// Sessions sharing one monitor.
#[derive(Debug)]
pub struct Group<H> {
    /// The monitor they share.
    pub monitor: Arc<Monitor>,
    /// Its sessions.
    pub members: Vec<Member<H>>,
    key: u64,
    selection: u32,
}

/// What makes two groups' update bodies equal: the selection and the
/// rows picked, each as (table, row, kind).
type BodyKey = (u32, Vec<(u32, u32, Kind)>);

/// A database's monitor groups and the index that finds them.
#[derive(Debug)]
pub struct FanOut<H> {
    groups: Vec<Option<Group<H>>>,
    free: Vec<usize>,
    /// Groups by the hash of what makes monitors equal ([`group_hash`]).
    by_key: HashMap<u64, Vec<usize>>,
    member_of: HashMap<(u64, String), usize>,
    /// Selection keys (version, tables, columns, selects) by number, with
    /// how many groups use each.
    selections: HashMap<String, (u32, usize)>,
    next_selection: u32,
    /// Per table (schema index): the groups by their conditions.
    index: HashMap<usize, MonitorIndex>,
    /// Per group, the generation of the row it was last considered for.
    seen: Vec<u64>,
    generation: u64,
}

impl<H> Default for FanOut<H> {
    fn default() -> FanOut<H> {
        FanOut {
            groups: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            member_of: HashMap::new(),
            selections: HashMap::new(),
            next_selection: 0,
            index: HashMap::new(),
            seen: Vec::new(),
            generation: 0,
        }
    }
}

/// The hash of what makes two monitors one group: version, selection and
/// conditions (a hash, not a key text: a 3,000-clause condition's text is
/// 200 KB per session).
fn group_hash(monitor: &Monitor) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = crate::db::condition_index::ProbeHasher::default();
    monitor.version.hash(&mut h);
    monitor.selection_key().hash(&mut h);
    for mt in &monitor.tables {
        mt.condition.hash(&mut h);
    }
    h.finish()
}

/// What makes monitors' updates the same shape: version, tables, columns
/// and selects (conditions aside); groups with equal keys share a number.
fn selection_key_of(monitor: &Monitor) -> String {
    format!("{:?}|{}", monitor.version, monitor.selection_key())
}

/// Whether two monitors belong in one group.
fn same_group(a: &Monitor, b: &Monitor) -> bool {
    a.version == b.version
        && a.tables.len() == b.tables.len()
        && a.selection_key() == b.selection_key()
        && a.tables
            .iter()
            .zip(&b.tables)
            .all(|(x, y)| x.condition == y.condition)
}

/// The condition the index files a group's table under: V1 monitors
/// have none, whatever their request said.
fn indexed_condition<'m>(
    monitor: &'m Monitor,
    mt: &'m crate::db::monitor::MonitorTable,
) -> Option<&'m crate::db::condition::Condition> {
    match monitor.version {
        MonitorVersion::V1 => None,
        _ => mt.condition.as_ref(),
    }
}

impl<H> FanOut<H> {
    /// Whether no session monitors anything.
    pub fn is_empty(&self) -> bool {
        self.member_of.is_empty()
    }

    /// How many groups there are.
    pub fn n_groups(&self) -> usize {
        self.by_key.values().map(Vec::len).sum()
    }

    /// Adds `session`'s monitor `monitor_id` to the group of monitors equal
    /// to `monitor` (created if none); returns the group.
    pub fn join(
        &mut self,
        monitor: Arc<Monitor>,
        session: u64,
        monitor_id: Value,
        handle: H,
    ) -> usize {
        let key = group_hash(&monitor);
        self.join_keyed(key, monitor, session, monitor_id, handle)
    }

    /// [`FanOut::join`] with the monitor's [`group_hash`] already known.
    fn join_keyed(
        &mut self,
        key: u64,
        monitor: Arc<Monitor>,
        session: u64,
        monitor_id: Value,
        handle: H,
    ) -> usize {
        let g = match self.find_group(key, &monitor) {
            Some(g) => g,
            None => self.add_group(key, monitor),
        };
        self.member_of.insert((session, monitor_id.to_string()), g);
        if let Some(group) = self.groups[g].as_mut() {
            group.members.push(Member {
                session,
                monitor_id,
                handle,
            });
        }
        g
    }

    /// The group of monitors equal to `monitor`, whose hash is `key`.
    fn find_group(&self, key: u64, monitor: &Monitor) -> Option<usize> {
        self.by_key.get(&key).and_then(|gs| {
            gs.iter().copied().find(|&g| {
                self.groups[g]
                    .as_ref()
                    .is_some_and(|group| same_group(&group.monitor, monitor))
            })
        })
    }

    fn add_group(&mut self, key: u64, monitor: Arc<Monitor>) -> usize {
        let sel_key = selection_key_of(&monitor);
        let next = &mut self.next_selection;
        let sel = self.selections.entry(sel_key).or_insert_with(|| {
            *next += 1;
            (*next, 0)
        });
        sel.1 += 1;
        let selection = sel.0;
        let g = match self.free.pop() {
            Some(g) => g,
            None => {
                self.groups.push(None);
                self.seen.push(0);
                self.groups.len() - 1
            }
        };
        for mt in &monitor.tables {
            let cond = indexed_condition(&monitor, mt);
            self.index.entry(mt.table).or_default().insert(g, cond);
        }
        self.by_key.entry(key).or_default().push(g);
        self.groups[g] = Some(Group {
            monitor,
            members: Vec::new(),
            key,
            selection,
        });
        g
    }

    fn remove_group(&mut self, g: usize) {
        let Some(group) = self.groups.get_mut(g).and_then(Option::take) else {
            return;
        };
        for mt in &group.monitor.tables {
            let cond = indexed_condition(&group.monitor, mt);
            if let Some(index) = self.index.get_mut(&mt.table) {
                index.remove(g, cond);
                if index.is_empty() {
                    self.index.remove(&mt.table);
                }
            }
        }
        if let Some(gs) = self.by_key.get_mut(&group.key) {
            gs.retain(|x| *x != g);
            if gs.is_empty() {
                self.by_key.remove(&group.key);
            }
        }
        let sel_key = selection_key_of(&group.monitor);
        if let Some(sel) = self.selections.get_mut(&sel_key) {
            sel.1 -= 1;
            if sel.1 == 0 {
                self.selections.remove(&sel_key);
            }
        }
        self.free.push(g);
    }

    /// The monitor `session` has under `monitor_id`.
    pub fn monitor_of(&self, session: u64, monitor_id: &Value) -> Option<&Arc<Monitor>> {
        let g = *self.member_of.get(&(session, monitor_id.to_string()))?;
        self.groups.get(g)?.as_ref().map(|group| &group.monitor)
    }

    /// Removes `session`'s monitor `monitor_id`; returns it, with its handle.
    pub fn leave(&mut self, session: u64, monitor_id: &Value) -> Option<(Arc<Monitor>, H)> {
        let g = self.member_of.remove(&(session, monitor_id.to_string()))?;
        let group = self.groups.get_mut(g)?.as_mut()?;
        let i = group
            .members
            .iter()
            .position(|m| m.session == session && &m.monitor_id == monitor_id)?;
        let member = group.members.swap_remove(i);
        let monitor = group.monitor.clone();
        if group.members.is_empty() {
            self.remove_group(g);
        }
        Some((monitor, member.handle))
    }

    /// Moves `session`'s monitor `old_id` to `monitor` (the same selection
    /// with new conditions) under `new_id`; returns its group. A session
    /// alone in its group with no group to join keeps its group, refiled
    /// under the keys that changed only: with distinct conditions (every
    /// OVN chassis) that is every `monitor_cond_change`.
    pub fn change(
        &mut self,
        monitor: Arc<Monitor>,
        session: u64,
        old_id: &Value,
        new_id: Value,
        handle: H,
    ) -> usize {
        let key = group_hash(&monitor);
        let old_key = (session, old_id.to_string());
        // Refiled in place only if alone in its group, with the same
        // selection (so the same tables, in order), and no group to join.
        let selection = self
            .selections
            .get(&selection_key_of(&monitor))
            .map(|s| s.0);
        let alone = self.member_of.get(&old_key).copied().filter(|&g| {
            self.groups[g]
                .as_ref()
                .is_some_and(|group| group.members.len() == 1 && Some(group.selection) == selection)
        });
        let Some(g) = alone.filter(|_| self.find_group(key, &monitor).is_none()) else {
            self.leave(session, old_id);
            return self.join_keyed(key, monitor, session, new_id, handle);
        };
        let Some(group) = self.groups[g].as_mut() else {
            return g;
        };
        for (old_t, new_t) in group.monitor.tables.iter().zip(&monitor.tables) {
            let old_c = indexed_condition(&group.monitor, old_t);
            let new_c = indexed_condition(&monitor, new_t);
            self.index
                .entry(new_t.table)
                .or_default()
                .rekey(g, old_c, new_c);
        }
        if let Some(gs) = self.by_key.get_mut(&group.key) {
            gs.retain(|x| *x != g);
            if gs.is_empty() {
                self.by_key.remove(&group.key);
            }
        }
        self.by_key.entry(key).or_default().push(g);
        group.key = key;
        group.monitor = monitor;
        group.members = vec![Member {
            session,
            monitor_id: new_id.clone(),
            handle,
        }];
        self.member_of.remove(&old_key);
        self.member_of.insert((session, new_id.to_string()), g);
        g
    }

    /// Removes every monitor of `session`.
    pub fn leave_session(&mut self, session: u64) {
        let ids: Vec<Value> = self
            .groups
            .iter()
            .flatten()
            .flat_map(|g| g.members.iter())
            .filter(|m| m.session == session)
            .map(|m| m.monitor_id.clone())
            .collect();
        for id in ids {
            self.leave(session, &id);
        }
    }

    /// Removes every group, returning their members.
    pub fn drain(&mut self) -> Vec<Member<H>> {
        let members = self
            .groups
            .iter_mut()
            .filter_map(Option::take)
            .flat_map(|g| g.members)
            .collect();
        *self = FanOut {
            next_selection: self.next_selection,
            ..FanOut::default()
        };
        members
    }

    /// A group by number.
    pub fn group(&self, g: usize) -> Option<&Group<H>> {
        self.groups.get(g)?.as_ref()
    }

    /// The groups `changes` concerns, each with its notification body
    /// (`<table-updates>`, encoded), in no particular order.
    pub fn updates(&mut self, schema: &DatabaseSchema, changes: &ChangeSet) -> Vec<(usize, Bytes)> {
        let mut picks: HashMap<usize, Vec<(u32, u32, Kind)>> = HashMap::new();
        let mut touched: Vec<usize> = Vec::new();
        let mut candidates: Vec<usize> = Vec::new();
        for (ti, tc) in changes.tables.iter().enumerate() {
            let Some(index) = self.index.get(&tc.table) else {
                continue;
            };
            for (ri, rc) in tc.rows.iter().enumerate() {
                let Some(kind) = change_kind(rc) else {
                    continue;
                };
                let (old, new) = (rc.old.as_deref(), rc.new.as_deref());
                candidates.clear();
                index.candidates(old, new, &mut candidates);
                self.generation += 1;
                for &g in &candidates {
                    if self.seen[g] == self.generation {
                        continue;
                    }
                    self.seen[g] = self.generation;
                    let Some(group) = &self.groups[g] else {
                        continue;
                    };
                    let Some(mt) = group.monitor.table_of(tc.table) else {
                        continue;
                    };
                    if let Some(k) = group.monitor.classify(mt, kind, old, new) {
                        let p = picks.entry(g).or_default();
                        if p.is_empty() {
                            touched.push(g);
                        }
                        p.push((ti as u32, ri as u32, k));
                    }
                }
            }
        }
        // Groups of one selection reporting the same rows send the same bytes.
        let mut bodies: HashMap<BodyKey, Bytes> = HashMap::new();
        let mut out = Vec::with_capacity(touched.len());
        for g in touched {
            let (Some(group), Some(mut p)) = (&self.groups[g], picks.remove(&g)) else {
                continue;
            };
            p.sort_unstable_by_key(|&(t, r, _)| (t, r));
            let bytes = bodies
                .entry((group.selection, p))
                .or_insert_with_key(|(_, p)| group.monitor.write_body(schema, changes, p))
                .clone();
            out.push((g, bytes));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::framing::encode_message;
    use crate::db::Database;
    use serde_json::json;

    fn schema() -> Arc<DatabaseSchema> {
        let j = json!({
            "name": "S",
            "tables": {
                "Datapath": {"columns": {"key": {"type": "integer"}}, "isRoot": true},
                "Port": {"columns": {
                    "name": {"type": "string"},
                    "dp": {"type": {"key": {"type": "uuid", "refTable": "Datapath"}}},
                    "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                    "n": {"type": "integer"}
                }, "isRoot": true}
            }
        });
        Arc::new(DatabaseSchema::from_json(&j).expect("schema"))
    }

    fn monitor(schema: &DatabaseSchema, version: MonitorVersion, requests: Value) -> Arc<Monitor> {
        Arc::new(Monitor::from_json(schema, version, &requests).expect("monitor"))
    }

    /// Runs `ops` on `db`, returning the committed change set.
    fn run(db: &mut Database, ops: Value) -> ChangeSet {
        let ops = ops.as_array().expect("ops").clone();
        let (result, changes) = db.transact_with_changes(&ops);
        assert!(
            result
                .as_array()
                .expect("results")
                .iter()
                .all(|r| r.get("error").is_none()),
            "{result}"
        );
        changes
    }

    /// What every group would send if asked one by one, by group.
    fn one_by_one<H>(
        f: &FanOut<H>,
        schema: &DatabaseSchema,
        changes: &ChangeSet,
    ) -> Vec<(usize, Bytes)> {
        let mut out: Vec<(usize, Bytes)> = (0..f.groups.len())
            .filter_map(|g| {
                let group = f.group(g)?;
                let body = group.monitor.update(schema, changes)?;
                Some((g, encode_message(&body)))
            })
            .collect();
        out.sort_by_key(|(g, _)| *g);
        out
    }

    /// 20 datapaths of 3 ports each; the datapaths' UUIDs and the insert.
    fn ports(s: &Arc<DatabaseSchema>) -> (Database, Vec<String>, ChangeSet) {
        let mut db = Database::new(s.clone());
        let mut ops = Vec::new();
        for d in 0..20 {
            ops.push(json!({"op": "insert", "table": "Datapath", "uuid-name": format!("d{d}"), "row": {"key": d}}));
            for p in 0..3 {
                ops.push(json!({"op": "insert", "table": "Port", "row": {
                    "name": format!("p{d}.{p}"), "dp": ["named-uuid", format!("d{d}")],
                    "tags": ["set", [format!("t{}", (d + p) % 5)]]}}));
            }
        }
        let inserted = run(&mut db, Value::Array(ops));
        let dp_table = s.table_index("Datapath").expect("Datapath");
        let dps: Vec<String> = db.tables[dp_table]
            .rows
            .keys()
            .map(|u| u.to_string())
            .collect();
        (db, dps, inserted)
    }

    /// Session `session`'s monitor in generation `gen`: its own 12
    /// datapaths (shifted by `gen`), some sessions with the same
    /// condition, plus conditions the index cannot use.
    fn monitor_of_session(
        s: &DatabaseSchema,
        dps: &[String],
        session: u64,
        gen: usize,
    ) -> Arc<Monitor> {
        // Sessions 20 apart hold the same datapaths; the `n` clause makes
        // every session's condition its own, as every chassis's is.
        let mut clauses: Vec<Value> = (0..12)
            .map(|k| {
                json!([
                    "dp",
                    "==",
                    [
                        "uuid",
                        dps[((session % 25) as usize * 7 + k * 3 + gen) % dps.len()]
                    ]
                ])
            })
            .collect();
        clauses.push(json!(["n", "==", session]));
        let w = match (session as usize + gen) % 8 {
            0 => json!([["n", ">", 0]]),
            1 => json!([true]),
            2 => json!([["tags", "includes", "t1"], ["tags", "includes", "t3"]]),
            3 => json!([false]),
            _ => Value::Array(clauses),
        };
        if session % 10 == 9 {
            monitor(
                s,
                MonitorVersion::V1,
                json!({"Port": [{"columns": ["name", "n", "tags"]}]}),
            )
        } else {
            monitor(
                s,
                MonitorVersion::V2,
                json!({"Port": [{"columns": ["name", "n", "tags"], "where": w}]}),
            )
        }
    }

    /// 30 transactions updating and deleting ports.
    fn writes(db: &mut Database, dps: &[String]) -> Vec<ChangeSet> {
        (0..30)
            .map(|i| {
                let d = &dps[i % dps.len()];
                run(db, json!([
                    {"op": "update", "table": "Port", "where": [["name", "==", format!("p{}.1", i % 20)]],
                     "row": {"n": i, "dp": ["uuid", d], "tags": ["set", [format!("t{}", i % 5)]]}},
                    {"op": "delete", "table": "Port", "where": [["name", "==", format!("p{}.2", (i + 3) % 20)]]}
                ]))
            })
            .collect()
    }

    /// Leaving removes every group and its index entries.
    fn leave_all(f: &mut FanOut<()>, sessions: u64) {
        for session in 0..sessions {
            assert!(f.leave(session, &json!("m")).is_some());
        }
        assert!(f.is_empty());
        assert_eq!(f.n_groups(), 0);
        assert!(f.index.is_empty());
        assert!(f.selections.is_empty());
    }

    #[test]
    fn the_index_finds_exactly_the_groups_asking_one_by_one_finds() {
        let s = schema();
        let (mut db, dps, inserted) = ports(&s);
        let mut f: FanOut<()> = FanOut::default();
        for session in 0..40u64 {
            f.join(
                monitor_of_session(&s, &dps, session, 0),
                session,
                json!("m"),
                (),
            );
        }
        assert!(f.n_groups() < 40, "equal monitors share a group");
        let mut all_writes = vec![inserted];
        all_writes.extend(writes(&mut db, &dps));
        for changes in &all_writes {
            let mut fast = f.updates(&s, changes);
            fast.sort_by_key(|(g, _)| *g);
            assert_eq!(fast, one_by_one(&f, &s, changes));
        }
        leave_all(&mut f, 40);
    }

    #[test]
    fn condition_changes_refile_groups_so_the_index_still_finds_what_one_by_one_finds() {
        let s = schema();
        let (mut db, dps, _) = ports(&s);
        let mut f: FanOut<()> = FanOut::default();
        for session in 0..40u64 {
            f.join(
                monitor_of_session(&s, &dps, session, 0),
                session,
                json!("m"),
                (),
            );
        }
        // Every session changes its condition over and over: keys to other
        // keys (a few differing, as ovn-controller's), keys to scans and
        // back, into another session's group and out of a shared one.
        let mut all_writes = writes(&mut db, &dps);
        let mut refiled_in_place = 0;
        for gen in 1..6 {
            for session in 0..40u64 {
                let m = monitor_of_session(&s, &dps, session, gen);
                let id = (session, json!("m").to_string());
                let before = f.member_of[&id];
                let was_alone = f.groups[before].as_ref().expect("group").members.len() == 1;
                let g = f.change(m.clone(), session, &json!("m"), json!("m"), ());
                assert_eq!(f.member_of[&id], g);
                let group = f.groups[g].as_ref().expect("group");
                assert!(same_group(&group.monitor, &m));
                if was_alone && group.members.len() == 1 {
                    refiled_in_place += usize::from(g == before);
                }
            }
            assert!(f.n_groups() < 40, "equal monitors still share a group");
            all_writes.extend(writes(&mut db, &dps));
            for changes in &all_writes {
                let mut fast = f.updates(&s, changes);
                fast.sort_by_key(|(g, _)| *g);
                assert_eq!(fast, one_by_one(&f, &s, changes), "generation {gen}");
            }
        }
        assert!(
            refiled_in_place > 20,
            "sessions alone in their group keep it: {refiled_in_place}"
        );
        leave_all(&mut f, 40);
    }

    #[test]
    fn probe_indexes_give_initial_replies_and_condition_changes_of_a_full_scan() {
        let s = schema();
        let mut db = Database::new(s.clone());
        let mut ops = Vec::new();
        for d in 0..30 {
            ops.push(json!({"op": "insert", "table": "Datapath", "uuid-name": format!("d{d}"), "row": {"key": d}}));
            for p in 0..4 {
                ops.push(json!({"op": "insert", "table": "Port", "row": {
                    "name": format!("p{d}.{p}"), "dp": ["named-uuid", format!("d{d}")],
                    "tags": ["set", [format!("t{}", (d + p) % 7), format!("u{}", p)]]}}));
            }
        }
        run(&mut db, Value::Array(ops));
        let dp_table = s.table_index("Datapath").expect("Datapath");
        let mut dps: Vec<String> = db.tables[dp_table]
            .rows
            .keys()
            .map(|u| u.to_string())
            .collect();
        dps.sort();
        let clauses = |from: usize, n: usize| -> Vec<Value> {
            (from..from + n)
                .map(|i| json!(["dp", "==", ["uuid", dps[i % dps.len()]]]))
                .collect()
        };
        let mut conditions = vec![
            Value::Array(clauses(0, 10)),
            Value::Array(clauses(5, 10)),
            Value::Array([clauses(20, 9), vec![json!(["tags", "includes", "t3"])]].concat()),
            json!([["tags", "includes", "u1"], ["name", "==", "p3.2"]]),
            json!([["n", ">", 0], ["dp", "==", ["uuid", dps[2]]]]),
            json!([false]),
            json!([true]),
            Value::Array(clauses(12, 12)),
        ];
        let port = s.table_index("Port").expect("Port");
        let mut scanned = db.clone();
        let mut indexed = db;
        for round in 0..3 {
            for (i, old_w) in conditions.iter().enumerate() {
                let old = monitor(
                    &s,
                    MonitorVersion::V2,
                    json!({"Port": [{"columns": ["name", "tags"], "where": old_w}]}),
                );
                for (t, c, whole) in old.probe_columns() {
                    indexed.ensure_probes(t, c, whole);
                }
                let (mut a, mut b) = (bytes::BytesMut::new(), bytes::BytesMut::new());
                old.write_initial(&indexed, &mut a);
                old.write_initial(&scanned, &mut b);
                assert_eq!(a, b, "initial reply of {old_w}");
                for new_w in &conditions {
                    let new = Arc::new(
                        old.with_conditions(&s, &json!({"Port": [{"where": new_w}]}))
                            .expect("new conditions"),
                    );
                    for (t, c, whole) in new.probe_columns() {
                        indexed.ensure_probes(t, c, whole);
                    }
                    assert_eq!(
                        old.condition_change_update(&new, &indexed),
                        old.condition_change_update(&new, &scanned),
                        "{old_w} -> {new_w}"
                    );
                }
                // Rows move between datapaths and tags between ports: the
                // indexes follow every commit.
                let ops = json!([
                    {"op": "update", "table": "Port", "where": [["name", "==", format!("p{}.1", (i + round) % 30)]],
                     "row": {"dp": ["uuid", dps[(i * 7 + round) % dps.len()]], "tags": ["set", [format!("t{}", i % 7)]]}},
                    {"op": "delete", "table": "Port", "where": [["name", "==", format!("p{}.3", (i * 3 + round) % 30)]]},
                    {"op": "insert", "table": "Port", "row": {"name": format!("q{round}.{i}"),
                     "dp": ["uuid", dps[(i + 3) % dps.len()]], "tags": ["set", ["u1"]]}}
                ]);
                let changes = run(&mut indexed, ops);
                scanned.apply(&changes);
                assert!(!changes.is_empty());
            }
            conditions.rotate_left(1);
        }
        assert!(scanned.tables[port].probes.is_empty());
        assert!(!indexed.tables[port].probes.is_empty());
    }
}
