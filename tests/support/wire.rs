//! Wire-level plumbing for tests that talk raw bytes to a server over TCP:
//! starting the reference `ovsdb-server` (several databases at once, optionally
//! with a database-configured remote whose inactivity probe is short) or the
//! `oxsdb` binary, and connections whose every received message — and the
//! moment the server closes — is recorded with its arrival time.
//!
//! Everything here is blocking `std`: one reader thread per connection turns
//! the byte stream into [`Event`]s on a channel.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use super::process::Kind;
use super::process::{Oxsdb, ServerProcess};
use super::reference::ReferenceServer;

/// How to start a server for one scenario.
#[derive(Clone, Debug, Default)]
pub struct ServerOpts {
    pub schemas: Vec<PathBuf>,
    /// Extra command-line arguments for oxsdb only.
    pub oxsdb_args: Vec<String>,
    /// Extra command-line arguments for ovsdb-server only.
    pub reference_args: Vec<String>,
    /// An inactivity probe in ms for the connections the scenario opens. oxsdb
    /// gets `--inactivity-probe=MS`; ovsdb-server, whose command-line remotes
    /// always use the 5 s default, gets a database-configured remote
    /// (`db:OVN_Northbound,NB_Global,connections` with a `Connection` row
    /// whose `inactivity_probe` is MS) and the scenario connects to that one.
    /// The same `NB_Global`/`Connection` rows are inserted into oxsdb, so the
    /// databases hold the same data on both sides.
    pub probe_ms: Option<u64>,
}

/// The process behind a [`WireServer`].
enum Process {
    Reference(ReferenceServer),
    Oxsdb(Oxsdb, tempfile::TempDir),
}

/// A running server, killed on drop.
pub struct WireServer {
    /// Which server.
    pub kind: Kind,
    process: Process,
    /// The port scenario connections go to.
    pub port: u16,
}

/// The rows that make ovsdb-server listen on a second port with a short probe.
fn probe_remote_txn(probe_ms: u64) -> Value {
    json!({"method": "transact", "id": "setup", "params": ["OVN_Northbound",
        {"op": "insert", "table": "Connection", "uuid-name": "c",
         "row": {"target": "ptcp:0:127.0.0.1", "inactivity_probe": probe_ms}},
        {"op": "insert", "table": "NB_Global",
         "row": {"connections": ["named-uuid", "c"]}}]})
}

impl WireServer {
    /// Starts a server of `kind` for a scenario.
    pub fn start(kind: Kind, opts: &ServerOpts) -> WireServer {
        match kind {
            Kind::Reference => Self::start_reference(opts),
            Kind::Oxsdb => Self::start_oxsdb(opts),
        }
    }

    /// ovsdb-server serving a fresh database file per schema.
    pub fn start_reference(opts: &ServerOpts) -> WireServer {
        let mut args = opts.reference_args.clone();
        if opts.probe_ms.is_some() {
            args.push("--remote=db:OVN_Northbound,NB_Global,connections".into());
        }
        let reference = ReferenceServer::start_with(&opts.schemas, &args);
        let port = reference.port;
        let mut server = WireServer {
            kind: Kind::Reference,
            process: Process::Reference(reference),
            port,
        };
        server.wait_for_server_db(opts.schemas.len() + 1);
        if let Some(ms) = opts.probe_ms {
            server.setup_probe(ms);
            server.port = server.wait_for_logged_port(1);
        }
        server
    }

    fn process(&self) -> &ServerProcess {
        match &self.process {
            Process::Reference(r) => r,
            Process::Oxsdb(o, _) => o,
        }
    }

    fn process_mut(&mut self) -> &mut ServerProcess {
        match &mut self.process {
            Process::Reference(r) => r,
            Process::Oxsdb(o, _) => o,
        }
    }

    fn wait_for_logged_port(&mut self, index: usize) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(p) = self.process().logged_ports().get(index) {
                return *p;
            }
            if !self.alive() {
                panic!("ovsdb-server exited; output:\n{}", self.process().output());
            }
            if Instant::now() > deadline {
                panic!(
                    "ovsdb-server did not log its port #{index} within 20 s; output:\n{}",
                    self.process().output()
                );
            }
            thread::sleep(Duration::from_millis(3));
        }
    }

    /// Waits until `_Server`'s `Database` table has `n` rows: ovsdb-server
    /// fills it in its main loop a moment after it starts listening, and a
    /// client that comes too early sees it empty.
    fn wait_for_server_db(&mut self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut c = Conn::open(self.port);
        let mut k = 0;
        loop {
            k += 1;
            let id = json!(format!("ready{k}"));
            c.send_json(
                &json!({"method": "transact", "id": id, "params": ["_Server",
                {"op": "select", "table": "Database", "where": [], "columns": ["name"]}]}),
            );
            let reply = c.wait_for(&|v: &Value| v["id"] == id, Duration::from_secs(5));
            let rows = reply
                .as_ref()
                .and_then(|r| r["result"][0]["rows"].as_array())
                .map_or(0, Vec::len);
            if rows >= n {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: _Server.Database has {rows} rows, not {n}; last reply {reply:?}",
                    self.kind.name()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
        c.close();
    }

    /// Inserts the `Connection` rows of [`probe_remote_txn`] and waits for the reply.
    fn setup_probe(&mut self, probe_ms: u64) {
        if !self.has_db("OVN_Northbound") {
            panic!("a probe scenario needs the OVN_Northbound schema");
        }
        let mut c = Conn::open(self.port);
        c.send_json(&probe_remote_txn(probe_ms));
        let reply = c.wait_for(
            &|v: &Value| v["id"] == json!("setup"),
            Duration::from_secs(10),
        );
        match reply {
            Some(v) if v["error"].is_null() && !v.to_string().contains("\"error\":\"") => {}
            other => panic!(
                "setting up the probe remote failed on {}: {other:?}",
                self.kind.name()
            ),
        }
        c.close();
    }

    fn has_db(&self, name: &str) -> bool {
        let mut c = Conn::open(self.port);
        c.send_json(&json!({"method": "list_dbs", "params": [], "id": "dbs"}));
        let reply = c.wait_for(
            &|v: &Value| v["id"] == json!("dbs"),
            Duration::from_secs(10),
        );
        c.close();
        reply.is_some_and(|r| {
            r["result"]
                .as_array()
                .is_some_and(|a| a.iter().any(|d| d == name))
        })
    }

    /// The oxsdb binary serving the schemas on an in-memory store.
    pub fn start_oxsdb(opts: &ServerOpts) -> WireServer {
        let dir = tempfile::Builder::new()
            .prefix("oxsdb-wire-ox-")
            .tempdir()
            .expect("tempdir");
        let mut args = vec!["--store=memory".to_string()];
        if let Some(ms) = opts.probe_ms {
            args.push(format!("--inactivity-probe={ms}"));
        }
        args.extend(opts.oxsdb_args.iter().cloned());
        args.extend(opts.schemas.iter().map(|s| s.display().to_string()));
        let oxsdb = Oxsdb::start(&args, dir.path(), None);
        let port = oxsdb.port;
        let mut server = WireServer {
            kind: Kind::Oxsdb,
            process: Process::Oxsdb(oxsdb, dir),
            port,
        };
        server.wait_for_server_db(opts.schemas.len() + 1);
        if let Some(ms) = opts.probe_ms {
            // Same data as on the reference side.
            server.setup_probe(ms);
        }
        server
    }

    /// Is the process still running?
    pub fn alive(&mut self) -> bool {
        self.process_mut().is_running()
    }

    /// The server's output (ovsdb-server's log file, oxsdb's stderr).
    pub fn log_text(&self) -> String {
        self.process().output()
    }

    /// The server's private directory.
    pub fn dir(&self) -> &Path {
        self.process().dir()
    }
}

/// What a connection received.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// One JSON value.
    Message(Value),
    /// Bytes that are not JSON (e.g. invalid UTF-8 sent back by the server),
    /// lossily decoded; the rest of the buffer is dropped.
    Garbage(String),
    /// The server closed the connection (EOF or reset).
    Closed,
}

/// A client connection: a writer and a reader thread that timestamps events.
pub struct Conn {
    stream: TcpStream,
    rx: Receiver<(Instant, Event)>,
    /// An event taken from the channel but not consumed yet.
    peeked: Option<(Instant, Event)>,
    pub closed: bool,
    pub opened_at: Instant,
}

fn reader(mut stream: TcpStream, tx: mpsc::Sender<(Instant, Event)>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let _ = tx.send((Instant::now(), Event::Closed));
                return;
            }
            Ok(n) => n,
        };
        let now = Instant::now();
        buf.extend_from_slice(&chunk[..n]);
        let mut consumed = 0;
        {
            let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            loop {
                match it.next() {
                    Some(Ok(v)) => {
                        consumed = it.byte_offset();
                        if tx.send((now, Event::Message(v))).is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(_)) => {
                        let text = String::from_utf8_lossy(&buf[consumed..]).into_owned();
                        let _ = tx.send((now, Event::Garbage(text)));
                        consumed = buf.len();
                        break;
                    }
                    None => {
                        consumed = buf.len();
                        break;
                    }
                }
            }
        }
        buf.drain(..consumed);
    }
}

impl Conn {
    pub fn open(port: u16) -> Conn {
        Self::try_open(port).unwrap_or_else(|e| panic!("connect {port}: {e}"))
    }

    /// Connects; a refused connection (the server is gone) is an error.
    pub fn try_open(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true).ok();
        let (tx, rx) = mpsc::channel();
        let r = stream.try_clone().expect("clone stream");
        thread::spawn(move || reader(r, tx));
        Ok(Conn {
            stream,
            rx,
            peeked: None,
            closed: false,
            opened_at: Instant::now(),
        })
    }

    /// Writes bytes; errors (the server closed first) are ignored: what the
    /// server did is seen on the reading side.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
        let _ = self.stream.flush();
    }

    pub fn send_json(&mut self, v: &Value) {
        self.send_bytes(&serde_json::to_vec(v).expect("serialize"));
    }

    /// Closes both directions from the client side.
    pub fn close(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// The next event that arrives before `deadline`.
    pub fn next_before(&mut self, deadline: Instant) -> Option<(Instant, Event)> {
        if let Some(e) = self.peeked.take() {
            if e.0 <= deadline {
                return Some(e);
            }
            self.peeked = Some(e);
            return None;
        }
        if self.closed {
            return None;
        }
        let now = Instant::now();
        let r = if deadline <= now {
            self.rx.try_recv().map_err(|_| RecvTimeoutError::Timeout)
        } else {
            self.rx.recv_timeout(deadline - now)
        };
        match r {
            Ok(e) => {
                if e.1 == Event::Closed {
                    self.closed = true;
                }
                if e.0 > deadline {
                    self.peeked = Some(e);
                    return None;
                }
                Some(e)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.closed = true;
                Some((Instant::now(), Event::Closed))
            }
        }
    }

    /// Reads messages until one satisfies `pred`; returns it (others are dropped).
    pub fn wait_for(&mut self, pred: &dyn Fn(&Value) -> bool, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while let Some((_, e)) = self.next_before(deadline) {
            match e {
                Event::Message(v) if pred(&v) => return Some(v),
                Event::Closed => return None,
                _ => {}
            }
        }
        None
    }
}
