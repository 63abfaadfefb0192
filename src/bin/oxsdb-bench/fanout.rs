//! `fanout`: M monitor connections (`monitor_cond` on `Logical_Switch`, as
//! the IDLs ask) and one writer doing K sequential inserts. Every monitor
//! must receive every insert exactly once: missed and duplicated
//! notifications are counted, and latency runs from the writer's send to
//! each monitor's receipt.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::connection::Connection;
use crate::nb;
use crate::stats::{CpuMeter, Latencies};
use crate::Target;

/// How many monitors connect at once while setting up.
const CONNECT_PARALLELISM: usize = 64;
/// The wait for missing notifications after the writer's last reply.
const SETTLE: Duration = Duration::from_secs(10);

/// What one monitor received: (insert number, arrival).
struct Receipts {
    got: Vec<(usize, Instant)>,
    unexpected: usize,
}

/// The insert numbers of one `update2`/`update` notification.
fn inserted_numbers(msg: &Value, out: &mut Vec<usize>) -> usize {
    let mut unexpected = 0;
    let updates = &msg["params"][1]["Logical_Switch"];
    let Some(rows) = updates.as_object() else {
        return 1;
    };
    for change in rows.values() {
        // update2: {"insert": row}; update: {"new": row} without "old".
        let row = change.get("insert").or_else(|| match change.get("old") {
            None => change.get("new"),
            Some(_) => None,
        });
        match row
            .and_then(|r| r["name"].as_str())
            .and_then(|n| n.strip_prefix("fan-"))
            .and_then(|k| k.parse().ok())
        {
            Some(k) => out.push(k),
            None => unexpected += 1,
        }
    }
    unexpected
}

/// Opens one monitor and returns its connection once the initial reply came.
async fn open_monitor(target: Target) -> Result<Connection> {
    let conn = Connection::connect(&target.remote).await?;
    let initial = conn
        .request(
            "monitor_cond",
            json!([target.db, "fanout", {"Logical_Switch": [{"columns": ["name"]}]}]),
        )
        .await?;
    if initial.as_object().is_some_and(|o| !o.is_empty()) {
        bail!("the table was not empty when the monitors started: {initial}");
    }
    Ok(conn)
}

/// Reads one monitor's notifications until told to stop.
async fn consume(
    mut conn: Connection,
    received: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) -> Receipts {
    let mut r = Receipts {
        got: Vec::new(),
        unexpected: 0,
    };
    let mut ks = Vec::new();
    loop {
        tokio::select! {
            msg = conn.notifications.recv() => {
                let Some((at, msg)) = msg else { break };
                ks.clear();
                r.unexpected += inserted_numbers(&msg, &mut ks);
                received.fetch_add(ks.len(), Ordering::Relaxed);
                r.got.extend(ks.iter().map(|&k| (k, at)));
            }
            _ = stop.changed() => break,
        }
    }
    r
}

/// Runs the scenario.
pub async fn run(target: &Target, monitors: usize, txns: usize) -> Result<Value> {
    let writer = Connection::connect(&target.remote).await?;
    writer
        .transact(&target.db, nb::delete_all_switches())
        .await?;

    let setup = Instant::now();
    let conns: Vec<Result<Connection>> =
        stream::iter((0..monitors).map(|_| open_monitor(target.clone())))
            .buffer_unordered(CONNECT_PARALLELISM)
            .collect()
            .await;
    let conns: Vec<Connection> = conns.into_iter().collect::<Result<_>>()?;
    let setup_s = setup.elapsed().as_secs_f64();
    let received = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let consumers: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(consume(c, received.clone(), stop_rx.clone())))
        .collect();

    let cpu = CpuMeter::start(&target.pids)?;
    let mut sent = Vec::with_capacity(txns);
    let mut errors = Vec::new();
    let first = Instant::now();
    for k in 0..txns {
        sent.push(Instant::now());
        let ops = vec![
            json!({"op": "insert", "table": "Logical_Switch", "row": {"name": format!("fan-{k}")}}),
        ];
        if let Err(e) = writer.transact(&target.db, ops).await {
            errors.push(format!("insert {k}: {e:#}"));
        }
    }
    let expected = monitors * (txns - errors.len());
    // Waits while notifications keep arriving, up to SETTLE without progress.
    let mut last = (received.load(Ordering::Relaxed), Instant::now());
    while received.load(Ordering::Relaxed) < expected {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = received.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > SETTLE {
            break;
        }
    }
    let cpu_s = cpu.seconds()?;
    let _ = stop_tx.send(true);
    let mut latencies = Vec::with_capacity(expected);
    let (mut missed, mut duplicated, mut unexpected) = (0usize, 0usize, 0usize);
    let mut last_receipt = first;
    for c in consumers {
        let r = c.await?;
        unexpected += r.unexpected;
        let mut seen = HashSet::with_capacity(r.got.len());
        for (k, at) in r.got {
            if k >= sent.len() || !seen.insert(k) {
                duplicated += 1;
                continue;
            }
            latencies.push(at.saturating_duration_since(sent[k]));
            last_receipt = last_receipt.max(at);
        }
        missed += (txns - errors.len()).saturating_sub(seen.len());
    }
    let delivered = latencies.len();
    let span = (last_receipt - first).as_secs_f64();
    let lat = Latencies::new(latencies);
    Ok(json!({
        "scenario": "fanout",
        "monitors": monitors,
        "txns": txns,
        "monitor_setup_s": setup_s,
        "delivered": delivered,
        "rate": if span > 0.0 { delivered as f64 / span } else { 0.0 },
        "p50_ms": lat.ms(0.5),
        "p99_ms": lat.ms(0.99),
        "max_ms": lat.max_ms(),
        "missed": missed,
        "duplicated": duplicated,
        "unexpected": unexpected,
        "errors": errors.len(),
        "error_samples": errors.iter().take(5).collect::<Vec<_>>(),
        "server_cpu_s": cpu_s,
        "cpu_us_per_op": cpu_s.map(|c| if delivered > 0 { c * 1e6 / delivered as f64 } else { 0.0 }),
    }))
}
