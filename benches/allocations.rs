//! Heap allocations per OVN Northbound transaction, counted by a global
//! allocator that wraps the system one, layer by layer: the codec (the
//! request's bytes decoded into a message or, as a server's session does with
//! a plain `transact`, straight into operations; the reply encoded), the
//! engine (`execute` + `apply` on the database, of either kind of
//! operations), and the whole in-process server
//! (the actors on the memory store through the in-process client, which adds
//! its own few allocations). The transactions are `oxsdb-bench txn`'s mix:
//! insert a switch with a named-uuid port, update the port, mutate the port
//! and its switch, delete the switch (the port is garbage collected).
//!
//! Run: `cargo bench --bench allocations` (prints a table). Under
//! `cargo test` it runs a few rounds and checks that every layer was
//! measured.

mod common;

use bytes::BytesMut;
use common::schema;
use oxsdb::actors::local_client::LocalClient;
use oxsdb::actors::server::{self, ServerConfig, Store};
use oxsdb::codec::framing::JsonCodec;
use oxsdb::codec::jsonrpc::{reply_bytes, Message};
use oxsdb::codec::transact;
use oxsdb::db::op_result;
use oxsdb::db::{execute, Database, ExecContext, Execution, Op};
use oxsdb::storage::keys::Keys;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::codec::Decoder;

/// The system allocator, counting allocations and their bytes.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes so far.
fn counters() -> (u64, u64) {
    (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    )
}

/// What one kind of transaction cost, summed over the rounds.
#[derive(Default, Clone, Copy)]
struct Cost {
    allocs: u64,
    bytes: u64,
    n: u64,
}

impl Cost {
    fn add(&mut self, before: (u64, u64)) {
        let (a, b) = counters();
        self.allocs += a - before.0;
        self.bytes += b - before.1;
        self.n += 1;
    }
    fn per_txn(&self) -> (f64, f64) {
        let n = self.n.max(1) as f64;
        (self.allocs as f64 / n, self.bytes as f64 / n)
    }
}

const KINDS: [&str; 4] = ["insert", "update", "mutate", "delete"];

fn by_uuid(uuid: &str) -> Value {
    json!([["_uuid", "==", ["uuid", uuid]]])
}

/// Transaction `kind` of round `i` on the switch and port of that round.
fn ops(kind: usize, i: u64, switch: &str, port: &str) -> Vec<Value> {
    let addr = format!(
        "0a:00:00:00:{:02x}:{:02x} 10.0.{}.{}",
        (i >> 8) & 255,
        i & 255,
        (i >> 8) & 255,
        i & 255
    );
    match kind {
        0 => vec![
            json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "port",
                   "row": {"name": format!("lsp{i}"), "type": "", "enabled": true,
                           "external_ids": ["map", [["neutron:port_name", format!("lsp{i}")]]]}}),
            json!({"op": "insert", "table": "Logical_Switch", "uuid-name": "switch",
                   "row": {"name": format!("ls{i}"), "ports": ["named-uuid", "port"],
                           "external_ids": ["map", [["neutron:network_name", format!("ls{i}")]]]}}),
        ],
        1 => vec![
            json!({"op": "update", "table": "Logical_Switch_Port", "where": by_uuid(port),
                   "row": {"addresses": addr, "port_security": addr, "up": false}}),
        ],
        2 => vec![
            json!({"op": "mutate", "table": "Logical_Switch_Port", "where": by_uuid(port),
                   "mutations": [["external_ids", "insert", ["map", [["neutron:device_owner", "compute:nova"]]]],
                                 ["addresses", "insert", ["set", ["router"]]]]}),
            json!({"op": "mutate", "table": "Logical_Switch", "where": by_uuid(switch),
                   "mutations": [["other_config", "insert", ["map", [["mcast_snoop", "true"]]]]]}),
        ],
        _ => vec![json!({"op": "delete", "table": "Logical_Switch", "where": by_uuid(switch)})],
    }
}

/// The (switch, port) UUIDs of an insert's results.
fn inserted(results: &Value) -> (String, String) {
    let uuid = |i: usize| {
        results[i]["uuid"][1]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    (uuid(1), uuid(0))
}

/// How a session reads a request: a JSON message, or (what a server does
/// with a `transact` of the plain shape) operations decoded straight from
/// the bytes.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    Json,
    Bytes,
}

/// The request of transaction `kind` of round `i`, as a client sends it.
fn request(kind: usize, i: u64, switch: &str, port: &str) -> Vec<u8> {
    let mut params = vec![json!("OVN_Northbound")];
    params.extend(ops(kind, i, switch, port));
    serde_json::to_vec(&json!({"method": "transact", "params": params, "id": i}))
        .unwrap_or_default()
}

/// The operations of a request decoded from its bytes, as a session hands
/// them to the database.
fn decoded(request: &[u8]) -> Vec<Op> {
    let mut buf = BytesMut::from(request);
    let frame = JsonCodec::new().decode_frame(&mut buf).ok().flatten();
    let t = frame.as_ref().and_then(transact::decode);
    assert!(t.is_some(), "the NB mix is of the plain shape");
    t.map(|t| t.ops.into_iter().map(Op::Raw).collect())
        .unwrap_or_default()
}

/// The codec's share: the request's bytes decoded (into a message, or into
/// operations), and the reply's bytes written.
fn codec(rounds: u64, path: Path) -> [Cost; 4] {
    let mut costs = [Cost::default(); 4];
    let mut codec = JsonCodec::new();
    let (switch, port) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let result = json!([{"uuid": ["uuid", port]}, {"count": 1}]);
    let result_bytes = serde_json::to_vec(&result).unwrap_or_default();
    for i in 0..rounds {
        for (k, cost) in costs.iter_mut().enumerate() {
            let request = request(k, i, &switch, &port);
            let mut buf = BytesMut::from(&request[..]);
            let before = counters();
            let decoded = match path {
                Path::Json => {
                    let value = codec.decode(&mut buf).ok().flatten();
                    value.and_then(|v| Message::from_json(v).ok()).is_some()
                }
                Path::Bytes => {
                    let frame = codec.decode_frame(&mut buf).ok().flatten();
                    frame.as_ref().and_then(transact::decode).is_some()
                }
            };
            let reply = reply_bytes(&json!(i), &result_bytes);
            cost.add(before);
            assert!(decoded && !reply.is_empty(), "the request decodes");
        }
    }
    costs
}

/// The engine's share: `execute` + `apply`, of operations handed over as
/// `path` makes them.
fn engine(rounds: u64, path: Path) -> [Cost; 4] {
    let mut costs = [Cost::default(); 4];
    let mut db = Database::new(schema());
    let prepare = |kind: usize, i: u64, switch: &str, port: &str| -> Vec<Op> {
        match path {
            Path::Json => ops(kind, i, switch, port)
                .into_iter()
                .map(Op::Json)
                .collect(),
            Path::Bytes => decoded(&request(kind, i, switch, port)),
        }
    };
    let run = |db: &mut Database, ops: &[Op], cost: &mut Cost| -> Value {
        let before = counters();
        let results = match execute(db, ops, &ExecContext::default()) {
            Execution::Done(done) => {
                db.apply(&done.changes);
                done.results
            }
            Execution::Blocked { .. } => Vec::new(),
        };
        cost.add(before);
        op_result::to_json(results)
    };
    for i in 0..rounds {
        let r = run(&mut db, &prepare(0, i, "", ""), &mut costs[0]);
        let (switch, port) = inserted(&r);
        for (k, cost) in costs.iter_mut().enumerate().skip(1) {
            run(&mut db, &prepare(k, i, &switch, &port), cost);
        }
    }
    assert_eq!(db.n_rows(), 0, "every round leaves the database empty");
    costs
}

/// The whole in-process server: actors on the memory store.
fn server(rounds: u64) -> [Cost; 4] {
    let system = actix::System::new();
    system.block_on(async move {
        let config = ServerConfig {
            remotes: Vec::new(),
            tls: Default::default(),
            inactivity_probe: None,
            max_message_size: oxsdb::codec::framing::DEFAULT_MAX_MESSAGE_SIZE,
            store: Store::Memory,
            keys: Keys::new("ovsdb", "nb").expect("keys"),
            lock_ttl: std::time::Duration::from_secs(5),
            threads: 0,
        };
        let running = server::start(config, vec![schema()])
            .await
            .expect("the server starts");
        let client = LocalClient::new(running.registry.clone());
        let mut costs = [Cost::default(); 4];
        for i in 0..rounds {
            let before = counters();
            let r = client
                .transact("OVN_Northbound", ops(0, i, "", ""))
                .await
                .expect("insert");
            costs[0].add(before);
            let (switch, port) = inserted(&r);
            for (k, cost) in costs.iter_mut().enumerate().skip(1) {
                let before = counters();
                let r = client
                    .transact("OVN_Northbound", ops(k, i, &switch, &port))
                    .await
                    .expect("transaction");
                cost.add(before);
                assert!(r.to_string().contains("count"), "{r}");
            }
        }
        running.shutdown();
        costs
    })
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rounds = if bench { 2_000 } else { 20 };
    let layers = [
        (
            "codec, operations from the bytes (decode request, encode reply)",
            codec(rounds, Path::Bytes),
        ),
        (
            "codec, JSON message (decode request, encode reply)",
            codec(rounds, Path::Json),
        ),
        (
            "engine, operations from the bytes (execute + apply)",
            engine(rounds, Path::Bytes),
        ),
        (
            "engine, JSON operations (execute + apply)",
            engine(rounds, Path::Json),
        ),
        (
            "in-process server (actors, memory store, JSON operations)",
            server(rounds),
        ),
    ];
    println!("allocations per transaction ({rounds} rounds of the NB mix)");
    println!("| layer | insert | update | mutate | delete | mix mean | bytes per txn (mix) |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, costs) in &layers {
        let mut row = format!("| {name} |");
        let (mut a, mut b) = (0.0, 0.0);
        for c in costs {
            let (allocs, bytes) = c.per_txn();
            assert!(allocs > 0.0, "{name}: nothing was counted");
            row.push_str(&format!(" {allocs:.0} |"));
            a += allocs / KINDS.len() as f64;
            b += bytes / KINDS.len() as f64;
        }
        println!("{row} {a:.0} | {b:.0} |");
    }
}
