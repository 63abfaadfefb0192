//! The control socket that `ovs-appctl -t` and `ovn-appctl -t` talk to
//! (Open vSwitch's unixctl): the JSON-RPC server ([`server`]), the command
//! table with its argument checks ([`table`]) and ovsdb-server's commands
//! ([`ovsdb`]).

pub mod ovsdb;
pub mod server;
pub mod table;
