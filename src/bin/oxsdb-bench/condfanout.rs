//! `condfanout`: conditional monitors as ovn-controllers hold them on a
//! Southbound database (issue 16). D `Datapath_Binding` rows with P
//! `Port_Binding` rows each; M sessions, each a `monitor_cond` on
//! `Port_Binding` whose condition lists K `["datapath","==",["uuid",U]]`
//! clauses over its own seeded pseudo-random datapaths; one writer updating
//! one port per transaction; then a storm of `monitor_cond_change` calls,
//! each dropping `churn` of a session's datapaths and adding `churn` others,
//! the whole clause list sent as ovn-controller does.
//!
//! Every phase is checked row by row against the tool's own model of the
//! database (itself checked against a `select` at the end): initial replies
//! hold exactly the ports of the session's datapaths, every write reaches
//! exactly the sessions whose condition selects its port, a condition change
//! deletes exactly the ports of the dropped datapaths and inserts exactly
//! those of the added ones, and every session ends holding exactly the
//! ports its condition selects. Anything else is counted and makes the tool
//! exit 1.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::connection::Connection;
use crate::stats::{cpu_time, CpuMeter, Latencies};
use crate::Target;

/// Datapaths (with their ports) per populate transaction.
const DATAPATHS_PER_TXN: usize = 100;
/// The wait for missing notifications once nothing arrives any more.
const SETTLE: Duration = Duration::from_secs(10);
/// The quiet time after the storm in which a stray notification is caught.
const DRAIN: Duration = Duration::from_millis(500);
/// The columns requested, those ovn-controller reads most.
const COLUMNS: [&str; 8] = [
    "logical_port",
    "datapath",
    "tunnel_key",
    "type",
    "options",
    "chassis",
    "up",
    "external_ids",
];
/// The writer's counter key in `external_ids`.
const SEQ_KEY: &str = "oxsdb-bench-seq";

/// The scenario's parameters.
pub struct Params {
    /// Datapath_Binding rows.
    pub datapaths: usize,
    /// Port_Binding rows per datapath.
    pub ports: usize,
    /// Monitoring sessions.
    pub sessions: usize,
    /// Clauses (datapaths) per session's condition.
    pub clauses: usize,
    /// Write transactions (unless `seconds` is given).
    pub writes: usize,
    /// Run the writer this long instead of `writes` transactions.
    pub seconds: Option<f64>,
    /// monitor_cond_change calls in the storm.
    pub changes: usize,
    /// Sessions setting up (connect + monitor_cond) at the same time.
    pub setup_parallelism: usize,
    /// Sessions changing their condition at the same time.
    pub change_parallelism: usize,
    /// Datapaths dropped and added by one change.
    pub churn: usize,
    /// Seed of every pseudo-random choice.
    pub seed: u64,
}

/// splitmix64: deterministic per (seed, stream), so a run can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Moves `k` random elements of `v` to its front (partial Fisher-Yates).
    fn pick_front<T>(&mut self, v: &mut [T], k: usize) {
        for i in 0..k.min(v.len()) {
            let j = i + self.below(v.len() - i);
            v.swap(i, j);
        }
    }
}

/// What the tool knows of the database it populated.
struct Model {
    ports_per_dp: usize,
    dp_uuid: Vec<String>,
    port_uuid: Vec<String>,
    port_by_uuid: HashMap<String, usize>,
}

impl Model {
    fn dp_of(&self, port: usize) -> usize {
        port / self.ports_per_dp
    }

    fn ports_of(&self, dp: usize) -> std::ops::Range<usize> {
        dp * self.ports_per_dp..(dp + 1) * self.ports_per_dp
    }

    fn port_name(&self, port: usize) -> String {
        format!("lp-{}-{}", self.dp_of(port), port % self.ports_per_dp)
    }

    /// Whether a row as received (initial or insert) is the port's row.
    fn row_is(&self, port: usize, row: &Value) -> bool {
        row["datapath"] == json!(["uuid", self.dp_uuid[self.dp_of(port)]])
            && row["logical_port"] == json!(self.port_name(port))
            && row["tunnel_key"] == json!(port % self.ports_per_dp + 1)
    }

    fn condition(&self, dps: &[usize]) -> Value {
        Value::Array(
            dps.iter()
                .map(|&d| json!(["datapath", "==", ["uuid", self.dp_uuid[d]]]))
                .collect(),
        )
    }
}

/// One monitoring session.
struct Session {
    conn: Connection,
    /// Which --remote it is connected to.
    server: usize,
    rx: mpsc::UnboundedReceiver<(Instant, Value)>,
    /// The datapaths its current condition lists.
    dps: Vec<usize>,
    /// The ports it holds, from the initial reply and the updates since.
    rows: HashSet<usize>,
    rng: Rng,
}

/// Exactness counters and samples of what went wrong.
#[derive(Default)]
struct Faults {
    /// Rows missing from an initial reply.
    initial_missed: usize,
    /// Rows in an initial reply that the condition does not select.
    initial_unexpected: usize,
    /// Rows whose contents are not the port's.
    wrong_rows: usize,
    /// Writes a session should have received and did not.
    write_missed: usize,
    write_duplicated: usize,
    write_unexpected: usize,
    /// Deletes/inserts a condition change should have delivered and did not.
    change_missed: usize,
    change_duplicated: usize,
    change_unexpected: usize,
    /// Notifications after the storm (none is due).
    late_unexpected: usize,
    /// Sessions whose final rows differ from what their condition selects.
    final_mismatched_sessions: usize,
    /// Sessions that could not be set up (refused, closed, an error reply).
    setup_failed: usize,
    /// Error replies, lost connections, and the model disagreeing with the
    /// server's data.
    errors: usize,
    samples: Vec<String>,
}

impl Faults {
    fn note(&mut self, why: String) {
        if self.samples.len() < 10 {
            self.samples.push(why);
        }
    }

    fn error(&mut self, why: String) {
        self.errors += 1;
        self.note(why);
    }
}

/// The `Port_Binding` changes of one notification: (uuid, change) pairs; a
/// notification of anything else is `None`.
fn port_changes(msg: &Value) -> Option<&serde_json::Map<String, Value>> {
    let method = msg["method"].as_str()?;
    if method != "update2" {
        return None;
    }
    let tables = msg["params"][1].as_object()?;
    if tables.len() != 1 {
        return None;
    }
    tables.get("Port_Binding")?.as_object()
}

/// The writer's counter in an update2 `modify` of `external_ids` (the diff
/// holds the new value of a changed key).
fn modified_seq(change: &Value) -> Option<usize> {
    let pairs = change
        .get("modify")?
        .get("external_ids")?
        .get(1)?
        .as_array()?;
    pairs
        .iter()
        .find(|p| p[0] == SEQ_KEY)
        .and_then(|p| p[1].as_str())
        .and_then(|s| s.parse().ok())
}

/// Deletes the tables' rows, then inserts D datapaths with P ports each.
async fn populate(conn: &Connection, db: &str, d: usize, p: usize) -> Result<Model> {
    conn.transact(
        db,
        vec![
            json!({"op": "delete", "table": "Port_Binding", "where": []}),
            json!({"op": "delete", "table": "Datapath_Binding", "where": []}),
        ],
    )
    .await
    .context("emptying Port_Binding and Datapath_Binding")?;
    let mut model = Model {
        ports_per_dp: p,
        dp_uuid: Vec::with_capacity(d),
        port_uuid: Vec::with_capacity(d * p),
        port_by_uuid: HashMap::with_capacity(d * p),
    };
    for first in (0..d).step_by(DATAPATHS_PER_TXN) {
        let mut ops = Vec::new();
        for dp in first..(first + DATAPATHS_PER_TXN).min(d) {
            ops.push(json!({"op": "insert", "table": "Datapath_Binding", "uuid-name": format!("d{dp}"),
                "row": {"tunnel_key": dp + 1,
                        "external_ids": ["map", [["name", format!("dp{dp}")], ["logical-switch", format!("ls{dp}")]]]}}));
            for port in 0..p {
                ops.push(json!({"op": "insert", "table": "Port_Binding",
                    "row": {"logical_port": format!("lp-{dp}-{port}"), "tunnel_key": port + 1,
                            "datapath": ["named-uuid", format!("d{dp}")]}}));
            }
        }
        let results = conn
            .transact(db, ops)
            .await
            .with_context(|| format!("populating datapaths {first}.."))?;
        let mut it = results.iter();
        for _ in first..(first + DATAPATHS_PER_TXN).min(d) {
            let dp = crate::connection::inserted_uuid(it.next().unwrap_or(&Value::Null))?;
            model.dp_uuid.push(dp);
            for _ in 0..p {
                let port = crate::connection::inserted_uuid(it.next().unwrap_or(&Value::Null))?;
                model
                    .port_by_uuid
                    .insert(port.clone(), model.port_uuid.len());
                model.port_uuid.push(port);
            }
        }
    }
    Ok(model)
}

/// Connects session `s`, sends its `monitor_cond` and checks the initial
/// reply; returns the session and the time the reply took.
async fn open_session(
    target: Target,
    model: Arc<Model>,
    params: &Params,
    s: usize,
) -> Result<(Session, Duration, Faults)> {
    let mut rng = Rng::new(params.seed, s as u64);
    let mut all: Vec<usize> = (0..params.datapaths).collect();
    rng.pick_front(&mut all, params.clauses);
    all.truncate(params.clauses);
    let dps = all;
    let server = s % target.remotes.len().max(1);
    let remote = target.remotes.get(server).unwrap_or(&target.remote);
    let mut conn = Connection::connect(remote).await?;
    let rx = std::mem::replace(&mut conn.notifications, mpsc::unbounded_channel().1);
    let start = Instant::now();
    let initial = conn
        .request(
            "monitor_cond",
            json!([target.db, "condfanout",
                   {"Port_Binding": [{"columns": COLUMNS, "where": model.condition(&dps)}]}]),
        )
        .await
        .with_context(|| format!("session {s}: monitor_cond"))?;
    let took = start.elapsed();
    let mut faults = Faults::default();
    let mut expected: HashSet<usize> = dps.iter().flat_map(|&d| model.ports_of(d)).collect();
    let mut rows = HashSet::with_capacity(expected.len());
    let empty = serde_json::Map::new();
    let got = match initial.as_object() {
        Some(o) if o.keys().all(|t| t == "Port_Binding") => {
            o.get("Port_Binding").and_then(Value::as_object)
        }
        _ => None,
    };
    let got = got.unwrap_or_else(|| {
        if initial.as_object().is_some_and(|o| !o.is_empty()) {
            faults.initial_unexpected += 1;
        }
        &empty
    });
    for (uuid, change) in got {
        let port = model.port_by_uuid.get(uuid).copied();
        match (port, change.get("initial")) {
            (Some(port), Some(row)) if expected.remove(&port) => {
                if !model.row_is(port, row) {
                    faults.wrong_rows += 1;
                    faults.note(format!("session {s}: initial row {uuid} is {row}"));
                }
                rows.insert(port);
            }
            _ => {
                faults.initial_unexpected += 1;
                faults.note(format!(
                    "session {s}: unexpected initial row {uuid}: {change}"
                ));
            }
        }
    }
    if !expected.is_empty() {
        faults.initial_missed += expected.len();
        faults.note(format!(
            "session {s}: initial reply without {} of its ports",
            expected.len()
        ));
    }
    Ok((
        Session {
            conn,
            server,
            rx,
            dps,
            rows,
            rng,
        },
        took,
        faults,
    ))
}

/// Notifications one session received during the writes: (write number,
/// port, arrival), and how many could not be read as a write.
struct WriteReceipts {
    got: Vec<(usize, usize, Instant)>,
    unreadable: usize,
    samples: Vec<String>,
}

/// Reads one session's notifications during the writes, until told to stop.
async fn consume_writes(
    mut session: Session,
    model: Arc<Model>,
    received: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) -> (Session, WriteReceipts) {
    let mut r = WriteReceipts {
        got: Vec::new(),
        unreadable: 0,
        samples: Vec::new(),
    };
    loop {
        tokio::select! {
            msg = session.rx.recv() => {
                let Some((at, msg)) = msg else { break };
                let Some(changes) = port_changes(&msg) else {
                    r.unreadable += 1;
                    if r.samples.len() < 2 {
                        r.samples.push(format!("unexpected notification during the writes: {msg}"));
                    }
                    continue;
                };
                for (uuid, change) in changes {
                    match (model.port_by_uuid.get(uuid), modified_seq(change)) {
                        (Some(&port), Some(k)) => {
                            r.got.push((k, port, at));
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            r.unreadable += 1;
                            if r.samples.len() < 2 {
                                r.samples.push(format!("unexpected change during the writes: {uuid}: {change}"));
                            }
                        }
                    }
                }
            }
            _ = stop.changed() => break,
        }
    }
    (session, r)
}

/// What one condition change measured.
struct ChangeOutcome {
    latency: Option<Duration>,
    rows: usize,
    added: usize,
    removed: usize,
}

/// Applies one `monitor_cond_change` to a session: drops `churn` of its
/// datapaths, adds `churn` it does not list, sends the whole list and waits
/// for the reply and the deletes and inserts it must bring.
async fn change_condition(
    session: &mut Session,
    model: &Model,
    params: &Params,
    s: usize,
    faults: &mut Faults,
) -> ChangeOutcome {
    let d = params.datapaths;
    let drop = params.churn.min(session.dps.len());
    let mut listed = vec![false; d];
    for &dp in &session.dps {
        listed[dp] = true;
    }
    session.rng.pick_front(&mut session.dps, drop);
    let removed: Vec<usize> = session.dps.drain(..drop).collect();
    // The ones dropped now are not added back in the same change.
    let mut others: Vec<usize> = (0..d).filter(|&dp| !listed[dp]).collect();
    let add = params.churn.min(others.len());
    session.rng.pick_front(&mut others, add);
    let added: Vec<usize> = others[..add].to_vec();
    session.dps.extend_from_slice(&added);

    let mut want_del: HashSet<usize> = removed.iter().flat_map(|&dp| model.ports_of(dp)).collect();
    let mut want_ins: HashSet<usize> = added.iter().flat_map(|&dp| model.ports_of(dp)).collect();
    let (mut deleted, mut inserted) = (HashSet::new(), HashSet::new());
    let rows_due = want_del.len() + want_ins.len();
    let request = json!(["condfanout", "condfanout",
                         {"Port_Binding": [{"where": model.condition(&session.dps)}]}]);
    let start = Instant::now();
    let reply = session.conn.request("monitor_cond_change", request);
    tokio::pin!(reply);
    let mut replied: Option<Instant> = None;
    let mut last_row = start;
    let mut quiet_since = start;
    loop {
        if replied.is_some() && want_del.is_empty() && want_ins.is_empty() {
            break;
        }
        tokio::select! {
            r = &mut reply, if replied.is_none() => {
                replied = Some(Instant::now());
                quiet_since = Instant::now();
                if let Err(e) = r {
                    faults.error(format!("session {s}: {e:#}"));
                }
            }
            msg = session.rx.recv() => {
                let Some((at, msg)) = msg else {
                    faults.error(format!("session {s}: connection closed during a condition change"));
                    break;
                };
                quiet_since = Instant::now();
                let Some(changes) = port_changes(&msg) else {
                    faults.change_unexpected += 1;
                    faults.note(format!("session {s}: unexpected notification {msg}"));
                    continue;
                };
                for (uuid, change) in changes {
                    let port = model.port_by_uuid.get(uuid).copied();
                    let kind = ["insert", "delete"].into_iter().find(|k| change.get(*k).is_some());
                    match (port, kind) {
                        (Some(port), Some("insert")) => {
                            if want_ins.remove(&port) {
                                inserted.insert(port);
                                last_row = at;
                                if !model.row_is(port, &change["insert"]) {
                                    faults.wrong_rows += 1;
                                    faults.note(format!("session {s}: inserted {uuid} is {change}"));
                                }
                            } else if inserted.contains(&port) {
                                faults.change_duplicated += 1;
                            } else {
                                faults.change_unexpected += 1;
                                faults.note(format!("session {s}: insert of {uuid} ({}) not due", model.port_name(port)));
                            }
                            session.rows.insert(port);
                        }
                        (Some(port), Some("delete")) => {
                            if want_del.remove(&port) {
                                deleted.insert(port);
                                last_row = at;
                            } else if deleted.contains(&port) {
                                faults.change_duplicated += 1;
                            } else {
                                faults.change_unexpected += 1;
                                faults.note(format!("session {s}: delete of {uuid} ({}) not due", model.port_name(port)));
                            }
                            session.rows.remove(&port);
                        }
                        _ => {
                            faults.change_unexpected += 1;
                            faults.note(format!("session {s}: unexpected change {uuid}: {change}"));
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until((quiet_since + SETTLE).into()) => break,
        }
    }
    let complete = replied.is_some() && want_del.is_empty() && want_ins.is_empty();
    if !complete {
        faults.change_missed += want_del.len() + want_ins.len();
        faults.note(format!(
            "session {s}: condition change: {} deletes and {} inserts missing{}",
            want_del.len(),
            want_ins.len(),
            if replied.is_none() { ", no reply" } else { "" }
        ));
    }
    ChangeOutcome {
        latency: complete.then(|| replied.unwrap_or(start).max(last_row) - start),
        rows: rows_due,
        added: added.len(),
        removed: removed.len(),
    }
}

/// Peak RSS (VmHWM) of a process in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// This process's CPU seconds so far.
fn own_cpu() -> Result<f64> {
    Ok(cpu_time(&[std::process::id()])?.as_secs_f64())
}

fn per(total: Option<f64>, n: usize, scale: f64) -> Option<f64> {
    total.map(|t| if n > 0 { t * scale / n as f64 } else { 0.0 })
}

/// Waits until another server sharing the database shows the last port
/// populated through the first (populating commits in order, so it then
/// has them all): sessions set up there before would miss rows.
async fn caught_up(remote: &str, db: &str, model: &Model) -> Result<()> {
    let Some(last) = model.port_uuid.last() else {
        return Ok(());
    };
    let conn = Connection::connect(remote).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = conn
            .transact(
                db,
                vec![json!({"op": "select", "table": "Port_Binding",
                            "where": [["_uuid", "==", ["uuid", last]]], "columns": ["_uuid"]})],
            )
            .await
            .with_context(|| format!("reading {remote}"))?;
        if r[0]["rows"].as_array().is_some_and(|rows| !rows.is_empty()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{remote} did not show the populated ports within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Each server's own share during the writes, when every --remote has its
/// --server-pid (given first, in the same order): the notifications its
/// sessions received and its own CPU per notification (an etcd
/// member's CPU, given after, is in no server's share).
fn per_server(target: &Target, delivered: &[usize], cpu_by_pid: &[f64]) -> Value {
    if cpu_by_pid.len() < target.remotes.len() {
        return Value::Null;
    }
    let servers: Vec<Value> = target
        .remotes
        .iter()
        .zip(delivered)
        .zip(cpu_by_pid)
        .map(|((remote, &n), &cpu)| {
            json!({
                "remote": remote,
                "notifications": n,
                "cpu_s": cpu,
                "cpu_us_per_notification": per(Some(cpu), n, 1e6),
            })
        })
        .collect();
    Value::Array(servers)
}

/// Runs the scenario.
pub async fn run(target: &Target, params: Params) -> Result<Value> {
    let (d, p, m, k) = (
        params.datapaths,
        params.ports,
        params.sessions,
        params.clauses,
    );
    if d == 0 || p == 0 || k == 0 || k > d {
        bail!("need --datapaths ≥ 1, --ports ≥ 1 and 1 ≤ --clauses ≤ --datapaths");
    }
    if d > 16_777_215 || p > 32_767 {
        bail!("the Southbound schema allows 16,777,215 datapaths and 32,767 ports per datapath");
    }
    let params = Arc::new(params);
    let writer = Connection::connect(&target.remote).await?;
    let t = Instant::now();
    let model = Arc::new(populate(&writer, &target.db, d, p).await?);
    let populate_s = t.elapsed().as_secs_f64();
    for remote in target.remotes.iter().skip(1) {
        caught_up(remote, &target.db, &model).await?;
    }
    let mut faults = Faults::default();

    // (b) set-up.
    let cpu = CpuMeter::start(&target.pids)?;
    let tool0 = own_cpu()?;
    let t = Instant::now();
    let opened: Vec<Result<(Session, Duration, Faults)>> = stream::iter((0..m).map(|s| {
        let (target, model, params) = (target.clone(), model.clone(), params.clone());
        async move { open_session(target, model, &params, s).await }
    }))
    .buffered(params.setup_parallelism.max(1))
    .collect()
    .await;
    let setup_s = t.elapsed().as_secs_f64();
    let setup_cpu = cpu.seconds()?;
    let setup_tool = own_cpu()? - tool0;
    let mut sessions = Vec::with_capacity(m);
    let mut setup_lat = Vec::with_capacity(m);
    for (s, o) in opened.into_iter().enumerate() {
        // A session the server dropped is counted, and the run goes on with
        // the others: the figures still say what the server did.
        let (session, took, f) = match o {
            Ok(opened) => opened,
            Err(e) => {
                faults.setup_failed += 1;
                faults.note(format!("session {s}: {e:#}"));
                continue;
            }
        };
        faults.initial_missed += f.initial_missed;
        faults.initial_unexpected += f.initial_unexpected;
        faults.wrong_rows += f.wrong_rows;
        for s in f.samples {
            faults.note(s);
        }
        sessions.push(session);
        setup_lat.push(took);
    }
    let setup_lat = Latencies::new(setup_lat);

    // (c) writes: each port at most once per pass over a seeded permutation,
    // so that a server merging a backlog of updates into one notification
    // (ovsdb-server does) never merges two writes of the same row.
    let mut order: Vec<usize> = (0..d * p).collect();
    Rng::new(params.seed, u64::MAX).pick_front(&mut order, d * p);
    let mut watchers = vec![0usize; d];
    for s in &sessions {
        for &dp in &s.dps {
            watchers[dp] += 1;
        }
    }
    let received = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let consumers: Vec<_> = sessions
        .into_iter()
        .map(|s| {
            tokio::spawn(consume_writes(
                s,
                model.clone(),
                received.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let cpu = CpuMeter::start(&target.pids)?;
    let cpu_starts = cpu.starts_by_pid()?;
    let tool0 = own_cpu()?;
    let mut written: Vec<usize> = Vec::new();
    let mut sent: Vec<Instant> = Vec::new();
    let mut commit_lat = Vec::new();
    let mut failed_writes = HashSet::new();
    let first = Instant::now();
    let deadline = params.seconds.map(|s| first + Duration::from_secs_f64(s));
    let mut expected = 0usize;
    loop {
        let n = written.len();
        match deadline {
            Some(dl) if Instant::now() >= dl => break,
            None if n >= params.writes => break,
            _ => {}
        }
        let port = order[n % order.len()];
        let op = json!({"op": "update", "table": "Port_Binding",
            "where": [["_uuid", "==", ["uuid", model.port_uuid[port]]]],
            "row": {"external_ids": ["map", [[SEQ_KEY, n.to_string()]]]}});
        let at = Instant::now();
        written.push(port);
        sent.push(at);
        match writer.transact(&target.db, vec![op]).await {
            Ok(r) if crate::connection::count(&r[0]).ok() == Some(1) => {
                commit_lat.push(at.elapsed());
                expected += watchers[model.dp_of(port)];
            }
            Ok(r) => {
                failed_writes.insert(n);
                faults.error(format!("write {n}: {r:?}"));
            }
            Err(e) => {
                failed_writes.insert(n);
                faults.error(format!("write {n}: {e:#}"));
            }
        }
    }
    let write_span = first.elapsed().as_secs_f64();
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
    let writes_cpu = cpu.seconds()?;
    let writes_cpu_by_pid = cpu.seconds_by_pid(&cpu_starts)?;
    let writes_tool = own_cpu()? - tool0;
    let _ = stop_tx.send(true);
    let mut sessions = Vec::with_capacity(m);
    let mut notify_lat = Vec::with_capacity(expected);
    let mut delivered_by_server = vec![0usize; target.remotes.len().max(1)];
    let mut last_receipt = first;
    for c in consumers {
        let (session, r) = c.await?;
        faults.write_unexpected += r.unreadable;
        for s in r.samples {
            faults.note(s);
        }
        let mut listed = vec![false; d];
        for &dp in &session.dps {
            listed[dp] = true;
        }
        let mut seen = HashSet::with_capacity(r.got.len());
        for (n, port, at) in r.got {
            if n >= written.len() || written[n] != port || !listed[model.dp_of(port)] {
                faults.write_unexpected += 1;
                faults.note(format!(
                    "session {}: write {n} of {} not due",
                    sessions.len(),
                    model.port_name(port)
                ));
            } else if !seen.insert(n) {
                faults.write_duplicated += 1;
            } else {
                notify_lat.push(at.saturating_duration_since(sent[n]));
                last_receipt = last_receipt.max(at);
                if let Some(c) = delivered_by_server.get_mut(session.server) {
                    *c += 1;
                }
            }
        }
        let due = written
            .iter()
            .enumerate()
            .filter(|&(n, &port)| listed[model.dp_of(port)] && !failed_writes.contains(&n))
            .count();
        faults.write_missed += due.saturating_sub(seen.len());
        sessions.push(session);
    }
    let delivered = notify_lat.len();
    let notify_span = (last_receipt - first).as_secs_f64();
    let notify_lat = Latencies::new(notify_lat);
    let commit_lat = Latencies::new(commit_lat);

    // (d) condition-change storm.
    let cpu = CpuMeter::start(&target.pids)?;
    let tool0 = own_cpu()?;
    let t = Instant::now();
    let live = sessions.len().max(1);
    let storm: Vec<(Session, Vec<ChangeOutcome>, Faults)> =
        stream::iter(sessions.into_iter().enumerate().map(|(s, mut session)| {
            let (model, params) = (model.clone(), params.clone());
            let n = params.changes / live + usize::from(s < params.changes % live);
            async move {
                let mut f = Faults::default();
                let mut outcomes = Vec::with_capacity(n);
                for _ in 0..n {
                    outcomes.push(change_condition(&mut session, &model, &params, s, &mut f).await);
                }
                (session, outcomes, f)
            }
        }))
        .buffered(params.change_parallelism.max(1))
        .collect()
        .await;
    let storm_s = t.elapsed().as_secs_f64();
    let storm_cpu = cpu.seconds()?;
    let storm_tool = own_cpu()? - tool0;
    let mut change_lat = Vec::new();
    let (mut change_rows, mut added, mut removed) = (0, 0, 0);
    let mut sessions = Vec::with_capacity(m);
    for (session, outcomes, f) in storm {
        faults.change_missed += f.change_missed;
        faults.change_duplicated += f.change_duplicated;
        faults.change_unexpected += f.change_unexpected;
        faults.wrong_rows += f.wrong_rows;
        faults.errors += f.errors;
        for s in f.samples {
            faults.note(s);
        }
        for o in outcomes {
            change_lat.extend(o.latency);
            change_rows += o.rows;
            added += o.added;
            removed += o.removed;
        }
        sessions.push(session);
    }
    let changes_done = change_lat.len();
    let change_lat = Latencies::new(change_lat);

    // (e) final check, against the server's own view of the rows.
    tokio::time::sleep(DRAIN).await;
    let selected = writer
        .transact(
            &target.db,
            vec![json!({"op": "select", "table": "Port_Binding", "where": [],
                        "columns": ["_uuid", "datapath"]})],
        )
        .await?;
    let server_rows = selected[0]["rows"].as_array().cloned().unwrap_or_default();
    if server_rows.len() != d * p {
        faults.error(format!(
            "Port_Binding holds {} rows, not {}",
            server_rows.len(),
            d * p
        ));
    }
    for row in &server_rows {
        let port = row["_uuid"][1]
            .as_str()
            .and_then(|u| model.port_by_uuid.get(u));
        match port {
            Some(&port) if row["datapath"] == json!(["uuid", model.dp_uuid[model.dp_of(port)]]) => {
            }
            _ => faults.error(format!(
                "the server's Port_Binding row {row} is not the tool's"
            )),
        }
    }
    let mut final_rows = 0;
    for (s, session) in sessions.iter_mut().enumerate() {
        while let Ok((_, msg)) = session.rx.try_recv() {
            faults.late_unexpected += 1;
            faults.note(format!("session {s}: notification after the storm: {msg}"));
        }
        let want: HashSet<usize> = session
            .dps
            .iter()
            .flat_map(|&dp| model.ports_of(dp))
            .collect();
        final_rows += session.rows.len();
        if want != session.rows {
            faults.final_mismatched_sessions += 1;
            faults.note(format!(
                "session {s}: holds {} rows, its condition selects {} ({} missing, {} extra)",
                session.rows.len(),
                want.len(),
                want.difference(&session.rows).count(),
                session.rows.difference(&want).count()
            ));
        }
    }

    let missed = faults.initial_missed + faults.write_missed + faults.change_missed;
    let duplicated = faults.write_duplicated + faults.change_duplicated;
    let unexpected = faults.initial_unexpected
        + faults.write_unexpected
        + faults.change_unexpected
        + faults.late_unexpected;
    let errors =
        faults.errors + faults.setup_failed + faults.wrong_rows + faults.final_mismatched_sessions;
    // Two objects: one json! this size exceeds the macro recursion limit.
    let mut report = json!({
        "scenario": "condfanout",
        "datapaths": d,
        "ports": p,
        "sessions": m,
        "setup_parallelism": params.setup_parallelism,
        "clauses": k,
        "seed": params.seed,
        "populate_s": populate_s,
        "setup_s": setup_s,
        "setup_p50_ms": setup_lat.ms(0.5),
        "setup_p99_ms": setup_lat.ms(0.99),
        "cpu_ms_per_setup": per(setup_cpu, m, 1e3),
        "writes": written.len(),
        "writes_s": write_span,
        "notifications": delivered,
        "notifications_expected": expected,
        "rate": if notify_span > 0.0 { delivered as f64 / notify_span } else { 0.0 },
        "writer_p50_ms": commit_lat.ms(0.5),
        "writer_p99_ms": commit_lat.ms(0.99),
        "notify_p50_ms": notify_lat.ms(0.5),
        "notify_p99_ms": notify_lat.ms(0.99),
        "cpu_us_per_notification": per(writes_cpu, delivered, 1e6),
        "changes": changes_done,
        "change_parallelism": params.change_parallelism,
        "churn": params.churn,
    });
    let rest = json!({
        "datapaths_added": added,
        "datapaths_removed": removed,
        "change_rows": change_rows,
        "storm_s": storm_s,
        "change_p50_ms": change_lat.ms(0.5),
        "change_p99_ms": change_lat.ms(0.99),
        "cpu_ms_per_change": per(storm_cpu, params.changes, 1e3),
        "final_rows": final_rows,
        "server_cpu_s": {"setup": setup_cpu, "writes": writes_cpu, "changes": storm_cpu},
        "tool_cpu_s": {"setup": setup_tool, "writes": writes_tool, "changes": storm_tool},
        "server_peak_rss_mib": target.pids.first().and_then(|&pid| peak_rss_mib(pid)),
        "per_server": per_server(target, &delivered_by_server, &writes_cpu_by_pid),
        "exactness": {
            "setup_failed": faults.setup_failed,
            "initial_missed": faults.initial_missed,
            "initial_unexpected": faults.initial_unexpected,
            "wrong_rows": faults.wrong_rows,
            "write_missed": faults.write_missed,
            "write_duplicated": faults.write_duplicated,
            "write_unexpected": faults.write_unexpected,
            "change_missed": faults.change_missed,
            "change_duplicated": faults.change_duplicated,
            "change_unexpected": faults.change_unexpected,
            "late_unexpected": faults.late_unexpected,
            "final_mismatched_sessions": faults.final_mismatched_sessions,
            "error_replies": faults.errors,
        },
        "missed": missed,
        "duplicated": duplicated,
        "unexpected": unexpected,
        "errors": errors,
        "error_samples": faults.samples,
    });
    if let (Some(r), Value::Object(rest)) = (report.as_object_mut(), rest) {
        r.extend(rest);
    }
    Ok(report)
}
