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
//! - [`storage`]: the stores. Local log stores (`storage::log`: memory,
//!   and `storage::file_log`, OVSDB's own file format) that the database
//!   applies in place and appends to; the etcd-shaped shared store
//!   (revisions, compare-and-commit, watch, leases) with its key layout and
//!   backends (the in-process `memory` one for unit tests, `etcd`); their
//!   conformance suite is in `tests/support/conformance.rs`.
//! - [`replica`]: the database at a store position, the commit queue of a
//!   shared store, the order local commits are answered in, the
//!   `monitor_cond_since` history, the plans of online conversions in a
//!   shared store (pure state machines, no actix).
//! - [`remote`]: remote strings, TLS settings (rustls), Connection-row
//!   options and the reconnect backoff (pure but for reading key files).
//! - [`actors`]: the server: sessions, databases, locks, `_Server`, listeners (actix).
//! - [`metrics`]: Prometheus metrics of a server and their `/metrics` HTTP endpoint.
//! - [`unixctl`]: the control socket for `ovs-appctl`/`ovn-appctl` and its commands.
//! - [`process`]: Open vSwitch daemon conventions: `--detach`, `--monitor`,
//!   pidfile, `--user`, log levels and destinations.

pub mod actors;
pub mod codec;
pub mod data;
pub mod db;
pub mod error;
pub mod metrics;
pub mod parser;
pub mod process;
pub mod remote;
pub mod replica;
pub mod schema;
pub mod storage;
pub mod unixctl;
