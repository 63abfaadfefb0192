//! A small blocking JSON-RPC 1.0 client over TCP, for every test that talks
//! to a server directly: requests with their replies, the notifications that
//! arrive meanwhile, `echo` requests answered on the way, and every wait
//! bounded. A lost connection is an `Err` from the `io::Result` methods (the
//! kill -9 and failover tests need that); [`Rpc::request`] panics instead,
//! for tests where any failure is the test's failure.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The longest single blocking read.
const READ_SLICE: Duration = Duration::from_millis(200);

/// How long [`Rpc::request`] waits for a reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to an OVSDB server.
pub struct Rpc {
    stream: TcpStream,
    buf: Vec<u8>,
    /// How far `buf` has been scanned for the end of its first message, so
    /// that a large message is scanned once, not once per read.
    scan: Scan,
    next_id: u64,
    /// Notifications received while waiting for replies with [`Rpc::call`].
    pub notifications: Vec<Value>,
}

/// The reply to one [`Rpc::request`], with the notifications that arrived
/// before it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The whole reply message.
    pub message: Value,
    /// Notifications (messages with a method and a null id) received before
    /// the reply, in arrival order.
    pub notifications: Vec<Value>,
}

impl Reply {
    /// `{"result": R}` or `{"error": E}` as in the reply message.
    pub fn outcome(&self) -> Value {
        match self.message.get("error") {
            Some(e) if !e.is_null() => json!({ "error": e }),
            _ => json!({ "result": self.message.get("result").cloned().unwrap_or(Value::Null) }),
        }
    }

    /// The result, `None` for an error reply.
    pub fn result(&self) -> Option<&Value> {
        match self.message.get("error") {
            Some(e) if !e.is_null() => None,
            _ => self.message.get("result"),
        }
    }
}

impl Rpc {
    /// Connects to `addr` (`127.0.0.1:PORT`).
    pub fn connect(addr: &str) -> io::Result<Rpc> {
        Rpc::from_stream(TcpStream::connect(addr)?)
    }

    /// A connection the server opened (an active remote, accepted by the test).
    pub fn from_stream(stream: TcpStream) -> io::Result<Rpc> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_SLICE))?;
        Ok(Rpc {
            stream,
            buf: Vec::new(),
            scan: Scan::default(),
            next_id: 1,
            notifications: Vec::new(),
        })
    }

    /// Connects to `addr`; panics if that fails.
    pub fn open(addr: &str) -> Rpc {
        Rpc::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    /// Connects, retrying for up to `timeout` (a server that is starting).
    pub fn connect_retry(addr: &str, timeout: Duration) -> Rpc {
        let deadline = Instant::now() + timeout;
        loop {
            match Rpc::connect(addr) {
                Ok(c) => return c,
                Err(e) if Instant::now() > deadline => panic!("connect {addr}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Sends one message.
    pub fn send(&mut self, msg: &Value) -> io::Result<()> {
        let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
        self.stream.write_all(&bytes)
    }

    /// The next complete message, or `Ok(None)` if none arrived within
    /// `timeout`. Echo requests are answered on the way.
    pub fn next_message(&mut self, timeout: Duration) -> io::Result<Option<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.scan.end(&self.buf) {
                let msg: Value = serde_json::from_slice(&self.buf[..end]).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad JSON from server: {e}"),
                    )
                })?;
                self.buf.drain(..end);
                self.scan = Scan::default();
                if msg.get("method").and_then(Value::as_str) == Some("echo")
                    && !msg.get("id").is_none_or(Value::is_null)
                {
                    let reply = json!({"id": msg["id"], "result": msg["params"], "error": null});
                    self.send(&reply)?;
                    continue;
                }
                return Ok(Some(msg));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            // Wait no longer than the caller asked.
            let left = deadline.saturating_duration_since(Instant::now());
            self.stream
                .set_read_timeout(Some(left.clamp(Duration::from_millis(1), READ_SLICE)))?;
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ))
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next message; panics if none arrives within [`REQUEST_TIMEOUT`]
    /// or the connection is lost.
    pub fn read_message(&mut self) -> Value {
        match self.next_message(REQUEST_TIMEOUT) {
            Ok(Some(v)) => v,
            Ok(None) => panic!("no message from the server within {REQUEST_TIMEOUT:?}"),
            Err(e) => panic!("reading from the server: {e}"),
        }
    }

    /// Sends a request with the next id; returns the id.
    fn send_request(&mut self, method: &str, params: Value) -> io::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"method": method, "params": params, "id": id}))?;
        Ok(id)
    }

    /// Reads until the reply with `id`; notifications on the way go to
    /// `notes`, other replies are dropped.
    fn reply_to(
        &mut self,
        id: u64,
        method: &str,
        timeout: Duration,
        notes: &mut Vec<Value>,
    ) -> io::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(msg) = self.next_message(left)? else {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no reply to {method} within {timeout:?}"),
                ));
            };
            if msg.get("id") == Some(&json!(id)) {
                return Ok(msg);
            }
            if msg.get("id").is_none_or(Value::is_null) && msg.get("method").is_some() {
                notes.push(msg);
            }
        }
    }

    /// Sends a request and waits (up to `timeout`) for its reply; the
    /// notifications that arrive meanwhile are kept in `notifications`.
    pub fn call(&mut self, method: &str, params: Value, timeout: Duration) -> io::Result<Value> {
        let id = self.send_request(method, params)?;
        let mut notes = std::mem::take(&mut self.notifications);
        let reply = self.reply_to(id, method, timeout, &mut notes);
        self.notifications = notes;
        reply
    }

    /// `transact`; `Ok(result array)` or an error for a JSON-RPC error.
    pub fn transact(&mut self, params: Value, timeout: Duration) -> io::Result<Value> {
        let reply = self.call("transact", params, timeout)?;
        match reply.get("error") {
            Some(e) if !e.is_null() => Err(io::Error::other(format!("transact error: {e}"))),
            _ => Ok(reply["result"].clone()),
        }
    }

    /// Sends a request and returns its reply with the notifications that
    /// arrived before it; panics on a lost connection or after
    /// [`REQUEST_TIMEOUT`].
    pub fn request(&mut self, method: &str, params: Value) -> Reply {
        let mut notifications = Vec::new();
        let message = self
            .send_request(method, params)
            .and_then(|id| self.reply_to(id, method, REQUEST_TIMEOUT, &mut notifications))
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        Reply {
            message,
            notifications,
        }
    }
}

/// A resumable search for the end of the first complete JSON value (an
/// object or array) of a buffer, skipping leading white space.
#[derive(Default)]
struct Scan {
    pos: usize,
    depth: usize,
    in_str: bool,
    esc: bool,
    started: bool,
}

impl Scan {
    /// The end of the first value of `buf`, scanning only what is new.
    fn end(&mut self, buf: &[u8]) -> Option<usize> {
        while self.pos < buf.len() {
            let b = buf[self.pos];
            self.pos += 1;
            if self.in_str {
                if self.esc {
                    self.esc = false;
                } else if b == b'\\' {
                    self.esc = true;
                } else if b == b'"' {
                    self.in_str = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_str = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.started = true;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.started && self.depth == 0 {
                        return Some(self.pos);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

/// Whether every operation of a transact result succeeded.
pub fn txn_ok(result: &Value) -> bool {
    result
        .as_array()
        .is_some_and(|ops| ops.iter().all(|o| o.get("error").is_none()))
}
