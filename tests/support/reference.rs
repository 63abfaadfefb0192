//! A real `ovsdb-server` (the reference implementation) started in a temporary
//! directory, plus a tiny blocking JSON-RPC 1.0 client for it.
//!
//! The server is started with `ovsdb-tool create DB SCHEMA` followed by
//! `ovsdb-server --remote=ptcp:0:127.0.0.1 ...`; the bound port is read from the
//! "listening on port N" line of its log file. It is killed on drop.
//!
//! If the Open vSwitch tools are missing the caller panics (tests FAIL, never
//! skip) with an explanation of how to install them.

use std::fs;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const INSTALL_HINT: &str =
    "the reference OVSDB tools are required: run `apt-get install openvswitch-common ovn-central` \
     (provides ovsdb-server, ovsdb-tool and /usr/share/ovn/*.ovsschema)";

/// Finds an executable in `$PATH` or in the sbin directories (where Debian
/// installs `ovsdb-server`, usually not in a normal user's `$PATH`).
/// Panics with [`INSTALL_HINT`] when it is not found.
pub fn find_tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in [
        "/usr/sbin",
        "/usr/local/sbin",
        "/sbin",
        "/usr/bin",
        "/usr/local/bin",
        "/bin",
    ] {
        dirs.push(PathBuf::from(d));
    }
    for d in dirs {
        let candidate = d.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` not found in $PATH or /usr/sbin: {INSTALL_HINT}");
}

/// Panics with [`INSTALL_HINT`] when a schema file (e.g. an OVN schema) is missing.
pub fn require_file(path: &Path) {
    if !path.is_file() {
        panic!("{} does not exist: {INSTALL_HINT}", path.display());
    }
}

/// Runs `ovsdb-tool create` on `schema` into `db`; returns its stderr on failure.
pub fn ovsdb_tool_create(db: &Path, schema: &Path) -> Result<(), String> {
    let out = Command::new(find_tool("ovsdb-tool"))
        .arg("create")
        .arg(db)
        .arg(schema)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ovsdb-tool: {e}; {INSTALL_HINT}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A running reference `ovsdb-server` with one database, killed on drop.
pub struct ReferenceServer {
    child: Child,
    pub port: u16,
    pub db_name: String,
    // Kept last: removed after the server has been killed.
    dir: tempfile::TempDir,
}

impl ReferenceServer {
    /// Creates a fresh database from `schema` and starts a server on it.
    pub fn start(schema: &Path) -> ReferenceServer {
        require_file(schema);
        let server_bin = find_tool("ovsdb-server");
        let schema_json: Value = serde_json::from_str(
            &fs::read_to_string(schema).unwrap_or_else(|e| panic!("{}: {e}", schema.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", schema.display()));
        let db_name = schema_json["name"]
            .as_str()
            .expect("schema name")
            .to_string();

        let dir = tempfile::Builder::new()
            .prefix("oxsdb-ref-")
            .tempdir()
            .expect("tempdir");
        let db = dir.path().join("db");
        if let Err(e) = ovsdb_tool_create(&db, schema) {
            panic!("ovsdb-tool create {} failed: {e}", schema.display());
        }
        let log = dir.path().join("log");
        let child = Command::new(server_bin)
            .arg("--no-chdir")
            .arg("--remote=ptcp:0:127.0.0.1")
            .arg(format!("--unixctl={}", dir.path().join("ctl").display()))
            .arg(format!("--log-file={}", log.display()))
            .arg(format!("--pidfile={}", dir.path().join("pid").display()))
            .arg("-vconsole:off")
            .arg(&db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start ovsdb-server: {e}; {INSTALL_HINT}"));
        let mut server = ReferenceServer {
            child,
            port: 0,
            db_name,
            dir,
        };
        server.port = server.wait_for_port(&log);
        server
    }

    fn wait_for_port(&mut self, log: &Path) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = fs::read_to_string(log) {
                for line in text.lines() {
                    if let Some(pos) = line.find("listening on port ") {
                        let rest = &line[pos + "listening on port ".len()..];
                        let digits: String =
                            rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                        if let Ok(port) = digits.parse() {
                            return port;
                        }
                    }
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut stderr);
                }
                let log_text = fs::read_to_string(log).unwrap_or_default();
                panic!("ovsdb-server exited with {status}: {stderr}\nlog:\n{log_text}");
            }
            if Instant::now() > deadline {
                panic!(
                    "ovsdb-server did not report its port within 20 s; log:\n{}",
                    fs::read_to_string(log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn connect(&self) -> Client {
        Client::connect(&format!("127.0.0.1:{}", self.port))
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reply to one request, with the notifications that arrived before it.
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

    pub fn result(&self) -> Option<&Value> {
        match self.message.get("error") {
            Some(e) if !e.is_null() => None,
            _ => self.message.get("result"),
        }
    }
}

type Messages =
    serde_json::StreamDeserializer<'static, serde_json::de::IoRead<BufReader<TcpStream>>, Value>;

/// A blocking JSON-RPC 1.0 client: messages are JSON values back to back.
pub struct Client {
    writer: TcpStream,
    messages: Messages,
    next_id: u64,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).ok();
        stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let reader = BufReader::new(stream.try_clone().expect("clone stream"));
        let messages = serde_json::Deserializer::from_reader(reader).into_iter::<Value>();
        Client {
            writer: stream,
            messages,
            next_id: 1,
        }
    }

    pub fn send(&mut self, message: &Value) {
        let bytes = serde_json::to_vec(message).expect("serialize");
        self.writer
            .write_all(&bytes)
            .expect("write to ovsdb-server");
        self.writer.flush().ok();
    }

    fn read_message(&mut self) -> Value {
        match self.messages.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => panic!("reading from ovsdb-server: {e}"),
            None => panic!("ovsdb-server closed the connection"),
        }
    }

    /// Sends a request and reads messages until its reply, answering `echo`
    /// requests and collecting notifications on the way.
    pub fn request(&mut self, method: &str, params: Value) -> Reply {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "method": method, "params": params, "id": id }));
        let mut notifications = Vec::new();
        loop {
            let msg = self.read_message();
            let msg_id = msg.get("id").cloned().unwrap_or(Value::Null);
            if let Some(m) = msg.get("method").and_then(Value::as_str) {
                if msg_id.is_null() {
                    notifications.push(msg);
                } else if m == "echo" {
                    let params = msg.get("params").cloned().unwrap_or(json!([]));
                    self.send(&json!({ "id": msg_id, "result": params, "error": null }));
                }
                // Other requests from the server are not expected; ignore them.
                continue;
            }
            if msg_id == json!(id) {
                return Reply {
                    message: msg,
                    notifications,
                };
            }
            // A reply to something else: ignore it.
        }
    }
}
