//! oxsdb: an OVSDB server (RFC 7047 and the ovsdb-server extensions).
//!
//! A map of the crate, bottom up (see DESIGN.md):
//! - [`codec`]: bytes <-> JSON-RPC 1.0 messages (framing, size limit, ovsdb-server's output format).
//! - [`error`]: the RFC 7047 error object and per-layer error types.
//! - [`parser`]: JSON-object member parsing with ovsdb-server's error wording.
//! - [`schema`]: `.ovsschema` types, columns, tables, databases (pure).
//! - [`data`]: atoms, datums, rows, named-uuid symbol tables (pure).
//! - [`db`]: conditions, mutations, operations, transactions with their
//!   commit-time checks, and monitor notification bodies (pure).
//! - [`actors`]: the server: sessions, databases, locks, `_Server`, listeners (actix).
//! - [`storage`]: the etcd-shaped store (revisions, compare-and-commit, watch, leases), the key layout, the backends (their conformance suite is in `tests/support/conformance.rs`).

pub mod actors;
pub mod codec;
pub mod data;
pub mod db;
pub mod error;
pub mod parser;
pub mod replica;
pub mod schema;
pub mod storage;
