//! Open vSwitch daemon conventions: the options ([`args`]), detaching and
//! the crash monitor ([`daemon`]), the pidfile ([`pidfile`]), log levels
//! ([`vlog`]), the log destinations that follow them ([`logging`]) and
//! their line layout ([`log_format`]), the signals ([`signals`]), the SSL
//! options ([`ssl_args`]).

pub mod args;
pub mod daemon;
pub mod log_format;
pub mod logging;
pub mod pidfile;
pub mod signals;
pub mod ssl_args;
pub mod vlog;
