//! oxsdb-bench: the load tool. Speaks OVSDB over TCP (or a unix socket) to
//! any server serving the OVN Northbound schema — oxsdb, ovsdb-server
//! standalone or clustered — and checks what it receives, so that a server
//! that drops or duplicates updates shows errors rather than fast numbers.
//! `condfanout` loads the OVN Southbound schema instead: conditional
//! monitors as ovn-controllers hold them. `etcd-txn` loads etcd directly:
//! the ceiling of oxsdb's etcd store.
//!
//! Every run prints a summary on stderr and one JSON object on the last
//! line of stdout; the exit status is 1 when anything was wrong (an error
//! reply, a missed or duplicated notification, a short snapshot).
//! `bench/side-by-side.py` runs it against every contender.

mod bulk;
mod condfanout;
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
    /// `tcp:HOST:PORT` or `unix:PATH`: the first server.
    pub remote: String,
    /// Every server given, the first included: condfanout spreads its
    /// sessions over them (several servers sharing one etcd).
    pub remotes: Vec<String>,
    /// The database (OVN Northbound schema; Southbound for condfanout).
    pub db: String,
    /// Server processes whose CPU time is reported.
    pub pids: Vec<u32>,
}

#[derive(Parser)]
#[command(
    name = "oxsdb-bench",
    about = "OVSDB load tool: txn, fanout, condfanout, snapshot, bulk, etcd-txn"
)]
struct Cli {
    /// The server: tcp:HOST:PORT or unix:PATH. Repeat it for servers
    /// sharing one database (condfanout spreads its sessions over them;
    /// everything else, the writer included, uses the first).
    #[arg(long, default_value = "tcp:127.0.0.1:6641")]
    remote: Vec<String>,
    /// The database to load: OVN_Northbound by default, OVN_Southbound for
    /// condfanout (the database must have that OVN schema).
    #[arg(long)]
    db: Option<String>,
    /// A server process to report CPU time for (repeat for a cluster; with
    /// several --remote, their processes first, in the same order).
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
    /// Conditional monitors on the OVN Southbound schema (issue 16): M
    /// sessions with K-clause datapath conditions, one writer, then a storm
    /// of monitor_cond_change calls; every row checked.
    Condfanout {
        /// Datapath_Binding rows.
        #[arg(long, default_value_t = 3000)]
        datapaths: usize,
        /// Port_Binding rows per datapath.
        #[arg(long, default_value_t = 4)]
        ports: usize,
        /// Sessions, each one monitor_cond on Port_Binding.
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Clauses ["datapath","==",["uuid",D]] per session's condition.
        #[arg(long, default_value_t = 300)]
        clauses: usize,
        /// Write transactions of the writer, one port each.
        #[arg(long, default_value_t = 1000)]
        writes: usize,
        /// Run the writer this long instead of --writes transactions.
        #[arg(long)]
        seconds: Option<f64>,
        /// monitor_cond_change calls in the storm, spread over the sessions.
        #[arg(long, default_value_t = 1000)]
        changes: usize,
        /// Sessions setting up (connect + monitor_cond) at the same time.
        #[arg(long, default_value_t = 64)]
        setup_parallelism: usize,
        /// Sessions changing their condition at the same time.
        #[arg(long, default_value_t = 16)]
        change_parallelism: usize,
        /// Datapaths one change drops, and others it adds.
        #[arg(long, default_value_t = 10)]
        churn: usize,
        /// Seed of the sessions' datapaths, the write order and the changes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
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
    let default_db = match cli.scenario {
        Scenario::Condfanout { .. } => "OVN_Southbound",
        _ => "OVN_Northbound",
    };
    let Some(first) = cli.remote.first().cloned() else {
        anyhow::bail!("no --remote given");
    };
    let target = Target {
        remote: first,
        remotes: cli.remote,
        db: cli.db.unwrap_or_else(|| default_db.to_string()),
        pids: cli.server_pids,
    };
    let report = match cli.scenario {
        Scenario::Txn { clients, seconds } => txn::run(&target, clients, seconds).await?,
        Scenario::Fanout { monitors, txns } => fanout::run(&target, monitors, txns).await?,
        Scenario::Condfanout {
            datapaths,
            ports,
            sessions,
            clauses,
            writes,
            seconds,
            changes,
            setup_parallelism,
            change_parallelism,
            churn,
            seed,
        } => {
            let params = condfanout::Params {
                datapaths,
                ports,
                sessions,
                clauses,
                writes,
                seconds,
                changes,
                setup_parallelism,
                change_parallelism,
                churn,
                seed,
            };
            condfanout::run(&target, params).await?
        }
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
