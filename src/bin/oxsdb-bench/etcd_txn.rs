//! `etcd-txn`: the ceiling of the etcd store: C clients each looping over
//! etcd Txns shaped like an oxsdb commit of a small transaction (compare a
//! key's mod_revision, put a row-sized value), one in flight per client.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use serde_json::Value;

/// A row-sized value (an OVN port's JSON is a few hundred bytes).
const VALUE_BYTES: usize = 300;

/// Runs one client until `deadline`.
async fn client(
    mut etcd: Client,
    prefix: String,
    c: usize,
    deadline: Instant,
) -> Result<(Vec<Duration>, Vec<String>)> {
    let key = format!("{prefix}/c{c}");
    let value = vec![b'x'; VALUE_BYTES];
    let put = etcd.put(key.clone(), value.clone(), None).await?;
    let mut rev = put
        .header()
        .map(|h| h.revision())
        .context("put without header")?;
    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
    while Instant::now() < deadline {
        let txn = Txn::new()
            .when(vec![Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                rev,
            )])
            .and_then(vec![TxnOp::put(key.clone(), value.clone(), None)]);
        let t = Instant::now();
        let r = etcd.txn(txn).await;
        latencies.push(t.elapsed());
        match r {
            Ok(r) if r.succeeded() => match r.header() {
                Some(h) => rev = h.revision(),
                None => errors.push("txn reply without header".to_string()),
            },
            Ok(_) => {
                errors.push("compare failed: the key changed under its only writer".to_string())
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    Ok((latencies, errors))
}

/// Runs the scenario.
pub async fn run(endpoints: &[String], clients: usize, seconds: f64) -> Result<Value> {
    let etcd = Client::connect(endpoints, None)
        .await
        .with_context(|| format!("connecting to etcd at {endpoints:?}"))?;
    let prefix = format!("oxsdb-bench/{}", uuid::Uuid::new_v4().simple());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(client(etcd.clone(), prefix.clone(), c, deadline)))
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
    for t in tasks {
        let (l, e) = t.await??;
        latencies.extend(l);
        errors.extend(e);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut cleanup = etcd.clone();
    cleanup
        .delete(
            prefix.clone(),
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await?;
    let n = latencies.len().saturating_sub(errors.len());
    if n == 0 {
        bail!("no etcd Txn succeeded: {errors:?}");
    }
    let lat = crate::stats::Latencies::new(latencies);
    let report = crate::stats::closed_loop_report("etcd-txn", clients, elapsed, n, &lat, &errors);
    Ok(Value::Object(report))
}
