//! `bulk`: ovn-northd-like large transactions: R ports on R/100 switches
//! inserted in one transaction, then deleted in one, R times per run.

use std::time::Instant;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::connection::{count, Connection};
use crate::nb;
use crate::stats::{CpuMeter, Latencies};
use crate::Target;

/// Ports per switch in the bulk transaction.
const PORTS_PER_SWITCH: usize = 100;

/// Runs the scenario.
pub async fn run(target: &Target, rows: usize, repeat: usize) -> Result<Value> {
    if rows % PORTS_PER_SWITCH != 0 || rows == 0 {
        bail!("--rows must be a positive multiple of {PORTS_PER_SWITCH}");
    }
    let switches = rows / PORTS_PER_SWITCH;
    let conn = Connection::connect(&target.remote).await?;
    conn.transact(&target.db, nb::delete_all_switches()).await?;
    let cpu = CpuMeter::start(&target.pids)?;
    let (mut inserts, mut deletes) = (Vec::new(), Vec::new());
    let mut errors = Vec::new();
    for _ in 0..repeat {
        // Timed from the first byte sent to the reply read: encoding 10,000
        // rows takes the tool longer than some servers take to commit them.
        let ops = nb::insert_switches("bulk", 0, switches, PORTS_PER_SWITCH);
        let insert = conn.prepare_transact(&target.db, ops);
        let t = Instant::now();
        let r = conn.transact_prepared(insert).await;
        inserts.push(t.elapsed());
        match r {
            Ok(r) if r.len() == rows + switches => {}
            Ok(r) => errors.push(format!(
                "insert: {} results for {} rows",
                r.len(),
                rows + switches
            )),
            Err(e) => errors.push(format!("insert: {e:#}")),
        }
        let delete = conn.prepare_transact(&target.db, nb::delete_all_switches());
        let t = Instant::now();
        let r = conn.transact_prepared(delete).await;
        deletes.push(t.elapsed());
        match r.and_then(|r| count(&r[0])) {
            Ok(n) if n as usize == switches => {}
            Ok(n) => errors.push(format!("delete: count {n}, expected {switches}")),
            Err(e) => errors.push(format!("delete: {e:#}")),
        }
    }
    let cpu_s = cpu.seconds()?;
    let ins = Latencies::new(inserts);
    let del = Latencies::new(deletes);
    let median = ins.ms(0.5);
    Ok(json!({
        "scenario": "bulk",
        "rows": rows,
        "repeat": repeat,
        "median_ms": median,
        "max_ms": ins.max_ms(),
        "rows_per_s": if median > 0.0 { rows as f64 / (median / 1e3) } else { 0.0 },
        "delete_median_ms": del.ms(0.5),
        "errors": errors.len(),
        "error_samples": errors.iter().take(5).collect::<Vec<_>>(),
        "server_cpu_s": cpu_s,
        "cpu_ms_per_op": cpu_s.map(|c| c * 1e3 / (2 * repeat.max(1)) as f64),
    }))
}
