//! What is read at scrape time rather than counted as it happens: sessions,
//! monitors, rows and store liveness per database, resident memory.

use crate::actors::database::Sample;
use crate::actors::registry::Registry;
use crate::metrics::label;

/// Sets the scrape-time gauges of `registry`'s metrics from its databases
/// and the process; a database that does not answer keeps its last values.
pub async fn sample(registry: &Registry) {
    let m = &registry.metrics;
    m.sessions.set(registry.session_count() as i64);
    let mut monitors = 0;
    let dbs = registry.all();
    // A database no longer served drops its series.
    m.rows.clear();
    m.store_connected.clear();
    m.queued.clear();
    for (name, entry) in dbs {
        let Ok(s) = entry.addr.send(Sample).await else {
            continue;
        };
        monitors += s.monitors as i64;
        let l = label("db", &name);
        m.rows.get_or_create(&l).set(s.rows as i64);
        m.store_connected
            .get_or_create(&l)
            .set(i64::from(s.connected));
        m.queued.get_or_create(&l).set(s.queued as i64);
    }
    m.monitors.set(monitors);
    if let Some(bytes) = resident_bytes() {
        m.resident_memory.set(bytes);
    }
}

/// The process's resident set in bytes, from `/proc/self/statm` (Linux).
fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (page > 0).then(|| pages.saturating_mul(page as i64))
}

#[cfg(test)]
mod tests {
    #[test]
    fn resident_memory_is_read() {
        assert!(super::resident_bytes().is_some_and(|b| b > 0));
    }
}
