//! Conditional monitor fan-out (criterion), issue 16: one commit against
//! 1,000 sessions with distinct 300-clause conditions, on the OVN
//! Southbound schema, as ovn-controllers monitor a Southbound database.
//!
//! The database holds 3,000 `Datapath_Binding` rows with 4 `Port_Binding`
//! rows each. Session `i` holds a `monitor_cond` (update2) on
//! `Port_Binding` whose condition is 300 `["datapath","==",["uuid",D]]`
//! clauses over its own pseudo-random datapaths (seeded, so every run has
//! the same sessions); no two conditions are equal. One round is one
//! transaction updating the `external_ids` of one port, timed from the send
//! until the writer has its reply and every session whose condition lists
//! the port's datapath (about M·K/D = 100 of them) has the update. The
//! other 900 sessions' conditions are evaluated and must not match, which is
//! what the bench is about.
//!
//! The server runs inside the bench's actix System as in `benches/fanout.rs`
//! (`server::start`, memory store, no remotes; a `LocalClient` writes). The
//! sessions are bench actors receiving what a `Session` receives: everything
//! that touches the monitor internals (the session messages, `AddMonitor`)
//! is in the `sessions` module below, so that a change of the fan-out
//! internals is adapted there alone.
//!
//! Run: `cargo bench --bench condfanout -- --warm-up-time 1 --measurement-time 3`
//! (`cargo test --all-targets` runs it once with 100 sessions).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use oxsdb::actors::local_client::LocalClient;
use oxsdb::actors::server::{self, RunningServer, ServerConfig, Store};
use oxsdb::schema::DatabaseSchema;
use oxsdb::storage::keys::Keys;
use serde_json::{json, Value};

const DB: &str = "OVN_Southbound";
const SB: &str = "/usr/share/ovn/ovn-sb.ovsschema";
const DATAPATHS: usize = 3_000;
const PORTS: usize = 4;
const SESSIONS: usize = 1_000;
/// Sessions when run once in test mode (`cargo test --all-targets`), where
/// the 1,000 sessions' set-up would take minutes of an unoptimised build.
const TEST_SESSIONS: usize = 100;
const CLAUSES: usize = 300;
/// Long enough for any round or the set-up on a loaded machine; a lost
/// message then fails the bench instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Counts deliveries across threads and wakes the bench when the expected
/// number has arrived.
#[derive(Default)]
pub struct Counter {
    n: AtomicUsize,
    target: AtomicUsize,
    done: tokio::sync::Notify,
    failure: Mutex<Option<String>>,
}

impl Counter {
    /// Starts counting towards `target`; returns how many the previous count
    /// reached, so that a delivery after its target shows.
    fn expect(&self, target: usize) -> usize {
        let before = self.n.swap(0, Ordering::SeqCst);
        self.target.store(target, Ordering::SeqCst);
        before
    }

    fn hit(&self) {
        if self.n.fetch_add(1, Ordering::AcqRel) + 1 == self.target.load(Ordering::Acquire) {
            self.done.notify_one();
        }
    }

    /// Records what went wrong and wakes the bench, which panics with it
    /// (a panic on an arbiter thread would only stop that thread).
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

/// The only place that knows how the server's monitor sessions are driven.
mod sessions {
    use super::Counter;
    use actix::prelude::*;
    use bytes::BytesMut;
    use oxsdb::actors::database::{AddMonitor, DatabaseActor};
    use oxsdb::actors::{
        CloseSession, LockEvent, MonitorCanceled, Notify, SendEncodedReply, SendReply,
        SessionHandle, TxnBlocked,
    };
    use oxsdb::codec::jsonrpc::write_notification_raw;
    use oxsdb::db::monitor::MonitorVersion;
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// Session ids apart from `LocalClient`'s (which start at 2^62).
    static NEXT_SESSION: AtomicU64 = AtomicU64::new(1 << 61);

    /// A monitor session without a socket: frames each update as its
    /// session would before the socket write.
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

    /// Starts a session on `arbiter` and asks `db` for its `monitor_cond`
    /// on `Port_Binding` with `condition`; its initial reply hits `replies`,
    /// each update `updates`.
    pub fn add(
        db: &Addr<DatabaseActor>,
        arbiter: &ArbiterHandle,
        condition: Value,
        replies: Arc<Counter>,
        updates: Arc<Counter>,
    ) {
        let addr = Sink::start_in_arbiter(arbiter, move |_| Sink {
            replies,
            updates,
            out: BytesMut::with_capacity(1024),
        });
        let session = SessionHandle::of(NEXT_SESSION.fetch_add(1, Ordering::Relaxed), addr);
        db.do_send(AddMonitor {
            session,
            id: json!(0),
            monitor_id: json!("condfanout"),
            version: MonitorVersion::V2,
            requests: json!({"Port_Binding": [{
                "columns": ["logical_port", "datapath", "tunnel_key", "up", "external_ids"],
                "where": condition}]}),
            last_txn_id: None,
        });
    }
}

/// splitmix64, so that every run monitors the same datapaths.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Session `i`'s datapaths: CLAUSES distinct ones of DATAPATHS.
fn datapaths_of(i: usize) -> Vec<usize> {
    let mut state = 0x5EED ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
    let mut all: Vec<usize> = (0..DATAPATHS).collect();
    for k in 0..CLAUSES {
        let j = k + (splitmix(&mut state) % (DATAPATHS - k) as u64) as usize;
        all.swap(k, j);
    }
    all.truncate(CLAUSES);
    all
}

fn sb_schema() -> Arc<DatabaseSchema> {
    let text = std::fs::read_to_string(SB)
        .unwrap_or_else(|e| panic!("{SB}: {e} (install it with `apt-get install ovn-central`)"));
    let json = serde_json::from_str(&text).expect("ovn-sb.ovsschema is JSON");
    Arc::new(DatabaseSchema::from_json(&json).expect("ovn-sb.ovsschema is a valid schema"))
}

struct Fixture {
    running: RunningServer,
    writer: LocalClient,
    arbiter: Arbiter,
    updates: Arc<Counter>,
    /// The updated port's UUID and how many sessions list its datapath.
    port: String,
    receivers: usize,
    round: usize,
}

impl Fixture {
    async fn start(sessions: usize) -> Fixture {
        let config = ServerConfig {
            remotes: Vec::new(),
            tls: Default::default(),
            inactivity_probe: None,
            max_message_size: 1 << 20,
            store: Store::Memory,
            keys: Keys::new("ovsdb", "bench").expect("keys"),
            lock_ttl: Duration::from_secs(5),
            threads: 1,
        };
        let running = server::start(config, vec![sb_schema()])
            .await
            .expect("server starts");
        let writer = LocalClient::new(running.registry.clone());
        let mut dp_uuid = Vec::with_capacity(DATAPATHS);
        let mut port_uuid = Vec::with_capacity(DATAPATHS * PORTS);
        for first in (0..DATAPATHS).step_by(250) {
            let mut ops = Vec::new();
            for d in first..first + 250 {
                ops.push(json!({"op": "insert", "table": "Datapath_Binding", "uuid-name": format!("d{d}"),
                    "row": {"tunnel_key": d + 1, "external_ids": ["map", [["name", format!("dp{d}")]]]}}));
                for p in 0..PORTS {
                    ops.push(json!({"op": "insert", "table": "Port_Binding",
                        "row": {"logical_port": format!("lp-{d}-{p}"), "tunnel_key": p + 1,
                                "datapath": ["named-uuid", format!("d{d}")]}}));
                }
            }
            let r = writer.transact(DB, ops).await.expect("populate");
            let results = r.as_array().expect("result array");
            for (i, o) in results.iter().enumerate() {
                let uuid = o["uuid"][1]
                    .as_str()
                    .unwrap_or_else(|| panic!("populate failed: {o}"))
                    .to_string();
                if i % (PORTS + 1) == 0 {
                    dp_uuid.push(uuid);
                } else {
                    port_uuid.push(uuid);
                }
            }
        }
        let db = running
            .registry
            .get(DB)
            .expect("OVN_Southbound is served")
            .addr;
        let arbiter = Arbiter::new();
        let replies = Arc::new(Counter::default());
        let updates = Arc::new(Counter::default());
        replies.expect(sessions);
        let mut watchers = vec![0usize; DATAPATHS];
        for i in 0..sessions {
            let dps = datapaths_of(i);
            for &d in &dps {
                watchers[d] += 1;
            }
            let condition: Vec<Value> = dps
                .iter()
                .map(|&d| json!(["datapath", "==", ["uuid", dp_uuid[d]]]))
                .collect();
            sessions::add(
                &db,
                &arbiter.handle(),
                Value::Array(condition),
                replies.clone(),
                updates.clone(),
            );
        }
        replies.wait("monitor_cond replies").await;
        // The port of the datapath listed by the median number of sessions.
        let mut by_watchers: Vec<usize> = (0..DATAPATHS).collect();
        by_watchers.sort_by_key(|&d| watchers[d]);
        let dp = by_watchers[DATAPATHS / 2];
        Fixture {
            running,
            writer,
            arbiter,
            updates,
            port: port_uuid[dp * PORTS].clone(),
            receivers: watchers[dp],
            round: 0,
        }
    }

    /// One transaction, timed until every session listing the port's
    /// datapath has its update and the writer its reply.
    async fn round(&mut self) -> Duration {
        let before = self.updates.expect(self.receivers);
        assert!(
            self.round == 0 || before == self.receivers,
            "round {}: {before} sessions got the update, not {}",
            self.round,
            self.receivers
        );
        self.round += 1;
        let ops = vec![json!({"op": "update", "table": "Port_Binding",
            "where": [["_uuid", "==", ["uuid", self.port]]],
            "row": {"external_ids": ["map", [["seq", self.round.to_string()]]]}})];
        let start = Instant::now();
        let (reply, ()) = tokio::join!(self.writer.transact(DB, ops), self.updates.wait("updates"));
        let elapsed = start.elapsed();
        let reply = reply.expect("transact");
        assert_eq!(reply[0]["count"], json!(1), "{reply}");
        elapsed
    }

    fn stop(self) {
        self.arbiter.stop();
        let _ = self.arbiter.join();
        self.running.shutdown();
    }
}

fn bench_condfanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("condfanout");
    group.sample_size(10);
    // cargo bench passes --bench; cargo test runs the bench once without it.
    let sessions = if std::env::args().any(|a| a == "--bench") {
        SESSIONS
    } else {
        TEST_SESSIONS
    };
    let system = actix_rt::System::new();
    let mut fixture = system.block_on(Fixture::start(sessions));
    group.throughput(Throughput::Elements(fixture.receivers as u64));
    let id = BenchmarkId::new(format!("{sessions}-sessions-{CLAUSES}-clauses"), DATAPATHS);
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += fixture.round().await;
                }
                total
            })
        })
    });
    system.block_on(async { fixture.stop() });
    group.finish();
}

criterion_group!(benches, bench_condfanout);
criterion_main!(benches);
