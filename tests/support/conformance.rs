//! The storage conformance suite: one set of checks every backend passes
//! (built only for the tests, never into the library).
//!
//! Each check is a `pub async fn(&Ctx) -> CheckResult`. A backend's test
//! file is one line:
//!
//! ```ignore
//! crate::storage_conformance_tests!(oxsdb::storage::MemoryStore::new());
//! ```
//!
//! The expression is evaluated once per check, inside an async test (so it may
//! `.await`, e.g. to connect to etcd), and must give something that coerces
//! to `Arc<dyn Storage>`. That form assumes a store of its own per check, and
//! so checks exact revision arithmetic ("+1 per commit"). For a store shared
//! with concurrent writers (one etcd for several tests), use
//! `storage_conformance_tests!(shared: expr)`: the checks then only require
//! revisions to increase, and the `compaction` check is left out (compacting a
//! shared store breaks the other tests' watches from the past: run it alone).
//!
//! Every check works under its own random key namespace ([`Ctx::ns`]), so
//! stores that already hold data (etcd) are fine. Lease checks use a TTL of
//! 2 s, etcd's minimum with default settings, and expect the expiry within
//! TTL + 1 s.

use bytes::Bytes;
use futures_util::StreamExt;
use oxsdb::storage::{
    CommitResult, Compare, EventKind, KeyValue, Revision, Storage, StorageError, WatchBatch,
    WatchStream, WriteOp,
};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a check returns: `Err` says what went wrong.
pub type CheckResult = Result<(), String>;

/// How long a watch may take to deliver a batch that is due.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one whole check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// The lease TTL of the lease checks.
pub const LEASE_TTL: Duration = Duration::from_secs(2);
/// How late after its TTL a lease may expire.
pub const LEASE_GRACE: Duration = Duration::from_secs(1);

/// A check's store and key namespace.
pub struct Ctx {
    /// The store under test.
    pub store: Arc<dyn Storage>,
    /// `oxsdb-conformance/<random uuid>/`: every key of the check is under it.
    pub ns: Bytes,
    /// Whether the check has the store to itself (exact revision arithmetic).
    pub exclusive: bool,
}

impl Ctx {
    /// A context with a fresh namespace.
    pub fn new(store: Arc<dyn Storage>, exclusive: bool) -> Ctx {
        Ctx {
            store,
            ns: Bytes::from(format!("oxsdb-conformance/{}/", uuid::Uuid::new_v4())),
            exclusive,
        }
    }

    /// `ns` + `k`.
    pub fn key(&self, k: &str) -> Bytes {
        let mut v = Vec::with_capacity(self.ns.len() + k.len());
        v.extend_from_slice(&self.ns);
        v.extend_from_slice(k.as_bytes());
        Bytes::from(v)
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

trait OrFail<T> {
    fn or_fail(self, what: &str) -> Result<T, String>;
}

impl<T> OrFail<T> for Result<T, StorageError> {
    fn or_fail(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: unexpected error: {e}"))
    }
}

fn show(b: &[u8]) -> String {
    if b.len() > 64 {
        format!(
            "{:?}... ({} bytes)",
            String::from_utf8_lossy(&b[..64]),
            b.len()
        )
    } else {
        format!("{:?}", String::from_utf8_lossy(b))
    }
}

/// A commit that must succeed.
async fn commit_ok(
    s: &dyn Storage,
    compares: Vec<Compare>,
    writes: Vec<WriteOp>,
) -> Result<CommitResult, String> {
    let r = s.commit(compares, writes).await.or_fail("commit")?;
    ensure!(r.succeeded, "a commit whose compares hold failed: {r:?}");
    Ok(r)
}

async fn put(ctx: &Ctx, k: &str, v: &str) -> Result<Revision, String> {
    Ok(commit_ok(
        &*ctx.store,
        vec![],
        vec![WriteOp::put(ctx.key(k), v.to_string())],
    )
    .await?
    .revision)
}

async fn watch(ctx: &Ctx, prefix: &[u8], from: Revision) -> Result<WatchStream, String> {
    ctx.store
        .watch(prefix, from)
        .await
        .or_fail(&format!("watch {} from {from}", show(prefix)))
}

async fn next_batch(w: &mut WatchStream, what: &str) -> Result<WatchBatch, String> {
    match tokio::time::timeout(WATCH_TIMEOUT, w.next()).await {
        Err(_) => Err(format!("{what}: no watch batch within {WATCH_TIMEOUT:?}")),
        Ok(None) => Err(format!("{what}: the watch stream ended")),
        Ok(Some(Err(e))) => Err(format!("{what}: watch error: {e}")),
        Ok(Some(Ok(b))) => {
            ensure!(
                !b.events.is_empty(),
                "{what}: an empty watch batch at {}",
                b.revision
            );
            for e in &b.events {
                ensure!(
                    e.mod_revision == b.revision,
                    "{what}: event of {} has mod_revision {} in the batch of revision {}",
                    show(&e.key),
                    e.mod_revision,
                    b.revision
                );
            }
            Ok(b)
        }
    }
}

/// Commits a marker put to `key` and checks that it is the watch's next
/// batch: nothing else was pending on the watch.
async fn expect_only_marker(ctx: &Ctx, w: &mut WatchStream, key: &str) -> CheckResult {
    let rev = put(ctx, key, "marker").await?;
    let b = next_batch(w, "waiting for the marker commit").await?;
    ensure!(
        b.revision == rev && b.events.len() == 1 && b.events[0].key == ctx.key(key),
        "expected only the marker commit {rev} on the watch, got {}",
        describe(&b)
    );
    Ok(())
}

fn describe(b: &WatchBatch) -> String {
    let evs: Vec<String> = b
        .events
        .iter()
        .map(|e| {
            format!(
                "{:?} {} = {} (prev {})",
                e.kind,
                show(&e.key),
                e.value.as_deref().map_or("-".into(), show),
                e.prev_value.as_deref().map_or("-".into(), show)
            )
        })
        .collect();
    format!("batch {} [{}]", b.revision, evs.join(", "))
}

async fn get(ctx: &Ctx, k: &str) -> Result<Option<KeyValue>, String> {
    ctx.store.get(&ctx.key(k)).await.or_fail("get")
}

async fn value_of(ctx: &Ctx, k: &str) -> Result<Option<Bytes>, String> {
    Ok(get(ctx, k).await?.map(|kv| kv.value))
}

/// Revisions increase by one per commit that changes something; commits that
/// change nothing create no revision and no watch batch.
pub async fn revision_per_commit(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    ensure!(!s.kind().is_empty(), "empty kind()");
    let r0 = s.current_revision().await.or_fail("current_revision")?;
    ensure!(r0 > 0, "a store's revision starts above 0, got {r0}");
    let mut w = watch(ctx, &ctx.ns, r0 + 1).await?;
    let step = |prev: Revision, next: Revision, what: &str| -> CheckResult {
        if ctx.exclusive {
            ensure!(
                next == prev + 1,
                "{what}: revision {next} after {prev}, expected {}",
                prev + 1
            );
        } else {
            ensure!(next > prev, "{what}: revision {next} after {prev}");
        }
        Ok(())
    };
    let c1 = put(ctx, "a", "1").await?;
    step(r0, c1, "first commit")?;
    let kv = get(ctx, "a").await?.ok_or("key a absent after its put")?;
    ensure!(
        kv.mod_revision == c1 && kv.create_revision == c1 && kv.value == "1" && kv.lease.is_none(),
        "after put at {c1}: {kv:?}"
    );
    let c2 = put(ctx, "a", "2").await?;
    step(c1, c2, "second commit")?;
    let kv = get(ctx, "a").await?.ok_or("key a absent after its put")?;
    ensure!(
        kv.mod_revision == c2 && kv.create_revision == c1 && kv.value == "2",
        "after overwrite at {c2} of a key created at {c1}: {kv:?}"
    );
    let cur = s.current_revision().await.or_fail("current_revision")?;
    ensure!(
        cur >= c2,
        "current_revision {cur} is before the last commit {c2}"
    );
    if ctx.exclusive {
        ensure!(cur == c2, "current_revision {cur}, last commit {c2}");
    }

    // Commits that change nothing.
    let empty = commit_ok(s, vec![], vec![]).await?;
    let del_absent = commit_ok(s, vec![], vec![WriteOp::delete(ctx.key("absent"))]).await?;
    let cmp_only = commit_ok(s, vec![Compare::mod_revision(ctx.key("a"), c2)], vec![]).await?;
    for (what, r) in [
        ("empty", empty),
        ("delete of an absent key", del_absent),
        ("compare only", cmp_only),
    ] {
        ensure!(
            r.revision >= c2,
            "{what} commit: revision {} before {c2}",
            r.revision
        );
        if ctx.exclusive {
            ensure!(
                r.revision == c2,
                "{what} commit created revision {} (current was {c2})",
                r.revision
            );
        }
    }
    if ctx.exclusive {
        let cur = s.current_revision().await.or_fail("current_revision")?;
        ensure!(
            cur == c2,
            "commits that change nothing moved the revision from {c2} to {cur}"
        );
    }
    let c3 = put(ctx, "b", "1").await?;
    step(c2, c3, "commit after no-op commits")?;

    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next_batch(&mut w, "watching the commits").await?.revision);
    }
    ensure!(
        seen == [c1, c2, c3],
        "watch saw revisions {seen:?}, expected {:?}",
        [c1, c2, c3]
    );
    expect_only_marker(ctx, &mut w, "marker").await?;

    // Watching from the current revision replays the commit at it.
    let cur = s.current_revision().await.or_fail("current_revision")?;
    let last = put(ctx, "c", "1").await?;
    if ctx.exclusive {
        ensure!(last == cur + 1, "revision {last} after {cur}");
    }
    let mut w = watch(ctx, &ctx.ns, last).await?;
    let b = next_batch(&mut w, "watch from the current revision").await?;
    ensure!(
        b.revision == last,
        "watch from the current revision {last} gave {}",
        describe(&b)
    );
    expect_only_marker(ctx, &mut w, "marker").await
}

/// A failing compare writes nothing and creates no revision; `Value` compares.
pub async fn compare_atomicity(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let c1 = put(ctx, "a", "1").await?;
    let mut w = watch(ctx, &ctx.ns, c1 + 1).await?;

    let r = s
        .commit(
            vec![
                Compare::mod_revision(ctx.key("a"), c1),
                Compare::mod_revision(ctx.key("b"), c1),
            ],
            vec![
                WriteOp::put(ctx.key("a"), "2"),
                WriteOp::put(ctx.key("c"), "x"),
            ],
        )
        .await
        .or_fail("commit with a failing compare")?;
    ensure!(
        !r.succeeded,
        "a commit whose second compare fails succeeded: {r:?}"
    );
    ensure!(
        r.revision >= c1,
        "failed commit reports revision {} before {c1}",
        r.revision
    );
    if ctx.exclusive {
        ensure!(
            r.revision == c1,
            "failed commit reports revision {}, current is {c1}",
            r.revision
        );
    }
    ensure!(
        value_of(ctx, "a").await? == Some("1".into()),
        "a failed commit changed a"
    );
    ensure!(get(ctx, "c").await?.is_none(), "a failed commit created c");

    for (what, cmp) in [
        (
            "a Value compare with another value",
            Compare::value(ctx.key("a"), "nope"),
        ),
        (
            "a Value compare on an absent key",
            Compare::value(ctx.key("zz"), ""),
        ),
        (
            "a ModRevision compare with a wrong revision",
            Compare::mod_revision(ctx.key("a"), c1 + 1000),
        ),
        (
            "a ModRevision 0 compare on an existing key",
            Compare::absent(ctx.key("a")),
        ),
    ] {
        let r = s
            .commit(vec![cmp], vec![WriteOp::put(ctx.key("c"), "y")])
            .await
            .or_fail(what)?;
        ensure!(!r.succeeded, "{what} held");
    }
    ensure!(get(ctx, "c").await?.is_none(), "a failed commit created c");
    if ctx.exclusive {
        let cur = s.current_revision().await.or_fail("current_revision")?;
        ensure!(
            cur == c1,
            "failed commits moved the revision from {c1} to {cur}"
        );
    }

    let ok = commit_ok(
        s,
        vec![
            Compare::value(ctx.key("a"), "1"),
            Compare::mod_revision(ctx.key("a"), c1),
            Compare::absent(ctx.key("c")),
        ],
        vec![
            WriteOp::put(ctx.key("a"), "3"),
            WriteOp::put(ctx.key("c"), "z"),
        ],
    )
    .await?;
    let b = next_batch(&mut w, "after failed commits and one good one").await?;
    ensure!(
        b.revision == ok.revision && b.events.len() == 2,
        "the first batch after failed commits should be the good commit {}: {}",
        ok.revision,
        describe(&b)
    );
    ensure!(
        value_of(ctx, "a").await? == Some("3".into()),
        "a after the good commit"
    );
    ensure!(
        value_of(ctx, "c").await? == Some("z".into()),
        "c after the good commit"
    );
    expect_only_marker(ctx, &mut w, "marker").await
}

/// `ModRevision == 0` holds exactly for absent keys: create-if-absent.
pub async fn absent_compare(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let k = ctx.key("lock");
    let r = commit_ok(
        s,
        vec![Compare::absent(k.clone())],
        vec![WriteOp::put(k.clone(), "owner1")],
    )
    .await?;
    let again = s
        .commit(
            vec![Compare::absent(k.clone())],
            vec![WriteOp::put(k.clone(), "owner2")],
        )
        .await
        .or_fail("second create-if-absent")?;
    ensure!(
        !again.succeeded,
        "create-if-absent succeeded on an existing key"
    );
    ensure!(
        value_of(ctx, "lock").await? == Some("owner1".into()),
        "the failed create-if-absent wrote"
    );
    commit_ok(
        s,
        vec![Compare::mod_revision(k.clone(), r.revision)],
        vec![WriteOp::delete(k.clone())],
    )
    .await?;
    ensure!(
        get(ctx, "lock").await?.is_none(),
        "delete with a holding compare did not delete"
    );
    commit_ok(
        s,
        vec![Compare::absent(k.clone())],
        vec![WriteOp::put(k.clone(), "owner2")],
    )
    .await?;
    ensure!(
        value_of(ctx, "lock").await? == Some("owner2".into()),
        "create-if-absent after delete"
    );
    commit_ok(s, vec![Compare::absent(ctx.key("never"))], vec![]).await?;
    Ok(())
}

/// Many puts and deletes in one commit: one revision, one batch, events in
/// the commit's order with previous values.
pub async fn one_batch_per_commit(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let pre: Vec<WriteOp> = (0..10)
        .map(|i| WriteOp::put(ctx.key(&format!("x/{i}")), format!("old{i}")))
        .collect();
    let c0 = commit_ok(s, vec![], pre).await?.revision;
    let mut w = watch(ctx, &ctx.ns, c0 + 1).await?;
    let mut writes: Vec<WriteOp> = Vec::new();
    let mut expected: Vec<(EventKind, Bytes, Option<Bytes>, Option<Bytes>)> = Vec::new();
    for i in (0..50).rev() {
        let key = ctx.key(&format!("y/{i:02}"));
        writes.push(WriteOp::put(key.clone(), format!("v{i}")));
        expected.push((EventKind::Put, key, Some(format!("v{i}").into()), None));
        if i % 5 == 0 {
            let key = ctx.key(&format!("x/{}", i / 5));
            writes.push(WriteOp::delete(key.clone()));
            expected.push((
                EventKind::Delete,
                key,
                None,
                Some(format!("old{}", i / 5).into()),
            ));
        }
    }
    writes.push(WriteOp::delete(ctx.key("absent")));
    let c = commit_ok(s, vec![], writes).await?;
    if ctx.exclusive {
        ensure!(
            c.revision == c0 + 1,
            "a commit of 61 writes took revision {} after {c0}",
            c.revision
        );
    }
    let b = next_batch(&mut w, "the big commit").await?;
    ensure!(
        b.revision == c.revision,
        "batch {} for commit {}",
        b.revision,
        c.revision
    );
    let got: Vec<_> = b
        .events
        .iter()
        .map(|e| (e.kind, e.key.clone(), e.value.clone(), e.prev_value.clone()))
        .collect();
    ensure!(
        got == expected,
        "the big commit's batch differs from its writes in order (delete of an absent key gives no event): {}",
        describe(&b)
    );
    let (kvs, _) = s.range(&ctx.key("y/")).await.or_fail("range")?;
    ensure!(kvs.len() == 50, "range y/ gave {} keys", kvs.len());
    for kv in &kvs {
        ensure!(
            kv.mod_revision == c.revision && kv.create_revision == c.revision,
            "key {} of the big commit has revisions {}/{}, commit {}",
            show(&kv.key),
            kv.create_revision,
            kv.mod_revision,
            c.revision
        );
    }
    let (kvs, _) = s.range(&ctx.key("x/")).await.or_fail("range")?;
    ensure!(
        kvs.is_empty(),
        "range x/ after deleting all: {} keys",
        kvs.len()
    );
    expect_only_marker(ctx, &mut w, "marker").await
}

/// Watch from a past revision replays exactly the later commits, then
/// continues live without gap or duplicate while another task commits; watch
/// from 0 sees only later commits; watch from a future revision starts there.
pub async fn watch_replay_then_live(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let p = ctx.key("w/");
    let mut history: Vec<(Revision, String)> = Vec::new();
    for i in 0..20 {
        let v = i.to_string();
        put(ctx, "other/k", &v).await?;
        history.push((put(ctx, &format!("w/k{}", i % 3), &v).await?, v));
    }
    let from = history[10].0;
    let mut past = watch(ctx, &p, from).await?;
    let mut now = watch(ctx, &p, 0).await?;
    let cur = s.current_revision().await.or_fail("current_revision")?;
    let future_from = cur + 100;
    let mut future = watch(ctx, &p, future_from).await?;

    let store = ctx.store.clone();
    let ns = ctx.ns.clone();
    let committer = tokio::spawn(async move {
        let key = |k: &str| Bytes::from([&ns[..], k.as_bytes()].concat());
        let mut revs = Vec::new();
        for i in 20..220 {
            let v = i.to_string();
            let r = store
                .commit(
                    vec![],
                    vec![WriteOp::put(key(&format!("w/k{}", i % 3)), v.clone())],
                )
                .await?;
            revs.push((r.revision, v.clone()));
            if i % 4 == 0 {
                store
                    .commit(vec![], vec![WriteOp::put(key("other/k"), v)])
                    .await?;
            }
            if i % 16 == 0 {
                tokio::task::yield_now().await;
            }
        }
        Ok::<_, StorageError>(revs)
    });

    // Read the past watch while the committer runs.
    let mut got_past = Vec::new();
    for _ in 0..(10 + 200) {
        let b = next_batch(&mut past, "watch from the past").await?;
        ensure!(
            b.events.len() == 1,
            "one put per commit, got {}",
            describe(&b)
        );
        got_past.push((
            b.revision,
            String::from_utf8_lossy(b.events[0].value.as_deref().unwrap_or(b"")).into_owned(),
        ));
    }
    let live = committer
        .await
        .map_err(|e| format!("committer task: {e}"))?
        .map_err(|e| format!("committer: {e}"))?;
    let mut expected: Vec<(Revision, String)> = history[10..].to_vec();
    expected.extend(live.iter().cloned());
    if got_past != expected {
        let first_diff = got_past.iter().zip(&expected).position(|(a, b)| a != b);
        return Err(format!(
            "watch from {from}: got {} batches, expected {}; first difference at {first_diff:?}: got {:?}, expected {:?}",
            got_past.len(),
            expected.len(),
            first_diff.map(|i| &got_past[i]),
            first_diff.map(|i| &expected[i]),
        ));
    }
    for (i, (rev, v)) in live.iter().enumerate() {
        let b = next_batch(&mut now, "watch from 0").await?;
        ensure!(
            b.revision == *rev && b.events[0].value.as_deref() == Some(v.as_bytes()),
            "watch from 0: batch {i} is {}, expected revision {rev}",
            describe(&b)
        );
    }
    let expected_future: Vec<&(Revision, String)> =
        live.iter().filter(|(r, _)| *r >= future_from).collect();
    for (rev, _) in expected_future {
        let b = next_batch(&mut future, "watch from a future revision").await?;
        ensure!(
            b.revision == *rev,
            "watch from future revision {future_from}: got {}, expected revision {rev}",
            describe(&b)
        );
    }
    expect_only_marker(ctx, &mut past, "w/marker").await?;
    let b = next_batch(&mut now, "watch from 0, marker").await?;
    ensure!(
        b.events[0].key == ctx.key("w/marker"),
        "watch from 0 after its commits: {}",
        describe(&b)
    );
    Ok(())
}

/// Puts over a value and deletes carry the previous value, live and replayed.
pub async fn prev_values(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let p = ctx.key("p/");
    let start = s.current_revision().await.or_fail("current_revision")? + 1;
    let mut w = watch(ctx, &p, start).await?;
    put(ctx, "p/a", "1").await?;
    put(ctx, "p/a", "2").await?;
    commit_ok(s, vec![], vec![WriteOp::delete(ctx.key("p/a"))]).await?;
    put(ctx, "p/a", "3").await?;
    let b = |s: &str| Some(Bytes::from(s.to_string()));
    let expected = [
        (EventKind::Put, b("1"), None),
        (EventKind::Put, b("2"), b("1")),
        (EventKind::Delete, None, b("2")),
        (EventKind::Put, b("3"), None),
    ];
    let mut revs = Vec::new();
    for (i, exp) in expected.iter().enumerate() {
        let batch = next_batch(&mut w, "live").await?;
        let e = &batch.events[0];
        ensure!(
            batch.events.len() == 1
                && e.key == ctx.key("p/a")
                && (e.kind, e.value.clone(), e.prev_value.clone()) == *exp,
            "live event {i}: {}, expected {exp:?}",
            describe(&batch)
        );
        revs.push(batch.revision);
    }
    let mut replay = watch(ctx, &p, revs[0]).await?;
    for (i, exp) in expected.iter().enumerate() {
        let batch = next_batch(&mut replay, "replay").await?;
        let e = &batch.events[0];
        ensure!(
            batch.revision == revs[i] && (e.kind, e.value.clone(), e.prev_value.clone()) == *exp,
            "replayed event {i}: {}, expected {exp:?} at {}",
            describe(&batch),
            revs[i]
        );
    }
    Ok(())
}

/// A watch on `a/` never sees `ab/` or `a`; range is a byte prefix too.
pub async fn prefix_isolation(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let start = s.current_revision().await.or_fail("current_revision")? + 1;
    let mut w = watch(ctx, &ctx.key("a/"), start).await?;
    put(ctx, "ab/x", "1").await?;
    put(ctx, "a", "1").await?;
    let c1 = put(ctx, "a/x", "1").await?;
    let c2 = commit_ok(
        s,
        vec![],
        vec![
            WriteOp::put(ctx.key("ab/y"), "1"),
            WriteOp::put(ctx.key("a/y"), "1"),
            WriteOp::put(ctx.key("b"), "1"),
        ],
    )
    .await?
    .revision;
    commit_ok(s, vec![], vec![WriteOp::delete(ctx.key("ab/x"))]).await?;
    let c3 = commit_ok(
        s,
        vec![],
        vec![
            WriteOp::delete(ctx.key("a/x")),
            WriteOp::delete(ctx.key("ab/y")),
        ],
    )
    .await?
    .revision;
    let expected = [
        (c1, EventKind::Put, ctx.key("a/x")),
        (c2, EventKind::Put, ctx.key("a/y")),
        (c3, EventKind::Delete, ctx.key("a/x")),
    ];
    for exp in expected.iter() {
        let b = next_batch(&mut w, "watch a/").await?;
        ensure!(
            b.events.len() == 1 && (b.revision, b.events[0].kind, b.events[0].key.clone()) == *exp,
            "watch a/: got {}, expected {exp:?}",
            describe(&b)
        );
    }
    expect_only_marker(ctx, &mut w, "a/end").await?;
    let (kvs, _) = s.range(&ctx.key("a/")).await.or_fail("range a/")?;
    let keys: Vec<Bytes> = kvs.into_iter().map(|kv| kv.key).collect();
    ensure!(
        keys == [ctx.key("a/end"), ctx.key("a/y")],
        "range a/ gave {keys:?}"
    );
    let (kvs, _) = s.range(&ctx.key("a")).await.or_fail("range a")?;
    let keys: Vec<Bytes> = kvs.into_iter().map(|kv| kv.key).collect();
    ensure!(
        keys == [ctx.key("a"), ctx.key("a/end"), ctx.key("a/y")],
        "range a (a byte prefix) gave {keys:?}"
    );
    Ok(())
}

/// Range returns keys sorted with the revision of a consistent snapshot,
/// also while another task commits.
pub async fn range_snapshot(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let mut last = 0;
    for chunk in 0..4 {
        let writes = (0..25)
            .map(|i| {
                let n = chunk * 25 + i;
                WriteOp::put(
                    ctx.key(&format!("r/{:03}", (n * 37) % 100)),
                    format!("v{n}"),
                )
            })
            .collect();
        last = commit_ok(s, vec![], writes).await?.revision;
    }
    let (kvs, rev) = s.range(&ctx.key("r/")).await.or_fail("range")?;
    ensure!(
        rev >= last,
        "range revision {rev} before the last commit {last}"
    );
    if ctx.exclusive {
        ensure!(rev == last, "range revision {rev}, last commit {last}");
    }
    ensure!(
        kvs.len() == 100,
        "range gave {} keys, expected 100",
        kvs.len()
    );
    for (i, kv) in kvs.iter().enumerate() {
        ensure!(
            kv.key == ctx.key(&format!("r/{i:03}")),
            "range key {i} is {} (not sorted?)",
            show(&kv.key)
        );
        ensure!(
            kv.mod_revision <= rev,
            "key {} has mod_revision {} above the range revision {rev}",
            show(&kv.key),
            kv.mod_revision
        );
        let got = s.get(&kv.key).await.or_fail("get")?;
        ensure!(
            got.as_ref() == Some(kv),
            "get {} = {got:?}, range gave {kv:?}",
            show(&kv.key)
        );
    }
    let (none, rev) = s.range(&ctx.key("nothing/")).await.or_fail("empty range")?;
    ensure!(
        none.is_empty() && rev > 0,
        "empty range gave {} keys at {rev}",
        none.len()
    );

    // Snapshots under a concurrent committer: each commit adds item i and
    // sets count = i, so a consistent snapshot has items 0..=count.
    let store = ctx.store.clone();
    let ns = ctx.ns.clone();
    // The writer pauses every 25 commits until the reader has read once, so
    // reads really interleave with commits whatever the scheduler does.
    let read_done = std::sync::Arc::new(tokio::sync::Notify::new());
    let read_done_w = read_done.clone();
    let writer = tokio::spawn(async move {
        let key = |k: String| Bytes::from([&ns[..], k.as_bytes()].concat());
        for i in 0..200 {
            if i % 25 == 0 {
                read_done_w.notified().await;
            }
            store
                .commit(
                    vec![],
                    vec![
                        WriteOp::put(key(format!("c/item/{i:04}")), "x"),
                        WriteOp::put(key("c/count".into()), i.to_string()),
                    ],
                )
                .await?;
            if i % 8 == 0 {
                tokio::task::yield_now().await;
            }
        }
        Ok::<_, StorageError>(())
    });
    let mut reads = 0;
    loop {
        let done = writer.is_finished();
        let (kvs, rev) = s
            .range(&ctx.key("c/"))
            .await
            .or_fail("range during commits")?;
        reads += 1;
        read_done.notify_one();
        let (count, items): (Vec<&KeyValue>, Vec<&KeyValue>) =
            kvs.iter().partition(|kv| kv.key == ctx.key("c/count"));
        let n: i64 = match count.first() {
            None => -1,
            Some(kv) => std::str::from_utf8(&kv.value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("bad count {kv:?}"))?,
        };
        ensure!(
            items.len() as i64 == n + 1,
            "inconsistent snapshot at {rev}: count {n} but {} items",
            items.len()
        );
        if let Some(kv) = count.first() {
            ensure!(
                kv.mod_revision <= rev,
                "count written at {} in the snapshot of {rev}",
                kv.mod_revision
            );
            let max = kvs.iter().map(|kv| kv.mod_revision).max().unwrap_or(0);
            ensure!(
                max == kv.mod_revision,
                "an item newer ({max}) than the count ({})",
                kv.mod_revision
            );
        }
        if done {
            ensure!(n == 199, "after the writer: count {n}");
            break;
        }
        tokio::task::yield_now().await;
    }
    writer
        .await
        .map_err(|e| format!("writer task: {e}"))?
        .map_err(|e| format!("writer: {e}"))?;
    ensure!(reads > 1, "no concurrent read");
    Ok(())
}

/// Revoking a lease deletes its keys in one commit; the lease is gone after;
/// a key rewritten with another lease (or none) moves off the old one.
pub async fn lease_revoke(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let l = s
        .grant_lease(Duration::from_secs(30))
        .await
        .or_fail("grant_lease")?;
    let c = commit_ok(
        s,
        vec![],
        vec![
            WriteOp::put_with_lease(ctx.key("l/k1"), "1", l),
            WriteOp::put_with_lease(ctx.key("l/k2"), "2", l),
            WriteOp::put(ctx.key("l/k3"), "3"),
        ],
    )
    .await?;
    let kv = get(ctx, "l/k1").await?.ok_or("l/k1 absent")?;
    ensure!(
        kv.lease == Some(l),
        "l/k1 has lease {:?}, expected {l}",
        kv.lease
    );
    let mut w = watch(ctx, &ctx.key("l/"), c.revision + 1).await?;
    s.revoke_lease(l).await.or_fail("revoke_lease")?;
    let b = next_batch(&mut w, "revoke").await?;
    let mut evs: Vec<_> = b
        .events
        .iter()
        .map(|e| (e.kind, e.key.clone(), e.value.clone(), e.prev_value.clone()))
        .collect();
    evs.sort_by(|a, b| a.1.cmp(&b.1));
    ensure!(
        evs == [
            (EventKind::Delete, ctx.key("l/k1"), None, Some("1".into())),
            (EventKind::Delete, ctx.key("l/k2"), None, Some("2".into())),
        ],
        "revoking a lease with two keys: {}",
        describe(&b)
    );
    ensure!(
        get(ctx, "l/k1").await?.is_none() && get(ctx, "l/k2").await?.is_none(),
        "leased keys survive revoke"
    );
    ensure!(
        get(ctx, "l/k3").await?.is_some(),
        "revoke deleted a key without lease"
    );
    let e = s
        .commit(
            vec![],
            vec![WriteOp::put_with_lease(ctx.key("l/k4"), "x", l)],
        )
        .await;
    ensure!(
        e == Err(StorageError::LeaseNotFound(l)),
        "put with a revoked lease: {e:?}"
    );
    ensure!(
        get(ctx, "l/k4").await?.is_none(),
        "put with a revoked lease wrote"
    );
    let r = s
        .commit(
            vec![Compare::absent(ctx.key("l/k3"))],
            vec![WriteOp::put_with_lease(ctx.key("l/k4"), "x", l)],
        )
        .await;
    ensure!(
        matches!(r, Ok(CommitResult { succeeded: false, .. })),
        "a failing compare with a put under a revoked lease: {r:?} (etcd checks leases only if the compares hold)"
    );
    let e = s.keep_alive(l).await;
    ensure!(
        e == Err(StorageError::LeaseNotFound(l)),
        "keep_alive of a revoked lease: {e:?}"
    );
    let e = s.revoke_lease(l).await;
    ensure!(
        e == Err(StorageError::LeaseNotFound(l)),
        "second revoke: {e:?}"
    );

    // Moving keys between leases.
    let l1 = s
        .grant_lease(Duration::from_secs(30))
        .await
        .or_fail("grant_lease")?;
    let l2 = s
        .grant_lease(Duration::from_secs(30))
        .await
        .or_fail("grant_lease")?;
    ensure!(l1 != l2, "two grants gave the same lease {l1}");
    commit_ok(
        s,
        vec![],
        vec![WriteOp::put_with_lease(ctx.key("l/m1"), "1", l1)],
    )
    .await?;
    commit_ok(
        s,
        vec![],
        vec![WriteOp::put_with_lease(ctx.key("l/m1"), "2", l2)],
    )
    .await?;
    commit_ok(
        s,
        vec![],
        vec![WriteOp::put_with_lease(ctx.key("l/m2"), "1", l2)],
    )
    .await?;
    commit_ok(s, vec![], vec![WriteOp::put(ctx.key("l/m2"), "2")]).await?;
    for _ in 0..4 {
        next_batch(&mut w, "puts").await?;
    }
    s.revoke_lease(l1).await.or_fail("revoke l1")?;
    ensure!(
        value_of(ctx, "l/m1").await? == Some("2".into()),
        "revoking the key's former lease deleted it"
    );
    expect_only_marker(ctx, &mut w, "l/marker").await?;
    s.revoke_lease(l2).await.or_fail("revoke l2")?;
    let b = next_batch(&mut w, "revoke l2").await?;
    ensure!(
        b.events.len() == 1
            && b.events[0].key == ctx.key("l/m1")
            && b.events[0].kind == EventKind::Delete,
        "revoking l2 should delete only l/m1: {}",
        describe(&b)
    );
    ensure!(
        value_of(ctx, "l/m2").await? == Some("2".into()),
        "a key put without lease was deleted with its former lease"
    );
    Ok(())
}

/// A lease that nobody keeps alive expires within TTL + 1 s, deleting its
/// keys, without anyone touching the store.
pub async fn lease_expiry(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let granted = Instant::now();
    let l = s.grant_lease(LEASE_TTL).await.or_fail("grant_lease")?;
    let c = commit_ok(
        s,
        vec![],
        vec![WriteOp::put_with_lease(ctx.key("e/k"), "v", l)],
    )
    .await?;
    let mut w = watch(ctx, &ctx.key("e/"), c.revision + 1).await?;
    let deadline = LEASE_TTL + LEASE_GRACE;
    let b = match tokio::time::timeout(deadline, w.next()).await {
        Err(_) => {
            return Err(format!(
                "the lease's key was not deleted within {deadline:?}"
            ))
        }
        Ok(None) => return Err("the watch ended".into()),
        Ok(Some(r)) => r.or_fail("watch")?,
    };
    let elapsed = granted.elapsed();
    ensure!(
        b.events.len() == 1
            && b.events[0].kind == EventKind::Delete
            && b.events[0].key == ctx.key("e/k"),
        "expiry: {}",
        describe(&b)
    );
    ensure!(
        elapsed + Duration::from_millis(100) >= LEASE_TTL,
        "the lease expired after {elapsed:?}, before its TTL {LEASE_TTL:?}"
    );
    ensure!(
        get(ctx, "e/k").await?.is_none(),
        "the expired lease's key is still there"
    );
    let e = s.keep_alive(l).await;
    ensure!(
        e == Err(StorageError::LeaseNotFound(l)),
        "keep_alive of an expired lease: {e:?}"
    );
    Ok(())
}

/// keep_alive restarts the TTL; the lease expires once keep-alives stop.
pub async fn lease_keep_alive(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let l = s.grant_lease(LEASE_TTL).await.or_fail("grant_lease")?;
    let c = commit_ok(
        s,
        vec![],
        vec![WriteOp::put_with_lease(ctx.key("k/k"), "v", l)],
    )
    .await?;
    let mut w = watch(ctx, &ctx.key("k/"), c.revision + 1).await?;
    let mut last = Instant::now();
    for _ in 0..8 {
        tokio::time::sleep(LEASE_TTL / 4).await;
        s.keep_alive(l).await.or_fail("keep_alive")?;
        last = Instant::now();
    }
    ensure!(
        get(ctx, "k/k").await?.is_some(),
        "a kept-alive lease's key vanished after {:?}",
        LEASE_TTL * 2
    );
    let deadline = LEASE_TTL + LEASE_GRACE;
    let b = match tokio::time::timeout(deadline, w.next()).await {
        Err(_) => {
            return Err(format!(
                "no expiry within {deadline:?} of the last keep-alive"
            ))
        }
        Ok(None) => return Err("the watch ended".into()),
        Ok(Some(r)) => r.or_fail("watch")?,
    };
    let elapsed = last.elapsed();
    ensure!(
        b.events.len() == 1 && b.events[0].kind == EventKind::Delete,
        "expiry after keep-alives: {}",
        describe(&b)
    );
    ensure!(
        elapsed + Duration::from_millis(100) >= LEASE_TTL,
        "the lease expired {elapsed:?} after its last keep-alive, before its TTL"
    );
    Ok(())
}

/// Watching from before a compaction fails with `Compacted`; from the
/// compaction revision on, it works.
pub async fn compaction(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let mut revs = Vec::new();
    for i in 0..5 {
        revs.push(put(ctx, "c/k", &i.to_string()).await?);
    }
    s.compact(revs[2]).await.or_fail("compact")?;
    let p = ctx.key("c/");
    match s.watch(&p, revs[0]).await {
        Err(StorageError::Compacted { compacted }) => {
            ensure!(
                compacted >= revs[2],
                "Compacted {{ compacted: {compacted} }}, compacted at {}",
                revs[2]
            );
        }
        Err(e) => return Err(format!("watch from before the compaction: {e}")),
        Ok(mut w) => match tokio::time::timeout(WATCH_TIMEOUT, w.next()).await {
            Ok(Some(Err(StorageError::Compacted { compacted }))) => {
                ensure!(
                    compacted >= revs[2],
                    "Compacted {{ compacted: {compacted} }}, compacted at {}",
                    revs[2]
                );
                let after = tokio::time::timeout(WATCH_TIMEOUT, w.next()).await;
                ensure!(
                    matches!(after, Ok(None)),
                    "the watch stream went on after Compacted"
                );
            }
            other => return Err(format!("watch from before the compaction gave {other:?}")),
        },
    }
    let mut w = watch(ctx, &p, revs[2]).await?;
    for (i, rev) in revs[2..].iter().enumerate() {
        let b = next_batch(&mut w, "watch from the compaction revision").await?;
        ensure!(
            b.revision == *rev
                && b.events[0].value.as_deref() == Some((i + 2).to_string().as_bytes()),
            "watch from the compaction revision: {}, expected {rev}",
            describe(&b)
        );
    }
    let e = s.compact(revs[1]).await;
    ensure!(
        matches!(e, Err(StorageError::Compacted { .. })),
        "compacting again before the compaction: {e:?}"
    );
    let cur = s.current_revision().await.or_fail("current_revision")?;
    let e = s.compact(cur + 1000).await;
    ensure!(e.is_err(), "compaction to a future revision: {e:?}");
    ensure!(
        value_of(ctx, "c/k").await? == Some("4".into()),
        "data after compaction"
    );
    let (kvs, _) = s.range(&p).await.or_fail("range after compaction")?;
    ensure!(kvs.len() == 1, "range after compaction: {kvs:?}");
    Ok(())
}

/// Committers racing with compares on the same key: exactly one wins each
/// round; increments with retries lose nothing.
pub async fn serializable_commits(ctx: &Ctx) -> CheckResult {
    const TASKS: usize = 4;
    const ROUNDS: usize = 25;
    let s = &*ctx.store;
    let key = ctx.key("cas");
    commit_ok(s, vec![], vec![WriteOp::put(key.clone(), "start")]).await?;
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (store, key, barrier) = (ctx.store.clone(), key.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for round in 0..ROUNDS {
                barrier.wait().await;
                let seen = store.get(&key).await?.map_or(0, |kv| kv.mod_revision);
                barrier.wait().await;
                let r = store
                    .commit(
                        vec![Compare::mod_revision(key.clone(), seen)],
                        vec![WriteOp::put(key.clone(), format!("{round}:{t}"))],
                    )
                    .await?;
                results.push((round, r));
            }
            Ok::<_, StorageError>(results)
        }));
    }
    let mut winners: Vec<Vec<(usize, Revision)>> = vec![Vec::new(); ROUNDS];
    for (t, task) in tasks.into_iter().enumerate() {
        let results = task
            .await
            .map_err(|e| format!("task: {e}"))?
            .map_err(|e| format!("committer: {e}"))?;
        for (round, r) in results {
            if r.succeeded {
                winners[round].push((t, r.revision));
            }
        }
    }
    let mut prev = 0;
    for (round, w) in winners.iter().enumerate() {
        ensure!(
            w.len() == 1,
            "round {round}: {} commits with the same compare succeeded: {w:?}",
            w.len()
        );
        ensure!(
            w[0].1 > prev,
            "round {round}: winner's revision {} not after {prev}",
            w[0].1
        );
        prev = w[0].1;
    }
    let last = winners[ROUNDS - 1][0];
    let v = s.get(&key).await.or_fail("get")?.map(|kv| kv.value);
    ensure!(
        v == Some(format!("{}:{}", ROUNDS - 1, last.0).into()),
        "final value {v:?}, last winner {}",
        last.0
    );

    // Read-modify-write increments with retry.
    let counter = ctx.key("counter");
    commit_ok(s, vec![], vec![WriteOp::put(counter.clone(), "0")]).await?;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (store, counter) = (ctx.store.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for _ in 0..ROUNDS {
                loop {
                    let kv = store.get(&counter).await?.expect("counter exists");
                    let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    let r = store
                        .commit(
                            vec![Compare::mod_revision(counter.clone(), kv.mod_revision)],
                            vec![WriteOp::put(counter.clone(), (n + 1).to_string())],
                        )
                        .await?;
                    if r.succeeded {
                        revs.push(r.revision);
                        break;
                    }
                }
            }
            Ok::<_, StorageError>(revs)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(
            task.await
                .map_err(|e| format!("task: {e}"))?
                .map_err(|e| format!("incrementer: {e}"))?,
        );
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    ensure!(all.len() == n, "two successful commits share a revision");
    let v = s.get(&counter).await.or_fail("get")?.map(|kv| kv.value);
    ensure!(
        v == Some((TASKS * ROUNDS).to_string().into()),
        "counter is {v:?} after {} increments",
        TASKS * ROUNDS
    );
    Ok(())
}

/// 1 MiB values round-trip through commit, get, range and watch.
pub async fn large_values(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let big = |seed: u32| -> Bytes {
        (0..(1u32 << 20))
            .map(|i| (i.wrapping_mul(31).wrapping_add(seed) % 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    };
    let (v1, v2) = (big(1), big(2));
    let start = s.current_revision().await.or_fail("current_revision")? + 1;
    let mut w = watch(ctx, &ctx.key("big/"), start).await?;
    commit_ok(s, vec![], vec![WriteOp::put(ctx.key("big/k"), v1.clone())]).await?;
    ensure!(
        value_of(ctx, "big/k").await? == Some(v1.clone()),
        "get of a 1 MiB value differs"
    );
    let (kvs, _) = s.range(&ctx.key("big/")).await.or_fail("range")?;
    ensure!(
        kvs.len() == 1 && kvs[0].value == v1,
        "range of a 1 MiB value differs"
    );
    // A ModRevision compare: a Value compare would carry a third MiB, over
    // etcd's default --max-request-bytes (1.5 MiB).
    let kv = get(ctx, "big/k").await?.ok_or("big/k absent")?;
    commit_ok(
        s,
        vec![Compare::mod_revision(ctx.key("big/k"), kv.mod_revision)],
        vec![WriteOp::put(ctx.key("big/k"), v2.clone())],
    )
    .await?;
    let b = next_batch(&mut w, "big put").await?;
    ensure!(
        b.events[0].value.as_ref() == Some(&v1),
        "watched 1 MiB value differs"
    );
    let b = next_batch(&mut w, "big overwrite").await?;
    ensure!(
        b.events[0].value.as_ref() == Some(&v2) && b.events[0].prev_value.as_ref() == Some(&v1),
        "watched 1 MiB overwrite differs"
    );
    Ok(())
}

/// Malformed commits (empty key, a key written twice) fail and write nothing.
pub async fn invalid_commits(ctx: &Ctx) -> CheckResult {
    let s = &*ctx.store;
    let start = s.current_revision().await.or_fail("current_revision")? + 1;
    let mut w = watch(ctx, &ctx.ns, start).await?;
    let cases = [
        (
            "an empty key",
            vec![
                WriteOp::put(ctx.key("i/1"), "1"),
                WriteOp::put(Bytes::new(), "x"),
            ],
        ),
        (
            "two puts of one key",
            vec![
                WriteOp::put(ctx.key("i/2"), "1"),
                WriteOp::put(ctx.key("i/2"), "2"),
            ],
        ),
        (
            "a put and a delete of one key",
            vec![
                WriteOp::put(ctx.key("i/3"), "1"),
                WriteOp::delete(ctx.key("i/3")),
            ],
        ),
    ];
    for (what, writes) in cases {
        let r = s.commit(vec![], writes).await;
        ensure!(r.is_err(), "a commit with {what} gave {r:?}");
    }
    let (kvs, _) = s.range(&ctx.key("i/")).await.or_fail("range")?;
    ensure!(kvs.is_empty(), "rejected commits wrote {kvs:?}");
    expect_only_marker(ctx, &mut w, "marker").await
}

/// Runs one check with [`CHECK_TIMEOUT`]; panics with its error (for tests).
pub async fn expect_pass(name: &str, check: impl Future<Output = CheckResult>) {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("storage conformance check `{name}` failed: {e}"),
        Err(_) => panic!("storage conformance check `{name}` timed out after {CHECK_TIMEOUT:?}"),
    }
}

/// Runs every check, each on a store from `factory`, one after another;
/// `Err` lists the failures. `exclusive`: as in [`Ctx`]; if false, the
/// `compaction` check is skipped.
pub async fn run_all(factory: &dyn Fn() -> Arc<dyn Storage>, exclusive: bool) -> CheckResult {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),*) => {$(
            if exclusive || stringify!($check) != "compaction" {
                let ctx = Ctx::new(factory(), exclusive);
                match tokio::time::timeout(CHECK_TIMEOUT, $check(&ctx)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => failures.push(format!("{}: {e}", stringify!($check))),
                    Err(_) => failures.push(format!("{}: timed out", stringify!($check))),
                }
            }
        )*};
    }
    run!(
        revision_per_commit,
        compare_atomicity,
        absent_compare,
        one_batch_per_commit,
        watch_replay_then_live,
        prev_values,
        prefix_isolation,
        range_snapshot,
        lease_revoke,
        lease_expiry,
        lease_keep_alive,
        compaction,
        serializable_commits,
        large_values,
        invalid_commits
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Expands to one `#[tokio::test]` per conformance check, each on a store
/// from the expression (evaluated per test, inside the async test, so it may
/// `.await`). `storage_conformance_tests!(shared: expr)` for a store shared
/// with other writers: see [the module documentation](crate::support::conformance).
#[macro_export]
macro_rules! storage_conformance_tests {
    (@tests $exclusive:expr, $factory:expr, [$($check:ident),* $(,)?]) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store: ::std::sync::Arc<dyn ::oxsdb::storage::Storage> = $factory;
                let ctx = $crate::support::conformance::Ctx::new(store, $exclusive);
                $crate::support::conformance::expect_pass(
                    stringify!($check),
                    $crate::support::conformance::$check(&ctx),
                )
                .await;
            }
        )*
    };
    (shared: $factory:expr) => {
        $crate::storage_conformance_tests!(@tests false, $factory, [
            revision_per_commit,
            compare_atomicity,
            absent_compare,
            one_batch_per_commit,
            watch_replay_then_live,
            prev_values,
            prefix_isolation,
            range_snapshot,
            lease_revoke,
            lease_expiry,
            lease_keep_alive,
            serializable_commits,
            large_values,
            invalid_commits,
        ]);
    };
    ($factory:expr) => {
        $crate::storage_conformance_tests!(@tests true, $factory, [
            revision_per_commit,
            compare_atomicity,
            absent_compare,
            one_batch_per_commit,
            watch_replay_then_live,
            prev_values,
            prefix_isolation,
            range_snapshot,
            lease_revoke,
            lease_expiry,
            lease_keep_alive,
            compaction,
            serializable_commits,
            large_values,
            invalid_commits,
        ]);
    };
}
