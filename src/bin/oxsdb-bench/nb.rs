//! The OVN Northbound operations the scenarios send: what ovn-nbctl and
//! CMSes do most (switches with named-uuid ports, port updates, set and map
//! mutations, deletes that leave ports to garbage collection).

use serde_json::{json, Value};

/// The condition selecting one row by UUID.
pub fn by_uuid(uuid: &str) -> Value {
    json!([["_uuid", "==", ["uuid", uuid]]])
}

/// Inserts a switch holding one new port (named-uuid reference).
pub fn insert_switch_with_port(switch: &str, port: &str) -> Vec<Value> {
    vec![
        json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "port",
               "row": {"name": port, "type": "", "enabled": true,
                       "external_ids": ["map", [["neutron:port_name", port]]]}}),
        json!({"op": "insert", "table": "Logical_Switch", "uuid-name": "switch",
               "row": {"name": switch, "ports": ["named-uuid", "port"],
                       "external_ids": ["map", [["neutron:network_name", switch]]]}}),
    ]
}

/// The `"MAC IP"` address of port number `i` (distinct for every `i` < 2^24).
fn address(i: u64) -> String {
    let b = |shift: u64| (i >> shift) & 255;
    format!(
        "0a:00:{:02x}:{:02x}:{:02x}:{:02x} 10.{}.{}.{}",
        b(24),
        b(16),
        b(8),
        b(0),
        b(16),
        b(8),
        b(0)
    )
}

/// Sets a port's addresses and port security.
pub fn update_port(port: &str, i: u64) -> Vec<Value> {
    let addr = address(i);
    vec![
        json!({"op": "update", "table": "Logical_Switch_Port", "where": by_uuid(port),
                "row": {"addresses": addr, "port_security": addr, "up": false}}),
    ]
}

/// Mutates a port's map and set columns and its switch's map.
pub fn mutate_port_and_switch(port: &str, switch: &str) -> Vec<Value> {
    vec![
        json!({"op": "mutate", "table": "Logical_Switch_Port", "where": by_uuid(port),
               "mutations": [["external_ids", "insert", ["map", [["neutron:device_owner", "compute:nova"]]]],
                             ["addresses", "insert", ["set", ["router"]]]]}),
        json!({"op": "mutate", "table": "Logical_Switch", "where": by_uuid(switch),
               "mutations": [["other_config", "insert", ["map", [["mcast_snoop", "true"]]]]]}),
    ]
}

/// Deletes a switch (its ports are garbage collected).
pub fn delete_switch(switch: &str) -> Vec<Value> {
    vec![json!({"op": "delete", "table": "Logical_Switch", "where": by_uuid(switch)})]
}

/// Deletes every switch (and so every port referenced only by them).
pub fn delete_all_switches() -> Vec<Value> {
    vec![json!({"op": "delete", "table": "Logical_Switch", "where": []})]
}

/// Inserts `switches` switches named `{prefix}-s<i>` with `ports_per_switch`
/// ports each: one transaction.
pub fn insert_switches(
    prefix: &str,
    first: usize,
    switches: usize,
    ports_per_switch: usize,
) -> Vec<Value> {
    let mut ops = Vec::with_capacity(switches * (ports_per_switch + 1));
    for s in first..first + switches {
        let mut refs = Vec::with_capacity(ports_per_switch);
        for p in 0..ports_per_switch {
            let name = format!("p{s}x{p}");
            refs.push(json!(["named-uuid", name]));
            let i = (s * ports_per_switch + p) as u64;
            ops.push(json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": name,
                            "row": {"name": format!("{prefix}-s{s}-p{p}"),
                                    "addresses": address(i),
                                    "external_ids": ["map", [["neutron:port_name", format!("{prefix}-{i}")]]]}}));
        }
        ops.push(json!({"op": "insert", "table": "Logical_Switch",
                        "row": {"name": format!("{prefix}-s{s}"), "ports": ["set", refs]}}));
    }
    ops
}
