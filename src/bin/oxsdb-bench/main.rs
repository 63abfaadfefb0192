//! oxsdb-bench: the load tool. Speaks OVSDB over TCP (or a unix socket) to
//! any server serving the OVN Northbound schema — oxsdb, ovsdb-server
//! standalone or clustered — and checks what it receives, so that a server
//! that drops or duplicates updates shows errors rather than fast numbers.
//! `etcd-txn` loads etcd directly: the ceiling of oxsdb's etcd store.
//!
//! Every run prints a summary on stderr and one JSON object on the last
//! line of stdout; the exit status is 1 when anything was wrong (an error
//! reply, a missed or duplicated notification, a short snapshot).
//! `bench/side-by-side.py` runs it against every contender.

mod bulk;
mod connection;
mod etcd_txn;
mod fanout;
mod nb;
mod snapshot;
mod stats;
mod txn;

use anyhow::Result;
use clap::{Parser, Subcommand};
use serde_json::Value;

/// Where the load goes.
#[derive(Clone)]
pub struct Target {
    /// `tcp:HOST:PORT` or `unix:PATH`.
    pub remote: String,
    /// The database (OVN Northbound schema).
    pub db: String,
    /// Server processes whose CPU time is reported.
    pub pids: Vec<u32>,
}

#[derive(Parser)]
#[command(
    name = "oxsdb-bench",
    about = "OVSDB load tool: txn, fanout, snapshot, bulk, etcd-txn"
)]
struct Cli {
    /// The server: tcp:HOST:PORT or unix:PATH.
    #[arg(long, default_value = "tcp:127.0.0.1:6641")]
    remote: String,
    /// The database to load (it must have the OVN Northbound schema).
    #[arg(long, default_value = "OVN_Northbound")]
    db: String,
    /// A server process to report CPU time for (repeat for a cluster).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Concurrent clients looping over the Northbound transaction mix.
    Txn {
        /// Concurrent clients, one transaction in flight each.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// How long to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Many monitors, one writer: delivery rate and latency.
    Fanout {
        /// Monitor connections.
        #[arg(long, default_value_t = 1000)]
        monitors: usize,
        /// Sequential transactions of the writer.
        #[arg(long, default_value_t = 100)]
        txns: usize,
    },
    /// Time for a fresh client's full initial monitor reply.
    Snapshot {
        /// Ports preloaded.
        #[arg(long, default_value_t = 10_000)]
        ports: usize,
        /// Switches holding them.
        #[arg(long, default_value_t = 100)]
        switches: usize,
        /// Fresh clients fetching the snapshot, one after the other.
        #[arg(long, default_value_t = 5)]
        fetches: usize,
    },
    /// Large transactions: R ports on R/100 switches inserted, then deleted.
    Bulk {
        /// Ports per transaction (a multiple of 100).
        #[arg(long, default_value_t = 1000)]
        rows: usize,
        /// Insert/delete pairs.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// Raw etcd compare-and-put Txns (the etcd store's ceiling).
    EtcdTxn {
        /// etcd client URLs, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
        endpoints: Vec<String>,
        /// Concurrent clients, one Txn in flight each.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// How long to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
}

/// Whether a report shows anything wrong.
fn failed(report: &Value) -> bool {
    ["errors", "missed", "duplicated", "unexpected"]
        .iter()
        .any(|k| report[k].as_u64().is_some_and(|n| n > 0))
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let target = Target {
        remote: cli.remote,
        db: cli.db,
        pids: cli.server_pids,
    };
    let report = match cli.scenario {
        Scenario::Txn { clients, seconds } => txn::run(&target, clients, seconds).await?,
        Scenario::Fanout { monitors, txns } => fanout::run(&target, monitors, txns).await?,
        Scenario::Snapshot {
            ports,
            switches,
            fetches,
        } => snapshot::run(&target, ports, switches, fetches).await?,
        Scenario::Bulk { rows, repeat } => bulk::run(&target, rows, repeat).await?,
        Scenario::EtcdTxn {
            endpoints,
            clients,
            seconds,
        } => etcd_txn::run(&endpoints, clients, seconds).await?,
    };
    eprintln!("{}", serde_json::to_string_pretty(&report)?);
    println!("{report}");
    if failed(&report) {
        eprintln!(
            "oxsdb-bench: the server's replies or notifications were wrong (see errors above)"
        );
        std::process::exit(1);
    }
    Ok(())
}
