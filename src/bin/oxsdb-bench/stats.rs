//! Latency percentiles and the server's CPU time (from /proc), so that a
//! rate measured on a machine shared with the load tool can be read as cost
//! per operation too.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};

/// Sorted latencies of one run.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Sorts the samples.
    pub fn new(mut samples: Vec<Duration>) -> Latencies {
        samples.sort_unstable();
        Latencies(samples)
    }

    /// The `q` quantile (0..=1) in milliseconds; 0 with no samples.
    pub fn ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let i = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[i.min(self.0.len() - 1)].as_secs_f64() * 1e3
    }

    /// The largest sample in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.ms(1.0)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// CPU time (user + system) used so far by the given processes.
pub fn cpu_time(pids: &[u32]) -> Result<Duration> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    let mut total = 0.0;
    for pid in pids {
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        // The command name may hold spaces and parentheses: fields count
        // from the last ')'. utime and stime are fields 14 and 15.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow!("{path}: unexpected format"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| -> Result<f64> {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .ok_or_else(|| anyhow!("{path}: no field {}", i + 3))
        };
        total += field(11)? + field(12)?;
    }
    Ok(Duration::from_secs_f64(total / ticks))
}

/// Measures the CPU time the server processes spend between two points.
pub struct CpuMeter {
    pids: Vec<u32>,
    start: Duration,
}

impl CpuMeter {
    /// Starts measuring (nothing is measured without pids).
    pub fn start(pids: &[u32]) -> Result<CpuMeter> {
        Ok(CpuMeter {
            pids: pids.to_vec(),
            start: cpu_time(pids)?,
        })
    }

    /// CPU seconds spent since the start by each pid, in the order given
    /// (empty without pids). Measured after the start's total, so each share
    /// is its own process's, not a split of the total.
    pub fn seconds_by_pid(&self, starts: &[Duration]) -> Result<Vec<f64>> {
        self.pids
            .iter()
            .zip(starts)
            .map(|(p, s)| Ok((cpu_time(&[*p])? - *s).as_secs_f64()))
            .collect()
    }

    /// Each pid's CPU time now, to pass to [`CpuMeter::seconds_by_pid`] later.
    pub fn starts_by_pid(&self) -> Result<Vec<Duration>> {
        self.pids.iter().map(|p| cpu_time(&[*p])).collect()
    }

    /// CPU seconds spent since the start, if any pid was given.
    pub fn seconds(&self) -> Result<Option<f64>> {
        if self.pids.is_empty() {
            return Ok(None);
        }
        Ok(Some((cpu_time(&self.pids)? - self.start).as_secs_f64()))
    }
}

/// The figures of a closed-loop run (clients each waiting for their reply):
/// what `txn` and `etcd-txn` both report.
pub fn closed_loop_report(
    scenario: &str,
    clients: usize,
    seconds: f64,
    committed: usize,
    latencies: &Latencies,
    errors: &[String],
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::json;
    let mut m = serde_json::Map::new();
    m.insert("scenario".into(), json!(scenario));
    m.insert("clients".into(), json!(clients));
    m.insert("seconds".into(), json!(seconds));
    m.insert("committed".into(), json!(committed));
    m.insert("rate".into(), json!(committed as f64 / seconds));
    m.insert("p50_ms".into(), json!(latencies.ms(0.5)));
    m.insert("p99_ms".into(), json!(latencies.ms(0.99)));
    m.insert("max_ms".into(), json!(latencies.max_ms()));
    m.insert("errors".into(), json!(errors.len()));
    let samples: Vec<&String> = errors.iter().take(5).collect();
    m.insert("error_samples".into(), json!(samples));
    m
}
