//! Shared helpers for the integration tests, declared once by every test
//! file as `mod support;` (and by the benches that start servers):
//! - [`tools`]: finding and running the real tools (a missing one fails the
//!   test with what to install), signals, time-limited commands;
//! - [`process`]: oxsdb or `ovsdb-server` as a child process that listens,
//!   stops, is killed and starts again;
//! - [`reference`]: the reference `ovsdb-server` on fresh or existing databases;
//! - [`rpc`]: the blocking JSON-RPC client;
//! - [`servers`]: one server of either kind for the real-client tests, on
//!   the store `OXSDB_CLIENT_TESTS_STORE` names;
//! - [`wire`]: raw connections recording every message with its time;
//! - [`clients`], [`normalize`]: running the real clients and normalising
//!   what they and the servers print, for comparison;
//! - [`etcd`], [`cluster`]: real etcd members and several oxsdb on them;
//! - [`conformance`]: the storage conformance suite every backend passes;
//! - [`files`], [`rng`]: OVSDB file records, a seeded random generator.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod clients;
pub mod cluster;
pub mod conformance;
pub mod etcd;
pub mod files;
pub mod normalize;
pub mod process;
pub mod reference;
pub mod rng;
pub mod rpc;
pub mod servers;
pub mod tools;
pub mod wire;
