//! Monitor fan-out benchmarks (criterion): the actor throughput under many
//! monitors, on the OVN Northbound schema.
//!
//! The server's actors run inside the bench's own actix System, as an
//! embedding application runs them (tests/embedded.rs): `server::start` with
//! the memory store and no remotes, so the commit takes the real path (the
//! Database actor executes, applies in place, notifies its monitor groups,
//! replies; each session lane's Monitor actor finds the groups a commit
//! concerns and sends the updates). A `LocalClient` writes. The monitor sessions are bench actors that receive
//! exactly the messages a `Session` receives (`SessionHandle`, `AddMonitor`
//! from `oxsdb::actors`) and do with a notification what a session does
//! before its socket write: frame the shared body as an `update2` for their
//! monitor id. They are spread over one arbiter, and then over two (each
//! benchmark id names how many), as the server spreads its sessions over
//! `--threads`. `LocalClient` itself is not used for the sessions
//! because it parses every body back into a `Value`, a cost no socket
//! session has.
//!
//! One round: a transaction updating the `addresses` of one
//! `Logical_Switch_Port` (`lsp0`; the table holds 10 ports), timed from the
//! moment it is sent until every session that should receive the update has
//! received it and the writer has its reply. Monitors are `monitor_cond`
//! (update2) on `Logical_Switch_Port`, columns `name`, `addresses`, `up`,
//! `external_ids`, for 1, 100, 1,000 and 10,000 sessions:
//!
//! - `fanout_same_selection`: every session with condition `[true]`: one
//!   monitor group, the body is computed and encoded once.
//! - `fanout_distinct_conditions`: session `i` with
//!   `[["name","==","lsp<i>"],["name","==","lsp0"]]` (its own port plus the
//!   shared one, as an ovn-controller lists its local datapaths and the
//!   shared ones): no two monitors are equal, so there is one group per
//!   session, and all of them receive the update.
//! - `fanout_distinct_conditions_one_match`: session `i` with
//!   `[["name","==","lsp<i>"]]`: one group per session, but only session 0's
//!   condition matches: the condition index finds that group without
//!   evaluating the others.
//!
//! Throughput is in updates delivered (sessions), except for the one-match
//! case. Sessions are added as the sizes grow, so the 10,000-session setup
//! happens once per group (about a second).
//!
//! Run: `cargo bench --bench fanout -- --warm-up-time 1 --measurement-time 3`.
mod common;

use common::{mac, schema};

use actix::prelude::*;
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use oxsdb::actors::database::AddMonitor;
use oxsdb::actors::local_client::LocalClient;
use oxsdb::actors::server::{self, RunningServer, ServerConfig, Store};
use oxsdb::actors::{
    CloseSession, LockEvent, MonitorCanceled, Notify, SendEncodedReply, SendReply, SessionHandle,
    TxnBlocked,
};
use oxsdb::codec::jsonrpc::write_notification_raw;
use oxsdb::db::monitor::MonitorVersion;
use oxsdb::storage::keys::Keys;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DB: &str = "OVN_Northbound";
const SIZES: [usize; 4] = [1, 100, 1_000, 10_000];
/// Rows in the monitored table: each `[true]` session's initial reply holds
/// them all, so this stays small to keep the 10,000-session setup short.
const PORTS: usize = 10;
/// Long enough for any round or setup on a loaded CI machine; a lost message
/// then fails the bench instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(120);
const COLUMNS: [&str; 4] = ["name", "addresses", "up", "external_ids"];

/// Counts deliveries across arbiter threads and wakes the bench when the
/// expected number has arrived.
#[derive(Default)]
struct Counter {
    n: AtomicUsize,
    target: AtomicUsize,
    done: tokio::sync::Notify,
    failure: Mutex<Option<String>>,
}

impl Counter {
    fn expect(&self, target: usize) {
        self.target.store(target, Ordering::SeqCst);
        self.n.store(0, Ordering::SeqCst);
    }

    fn hit(&self) {
        if self.n.fetch_add(1, Ordering::AcqRel) + 1 == self.target.load(Ordering::Acquire) {
            // `notify_one` keeps a permit if the bench is not waiting yet.
            self.done.notify_one();
        }
    }

    /// Records why a session got something it should not have, and wakes
    /// the bench, which panics with it (a panic on an arbiter thread would
    /// only stop that thread).
    fn fail(&self, why: String) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(why);
        }
        self.done.notify_one();
    }

    async fn wait(&self, what: &str) {
        tokio::time::timeout(TIMEOUT, self.done.notified())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{what}: {} of {} arrived within {TIMEOUT:?}",
                    self.n.load(Ordering::SeqCst),
                    self.target.load(Ordering::SeqCst)
                )
            });
        if let Some(why) = self.failure.lock().ok().and_then(|f| f.clone()) {
            panic!("{what}: {why}");
        }
    }
}

/// A monitor session without a socket.
struct Sink {
    replies: Arc<Counter>,
    updates: Arc<Counter>,
    out: BytesMut,
}

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<SendReply> for Sink {
    type Result = ();
    fn handle(&mut self, m: SendReply, _: &mut Context<Self>) {
        match m.result {
            Ok(_) => self.replies.hit(),
            Err(e) => self.replies.fail(format!("monitor_cond failed: {e}")),
        }
    }
}

impl Handler<SendEncodedReply> for Sink {
    type Result = ();
    fn handle(&mut self, _: SendEncodedReply, _: &mut Context<Self>) {
        self.replies.hit();
    }
}

impl Handler<Notify> for Sink {
    type Result = ();
    fn handle(&mut self, n: Notify, _: &mut Context<Self>) {
        // The output buffer is reused: a session's is drained by its writer.
        self.out.clear();
        write_notification_raw(&mut self.out, "update2", &[&n.monitor_id], &n.body);
        self.updates.hit();
    }
}

impl Handler<LockEvent> for Sink {
    type Result = ();
    fn handle(&mut self, _: LockEvent, _: &mut Context<Self>) {}
}

impl Handler<MonitorCanceled> for Sink {
    type Result = ();
    fn handle(&mut self, m: MonitorCanceled, _: &mut Context<Self>) {
        self.updates
            .fail(format!("monitor {} canceled", m.monitor_id));
    }
}

impl Handler<CloseSession> for Sink {
    type Result = ();
    fn handle(&mut self, m: CloseSession, _: &mut Context<Self>) {
        self.updates.fail(format!("session closed: {}", m.reason));
    }
}

impl Handler<TxnBlocked> for Sink {
    type Result = ();
    fn handle(&mut self, _: TxnBlocked, _: &mut Context<Self>) {}
}

/// Session ids apart from `LocalClient`'s (which start at 2^62).
/// How many arbiters the monitor sessions are spread over, in turn.
const SESSION_ARBITERS: [usize; 2] = [1, 2];

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1 << 61);

struct Fixture {
    running: RunningServer,
    writer: LocalClient,
    arbiters: Vec<Arbiter>,
    sessions: usize,
    replies: Arc<Counter>,
    updates: Arc<Counter>,
    round: usize,
}

impl Fixture {
    async fn start(session_arbiters: usize) -> Fixture {
        let config = ServerConfig {
            remotes: Vec::new(),
            tls: Default::default(),
            inactivity_probe: None,
            max_message_size: 1 << 20,
            store: Store::Memory,
            keys: Keys::new("ovsdb", "bench").expect("keys"),
            lock_ttl: Duration::from_secs(5),
            // One session lane per sink arbiter: each lane's Monitor actor
            // fans out on its own thread, as with `--threads`.
            threads: session_arbiters.max(1),
        };
        let running = server::start(config, vec![schema()])
            .await
            .expect("server starts");
        let writer = LocalClient::new(running.registry.clone());
        let mut ops: Vec<Value> = (0..PORTS)
            .map(|i| {
                json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": format!("p{i}"),
                    "row": {"name": format!("lsp{i}"),
                            "addresses": ["set", [format!("{} 10.0.0.{}", mac(i), i + 2)]],
                            "external_ids": ["map", [["neutron:port_name", format!("lsp{i}")]]]}})
            })
            .collect();
        let refs: Vec<Value> = (0..PORTS)
            .map(|i| json!(["named-uuid", format!("p{i}")]))
            .collect();
        ops.push(json!({"op": "insert", "table": "Logical_Switch",
            "row": {"name": "ls0", "ports": ["set", refs]}}));
        let r = writer.transact(DB, ops).await.expect("preload");
        assert!(
            r.as_array()
                .expect("result array")
                .iter()
                .all(|o| o.get("error").is_none()),
            "preload failed: {r}"
        );
        Fixture {
            running,
            writer,
            arbiters: (0..session_arbiters.max(1))
                .map(|_| Arbiter::new())
                .collect(),
            sessions: 0,
            replies: Arc::new(Counter::default()),
            updates: Arc::new(Counter::default()),
            round: 0,
        }
    }

    /// Adds sessions up to `n`, session `i` monitoring with `condition(i)`.
    async fn grow(&mut self, n: usize, condition: &dyn Fn(usize) -> Value) {
        if n <= self.sessions {
            return;
        }
        let db = self
            .running
            .registry
            .get(DB)
            .expect("OVN_Northbound is served")
            .addr;
        self.replies.expect(n - self.sessions);
        for i in self.sessions..n {
            let arbiter = self.arbiters[i % self.arbiters.len()].handle();
            let (replies, updates) = (self.replies.clone(), self.updates.clone());
            let addr = Sink::start_in_arbiter(&arbiter, move |_| Sink {
                replies,
                updates,
                out: BytesMut::with_capacity(1024),
            });
            let lane = i % self.arbiters.len();
            let session =
                SessionHandle::of_lane(NEXT_SESSION.fetch_add(1, Ordering::Relaxed), addr, lane);
            db.do_send(AddMonitor {
                session,
                id: json!(i),
                monitor_id: json!("ports"),
                version: MonitorVersion::V2,
                requests: json!({"Logical_Switch_Port": [{"columns": COLUMNS, "where": condition(i)}]}),
                last_txn_id: None,
            });
        }
        self.replies.wait("monitor replies").await;
        self.sessions = n;
    }

    /// One transaction, timed until `receivers` sessions have its update and
    /// the writer its reply.
    async fn round(&mut self, receivers: usize) -> Duration {
        self.round += 1;
        let i = self.round;
        self.updates.expect(receivers);
        let ops = vec![
            json!({"op": "update", "table": "Logical_Switch_Port", "where": [["name", "==", "lsp0"]],
                   "row": {"addresses": ["set", [format!("{} 10.1.{}.{}", mac(i), (i >> 8) & 255, i & 255)]]}}),
        ];
        let start = Instant::now();
        let (reply, ()) = tokio::join!(self.writer.transact(DB, ops), self.updates.wait("updates"));
        let elapsed = start.elapsed();
        let reply = reply.expect("transact");
        assert_eq!(reply[0]["count"], json!(1), "{reply}");
        elapsed
    }

    fn stop(self) {
        for a in &self.arbiters {
            a.stop();
        }
        for a in self.arbiters {
            let _ = a.join();
        }
        self.running.shutdown();
    }
}

fn bench_group(
    c: &mut Criterion,
    name: &str,
    condition: &dyn Fn(usize) -> Value,
    receivers: &dyn Fn(usize) -> usize,
    throughput: bool,
) {
    let mut group = c.benchmark_group(name);
    // The 10,000-session rounds take milliseconds each: criterion's default
    // 100 samples would need minutes.
    group.sample_size(10);
    for arbiters in SESSION_ARBITERS {
        let system = actix_rt::System::new();
        let mut fixture = system.block_on(Fixture::start(arbiters));
        for n in SIZES {
            system.block_on(fixture.grow(n, condition));
            if throughput {
                group.throughput(Throughput::Elements(n as u64));
            }
            let id = BenchmarkId::new(format!("{arbiters}-arbiter"), n);
            group.bench_with_input(id, &n, |b, &n| {
                b.iter_custom(|iters| {
                    system.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += fixture.round(receivers(n)).await;
                        }
                        total
                    })
                })
            });
        }
        system.block_on(async { fixture.stop() });
    }
    group.finish();
}

fn bench_same_selection(c: &mut Criterion) {
    bench_group(c, "fanout_same_selection", &|_| json!([true]), &|n| n, true);
}

fn bench_distinct_conditions(c: &mut Criterion) {
    bench_group(
        c,
        "fanout_distinct_conditions",
        &|i| json!([["name", "==", format!("lsp{i}")], ["name", "==", "lsp0"]]),
        &|n| n,
        true,
    );
}

fn bench_distinct_conditions_one_match(c: &mut Criterion) {
    bench_group(
        c,
        "fanout_distinct_conditions_one_match",
        &|i| json!([["name", "==", format!("lsp{i}")]]),
        &|_| 1,
        false,
    );
}

criterion_group!(
    benches,
    bench_same_selection,
    bench_distinct_conditions,
    bench_distinct_conditions_one_match
);
criterion_main!(benches);
