//! The I/O of one remote: a listener's accept loop (`ptcp:`, `pssl:`,
//! `punix:`) or an active remote's connect-serve-reconnect loop (`tcp:`,
//! `ssl:`, `unix:`). Each connection becomes an ordinary [`Session`] on one
//! of the session lanes, after its TLS handshake there; the loops record
//! the sessions and the reconnection state the remotes actor reports.

use crate::actors::lock_status::LockStatus;
use crate::actors::registry::Registry;
use crate::actors::session::{Session, SessionConfig};
use crate::remote::ca_bootstrap::save_peer_ca;
use crate::remote::dscp::set_dscp;
use crate::remote::options::RemoteOptions;
use crate::remote::reconnect::{error_text, Reconnect, DEFAULT_MAX_BACKOFF};
use crate::remote::target::{Host, Remote};
use crate::remote::tls::{peer_id, TlsKeys};
use actix::prelude::*;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection attempt may take (reconnect.c's probe interval).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The shortest inactivity probe (reconnect.c's reconnect_set_probe_interval).
const MIN_PROBE: Duration = Duration::from_millis(1000);

/// What every remote's connections need to become sessions.
#[derive(Clone)]
pub struct SessionStarter {
    /// The served databases.
    pub registry: Arc<Registry>,
    /// The session lanes' arbiters.
    pub handles: Arc<Vec<ArbiterHandle>>,
    /// Round-robin over the lanes.
    pub next: Arc<AtomicUsize>,
    /// The inactivity probe of TCP and TLS connections by default.
    pub inactivity_probe: Option<Duration>,
    /// Largest message accepted.
    pub max_message_size: usize,
    /// The TLS configurations.
    pub keys: Arc<TlsKeys>,
}

/// What a remote's loop shares with the remotes actor.
#[derive(Default)]
pub struct Live {
    /// The remote's sessions (closed ones are pruned when counted, and
    /// whenever the list doubles, so that it stays bounded by twice the open ones).
    pub sessions: Mutex<Vec<Addr<Session>>>,
    /// An active remote's connection history.
    pub reconnect: Mutex<Option<Reconnect>>,
    /// The options its new connections get.
    pub options: RwLock<RemoteOptions>,
    /// An active remote's session's locks, for its status (the latest
    /// connection's; a closed session's is empty).
    pub locks: Mutex<Option<Arc<LockStatus>>>,
}

impl Live {
    /// The sessions still open.
    pub fn open_sessions(&self) -> Vec<Addr<Session>> {
        let mut s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        s.retain(|a| a.connected());
        s.clone()
    }

    fn add_session(&self, addr: Addr<Session>) {
        let mut s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() >= 64 && s.len().is_power_of_two() {
            s.retain(|a| a.connected());
        }
        s.push(addr);
    }

    /// The locks of an active remote's session, as status keys.
    pub fn lock_keys(&self) -> Vec<(&'static str, String)> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|l| l.status_keys())
            .unwrap_or_default()
    }

    fn options(&self) -> RemoteOptions {
        self.options
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A stream moved to a lane, still to be registered with its runtime.
enum StdStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl SessionStarter {
    /// The inactivity probe of `remote`'s sessions with `options`
    /// (reconnect.c probes no more often than once a second).
    pub fn probe_of(&self, remote: &Remote, options: &RemoteOptions) -> Option<Duration> {
        let default = if remote.probes_by_default() {
            self.inactivity_probe
        } else {
            None
        };
        options
            .inactivity_probe
            .unwrap_or(default)
            .map(|d| d.max(MIN_PROBE))
    }

    fn config(&self, remote: &Remote, options: &RemoteOptions) -> SessionConfig {
        SessionConfig {
            inactivity_probe: self.probe_of(remote, options),
            max_message_size: self.max_message_size,
            lane: 0,
            role: options.role.clone(),
            peer_id: None,
            read_only: options.read_only,
            lock_status: None,
        }
    }

    /// Starts a session for `stream` on the next lane (TLS first when
    /// `tls` names the server to verify or is a server handshake), and
    /// sends its address back (or why it failed).
    fn start(
        &self,
        stream: StdStream,
        peer: String,
        remote: &Remote,
        live: &Arc<Live>,
        tls_name: Option<ServerName<'static>>,
    ) -> tokio::sync::oneshot::Receiver<Result<Addr<Session>, String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len().max(1);
        let mut cfg = self.config(remote, &live.options());
        cfg.lane = i;
        if !remote.is_passive() {
            let locks = Arc::new(LockStatus::default());
            *live.locks.lock().unwrap_or_else(|e| e.into_inner()) = Some(locks.clone());
            cfg.lock_status = Some(locks);
        }
        let (registry, live, keys) = (self.registry.clone(), live.clone(), self.keys.clone());
        let ssl = remote.is_ssl();
        let passive = remote.is_passive();
        let Some(handle) = self.handles.get(i) else {
            return rx;
        };
        handle.spawn(async move {
            let started = match stream {
                StdStream::Unix(s) => tokio::net::UnixStream::from_std(s)
                    .map(|s| Session::start(s, peer, registry, cfg))
                    .map_err(|e| error_text(&e)),
                StdStream::Tcp(s) => match tokio::net::TcpStream::from_std(s) {
                    Err(e) => Err(error_text(&e)),
                    Ok(s) if !ssl => Ok(Session::start(s, peer, registry, cfg)),
                    Ok(s) if passive => match tls_accept(&keys, s).await {
                        Ok((s, id)) => {
                            cfg.peer_id = id;
                            Ok(Session::start(s, peer, registry, cfg))
                        }
                        Err(e) => Err(e),
                    },
                    Ok(s) => match tls_connect(&keys, s, tls_name).await {
                        Ok((s, id)) => {
                            cfg.peer_id = id;
                            Ok(Session::start(s, peer, registry, cfg))
                        }
                        Err(e) => Err(e),
                    },
                },
            };
            if let Ok(addr) = &started {
                live.add_session(addr.clone());
            }
            let _ = tx.send(started);
        });
        rx
    }
}

async fn tls_accept(
    keys: &TlsKeys,
    s: tokio::net::TcpStream,
) -> Result<
    (
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        Option<Arc<str>>,
    ),
    String,
> {
    let config = keys.server_config().map_err(|e| e.to_string())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(s)).await {
        Ok(Ok(s)) => {
            let id = peer_id(s.get_ref().1.peer_certificates());
            Ok((s, id))
        }
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Err(_) => Err("TLS handshake timed out".into()),
    }
}

async fn tls_connect(
    keys: &TlsKeys,
    s: tokio::net::TcpStream,
    name: Option<ServerName<'static>>,
) -> Result<
    (
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
        Option<Arc<str>>,
    ),
    String,
> {
    let tls = keys.client_config().map_err(|e| e.to_string())?;
    let name = name.ok_or("no server name for TLS")?;
    let connector = tokio_rustls::TlsConnector::from(tls.config);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, s)).await {
        Ok(Ok(s)) => {
            let certs = s.get_ref().1.peer_certificates();
            if let Some(ca) = tls.bootstrap_ca {
                // As stream-ssl.c: the chain taken on trust is not served;
                // the next connection is verified against the saved CA.
                return Err(match save_peer_ca(certs.unwrap_or(&[]), Path::new(&ca)) {
                    Ok(()) => {
                        tracing::info!("successfully bootstrapped CA cert to {ca}");
                        "killing successful connection to retry using CA cert".into()
                    }
                    Err(e) => e.to_string(),
                });
            }
            let id = peer_id(certs);
            Ok((s, id))
        }
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Err(_) => Err("TLS handshake timed out".into()),
    }
}

/// A bound listener of a passive remote.
pub enum Listener {
    /// `ptcp:` or `pssl:`.
    Tcp(std::net::TcpListener),
    /// `punix:`.
    Unix(std::os::unix::net::UnixListener),
}

impl Listener {
    /// Binds a passive remote at once (a bad address or a taken port is
    /// an error now, as ovsdb-server reports it when it configures the remote).
    /// Accepted connections inherit the listener's `dscp`.
    pub fn bind(remote: &Remote, dscp: u8) -> std::io::Result<Listener> {
        let l = match remote {
            Remote::Tcp(a) | Remote::Ssl(a) => {
                let l = std::net::TcpListener::bind(a)?;
                set_dscp(l.as_fd(), a.is_ipv6(), dscp)?;
                l.set_nonblocking(true)?;
                Listener::Tcp(l)
            }
            Remote::Unix(p) => {
                // A stale socket of an earlier run is replaced, as ovsdb-server does.
                let _ = std::fs::remove_file(p);
                let l = std::os::unix::net::UnixListener::bind(p)?;
                l.set_nonblocking(true)?;
                Listener::Unix(l)
            }
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a passive remote",
                ))
            }
        };
        Ok(l)
    }

    /// The TCP port bound (`None` for Unix sockets).
    pub fn port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(_) => None,
        }
    }

    /// The bound address in remote notation (with the port chosen for port 0).
    pub fn bound_name(&self, remote: &Remote) -> String {
        match (self, remote) {
            (Listener::Tcp(l), Remote::Ssl(_)) | (Listener::Tcp(l), Remote::Tcp(_)) => {
                match l.local_addr() {
                    Ok(a) => {
                        let r = if remote.is_ssl() {
                            Remote::Ssl(a)
                        } else {
                            Remote::Tcp(a)
                        };
                        r.to_string()
                    }
                    Err(_) => remote.to_string(),
                }
            }
            _ => remote.to_string(),
        }
    }
}

/// Serves a bound listener until aborted: every accepted connection becomes a session.
pub async fn accept_loop(
    listener: Listener,
    remote: Remote,
    starter: SessionStarter,
    live: Arc<Live>,
) {
    let name = remote.to_string();
    match listener {
        Listener::Tcp(l) => {
            let l = match tokio::net::TcpListener::from_std(l) {
                Ok(l) => l,
                Err(e) => return tracing::error!("{name}: listen failed: {e}"),
            };
            loop {
                match l.accept().await {
                    Ok((s, peer)) => {
                        let _ = s.set_nodelay(true);
                        let Ok(s) = s.into_std() else { continue };
                        let kind = if remote.is_ssl() { "ssl" } else { "tcp" };
                        let rx = starter.start(
                            StdStream::Tcp(s),
                            format!("{kind}:{peer}"),
                            &remote,
                            &live,
                            None,
                        );
                        let name = name.clone();
                        actix::spawn(async move {
                            if let Ok(Err(e)) = rx.await {
                                tracing::warn!("{name}: connection from {peer} dropped: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of descriptors, say: back off instead of spinning.
                        tracing::warn!("{name}: accept failed: {e}; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        Listener::Unix(l) => {
            let l = match tokio::net::UnixListener::from_std(l) {
                Ok(l) => l,
                Err(e) => return tracing::error!("{name}: listen failed: {e}"),
            };
            loop {
                match l.accept().await {
                    Ok((s, _)) => {
                        let Ok(s) = s.into_std() else { continue };
                        // Nothing to report: a Unix connection has no handshake to fail.
                        drop(starter.start(
                            StdStream::Unix(s),
                            "unix".into(),
                            &remote,
                            &live,
                            None,
                        ));
                    }
                    Err(e) => {
                        tracing::warn!("{name}: accept failed: {e}; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }
}

async fn connect_tcp(host: &Host, port: u16, dscp: u8) -> std::io::Result<std::net::TcpStream> {
    let addrs: Vec<SocketAddr> = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(n) => tokio::net::lookup_host((n.as_str(), port)).await?.collect(),
    };
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host");
    for a in addrs {
        let socket = if a.is_ipv6() {
            tokio::net::TcpSocket::new_v6()?
        } else {
            tokio::net::TcpSocket::new_v4()?
        };
        // Before connect(), so that the handshake is marked too (as socket-util.c does).
        set_dscp(socket.as_fd(), a.is_ipv6(), dscp)?;
        match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(a)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return s.into_std();
            }
            Ok(Err(e)) => last = e,
            Err(_) => {
                last = std::io::Error::new(std::io::ErrorKind::TimedOut, "Connection timed out")
            }
        }
    }
    Err(last)
}

/// Connects an active remote, serves the connection as a session, and
/// reconnects with backoff whenever it fails or ends, until aborted.
pub async fn connect_loop(remote: Remote, starter: SessionStarter, live: Arc<Live>) {
    let name = remote.to_string();
    let set = |f: &mut dyn FnMut(&mut Reconnect) -> Duration| -> Duration {
        let mut r = live.reconnect.lock().unwrap_or_else(|e| e.into_inner());
        let r = r.get_or_insert_with(|| Reconnect::new(live.options().max_backoff));
        f(r)
    };
    let mut quiet = false;
    loop {
        let RemoteOptions {
            max_backoff, dscp, ..
        } = live.options();
        set(&mut |r| {
            r.set_max_backoff(max_backoff);
            r.connecting();
            Duration::ZERO
        });
        if !quiet {
            tracing::info!("{name}: connecting...");
        }
        let stream = match &remote {
            Remote::ActiveTcp(h, p) | Remote::ActiveSsl(h, p) => {
                connect_tcp(h, *p, dscp).await.map(StdStream::Tcp)
            }
            Remote::ActiveUnix(path) => tokio::net::UnixStream::connect(path)
                .await
                .and_then(|s| s.into_std())
                .map(StdStream::Unix),
            _ => return,
        };
        let result = match stream {
            Ok(s) => {
                let tls_name = match &remote {
                    Remote::ActiveSsl(Host::Ip(ip), _) => Some(ServerName::IpAddress((*ip).into())),
                    Remote::ActiveSsl(Host::Name(n), _) => ServerName::try_from(n.clone()).ok(),
                    _ => None,
                };
                starter
                    .start(s, name.clone(), &remote, &live, tls_name)
                    .await
                    .unwrap_or_else(|_| Err("the session lane stopped".into()))
            }
            Err(e) => Err(error_text(&e)),
        };
        let wait = match result {
            Ok(addr) => {
                quiet = false;
                tracing::info!("{name}: connected");
                set(&mut |r| {
                    r.connected(Instant::now());
                    Duration::ZERO
                });
                while addr.connected() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tracing::info!("{name}: connection closed");
                set(&mut |r| r.disconnected(Instant::now(), None))
            }
            Err(e) => {
                if !quiet {
                    tracing::info!("{name}: connection attempt failed ({e})");
                }
                let wait = set(&mut |r| r.disconnected(Instant::now(), Some(e.clone())));
                // As lib/reconnect.c: once the wait is at its longest, say so
                // once and stop logging every attempt.
                let at_max = wait >= max_backoff.unwrap_or(DEFAULT_MAX_BACKOFF);
                if at_max && !quiet {
                    tracing::info!("{name}: continuing to reconnect in the background but suppressing further logging");
                }
                quiet = at_max;
                wait
            }
        };
        tracing::debug!(
            "{name}: waiting {} ms before reconnecting",
            wait.as_millis()
        );
        tokio::time::sleep(wait).await;
    }
}
