//! Model-based property test: random sequences of transactions run against
//! the engine and against a deliberately simple model (plain structs, no
//! engine code) side by side, over a small schema with a unique index, an
//! integer range, a size-limited map, strong references to a non-root table
//! (garbage collection, referential integrity) and a weak reference.
//!
//! After every transaction the test compares:
//! - the outcome: success with the same per-operation results (inserted
//!   UUIDs, row counts), or the same error tag on the same operation (or at
//!   commit);
//! - the full contents of both tables (read with `select`), with UUIDs mapped
//!   to the model's ids through the inserts' results;
//! - a client-side copy built only from a V2 monitor's `initial` reply and its
//!   `update2` notifications, which must equal the engine's contents exactly
//!   (`_version` included).
//!
//! `PROPTEST_CASES` overrides the number of cases (default 256).

use oxsdb::db::monitor::{Monitor, MonitorVersion};
use oxsdb::db::Database;
use oxsdb::schema::DatabaseSchema;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

const SCHEMA: &str = r#"{
  "name": "Model",
  "version": "1.0.0",
  "tables": {
    "Parent": {
      "isRoot": true,
      "indexes": [["name"]],
      "columns": {
        "name": {"type": "string"},
        "n": {"type": {"key": {"type": "integer", "minInteger": 0, "maxInteger": 1000}}},
        "kids": {"type": {"key": {"type": "uuid", "refTable": "Kid"}, "min": 0, "max": "unlimited"}},
        "fav": {"type": {"key": {"type": "uuid", "refTable": "Kid", "refType": "weak"}, "min": 0, "max": 1}},
        "tags": {"type": {"key": "string", "value": "string", "min": 0, "max": 3}}
      }
    },
    "Kid": {
      "columns": {
        "v": {"type": "integer"}
      }
    }
  }
}"#;

const NAMES: [&str; 5] = ["p0", "p1", "p2", "p3", "p4"];
const TAG_KEYS: [&str; 5] = ["a", "b", "c", "d", "e"];
const TAG_VALUES: [&str; 3] = ["x", "y", "z"];
/// UUIDs that no row ever has: references to rows that do not exist.
const DANGLING: [&str; 2] = [
    "deadbeef-0000-4000-8000-000000000001",
    "deadbeef-0000-4000-8000-000000000002",
];
/// Model ids of the dangling UUIDs (never ids of real rows).
const DANGLING_BASE: u64 = 1 << 40;

const RIV: &str = "referential integrity violation";
const CV: &str = "constraint violation";

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct MParent {
    name: String,
    n: i64,
    kids: BTreeSet<u64>,
    fav: Option<u64>,
    tags: BTreeMap<String, String>,
}

/// The whole database as the model sees it: rows by model id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    parents: BTreeMap<u64, MParent>,
    kids: BTreeMap<u64, i64>,
    next_id: u64,
}

/// A reference to a kid inside a transaction: a committed (or dangling) id,
/// or a `named-uuid` of a kid inserted earlier in the same transaction.
#[derive(Debug, Clone)]
enum KRef {
    Id(u64),
    Named(String),
}

/// One concrete operation (one element of the `transact` array).
#[derive(Debug, Clone)]
enum COp {
    InsertKid {
        v: i64,
        uuid_name: String,
    },
    InsertParent {
        name: String,
        n: i64,
        kids: Vec<KRef>,
        fav: Option<KRef>,
        tags: BTreeMap<String, String>,
    },
    UpdateN {
        name: String,
        n: i64,
    },
    UpdateName {
        name: String,
        to: String,
    },
    MutateN {
        name: String,
        k: i64,
    },
    TagsInsert {
        name: String,
        pairs: BTreeMap<String, String>,
    },
    TagsDeleteKeys {
        name: String,
        keys: BTreeSet<String>,
    },
    TagsDeletePairs {
        name: String,
        pairs: BTreeMap<String, String>,
    },
    Kids {
        name: String,
        insert: bool,
        kid: u64,
    },
    SetFav {
        name: String,
        kid: Option<u64>,
    },
    DeleteParent {
        name: String,
    },
    DeleteKid {
        kid: u64,
    },
    UpdateKidV {
        kid: u64,
        v: i64,
    },
    Abort,
}

/// The per-operation result of a successful operation.
#[derive(Debug, Clone, PartialEq)]
enum Res<U> {
    Uuid(U),
    Count(u64),
}

/// What a transaction returned.
#[derive(Debug, Clone, PartialEq)]
enum Outcome<U> {
    Ok(Vec<Res<U>>),
    OpErr(usize, String),
    CommitErr(String),
}

fn in_range(n: i64) -> bool {
    (0..=1000).contains(&n)
}

impl Model {
    /// Runs a transaction: the outcome and the state after it (unchanged on failure).
    fn run(&self, ops: &[COp]) -> (Outcome<u64>, Model) {
        let mut w = self.clone();
        let mut sym: HashMap<String, u64> = HashMap::new();
        let mut results = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match w.exec(op, &mut sym) {
                Ok(r) => results.push(r),
                Err(tag) => return (Outcome::OpErr(i, tag.to_string()), self.clone()),
            }
        }
        // Commit-time checks, in ovsdb-server's order.
        // 1. Referential integrity: every strong reference points at a row.
        for p in w.parents.values() {
            if p.kids.iter().any(|k| !w.kids.contains_key(k)) {
                return (Outcome::CommitErr(RIV.into()), self.clone());
            }
        }
        // 2. Garbage collection of unreferenced kids (Kid is not a root table).
        let referenced: BTreeSet<u64> = w
            .parents
            .values()
            .flat_map(|p| p.kids.iter().copied())
            .collect();
        w.kids.retain(|k, _| referenced.contains(k));
        // 3. Weak references to rows that do not exist (any more) are removed.
        let kids = w.kids.clone();
        for p in w.parents.values_mut() {
            if p.fav.is_some_and(|f| !kids.contains_key(&f)) {
                p.fav = None;
            }
        }
        // 4. Unique index on name.
        let names: BTreeSet<&String> = w.parents.values().map(|p| &p.name).collect();
        if names.len() != w.parents.len() {
            return (Outcome::CommitErr(CV.into()), self.clone());
        }
        (Outcome::Ok(results), w)
    }

    fn matching(&self, name: &str) -> Vec<u64> {
        self.parents
            .iter()
            .filter(|(_, p)| p.name == name)
            .map(|(id, _)| *id)
            .collect()
    }

    fn resolve(sym: &HashMap<String, u64>, r: &KRef) -> u64 {
        match r {
            KRef::Id(id) => *id,
            KRef::Named(n) => sym[n],
        }
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn exec(&mut self, op: &COp, sym: &mut HashMap<String, u64>) -> Result<Res<u64>, &'static str> {
        let count = |v: Vec<u64>| Res::Count(v.len() as u64);
        Ok(match op {
            COp::InsertKid { v, uuid_name } => {
                let id = self.new_id();
                self.kids.insert(id, *v);
                sym.insert(uuid_name.clone(), id);
                Res::Uuid(id)
            }
            COp::InsertParent {
                name,
                n,
                kids,
                fav,
                tags,
            } => {
                if !in_range(*n) {
                    return Err(CV);
                }
                if tags.len() > 3 {
                    return Err("syntax error");
                }
                let kids = kids.iter().map(|k| Self::resolve(sym, k)).collect();
                let fav = fav.as_ref().map(|k| Self::resolve(sym, k));
                let id = self.new_id();
                self.parents.insert(
                    id,
                    MParent {
                        name: name.clone(),
                        n: *n,
                        kids,
                        fav,
                        tags: tags.clone(),
                    },
                );
                Res::Uuid(id)
            }
            COp::UpdateN { name, n } => {
                if !in_range(*n) {
                    return Err(CV);
                }
                let m = self.matching(name);
                for id in &m {
                    self.parents.get_mut(id).unwrap().n = *n;
                }
                count(m)
            }
            COp::UpdateName { name, to } => {
                let m = self.matching(name);
                for id in &m {
                    self.parents.get_mut(id).unwrap().name = to.clone();
                }
                count(m)
            }
            COp::MutateN { name, k } => {
                let m = self.matching(name);
                for id in &m {
                    let p = self.parents.get_mut(id).unwrap();
                    let n = p.n + k;
                    if !in_range(n) {
                        return Err(CV);
                    }
                    p.n = n;
                }
                count(m)
            }
            COp::TagsInsert { name, pairs } => {
                // The argument is parsed with the column's type (max 3).
                if pairs.len() > 3 {
                    return Err("syntax error");
                }
                let m = self.matching(name);
                for id in &m {
                    let p = self.parents.get_mut(id).unwrap();
                    for (k, v) in pairs {
                        p.tags.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    if p.tags.len() > 3 {
                        return Err(CV);
                    }
                }
                count(m)
            }
            COp::TagsDeleteKeys { name, keys } => {
                let m = self.matching(name);
                for id in &m {
                    let p = self.parents.get_mut(id).unwrap();
                    p.tags.retain(|k, _| !keys.contains(k));
                }
                count(m)
            }
            COp::TagsDeletePairs { name, pairs } => {
                let m = self.matching(name);
                for id in &m {
                    let p = self.parents.get_mut(id).unwrap();
                    p.tags.retain(|k, v| pairs.get(k) != Some(v));
                }
                count(m)
            }
            COp::Kids { name, insert, kid } => {
                let m = self.matching(name);
                for id in &m {
                    let p = self.parents.get_mut(id).unwrap();
                    if *insert {
                        p.kids.insert(*kid);
                    } else {
                        p.kids.remove(kid);
                    }
                }
                count(m)
            }
            COp::SetFav { name, kid } => {
                let m = self.matching(name);
                for id in &m {
                    self.parents.get_mut(id).unwrap().fav = *kid;
                }
                count(m)
            }
            COp::DeleteParent { name } => {
                let m = self.matching(name);
                for id in &m {
                    self.parents.remove(id);
                }
                count(m)
            }
            COp::DeleteKid { kid } => Res::Count(u64::from(self.kids.remove(kid).is_some())),
            COp::UpdateKidV { kid, v } => match self.kids.get_mut(kid) {
                Some(x) => {
                    *x = *v;
                    Res::Count(1)
                }
                None => Res::Count(0),
            },
            COp::Abort => return Err("aborted"),
        })
    }
}

// ---------------------------------------------------------------------------
// Abstract (generated) operations, resolved against the committed model state
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum KidSel {
    Existing(usize),
    Dangling(usize),
}

#[derive(Debug, Clone)]
enum FavSel {
    None,
    /// One of the parent's new kids.
    New(usize),
    /// A new kid that is not among the parent's kids (garbage collected).
    Lone(i64),
    Kid(KidSel),
}

#[derive(Debug, Clone)]
enum AOp {
    InsertParent {
        name: usize,
        n: i64,
        new_kids: Vec<i64>,
        old_kids: Vec<KidSel>,
        fav: FavSel,
        tags: BTreeMap<usize, usize>,
    },
    InsertDupName {
        who: usize,
        n: i64,
    },
    InsertLoneKid {
        v: i64,
    },
    UpdateN {
        name: usize,
        n: i64,
    },
    UpdateName {
        name: usize,
        to: usize,
    },
    MutateN {
        name: usize,
        k: i64,
    },
    TagsInsert {
        name: usize,
        pairs: BTreeMap<usize, usize>,
    },
    TagsDeleteKeys {
        name: usize,
        keys: BTreeSet<usize>,
    },
    TagsDeletePairs {
        name: usize,
        pairs: BTreeMap<usize, usize>,
    },
    Kids {
        name: usize,
        insert: bool,
        kid: KidSel,
    },
    SetFav {
        name: usize,
        kid: Option<KidSel>,
    },
    DeleteParent {
        name: usize,
    },
    DeleteKid {
        kid: KidSel,
    },
    UpdateKidV {
        kid: KidSel,
        v: i64,
    },
    Abort,
}

fn n_value() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0i64..=1000,
        1 => -5i64..0,
        1 => 1001i64..1005,
        1 => Just(0i64),
        1 => Just(1000i64),
    ]
}

fn kid_sel() -> impl Strategy<Value = KidSel> {
    prop_oneof![9 => any::<usize>().prop_map(KidSel::Existing), 1 => (0..DANGLING.len()).prop_map(KidSel::Dangling)]
}

fn name() -> impl Strategy<Value = usize> {
    0..NAMES.len()
}

fn tag_pairs(max: usize) -> impl Strategy<Value = BTreeMap<usize, usize>> {
    prop::collection::btree_map(0..TAG_KEYS.len(), 0..TAG_VALUES.len(), 0..=max)
}

fn aop() -> impl Strategy<Value = AOp> {
    let fav = prop_oneof![
        3 => Just(FavSel::None),
        3 => any::<usize>().prop_map(FavSel::New),
        1 => (-3i64..3).prop_map(FavSel::Lone),
        2 => kid_sel().prop_map(FavSel::Kid),
    ];
    let insert_parent = (
        name(),
        n_value(),
        prop::collection::vec(-3i64..3, 0..=3),
        prop::collection::vec(kid_sel(), 0..=2),
        fav,
        tag_pairs(4),
    )
        .prop_map(
            |(name, n, new_kids, old_kids, fav, tags)| AOp::InsertParent {
                name,
                n,
                new_kids,
                old_kids,
                fav,
                tags,
            },
        );
    prop_oneof![
        10 => insert_parent,
        2 => (any::<usize>(), n_value()).prop_map(|(who, n)| AOp::InsertDupName { who, n }),
        1 => (-3i64..3).prop_map(|v| AOp::InsertLoneKid { v }),
        3 => (name(), n_value()).prop_map(|(name, n)| AOp::UpdateN { name, n }),
        2 => (name(), name()).prop_map(|(name, to)| AOp::UpdateName { name, to }),
        3 => (name(), prop_oneof![-20i64..20, -1100i64..1100]).prop_map(|(name, k)| AOp::MutateN { name, k }),
        3 => (name(), tag_pairs(4)).prop_map(|(name, pairs)| AOp::TagsInsert { name, pairs }),
        2 => (name(), prop::collection::btree_set(0..TAG_KEYS.len(), 0..=2))
            .prop_map(|(name, keys)| AOp::TagsDeleteKeys { name, keys }),
        1 => (name(), tag_pairs(2)).prop_map(|(name, pairs)| AOp::TagsDeletePairs { name, pairs }),
        2 => (name(), any::<bool>(), kid_sel()).prop_map(|(name, insert, kid)| AOp::Kids { name, insert, kid }),
        2 => (name(), prop::option::weighted(0.8, kid_sel())).prop_map(|(name, kid)| AOp::SetFav { name, kid }),
        2 => name().prop_map(|name| AOp::DeleteParent { name }),
        2 => kid_sel().prop_map(|kid| AOp::DeleteKid { kid }),
        1 => (kid_sel(), -3i64..3).prop_map(|(kid, v)| AOp::UpdateKidV { kid, v }),
        1 => Just(AOp::Abort),
    ]
}

fn txn() -> impl Strategy<Value = Vec<AOp>> {
    prop_oneof![3 => prop::collection::vec(aop(), 1..=1), 2 => prop::collection::vec(aop(), 2..=4)]
}

fn resolve_kid(model: &Model, sel: &KidSel) -> u64 {
    let kids: Vec<u64> = model.kids.keys().copied().collect();
    match sel {
        KidSel::Existing(ix) if !kids.is_empty() => kids[*ix % kids.len()],
        KidSel::Existing(ix) => DANGLING_BASE + (*ix % DANGLING.len()) as u64,
        KidSel::Dangling(d) => DANGLING_BASE + *d as u64,
    }
}

fn strings(m: &BTreeMap<usize, usize>) -> BTreeMap<String, String> {
    m.iter()
        .map(|(k, v)| (TAG_KEYS[*k].to_string(), TAG_VALUES[*v].to_string()))
        .collect()
}

/// Turns the generated operations into concrete ones (one abstract insert of
/// a parent with new kids becomes several concrete inserts).
fn resolve(model: &Model, aops: &[AOp]) -> Vec<COp> {
    let mut out = Vec::new();
    for (i, a) in aops.iter().enumerate() {
        let nm = |n: &usize| NAMES[*n].to_string();
        match a {
            AOp::InsertParent {
                name,
                n,
                new_kids,
                old_kids,
                fav,
                tags,
            } => {
                let mut kids = Vec::new();
                for (j, v) in new_kids.iter().enumerate() {
                    let uuid_name = format!("k{i}_{j}");
                    out.push(COp::InsertKid {
                        v: *v,
                        uuid_name: uuid_name.clone(),
                    });
                    kids.push(KRef::Named(uuid_name));
                }
                let old: BTreeSet<u64> = old_kids.iter().map(|k| resolve_kid(model, k)).collect();
                kids.extend(old.into_iter().map(KRef::Id));
                let fav = match fav {
                    FavSel::None => None,
                    FavSel::New(ix) if !new_kids.is_empty() => {
                        Some(KRef::Named(format!("k{i}_{}", ix % new_kids.len())))
                    }
                    FavSel::New(_) => None,
                    FavSel::Lone(v) => {
                        let uuid_name = format!("lone{i}");
                        out.push(COp::InsertKid {
                            v: *v,
                            uuid_name: uuid_name.clone(),
                        });
                        Some(KRef::Named(uuid_name))
                    }
                    FavSel::Kid(k) => Some(KRef::Id(resolve_kid(model, k))),
                };
                let tags = strings(tags);
                // One kind of error per insert: which of two bad columns
                // ovsdb-server reports depends on its hash order.
                let n = if tags.len() > 3 {
                    n.clamp(&0, &1000).to_owned()
                } else {
                    *n
                };
                out.push(COp::InsertParent {
                    name: nm(name),
                    n,
                    kids,
                    fav,
                    tags,
                });
            }
            AOp::InsertDupName { who, n } => {
                let names: Vec<&String> = model.parents.values().map(|p| &p.name).collect();
                let name = if names.is_empty() {
                    NAMES[0].to_string()
                } else {
                    names[who % names.len()].clone()
                };
                out.push(COp::InsertParent {
                    name,
                    n: *n,
                    kids: vec![],
                    fav: None,
                    tags: BTreeMap::new(),
                });
            }
            AOp::InsertLoneKid { v } => out.push(COp::InsertKid {
                v: *v,
                uuid_name: format!("lone{i}"),
            }),
            AOp::UpdateN { name, n } => out.push(COp::UpdateN {
                name: nm(name),
                n: *n,
            }),
            AOp::UpdateName { name, to } => out.push(COp::UpdateName {
                name: nm(name),
                to: nm(to),
            }),
            AOp::MutateN { name, k } => out.push(COp::MutateN {
                name: nm(name),
                k: *k,
            }),
            AOp::TagsInsert { name, pairs } => out.push(COp::TagsInsert {
                name: nm(name),
                pairs: strings(pairs),
            }),
            AOp::TagsDeleteKeys { name, keys } => out.push(COp::TagsDeleteKeys {
                name: nm(name),
                keys: keys.iter().map(|k| TAG_KEYS[*k].to_string()).collect(),
            }),
            AOp::TagsDeletePairs { name, pairs } => out.push(COp::TagsDeletePairs {
                name: nm(name),
                pairs: strings(pairs),
            }),
            AOp::Kids { name, insert, kid } => out.push(COp::Kids {
                name: nm(name),
                insert: *insert,
                kid: resolve_kid(model, kid),
            }),
            AOp::SetFav { name, kid } => out.push(COp::SetFav {
                name: nm(name),
                kid: kid.as_ref().map(|k| resolve_kid(model, k)),
            }),
            AOp::DeleteParent { name } => out.push(COp::DeleteParent { name: nm(name) }),
            AOp::DeleteKid { kid } => out.push(COp::DeleteKid {
                kid: resolve_kid(model, kid),
            }),
            AOp::UpdateKidV { kid, v } => out.push(COp::UpdateKidV {
                kid: resolve_kid(model, kid),
                v: *v,
            }),
            AOp::Abort => out.push(COp::Abort),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The engine side: JSON operations, UUID mapping, reading the contents back
// ---------------------------------------------------------------------------

/// Engine UUIDs <-> model ids, learnt from the inserts' results.
#[derive(Default)]
struct Mapping {
    uuid_of: HashMap<u64, String>,
    id_of: HashMap<String, u64>,
}

impl Mapping {
    fn uuid(&self, id: u64) -> String {
        if id >= DANGLING_BASE {
            return DANGLING[(id - DANGLING_BASE) as usize].to_string();
        }
        self.uuid_of
            .get(&id)
            .cloned()
            .unwrap_or_else(|| panic!("no UUID known for model id {id}"))
    }

    fn learn(&mut self, uuid: &str, id: u64) -> Result<(), String> {
        if self.id_of.contains_key(uuid) || self.uuid_of.contains_key(&id) {
            return Err(format!("UUID {uuid} / id {id} returned twice"));
        }
        self.id_of.insert(uuid.to_string(), id);
        self.uuid_of.insert(id, uuid.to_string());
        Ok(())
    }
}

fn where_name(name: &str) -> Value {
    json!([["name", "==", name]])
}

fn uuid_json(s: &str) -> Value {
    json!(["uuid", s])
}

fn map_json(m: &BTreeMap<String, String>) -> Value {
    json!([
        "map",
        m.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
    ])
}

fn to_json(op: &COp, map: &Mapping) -> Value {
    let kref = |k: &KRef| match k {
        KRef::Id(id) => uuid_json(&map.uuid(*id)),
        KRef::Named(n) => json!(["named-uuid", n]),
    };
    match op {
        COp::InsertKid { v, uuid_name } => {
            json!({"op": "insert", "table": "Kid", "row": {"v": v}, "uuid-name": uuid_name})
        }
        COp::InsertParent {
            name,
            n,
            kids,
            fav,
            tags,
        } => {
            let mut row = json!({"name": name, "n": n, "kids": ["set", kids.iter().map(kref).collect::<Vec<_>>()]});
            if let Some(f) = fav {
                row["fav"] = kref(f);
            }
            if !tags.is_empty() {
                row["tags"] = map_json(tags);
            }
            json!({"op": "insert", "table": "Parent", "row": row})
        }
        COp::UpdateN { name, n } => {
            json!({"op": "update", "table": "Parent", "where": where_name(name), "row": {"n": n}})
        }
        COp::UpdateName { name, to } => {
            json!({"op": "update", "table": "Parent", "where": where_name(name), "row": {"name": to}})
        }
        COp::MutateN { name, k } => {
            let (m, k) = if *k < 0 { ("-=", -k) } else { ("+=", *k) };
            json!({"op": "mutate", "table": "Parent", "where": where_name(name), "mutations": [["n", m, k]]})
        }
        COp::TagsInsert { name, pairs } => {
            json!({"op": "mutate", "table": "Parent", "where": where_name(name),
            "mutations": [["tags", "insert", map_json(pairs)]]})
        }
        COp::TagsDeleteKeys { name, keys } => {
            json!({"op": "mutate", "table": "Parent", "where": where_name(name),
            "mutations": [["tags", "delete", ["set", keys.iter().collect::<Vec<_>>()]]]})
        }
        COp::TagsDeletePairs { name, pairs } => {
            json!({"op": "mutate", "table": "Parent", "where": where_name(name),
            "mutations": [["tags", "delete", map_json(pairs)]]})
        }
        COp::Kids { name, insert, kid } => {
            json!({"op": "mutate", "table": "Parent", "where": where_name(name),
            "mutations": [["kids", if *insert { "insert" } else { "delete" }, ["set", [uuid_json(&map.uuid(*kid))]]]]})
        }
        COp::SetFav { name, kid } => {
            let fav = match kid {
                Some(k) => uuid_json(&map.uuid(*k)),
                None => json!(["set", []]),
            };
            json!({"op": "update", "table": "Parent", "where": where_name(name), "row": {"fav": fav}})
        }
        COp::DeleteParent { name } => {
            json!({"op": "delete", "table": "Parent", "where": where_name(name)})
        }
        COp::DeleteKid { kid } => {
            json!({"op": "delete", "table": "Kid", "where": [["_uuid", "==", uuid_json(&map.uuid(*kid))]]})
        }
        COp::UpdateKidV { kid, v } => json!({"op": "update", "table": "Kid",
            "where": [["_uuid", "==", uuid_json(&map.uuid(*kid))]], "row": {"v": v}}),
        COp::Abort => json!({"op": "abort"}),
    }
}

/// Reads the engine's result array into an outcome.
fn engine_outcome(results: &Value, n_ops: usize) -> Result<Outcome<String>, String> {
    let arr = results
        .as_array()
        .ok_or_else(|| format!("result is not an array: {results}"))?;
    if arr.len() != n_ops && arr.len() != n_ops + 1 {
        return Err(format!(
            "{} results for {n_ops} operations: {results}",
            arr.len()
        ));
    }
    let mut out = Vec::new();
    for (i, r) in arr.iter().enumerate() {
        if let Some(tag) = r.get("error") {
            let tag = tag.as_str().ok_or("error tag is not a string")?.to_string();
            if i == n_ops {
                return Ok(Outcome::CommitErr(tag));
            }
            if arr.len() != n_ops || arr[i + 1..].iter().any(|r| !r.is_null()) {
                return Err(format!(
                    "results after a failed operation are not null: {results}"
                ));
            }
            return Ok(Outcome::OpErr(i, tag));
        }
        if i == n_ops {
            return Err(format!("extra result without error: {results}"));
        }
        if let Some(u) = r.get("uuid") {
            let s = u
                .get(1)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("bad uuid result {r}"))?;
            out.push(Res::Uuid(s.to_string()));
        } else if let Some(c) = r.get("count") {
            out.push(Res::Count(
                c.as_u64().ok_or_else(|| format!("bad count {r}"))?,
            ));
        } else {
            return Err(format!("unexpected result {r}"));
        }
    }
    Ok(Outcome::Ok(out))
}

/// The elements of a set datum's JSON (a bare atom is a one-element set).
fn set_atoms(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) if a.len() == 2 && a[0] == "set" => {
            a[1].as_array().cloned().unwrap_or_default()
        }
        other => vec![other.clone()],
    }
}

fn uuid_str(v: &Value) -> Result<String, String> {
    match v {
        Value::Array(a) if a.len() == 2 && a[0] == "uuid" => a[1]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("bad uuid {v}")),
        _ => Err(format!("not a uuid: {v}")),
    }
}

fn select_all(db: &mut Database) -> (Vec<Value>, Vec<Value>) {
    let r = db.transact(&[
        json!({"op": "select", "table": "Parent", "where": []}),
        json!({"op": "select", "table": "Kid", "where": []}),
    ]);
    let rows = |i: usize| {
        r[i]["rows"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("select failed: {r}"))
    };
    (rows(0), rows(1))
}

/// Parent rows and Kid rows by model id.
type Contents = (BTreeMap<u64, MParent>, BTreeMap<u64, i64>);

/// The engine's contents in model terms.
fn engine_model(db: &mut Database, map: &Mapping) -> Result<Contents, String> {
    let (parents, kids) = select_all(db);
    let id = |v: &Value| -> Result<u64, String> {
        let u = uuid_str(v)?;
        map.id_of
            .get(&u)
            .copied()
            .ok_or_else(|| format!("engine has a UUID no insert returned: {u}"))
    };
    let mut mk = BTreeMap::new();
    for k in &kids {
        mk.insert(
            id(&k["_uuid"])?,
            k["v"].as_i64().ok_or("Kid.v not an integer")?,
        );
    }
    let mut mp = BTreeMap::new();
    for p in &parents {
        let kids = set_atoms(&p["kids"])
            .iter()
            .map(id)
            .collect::<Result<BTreeSet<u64>, String>>()?;
        let fav = set_atoms(&p["fav"])
            .iter()
            .map(id)
            .collect::<Result<Vec<u64>, String>>()?;
        if fav.len() > 1 {
            return Err(format!("fav has {} elements", fav.len()));
        }
        let mut tags = BTreeMap::new();
        match &p["tags"] {
            Value::Array(a) if a.len() == 2 && a[0] == "map" => {
                for pair in a[1].as_array().ok_or("bad map")? {
                    let k = pair[0].as_str().ok_or("tag key")?;
                    let v = pair[1].as_str().ok_or("tag value")?;
                    tags.insert(k.to_string(), v.to_string());
                }
            }
            other => return Err(format!("tags is not a map: {other}")),
        }
        let parent = MParent {
            name: p["name"].as_str().ok_or("name")?.to_string(),
            n: p["n"].as_i64().ok_or("n")?,
            kids,
            fav: fav.first().copied(),
            tags,
        };
        mp.insert(id(&p["_uuid"])?, parent);
    }
    Ok((mp, mk))
}

// ---------------------------------------------------------------------------
// The monitor client: a copy built from `initial` and `update2` only
// ---------------------------------------------------------------------------

/// A datum in client form: atom JSON text -> value JSON text (maps) or None (sets).
type CDatum = BTreeMap<String, Option<String>>;
/// table -> row uuid -> column -> datum.
type Client = BTreeMap<String, BTreeMap<String, BTreeMap<String, CDatum>>>;

fn cdatum(v: &Value) -> CDatum {
    match v {
        Value::Array(a) if a.len() == 2 && a[0] == "set" => a[1]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| (x.to_string(), None))
            .collect(),
        Value::Array(a) if a.len() == 2 && a[0] == "map" => a[1]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (p[0].to_string(), Some(p[1].to_string())))
            .collect(),
        other => BTreeMap::from([(other.to_string(), None)]),
    }
}

enum Kind {
    Scalar,
    Set,
    Map,
}

/// The client knows the schema (as every OVSDB client does).
fn column_kind(table: &str, column: &str) -> Kind {
    match (table, column) {
        ("Parent", "kids") => Kind::Set,
        ("Parent", "tags") => Kind::Map,
        _ => Kind::Scalar,
    }
}

fn default_row(table: &str) -> BTreeMap<String, CDatum> {
    let cols: Vec<(&str, Value)> = match table {
        "Parent" => vec![
            ("name", json!("")),
            ("n", json!(0)),
            ("kids", json!(["set", []])),
            ("fav", json!(["set", []])),
            ("tags", json!(["map", []])),
        ],
        _ => vec![("v", json!(0))],
    };
    cols.into_iter()
        .map(|(c, v)| (c.to_string(), cdatum(&v)))
        .collect()
}

fn apply_update2(client: &mut Client, update: &Value) -> Result<(), String> {
    let tables = update.as_object().ok_or("update2 is not an object")?;
    for (table, rows) in tables {
        let rows = rows.as_object().ok_or("table-update2 is not an object")?;
        let t = client.entry(table.clone()).or_default();
        for (uuid, ru) in rows {
            let ru = ru.as_object().ok_or("row-update2 is not an object")?;
            if ru.len() != 1 {
                return Err(format!("row-update2 with {} members: {ru:?}", ru.len()));
            }
            let (kind, body) = ru.iter().next().unwrap();
            match kind.as_str() {
                "initial" | "insert" => {
                    if t.contains_key(uuid) {
                        return Err(format!("{kind} of existing row {uuid}"));
                    }
                    let mut row = default_row(table);
                    for (c, v) in body.as_object().ok_or("row not an object")? {
                        row.insert(c.clone(), cdatum(v));
                    }
                    t.insert(uuid.clone(), row);
                }
                "modify" => {
                    let row = t
                        .get_mut(uuid)
                        .ok_or_else(|| format!("modify of unknown row {uuid}"))?;
                    for (c, v) in body.as_object().ok_or("modify not an object")? {
                        let diff = cdatum(v);
                        let old = row.entry(c.clone()).or_default();
                        match column_kind(table, c) {
                            Kind::Scalar => *old = diff,
                            Kind::Set => {
                                for (k, _) in diff {
                                    if old.remove(&k).is_none() {
                                        old.insert(k, None);
                                    }
                                }
                            }
                            Kind::Map => {
                                for (k, v) in diff {
                                    if old.get(&k) == Some(&v) {
                                        old.remove(&k);
                                    } else {
                                        old.insert(k, v);
                                    }
                                }
                            }
                        }
                    }
                }
                "delete" => {
                    if t.remove(uuid).is_none() {
                        return Err(format!("delete of unknown row {uuid}"));
                    }
                }
                other => return Err(format!("unknown row-update2 kind {other}")),
            }
        }
        if t.is_empty() {
            client.remove(table);
        }
    }
    Ok(())
}

/// The engine's contents in client form.
fn engine_client(db: &mut Database) -> Client {
    let (parents, kids) = select_all(db);
    let mut out = Client::new();
    for (table, rows) in [("Parent", parents), ("Kid", kids)] {
        for r in rows {
            let mut row = BTreeMap::new();
            let mut uuid = String::new();
            for (c, v) in r.as_object().unwrap() {
                if c == "_uuid" {
                    uuid = uuid_str(v).unwrap();
                } else {
                    row.insert(c.clone(), cdatum(v));
                }
            }
            out.entry(table.to_string()).or_default().insert(uuid, row);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------

fn schema() -> Arc<DatabaseSchema> {
    let json: Value = serde_json::from_str(SCHEMA).unwrap();
    Arc::new(DatabaseSchema::from_json(&json).expect("model schema parses"))
}

fn all_tables_monitor(schema: &DatabaseSchema) -> Monitor {
    Monitor::from_json(
        schema,
        MonitorVersion::V2,
        &json!({"Parent": {}, "Kid": {}}),
    )
    .expect("monitor request parses")
}

fn check_sequence(txns: &[Vec<AOp>]) -> Result<(), TestCaseError> {
    let schema = schema();
    let mut db = Database::new(schema.clone());
    let mut model = Model::default();
    let mut map = Mapping::default();
    let monitor = all_tables_monitor(&schema);
    let mut client = Client::new();
    apply_update2(&mut client, &monitor.initial(&db)).map_err(TestCaseError::fail)?;

    for (step, aops) in txns.iter().enumerate() {
        let cops = resolve(&model, aops);
        let ops: Vec<Value> = cops.iter().map(|c| to_json(c, &map)).collect();
        let ctx = || format!("step {step}: ops {}", Value::Array(ops.clone()));

        let (expected, next) = model.run(&cops);
        let (results, changes) = db.transact_with_changes(&ops);
        let got = engine_outcome(&results, ops.len())
            .map_err(|e| TestCaseError::fail(format!("{}: {e}", ctx())))?;

        match (&expected, &got) {
            (Outcome::Ok(e), Outcome::Ok(g)) => {
                prop_assert_eq!(e.len(), g.len(), "{}", ctx());
                for (er, gr) in e.iter().zip(g) {
                    match (er, gr) {
                        (Res::Uuid(id), Res::Uuid(u)) => {
                            map.learn(u, *id).map_err(TestCaseError::fail)?
                        }
                        (Res::Count(a), Res::Count(b)) => {
                            prop_assert_eq!(a, b, "count differs: {}", ctx())
                        }
                        _ => prop_assert!(
                            false,
                            "result kinds differ: model {:?} engine {:?}: {}",
                            e,
                            g,
                            ctx()
                        ),
                    }
                }
            }
            (Outcome::OpErr(i, t), Outcome::OpErr(j, u)) => {
                prop_assert_eq!(
                    (i, t),
                    (j, u),
                    "operation error differs: {} -> {}",
                    ctx(),
                    results
                );
            }
            (Outcome::CommitErr(t), Outcome::CommitErr(u)) => {
                prop_assert_eq!(t, u, "commit error differs: {} -> {}", ctx(), results);
            }
            _ => prop_assert!(
                false,
                "outcome differs: model {:?}, engine {}: {}",
                expected,
                results,
                ctx()
            ),
        }
        if !matches!(expected, Outcome::Ok(_)) {
            prop_assert!(
                changes.is_empty(),
                "a failed transaction has changes: {}",
                ctx()
            );
        }
        model = next;

        // Full contents, in model terms.
        let (ep, ek) = engine_model(&mut db, &map)
            .map_err(|e| TestCaseError::fail(format!("{}: {e}", ctx())))?;
        prop_assert_eq!(&ep, &model.parents, "Parent rows differ after {}", ctx());
        prop_assert_eq!(&ek, &model.kids, "Kid rows differ after {}", ctx());

        // The monitor client's copy.
        if let Some(u) = monitor.update(&schema, &changes) {
            apply_update2(&mut client, &u)
                .map_err(|e| TestCaseError::fail(format!("{}: {e}: {u}", ctx())))?;
        }
        let contents = engine_client(&mut db);
        prop_assert_eq!(
            &client,
            &contents,
            "monitor copy differs from the engine after {}",
            ctx()
        );
    }

    // A monitor started now sees the same contents in its initial reply.
    let mut fresh = Client::new();
    apply_update2(&mut fresh, &all_tables_monitor(&schema).initial(&db))
        .map_err(TestCaseError::fail)?;
    prop_assert_eq!(
        &fresh,
        &engine_client(&mut db),
        "a new monitor's initial differs from the contents"
    );
    Ok(())
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn engine_matches_model(txns in prop::collection::vec(txn(), 1..40)) {
        check_sequence(&txns)?;
    }
}

/// A fixed scenario through the same machinery, so that the basics are
/// checked even with `PROPTEST_CASES=0`.
#[test]
fn fixed_scenario() {
    let ix = |i: usize| i;
    let txns = vec![
        vec![AOp::InsertParent {
            name: 0,
            n: 5,
            new_kids: vec![1, 2],
            old_kids: vec![],
            fav: FavSel::New(ix(1)),
            tags: BTreeMap::from([(0, 0)]),
        }],
        vec![AOp::InsertParent {
            name: 1,
            n: 7,
            new_kids: vec![],
            old_kids: vec![KidSel::Existing(ix(0))],
            fav: FavSel::None,
            tags: BTreeMap::new(),
        }],
        vec![AOp::InsertDupName { who: ix(0), n: 1 }],
        vec![AOp::UpdateN { name: 0, n: 1001 }],
        vec![AOp::MutateN { name: 0, k: 996 }],
        vec![AOp::TagsInsert {
            name: 0,
            pairs: BTreeMap::from([(1, 0), (2, 0), (3, 0)]),
        }],
        vec![AOp::DeleteKid {
            kid: KidSel::Existing(ix(0)),
        }],
        vec![AOp::DeleteParent { name: 0 }],
        vec![AOp::SetFav {
            name: 1,
            kid: Some(KidSel::Existing(ix(0))),
        }],
        vec![
            AOp::UpdateN { name: 1, n: 3 },
            AOp::MutateN { name: 1, k: -4 },
        ],
        vec![AOp::InsertLoneKid { v: 1 }, AOp::Abort],
        vec![AOp::Kids {
            name: 1,
            insert: false,
            kid: KidSel::Existing(ix(0)),
        }],
    ];
    check_sequence(&txns).unwrap();
}
