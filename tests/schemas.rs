//! Schema loading: every real schema oxsdb must serve, the project's example
//! schemas, round trips through `to_json`, and bad schemas refused with an
//! error naming what is wrong.

use oxsdb::schema::{AtomicType, DatabaseSchema, RefType, UNLIMITED};
use serde_json::{json, Value};

fn need(path: &str) -> DatabaseSchema {
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: install Debian's ovn-central and openvswitch-switch (./test.sh does)"
    );
    DatabaseSchema::from_file(path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn loads_ovn_northbound() {
    let s = need("/usr/share/ovn/ovn-nb.ovsschema");
    assert_eq!(s.name, "OVN_Northbound");
    let ls = s.table("Logical_Switch").expect("Logical_Switch");
    assert!(ls.is_root);
    let ports = &ls.columns[ls.column_index("ports").expect("ports")];
    assert_eq!(ports.ty.key.atomic, AtomicType::Uuid);
    assert_eq!(
        ports.ty.key.ref_table.as_deref(),
        Some("Logical_Switch_Port")
    );
    assert_eq!(ports.ty.key.ref_type, RefType::Strong);
    assert_eq!(ports.ty.max, UNLIMITED);
    assert!(!s.table("Logical_Switch_Port").expect("LSP").is_root);
    assert!(!s
        .table("Logical_Switch_Port")
        .expect("LSP")
        .indexes
        .is_empty());
}

#[test]
fn loads_ovn_southbound() {
    let s = need("/usr/share/ovn/ovn-sb.ovsschema");
    assert_eq!(s.name, "OVN_Southbound");
    assert!(s.table("Logical_Flow").is_some());
    assert!(s.table("Port_Binding").is_some());
}

#[test]
fn loads_vswitch() {
    let s = need("/usr/share/openvswitch/vswitch.ovsschema");
    assert_eq!(s.name, "Open_vSwitch");
    let ovs = s.table("Open_vSwitch").expect("Open_vSwitch table");
    assert_eq!(ovs.max_rows, Some(1));
    // Mirror's select_src_port is a weak reference set.
    let m = s.table("Mirror").expect("Mirror");
    let c = &m.columns[m.column_index("select_src_port").expect("column")];
    assert_eq!(c.ty.key.ref_type, RefType::Weak);
}

#[test]
fn loads_server_schema() {
    let s = DatabaseSchema::server_schema();
    assert_eq!(s.name, "_Server");
    assert!(s.table("Database").is_some());
    let parsed: Value = serde_json::from_str(oxsdb::schema::database::SERVER_SCHEMA).expect("json");
    assert_eq!(s.to_json(), parsed);
}

#[test]
fn loads_examples() {
    let todo = DatabaseSchema::from_file("examples/todo.ovsschema").expect("todo");
    assert_eq!(todo.name, "todo");
    assert!(todo.table("List").expect("List").is_root);
    assert!(!todo.table("Item").expect("Item").is_root);
    let all = DatabaseSchema::from_file("examples/alltypes.ovsschema").expect("alltypes");
    assert!(all.tables.len() >= 2);
}

/// `to_json` then `from_json` gives the same schema, for every real schema.
#[test]
fn to_json_round_trips() {
    for path in [
        "/usr/share/ovn/ovn-nb.ovsschema",
        "/usr/share/ovn/ovn-sb.ovsschema",
        "/usr/share/openvswitch/vswitch.ovsschema",
        "examples/todo.ovsschema",
        "examples/alltypes.ovsschema",
    ] {
        let s = need(path);
        let again = DatabaseSchema::from_json(&s.to_json()).expect(path);
        assert_eq!(s, again, "{path}");
    }
}

/// The schema JSON oxsdb serves equals what ovsdb-server's `get-schema` prints
/// for the same file (ovsdb-client is the reference's own client).
#[test]
fn to_json_equals_reference_get_schema() {
    for path in [
        "/usr/share/ovn/ovn-nb.ovsschema",
        "/usr/share/openvswitch/vswitch.ovsschema",
        "examples/alltypes.ovsschema",
    ] {
        let s = need(path);
        let out = std::process::Command::new("ovsdb-tool")
            .args(["schema-name", path])
            .output()
            .expect("ovsdb-tool not found: apt-get install openvswitch-common");
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), s.name);
        // ovsdb-tool normalizes schemas the same way ovsdb-server serves them.
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("x.db");
        let ok = std::process::Command::new("ovsdb-tool")
            .args(["create", db.to_str().unwrap_or_default(), path])
            .status()
            .expect("ovsdb-tool");
        assert!(ok.success());
        let text = std::fs::read_to_string(&db).expect("db file");
        let schema_line = text.lines().nth(1).expect("schema record");
        let reference: Value = serde_json::from_str(schema_line).expect("schema json");
        // Compare as ovsdb-server prints JSON (reals as %.15g: 1.0 is "1").
        assert_eq!(
            oxsdb::data::json_text(&s.to_json()),
            oxsdb::data::json_text(&reference),
            "{path}"
        );
    }
}

fn bad(schema: Value) -> String {
    match DatabaseSchema::from_json_located(&schema) {
        Ok(_) => panic!("accepted a bad schema: {schema}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_schemas_name_the_problem() {
    let e = bad(json!({"name": "d", "tables": {"T": {"columns": {"c": {"type": "bogus"}}}}}));
    assert!(
        e.contains("table T") && e.contains("column c") && e.contains("bogus"),
        "{e}"
    );

    let e = bad(
        json!({"name": "d", "tables": {"T": {"columns": {"c": {"type": {"key": "integer", "min": 2}}}}}}),
    );
    assert!(e.contains("column c") && e.contains("constraint"), "{e}");

    let e = bad(
        json!({"name": "d", "tables": {"T": {"columns": {"c": {"type": {"key": {"type": "uuid", "refTable": "Nope"}}}}}}}),
    );
    assert!(e.contains("Nope") && e.contains("column c"), "{e}");

    let e = bad(json!({"name": "d", "version": "1.2", "tables": {}}));
    assert!(e.contains("x.y.z"), "{e}");

    let e = bad(json!({"name": "d", "tables": {"_T": {"columns": {"c": {"type": "integer"}}}}}));
    assert!(e.contains("reserved"), "{e}");

    let e = bad(json!({"name": "d", "tables": {"T": {"columns": {"_c": {"type": "integer"}}}}}));
    assert!(e.contains("reserved"), "{e}");

    let e = bad(
        json!({"name": "d", "tables": {"T": {"columns": {"c": {"type": {"key": {"type": "integer", "minInteger": 5, "maxInteger": 1}}}}}}}),
    );
    assert!(e.contains("minInteger exceeds maxInteger"), "{e}");

    let e = bad(
        json!({"name": "d", "tables": {"T": {"columns": {"c": {"type": {"key": {"type": "string", "minReal": 1.0}}}}}}}),
    );
    assert!(e.contains("minReal") && e.contains("not allowed"), "{e}");

    let e = bad(
        json!({"name": "d", "tables": {"T": {"columns": {"c": {"type": "integer"}}, "indexes": [["nope"]]}}}),
    );
    assert!(e.contains("nope"), "{e}");

    let e = bad(
        json!({"name": "d", "tables": {"T": {"columns": {"c": {"type": "integer"}}, "maxRows": 0}}}),
    );
    assert!(e.contains("maxRows"), "{e}");

    let e = bad(
        json!({"name": "d", "tables": {"T": {"columns": {"c": {"type": "integer", "bogus": true}}}}}),
    );
    assert!(e.contains("bogus"), "{e}");

    let e = bad(json!({"name": "d", "tables": {"T": {"columns": {}}}}));
    assert!(e.contains("at least one column"), "{e}");

    let e = bad(json!({"tables": {}}));
    assert!(e.contains("'name'"), "{e}");

    let e = bad(
        json!({"name": "d", "tables": {"T": {"columns": {"c": {"type": {"key": {"type": "uuid", "refTable": "T", "refType": "medium"}}}}}}}),
    );
    assert!(e.contains("refType"), "{e}");
}

#[test]
fn schema_file_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("broken.ovsschema");
    std::fs::write(&p, "{not json").expect("write");
    let e = DatabaseSchema::from_file(&p)
        .expect_err("must fail")
        .to_string();
    assert!(e.contains("broken.ovsschema") && e.contains("JSON"), "{e}");
    let e = DatabaseSchema::from_file(dir.path().join("missing.ovsschema"))
        .expect_err("must fail")
        .to_string();
    assert!(e.contains("missing.ovsschema"), "{e}");
}
