//! The Session actor: one per client connection. Reads JSON-RPC messages,
//! routes each request to the actor that serves it, and writes replies and
//! notifications in the order those actors produced them.
//!
//! Back-pressure, as in ovsdb-server: while more than [`HIGH_WATER`] bytes
//! of output wait for the socket, the session reads no new requests, and
//! monitor updates that arrive meanwhile are merged per monitor (a row changed
//! ten times is sent once, in its latest state) instead of queued. A slow
//! client therefore costs the server at most one merged update per monitor
//! plus the replies to requests it already sent. A merged `update3` carries
//! the newest transaction id it covers; held-back updates go out before any
//! reply.
//!
//! The updates one commit brings several monitors of a session go out
//! together, in ovsdb-server's order of the session's monitors
//! ([`crate::db::monitor_order`]). The inactivity probe counts bytes
//! received and waiting output going out as activity
//! ([`crate::actors::activity`]).

use crate::actors::activity::{write_counting_drain, Activity, ActivityRead};
use crate::actors::database::{
    AddMonitor, CancelTxn, ChangeMonitor, Convert, RemoveMonitor, SetChangeAware, Transact,
};
use crate::actors::lock_status::{LockHold, LockStatus};
use crate::actors::lock_table::{Lock, LockMode, Unlock};
use crate::actors::registry::{DbEntry, Registry};
use crate::actors::shared_write::{Direct, SharedWrite};
use crate::actors::write_batch::WriteBatch;
use crate::actors::{
    CloseSession, LockEvent, MonitorCanceled, Notify, SendEncodedReply, SendReply, SessionGone,
    SessionHandle, SessionId, TxnBlocked,
};
use crate::codec::cond_change::{self, CondChange};
use crate::codec::framing::{encode_message as encode_json, FrameCodec, JsonCodec};
use crate::codec::jsonrpc::Message as RpcMessage;
use crate::codec::transact::{self, RawTransact};
use crate::data::fast_map::{FastMap, FastSet};
use crate::db::changes::ChangeSet;
use crate::db::execution::Op;
use crate::db::monitor::MonitorVersion;
use crate::db::monitor_order::MonitorOrder;
use crate::db::raw_condition::ChangeRequests;
use crate::db::rbac::Identity;
use crate::db::update_frame::update_frame;
use crate::error::OvsdbError;
use crate::parser::is_id;
use crate::schema::DatabaseSchema;
use actix::prelude::*;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;

/// Output bytes waiting for the socket above which the session stops reading.
pub const HIGH_WATER: usize = 64 * 1024;

/// The most read buffer an idle session keeps (tokio-util starts at 8 KiB).
const IDLE_READ_BUFFER: usize = 16 * 1024;

/// The read buffer a session starts again with after a big request: an empty
/// buffer would take the next request 8 bytes at a time, its room doubling
/// at each read (a dozen system calls for a 30 KiB request).
const FRESH_READ_BUFFER: usize = 8 * 1024;

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Per-connection settings.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Send an echo after this much silence, and close after as much again; `None` disables.
    pub inactivity_probe: Option<Duration>,
    /// Largest message accepted, in bytes.
    pub max_message_size: usize,
    /// The session's lane: the index of its arbiter among the session
    /// arbiters (see `SessionChannels::lane`).
    pub lane: usize,
    /// The remote's RBAC role (a Connection row's `role`; `None` when unset or empty).
    pub role: Option<std::sync::Arc<str>>,
    /// The peer's id: its client certificate's subject common name on
    /// `ssl:`/`pssl:` connections, `None` otherwise.
    pub peer_id: Option<std::sync::Arc<str>>,
    /// Only reads allowed (a Connection row's `read_only`): write
    /// operations, `lock`, `steal` and `unlock` are refused as ovsdb-server refuses them.
    pub read_only: bool,
    /// Where the session publishes its locks for its remote's status
    /// (active remotes only: ovsdb-server reports locks for no other).
    pub lock_status: Option<Arc<LockStatus>>,
}

/// One decoded message (or the end of the input) from the reader task.
#[derive(Message)]
#[rtype(result = "()")]
enum Incoming {
    Message(Value),
    /// A `monitor_cond_change` decoded straight from its bytes.
    CondChange(CondChange),
    /// A `transact` decoded straight from its bytes.
    Transact(RawTransact),
    Error(String),
    Eof,
}

/// The writer drained below the high-water mark.
#[derive(Message)]
#[rtype(result = "()")]
struct Drained;

struct Output {
    tx: tokio::sync::mpsc::UnboundedSender<Bytes>,
    /// Bytes queued for the writer task and not yet written.
    backlog: Arc<AtomicUsize>,
    /// The socket, written directly while the writer task is idle.
    direct: SharedWrite,
}

impl Output {
    fn send(&self, b: Bytes) {
        let rest = match self.direct.write_now(&b) {
            Direct::Sent => return,
            // An empty frame: the writer task only flushes.
            Direct::Unflushed => Bytes::new(),
            Direct::Partial(n) => b.slice(n.min(b.len())..),
        };
        // Whatever comes next queues behind this.
        self.direct.set_idle(false);
        self.backlog.fetch_add(rest.len(), Ordering::SeqCst);
        let _ = self.tx.send(rest);
    }

    fn backlogged(&self) -> bool {
        self.backlog.load(Ordering::SeqCst) > HIGH_WATER
    }
}

/// A monitor's updates held back while the output is backlogged, merged.
struct PendingUpdate {
    first: Notify,
    merged: ChangeSet,
    n: usize,
    /// The newest transaction merged in: the id an `update3` of the merge
    /// carries, since a client resuming from it must not get them again.
    last_txn_id: uuid::Uuid,
}

/// The Session actor.
pub struct Session {
    id: SessionId,
    peer: String,
    registry: Arc<Registry>,
    out: Output,
    config: SessionConfig,
    /// Monitor id (JSON text) -> (database, monitor id).
    monitors: HashMap<String, (String, Value)>,
    /// Request id (JSON text) of monitor requests in progress -> monitor id text.
    monitor_requests: FastMap<String, String>,
    /// Request id (JSON text) of lock requests in progress -> lock name.
    lock_requests: FastMap<String, String>,
    /// Locks requested and not yet unlocked, with how they were asked for.
    locks: HashMap<String, LockMode>,
    /// Locks owned.
    owned: HashSet<String>,
    change_aware: bool,
    last_rx: Instant,
    /// Bytes received and waiting output going out (recorded by the reader
    /// and writer tasks).
    activity: Activity,
    echo_sent: Option<Instant>,
    pending: Vec<(String, PendingUpdate)>,
    closing: bool,
    /// Set while a request is being served by another actor: like
    /// ovsdb-server, a session handles one request at a time (replies come
    /// in request order), except transactions blocked in a `wait`.
    busy: Arc<AtomicBool>,
    /// The request being awaited (JSON text of its id).
    awaiting: Option<String>,
    /// Wakes the reader when the session is no longer busy or backlogged.
    readable: Arc<tokio::sync::Notify>,
    /// Ids (JSON text) of transactions not yet answered.
    pending_txns: FastSet<String>,
    /// `monitor_cond_change` requests in progress: request id -> (old id,
    /// new id, the monitor order before a change of id), to undo on error.
    cond_changes: FastMap<String, (Value, Value, Option<MonitorOrder>)>,
    /// The monitors in ovsdb-server's order of its per-session table.
    order: MonitorOrder,
    /// Per database, the notifications of a commit received so far (the
    /// last one says so; see [`Notify::more`]).
    notify_batches: Vec<(Arc<str>, Vec<Notify>)>,
    /// When the inactivity-probe check is next due.
    probe_due: Option<actix::SpawnHandle>,
    /// How other actors reach this session, made once (every request carries it).
    handle: Option<SessionHandle>,
}

impl Session {
    /// Starts a session on an accepted connection, in the current arbiter.
    pub fn start<S>(
        stream: S,
        peer: String,
        registry: Arc<Registry>,
        config: SessionConfig,
    ) -> Addr<Session>
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let (rd, wr) = tokio::io::split(stream);
        let direct = SharedWrite::new(wr);
        let backlog = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let readable = Arc::new(tokio::sync::Notify::new());
        let busy = Arc::new(AtomicBool::new(false));
        let activity = Activity::new();
        Session::create(move |ctx| {
            let addr = ctx.address();
            // Writer: drains the output queue to the socket.
            let wbacklog = backlog.clone();
            let wreadable = readable.clone();
            let waddr = addr.clone();
            let wactivity = activity.clone();
            let mut wr = direct.clone();
            actix::spawn(async move {
                let mut batch = WriteBatch::default();
                loop {
                    // Nothing queued or held, and the last flush done (below):
                    // the session may write to the socket itself meanwhile.
                    wr.set_idle(rx.is_empty() && !batch.holds());
                    let Some(write) = batch.next(&mut rx).await else {
                        break;
                    };
                    wr.set_idle(false);
                    let b = write.bytes();
                    if write_counting_drain(&mut wr, b, &wactivity).await.is_err() {
                        break;
                    }
                    let before = wbacklog.fetch_sub(b.len(), Ordering::SeqCst);
                    let after = before.saturating_sub(b.len());
                    if before > HIGH_WATER && after <= HIGH_WATER {
                        wreadable.notify_waiters();
                        waddr.do_send(Drained);
                    }
                    if rx.is_empty() && !batch.holds() {
                        let _ = wr.flush().await;
                    }
                }
                let _ = wr.shutdown().await;
            });
            // Reader: decodes messages, pausing while output is backlogged.
            let rbacklog = backlog.clone();
            let rbusy = busy.clone();
            let rreadable = readable.clone();
            let raddr = addr.clone();
            let ractivity = activity.clone();
            let max = config.max_message_size;
            actix::spawn(async move {
                let rd = ActivityRead::new(rd, ractivity);
                let mut frames = FramedRead::new(rd, FrameCodec(JsonCodec::with_max_size(max)));
                loop {
                    let blocked = || {
                        rbacklog.load(Ordering::SeqCst) > HIGH_WATER || rbusy.load(Ordering::SeqCst)
                    };
                    while blocked() {
                        let wait = rreadable.notified();
                        if !blocked() {
                            break;
                        }
                        wait.await;
                    }
                    match frames.next().await {
                        Some(Ok(frame)) => {
                            // A big request (an OVN chassis's thousands of
                            // clauses) grows the buffer; an idle session
                            // should not keep that much per connection. The
                            // frame was cut from the buffer's allocation, which
                            // the buffer keeps even once the frame is gone: its
                            // size is the frame's and what remains together.
                            let buf = frames.read_buffer_mut();
                            if buf.is_empty()
                                && frame.text.len() + buf.capacity() > IDLE_READ_BUFFER
                            {
                                *buf = bytes::BytesMut::with_capacity(FRESH_READ_BUFFER);
                            }
                            // Requests of the plain shapes are decoded straight
                            // from the bytes; everything else as a JSON tree.
                            let incoming = if let Some(t) = transact::decode(&frame) {
                                Incoming::Transact(t)
                            } else if let Some(c) = cond_change::decode(&frame) {
                                Incoming::CondChange(c)
                            } else {
                                match frame.parse() {
                                    Ok(v) => Incoming::Message(v),
                                    Err(e) => {
                                        raddr.do_send(Incoming::Error(e.to_string()));
                                        break;
                                    }
                                }
                            };
                            drop(frame);
                            if raddr.send(incoming).await.is_err() {
                                break;
                            }
                        }
                        Some(Err(e)) => {
                            raddr.do_send(Incoming::Error(e.to_string()));
                            break;
                        }
                        None => {
                            raddr.do_send(Incoming::Eof);
                            break;
                        }
                    }
                }
            });
            Session {
                id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
                peer,
                registry,
                out: Output {
                    tx,
                    backlog,
                    direct,
                },
                config,
                monitors: HashMap::new(),
                monitor_requests: FastMap::default(),
                lock_requests: FastMap::default(),
                locks: HashMap::new(),
                owned: HashSet::new(),
                change_aware: false,
                last_rx: Instant::now(),
                activity,
                echo_sent: None,
                pending: Vec::new(),
                closing: false,
                busy,
                awaiting: None,
                readable,
                pending_txns: FastSet::default(),
                cond_changes: FastMap::default(),
                order: MonitorOrder::new(),
                notify_batches: Vec::new(),
                probe_due: None,
                handle: None,
            }
        })
    }

    /// Stops reading requests until `id` is answered (or blocks in a `wait`).
    fn await_reply(&mut self, id: &Value) {
        self.await_reply_text(id.to_string());
    }

    /// [`Session::await_reply`] for an id already in JSON text.
    fn await_reply_text(&mut self, id_text: String) {
        self.awaiting = Some(id_text);
        self.busy.store(true, Ordering::SeqCst);
    }

    /// Resumes reading if `id` is the request being awaited.
    fn answered(&mut self, id_text: &str) {
        if self.awaiting.as_deref() == Some(id_text) {
            self.awaiting = None;
            // An answer to an echo sent before may be waiting unread behind
            // the request just served: a fresh interval to read it.
            if self.echo_sent.is_some() {
                self.echo_sent = Some(Instant::now());
            }
            self.busy.store(false, Ordering::SeqCst);
            self.readable.notify_waiters();
        }
    }

    /// The last sign of life of the peer: a message or any bytes received,
    /// or output that had been waiting for the socket going out (see
    /// [`crate::actors::activity`]).
    fn last_activity(&self) -> Instant {
        self.last_rx.max(self.activity.last())
    }

    /// Activity after the echo went out answers it, as any activity does.
    fn note_activity(&mut self) -> Instant {
        let activity = self.last_activity();
        if self.echo_sent.is_some_and(|t| activity > t) {
            self.echo_sent = None;
        }
        activity
    }

    /// Schedules the next inactivity-probe check at its exact deadline.
    fn arm_probe(&mut self, ctx: &mut Context<Self>) {
        let Some(probe) = self.config.inactivity_probe else {
            return;
        };
        if let Some(h) = self.probe_due.take() {
            ctx.cancel_future(h);
        }
        let activity = self.note_activity();
        let due = match self.echo_sent {
            Some(t) => t + probe,
            None => activity + probe,
        };
        // While a request is being served the reader is paused, so an echo
        // reply could not be seen: like ovsdb-server, busy executing it, the
        // session does not probe then (checked again an interval later).
        let wait = if self.awaiting.is_some() {
            probe
        } else {
            due.saturating_duration_since(Instant::now())
        };
        self.probe_due = Some(ctx.run_later(wait, move |act, ctx| {
            act.probe_due = None;
            if act.awaiting.is_some() {
                return act.arm_probe(ctx);
            }
            let now = Instant::now();
            let activity = act.note_activity();
            match act.echo_sent {
                Some(t) if now.duration_since(t) >= probe => {
                    return act.close(ctx, "inactivity probe unanswered");
                }
                None if now.duration_since(activity) >= probe => {
                    act.send_json(&json!({"id": "echo", "method": "echo", "params": []}));
                    act.echo_sent = Some(now);
                }
                _ => {}
            }
            act.arm_probe(ctx);
        }));
    }

    /// Publishes where the session stands on lock `name` for its remote's status.
    fn publish_lock(&self, name: &str) {
        let Some(status) = &self.config.lock_status else {
            return;
        };
        let hold = self.locks.get(name).map(|mode| {
            if self.owned.contains(name) {
                LockHold::Held
            } else if *mode == LockMode::Wait {
                LockHold::Waiting
            } else {
                LockHold::Lost
            }
        });
        status.set(name, hold);
    }

    fn handle_of(&mut self, ctx: &Context<Self>) -> SessionHandle {
        if let Some(h) = &self.handle {
            return h.clone();
        }
        let h = Self::make_handle(self.id, self.config.lane, ctx);
        self.handle = Some(h.clone());
        h
    }

    fn make_handle(id: SessionId, lane: usize, ctx: &Context<Self>) -> SessionHandle {
        SessionHandle::of_lane(id, ctx.address(), lane)
    }

    fn send_json(&self, v: &Value) {
        self.out.send(encode_json(v));
    }

    fn reply(&self, id: Value, result: Result<Value, Value>) {
        let msg = match result {
            Ok(r) => RpcMessage::reply(id, r),
            Err(e) => RpcMessage::error(id, e),
        };
        self.out.send(msg.encode());
    }

    fn error(&self, id: Value, e: OvsdbError) {
        self.reply(id, Err(e.to_json()));
    }

    fn lookup_db(&self, method: &str, params: &Value) -> Result<DbEntry, OvsdbError> {
        let name = match params
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
        {
            Some(n) => n,
            None => {
                return Err(OvsdbError::syntax(
                    Some(params),
                    None,
                    format!("{method} request params must begin with <db-name>"),
                ))
            }
        };
        self.registry.get(name).ok_or_else(|| {
            OvsdbError::syntax(
                Some(params),
                Some("unknown database"),
                format!("{method} request specifies unknown database {name}"),
            )
        })
    }

    fn close(&mut self, ctx: &mut Context<Self>, why: &str) {
        if !self.closing {
            tracing::debug!(session = self.id, peer = %self.peer, "closing: {why}");
            self.closing = true;
            ctx.stop();
        }
    }

    fn handle_request(&mut self, method: &str, params: Value, id: Value, ctx: &mut Context<Self>) {
        // Borrowed, not cloned: a transaction's operations are moved out of
        // `params` whole, and copying them per request was a deep clone.
        let p: &[Value] = params.as_array().map(Vec::as_slice).unwrap_or(&[]);
        match method {
            "echo" => self.reply(id, Ok(params)),
            "list_dbs" => self.reply(id, Ok(json!(self.registry.names()))),
            "get_schema" => match self.lookup_db(method, &params) {
                Ok(e) => self.reply(id, Ok(e.schema.to_json())),
                Err(e) => self.error(id, e),
            },
            "get_server_id" => self.reply(id, Ok(json!(self.registry.server_id.to_string()))),
            "transact" => {
                let entry = match self.lookup_db(method, &params) {
                    Ok(e) => e,
                    Err(e) => return self.error(id, e),
                };
                let key = id.to_string();
                if self.pending_txns.contains(&key) {
                    let e =
                        OvsdbError::syntax(Some(&params), None, "transact: duplicate request ID");
                    return self.error(id, e);
                }
                let ops = match params {
                    Value::Array(a) => a.into_iter().skip(1).map(Op::Json).collect(),
                    _ => Vec::new(),
                };
                self.send_transact(&entry, key, id, ops, ctx);
            }
            "monitor" | "monitor_cond" | "monitor_cond_since" => {
                let version = match method {
                    "monitor" => MonitorVersion::V1,
                    "monitor_cond" => MonitorVersion::V2,
                    _ => MonitorVersion::V3,
                };
                let entry = match self.lookup_db(method, &params) {
                    Ok(e) => e,
                    Err(e) => return self.error(id, e),
                };
                // As ovsdb-server: `monitor` reads its first three params and
                // ignores the rest; the other two want exactly their count.
                let counted = match version {
                    MonitorVersion::V1 => p.len() >= 3,
                    MonitorVersion::V2 => p.len() == 3,
                    MonitorVersion::V3 => p.len() == 4,
                };
                if !counted {
                    return self.error(
                        id,
                        OvsdbError::syntax(Some(&params), None, "invalid parameters"),
                    );
                }
                // Checked before the id, as ovsdb-server does; the tables and
                // the last-txn-id are checked by the database, in that order.
                if !p[2].is_object() {
                    return self.error(
                        id,
                        OvsdbError::syntax(Some(&p[2]), None, "monitor-requests must be object"),
                    );
                }
                let monitor_id = p[1].clone();
                let key = monitor_id.to_string();
                if self.monitors.contains_key(&key) {
                    return self.error(
                        id,
                        OvsdbError::syntax(Some(&monitor_id), None, "duplicate monitor ID"),
                    );
                }
                let db = p[0].as_str().unwrap_or_default().to_string();
                self.monitors.insert(key.clone(), (db, monitor_id.clone()));
                // ovsdb-server adds it to its table before checking the
                // tables and the last-txn-id (see `settle` for errors).
                self.order.insert(&monitor_id);
                self.monitor_requests.insert(id.to_string(), key);
                self.await_reply(&id);
                let last_txn_id = p.get(3).filter(|_| version == MonitorVersion::V3).cloned();
                // Moved, not cloned: an OVN chassis's condition is thousands of clauses.
                let requests = take_param(params, 2);
                entry.addr.do_send(AddMonitor {
                    session: self.handle_of(ctx),
                    id,
                    monitor_id,
                    version,
                    requests,
                    last_txn_id,
                });
            }
            "monitor_cond_change" => {
                if p.len() != 3 {
                    return self.error(
                        id,
                        OvsdbError::syntax(Some(&params), None, "invalid parameters"),
                    );
                }
                let (monitor_id, new_monitor_id) = (p[0].clone(), p[1].clone());
                let requests = ChangeRequests::Json(take_param(params, 2));
                self.change_conditions(id, monitor_id, new_monitor_id, requests, ctx);
            }
            "monitor_cancel" => {
                if p.len() != 1 {
                    return self.reply(id, Err(json!("invalid parameters")));
                }
                let key = p[0].to_string();
                match self.monitors.remove(&key) {
                    Some((db, mid)) => {
                        self.pending.retain(|(k, _)| k != &key);
                        self.order.remove(&mid);
                        if let Some(e) = self.registry.get(&db) {
                            e.addr.do_send(RemoveMonitor {
                                session: self.id,
                                monitor_id: mid,
                            });
                        }
                        self.reply(id, Ok(json!({})));
                    }
                    None => self.reply(id, Err(json!("unknown monitor"))),
                }
            }
            "lock" | "steal" | "unlock" => {
                if self.config.read_only {
                    // ovsdb-server's reply: a bare string error, before any parameter check.
                    return self.reply(
                        id,
                        Err(json!(
                            "lock and unlock methods not allowed, DB server is read only."
                        )),
                    );
                }
                let name = match p {
                    [Value::String(n)] if is_id(n) => n.clone(),
                    _ => {
                        let msg = format!("{method} request params must be <id>");
                        return self.error(id, OvsdbError::syntax(Some(&params), None, msg));
                    }
                };
                let handle = self.handle_of(ctx);
                if method == "unlock" {
                    if self.locks.remove(&name).is_none() {
                        let msg = "unlock: \"unlock\" without \"lock\" or \"steal\"";
                        return self.error(id, OvsdbError::syntax(Some(&params), None, msg));
                    }
                    self.owned.remove(&name);
                    self.publish_lock(&name);
                    self.await_reply(&id);
                    self.registry.locks.do_send(Unlock {
                        session: handle,
                        id: Some(id),
                        name,
                    });
                } else {
                    if self.locks.contains_key(&name) {
                        let msg = format!("must issue \"unlock\" before new \"{method}\"");
                        return self.error(id, OvsdbError::syntax(Some(&params), None, msg));
                    }
                    let mode = if method == "lock" {
                        LockMode::Wait
                    } else {
                        LockMode::Steal
                    };
                    self.locks.insert(name.clone(), mode);
                    self.lock_requests.insert(id.to_string(), name.clone());
                    self.await_reply(&id);
                    self.registry.locks.do_send(Lock {
                        session: handle,
                        id,
                        name,
                        mode,
                    });
                }
            }
            "set_db_change_aware" => match p {
                [Value::Bool(b)] => {
                    self.change_aware = *b;
                    self.registry.set_change_aware(self.id, *b);
                    for (_, e) in self.registry.all() {
                        e.addr.do_send(SetChangeAware {
                            session: self.id,
                            aware: *b,
                        });
                    }
                    self.reply(id, Ok(json!({})));
                }
                _ => {
                    let msg = "set_db_change_aware: true or false parameter expected";
                    self.error(id, OvsdbError::syntax(Some(&params), None, msg))
                }
            },
            "convert" => {
                let entry = match self.lookup_db(method, &params) {
                    Ok(e) => e,
                    Err(e) => return self.error(id, e),
                };
                // As ovsdb-server: only a connection without a role may convert.
                if let Some(who) =
                    Identity::new(self.config.role.as_ref(), self.config.peer_id.as_ref())
                {
                    return self.error(id, who.convert_denied(&entry.schema.name));
                }
                if p.len() != 2 {
                    return self.error(
                        id,
                        OvsdbError::syntax(Some(&params), None, "array expected"),
                    );
                }
                let schema = match DatabaseSchema::from_json(&p[1]) {
                    Ok(s) => Arc::new(s),
                    Err(e) => return self.error(id, e),
                };
                let name = p[0].as_str().unwrap_or_default().to_string();
                if schema.name != name {
                    let msg = format!(
                        "new schema name ({}) does not match database name ({name})",
                        schema.name
                    );
                    return self.reply(
                        id,
                        Err(OvsdbError::new("invalid parameters", msg).to_json()),
                    );
                }
                let registry = self.registry.clone();
                self.await_reply(&id);
                entry.addr.do_send(Convert {
                    session: self.handle_of(ctx),
                    id,
                    schema,
                    on_done: Box::new(move |s| {
                        crate::actors::server_db::database_converted(&registry, &name, s)
                    }),
                });
            }
            _ => self.reply(id, Err(json!("unknown method"))),
        }
    }

    /// Hands a transaction to its database; the session reads nothing more
    /// until it is answered.
    fn send_transact(
        &mut self,
        entry: &DbEntry,
        key: String,
        id: Value,
        ops: Vec<Op>,
        ctx: &mut Context<Self>,
    ) {
        self.pending_txns.insert(key.clone());
        self.await_reply_text(key);
        entry.addr.do_send(Transact {
            session: self.handle_of(ctx),
            id,
            ops,
            owned_locks: self.owned.iter().cloned().collect(),
            received: Instant::now(),
            rbac: Identity::new(self.config.role.as_ref(), self.config.peer_id.as_ref()),
            read_only: self.config.read_only,
        });
    }

    /// A `transact` decoded from its bytes: sent on as it is when its
    /// database exists and its id is not in use, else the ordinary way,
    /// which gives ovsdb-server's error.
    fn raw_transact(&mut self, t: RawTransact, ctx: &mut Context<Self>) {
        let key = t.id.to_string();
        let entry = match self.registry.get(&t.db) {
            Some(e) if !self.pending_txns.contains(&key) => e,
            _ => {
                let params = t.params_json();
                return self.handle_request("transact", params, t.id, ctx);
            }
        };
        let ops = t.ops.into_iter().map(Op::Raw).collect();
        self.send_transact(&entry, key, t.id, ops, ctx);
    }

    /// A message arrived: the peer is alive, and (as ovsdb-server, which
    /// sends every held-back update before any reply, backlog or not) the
    /// reply to it must not overtake the updates held back.
    fn received(&mut self) {
        self.last_rx = Instant::now();
        self.echo_sent = None;
        if !self.pending.is_empty() {
            self.flush_pending();
        }
    }

    /// `monitor_cond_change`, its parameters checked for number.
    fn change_conditions(
        &mut self,
        id: Value,
        monitor_id: Value,
        new_monitor_id: Value,
        requests: ChangeRequests,
        ctx: &mut Context<Self>,
    ) {
        let key = monitor_id.to_string();
        let Some((db, _)) = self.monitors.get(&key).cloned() else {
            return self.error(
                id,
                OvsdbError::syntax(Some(&monitor_id), None, "unknown monitor session"),
            );
        };
        let new_key = new_monitor_id.to_string();
        if new_key != key && self.monitors.contains_key(&new_key) {
            return self.error(
                id,
                OvsdbError::syntax(Some(&new_monitor_id), None, "duplicate monitor ID"),
            );
        }
        let Some(entry) = self.registry.get(&db) else {
            return self.error(
                id,
                OvsdbError::syntax(Some(&monitor_id), None, "unknown monitor session"),
            );
        };
        let before = (new_key != key).then(|| {
            let before = self.order.clone();
            self.order.remove(&monitor_id);
            self.order.insert(&new_monitor_id);
            before
        });
        self.monitors.remove(&key);
        self.monitors.insert(new_key, (db, new_monitor_id.clone()));
        self.cond_changes.insert(
            id.to_string(),
            (monitor_id.clone(), new_monitor_id.clone(), before),
        );
        self.await_reply(&id);
        entry.addr.do_send(ChangeMonitor {
            session: self.handle_of(ctx),
            id,
            monitor_id,
            new_monitor_id,
            requests,
        });
    }

    /// Sends a notification: its frame, encoded by the Monitor actor once
    /// for every session sharing it.
    fn deliver(&self, n: &Notify) {
        let metrics = &self.registry.metrics;
        metrics.notifications.inc();
        metrics.notification_bytes.inc_by(n.frame.len() as u64);
        self.out.send(n.frame.clone());
    }

    fn flush_pending(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        // ovsdb-server sends a session's held-back updates in one walk of its monitors.
        pending.sort_by_cached_key(|(_, p)| self.order.rank(&p.first.monitor_id));
        for (_, p) in pending {
            if p.n == 1 {
                self.deliver(&p.first);
            } else if let Some(body) = p.first.monitor.update(&p.first.schema, &p.merged) {
                let mut n = p.first.clone();
                n.body = encode_json(&body);
                n.txn_id = p.last_txn_id;
                n.frame = update_frame(n.monitor.version, &n.monitor_id, &n.txn_id, &n.body);
                self.deliver(&n);
            }
        }
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.registry
            .add_session(self.id, ctx.address().recipient());
        self.arm_probe(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(s) = &self.config.lock_status {
            s.clear();
        }
        self.registry.remove_session(self.id);
        let gone = SessionGone { id: self.id };
        self.registry.locks.do_send(gone);
        for (_, e) in self.registry.all() {
            e.addr.do_send(gone);
        }
    }
}

impl Handler<Incoming> for Session {
    type Result = ();
    fn handle(&mut self, m: Incoming, ctx: &mut Context<Self>) {
        match m {
            Incoming::Eof => self.close(ctx, "connection closed by peer"),
            Incoming::Error(e) => {
                tracing::warn!(session = self.id, peer = %self.peer, "{e}; closing the connection");
                self.close(ctx, &e)
            }
            Incoming::CondChange(c) => {
                self.received();
                let requests = ChangeRequests::Raw(c.requests);
                self.change_conditions(c.id, c.monitor_id, c.new_monitor_id, requests, ctx);
            }
            Incoming::Transact(t) => {
                self.received();
                self.raw_transact(t, ctx);
            }
            Incoming::Message(v) => {
                self.received();
                match RpcMessage::from_json(v) {
                    Ok(RpcMessage::Request { method, params, id }) => {
                        self.handle_request(&method, params, id, ctx)
                    }
                    Ok(RpcMessage::Notification { method, params }) => {
                        if method == "cancel" {
                            if let Some([tid]) = params.as_array().map(Vec::as_slice) {
                                for (_, e) in self.registry.all() {
                                    e.addr.do_send(CancelTxn {
                                        session: self.id,
                                        id: tid.clone(),
                                    });
                                }
                            }
                        }
                    }
                    Ok(m) if m.is_echo_reply() => {}
                    Ok(m) => {
                        // ovsdb-server sends no requests but echo: any other reply or error is unexpected.
                        tracing::warn!(session = self.id, peer = %self.peer, "received unexpected {} message; closing the connection", m.kind().as_str());
                        self.close(ctx, "unexpected reply")
                    }
                    Err(e) => {
                        tracing::warn!(session = self.id, peer = %self.peer, "received bad JSON-RPC message: {e}; closing the connection");
                        self.close(ctx, "bad JSON-RPC message")
                    }
                }
            }
        }
    }
}

impl Session {
    /// The bookkeeping of a request answered with `result` (its error, or
    /// the result when it is at hand): pending state cleared, monitors and
    /// locks kept or dropped, earlier updates sent first.
    fn settle(&mut self, id: &Value, result: Result<Option<&Value>, ()>) {
        let id_text = id.to_string();
        self.pending_txns.remove(&id_text);
        self.answered(&id_text);
        if let Some((old, new, before)) = take(&mut self.cond_changes, &id_text) {
            if result.is_err() {
                if let Some(entry) = self.monitors.remove(&new.to_string()) {
                    self.monitors.insert(old.to_string(), (entry.0, old));
                }
                if let Some(before) = before {
                    self.order = before;
                }
            }
        }
        if let Some(key) = take(&mut self.monitor_requests, &id_text) {
            if result.is_err() {
                if let Some((_, mid)) = self.monitors.remove(&key) {
                    self.order.remove(&mid);
                }
            }
        }
        if let Some(name) = take(&mut self.lock_requests, &id_text) {
            if result.ok().flatten().and_then(|r| r.get("locked")) == Some(&Value::Bool(true)) {
                self.owned.insert(name.clone());
            }
            self.publish_lock(&name);
        }
        // Earlier updates first: a reply must not overtake the updates it caused.
        if !self.pending.is_empty() {
            self.flush_pending();
        }
    }
}

/// Removes `key` from `map`. Most replies answer a transaction, and the
/// maps of other requests in progress are then empty: not hashing the id for
/// them is worth the check.
fn take<V>(map: &mut FastMap<String, V>, key: &str) -> Option<V> {
    if map.is_empty() {
        None
    } else {
        map.remove(key)
    }
}

impl Handler<SendReply> for Session {
    type Result = ();
    fn handle(&mut self, m: SendReply, _: &mut Context<Self>) {
        self.settle(&m.id, m.result.as_ref().map(Some).map_err(|_| ()));
        self.reply(m.id, m.result);
    }
}

impl Handler<SendEncodedReply> for Session {
    type Result = ();
    fn handle(&mut self, m: SendEncodedReply, _: &mut Context<Self>) {
        self.settle(&m.id, Ok(None));
        self.out.send(m.frame);
    }
}

impl Handler<Notify> for Session {
    type Result = ();
    fn handle(&mut self, n: Notify, _: &mut Context<Self>) {
        // The common case, a commit's only update for this session: no
        // batch to gather or order.
        if n.more == 0 && !self.notify_batches.iter().any(|(db, _)| *db == n.db) {
            let hold = self.holding_updates();
            return self.take_update(n, hold);
        }
        let Some(mut batch) = take_when_complete(&mut self.notify_batches, n.db.clone(), n.more, n)
        else {
            return;
        };
        // ovsdb-server sends one commit's updates in one walk of its
        // monitors, or holds them all back: a backlog never splits a commit.
        batch.sort_by_cached_key(|n| self.order.rank(&n.monitor_id));
        let hold = self.holding_updates();
        for n in batch {
            self.take_update(n, hold);
        }
    }
}

/// Param `i` of a request, moved out of the params.
fn take_param(params: Value, i: usize) -> Value {
    match params {
        Value::Array(mut a) if a.len() > i => a.swap_remove(i),
        _ => Value::Null,
    }
}

/// Adds `item` to `db`'s batch in `batches`; when `more` says it is the
/// last one, returns the whole batch (in arrival order) and forgets it.
fn take_when_complete<T>(
    batches: &mut Vec<(Arc<str>, Vec<T>)>,
    db: Arc<str>,
    more: usize,
    item: T,
) -> Option<Vec<T>> {
    let i = match batches.iter().position(|(d, _)| *d == db) {
        Some(i) => i,
        None => {
            batches.push((db, Vec::new()));
            batches.len() - 1
        }
    };
    batches[i].1.push(item);
    if more > 0 {
        return None;
    }
    Some(batches.swap_remove(i).1)
}

impl Session {
    /// Whether updates are held back now: the output is backlogged, or some
    /// are held already (a later one must not overtake them).
    fn holding_updates(&self) -> bool {
        self.out.backlogged() || !self.pending.is_empty()
    }

    /// Sends one monitor update, or holds it back (merged with the ones
    /// held back before) when `hold`.
    fn take_update(&mut self, n: Notify, hold: bool) {
        let key = &*n.monitor_key;
        let known = match self.monitors.get(key) {
            Some((db, _)) => **db == *n.db,
            // Computed before a `monitor_cond_change` to a new id took
            // effect in the database: it belongs before that change's reply,
            // under the old id, as ovsdb-server sends it.
            None => self.cond_changes.values().any(|(old, new, _)| {
                *old == n.monitor_id
                    && self
                        .monitors
                        .get(&new.to_string())
                        .is_some_and(|(db, _)| **db == *n.db)
            }),
        };
        if !known {
            return;
        }
        if let Some((_, p)) = self.pending.iter_mut().find(|(k, _)| k == key) {
            p.merged = p.merged.merge(&n.changes);
            p.n += 1;
            self.registry.metrics.merged.inc();
            p.last_txn_id = n.txn_id;
            return;
        }
        if hold {
            let merged = (*n.changes).clone();
            let last_txn_id = n.txn_id;
            self.pending.push((
                key.to_owned(),
                PendingUpdate {
                    first: n,
                    merged,
                    n: 1,
                    last_txn_id,
                },
            ));
        } else {
            self.deliver(&n);
        }
    }
}

impl Handler<Drained> for Session {
    type Result = ();
    fn handle(&mut self, _: Drained, _: &mut Context<Self>) {
        self.flush_pending();
    }
}

impl Handler<LockEvent> for Session {
    type Result = ();
    fn handle(&mut self, m: LockEvent, _: &mut Context<Self>) {
        if !self.locks.contains_key(&m.name) {
            return;
        }
        if m.method == "locked" {
            self.owned.insert(m.name.clone());
        } else {
            self.owned.remove(&m.name);
        }
        self.publish_lock(&m.name);
        self.send_json(&json!({"id": null, "method": m.method, "params": [m.name]}));
    }
}

impl Handler<MonitorCanceled> for Session {
    type Result = ();
    /// The database sends a conversion's cancellations in ovsdb-server's order.
    fn handle(&mut self, m: MonitorCanceled, _: &mut Context<Self>) {
        let key = m.monitor_id.to_string();
        if self.monitors.remove(&key).is_some() {
            self.pending.retain(|(k, _)| *k != key);
            self.order.remove(&m.monitor_id);
            self.send_json(
                &json!({"id": null, "method": "monitor_canceled", "params": [m.monitor_id]}),
            );
        }
    }
}

impl Handler<CloseSession> for Session {
    type Result = ();
    fn handle(&mut self, m: CloseSession, ctx: &mut Context<Self>) {
        self.close(ctx, &m.reason);
    }
}

/// A new inactivity probe for a session already open (its remote's
/// options changed: ovsdb-server applies the probe to every session of the remote).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct SetInactivityProbe(pub Option<Duration>);

impl Handler<SetInactivityProbe> for Session {
    type Result = ();
    fn handle(&mut self, m: SetInactivityProbe, ctx: &mut Context<Self>) {
        if self.config.inactivity_probe == m.0 {
            return;
        }
        self.config.inactivity_probe = m.0;
        match m.0 {
            // Counted from the last activity, as reconnect.c's deadline is.
            Some(_) => self.arm_probe(ctx),
            None => {
                if let Some(h) = self.probe_due.take() {
                    ctx.cancel_future(h);
                }
                self.echo_sent = None;
            }
        }
    }
}

impl Handler<TxnBlocked> for Session {
    type Result = ();
    fn handle(&mut self, m: TxnBlocked, _: &mut Context<Self>) {
        self.answered(&m.id.to_string());
    }
}
