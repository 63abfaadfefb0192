//! The commit protocol's speculation (DESIGN.md, "Commit protocol on
//! etcd"), driven through Database actors on a store whose commits wait at a
//! gate the test opens: the next group is executed on top of the group in
//! flight, and undone and executed again with it when it loses its race.

use crate::actors::database::{DatabaseActor, DbStatusChanged, InternalTransact, Sample, Shared};
use crate::schema::DatabaseSchema;
use crate::storage::keys::Keys;
use crate::storage::{
    CommitResult, Compare, KeyValue, LeaseId, MemoryStore, Revision, Storage, StorageError,
    WatchStream, WriteOp,
};
use actix::prelude::*;
use async_trait::async_trait;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A store whose commits wait while its gate is closed.
struct Gated {
    inner: Arc<MemoryStore>,
    closed: AtomicBool,
    opened: tokio::sync::Notify,
}

impl Gated {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        self.opened.notify_waiters();
    }

    async fn pass(&self) {
        loop {
            let opened = self.opened.notified();
            if !self.closed.load(Ordering::SeqCst) {
                return;
            }
            opened.await;
        }
    }
}

#[async_trait]
impl Storage for Gated {
    async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, Revision), StorageError> {
        self.inner.range(prefix).await
    }
    async fn range_at(
        &self,
        prefix: &[u8],
        revision: Revision,
    ) -> Result<Vec<KeyValue>, StorageError> {
        self.inner.range_at(prefix, revision).await
    }
    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StorageError> {
        self.inner.get(key).await
    }
    async fn commit(
        &self,
        compares: Vec<Compare>,
        writes: Vec<WriteOp>,
    ) -> Result<CommitResult, StorageError> {
        self.pass().await;
        self.inner.commit(compares, writes).await
    }
    async fn watch(&self, prefix: &[u8], from: Revision) -> Result<WatchStream, StorageError> {
        self.inner.watch(prefix, from).await
    }
    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.inner.current_revision().await
    }
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StorageError> {
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StorageError> {
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StorageError> {
        self.inner.revoke_lease(lease).await
    }
    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.inner.compact(revision).await
    }
    fn kind(&self) -> &'static str {
        "gated memory"
    }
}

/// Takes the status reports nobody reads here.
struct Sink;

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<DbStatusChanged> for Sink {
    type Result = ();
    fn handle(&mut self, _: DbStatusChanged, _: &mut Context<Self>) {}
}

fn schema() -> Arc<DatabaseSchema> {
    let j = json!({"name": "db", "version": "1.0.0", "tables": {"T": {
        "columns": {"name": {"type": "string"}, "n": {"type": "integer"}},
        "isRoot": true}}});
    Arc::new(DatabaseSchema::from_json(&j).expect("schema"))
}

/// A Database actor on `store` (a server of its own).
fn server(store: Arc<dyn Storage>) -> Addr<DatabaseActor> {
    let shared = Shared {
        status: Sink.start().recipient(),
        given_schema: Some(schema()),
        on_schema_changed: None,
    };
    let keys = Keys::with_service("s").expect("keys");
    DatabaseActor::shared(schema(), keys, store, Uuid::new_v4(), shared).start()
}

async fn transact(db: &Addr<DatabaseActor>, ops: Value) -> Value {
    let ops = ops.as_array().cloned().expect("ops");
    db.send(InternalTransact { ops })
        .await
        .expect("the actor answers")
}

fn add(n: i64) -> Value {
    json!([{"op": "mutate", "table": "T", "where": [["name", "==", "c"]],
            "mutations": [["n", "+=", n]]}])
}

fn read() -> Value {
    json!([{"op": "select", "table": "T", "where": [["name", "==", "c"]], "columns": ["n"]}])
}

/// The counter row as `db` sees it, once it is `n` (the watch may lag).
async fn wait_for(db: &Addr<DatabaseActor>, n: i64) {
    for _ in 0..500 {
        if transact(db, read()).await[0]["rows"] == json!([{"n": n}]) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the counter never read {n}");
}

/// Inserts the counter row with `n` once `db` has opened the database.
async fn insert_counter(db: &Addr<DatabaseActor>, n: i64) {
    let insert = json!([{"op": "insert", "table": "T", "row": {"name": "c", "n": n}}]);
    for _ in 0..500 {
        let r = transact(db, insert.clone()).await;
        if r[0]["uuid"].is_array() {
            return;
        }
        // Not opened yet ("not leader"): anything else is a failure.
        assert_eq!(r[0]["error"], "not leader", "{r}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the database never opened");
}

/// Transactions waiting to be executed on `db` (the group being built not counted).
async fn queued(db: &Addr<DatabaseActor>) -> usize {
    db.send(Sample).await.expect("sample").queued
}

fn gated() -> Arc<Gated> {
    Arc::new(Gated {
        inner: MemoryStore::new(),
        closed: AtomicBool::new(false),
        opened: tokio::sync::Notify::new(),
    })
}

#[actix::test]
async fn the_next_group_is_executed_while_one_is_in_flight() {
    let store = gated();
    let db = server(store.clone());
    insert_counter(&db, 1).await;
    store.close();
    let first = db.send(InternalTransact {
        ops: add(10).as_array().cloned().unwrap_or_default(),
    });
    let first = actix::spawn(first);
    // Sees the first one's change though the store has not taken it yet.
    let second = actix::spawn(
        db.send(InternalTransact {
            ops: json!([{"op": "mutate", "table": "T", "where": [["n", "==", 11]],
                     "mutations": [["n", "+=", 100]]}])
            .as_array()
            .cloned()
            .unwrap_or_default(),
        }),
    );
    for _ in 0..100 {
        if queued(&db).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(queued(&db).await, 0, "the second is executed, not queued");
    store.open();
    let (first, second) = (
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    );
    assert_eq!(first[0]["count"], 1, "{first}");
    assert_eq!(second[0]["count"], 1, "{second}");
    wait_for(&db, 111).await;
}

#[actix::test]
async fn a_lost_race_undoes_the_group_built_on_top_and_executes_both_again() {
    let store = gated();
    let one = server(store.clone());
    let two = server(store.inner.clone());
    insert_counter(&one, 0).await;
    wait_for(&two, 0).await;
    store.close();
    let inc = actix::spawn(one.send(InternalTransact {
        ops: add(1).as_array().cloned().unwrap_or_default(),
    }));
    let seen = actix::spawn(one.send(InternalTransact {
        ops: read().as_array().cloned().unwrap_or_default(),
    }));
    for _ in 0..100 {
        if queued(&one).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        queued(&one).await,
        0,
        "the read is executed on top of the increment"
    );
    // The other server commits first: the increment in flight fails its fence.
    let r = transact(&two, add(10)).await;
    assert_eq!(r[0]["count"], 1, "{r}");
    store.open();
    let (inc, seen) = (inc.await.unwrap().unwrap(), seen.await.unwrap().unwrap());
    assert_eq!(inc[0]["count"], 1, "{inc}");
    // Answered after its re-execution on top of both commits, never with
    // what it saw on top of the increment that lost (1).
    assert_eq!(seen[0]["rows"], json!([{"n": 11}]), "{seen}");
    wait_for(&one, 11).await;
    wait_for(&two, 11).await;
}
