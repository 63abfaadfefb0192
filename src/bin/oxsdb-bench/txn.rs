//! `txn`: C clients, each looping over the Northbound mix (insert a switch
//! with a named-uuid port, update the port, mutate sets and maps, delete the
//! switch so that the port is garbage collected) for D seconds, one
//! transaction in flight per client, as ovn-nbctl and CMS workers do.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::connection::{count, inserted_uuid, Connection};
use crate::nb;
use crate::stats::{closed_loop_report, CpuMeter, Latencies};
use crate::Target;

/// What one client did.
struct ClientRun {
    latencies: Vec<Duration>,
    errors: Vec<String>,
}

/// Runs one client until `deadline`, finishing its current switch so that
/// the database ends empty.
async fn client(target: Target, c: usize, deadline: Instant) -> Result<ClientRun> {
    let conn = Connection::connect(&target.remote).await?;
    let mut run = ClientRun {
        latencies: Vec::new(),
        errors: Vec::new(),
    };
    let mut i: u64 = 0;
    while Instant::now() < deadline {
        i += 1;
        let name = format!("bench-c{c}-{i}");
        let t = Instant::now();
        let r = conn
            .transact(
                &target.db,
                nb::insert_switch_with_port(&name, &format!("{name}-p")),
            )
            .await;
        run.latencies.push(t.elapsed());
        let (port, switch) =
            match r.and_then(|r| Ok((inserted_uuid(&r[0])?, inserted_uuid(&r[1])?))) {
                Ok(u) => u,
                Err(e) => {
                    run.errors.push(format!("insert: {e:#}"));
                    continue;
                }
            };
        let steps: [(&str, Vec<Value>, u64); 3] = [
            ("update", nb::update_port(&port, i), 1),
            ("mutate", nb::mutate_port_and_switch(&port, &switch), 1),
            ("delete", nb::delete_switch(&switch), 1),
        ];
        for (what, ops, expect) in steps {
            let t = Instant::now();
            let r = conn.transact(&target.db, ops).await;
            run.latencies.push(t.elapsed());
            match r.and_then(|r| count(&r[0])) {
                Ok(n) if n == expect => {}
                Ok(n) => run
                    .errors
                    .push(format!("{what}: count {n}, expected {expect}")),
                Err(e) => run.errors.push(format!("{what}: {e:#}")),
            }
        }
    }
    Ok(run)
}

/// Runs the scenario.
pub async fn run(target: &Target, clients: usize, seconds: f64) -> Result<Value> {
    let setup = Connection::connect(&target.remote).await?;
    setup
        .transact(&target.db, nb::delete_all_switches())
        .await?;
    let cpu = CpuMeter::start(&target.pids)?;
    let cpu_starts = cpu.starts_by_pid()?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(client(target.clone(), c, deadline)))
        .collect();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let run = t.await??;
        latencies.extend(run.latencies);
        errors.extend(run.errors);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_s = cpu.seconds()?;
    let cpu_by_pid = cpu.seconds_by_pid(&cpu_starts)?;
    // Every client deleted what it inserted: a server that lost a delete or
    // a garbage collection leaves rows behind.
    let left = setup
        .transact(
            &target.db,
            vec![
                json!({"op": "select", "table": "Logical_Switch", "where": [], "columns": ["name"]}),
                json!({"op": "select", "table": "Logical_Switch_Port", "where": [], "columns": ["name"]}),
            ],
        )
        .await?;
    let left_rows: usize = left
        .iter()
        .map(|r| r["rows"].as_array().map_or(0, Vec::len))
        .sum();
    if left_rows > 0 {
        errors.push(format!(
            "{left_rows} rows left after every client deleted its switches"
        ));
    }
    let n = latencies.len() - errors.len().min(latencies.len());
    let lat = Latencies::new(latencies);
    if n == 0 {
        bail!("no transaction committed: {errors:?}");
    }
    let mut report = closed_loop_report("txn", clients, elapsed, n, &lat, &errors);
    report.insert("server_cpu_s".into(), json!(cpu_s));
    report.insert(
        "cpu_us_per_op".into(),
        json!(cpu_s.map(|c| c * 1e6 / n as f64)),
    );
    // Per process, in --server-pid order (oxsdb first, then its etcd), so
    // that a store's share and oxsdb's own can be told apart.
    report.insert(
        "cpu_us_per_op_by_pid".into(),
        json!(cpu_by_pid
            .iter()
            .map(|c| c * 1e6 / n as f64)
            .collect::<Vec<f64>>()),
    );
    Ok(Value::Object(report))
}
