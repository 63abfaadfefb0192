//! `snapshot`: N ports on S switches preloaded, then the time a fresh client
//! takes from connecting to holding the whole of both tables (the initial
//! reply of `monitor_cond`, every column), as an IDL or ovn-northd does at
//! start. The reply must hold every row.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::connection::Connection;
use crate::nb;
use crate::stats::{CpuMeter, Latencies};
use crate::Target;

/// Rows per preload transaction.
const PRELOAD_ROWS_PER_TXN: usize = 2_000;

/// Preloads `ports` ports on `switches` switches; returns the time it took.
pub async fn preload(
    conn: &Connection,
    db: &str,
    ports: usize,
    switches: usize,
) -> Result<Duration> {
    if switches == 0 || ports % switches != 0 {
        bail!("--ports ({ports}) must be a multiple of --switches ({switches})");
    }
    let per_switch = ports / switches;
    let per_txn = (PRELOAD_ROWS_PER_TXN / (per_switch + 1)).max(1);
    let t = Instant::now();
    let mut s = 0;
    while s < switches {
        let n = per_txn.min(switches - s);
        conn.transact(db, nb::insert_switches("snap", s, n, per_switch))
            .await?;
        s += n;
    }
    Ok(t.elapsed())
}

/// Runs the scenario.
pub async fn run(target: &Target, ports: usize, switches: usize, fetches: usize) -> Result<Value> {
    let setup = Connection::connect(&target.remote).await?;
    setup
        .transact(&target.db, nb::delete_all_switches())
        .await?;
    let preload_time = preload(&setup, &target.db, ports, switches).await?;
    let cpu = CpuMeter::start(&target.pids)?;
    let mut times = Vec::with_capacity(fetches);
    let mut errors = Vec::new();
    let mut rows_seen = 0;
    for _ in 0..fetches {
        let t = Instant::now();
        let conn = Connection::connect(&target.remote).await?;
        let reply = conn
            .request(
                "monitor_cond",
                json!([target.db, "snapshot", {"Logical_Switch": [{}], "Logical_Switch_Port": [{}]}]),
            )
            .await?;
        times.push(t.elapsed());
        let n = |table: &str| reply[table].as_object().map_or(0, |o| o.len());
        let (got_switches, got_ports) = (n("Logical_Switch"), n("Logical_Switch_Port"));
        rows_seen = got_switches + got_ports;
        if got_switches != switches || got_ports != ports {
            errors.push(format!(
                "initial reply held {got_switches} switches and {got_ports} ports, expected {switches} and {ports}"
            ));
        }
    }
    let cpu_s = cpu.seconds()?;
    let lat = Latencies::new(times);
    Ok(json!({
        "scenario": "snapshot",
        "ports": ports,
        "switches": switches,
        "rows": rows_seen,
        "preload_s": preload_time.as_secs_f64(),
        "fetches": lat.len(),
        "median_ms": lat.ms(0.5),
        "p99_ms": lat.ms(0.99),
        "max_ms": lat.max_ms(),
        "errors": errors.len(),
        "error_samples": errors.iter().take(5).collect::<Vec<_>>(),
        "server_cpu_s": cpu_s,
        "cpu_ms_per_op": cpu_s.map(|c| c * 1e3 / fetches.max(1) as f64),
    }))
}
