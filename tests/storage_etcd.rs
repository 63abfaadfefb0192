//! The etcd store against real etcd servers (`/usr/bin/etcd`, Debian's
//! `etcd-server`): the conformance suite on a fresh single member per check
//! and shared by all checks on a three-member cluster; a member killed under
//! commits and watches; etcd's `--max-txn-ops` / `--max-request-bytes`; a
//! fenced commit whose answer is lost (a proxy drops it), sent again.

mod support;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use oxsdb::storage::etcd::{EtcdOptions, EtcdStore};
use oxsdb::storage::{
    CommitResult, Compare, KeyValue, LeaseId, Revision, Storage, StorageError, WatchStream, WriteOp,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::etcd::EtcdCluster;

async fn connect(etcd: &EtcdCluster) -> Arc<EtcdStore> {
    EtcdStore::connect(EtcdOptions::new(etcd.endpoints()))
        .await
        .unwrap()
}

/// A store with the etcd it talks to, which lives as long as the store.
struct WithEtcd {
    store: Arc<EtcdStore>,
    _etcd: EtcdCluster,
}

#[async_trait]
impl Storage for WithEtcd {
    async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, Revision), StorageError> {
        self.store.range(prefix).await
    }
    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StorageError> {
        self.store.get(key).await
    }
    async fn commit(
        &self,
        compares: Vec<Compare>,
        writes: Vec<WriteOp>,
    ) -> Result<CommitResult, StorageError> {
        self.store.commit(compares, writes).await
    }
    async fn watch(&self, prefix: &[u8], from: Revision) -> Result<WatchStream, StorageError> {
        self.store.watch(prefix, from).await
    }
    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.store.current_revision().await
    }
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StorageError> {
        self.store.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StorageError> {
        self.store.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StorageError> {
        self.store.revoke_lease(lease).await
    }
    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.store.compact(revision).await
    }
    fn kind(&self) -> &'static str {
        self.store.kind()
    }
}

/// A fresh single-member etcd and a store on it.
async fn fresh() -> Arc<WithEtcd> {
    let etcd = tokio::task::block_in_place(EtcdCluster::single);
    Arc::new(WithEtcd {
        store: connect(&etcd).await,
        _etcd: etcd,
    })
}

// Every check on an etcd of its own: exact revision arithmetic and compaction.
crate::storage_conformance_tests!(fresh().await);

/// Every check at once on one three-member cluster, each with its own client.
mod cluster {
    use super::*;
    use std::sync::OnceLock;

    static CLUSTER: OnceLock<EtcdCluster> = OnceLock::new();

    async fn store() -> Arc<EtcdStore> {
        let c = tokio::task::block_in_place(|| CLUSTER.get_or_init(|| EtcdCluster::start(3, &[])));
        connect(c).await
    }

    crate::storage_conformance_tests!(shared: store().await);
}

/// Retries a commit while etcd is unavailable (a member just died, an
/// election is going on), for at most 30 s.
async fn commit_retrying(s: &EtcdStore, key: &[u8], value: String) -> Revision {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match s
            .commit(vec![], vec![WriteOp::put(key.to_vec(), value.clone())])
            .await
        {
            Ok(r) => {
                assert!(r.succeeded);
                return r.revision;
            }
            Err(e @ StorageError::Unavailable(_)) if Instant::now() < deadline => {
                eprintln!("retrying a commit: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("commit: {e}"),
        }
    }
}

/// The index of the cluster's leader.
async fn leader(etcd: &EtcdCluster) -> usize {
    for (i, m) in etcd.members.iter().enumerate() {
        let mut c = etcd_client::Client::connect([m.endpoint()], None)
            .await
            .unwrap();
        let st = c.status().await.unwrap();
        if st.header().unwrap().member_id() == st.leader() {
            return i;
        }
    }
    panic!("no leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_and_watches_survive_losing_a_member() {
    let mut etcd = tokio::task::block_in_place(|| EtcdCluster::start(3, &[]));
    let s = connect(&etcd).await;
    let prefix = b"survive/".to_vec();
    let key = |i: usize| format!("survive/k{}", i % 5).into_bytes();
    let start = s.current_revision().await.unwrap() + 1;
    // Debug logs say when a watch resumes (shown for a failing test).
    let _ = tracing_subscriber::fmt()
        .with_env_filter("oxsdb::storage::etcd=debug")
        .with_test_writer()
        .try_init();
    // Several watches, spread over the members by the client's balancer:
    // most likely one of them is on the member killed.
    let mut watches = Vec::new();
    for _ in 0..4 {
        watches.push(s.watch(&prefix, 0).await.unwrap());
    }
    let mut revs = Vec::new();
    for i in 0..20 {
        revs.push((commit_retrying(&s, &key(i), i.to_string()).await, i));
    }
    // Kill the leader: an election, and some of the client's connections
    // (maybe the watch's) break.
    let l = leader(&etcd).await;
    etcd.members[l].kill();
    for i in 20..60 {
        revs.push((commit_retrying(&s, &key(i), i.to_string()).await, i));
    }
    // Each watch delivers every commit, in order, without gap or duplicate.
    for w in &mut watches {
        for (rev, i) in &revs {
            let b = tokio::time::timeout(Duration::from_secs(30), w.next())
                .await
                .unwrap_or_else(|_| panic!("no batch for revision {rev}"))
                .expect("the watch ended")
                .unwrap_or_else(|e| panic!("watch error: {e}"));
            assert_eq!(b.revision, *rev);
            assert_eq!(b.events.len(), 1);
            assert_eq!(b.events[0].key, Bytes::from(key(*i)));
            assert_eq!(b.events[0].value.as_deref(), Some(i.to_string().as_bytes()));
        }
    }
    // A new watch from before the kill replays everything; reads work.
    let mut replay = s.watch(&prefix, start).await.unwrap();
    for (rev, _) in &revs {
        let b = tokio::time::timeout(Duration::from_secs(30), replay.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(b.revision, *rev);
    }
    let (kvs, _) = s.range(&prefix).await.unwrap();
    assert_eq!(kvs.len(), 5);
    // Still a quorum: a fresh client works too, and so do leases.
    let s2 = EtcdStore::connect(EtcdOptions::new(etcd.endpoints()))
        .await
        .unwrap();
    let lease = s2.grant_lease(Duration::from_secs(10)).await.unwrap();
    s2.keep_alive(lease).await.unwrap();
    s2.revoke_lease(lease).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_etcd_limits_is_too_large_and_writes_nothing() {
    let etcd = tokio::task::block_in_place(|| {
        EtcdCluster::start(1, &["--max-txn-ops=16", "--max-request-bytes=1048576"])
    });
    let s = connect(&etcd).await;
    let before = s.current_revision().await.unwrap();
    let puts = |n: usize| -> Vec<WriteOp> {
        (0..n)
            .map(|i| WriteOp::put(format!("big/{i:02}"), "v"))
            .collect()
    };
    match s.commit(vec![], puts(17)).await {
        Err(StorageError::TooLarge(m)) => assert!(m.contains("--max-txn-ops"), "{m}"),
        other => panic!("17 operations with --max-txn-ops=16: {other:?}"),
    }
    assert_eq!(s.current_revision().await.unwrap(), before);
    assert!(s.range(b"big/").await.unwrap().0.is_empty());

    let value = vec![b'x'; 2 << 20];
    match s
        .commit(vec![], vec![WriteOp::put("big/value", value)])
        .await
    {
        Err(StorageError::TooLarge(m)) => assert!(m.contains("--max-request-bytes"), "{m}"),
        other => panic!("2 MiB with --max-request-bytes=1048576: {other:?}"),
    }
    assert_eq!(s.current_revision().await.unwrap(), before);
    assert!(s.range(b"big/").await.unwrap().0.is_empty());

    // At the limit, it works.
    let r = s.commit(vec![], puts(16)).await.unwrap();
    assert!(r.succeeded && r.revision == before + 1);
    assert_eq!(s.range(b"big/").await.unwrap().0.len(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_etcd_is_unavailable() {
    let mut etcd = tokio::task::block_in_place(EtcdCluster::single);
    let s = EtcdStore::connect(EtcdOptions {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(2),
        ..EtcdOptions::new(etcd.endpoints())
    })
    .await
    .unwrap();
    s.commit(vec![], vec![WriteOp::put("k", "v")])
        .await
        .unwrap();
    etcd.members[0].kill();
    let e = s.get(b"k").await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    let e = s
        .commit(vec![], vec![WriteOp::put("k", "w")])
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_at_reads_a_past_revision_until_it_is_compacted() {
    let etcd = tokio::task::block_in_place(EtcdCluster::single);
    let s = connect(&etcd).await;
    let r1 = s
        .commit(
            vec![],
            vec![WriteOp::put("p/a", "1"), WriteOp::put("p/b", "1")],
        )
        .await
        .unwrap()
        .revision;
    let r2 = s
        .commit(
            vec![],
            vec![WriteOp::put("p/a", "2"), WriteOp::delete("p/b")],
        )
        .await
        .unwrap()
        .revision;
    s.commit(vec![], vec![WriteOp::put("q/x", "1")])
        .await
        .unwrap();
    let values = |kvs: Vec<KeyValue>| -> Vec<(Bytes, Bytes)> {
        kvs.into_iter().map(|kv| (kv.key, kv.value)).collect()
    };
    assert_eq!(
        values(s.range_at(b"p/", r1).await.unwrap()),
        vec![
            (Bytes::from("p/a"), Bytes::from("1")),
            (Bytes::from("p/b"), Bytes::from("1"))
        ]
    );
    assert_eq!(
        values(s.range_at(b"p/", r2).await.unwrap()),
        vec![(Bytes::from("p/a"), Bytes::from("2"))]
    );
    // More keys than one page, at a past revision.
    let many: Vec<WriteOp> = (0..2500)
        .map(|i| WriteOp::put(format!("m/{i:05}"), "v"))
        .collect();
    let rm = s.commit(vec![], many).await.unwrap().revision;
    s.commit(vec![], vec![WriteOp::put("m/99999", "later")])
        .await
        .unwrap();
    assert_eq!(s.range_at(b"m/", rm).await.unwrap().len(), 2500);
    s.compact(r2).await.unwrap();
    match s.range_at(b"p/", r1).await {
        Err(StorageError::Compacted { compacted }) => assert_eq!(compacted, r2),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.range_at(b"p/", r2).await.unwrap().len(), 1);
}

/// A TCP proxy on a free loopback port to `127.0.0.1:target`, whose answers
/// can be dropped (`mute`) and whose connections can be cut (bumping
/// `generation`): a lost reply, as when a member dies after applying a
/// request.
struct Proxy {
    port: u16,
    mute: Arc<std::sync::atomic::AtomicBool>,
    /// Connections accepted under an older generation are closed.
    generation: Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mute = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicUsize::new(0));
        let (m, g) = (mute.clone(), generation.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mine = g.load(Ordering::SeqCst);
                // One thread per direction; each wakes up every 20 ms to
                // see whether its connection was cut.
                let pump = move |mut from: TcpStream,
                                 mut to: TcpStream,
                                 drop_if: Option<Arc<AtomicBool>>,
                                 g: Arc<AtomicUsize>| {
                    from.set_read_timeout(Some(Duration::from_millis(20)))
                        .unwrap();
                    let mut buf = [0u8; 16384];
                    loop {
                        if g.load(Ordering::SeqCst) != mine {
                            break;
                        }
                        match from.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                let muted =
                                    drop_if.as_ref().is_some_and(|m| m.load(Ordering::SeqCst));
                                if !muted && to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                            Err(e)
                                if e.kind() == std::io::ErrorKind::WouldBlock
                                    || e.kind() == std::io::ErrorKind::TimedOut => {}
                            Err(_) => break,
                        }
                    }
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (g1, g2, m1) = (g.clone(), g.clone(), m.clone());
                std::thread::spawn(move || pump(client, server, None, g1));
                std::thread::spawn(move || pump(s2, c2, Some(m1), g2));
            }
        });
        Proxy {
            port,
            mute,
            generation,
        }
    }

    fn mute(&self, on: bool) {
        self.mute.store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Through a proxy whose answers are dropped for 1.5 s (then its
/// connections cut): a commit fenced on `fence` at `base`, putting `value`.
/// With `overwrite` (etcd's endpoints), another writer commits on top of
/// the fence 1.2 s in, while the answers are still dropped.
async fn commit_with_lost_answers(
    s: &EtcdStore,
    proxy: &Proxy,
    fence: &str,
    base: Revision,
    value: &str,
    overwrite: Option<Vec<String>>,
) -> (Result<CommitResult, StorageError>, Duration) {
    proxy.mute(true);
    let (mute, generation) = (proxy.mute.clone(), proxy.generation.clone());
    let fence_key = fence.to_string();
    let healer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1200));
        if let Some(endpoints) = overwrite {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let other = EtcdStore::connect(EtcdOptions::new(endpoints))
                    .await
                    .unwrap();
                let now = other.get(fence_key.as_bytes()).await.unwrap().unwrap();
                let r = other
                    .commit(
                        vec![Compare::ModRevision {
                            key: Bytes::from(fence_key.clone()),
                            revision: now.mod_revision,
                        }],
                        vec![WriteOp::put(fence_key.clone(), "on-top")],
                    )
                    .await
                    .unwrap();
                assert!(r.succeeded);
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        mute.store(false, std::sync::atomic::Ordering::SeqCst);
        generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let started = Instant::now();
    let r = s
        .commit(
            vec![Compare::ModRevision {
                key: Bytes::from(fence.to_string()),
                revision: base,
            }],
            vec![
                WriteOp::put(fence.to_string(), value.to_string()),
                WriteOp::put(format!("{fence}/row"), value.to_string()),
            ],
        )
        .await;
    let took = started.elapsed();
    tokio::task::block_in_place(|| healer.join().unwrap());
    (r, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_commit_whose_answer_was_lost_is_sent_again_and_told_whether_it_applied() {
    let etcd = tokio::task::block_in_place(EtcdCluster::single);
    let proxy = Proxy::start(etcd.members[0].client_port);
    let s = EtcdStore::connect(EtcdOptions {
        request_timeout: Duration::from_secs(4),
        ..EtcdOptions::new([format!("http://127.0.0.1:{}", proxy.port)])
    })
    .await
    .unwrap();
    let direct = connect(&etcd).await;
    let fence = "f/fence";
    let base = s
        .commit(
            vec![Compare::absent(fence)],
            vec![WriteOp::put(fence, "first")],
        )
        .await
        .unwrap();
    assert!(base.succeeded);

    // 1. The first copy applies, its answer is lost; a copy sent again fails
    // its compare and finds that the first one applied.
    let (r, took) = commit_with_lost_answers(&s, &proxy, fence, base.revision, "mine", None).await;
    let r = r.unwrap_or_else(|e| panic!("a commit whose first answer was lost: {e}"));
    let kv = direct.get(fence.as_bytes()).await.unwrap().unwrap();
    eprintln!(
        "FIGURES: a fenced commit whose answers were dropped for 1.5 s: {r:?} after {took:.2?}"
    );
    assert!(r.succeeded, "it applied, so it succeeded: {r:?}");
    assert_eq!(kv.value, Bytes::from("mine"));
    assert_eq!(r.revision, kv.mod_revision, "the revision it applied at");
    // Once: nothing was written after it.
    assert_eq!(direct.current_revision().await.unwrap(), r.revision);

    // 2. Another writer won the fence first: the copies fail their compare,
    // and the commit says so (it did not apply).
    let theirs = direct
        .commit(
            vec![Compare::ModRevision {
                key: Bytes::from(fence),
                revision: r.revision,
            }],
            vec![WriteOp::put(fence, "theirs")],
        )
        .await
        .unwrap();
    assert!(theirs.succeeded);
    let (lost, took) =
        commit_with_lost_answers(&s, &proxy, fence, r.revision, "mine-2", None).await;
    let lost = lost.unwrap_or_else(|e| panic!("a commit that lost the fence: {e}"));
    eprintln!(
        "FIGURES: a fenced commit that lost the fence, answers dropped: {lost:?} after {took:.2?}"
    );
    assert!(!lost.succeeded, "{lost:?}");
    let kv = direct.get(fence.as_bytes()).await.unwrap().unwrap();
    assert_eq!(kv.value, Bytes::from("theirs"));

    // 3. The first copy applies, its answer is lost, and another writer
    // commits on top of it before a copy is sent again: the fence's value
    // is theirs now, its history says ours came first.
    let (r3, took) = commit_with_lost_answers(
        &s,
        &proxy,
        fence,
        kv.mod_revision,
        "mine-3",
        Some(etcd.endpoints()),
    )
    .await;
    let r3 = r3.unwrap_or_else(|e| panic!("a commit overwritten after it applied: {e}"));
    eprintln!("FIGURES: a fenced commit overwritten after it applied, answers dropped: {r3:?} after {took:.2?}");
    assert!(r3.succeeded, "it applied, so it succeeded: {r3:?}");
    let now = direct.get(fence.as_bytes()).await.unwrap().unwrap();
    assert_eq!(now.value, Bytes::from("on-top"));
    assert_eq!(
        r3.revision,
        kv.mod_revision + 1,
        "ours applied right after the base"
    );
    assert_eq!(now.mod_revision, r3.revision + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_without_previous_values_brings_the_same_commits_without_them() {
    let s = fresh().await;
    let prefix = b"lean/".to_vec();
    let start = s.current_revision().await.unwrap() + 1;
    let steps = [
        vec![WriteOp::put(&b"lean/a"[..], &b"1"[..])],
        vec![
            WriteOp::put(&b"lean/a"[..], &b"2"[..]),
            WriteOp::put(&b"lean/b"[..], &b"3"[..]),
        ],
        vec![WriteOp::delete(&b"lean/a"[..])],
    ];
    for writes in steps {
        assert!(s.commit(Vec::new(), writes).await.unwrap().succeeded);
    }
    let mut full = s.watch(&prefix, start).await.unwrap();
    let mut lean = s.store.watch_without_prev(&prefix, start).await.unwrap();
    let mut with_prev = 0;
    async fn next(w: &mut WatchStream) -> oxsdb::storage::WatchBatch {
        let b = tokio::time::timeout(Duration::from_secs(10), w.next()).await;
        b.expect("a batch within 10 s")
            .expect("the watch goes on")
            .expect("no watch error")
    }
    for _ in 0..3 {
        let (f, l) = (next(&mut full).await, next(&mut lean).await);
        assert_eq!(f.revision, l.revision);
        assert_eq!(f.events.len(), l.events.len());
        for (fe, le) in f.events.iter().zip(&l.events) {
            assert_eq!(
                (fe.kind, &fe.key, &fe.value, fe.mod_revision),
                (le.kind, &le.key, &le.value, le.mod_revision)
            );
            assert_eq!(le.prev_value, None, "etcd was asked for no previous values");
            with_prev += usize::from(fe.prev_value.is_some());
        }
    }
    // The full watch has them: a's 1 before 2, and 2 before its delete.
    assert_eq!(with_prev, 2);
}
