//! Real etcd servers for tests: one member or a cluster on free loopback
//! ports, each in a temporary data directory, killed (and the directory
//! removed) when dropped — or when the test process exits, even for a
//! cluster kept in a `static`: each member runs under a small `sh` watchdog
//! that kills it once its stdin (a pipe from the test process) closes.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `etcd-server` installs etcd.
pub const ETCD: &str = "/usr/bin/etcd";

/// One etcd member.
pub struct Member {
    pub name: String,
    /// `http` or `https` (a member started by [`EtcdCluster::start_tls`]).
    pub scheme: &'static str,
    pub client_port: u16,
    /// Where `GET /health` answers in plain HTTP: the client port, or a
    /// metrics port for a member with client TLS.
    pub health_port: u16,
    pub peer_port: u16,
    pub dir: PathBuf,
    /// etcd's arguments, for [`Member::restart`].
    args: Vec<String>,
    watchdog: Option<Child>,
}

/// Runs etcd (`$0`, arguments after the data directory `$1`) in the
/// background until a line or EOF arrives on stdin, then kills it; the data
/// is removed unless the line is `keep`.
const WATCHDOG: &str = r#"dir="$1"; shift
"$0" "$@" &
pid=$!
read -r cmd
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[ "$cmd" = keep ] || rm -rf "$dir" "$dir.log"
"#;

fn spawn_watchdog(dir: &std::path::Path, args: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.with_extension("log"))
        .unwrap();
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg(ETCD)
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start etcd")
}

impl Member {
    /// The etcd process of this member (found by its data directory), while it runs.
    pub fn etcd_pid(&self) -> Option<u32> {
        let dir = format!("--data-dir={}", self.dir.display());
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_etcd = args.first().is_some_and(|a| a.ends_with(b"etcd"));
            let has_dir = args.contains(&dir.as_bytes());
            (is_etcd && has_dir).then_some(pid)
        })
    }

    /// Freezes the member (SIGSTOP): requests to it hang, as on a stalled
    /// host, until [`Member::resume`].
    pub fn pause(&self) {
        let pid = self.etcd_pid().expect("the etcd member runs");
        crate::support::tools::send_signal(pid, libc::SIGSTOP);
    }

    /// Lets a paused member go on (SIGCONT).
    pub fn resume(&self) {
        let pid = self.etcd_pid().expect("the etcd member runs");
        crate::support::tools::send_signal(pid, libc::SIGCONT);
    }

    /// `http(s)://127.0.0.1:<client port>`.
    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.client_port)
    }

    /// Kills the member (SIGKILL) and removes its data.
    pub fn kill(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            // Closing its stdin makes the watchdog kill etcd, wait for it and
            // remove the data directory.
            drop(w.stdin.take());
            let _ = w.wait();
        }
    }

    /// Kills the member (SIGKILL) keeping its data, for [`Member::restart`].
    pub fn kill_keeping_data(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            if let Some(mut stdin) = w.stdin.take() {
                let _ = stdin.write_all(b"keep\n");
            }
            let _ = w.wait();
        }
    }

    /// Starts a member killed by [`Member::kill_keeping_data`] again, on
    /// its data and ports, and waits until it is healthy (for a member of
    /// a cluster: until it has rejoined).
    pub fn restart(&mut self) {
        assert!(
            self.watchdog.is_none(),
            "etcd member {} is running",
            self.name
        );
        self.watchdog = Some(spawn_watchdog(&self.dir, &self.args));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !healthy(self.health_port) {
            assert!(
                Instant::now() < deadline,
                "etcd member {} did not become healthy again: {}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&self) -> bool {
        self.watchdog.is_some()
    }

    /// The member's log (stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.with_extension("log")).unwrap_or_default()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.dir.with_extension("log"));
    }
}

/// PEM files of an etcd member's client TLS.
pub struct ServerTls {
    /// The member's certificate (its SANs must name 127.0.0.1).
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// The CA that client certificates must be signed by.
    pub ca: PathBuf,
}

/// A cluster of `n` members (1 for a single server).
pub struct EtcdCluster {
    pub members: Vec<Member>,
}

fn free_ports(n: usize) -> Vec<u16> {
    // Held together so that they are distinct.
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Whether `GET /health` on this port says healthy.
fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains("\"health\":\"true\"")
}

impl EtcdCluster {
    /// A single member with the test defaults.
    pub fn single() -> EtcdCluster {
        EtcdCluster::start(1, &[])
    }

    /// `n` members, each started with the test defaults
    /// (`--max-txn-ops=10000 --max-request-bytes=33554432`) then `extra`
    /// (a later flag wins), and waits until every member is healthy.
    pub fn start(n: usize, extra: &[&str]) -> EtcdCluster {
        EtcdCluster::start_with(n, extra, None)
    }

    /// Like [`EtcdCluster::start`], with client TLS: https client URLs
    /// serving `tls`'s certificate and requiring client certificates signed
    /// by its CA (`--client-cert-auth`); health is read on a plain-HTTP
    /// metrics port.
    pub fn start_tls(n: usize, extra: &[&str], tls: &ServerTls) -> EtcdCluster {
        EtcdCluster::start_with(n, extra, Some(tls))
    }

    fn start_with(n: usize, extra: &[&str], tls: Option<&ServerTls>) -> EtcdCluster {
        assert!(
            std::path::Path::new(ETCD).exists(),
            "{ETCD} is missing: apt-get install etcd-server"
        );
        let ports = free_ports(3 * n);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let token = uuid::Uuid::new_v4().simple().to_string();
        let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let initial_cluster = names
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{name}=http://127.0.0.1:{}", ports[2 * i + 1]))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let (client_port, peer_port) = (ports[2 * i], ports[2 * i + 1]);
            let metrics_port = ports[2 * n + i];
            let dir = std::env::temp_dir().join(format!("oxsdb-etcd-{token}-{name}"));
            let client_url = format!("{scheme}://127.0.0.1:{client_port}");
            let peer_url = format!("http://127.0.0.1:{peer_port}");
            std::fs::File::create(dir.with_extension("log")).unwrap();
            let mut args: Vec<String> = vec![
                format!("--name={name}"),
                format!("--data-dir={}", dir.display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster={initial_cluster}"),
                format!("--initial-cluster-token={token}"),
                "--initial-cluster-state=new".into(),
                "--max-txn-ops=10000".into(),
                "--max-request-bytes=33554432".into(),
                "--log-level=warn".into(),
                "--logger=zap".into(),
            ];
            let health_port = match tls {
                None => client_port,
                Some(t) => {
                    args.extend([
                        format!("--cert-file={}", t.cert.display()),
                        format!("--key-file={}", t.key.display()),
                        format!("--trusted-ca-file={}", t.ca.display()),
                        "--client-cert-auth".into(),
                        format!("--listen-metrics-urls=http://127.0.0.1:{metrics_port}"),
                    ]);
                    metrics_port
                }
            };
            args.extend(extra.iter().map(|s| s.to_string()));
            let watchdog = spawn_watchdog(&dir, &args);
            members.push(Member {
                name: name.clone(),
                scheme,
                client_port,
                health_port,
                peer_port,
                dir,
                args,
                watchdog: Some(watchdog),
            });
        }
        let cluster = EtcdCluster { members };
        let deadline = Instant::now() + Duration::from_secs(60);
        for m in &cluster.members {
            while !healthy(m.health_port) {
                assert!(
                    Instant::now() < deadline,
                    "etcd member {} did not become healthy: {}",
                    m.name,
                    m.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        cluster
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }
}
