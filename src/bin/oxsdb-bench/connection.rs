//! One OVSDB JSON-RPC connection of the load tool: requests matched to their
//! replies by id, the server's `echo` probes answered (ovsdb-server drops an
//! idle client that ignores them), notifications stamped with the instant
//! they were read so that delivery latency does not include the tool's own
//! queueing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures_util::StreamExt;
use oxsdb::codec::framing::{encode_message, JsonCodec};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;

/// Replies may be whole databases (a 100,000-row snapshot is tens of MiB).
const MAX_MESSAGE: usize = 1 << 31;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A connection to an OVSDB server.
pub struct Connection {
    out: mpsc::UnboundedSender<Bytes>,
    pending: Pending,
    next_id: AtomicU64,
    /// Notifications (`update`, `update2`, `update3`, ...) with their arrival time.
    pub notifications: mpsc::UnboundedReceiver<(Instant, Value)>,
}

impl Connection {
    /// Connects to `tcp:HOST:PORT` or `unix:PATH`.
    pub async fn connect(remote: &str) -> Result<Connection> {
        if let Some(addr) = remote.strip_prefix("tcp:") {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .with_context(|| format!("connecting to {remote}"))?;
            stream.set_nodelay(true)?;
            let (r, w) = stream.into_split();
            Ok(Connection::start(r, w))
        } else if let Some(path) = remote.strip_prefix("unix:") {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .with_context(|| format!("connecting to {remote}"))?;
            let (r, w) = stream.into_split();
            Ok(Connection::start(r, w))
        } else {
            bail!("unsupported remote {remote:?}: use tcp:HOST:PORT or unix:PATH")
        }
    }

    fn start<R, W>(reader: R, mut writer: W) -> Connection
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (out, mut out_rx) = mpsc::unbounded_channel::<Bytes>();
        let (notify_tx, notifications) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        tokio::spawn(async move {
            while let Some(b) = out_rx.recv().await {
                if writer.write_all(&b).await.is_err() {
                    break;
                }
            }
        });
        let replies = pending.clone();
        let echo_out = out.clone();
        tokio::spawn(async move {
            let mut frames = FramedRead::new(reader, JsonCodec::with_max_size(MAX_MESSAGE));
            while let Some(frame) = frames.next().await {
                let msg = match frame {
                    Ok(msg) => msg,
                    Err(e) => {
                        // Otherwise the requests in flight only learn that
                        // the connection is gone, not why.
                        eprintln!("oxsdb-bench: connection lost: {e}");
                        break;
                    }
                };
                let at = Instant::now();
                let id = msg.get("id").cloned().unwrap_or(Value::Null);
                match msg.get("method").and_then(Value::as_str) {
                    Some("echo") if !id.is_null() => {
                        let params = msg.get("params").cloned().unwrap_or(json!([]));
                        let reply = json!({"id": id, "result": params, "error": null});
                        let _ = echo_out.send(encode_message(&reply));
                    }
                    Some(_) => {
                        let _ = notify_tx.send((at, msg));
                    }
                    None => {
                        let waiter = id
                            .as_u64()
                            .and_then(|id| replies.lock().ok().and_then(|mut p| p.remove(&id)));
                        if let Some(w) = waiter {
                            let _ = w.send(msg);
                        }
                    }
                }
            }
            // Dropping the waiters tells every pending request that the
            // connection is gone.
            if let Ok(mut p) = replies.lock() {
                p.clear();
            }
        });
        Connection {
            out,
            pending,
            next_id: AtomicU64::new(1),
            notifications,
        }
    }

    /// Sends a request and waits for its reply; a JSON-RPC error is an error.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value> {
        self.send_prepared(self.prepare(method, params)).await
    }

    /// Encodes a request to send later with [`send_prepared`](Self::send_prepared):
    /// timing only the send lets a scenario leave out the tool's own work of
    /// encoding (and freeing) a request of thousands of rows, tens of
    /// milliseconds that are no server's.
    pub fn prepare(&self, method: &str, params: Value) -> Prepared {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let msg = json!({"method": method, "params": params, "id": id});
        Prepared {
            id,
            method: method.to_string(),
            bytes: encode_message(&msg),
            ops: 0,
        }
    }

    /// Sends a prepared request and waits for its reply; a JSON-RPC error is an error.
    pub async fn send_prepared(&self, prepared: Prepared) -> Result<Value> {
        let Prepared {
            id, method, bytes, ..
        } = prepared;
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| anyhow!("connection state poisoned"))?
            .insert(id, tx);
        self.out
            .send(bytes)
            .map_err(|_| anyhow!("connection closed"))?;
        let mut reply = rx
            .await
            .map_err(|_| anyhow!("connection closed before the reply to {method}"))?;
        if let Some(e) = reply.get("error").filter(|e| !e.is_null()) {
            bail!("{method} failed: {e}");
        }
        // Moved out, not cloned: a snapshot's result is a whole database, and
        // copying it would time the tool rather than the server.
        Ok(reply
            .as_object_mut()
            .and_then(|o| o.remove("result"))
            .unwrap_or(Value::Null))
    }

    /// Runs a transaction; any operation's error (or a missing result) is an error.
    pub async fn transact(&self, db: &str, ops: Vec<Value>) -> Result<Vec<Value>> {
        self.transact_prepared(self.prepare_transact(db, ops)).await
    }

    /// Encodes a transaction to run later with [`transact_prepared`](Self::transact_prepared).
    pub fn prepare_transact(&self, db: &str, ops: Vec<Value>) -> Prepared {
        let n = ops.len();
        let mut params = vec![json!(db)];
        params.extend(ops);
        Prepared {
            ops: n,
            ..self.prepare("transact", Value::Array(params))
        }
    }

    /// Runs a prepared transaction, checked as [`transact`](Self::transact) checks it.
    pub async fn transact_prepared(&self, prepared: Prepared) -> Result<Vec<Value>> {
        let n = prepared.ops;
        let result = self.send_prepared(prepared).await?;
        let results = match result {
            Value::Array(r) => r,
            other => bail!("transact: unexpected result {other}"),
        };
        if let Some(e) = results
            .iter()
            .find(|r| r.get("error").is_some_and(|e| !e.is_null()))
        {
            bail!("transaction failed: {e}");
        }
        if results.len() < n {
            bail!("transaction: {} results for {n} operations", results.len());
        }
        Ok(results)
    }
}

/// A request encoded ahead of its sending.
pub struct Prepared {
    id: u64,
    method: String,
    bytes: Bytes,
    /// Operations of a transaction (0 for other requests).
    ops: usize,
}

/// The UUID string of an `insert` result.
pub fn inserted_uuid(result: &Value) -> Result<String> {
    result["uuid"][1]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("insert result without uuid: {result}"))
}

/// The `count` of an update/mutate/delete result.
pub fn count(result: &Value) -> Result<u64> {
    result["count"]
        .as_u64()
        .ok_or_else(|| anyhow!("result without count: {result}"))
}
