//! No JSON input can make the engine panic.
//!
//! Property tests feed arbitrary JSON (numbers at the edges of i64/u64/f64,
//! OVSDB's tagged arrays, deep nesting) and "almost valid" input (valid
//! operations, monitor requests and schemas for `examples/alltypes.ovsschema`
//! and the OVN Northbound schema with random members replaced or renamed)
//! through every entry point that takes client JSON: `Database::transact`,
//! `Monitor::from_json` + `initial`/`update` (V1, V2, V3),
//! `DatabaseSchema::from_json`, `Condition::from_json` and
//! `MutationSet::from_json` (+ `apply`). They must not panic, and a
//! transaction's result must always be an array with at least one element
//! per operation.
//!
//! Inputs that once crashed the engine (found by fuzzing, see `fuzz/`) are
//! kept at the end as regression tests. `PROPTEST_CASES` sets the number of
//! cases of each property (default 256).

use oxsdb::data::{Row, SymbolTable};
use oxsdb::db::condition::Condition;
use oxsdb::db::monitor::{Monitor, MonitorVersion};
use oxsdb::db::mutation::MutationSet;
use oxsdb::db::Database;
use oxsdb::schema::DatabaseSchema;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

const ALLTYPES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/alltypes.ovsschema");
const OVN_NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";

// Fixed UUIDs of preloaded rows, so that templates can refer to them.
const T0: &str = "00000000-0000-4000-8000-0000000000a0";
const T1: &str = "00000000-0000-4000-8000-0000000000a1";
const C0: &str = "00000000-0000-4000-8000-0000000000c0";
const S0: &str = "00000000-0000-4000-8000-0000000000e0";
const LS0: &str = "00000000-0000-4000-8000-0000000000f0";
const LSP0: &str = "00000000-0000-4000-8000-0000000000f1";

fn schema_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e} (the OVN schema comes with `apt-get install ovn-central`)")
    });
    serde_json::from_str(&text).unwrap()
}

struct Fixture {
    schema: Arc<DatabaseSchema>,
    db: Database,
    /// Valid operations for this schema.
    ops: Vec<Value>,
    /// Valid monitor requests (the third param of `monitor`).
    monitors: Vec<Value>,
}

fn alltypes_ops() -> Vec<Value> {
    vec![
        json!({"op": "insert", "table": "Scalars", "uuid-name": "n1", "row": {
            "i": 1, "r": 2.5, "b": true, "s": "x", "u": ["uuid", T0], "oi": ["set", []], "or": 1.5,
            "ob": false, "os": "o", "ou": ["named-uuid", "n1"], "iset": ["set", [1, 2, 3]],
            "rset": ["set", [1.5, -0.0]], "bset": ["set", [true, false]], "sset": ["set", ["a", "b"]],
            "uset": ["set", [["named-uuid", "n1"], ["uuid", T1]]]}}),
        json!({"op": "select", "table": "Scalars", "where": [["i", ">", 0], ["s", "!=", "y"],
            ["iset", "includes", ["set", [1]]], ["r", "<=", 3.5], ["b", "==", true],
            ["sset", "excludes", "z"], ["_uuid", "!=", ["uuid", S0]]], "columns": ["i", "s", "_uuid", "_version"]}),
        json!({"op": "update", "table": "Scalars", "where": [["_uuid", "==", ["uuid", S0]]],
            "row": {"r": 1e10, "iset": ["set", [9223372036854775807i64, -9223372036854775807i64]], "os": ["set", []]}}),
        json!({"op": "mutate", "table": "Scalars", "where": [],
            "mutations": [["i", "+=", 1], ["i", "*=", 2], ["i", "/=", 3], ["i", "%=", 5], ["r", "-=", 0.5],
                ["r", "*=", 1e300], ["iset", "insert", ["set", [7]]], ["sset", "delete", "a"],
                ["iset", "+=", 1], ["rset", "/=", 2.0], ["oi", "insert", 4], ["uset", "delete", ["uuid", T0]]]}),
        json!({"op": "delete", "table": "Scalars", "where": [["b", "==", true], ["i", "<", 100]]}),
        json!({"op": "wait", "table": "Scalars", "timeout": 0, "where": [], "columns": ["i"],
            "until": "==", "rows": [{"i": 1}]}),
        json!({"op": "wait", "table": "Target", "timeout": 10, "where": [["name", "==", "t0"]],
            "columns": ["name", "n"], "until": "!=", "rows": []}),
        json!({"op": "commit", "durable": false}),
        json!({"op": "abort"}),
        json!({"op": "comment", "comment": "hi"}),
        json!({"op": "assert", "lock": "l"}),
        json!({"op": "insert", "table": "Constrained", "row": {
            "color": "red", "level": 2, "port": 80, "positive": 3, "upto10": 10, "ratio": 0.5, "temp": -273.15,
            "name": "abc", "code": "abcd", "small_set": ["set", [1, 2]], "pair": "p",
            "enum_set": ["set", ["a", "b"]], "bools": ["set", [false]], "reals": ["set", [-10, 10, 0.25]],
            "single_enum": "only", "created": 5, "frozen_tags": ["set", ["t"]], "scratch": "s", "counter": 3}}),
        json!({"op": "update", "table": "Constrained", "where": [["color", "==", "red"]],
            "row": {"created": 6, "level": ["set", []], "small_set": ["set", [100]]}}),
        json!({"op": "mutate", "table": "Constrained", "where": [["port", "includes", 80]],
            "mutations": [["port", "+=", 65535], ["small_set", "insert", ["set", [4, 5]]], ["reals", "*=", 2],
                ["counter", "-=", -9223372036854775807i64], ["enum_set", "delete", ["set", ["a"]]]]}),
        json!({"op": "insert", "table": "Maps", "row": {
            "ss": ["map", [["k", "v"], ["k2", "v2"]]], "si": ["map", [["a", 100]]], "is": ["map", [[1, "one"]]],
            "ir": ["map", [[-1, 0.5]]], "sb": ["map", [["t", true]]], "rb": ["map", [[1.5, false]]],
            "us": ["map", [[["uuid", T0], "t0"]]], "small_map": ["map", [["a", "b"]]],
            "req_map": ["map", [["r", 1]]], "enum_map": ["map", [["x", "abcd"]]], "len_map": ["map", [["ab", 10]]]}}),
        json!({"op": "mutate", "table": "Maps", "where": [["ss", "includes", ["map", [["k", "v"]]]]],
            "mutations": [["ss", "insert", ["map", [["k3", "v3"]]]], ["ss", "delete", ["set", ["k"]]],
                ["req_map", "delete", ["map", [["r", 1]]]], ["si", "+=", 1], ["small_map", "insert", ["map", [["c", "d"], ["e", "f"]]]]]}),
        json!({"op": "select", "table": "Maps", "where": [["ss", "excludes", ["map", [["k", "x"]]]],
            ["is", "==", ["map", []]], ["small_map", "!=", ["map", [["a", "b"]]]]]}),
        json!({"op": "insert", "table": "Child", "uuid-name": "c1", "row": {"name": "c1", "value": 1,
            "sibling": ["named-uuid", "c2"], "friend": ["uuid", T1]}}),
        json!({"op": "insert", "table": "Child", "uuid-name": "c2", "row": {"name": "c2"}}),
        json!({"op": "insert", "table": "Parent", "row": {"name": "p9", "child": ["named-uuid", "c1"],
            "children": ["set", [["uuid", C0]]], "weak_children": ["named-uuid", "c2"], "target": ["uuid", T0],
            "targets": ["set", [["uuid", T0], ["uuid", T1]]], "child_map": ["map", [["x", ["named-uuid", "c2"]]]],
            "weak_map": ["map", [["t", ["uuid", T1]]]], "keyed_map": ["map", [[["uuid", T0], "zero"]]],
            "strong_keyed": ["map", [[["uuid", C0], 7]]]}}),
        json!({"op": "delete", "table": "Target", "where": [["_uuid", "==", ["uuid", T0]]]}),
        json!({"op": "delete", "table": "Child", "where": []}),
        json!({"op": "update", "table": "Parent", "where": [["name", "==", "p0"]], "row": {"children": ["set", []]}}),
        json!({"op": "insert", "table": "Target", "uuid": "00000000-0000-4000-8000-0000000000a9", "row": {"name": "t9"}}),
        json!({"op": "insert", "table": "Holder", "row": {"name": "h", "must": ["set", [["uuid", T0]]],
            "one": ["uuid", T1], "strong_one": ["uuid", T1]}}),
        json!({"op": "insert", "table": "Indexed", "row": {"a": 1, "b": "x", "c": "c", "d": 0.5}}),
        json!({"op": "update", "table": "Indexed", "where": [["a", ">=", 0]], "row": {"c": ["set", []], "d": -0.0}}),
        json!({"op": "insert", "table": "Triple", "row": {"x": "x", "y": 1, "z": true, "note": "n"}}),
        json!({"op": "insert", "table": "Limited", "row": {"n": 1}}),
        json!({"op": "mutate", "table": "Limited", "where": [], "mutations": [["n", "%=", 0]]}),
    ]
}

fn alltypes_preload() -> Vec<Value> {
    vec![
        json!({"op": "insert", "table": "Target", "uuid": T0, "row": {"name": "t0", "n": 0}}),
        json!({"op": "insert", "table": "Target", "uuid": T1, "row": {"name": "t1", "n": 1}}),
        json!({"op": "insert", "table": "Child", "uuid": C0, "row": {"name": "c0", "value": 5, "friend": ["uuid", T0]}}),
        json!({"op": "insert", "table": "Parent", "row": {"name": "p0", "children": ["set", [["uuid", C0]]],
            "targets": ["set", [["uuid", T0], ["uuid", T1]]], "weak_map": ["map", [["a", ["uuid", T0]]]],
            "keyed_map": ["map", [[["uuid", T1], "one"]]], "strong_keyed": ["map", [[["uuid", C0], 1]]]}}),
        json!({"op": "insert", "table": "Holder", "row": {"name": "h0", "must": ["set", [["uuid", T0], ["uuid", T1]]],
            "one": ["uuid", T1]}}),
        json!({"op": "insert", "table": "Scalars", "uuid": S0, "row": {"i": 7, "r": -1.5, "b": true, "s": "s",
            "iset": ["set", [1, 2]], "rset": ["set", [0.5]], "sset": ["set", ["a"]], "uset": ["set", [["uuid", T0]]]}}),
        json!({"op": "insert", "table": "Scalars", "row": {"i": i64::MIN, "r": 1e308, "oi": i64::MAX}}),
        json!({"op": "insert", "table": "Constrained", "row": {"color": "blue", "port": 80, "small_set": 1, "pair": "x",
            "created": 1, "frozen_tags": "f"}}),
        json!({"op": "insert", "table": "Maps", "row": {"ss": ["map", [["k", "v"]]], "req_map": ["map", [["r", 1]]],
            "si": ["map", [["z", 0]]], "small_map": ["map", [["a", "b"]]]}}),
        json!({"op": "insert", "table": "Indexed", "row": {"a": 0, "b": "", "c": "c0", "d": 1.0}}),
        json!({"op": "insert", "table": "Triple", "row": {"x": "a", "y": 0, "z": false}}),
        json!({"op": "insert", "table": "Limited", "row": {"n": 5}}),
    ]
}

fn ovn_ops() -> Vec<Value> {
    vec![
        json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "p", "row": {"name": "lsp9",
            "addresses": ["set", ["00:00:00:00:00:09 10.0.0.9"]], "external_ids": ["map", [["k", "v"]]],
            "tag_request": 5, "enabled": true, "options": ["map", [["requested-chassis", "hv1"]]]}}),
        json!({"op": "mutate", "table": "Logical_Switch", "where": [["_uuid", "==", ["uuid", LS0]]],
            "mutations": [["ports", "insert", ["set", [["named-uuid", "p"]]]]]}),
        json!({"op": "update", "table": "Logical_Switch_Port", "where": [["name", "==", "lsp0"]],
            "row": {"addresses": ["set", ["dynamic"]], "tag_request": ["set", []], "up": false}}),
        json!({"op": "mutate", "table": "Logical_Switch_Port", "where": [["_uuid", "==", ["uuid", LSP0]]],
            "mutations": [["external_ids", "insert", ["map", [["a", "b"]]]], ["external_ids", "delete", ["set", ["k"]]],
                ["tag_request", "+=", 4094]]}),
        json!({"op": "mutate", "table": "Logical_Switch", "where": [["name", "==", "ls0"]],
            "mutations": [["ports", "delete", ["set", [["uuid", LSP0]]]]]}),
        json!({"op": "insert", "table": "ACL", "uuid-name": "acl", "row": {"priority": 1000, "direction": "to-lport",
            "match": "ip4", "action": "allow-related", "log": true, "severity": "info", "label": 4294967295i64}}),
        json!({"op": "mutate", "table": "Logical_Switch", "where": [],
            "mutations": [["acls", "insert", ["named-uuid", "acl"]], ["other_config", "insert", ["map", [["mcast_snoop", "true"]]]]]}),
        json!({"op": "insert", "table": "Logical_Router", "uuid-name": "lr", "row": {"name": "lr0",
            "ports": ["named-uuid", "lrp"], "enabled": true, "options": ["map", [["chassis", "hv1"]]]}}),
        json!({"op": "insert", "table": "Logical_Router_Port", "uuid-name": "lrp", "row": {"name": "lrp0",
            "mac": "00:00:00:00:ff:01", "networks": ["set", ["10.0.0.1/24"]], "peer": "x"}}),
        json!({"op": "insert", "table": "Address_Set", "row": {"name": "as1", "addresses": ["set", ["10.0.0.1", "10.0.0.2"]]}}),
        json!({"op": "insert", "table": "Load_Balancer", "row": {"name": "lb", "protocol": "tcp",
            "vips": ["map", [["10.0.0.10:80", "10.0.0.2:80,10.0.0.3:80"]]], "selection_fields": ["set", ["ip_src"]]}}),
        json!({"op": "insert", "table": "NB_Global", "row": {"name": "", "nb_cfg": 1, "options": ["map", [["northd_probe_interval", "5000"]]]}}),
        json!({"op": "mutate", "table": "NB_Global", "where": [], "mutations": [["nb_cfg", "+=", 1]]}),
        json!({"op": "select", "table": "Logical_Switch_Port", "where": [["external_ids", "includes", ["map", [["k", "v"]]]],
            ["addresses", "!=", ["set", []]], ["tag_request", "<", 10]], "columns": ["name", "addresses"]}),
        json!({"op": "wait", "table": "Logical_Switch", "timeout": 0, "where": [["name", "==", "ls0"]],
            "columns": ["ports"], "until": "==", "rows": [{"ports": ["set", [["uuid", LSP0]]]}]}),
        json!({"op": "delete", "table": "Logical_Switch", "where": [["name", "==", "ls0"]]}),
        json!({"op": "insert", "table": "Meter", "row": {"name": "m", "unit": "kbps", "bands": ["named-uuid", "b"]}}),
        json!({"op": "insert", "table": "Meter_Band", "uuid-name": "b", "row": {"action": "drop", "rate": 1, "burst_size": 0}}),
        json!({"op": "insert", "table": "DHCP_Options", "row": {"cidr": "10.0.0.0/24", "options": ["map", [["lease_time", "3600"]]]}}),
        json!({"op": "insert", "table": "Connection", "row": {"target": "ptcp:6641", "inactivity_probe": 0}}),
        json!({"op": "update", "table": "NB_Global", "where": [], "row": {"connections": ["set", []], "ssl": ["set", []]}}),
    ]
}

fn ovn_preload() -> Vec<Value> {
    vec![
        json!({"op": "insert", "table": "Logical_Switch", "uuid": LS0, "row": {"name": "ls0",
            "ports": ["set", [["uuid", LSP0], ["named-uuid", "p1"]]], "external_ids": ["map", [["k", "v"]]]}}),
        json!({"op": "insert", "table": "Logical_Switch_Port", "uuid": LSP0, "row": {"name": "lsp0",
            "addresses": ["set", ["00:00:00:00:00:01 10.0.0.1"]], "external_ids": ["map", [["k", "v"]]], "tag_request": 1}}),
        json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "p1", "row": {"name": "lsp1", "type": "router",
            "options": ["map", [["router-port", "lrp0"]]]}}),
        json!({"op": "insert", "table": "NB_Global", "row": {"name": "nb"}}),
        json!({"op": "insert", "table": "Address_Set", "row": {"name": "as0", "addresses": ["set", ["10.0.0.1"]]}}),
    ]
}

fn monitor_requests(schema: &DatabaseSchema) -> Vec<Value> {
    let all: serde_json::Map<String, Value> = schema
        .tables
        .iter()
        .map(|t| (t.name.clone(), json!({})))
        .collect();
    let first = &schema.tables[0];
    let col = first
        .columns
        .first()
        .map(|c| c.name.clone())
        .unwrap_or_default();
    vec![
        Value::Object(all),
        json!({first.name.clone(): [{"columns": [col.clone()], "select": {"initial": true, "insert": false}},
                                    {"columns": ["_version"], "where": [[col.clone(), "!=", 0]]}]}),
        json!({first.name.clone(): {"where": [["_uuid", "!=", ["uuid", T0]], true], "select": {"modify": false}}}),
    ]
}

fn fixture(path: &str, preload: Vec<Value>, ops: Vec<Value>) -> Fixture {
    let schema = Arc::new(DatabaseSchema::from_json(&schema_json(path)).unwrap());
    let mut db = Database::new(schema.clone());
    let r = db.transact(&preload);
    assert!(
        r.as_array()
            .unwrap()
            .iter()
            .all(|x| x.get("error").is_none()),
        "preload of {path} failed: {r}"
    );
    let monitors = monitor_requests(&schema);
    Fixture {
        schema,
        db,
        ops,
        monitors,
    }
}

fn alltypes() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| fixture(ALLTYPES, alltypes_preload(), alltypes_ops()))
}

fn ovn() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| fixture(OVN_NB, ovn_preload(), ovn_ops()))
}

fn fixtures() -> [&'static Fixture; 2] {
    [alltypes(), ovn()]
}

/// Words that the engine looks for: tables, columns, operations, functions,
/// mutators, members and the tags of OVSDB's JSON forms.
fn words() -> &'static Vec<String> {
    static W: OnceLock<Vec<String>> = OnceLock::new();
    W.get_or_init(|| {
        let mut w: Vec<String> = [
            "insert",
            "select",
            "update",
            "mutate",
            "delete",
            "wait",
            "commit",
            "abort",
            "comment",
            "assert",
            "op",
            "table",
            "row",
            "rows",
            "where",
            "columns",
            "mutations",
            "uuid-name",
            "uuid",
            "named-uuid",
            "set",
            "map",
            "until",
            "timeout",
            "durable",
            "lock",
            "==",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "includes",
            "excludes",
            "+=",
            "-=",
            "*=",
            "/=",
            "%=",
            "_uuid",
            "_version",
            "initial",
            "modify",
            "name",
            "version",
            "tables",
            "type",
            "key",
            "value",
            "min",
            "max",
            "unlimited",
            "enum",
            "refTable",
            "refType",
            "strong",
            "weak",
            "minInteger",
            "maxInteger",
            "minReal",
            "maxReal",
            "minLength",
            "maxLength",
            "integer",
            "real",
            "boolean",
            "string",
            "isRoot",
            "maxRows",
            "indexes",
            "mutable",
            "ephemeral",
            "cksum",
            "",
            "x",
            "00000000-0000-0000-0000-000000000000",
            T0,
            T1,
            C0,
            S0,
            LS0,
            LSP0,
            "p",
            "n1",
            "c1",
            "c2",
            "acl",
            "lrp",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for f in fixtures() {
            for t in &f.schema.tables {
                w.push(t.name.clone());
                w.extend(t.columns.iter().map(|c| c.name.clone()));
            }
        }
        w.sort();
        w.dedup();
        w
    })
}

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(words().clone())
}

fn number() -> impl Strategy<Value = Value> {
    let floats = prop_oneof![
        any::<f64>(),
        Just(-0.0),
        Just(1e308),
        Just(-1e308),
        Just(f64::MIN_POSITIVE),
        Just(0.5),
        Just(-273.15),
        Just(9.223372036854776e18),
        Just(-9.223372036854776e18),
        Just(1e19),
        -1e6..1e6f64,
    ];
    prop_oneof![
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0),
            Just(-1),
            Just(1),
            Just(i64::MIN + 1),
            any::<i64>(),
            -10i64..70000
        ]
        .prop_map(Value::from),
        prop_oneof![Just(u64::MAX), Just(i64::MAX as u64 + 1), any::<u64>()].prop_map(Value::from),
        floats.prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
    ]
}

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        3 => number(),
        4 => word().prop_map(Value::from),
        2 => ".{0,10}".prop_map(Value::from),
        1 => prop_oneof![Just(300usize), Just(70000usize)].prop_map(|n| Value::from("x".repeat(n))),
    ]
    .boxed()
}

/// Arbitrary JSON, biased towards OVSDB's shapes.
fn arb_json() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                3 => prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                3 => prop::collection::vec((word(), inner.clone()), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                2 => (prop::sample::select(vec!["set", "map", "uuid", "named-uuid"]), inner.clone())
                    .prop_map(|(t, v)| json!([t, v])),
                1 => prop::collection::vec((inner.clone(), inner.clone()), 0..4)
                    .prop_map(|p| json!(["map", p.into_iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>()])),
                2 => (word(), word(), inner.clone()).prop_map(|(c, f, v)| json!([c, f, v])),
            ]
        })
        .boxed()
}

/// One change to a valid document: replace the n-th node (pre-order) by
/// random JSON, rename the n-th member, or remove it.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, Value),
    Rename(usize, String),
    Remove(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        5 => (any::<usize>(), arb_json()).prop_map(|(n, v)| Edit::Replace(n, v)),
        1 => (any::<usize>(), word()).prop_map(|(n, w)| Edit::Rename(n, w)),
        1 => any::<usize>().prop_map(Edit::Remove),
    ]
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Applies `f` to the n-th node in pre-order (0 = the root).
fn with_node(v: &mut Value, n: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
    if *n == 0 {
        f(v);
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| with_node(x, n, f)),
        Value::Object(o) => o.values_mut().any(|x| with_node(x, n, f)),
        _ => false,
    }
}

fn apply_edit(doc: &mut Value, e: &Edit) {
    let nodes = count_nodes(doc);
    let (n, rename) = match e {
        Edit::Replace(n, v) => {
            let mut n = n % nodes;
            with_node(doc, &mut n, &mut |node| *node = v.clone());
            return;
        }
        Edit::Rename(n, w) => (*n, Some(w)),
        Edit::Remove(n) => (*n, None),
    };
    // Pick a container and rename (objects) / move to the end (arrays) or remove one of its members.
    let pick = n / nodes;
    let mut n = n % nodes;
    with_node(doc, &mut n, &mut |node| match node {
        Value::Object(o) if !o.is_empty() => {
            let k = o.keys().nth(pick % o.len()).cloned().unwrap_or_default();
            if let Some(val) = o.remove(&k) {
                if let Some(w) = rename {
                    o.insert(w.clone(), val);
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let val = a.remove(pick % a.len());
            if rename.is_some() {
                a.push(val);
            }
        }
        _ => {}
    });
}

// ---------------------------------------------------------------------------
// Running inputs through every entry point
// ---------------------------------------------------------------------------

/// Runs one transaction on a copy of the fixture's database, then the
/// fixture's monitors over its changes; checks the result's shape.
fn run_transact(f: &Fixture, ops: &[Value]) -> Result<(), TestCaseError> {
    let mut db = f.db.clone();
    let (result, changes) = db.transact_with_changes(ops);
    let arr = result.as_array();
    prop_assert!(arr.is_some(), "result is not an array: {}", result);
    prop_assert!(
        arr.unwrap().len() >= ops.len(),
        "{} results for {} operations: {}",
        arr.unwrap().len(),
        ops.len(),
        result
    );
    for version in [MonitorVersion::V1, MonitorVersion::V2, MonitorVersion::V3] {
        for req in &f.monitors {
            // "where" is not allowed in V1 requests.
            let Ok(m) = Monitor::from_json(&f.schema, version, req) else {
                continue;
            };
            let _ = m.initial(&db);
            let _ = m.update(&f.schema, &changes);
        }
    }
    // The database still answers a full select of every table afterwards.
    for t in &f.schema.tables {
        let r = db.transact(&[json!({"op": "select", "table": t.name, "where": []})]);
        prop_assert!(
            r[0].get("rows").is_some(),
            "select after the transaction failed: {}",
            r
        );
    }
    Ok(())
}

/// Parses a monitor request in every version and, if it parses, computes
/// its initial reply and an update over a change set.
fn run_monitor(f: &Fixture, req: &Value) {
    let mut db = f.db.clone();
    let (_, changes) = db.transact_with_changes(&f.ops[..f.ops.len().min(3)]);
    for version in [MonitorVersion::V1, MonitorVersion::V2, MonitorVersion::V3] {
        if let Ok(m) = Monitor::from_json(&f.schema, version, req) {
            let _ = m.initial(&f.db);
            let _ = m.initial(&db);
            let _ = m.update(&f.schema, &changes);
        }
    }
}

/// Parses a condition and a mutation set for every table, with and without
/// a symbol table, evaluating/applying them to every row of the table.
fn run_condition_mutation(f: &Fixture, json: &Value) {
    for (ti, t) in f.schema.tables.iter().enumerate() {
        let mut symtab = SymbolTable::new();
        let rows: Vec<Row> = f.db.tables[ti]
            .rows
            .values()
            .map(|r| (**r).clone())
            .collect();
        for sym in [false, true] {
            let st = if sym { Some(&mut symtab) } else { None };
            if let Ok(c) = Condition::from_json(t, json, st) {
                for r in &rows {
                    let _ = c.evaluate(r);
                    let _ = c.matches_any(r);
                }
                let _ = c.to_json();
                let _ = (
                    c.is_always_true(),
                    c.is_always_false(),
                    c.uuid_equal(),
                    c.columns(),
                );
            }
            let st = if sym { Some(&mut symtab) } else { None };
            if let Ok(m) = MutationSet::from_json(t, json, st) {
                let _ = m.columns();
                for r in &rows {
                    let mut r = r.clone();
                    let _ = m.apply(t, &mut r);
                }
                let mut r = Row::new_default(t, uuid::Uuid::nil());
                let _ = m.apply(t, &mut r);
            }
        }
    }
}

/// Parses a schema; if it parses, serializes it back (which must parse to
/// the same schema) and runs a select of every table on an empty database.
fn run_schema(json: &Value) -> Result<(), TestCaseError> {
    if let Ok(s) = DatabaseSchema::from_json(json) {
        let again = DatabaseSchema::from_json(&s.to_json());
        prop_assert!(
            again.is_ok(),
            "schema's to_json does not parse: {:?}",
            again.err()
        );
        prop_assert_eq!(again.unwrap(), s.clone(), "schema changes through to_json");
        let mut db = Database::new(Arc::new(s.clone()));
        for t in &s.tables {
            let _ = db.transact(&[json!({"op": "select", "table": t.name, "where": []})]);
        }
    }
    Ok(())
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// (fixture, consecutive?, picks): each pick is an operation index and its
/// edits; with `consecutive` the operations are a run of templates starting
/// at the first pick (so that inserts and the operations referring to them
/// by named-uuid stay together).
fn almost_valid_ops() -> impl Strategy<Value = (usize, bool, Vec<(usize, Vec<Edit>)>)> {
    (
        0..2usize,
        any::<bool>(),
        prop::collection::vec((any::<usize>(), prop::collection::vec(edit(), 0..2)), 1..6),
    )
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary JSON as the whole params array and as single operations.
    #[test]
    fn transact_arbitrary_json(params in prop::collection::vec(arb_json(), 0..5)) {
        for f in fixtures() {
            run_transact(f, &params)?;
            // Each value also as an operation object of a random op.
            let ops: Vec<Value> = params.iter().map(|p| match p {
                Value::Object(_) => p.clone(),
                other => json!({"op": "select", "table": f.schema.tables[0].name, "where": other}),
            }).collect();
            run_transact(f, &ops)?;
        }
    }

    /// Operation-shaped objects with random members.
    #[test]
    fn transact_op_shaped(ops in prop::collection::vec(
        (word(), word(), prop::collection::vec((word(), arb_json()), 0..5)), 1..4)) {
        for f in fixtures() {
            let ops: Vec<Value> = ops.iter().map(|(op, table, members)| {
                let mut o: serde_json::Map<String, Value> = members.iter().cloned().collect();
                o.insert("op".into(), json!(op));
                o.insert("table".into(), json!(table));
                Value::Object(o)
            }).collect();
            run_transact(f, &ops)?;
        }
    }

    /// Valid operations with random members replaced, renamed or removed.
    #[test]
    fn transact_almost_valid((which, consecutive, picks) in almost_valid_ops()) {
        let f = fixtures()[which];
        let start = picks[0].0;
        let ops: Vec<Value> = picks.iter().enumerate().map(|(k, (i, edits))| {
            let i = if consecutive { start.wrapping_add(k) } else { *i };
            let mut op = f.ops[i % f.ops.len()].clone();
            for e in edits {
                apply_edit(&mut op, e);
            }
            op
        }).collect();
        run_transact(f, &ops)?;
    }

    /// Monitor requests: arbitrary, and valid ones with edits.
    #[test]
    fn monitor_requests_never_panic(req in arb_json(), i in any::<usize>(), edits in prop::collection::vec(edit(), 1..3)) {
        for f in fixtures() {
            run_monitor(f, &req);
            let mut valid = f.monitors[i % f.monitors.len()].clone();
            for e in &edits {
                apply_edit(&mut valid, e);
            }
            run_monitor(f, &valid);
            // A request naming a real table with a random body.
            let t = &f.schema.tables[i % f.schema.tables.len()].name;
            run_monitor(f, &json!({t.clone(): req.clone()}));
            run_monitor(f, &json!({t.clone(): [req.clone(), {"where": req.clone()}]}));
        }
    }

    /// Conditions and mutation sets, alone and as clauses of valid ones.
    #[test]
    fn conditions_and_mutations_never_panic(json in arb_json(), edits in prop::collection::vec(edit(), 1..3), i in any::<usize>()) {
        for f in fixtures() {
            run_condition_mutation(f, &json);
            run_condition_mutation(f, &json!([json.clone()]));
            // A "where" or "mutations" array of a valid operation, edited.
            let op = &f.ops[i % f.ops.len()];
            for member in ["where", "mutations"] {
                if let Some(m) = op.get(member) {
                    let mut m = m.clone();
                    for e in &edits {
                        apply_edit(&mut m, e);
                    }
                    run_condition_mutation(f, &m);
                }
            }
        }
    }

    /// Schemas: arbitrary JSON and the two real schemas with edits.
    #[test]
    fn schemas_never_panic(json in arb_json(), which in 0..2usize, edits in prop::collection::vec(edit(), 1..4)) {
        run_schema(&json)?;
        let mut s = schema_json(if which == 0 { ALLTYPES } else { OVN_NB });
        for e in &edits {
            apply_edit(&mut s, e);
        }
        run_schema(&s)?;
    }
}

// ---------------------------------------------------------------------------
// Regression tests: inputs that once crashed the engine
// ---------------------------------------------------------------------------

/// Runs a literal input through every entry point, as the fuzz target does.
fn regression(text: &str) {
    let json: Value = serde_json::from_str(text).unwrap();
    for f in fixtures() {
        if let Value::Array(ops) = &json {
            run_transact(f, ops).unwrap();
        }
        run_monitor(f, &json);
        run_condition_mutation(f, &json);
    }
    run_schema(&json).unwrap();
}

#[test]
fn regression_smoke() {
    regression(r#"[{"op":"select","table":"Scalars","where":[]}]"#);
}

/// Hand-picked edge cases of every entry point.
#[test]
fn edge_cases() {
    let cases = [
        r#"[{"op":"insert","table":"Target","uuid":"00000000-0000-4000-8000-0000000000a0","row":{}}]"#,
        r#"[{"op":"insert","table":"Target","uuid-name":"a","row":{}},{"op":"insert","table":"Target","uuid-name":"a","row":{}}]"#,
        r#"[{"op":"insert","table":"Parent","row":{"children":["named-uuid","nowhere"]}}]"#,
        r#"[{"op":"update","table":"Scalars","where":[],"row":{"_uuid":["uuid","00000000-0000-4000-8000-0000000000a0"]}}]"#,
        r#"[{"op":"update","table":"Scalars","where":[],"row":{"_version":["uuid","00000000-0000-4000-8000-0000000000a0"]}}]"#,
        r#"[{"op":"mutate","table":"Scalars","where":[],"mutations":[["_uuid","+=",1],["_version","insert",1]]}]"#,
        r#"[{"op":"mutate","table":"Scalars","where":[],"mutations":[["i","/=",-1],["i","%=",-1],["i","*=",-1],["i","-=",-9223372036854775808]]}]"#,
        r#"[{"op":"mutate","table":"Scalars","where":[],"mutations":[["r","/=",0],["r","%=",1.5],["r","*=",1e308],["r","*=",1e308]]}]"#,
        r#"[{"op":"select","table":"Scalars","where":[["_uuid","includes",["uuid","00000000-0000-4000-8000-0000000000a0"]],["_version","<",1]]}]"#,
        r#"[{"op":"select","table":"Scalars","where":[["iset","<",1],["r","includes",1e300],["s",">","a"]],"columns":["_uuid","_uuid"]}]"#,
        r#"[{"op":"wait","table":"Scalars","timeout":-1,"where":[],"columns":[],"until":"==","rows":[]}]"#,
        r#"[{"op":"wait","table":"Scalars","timeout":1e300,"where":[],"columns":["i"],"until":"!=","rows":[{"i":1}]}]"#,
        r#"[{"op":"wait","table":"Scalars","timeout":9223372036854775807,"where":[],"columns":["i"],"until":"==","rows":[{"i":1},{"i":2}]}]"#,
        r#"[{"op":"wait","table":"Scalars","timeout":18446744073709551615,"where":[],"columns":["_uuid","i"],"until":"==","rows":[{"_uuid":["uuid","00000000-0000-4000-8000-0000000000a0"]}]}]"#,
        r#"[{"op":"delete","table":"Target","where":[]},{"op":"delete","table":"Child","where":[]},{"op":"delete","table":"Parent","where":[]}]"#,
        r#"[{"op":"insert","table":"Target","row":{"name":"t0"}},{"op":"update","table":"Target","where":[["name","==","t0"]],"row":{"name":"t1"}}]"#,
        r#"[{"op":"insert","table":"Limited","row":{}},{"op":"insert","table":"Limited","row":{}},{"op":"insert","table":"Limited","row":{}}]"#,
        r#"[{"op":"insert","table":"Holder","row":{"must":["set",[]],"one":["uuid","00000000-0000-4000-8000-000000000999"]}}]"#,
        r#"[{"op":"insert","table":"Child","uuid-name":"a","row":{"sibling":["named-uuid","a"]}},{"op":"insert","table":"Parent","row":{"child":["named-uuid","a"]}}]"#,
        r#"[{"op":"insert","table":"Parent","row":{"strong_keyed":["map",[[["uuid","00000000-0000-4000-8000-0000000000c0"],1],[["uuid","00000000-0000-4000-8000-0000000000c0"],2]]]}}]"#,
        r#"[{"op":"insert","table":"Maps","row":{"rb":["map",[[1e308,true],[-0.0,false],[0.0,true]]],"ir":["map",[[9223372036854775807,1e-320]]]}}]"#,
        r#"[{"op":"comment","comment":""},{"op":"commit","durable":true},{"op":"commit","durable":false}]"#,
        r#"{"Scalars":[{"columns":["i"]},{"columns":["i"]}],"Target":{"columns":["_uuid","_version","name"],"select":{}}}"#,
        r#"{"Scalars":{"where":[["i","==",1],false],"columns":[]},"Logical_Switch":{"where":[true]}}"#,
        r#"[["i","==",["set",[1,2]]],["iset","==",["set",[]]],["os","includes",["set",["a","b"]]]]"#,
        r#"[["ss","insert",["set",["a"]]],["ss","delete",["map",[]]],["iset","insert",["set",[1,1]]]]"#,
        r#"{"name":"x","tables":{"A":{"columns":{"a":{"type":{"key":"integer","min":2,"max":1}}}}}}"#,
        r#"{"name":"x","tables":{"A":{"columns":{"a":{"type":{"key":"integer","min":0,"max":0}}}}}}"#,
        r#"{"name":"x","tables":{"A":{"columns":{"a":{"type":{"key":{"type":"uuid","refTable":"A"},"value":{"type":"uuid","refTable":"A","refType":"weak"},"max":"unlimited"}}},"indexes":[["a"],["_uuid"],[]],"maxRows":0}}}"#,
        r#"{"name":"x","tables":{"A":{"columns":{"a":{"type":{"key":{"type":"integer","minInteger":5,"maxInteger":1,"enum":["set",[]]}}},"b":{"type":{"key":{"type":"string","minLength":9,"maxLength":1}}},"c":{"type":{"key":{"type":"real","minReal":1e308,"maxReal":-1e308}}}}}}}"#,
        r#"{"name":"x","tables":{"A":{"columns":{"a":{"type":{"key":{"type":"integer","enum":["set",[1,"x"]]}}}}}}}"#,
        r#"{"name":"x","tables":{"A":{"columns":{"a":{"type":"integer","ephemeral":true}},"indexes":[["a"]]}}}"#,
        r#"{"name":"x","tables":{"A":{"columns":{}},"B":{"isRoot":false,"columns":{"x":{"type":{"key":{"type":"uuid","refTable":"B"}}}}}}}"#,
    ];
    for c in cases {
        regression(c);
    }
}
