//! oxsdb: an OVSDB server (RFC 7047 and the ovsdb-server extensions).
//!
//! A map of the crate, bottom up (see DESIGN.md):
//! - [`error`]: the RFC 7047 error object and per-layer error types.
//! - [`parser`]: JSON-object member parsing with ovsdb-server's error wording.
//! - [`schema`]: `.ovsschema` types, columns, tables, databases (pure).
//! - [`data`]: atoms, datums, rows, named-uuid symbol tables (pure).
//! - [`db`]: conditions, mutations, operations, transactions with their
//!   commit-time checks, and monitor notification bodies (pure).

pub mod data;
pub mod db;
pub mod error;
pub mod parser;
pub mod schema;
