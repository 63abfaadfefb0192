//! Prometheus metrics: one set of typed handles per server, updated
//! cheaply (atomics; a histogram's short lock) from the actors and rendered as text exposition by [`http`].
//!
//! Each server owns its own [`Metrics`] (reached through its
//! `actors::registry::Registry`), not a process-wide static: tests and
//! embedders run several servers in one process, and a shared set would
//! add their counts together and make one server's numbers meaningless.

pub mod args;
pub mod http;
pub mod sample;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A one-label label set (`error="..."`, `db="..."`).
pub type Label = [(&'static str, String); 1];

/// The labels of a store error: the request (`op`) and the kind of error.
pub type StoreErrorLabels = [(&'static str, String); 2];

/// Longest label value kept: an error tag or a database name longer than
/// this is cut, so a label never grows a scrape without bound.
const MAX_LABEL: usize = 64;

/// A label value the text format can carry: the encoder does not escape,
/// so quotes, backslashes and line ends become `_`.
pub fn label(name: &'static str, value: &str) -> Label {
    let v: String = value
        .chars()
        .take(MAX_LABEL)
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' => '_',
            c => c,
        })
        .collect();
    [(name, v)]
}

/// The metric handles of one server, and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    /// Client transactions answered without an error (read-only ones too).
    pub committed: Counter,
    /// Client transactions answered with an error, by its tag.
    pub failed: Family<Label, Counter>,
    /// Seconds from a transaction's receipt to its reply.
    pub commit_latency: Histogram,
    /// Transactions in each group committed to a shared store.
    pub group_size: Histogram,
    /// Groups sent to a shared store and not yet answered.
    pub groups_in_flight: Gauge,
    /// Sessions connected (set when scraped).
    pub sessions: Gauge,
    /// Monitors registered, all databases (set when scraped).
    pub monitors: Gauge,
    /// Monitor updates written to sessions.
    pub notifications: Counter,
    /// Bytes of the monitor updates written to sessions.
    pub notification_bytes: Counter,
    /// Monitor updates held back by a backlogged session and merged into an earlier one.
    pub merged: Counter,
    /// Seconds a shared store (etcd) took to answer a group commit.
    pub store_latency: Histogram,
    /// Shared-store requests that failed, by request and kind of error.
    pub store_errors: Family<StoreErrorLabels, Counter>,
    /// Whether each database's store answers (1) or not (0) (set when scraped).
    pub store_connected: Family<Label, Gauge>,
    /// Rows in each database (set when scraped).
    pub rows: Family<Label, Gauge>,
    /// Transactions waiting to be executed, per database (set when scraped).
    pub queued: Family<Label, Gauge>,
    /// Resident memory of the process in bytes (set when scraped).
    pub resident_memory: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, every one registered under `oxsdb_`.
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::with_prefix("oxsdb"),
            committed: Counter::default(),
            failed: Family::default(),
            // 0.5 ms to about 16 s.
            commit_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            // 1 to 2048 transactions.
            group_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            groups_in_flight: Gauge::default(),
            sessions: Gauge::default(),
            monitors: Gauge::default(),
            notifications: Counter::default(),
            notification_bytes: Counter::default(),
            merged: Counter::default(),
            store_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            store_errors: Family::default(),
            store_connected: Family::default(),
            rows: Family::default(),
            queued: Family::default(),
            resident_memory: Gauge::default(),
        };
        m.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "transactions_committed",
            "Client transactions answered without an error",
            self.committed.clone(),
        );
        r.register(
            "transactions_failed",
            "Client transactions answered with an error, by error tag",
            self.failed.clone(),
        );
        r.register(
            "commit_latency_seconds",
            "Seconds from a transaction's receipt to its reply",
            self.commit_latency.clone(),
        );
        r.register(
            "commit_group_size",
            "Transactions in each group committed to the shared store",
            self.group_size.clone(),
        );
        r.register(
            "commit_groups_in_flight",
            "Groups sent to the shared store and not yet answered",
            self.groups_in_flight.clone(),
        );
        r.register("sessions", "Connected sessions", self.sessions.clone());
        r.register("monitors", "Registered monitors", self.monitors.clone());
        r.register(
            "notifications_sent",
            "Monitor updates written to sessions",
            self.notifications.clone(),
        );
        r.register(
            "notification_bytes_sent",
            "Bytes of monitor updates written to sessions",
            self.notification_bytes.clone(),
        );
        r.register(
            "updates_merged",
            "Monitor updates merged into a held-back one while a session was backlogged",
            self.merged.clone(),
        );
        r.register(
            "store_request_seconds",
            "Seconds the shared store (etcd) took to answer a group commit",
            self.store_latency.clone(),
        );
        r.register(
            "store_errors",
            "Shared store (etcd) requests that failed, by request and kind of error",
            self.store_errors.clone(),
        );
        r.register(
            "store_connected",
            "Whether the database's store answers (1) or not (0)",
            self.store_connected.clone(),
        );
        r.register("rows", "Rows in the database", self.rows.clone());
        r.register(
            "transactions_queued",
            "Transactions waiting to be executed (not those already executed into the next group)",
            self.queued.clone(),
        );
        r.register(
            "resident_memory_bytes",
            "Resident memory of the process",
            self.resident_memory.clone(),
        );
        self
    }

    /// Counts a client transaction's reply (`error`: the tag of the first
    /// error in its result array, if any) and the time since it was received.
    pub fn transaction_answered(&self, error: Option<&str>, seconds: f64) {
        self.commit_latency.observe(seconds);
        match error {
            Some(tag) => {
                self.failed.get_or_create(&label("error", tag)).inc();
            }
            None => {
                self.committed.inc();
            }
        }
    }

    /// Counts a failed shared-store request: `op` is the request
    /// (`commit`, `open`, `watch`), `kind` what went wrong.
    pub fn store_error(&self, op: &'static str, kind: &str) {
        let [(_, kind)] = label("kind", kind);
        self.store_errors
            .get_or_create(&[("op", op.to_string()), ("kind", kind)])
            .inc();
    }

    /// The text exposition (OpenMetrics) of every metric as it is now.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error leaves what was written.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_count_as_committed_or_failed_by_tag() {
        let m = Metrics::new();
        m.transaction_answered(None, 0.001);
        m.transaction_answered(Some("constraint violation"), 0.002);
        let text = m.render();
        assert!(
            text.contains("oxsdb_transactions_committed_total 1"),
            "{text}"
        );
        assert!(
            text.contains("oxsdb_transactions_failed_total{error=\"constraint violation\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("oxsdb_commit_latency_seconds_count 2"),
            "{text}"
        );
    }

    #[test]
    fn label_values_cannot_break_the_format() {
        assert_eq!(label("db", "a\"b\\c\nd")[0].1, "a_b_c_d");
        assert_eq!(label("db", &"x".repeat(500))[0].1.len(), MAX_LABEL);
    }
}
