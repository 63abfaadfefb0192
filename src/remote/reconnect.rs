//! The reconnection state machine of an active remote, after Open vSwitch's
//! lib/reconnect.c: the first attempt at once, then waits of 1 s doubling
//! up to `max_backoff` (8 s by default) after each failure, reset to 1 s
//! after a connection that lasted at least the current wait; and the
//! statistics ovsdb-server writes back into a Connection row's `status`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The shortest wait between attempts (RECONNECT_DEFAULT_MIN_BACKOFF).
pub const MIN_BACKOFF: Duration = Duration::from_millis(1000);
/// The default longest wait (RECONNECT_DEFAULT_MAX_BACKOFF).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_millis(8000);

/// Where the machine is, named as reconnect.c names its states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting before the next attempt.
    Backoff,
    /// An attempt in progress.
    Connecting,
    /// Connected.
    Active,
}

impl State {
    /// reconnect.c's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            State::Backoff => "BACKOFF",
            State::Connecting => "CONNECTING",
            State::Active => "ACTIVE",
        }
    }
}

/// One active remote's connection history.
#[derive(Debug, Clone)]
pub struct Reconnect {
    /// The state.
    pub state: State,
    backoff: Duration,
    max_backoff: Duration,
    last_connected: Option<Instant>,
    last_disconnected: Option<Instant>,
    /// The last connection error (as ovsdb-server reports it: the system's text).
    pub last_error: Option<String>,
}

impl Reconnect {
    /// A machine about to make its first attempt.
    pub fn new(max_backoff: Option<Duration>) -> Reconnect {
        Reconnect {
            state: State::Connecting,
            backoff: Duration::ZERO,
            max_backoff: max_backoff.unwrap_or(DEFAULT_MAX_BACKOFF).max(MIN_BACKOFF),
            last_connected: None,
            last_disconnected: None,
            last_error: None,
        }
    }

    /// Changes the longest wait (a Connection row's `max_backoff`).
    pub fn set_max_backoff(&mut self, max_backoff: Option<Duration>) {
        self.max_backoff = max_backoff.unwrap_or(DEFAULT_MAX_BACKOFF).max(MIN_BACKOFF);
    }

    /// An attempt starts.
    pub fn connecting(&mut self) {
        self.state = State::Connecting;
    }

    /// The attempt succeeded.
    pub fn connected(&mut self, now: Instant) {
        self.state = State::Active;
        self.last_connected = Some(now);
        self.last_error = None;
    }

    /// The attempt failed or the connection ended: how long to wait before the next one.
    pub fn disconnected(&mut self, now: Instant, error: Option<String>) -> Duration {
        let was_active = self.state == State::Active;
        if was_active {
            self.last_disconnected = Some(now);
        }
        if error.is_some() {
            self.last_error = error;
        }
        let lasted = self
            .last_connected
            .map(|c| now.saturating_duration_since(c))
            .unwrap_or_default();
        // A connection that lasted at least the current wait starts over at the minimum.
        self.backoff = if (was_active && lasted >= self.backoff) || self.backoff < MIN_BACKOFF {
            MIN_BACKOFF
        } else if self.backoff < self.max_backoff / 2 {
            self.backoff * 2
        } else {
            self.max_backoff
        };
        self.state = State::Backoff;
        self.backoff
    }

    /// The `status` map entries of an active remote (ovsdb-server's
    /// update_remote_row): `state`, `sec_since_connect`,
    /// `sec_since_disconnect`. No `last_error`: ovsdb-server reports the
    /// error of the connection in place, which a connection that is up
    /// has none of and one that is down does not exist for.
    pub fn status(&self, now: Instant) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("state".to_string(), self.state.name().to_string());
        let secs = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t).as_secs());
        if let Some(s) = secs(self.last_connected) {
            m.insert("sec_since_connect".into(), s.to_string());
        }
        if let Some(s) = secs(self.last_disconnected) {
            m.insert("sec_since_disconnect".into(), s.to_string());
        }
        m
    }
}

/// An I/O error as Open vSwitch prints an errno: the system's text
/// without Rust's " (os error N)".
pub fn error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_maximum() {
        let t = Instant::now();
        let mut r = Reconnect::new(None);
        let waits: Vec<u64> = (0..6)
            .map(|_| {
                r.connecting();
                r.disconnected(t, Some("Connection refused".into()))
                    .as_millis() as u64
            })
            .collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(r.status(t)["state"], "BACKOFF");
        assert_eq!(r.last_error.as_deref(), Some("Connection refused"));
    }

    #[test]
    fn a_lasting_connection_resets_the_wait() {
        let t = Instant::now();
        let mut r = Reconnect::new(Some(Duration::from_secs(4)));
        for _ in 0..4 {
            r.disconnected(t, None);
        }
        r.connected(t);
        assert_eq!(
            r.status(t + Duration::from_secs(3))["sec_since_connect"],
            "3"
        );
        let w = r.disconnected(t + Duration::from_secs(10), None);
        assert_eq!(w, MIN_BACKOFF);
        let s = r.status(t + Duration::from_secs(12));
        assert_eq!(s["sec_since_disconnect"], "2");
        assert!(!s.contains_key("last_error"));
    }
}
