//! Embedding oxsdb in an actix application: start the server's actors in
//! your own System (here with no network listener at all), then use an
//! in-process client to transact and monitor without a socket.
//!
//! Run: `cargo run --example embedded`

use oxsdb::actors::local_client::LocalClient;
use oxsdb::actors::server::{self, ServerConfig, Store};
use oxsdb::db::monitor::MonitorVersion;
use oxsdb::schema::DatabaseSchema;
use oxsdb::storage::keys::Keys;
use serde_json::json;
use std::sync::Arc;

#[actix::main]
async fn main() -> anyhow::Result<()> {
    let schema = Arc::new(DatabaseSchema::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/todo.ovsschema"
    ))?);
    let config = ServerConfig {
        remotes: Vec::new(), // add "ptcp:6640" to also serve ovsdb-client and friends
        tls: Default::default(),
        inactivity_probe: None,
        max_message_size: oxsdb::codec::framing::DEFAULT_MAX_MESSAGE_SIZE,
        store: Store::Memory,
        keys: Keys::new("ovsdb", "todo")?,
        lock_ttl: std::time::Duration::from_secs(5),
        threads: 1,
    };
    let running = server::start(config, vec![schema]).await?;
    let client = LocalClient::new(running.registry.clone());

    let (initial, mut updates) = client
        .monitor(
            "todo",
            "everything",
            MonitorVersion::V2,
            json!({"List": {}, "Item": {}}),
        )
        .await?;
    println!("initial: {initial}");

    let result = client
        .transact(
            "todo",
            vec![
                json!({"op": "insert", "table": "Item", "uuid-name": "milk", "row": {"description": "milk", "status": "todo"}}),
                json!({"op": "insert", "table": "List", "row": {"name": "groceries", "items": ["named-uuid", "milk"]}}),
            ],
        )
        .await?;
    println!("transact: {result}");

    // The monitor's update for that transaction was delivered before the reply.
    if let Ok(update) = updates.try_recv() {
        println!("update2: {}", update.body);
    }

    let rows = client
        .transact(
            "todo",
            vec![json!({"op": "select", "table": "List", "where": [], "columns": ["name"]})],
        )
        .await?;
    println!("select: {rows}");
    running.shutdown();
    Ok(())
}
