//! The cost of a durable commit on this machine: oxsdb on its file store
//! against Open vSwitch's `ovsdb-server`, both on a database file in the
//! same directory (same disk), the same transactions, in the same run.
//!
//! Each transaction inserts one `List` row of the todo schema
//! (`examples/todo.ovsschema`) with a unique name; "durable" ones end with
//! `{"op": "commit", "durable": true}`, which makes both servers fsync the
//! file before replying. Clients send their transactions one after the
//! other (each waits for its reply): 1 client, then 8 concurrent clients
//! (where oxsdb's group commit lets commits that wait together share one
//! fsync). Non-durable transactions are measured too, for the difference.
//! A plain `write` + `fdatasync` loop on a file in the same directory gives
//! the disk's own cost of one sync.
//!
//! Run: `cargo bench --bench durable_commit` (each measurement lasts
//! `OXSDB_BENCH_SECS` seconds, 3 by default). Prints a table.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::clients::ovsdb_tool;
use support::process::Oxsdb;
use support::reference::ReferenceServer;
use support::rpc::{txn_ok, Rpc};
use support::tools::*;

const WARMUP: Duration = Duration::from_millis(300);

struct Stats {
    txns: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.txns as f64 / self.elapsed.as_secs_f64()
    }
    fn mean_ms(&self) -> f64 {
        let sum: Duration = self.latencies.iter().sum();
        sum.as_secs_f64() * 1e3 / self.latencies.len().max(1) as f64
    }
    /// Percentile `p` (latencies are sorted when a `Stats` is made).
    fn pct_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1e3
    }
}

/// `clients` threads, each sending transactions one at a time for
/// `duration` (after a warm-up that is not counted).
fn measure(addr: &str, clients: usize, durable: bool, tag: &str, duration: Duration) -> Stats {
    let start_at = Arc::new(std::sync::Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let addr = addr.to_string();
            let tag = tag.to_string();
            let barrier = start_at.clone();
            std::thread::spawn(move || {
                let mut rpc = Rpc::connect_retry(&addr, Duration::from_secs(10));
                barrier.wait();
                let t0 = Instant::now();
                let (warm_end, end) = (t0 + WARMUP, t0 + WARMUP + duration);
                let mut lat = Vec::new();
                let mut seq = 0u64;
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let mut txn = json!(["todo", {"op": "insert", "table": "List",
                        "row": {"name": format!("{tag}-{c}-{seq}")}}]);
                    if durable {
                        txn.as_array_mut()
                            .unwrap()
                            .push(json!({"op": "commit", "durable": true}));
                    }
                    seq += 1;
                    let r = rpc
                        .transact(txn, Duration::from_secs(30))
                        .expect("transact");
                    assert!(txn_ok(&r), "transaction failed: {r}");
                    if now >= warm_end {
                        lat.push(now.elapsed());
                    }
                }
                lat
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in threads {
        latencies.extend(t.join().expect("client thread"));
    }
    latencies.sort();
    Stats {
        txns: latencies.len(),
        elapsed: duration,
        latencies,
    }
}

/// The disk's own cost: append 200 bytes and fdatasync, in a loop.
fn raw_fdatasync(dir: &Path, duration: Duration) -> Stats {
    let mut f = std::fs::File::create(dir.join("fsync-probe")).expect("probe file");
    let buf = [b'x'; 200];
    let mut latencies = Vec::new();
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let t = Instant::now();
        f.write_all(&buf).unwrap();
        f.sync_data().unwrap();
        latencies.push(t.elapsed());
    }
    latencies.sort();
    Stats {
        txns: latencies.len(),
        elapsed: duration,
        latencies,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too:
    // then do one tiny round only, to check that it works.
    let quick = !std::env::args().any(|a| a == "--bench");
    let secs: f64 = std::env::var("OXSDB_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 0.2 } else { 3.0 });
    let duration = Duration::from_secs_f64(secs);
    let schema = todo_schema();
    let dir = tempfile::Builder::new()
        .prefix("oxsdb-durable-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tempdir");

    let mut ox = Oxsdb::start(
        &[
            "--store=file".to_string(),
            format!("--data-dir={}", dir.path().join("ox").display()),
            schema.display().to_string(),
        ],
        dir.path(),
        None,
    );
    let ref_db = dir.path().join("ref.db");
    ovsdb_tool(&[
        "create".to_string(),
        ref_db.display().to_string(),
        schema.display().to_string(),
    ]);
    let mut reference = ReferenceServer::on_files(std::slice::from_ref(&ref_db), dir.path());

    println!(
        "durable commit cost: {secs} s per measurement, files in {} ({} cores)",
        dir.path().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let raw = raw_fdatasync(dir.path(), duration.min(Duration::from_secs(2)));
    println!(
        "disk: write(200 B) + fdatasync: {:.0}/s, mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms\n",
        raw.rate(),
        raw.mean_ms(),
        raw.pct_ms(0.5),
        raw.pct_ms(0.99)
    );
    println!(
        "{:<14} {:>7} {:>8} {:>8} {:>9} {:>10} {:>9} {:>9}",
        "server", "clients", "durable", "txns", "txns/s", "mean ms", "p50 ms", "p99 ms"
    );
    for clients in [1usize, 8] {
        for durable in [true, false] {
            for (name, addr) in [
                ("oxsdb (file)", ox.addr()),
                ("ovsdb-server", reference.addr()),
            ] {
                let tag = format!(
                    "{}-{clients}-{durable}",
                    if name.starts_with("ox") { "ox" } else { "ref" }
                );
                let r = measure(&addr, clients, durable, &tag, duration);
                println!(
                    "{:<14} {:>7} {:>8} {:>8} {:>9.0} {:>10.3} {:>9.3} {:>9.3}",
                    name,
                    clients,
                    if durable { "yes" } else { "no" },
                    r.txns,
                    r.rate(),
                    r.mean_ms(),
                    r.pct_ms(0.5),
                    r.pct_ms(0.99)
                );
            }
        }
    }
    ox.stop();
    reference.stop();
}
