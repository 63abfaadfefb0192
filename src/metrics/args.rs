//! The `--metrics` option (flattened into the CLI).

use std::net::SocketAddr;

/// Where to serve Prometheus metrics.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics over HTTP at IP:PORT, path /metrics
    /// (e.g. 127.0.0.1:9476 or [::1]:9476; port 0 picks a free one).
    #[arg(long = "metrics", value_name = "IP:PORT")]
    pub metrics: Option<SocketAddr>,
}
