//! When the next commit group of a shared store leaves: at once, or a
//! moment later so that it carries the clients just answered.
//!
//! With one fenced group in flight (DESIGN.md), answering group k releases
//! its clients together; each sends its next transaction a few tens of
//! microseconds later. Starting group k+1 with whichever arrives first
//! leaves the others for group k+2, and the groups alternate between one
//! transaction and the rest: half the rate a store round trip allows
//! (measured on etcd: 8 clients committed 0.5-0.6x raw etcd's Txns). So the
//! next group waits for the sessions the last one answered, until all of
//! them sent again or a short deadline passed (a client that stopped must
//! not hold the others up). A lone client is never delayed: once its own
//! transaction arrived there is nobody else to wait for. Pure: the Database
//! actor asks it and sets the timer.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The longest a group waits for the clients answered with the last one.
pub const MAX_GATHER_WAIT: Duration = Duration::from_millis(2);

/// Which answered clients the next group still waits for, and until when.
#[derive(Debug, Default)]
pub struct Gather {
    /// Sessions answered with the last group that have not sent since.
    expected: HashSet<u64>,
    /// When the wait ends.
    deadline: Option<Instant>,
}

impl Gather {
    /// The last group was answered at `now`: `sessions` wrote in it, and the
    /// store took `round_trip` to commit it. The wait for them is at most
    /// half a round trip (capped at [`MAX_GATHER_WAIT`]).
    pub fn answered(
        &mut self,
        sessions: impl IntoIterator<Item = u64>,
        now: Instant,
        round_trip: Duration,
    ) {
        self.expected = sessions.into_iter().collect();
        self.deadline = if self.expected.len() > 1 {
            Some(now + (round_trip / 2).min(MAX_GATHER_WAIT))
        } else {
            // One client: when it sends again, nobody else is expected.
            self.expected.clear();
            None
        };
    }

    /// A transaction of `session` was queued.
    pub fn arrived(&mut self, session: u64) {
        self.expected.remove(&session);
        if self.expected.is_empty() {
            self.deadline = None;
        }
    }

    /// Whether the next group may leave at `now`; if not, when to look again.
    pub fn wait_until(&mut self, now: Instant) -> Option<Instant> {
        match self.deadline {
            Some(d) if now < d && !self.expected.is_empty() => Some(d),
            _ => {
                self.expected.clear();
                self.deadline = None;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(2);

    #[test]
    fn waits_for_every_answered_client_then_leaves() {
        let t0 = Instant::now();
        let mut g = Gather::default();
        g.answered([1, 2, 3], t0, RTT);
        g.arrived(2);
        assert_eq!(g.wait_until(t0), Some(t0 + RTT / 2));
        g.arrived(1);
        assert!(g.wait_until(t0).is_some());
        g.arrived(3);
        assert_eq!(g.wait_until(t0), None, "everyone is in: leave at once");
    }

    #[test]
    fn a_silent_client_holds_the_group_only_until_the_deadline() {
        let t0 = Instant::now();
        let mut g = Gather::default();
        g.answered([1, 2], t0, Duration::from_secs(1));
        g.arrived(1);
        let d = g.wait_until(t0).expect("waits for 2");
        assert_eq!(d, t0 + MAX_GATHER_WAIT, "capped");
        assert_eq!(g.wait_until(d), None);
        // The wait is over for good, not renewed by later questions.
        assert_eq!(g.wait_until(t0), None);
    }

    #[test]
    fn a_lone_client_is_never_delayed() {
        let t0 = Instant::now();
        let mut g = Gather::default();
        g.answered([7], t0, RTT);
        assert_eq!(g.wait_until(t0), None);
        g.answered([], t0, RTT);
        assert_eq!(g.wait_until(t0), None);
    }

    #[test]
    fn a_client_of_another_group_does_not_end_the_wait() {
        let t0 = Instant::now();
        let mut g = Gather::default();
        g.answered([1, 2], t0, RTT);
        g.arrived(9);
        assert!(g.wait_until(t0).is_some());
    }
}
