//! Open vSwitch daemon conventions: the options ([`args`]), detaching and
//! the crash monitor ([`daemon`]), the pidfile ([`pidfile`]), log levels
//! ([`vlog`]), the log destinations that follow them ([`logging`]) and
//! their line layout ([`log_format`]), the signals ([`signals`]);
//! [`compat`]: the SSL options ovn-ctl passes that oxsdb does not follow yet.

pub mod args;
pub mod compat;
pub mod daemon;
pub mod log_format;
pub mod logging;
pub mod pidfile;
pub mod signals;
pub mod vlog;
