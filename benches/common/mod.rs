//! What the criterion benches share: the OVN Northbound schema they run on
//! and deterministic port addresses.

#![allow(dead_code)]

use std::sync::Arc;

use oxsdb::schema::DatabaseSchema;

/// The schema every bench runs on (Debian package `ovn-central`).
pub const OVN_NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";

/// The text of [`OVN_NB`]; panics with what to install if it is missing.
pub fn schema_text() -> String {
    std::fs::read_to_string(OVN_NB)
        .unwrap_or_else(|e| panic!("{OVN_NB}: {e} (install it with `apt-get install ovn-central`)"))
}

/// The parsed [`OVN_NB`] schema.
pub fn schema() -> Arc<DatabaseSchema> {
    let json = serde_json::from_str(&schema_text()).expect("ovn-nb.ovsschema is JSON");
    Arc::new(DatabaseSchema::from_json(&json).expect("ovn-nb.ovsschema is a valid schema"))
}

/// A MAC address distinct for every `i` < 2^32.
pub fn mac(i: usize) -> String {
    format!(
        "0a:00:{:02x}:{:02x}:{:02x}:{:02x}",
        (i >> 24) & 255,
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
}
