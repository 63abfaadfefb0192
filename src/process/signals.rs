//! The signals a daemon answers: SIGTERM and SIGINT stop it, SIGHUP
//! reopens its log file (log rotation), as Open vSwitch daemons do.

use super::logging::LogControl;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGTERM, SIGINT and SIGHUP, installed before the server starts listening
/// (a SIGTERM right after "listening" must still exit cleanly).
pub struct Signals {
    term: Option<Signal>,
    int: Option<Signal>,
    hup: Option<Signal>,
}

async fn recv(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

impl Signals {
    /// Installs the handlers (inside a tokio runtime).
    pub fn install() -> Signals {
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
        }
    }

    /// Returns on SIGTERM, SIGINT or when `exit` is notified (`ovs-appctl
    /// exit`); SIGHUP meanwhile reopens the log file.
    pub async fn wait(self, exit: &tokio::sync::Notify, log: &LogControl) {
        let (mut term, mut int, mut hup) = (self.term, self.int, self.hup);
        loop {
            tokio::select! {
                _ = recv(&mut term) => return,
                _ = recv(&mut int) => return,
                _ = exit.notified() => return,
                _ = recv(&mut hup) => {
                    if log.file().is_some() {
                        match log.reopen() {
                            Ok(()) => tracing::info!("log file reopened on SIGHUP"),
                            Err(e) => eprintln!("oxsdb: {e}"),
                        }
                    }
                }
            }
        }
    }
}
