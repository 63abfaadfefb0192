//! JSON-RPC codec benchmarks (criterion), on messages of OVN Northbound shape:
//!
//! - `decode`: a byte stream split by `JsonCodec` (the tokio_util `Decoder`
//!   a session reads with) and each value checked by `Message::from_json`.
//!   - `transact_x1000`: 1,000 back-to-back `transact` requests of the kinds
//!     ovn-northd and neutron send (insert a port and add it to its switch,
//!     update a port's addresses, mutate `external_ids`, delete a port), all
//!     in the buffer at once.
//!   - `large_1mib`: one `transact` of more than 1 MiB (about 2.5 MiB: 4,000
//!     port inserts, as ovn-northd sends after a restart), all in the buffer
//!     at once;
//!     `large_1mib_4k_reads`: the same arriving 4 KiB at a time, as socket
//!     reads deliver it, to check that a partial message is scanned once.
//! - `encode`: `Message::encode` of the same 1,000 requests, `Message::write`
//!   of 1,000 transact replies into one output buffer, `reply_bytes` around a
//!   pre-encoded result (the cached-schema reply), `write_notification_raw`
//!   of 1,000 `update2` notifications around one pre-encoded body (the
//!   per-session part of the monitor fan-out), and `Message::encode` of the
//!   large request.
//!
//! Throughput is reported in bytes for the large messages and in messages
//! (elements) for the batches.
//!
//! Run: `cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3`.
mod common;

use common::{mac, schema_text};

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use oxsdb::codec::framing::{encode_message, JsonCodec};
use oxsdb::codec::jsonrpc::{reply_bytes, write_notification_raw, Message};
use serde_json::{json, Value};
use tokio_util::codec::Decoder;

const BATCH: usize = 1_000;
/// Port inserts in the large transaction: enough for more than 1 MiB.
const LARGE_PORTS: usize = 4_000;
const READ_SIZE: usize = 4096;

/// A deterministic UUID, so that runs compare byte for byte.
fn uuid(i: usize) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", i as u32, i)
}

fn port_row(i: usize) -> Value {
    let name = format!("lsp{i}");
    json!({
        "name": name,
        "addresses": ["set", [format!("{} 10.{}.{}.{}", mac(i), (i >> 16) & 255, (i >> 8) & 255, i & 255)]],
        "port_security": ["set", [format!("{} 10.{}.{}.{}/16", mac(i), (i >> 16) & 255, (i >> 8) & 255, i & 255)]],
        "external_ids": ["map", [
            ["neutron:cidrs", format!("10.{}.{}.{}/16", (i >> 16) & 255, (i >> 8) & 255, i & 255)],
            ["neutron:device_owner", "compute:nova"],
            ["neutron:network_name", format!("neutron-{}", uuid(i / 100))],
            ["neutron:port_name", name],
            ["neutron:project_id", "3a4e3f0c1e2d4b5a9f8e7d6c5b4a3f2e"],
            ["neutron:revision_number", "4"],
            ["neutron:security_group_ids", uuid(7)],
        ]],
        "options": ["map", [["requested-chassis", format!("hv{}", i % 50)]]],
        "enabled": true,
    })
}

fn where_uuid(u: &str) -> Value {
    json!([["_uuid", "==", ["uuid", u]]])
}

/// The operations of the `i`th request of the mix.
fn ops(i: usize) -> Vec<Value> {
    let port = uuid(i);
    let switch = uuid(1_000_000 + i % 100);
    match i % 4 {
        0 => vec![
            json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "np", "row": port_row(i)}),
            json!({"op": "mutate", "table": "Logical_Switch", "where": where_uuid(&switch),
                   "mutations": [["ports", "insert", ["set", [["named-uuid", "np"]]]]]}),
        ],
        1 => vec![
            json!({"op": "update", "table": "Logical_Switch_Port", "where": where_uuid(&port),
                   "row": {"addresses": ["set", [format!("{} 10.9.{}.{}", mac(i), (i >> 8) & 255, i & 255)]]}}),
        ],
        2 => vec![
            json!({"op": "mutate", "table": "Logical_Switch_Port", "where": where_uuid(&port),
            "mutations": [["external_ids", "delete", ["set", ["neutron:revision_number"]]],
                          ["external_ids", "insert", ["map", [["neutron:revision_number", format!("{i}")]]]]]}),
        ],
        _ => vec![
            json!({"op": "mutate", "table": "Logical_Switch", "where": where_uuid(&switch),
                   "mutations": [["ports", "delete", ["set", [["uuid", port]]]]]}),
            json!({"op": "delete", "table": "Logical_Switch_Port", "where": where_uuid(&port)}),
        ],
    }
}

fn transact(id: usize, ops: Vec<Value>) -> Message {
    let mut params = vec![json!("OVN_Northbound")];
    params.extend(ops);
    Message::request("transact", Value::Array(params), json!(id))
}

fn requests() -> Vec<Message> {
    (0..BATCH).map(|i| transact(i, ops(i))).collect()
}

/// One transaction inserting `LARGE_PORTS` ports into a new switch.
fn large_request() -> Message {
    let mut ops: Vec<Value> = (0..LARGE_PORTS)
        .map(|i| json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": format!("p{i}"), "row": port_row(i)}))
        .collect();
    let refs: Vec<Value> = (0..LARGE_PORTS)
        .map(|i| json!(["named-uuid", format!("p{i}")]))
        .collect();
    ops.push(json!({"op": "insert", "table": "Logical_Switch",
        "row": {"name": "ls-large", "ports": ["set", refs]}}));
    transact(0, ops)
}

fn stream(messages: &[Message]) -> BytesMut {
    let mut buf = BytesMut::new();
    for m in messages {
        m.write(&mut buf);
    }
    buf
}

/// Decodes every complete message in `buf`; returns how many.
fn decode_all(codec: &mut JsonCodec, buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Some(v) = codec.decode(buf).expect("valid stream") {
        black_box(Message::from_json(v).expect("valid JSON-RPC"));
        n += 1;
    }
    n
}

fn bench_decode(c: &mut Criterion) {
    let batch = stream(&requests());
    let large = stream(&[large_request()]);
    assert!(
        large.len() > 1 << 20,
        "the large message is {} bytes",
        large.len()
    );

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("transact_x1000", |b| {
        b.iter_batched_ref(
            || batch.clone(),
            |buf| assert_eq!(decode_all(&mut JsonCodec::new(), buf), BATCH),
            BatchSize::LargeInput,
        )
    });
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function("large_1mib", |b| {
        b.iter_batched_ref(
            || large.clone(),
            |buf| assert_eq!(decode_all(&mut JsonCodec::new(), buf), 1),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("large_1mib_4k_reads", |b| {
        b.iter_batched_ref(
            || BytesMut::with_capacity(large.len()),
            |buf| {
                let mut codec = JsonCodec::new();
                let mut n = 0;
                for chunk in large.chunks(READ_SIZE) {
                    buf.extend_from_slice(chunk);
                    n += decode_all(&mut codec, buf);
                }
                assert_eq!(n, 1);
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let reqs = requests();
    let replies: Vec<Message> = (0..BATCH)
        .map(|i| Message::reply(json!(i), json!([{"uuid": ["uuid", uuid(i)]}, {"count": 1}])))
        .collect();
    // The reply to `get_schema`, whose result a server encodes once.
    let schema: Value = serde_json::from_str(&schema_text()).expect("ovn-nb.ovsschema is JSON");
    let schema_bytes = encode_message(&schema);
    let update2 = encode_message(&json!({"Logical_Switch_Port": {uuid(1): {"modify": {
        "addresses": ["set", ["0a:00:00:00:00:01 10.0.0.1"]], "up": true}}}}));
    let monitor_ids: Vec<Value> = (0..BATCH).map(|i| json!(format!("m{i}"))).collect();
    let large = large_request();

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("message_encode_transact_x1000", |b| {
        b.iter(|| {
            for m in &reqs {
                black_box(m.encode());
            }
        })
    });
    let mut out = BytesMut::new();
    group.bench_function("message_write_reply_x1000", |b| {
        b.iter(|| {
            out.clear();
            for m in &replies {
                m.write(&mut out);
            }
            black_box(out.len())
        })
    });
    group.bench_function("write_notification_raw_update2_x1000", |b| {
        b.iter(|| {
            out.clear();
            for id in &monitor_ids {
                write_notification_raw(&mut out, "update2", &[id], &update2);
            }
            black_box(out.len())
        })
    });
    group.throughput(Throughput::Bytes(schema_bytes.len() as u64));
    group.bench_function("reply_bytes_get_schema", |b| {
        b.iter(|| reply_bytes(black_box(&json!(7)), &schema_bytes))
    });
    group.throughput(Throughput::Bytes(large.encode().len() as u64));
    group.bench_function("message_encode_large_1mib", |b| b.iter(|| large.encode()));
    group.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
