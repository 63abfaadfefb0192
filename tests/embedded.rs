//! The server's actors inside the test's own actix System, driven by the
//! in-process client: transact, monitor, and the update-before-reply order.

use oxsdb::actors::local_client::{ClientError, LocalClient};
use oxsdb::actors::server::{self, ServerConfig, Store};
use oxsdb::db::monitor::MonitorVersion;
use oxsdb::schema::DatabaseSchema;
use oxsdb::storage::keys::Keys;
use serde_json::json;
use std::sync::Arc;

async fn start() -> server::RunningServer {
    let schema =
        Arc::new(DatabaseSchema::from_file("examples/todo.ovsschema").expect("todo schema"));
    let config = ServerConfig {
        remotes: Vec::new(),
        tls: Default::default(),
        inactivity_probe: None,
        max_message_size: 1 << 20,
        store: Store::Memory,
        keys: Keys::new("ovsdb", "todo").expect("keys"),
        lock_ttl: std::time::Duration::from_secs(5),
        threads: 1,
    };
    server::start(config, vec![schema])
        .await
        .expect("server starts")
}

#[actix::test]
async fn transact_and_monitor_in_process() {
    let running = start().await;
    let client = LocalClient::new(running.registry.clone());
    let (initial, mut updates) = client
        .monitor(
            "todo",
            "m",
            MonitorVersion::V2,
            json!({"Item": {"columns": ["description"]}}),
        )
        .await
        .expect("monitor");
    assert_eq!(initial, json!({}));
    let r = client
        .transact(
            "todo",
            vec![
                json!({"op": "insert", "table": "Item", "uuid-name": "i", "row": {"description": "milk", "status": "todo"}}),
                json!({"op": "insert", "table": "List", "row": {"name": "l", "items": ["named-uuid", "i"]}}),
            ],
        )
        .await
        .expect("transact");
    let item = r[0]["uuid"][1].as_str().expect("uuid").to_string();
    // The update was delivered before the reply, so it is already waiting.
    let u = updates.try_recv().expect("update before reply");
    assert_eq!(
        u.body,
        json!({"Item": {item: {"insert": {"description": "milk"}}}})
    );

    let r = client
        .transact(
            "todo",
            vec![json!({"op": "insert", "table": "List", "row": {"name": "l"}})],
        )
        .await
        .expect("transact");
    assert_eq!(r[1]["error"], json!("constraint violation"), "{r}");
    assert!(
        updates.try_recv().is_err(),
        "a failed transaction sends no update"
    );

    let err = client
        .transact("nope", vec![])
        .await
        .expect_err("unknown db");
    assert!(matches!(err, ClientError::UnknownDatabase(_)));
    running.shutdown();
}

#[actix::test]
async fn server_database_lists_every_database() {
    let running = start().await;
    let client = LocalClient::new(running.registry.clone());
    let r = client
        .transact("_Server", vec![json!({"op": "select", "table": "Database", "where": [], "columns": ["name", "model", "connected", "leader"]})])
        .await
        .expect("select");
    let mut names: Vec<String> = r[0]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["name"].as_str().unwrap_or("").to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["_Server", "todo"]);
    assert!(r[0]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .all(|row| row["model"] == "standalone" && row["leader"] == true));
    let r = client
        .transact(
            "_Server",
            vec![json!({"op": "delete", "table": "Database", "where": []})],
        )
        .await
        .expect("transact");
    assert_eq!(r[0]["error"], json!("not allowed"), "{r}");
    running.shutdown();
}
