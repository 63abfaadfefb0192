//! Shared helpers for the integration tests: a reference `ovsdb-server`
//! harness and the normalisation used to compare its replies with oxsdb's.
#![allow(dead_code)]

pub mod clients;
pub mod etcd;
pub mod normalize;
pub mod reference;
pub mod servers;
