//! Remotes: where oxsdb listens and whom it connects to, in ovsdb-server's
//! notation, with TLS (rustls) and the settings a Connection row gives.
//! Pure except for reading key files; the actors that listen, connect and
//! follow `db:` remotes are in `actors::remotes`.
//!
//! - [`target`]: parsing every remote form (`ptcp:`, `pssl:`, `punix:`,
//!   `tcp:`, `ssl:`, `unix:`, `db:`), IPv6 as `[::1]`.
//! - [`tls`]: key, certificate and CA files into rustls configurations,
//!   re-read when they change; [`tls_policy`]: `--ssl-protocols` and
//!   `--ssl-ciphers` mapped onto rustls; [`peer_name`]: a client
//!   certificate's common name; [`ca_bootstrap`]: `--bootstrap-ca-cert` on
//!   the client side.
//! - [`options`]: a Connection row's per-remote settings; [`dscp`]: its
//!   `other_config:dscp` on the sockets.
//! - [`reconnect`]: an active remote's backoff and status (lib/reconnect.c).
//! - [`db_column`]: what a `db:DB,TABLE,COLUMN` column holds.
//! - [`socket_files`]: `punix:` socket files, removed with their listener and at exit.

pub mod ca_bootstrap;
pub mod db_column;
pub mod dscp;
pub mod options;
pub mod peer_name;
pub mod reconnect;
pub mod socket_files;
pub mod target;
pub mod tls;
pub mod tls_policy;

pub use target::{DbColumn, Host, Remote, RemoteError};
