//! [`EtcdStore`]: [`Storage`] one to one onto etcd v3 through `etcd-client`.
//!
//! - [`Storage::commit`] is one `Txn`: the compares (`mod_revision ==` /
//!   `value ==`), then one put (with its lease) or delete per write; the
//!   result's revision is the Txn header's. A commit is sent again only when
//!   it certainly did not reach raft (no connection, no leader), unless it
//!   is fenced (it compares a key's mod revision and puts that key): then
//!   after any `Unavailable`, since at most one copy can apply, and a copy
//!   that fails its compare finds out from the fence whether an earlier one
//!   applied.
//! - Small requests that may be repeated abandon an attempt after an eighth
//!   of the request timeout (between 250 ms and 1 s) and try again: a member
//!   that lost its leader holds requests until etcd's own timeout.
//! - [`Storage::range`] reads pages of [`RANGE_PAGE`] keys at the revision of
//!   the first page, so a range is one consistent snapshot of any size.
//! - [`Storage::watch`] is an etcd watch with `prev_kv`, its responses split
//!   into one [`WatchBatch`] per `mod_revision`. A watch whose connection
//!   breaks (a member died) is resumed transparently from the last revision
//!   delivered + 1 for up to [`WATCH_RESUME_FOR`]; only then, or on
//!   compaction, does the stream yield its one `Err`.
//! - Leases: grant, a single keep-alive request per [`Storage::keep_alive`]
//!   (TTL 0 in the answer means the lease is gone), revoke.
//!
//! Connecting is lazy: [`EtcdStore::connect`] fails only for invalid options
//! and returns a store whose requests fail with
//! [`StorageError::Unavailable`] until etcd answers, then work by themselves
//! (the gRPC connections are re-established on demand). Credentials are
//! checked by the first request that reaches etcd, and re-sent whenever etcd
//! forgets the token (it keeps simple tokens in memory only).
//!
//! [`Storage::liveness`] follows whether etcd answers, as a Go client's
//! wrapper does (VOLTHA's `kvclient`: `Unavailable` and `DeadlineExceeded`
//! mean "backend down"): a probe sends one cheap serializable read every
//! [`EtcdOptions::probe_interval`] (every 100 ms while etcd is down), and
//! every request's success sets it up; a request's failure sets it down only
//! with a single endpoint (with several, one request meeting a dead member
//! or an election says little: the probe decides). While down,
//! [`Storage::unreachable_reason`] says why (a TLS failure is named).
//!
//! The client runs on a small tokio runtime of its own: the gRPC connections
//! then outlive whatever runtime called [`EtcdStore::connect`] (each actix
//! arbiter, each `#[tokio::test]` has its own), and every call works from any
//! runtime. The runtime lives as long as the store or any of its watch
//! streams.
//!
//! Limits of etcd that show through:
//! - lease TTLs are whole seconds, at least etcd's minimum (2 s by default);
//! - events replayed from the compaction revision may lack their previous
//!   value (etcd no longer has it): `prev_value` is then `None`;
//! - a commit is limited by the server's `--max-txn-ops` (operations) and
//!   `--max-request-bytes` (size): over them it fails with
//!   [`StorageError::TooLarge`] naming the flag, and writes nothing.

use super::{
    ClusterView, CommitResult, Compare, Event, EventKind, KeyValue, LeaseId, MemberView, Revision,
    Storage, StorageError, WatchBatch, WatchStream, WriteOp,
};
use async_trait::async_trait;
use bytes::Bytes;
use etcd_client as ec;
use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, OnceCell};

/// Keys per page of [`Storage::range`].
pub const RANGE_PAGE: i64 = 2000;
/// The largest gRPC message the client accepts (tonic's default is 4 MiB;
/// etcd's values go up to `--max-request-bytes`, and a watch response holds a
/// whole commit).
pub const MAX_DECODING_MESSAGE: usize = 512 << 20;
/// How long a broken watch is retried before its stream yields
/// [`StorageError::Unavailable`].
pub const WATCH_RESUME_FOR: Duration = Duration::from_secs(30);

/// TLS settings: PEM files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdTls {
    /// The CA that signed the servers' certificates (the system roots are not
    /// used).
    pub ca: Option<PathBuf>,
    /// A client certificate, for servers with `--client-cert-auth`.
    pub cert: Option<PathBuf>,
    /// The client certificate's key.
    pub key: Option<PathBuf>,
    /// The name to check the servers' certificates against (default: the
    /// endpoint's host).
    pub domain: Option<String>,
}

/// How to reach etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// `host:port` or `http(s)://host:port`, one per member.
    pub endpoints: Vec<String>,
    /// User name, for etcd with authentication enabled.
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<String>,
    /// TLS (then endpoints without a scheme use https).
    pub tls: Option<EtcdTls>,
    /// Timeout of establishing one connection.
    pub connect_timeout: Duration,
    /// Timeout of one request (a commit, a range, a lease call; for a watch,
    /// of its creation), retries included: bounds how long a transaction
    /// waits for a dead etcd.
    pub request_timeout: Duration,
    /// How often the liveness probe asks etcd for its revision (also the
    /// probe's timeout).
    pub probe_interval: Duration,
    /// The key prefix that this store's requests stay in: the probes (of
    /// the revision, of the compaction) read a key under it, so that an
    /// etcd user whose role covers only this prefix is enough. Empty: the
    /// whole key space.
    pub scope: Vec<u8>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            endpoints: vec!["127.0.0.1:2379".into()],
            user: None,
            password: None,
            tls: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            probe_interval: Duration::from_secs(1),
            scope: Vec::new(),
        }
    }
}

impl EtcdOptions {
    /// Options for these endpoints, the rest default.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> EtcdOptions {
        EtcdOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..EtcdOptions::default()
        }
    }
}

/// Shuts the store's runtime down when the store and all its watch streams
/// are gone.
struct RuntimeGuard(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            // Allowed from inside an async context, unlike dropping it.
            rt.shutdown_background();
        }
    }
}

/// Whether etcd answers, with the transitions logged once each.
struct Liveness {
    tx: watch::Sender<bool>,
    /// Whether an outcome was recorded yet: the first one is logged even when
    /// it leaves the value (false) as it was, so that an etcd unreachable at
    /// start-up shows in the log.
    known: AtomicBool,
    /// Why etcd was last found unreachable (cleared when it answers), for
    /// the errors given to clients meanwhile.
    reason: std::sync::Mutex<Option<String>>,
}

impl Liveness {
    fn new() -> Liveness {
        Liveness {
            tx: watch::channel(false).0,
            known: AtomicBool::new(false),
            reason: std::sync::Mutex::new(None),
        }
    }

    /// Records a request's outcome: `Unavailable` means etcd is down, any
    /// other answer (a failed compare, `TooLarge`, `Compacted`, ...) that it
    /// is up.
    fn record<T>(&self, outcome: &Result<T, StorageError>) {
        let down = match outcome {
            Err(e @ StorageError::Unavailable(_)) => Some(e),
            _ => None,
        };
        let up = down.is_none();
        if let Ok(mut r) = self.reason.lock() {
            *r = match (down.map(|e| e.to_string()), r.take()) {
                (None, _) => None,
                // A rejected client certificate often shows as a mere
                // "connection closed" (the server's alert comes after the
                // request was sent): keep the reason that names the TLS
                // failure for the rest of the outage.
                (Some(now), Some(before))
                    if before.contains(TLS_HINT) && !now.contains(TLS_HINT) =>
                {
                    Some(before)
                }
                (Some(now), before) => {
                    // The failure logged as the transition (below) may not
                    // have said that it is TLS: say it once it shows.
                    let said = before.as_deref().is_some_and(|b| b.contains(TLS_HINT));
                    if now.contains(TLS_HINT) && !said && self.known.load(Ordering::Relaxed) {
                        tracing::warn!("etcd is unreachable: {now}");
                    }
                    Some(now)
                }
            };
        }
        // The closure runs under the channel's lock: transitions (and their
        // logs) are serialized.
        self.tx.send_if_modified(|live| {
            let first = !self.known.swap(true, Ordering::Relaxed);
            if *live == up && !first {
                return false;
            }
            match down {
                Some(e) => tracing::warn!("etcd is unreachable: {e}"),
                None if first => tracing::info!("etcd is reachable"),
                None => tracing::info!("etcd is reachable again"),
            }
            let changed = *live != up;
            *live = up;
            changed
        });
    }
}

/// What the store's tasks share.
struct Inner {
    client: ec::Client,
    kv: ec::KvClient,
    watch: ec::WatchClient,
    request_timeout: Duration,
    /// User and password, sent by the first request that reaches etcd
    /// (`Client::connect` would need etcd up to authenticate).
    credentials: Option<(String, String)>,
    /// Set once etcd accepted the credentials.
    authenticated: OnceCell<()>,
    liveness: Liveness,
    /// The key read by the revision probe and watched by the compaction
    /// probe: one that no one writes, inside [`EtcdOptions::scope`].
    probe_key: Vec<u8>,
    /// How many endpoints were given: with one, a failed request means etcd
    /// is down; with several, only the probe (which tries them all) says so.
    endpoints: usize,
    /// The options of the client, for `cluster/status`'s connections to
    /// each member.
    connect: ec::ConnectOptions,
}

/// The etcd backend. See the [module documentation](self).
pub struct EtcdStore {
    inner: Arc<Inner>,
    handle: tokio::runtime::Handle,
    runtime: Arc<RuntimeGuard>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore").finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// A store on these endpoints. Fails only for invalid options (no
    /// endpoint, unreadable TLS files, a password without a user, ...): an
    /// etcd that does not answer yet makes requests fail with `Unavailable`
    /// until it does.
    pub async fn connect(options: EtcdOptions) -> Result<Arc<EtcdStore>, StorageError> {
        if options.endpoints.is_empty() {
            return Err(StorageError::Invalid("no etcd endpoint given".into()));
        }
        if options.request_timeout.is_zero() || options.probe_interval.is_zero() {
            return Err(StorageError::Invalid(
                "etcd request timeout and probe interval must be positive".into(),
            ));
        }
        let credentials = match (&options.user, &options.password) {
            (Some(u), p) => Some((u.clone(), p.clone().unwrap_or_default())),
            (None, Some(_)) => {
                return Err(StorageError::Invalid(
                    "an etcd password without a user".into(),
                ))
            }
            (None, None) => None,
        };
        let mut connect = ec::ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            .with_keep_alive_while_idle(true)
            // A member cut off from its cluster fails requests and watches
            // rather than serving stale data or staying silent.
            .with_require_leader(true)
            // etcd forgets simple tokens when it restarts, and they expire:
            // authenticate again instead of failing every later request.
            .with_auto_token_refresh(true);
        if let Some(tls) = &options.tls {
            connect = connect.with_tls(tls_config(tls)?);
        }
        // One worker: with two, every request and reply also crossed
        // between them (measured with oxsdb-bench txn, 8 clients: 143-160
        // instead of 179-212 µs of oxsdb CPU per transaction).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("oxsdb-etcd")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Other(format!("etcd client runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let runtime = Arc::new(RuntimeGuard(Some(runtime)));
        let endpoints = options.endpoints.clone();
        // Without credentials `Client::connect` sends nothing (its channels
        // connect on first use), so whatever fails here is a bad option. It
        // runs on the store's runtime, where the channels' tasks must live.
        let member_connect = connect.clone();
        let client = handle
            .spawn(async move { ec::Client::connect(endpoints, Some(connect)).await })
            .await
            .map_err(|e| StorageError::Other(format!("etcd connect task: {e}")))?
            .map_err(|e| StorageError::Invalid(format!("etcd client options: {e}")))?;
        let inner = Arc::new(Inner {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_DECODING_MESSAGE),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_DECODING_MESSAGE),
            client,
            request_timeout: options.request_timeout,
            credentials,
            authenticated: OnceCell::new(),
            liveness: Liveness::new(),
            probe_key: probe_key(&options.scope),
            endpoints: options.endpoints.len(),
            connect: member_connect,
        });
        handle.spawn(probe(Arc::downgrade(&inner), options.probe_interval));
        Ok(Arc::new(EtcdStore {
            inner,
            handle,
            runtime,
        }))
    }

    /// Whether etcd answered the last request or probe.
    pub fn is_connected(&self) -> bool {
        *self.inner.liveness.tx.borrow()
    }

    /// Runs `f` on the store's runtime within the request timeout (see
    /// [`attempt`]).
    async fn run<T, F, Fut>(&self, retry: Retry, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Fn(Arc<Inner>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        let timeout = self.inner.request_timeout;
        let inner = self.inner.clone();
        self.handle
            .spawn(attempt(inner, timeout, retry, Record::Request, f))
            .await
            .map_err(|e| StorageError::Other(format!("etcd request task: {e}")))?
    }
}

/// Which outcomes of [`attempt`] set the liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// A client's request: a success says etcd is up; a failure says it is
    /// down only with a single endpoint (with several, a request that met
    /// a dead member or an election says little about the cluster; the
    /// probe decides).
    Request,
    /// The probe: every outcome.
    Probe,
}

/// How long one attempt of a request that may be sent again can take: an
/// eighth of the request timeout, within these bounds. An attempt stuck on a
/// member that lost its leader (it holds requests until etcd's own timeout,
/// ~7 s) is abandoned for one that may reach the new leader, so that an
/// election costs little more than itself.
fn attempt_length(timeout: Duration) -> Duration {
    (timeout / 8).clamp(Duration::from_millis(250), Duration::from_secs(1))
}

/// A fenced commit larger than this is not sent again before its deadline:
/// copies of a large Txn would load an etcd that may just be slow.
const RESEND_EARLY_BYTES: usize = 64 << 10;

/// Runs `f` within `timeout`, again while it fails as `retry` allows (a
/// dead member stays in the client's balancer: requests sent its way fail
/// to connect, the next attempt most likely goes to a live one), after
/// authenticating if need be; records the outcome in the liveness as
/// `record` says.
async fn attempt<T, F, Fut>(
    inner: Arc<Inner>,
    timeout: Duration,
    retry: Retry,
    record: Record,
    f: F,
) -> Result<T, StorageError>
where
    F: Fn(Arc<Inner>) -> Fut,
    Fut: Future<Output = Result<T, StorageError>>,
{
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut delay = Duration::from_millis(10);
    let mut last_err: Option<StorageError> = None;
    // Only requests that may be repeated are abandoned before the deadline.
    let attempt_for = match retry {
        Retry::Unavailable | Retry::Fenced => attempt_length(timeout),
        Retry::NotSent | Retry::Long | Retry::FencedLarge => timeout,
    };
    let outcome = loop {
        // Boxed, as is the authentication: etcd-client's request futures
        // are kilobytes, and held in this future's state they were copied
        // whole each time it moved (into its task, and back out): an eighth
        // of the server's instructions per etcd commit.
        let request = Box::pin(f(inner.clone()));
        let once = async {
            if inner.credentials.is_some() {
                Box::pin(authenticate(&inner)).await?;
            }
            request.await
        };
        let attempt_deadline = (tokio::time::Instant::now() + attempt_for).min(deadline);
        let r = match tokio::time::timeout_at(attempt_deadline, once).await {
            Ok(r) => r,
            Err(_) if attempt_deadline < deadline => Err(StorageError::Unavailable(format!(
                "etcd did not answer within {:?}",
                attempt_deadline - started
            ))),
            Err(_) => {
                // Say why the earlier attempts failed, if they did.
                let why = last_err.map(|e| format!(" ({e})")).unwrap_or_default();
                break Err(StorageError::Unavailable(format!(
                    "etcd request timed out after {timeout:?}{why}"
                )));
            }
        };
        match r {
            Err(e) if retry.allows(&e) => {
                if tokio::time::Instant::now() + delay >= deadline {
                    break Err(e);
                }
                tracing::debug!(error = %e, "retrying an etcd request");
                last_err = Some(e);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
            r => break r,
        }
    };
    if record == Record::Probe || inner.endpoints == 1 || outcome.is_ok() {
        inner.liveness.record(&outcome);
    }
    outcome
}

/// Sends the credentials once, if there are any: until etcd accepts them,
/// every request tries again first.
async fn authenticate(inner: &Inner) -> Result<(), StorageError> {
    let Some((user, password)) = &inner.credentials else {
        return Ok(());
    };
    inner
        .authenticated
        .get_or_try_init(|| async {
            // The clone shares the credentials and token with every client
            // of `inner` (etcd-client keeps them behind `Arc`s).
            let mut client = inner.client.clone();
            client
                .update_user(Some((user.clone(), password.clone())))
                .await
                .map_err(|e| map_err(e, None))
        })
        .await?;
    Ok(())
}

/// The liveness probe: one revision request every `interval` (every
/// [`PROBE_WHILE_DOWN`] while etcd does not answer, so that it is seen back
/// at once), until the store and its watch streams are gone (it holds
/// `inner` only while probing, so it does not keep the store alive).
async fn probe(inner: Weak<Inner>, interval: Duration) {
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        // Retried within the interval like any read, so that one dead
        // member among live ones does not make the liveness flap. A
        // serializable read: any member with a leader answers it (members
        // without one refuse every request: require-leader), so an election
        // costs the liveness nothing unless it outlasts the interval.
        let r = attempt(
            inner.clone(),
            interval,
            Retry::Unavailable,
            Record::Probe,
            |inner| async move { serializable_revision(&inner).await },
        )
        .await;
        drop(inner);
        // The first probe is immediate: the liveness is known soon after
        // connecting.
        let pause = if r.is_ok() {
            interval
        } else {
            interval.min(PROBE_WHILE_DOWN)
        };
        tokio::time::sleep(pause).await;
    }
}

/// The probe's pause while etcd does not answer.
const PROBE_WHILE_DOWN: Duration = Duration::from_millis(100);

/// Which failures [`EtcdStore::run`] retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Any `Unavailable`: for reads and other requests that may be repeated.
    Unavailable,
    /// Like `Unavailable`, but no attempt is abandoned before the deadline:
    /// for ranges, whose pages of a large database may take most of it.
    Long,
    /// Only failures before the request was sent (no connection): for
    /// writes, which must not be applied twice.
    NotSent,
    /// Any `Unavailable`: for fenced commits (see [`fence_of`]), which apply
    /// at most once however often they are sent, and whose outcome is found
    /// afterwards.
    Fenced,
    /// Like `Fenced`, but no attempt is abandoned before the deadline: for
    /// fenced commits over [`RESEND_EARLY_BYTES`].
    FencedLarge,
}

impl Retry {
    fn allows(self, e: &StorageError) -> bool {
        let StorageError::Unavailable(m) = e else {
            return false;
        };
        match self {
            Retry::Unavailable | Retry::Long | Retry::Fenced | Retry::FencedLarge => true,
            // Refused before anything reached raft: no connection, or a
            // member without a leader (require-leader is checked before the
            // request is handled), or one shedding load.
            Retry::NotSent => {
                m.contains("connect error")
                    || m.contains("error trying to connect")
                    || m.contains("Connection refused")
                    || m.contains("connection refused")
                    || m.contains("etcdserver: no leader")
                    || m.contains("etcdserver: too many requests")
            }
        }
    }
}

fn read_pem(path: &PathBuf, what: &str) -> Result<Vec<u8>, StorageError> {
    std::fs::read(path)
        .map_err(|e| StorageError::Invalid(format!("etcd TLS {what} {}: {e}", path.display())))
}

fn tls_config(tls: &EtcdTls) -> Result<ec::TlsOptions, StorageError> {
    let mut cfg = ec::TlsOptions::new();
    if let Some(ca) = &tls.ca {
        cfg = cfg.ca_certificate(ec::Certificate::from_pem(read_pem(ca, "CA")?));
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            cfg = cfg.identity(ec::Identity::from_pem(
                read_pem(cert, "certificate")?,
                read_pem(key, "key")?,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(StorageError::Invalid(
                "an etcd client certificate needs both its certificate and key files".into(),
            ))
        }
    }
    if let Some(d) = &tls.domain {
        cfg = cfg.domain_name(d.clone());
    }
    Ok(cfg)
}

/// The end of the key range of every key starting with `prefix` (etcd's
/// `range_end`): `\0` for all keys.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn key_value(kv: &ec::KeyValue) -> KeyValue {
    KeyValue {
        key: Bytes::copy_from_slice(kv.key()),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        lease: (kv.lease() != 0).then_some(kv.lease()),
    }
}

const TXN_OPS_HINT: &str =
    "more operations in one commit than etcd allows (raise etcd's --max-txn-ops)";
const REQUEST_BYTES_HINT: &str =
    "a request larger than etcd allows (raise etcd's --max-request-bytes)";

/// `msg` followed by the messages of `source` and its sources, each once: a
/// failed TLS handshake shows only there (tonic says "transport error" or
/// "operation was canceled", the certificate problem is a source); with a
/// hint when it is a TLS failure.
fn with_sources(msg: &str, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut out = msg.to_string();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    let lower = out.to_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("tls") {
        out.push_str(&format!(" ({TLS_HINT})"));
    }
    out
}

/// What to check when the TLS handshake with etcd fails.
const TLS_HINT: &str = "TLS handshake with etcd failed: check that --etcd-cacert signed etcd's \
     certificate and that etcd's --trusted-ca-file signed --etcd-cert";

/// What to check when etcd refuses the credentials.
const CREDENTIALS_HINT: &str =
    "check --etcd-user and --etcd-password (or OXSDB_ETCD_PASSWORD) against etcd's users";

/// Maps a client error; `lease` names the lease for "lease not found".
fn map_err(e: ec::Error, lease: Option<LeaseId>) -> StorageError {
    use tonic::Code;
    match e {
        ec::Error::GRpcStatus(s) => {
            let full = with_sources(s.message(), std::error::Error::source(&s));
            let msg = full.as_str();
            if msg.contains("authentication failed") || msg.contains("user name is empty") {
                StorageError::Other(format!(
                    "etcd refused the credentials ({msg}): {CREDENTIALS_HINT}"
                ))
            } else if msg.contains("permission denied") {
                StorageError::Other(format!(
                    "etcd refused: {msg}: grant the etcd user of --etcd-user read-write on the \
                     keys under --etcd-prefix"
                ))
            } else if msg.contains("too many operations in txn request") {
                StorageError::TooLarge(format!("{TXN_OPS_HINT}: {msg}"))
            } else if msg.contains("request is too large")
                || (s.code() == Code::ResourceExhausted && msg.contains("larger than max"))
            {
                StorageError::TooLarge(format!("{REQUEST_BYTES_HINT}: {msg}"))
            } else if msg.contains("message length too large")
                || msg.contains("decoded message length too large")
            {
                StorageError::TooLarge(format!(
                    "a response over the client's limit of {MAX_DECODING_MESSAGE} bytes: {msg}"
                ))
            } else if msg.contains("requested lease not found") || msg.contains("lease not found") {
                StorageError::LeaseNotFound(lease.unwrap_or(0))
            } else if msg.contains("required revision has been compacted") {
                // The caller finds the compaction revision where it matters.
                StorageError::Compacted { compacted: 0 }
            } else if msg.contains("duplicate key given in txn request")
                || msg.contains("key is not provided")
                || msg.contains("required revision is a future revision")
            {
                StorageError::Invalid(format!("etcd: {msg}"))
            } else {
                match s.code() {
                    Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Cancelled
                    | Code::Aborted => {
                        StorageError::Unavailable(format!("etcd: {msg} ({:?})", s.code()))
                    }
                    Code::Unknown if msg.contains("transport") || msg.contains("connect") => {
                        StorageError::Unavailable(format!("etcd: {msg}"))
                    }
                    Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                        StorageError::Invalid(format!("etcd: {msg}"))
                    }
                    Code::Unauthenticated | Code::PermissionDenied => {
                        StorageError::Other(format!("etcd refused: {msg}"))
                    }
                    c => StorageError::Other(format!("etcd: {msg} ({c:?})")),
                }
            }
        }
        ec::Error::TransportError(e) => StorageError::Unavailable(format!(
            "etcd: {}",
            with_sources(&e.to_string(), std::error::Error::source(&e))
        )),
        ec::Error::IoError(e) => StorageError::Unavailable(format!(
            "etcd: {}",
            with_sources(&e.to_string(), std::error::Error::source(&e))
        )),
        ec::Error::LeaseKeepAliveError(m) if m.contains("not found") => {
            StorageError::LeaseNotFound(lease.unwrap_or(0))
        }
        ec::Error::LeaseKeepAliveError(m) | ec::Error::WatchError(m) => {
            StorageError::Unavailable(format!("etcd: {m}"))
        }
        ec::Error::InvalidArgs(m) => StorageError::Invalid(format!("etcd client: {m}")),
        ec::Error::InvalidUri(e) => StorageError::Invalid(format!("etcd endpoint: {e}")),
        e => StorageError::Other(format!("etcd: {e}")),
    }
}

/// A key that no one writes inside `scope` (`\0...` sorts before any
/// written key under the same prefix).
fn probe_key(scope: &[u8]) -> Vec<u8> {
    let mut k = scope.to_vec();
    k.extend_from_slice(b"\0oxsdb-probe");
    k
}

/// The oldest revision still watchable (found by a watch from revision 1,
/// which etcd cancels with the compaction revision).
async fn compacted_revision(inner: &Inner) -> Result<Revision, StorageError> {
    let mut wc = inner.watch.clone();
    let mut stream = wc
        .watch(
            inner.probe_key.clone(),
            Some(ec::WatchOptions::new().with_start_revision(1)),
        )
        .await
        .map_err(|e| map_err(e, None))?;
    let mut result = 1;
    // The created response, then (if compacted) the cancel.
    for _ in 0..2 {
        match tokio::time::timeout(Duration::from_millis(500), stream.message()).await {
            Ok(Ok(Some(r))) => {
                if r.compact_revision() > 0 {
                    result = r.compact_revision();
                    break;
                }
                if r.canceled() {
                    break;
                }
            }
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(map_err(e, None)),
            Err(_) => break,
        }
    }
    Ok(result)
}

async fn current_revision(inner: &Inner) -> Result<Revision, StorageError> {
    let mut kv = inner.kv.clone();
    let r = kv
        .get(
            inner.probe_key.clone(),
            Some(ec::GetOptions::new().with_count_only()),
        )
        .await
        .map_err(|e| map_err(e, None))?;
    header_revision(r.header())
}

/// The members etcd lists, each asked for its status on a connection of
/// its own (a member that does not answer in time is unhealthy).
async fn cluster_view(inner: &Inner) -> Result<ClusterView, StorageError> {
    let mut cc = inner.client.cluster_client();
    let list = cc.member_list().await.map_err(|e| map_err(e, None))?;
    let mut view = ClusterView {
        cluster_id: list.header().map(|h| h.cluster_id()).unwrap_or(0),
        term: list.header().map(|h| h.raft_term()).unwrap_or(0),
        ..ClusterView::default()
    };
    let limit = attempt_length(inner.request_timeout);
    let statuses = futures_util::future::join_all(list.members().iter().map(|m| {
        let urls = m.client_urls().to_vec();
        let options = inner.connect.clone();
        async move {
            if urls.is_empty() {
                return Err("not started (no client URL)".to_string());
            }
            let asked = async {
                let client = ec::Client::connect(urls, Some(options))
                    .await
                    .map_err(|e| e.to_string())?;
                client
                    .maintenance_client()
                    .status()
                    .await
                    .map_err(|e| e.to_string())
            };
            match tokio::time::timeout(limit, asked).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
            }
        }
    }))
    .await;
    for (m, status) in list.members().iter().zip(statuses) {
        let mut member = MemberView {
            id: m.id(),
            name: m.name().to_string(),
            client_urls: m.client_urls().to_vec(),
            peer_urls: m.peer_urls().to_vec(),
            learner: m.is_learner(),
            ..MemberView::default()
        };
        match status {
            Ok(st) => {
                if view.leader == 0 {
                    view.leader = st.leader();
                }
                view.term = view.term.max(st.raft_term());
                member.raft_index = Some(st.raft_index());
                member.healthy = st.errors().is_empty();
                member.problem = (!st.errors().is_empty()).then(|| st.errors().join("; "));
            }
            Err(e) => member.problem = Some(e),
        }
        view.members.push(member);
    }
    Ok(view)
}

/// The revision of the member that answers (no round through the leader):
/// for the liveness probe.
async fn serializable_revision(inner: &Inner) -> Result<Revision, StorageError> {
    let mut kv = inner.kv.clone();
    let r = kv
        .get(
            inner.probe_key.clone(),
            Some(ec::GetOptions::new().with_count_only().with_serializable()),
        )
        .await
        .map_err(|e| map_err(e, None))?;
    header_revision(r.header())
}

fn header_revision(h: Option<&ec::ResponseHeader>) -> Result<Revision, StorageError> {
    h.map(|h| h.revision())
        .ok_or_else(|| StorageError::Other("etcd answered without a header".into()))
}

/// The keys under `prefix` at revision `at` (0: now), page by page at one
/// revision, and that revision.
async fn range(
    inner: &Inner,
    prefix: Vec<u8>,
    at: Revision,
) -> Result<(Vec<KeyValue>, Revision), StorageError> {
    let end = prefix_end(&prefix);
    // A compaction between pages fails the later page: start over (unless
    // the past revision asked for is the one compacted).
    'again: for _ in 0..5 {
        let mut kv = inner.kv.clone();
        let mut out = Vec::new();
        let mut start = prefix.clone();
        let mut revision = at;
        loop {
            let mut opts = ec::GetOptions::new()
                .with_range(end.clone())
                .with_limit(RANGE_PAGE);
            if revision != 0 {
                opts = opts.with_revision(revision);
            }
            let r = match kv.get(start.clone(), Some(opts)).await {
                Ok(r) => r,
                Err(e) => match map_err(e, None) {
                    StorageError::Compacted { .. } if at != 0 => {
                        return Err(StorageError::Compacted {
                            compacted: compacted_revision(inner).await?,
                        })
                    }
                    StorageError::Compacted { .. } if revision != 0 => continue 'again,
                    e => return Err(e),
                },
            };
            if revision == 0 {
                revision = header_revision(r.header())?;
            }
            out.extend(r.kvs().iter().map(key_value));
            match r.kvs().last() {
                Some(last) if r.more() => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => return Ok((out, revision)),
            }
        }
    }
    Err(StorageError::Unavailable(
        "etcd: range kept being compacted under its pages".into(),
    ))
}

/// After a commit failed with "lease not found": which of its leases is
/// gone.
async fn missing_lease(inner: &Inner, leases: &[LeaseId]) -> LeaseId {
    let mut lc = inner.client.lease_client();
    for &l in leases {
        match lc.time_to_live(l, None).await {
            Ok(r) if r.ttl() > 0 => continue,
            _ => return l,
        }
    }
    leases.first().copied().unwrap_or(0)
}

async fn commit(
    inner: &Inner,
    compares: Vec<Compare>,
    writes: Vec<WriteOp>,
) -> Result<CommitResult, StorageError> {
    let cmps: Vec<ec::Compare> = compares
        .into_iter()
        .map(|c| match c {
            Compare::ModRevision { key, revision } => {
                ec::Compare::mod_revision(key.to_vec(), ec::CompareOp::Equal, revision)
            }
            Compare::Value { key, value } => {
                ec::Compare::value(key.to_vec(), ec::CompareOp::Equal, value.to_vec())
            }
        })
        .collect();
    let mut leases: Vec<LeaseId> = Vec::new();
    let ops: Vec<ec::TxnOp> = writes
        .into_iter()
        .map(|w| match w {
            WriteOp::Put { key, value, lease } => {
                let opts = lease.map(|l| {
                    if !leases.contains(&l) {
                        leases.push(l);
                    }
                    ec::PutOptions::new().with_lease(l)
                });
                ec::TxnOp::put(key.to_vec(), value.to_vec(), opts)
            }
            WriteOp::Delete { key } => ec::TxnOp::delete(key.to_vec(), None),
        })
        .collect();
    let mut kv = inner.kv.clone();
    match kv.txn(ec::Txn::new().when(cmps).and_then(ops)).await {
        Ok(r) => Ok(CommitResult {
            succeeded: r.succeeded(),
            revision: header_revision(r.header())?,
        }),
        Err(e) => match map_err(e, None) {
            StorageError::LeaseNotFound(_) => Err(StorageError::LeaseNotFound(
                missing_lease(inner, &leases).await,
            )),
            e => Err(e),
        },
    }
}

/// A commit's fence: a key it compares by mod revision and also puts, with
/// that revision and the value put (unique to the commit: see
/// `Replica::commit_request`).
#[derive(Debug, Clone)]
struct Fence {
    key: Bytes,
    base: Revision,
    value: Bytes,
}

/// The fence of a commit, if it has one.
fn fence_of(compares: &[Compare], writes: &[WriteOp]) -> Option<Fence> {
    compares.iter().find_map(|c| {
        let Compare::ModRevision { key, revision } = c else {
            return None;
        };
        writes.iter().find_map(|w| match w {
            WriteOp::Put { key: k, value, .. } if k == key => Some(Fence {
                key: key.clone(),
                base: *revision,
                value: value.clone(),
            }),
            _ => None,
        })
    })
}

/// After a copy of a fenced commit failed its compare: whether an earlier
/// copy applied. The first write of the fence after its base is the commit
/// that won it (every commit compares the fence); ours if it wrote our
/// value. Etcd's history since the base must still be there.
async fn fence_winner(inner: &Inner, fence: &Fence) -> Result<CommitResult, StorageError> {
    // Most often no one wrote the fence since: its value says it all (and
    // needs no history, which etcd may have compacted).
    let mut kv = inner.kv.clone();
    let now = kv
        .get(fence.key.to_vec(), None)
        .await
        .map_err(|e| map_err(e, None))?;
    if let Some(kv) = now.kvs().first() {
        if kv.value() == fence.value.as_ref() {
            tracing::info!(
                revision = kv.mod_revision(),
                "a commit sent again had applied already"
            );
            return Ok(CommitResult {
                succeeded: true,
                revision: kv.mod_revision(),
            });
        }
    }
    let mut wc = inner.watch.clone();
    let mut stream = wc
        .watch(
            fence.key.to_vec(),
            Some(ec::WatchOptions::new().with_start_revision(fence.base + 1)),
        )
        .await
        .map_err(|e| map_err(e, None))?;
    loop {
        let Some(r) = stream.message().await.map_err(|e| map_err(e, None))? else {
            return Err(StorageError::Unavailable(
                "etcd closed the watch of the fence".into(),
            ));
        };
        if r.compact_revision() > 0 {
            return Err(StorageError::Other(format!(
                "cannot tell whether the commit applied (it may have): etcd compacted its \
                 history (to revision {}) before it was checked; check, and retry if need be",
                r.compact_revision()
            )));
        }
        if r.canceled() {
            return Err(canceled(&r));
        }
        if let Some(kv) = r.events().iter().find_map(|e| e.kv()) {
            let ours = kv.value() == fence.value.as_ref();
            if ours {
                tracing::info!(
                    revision = kv.mod_revision(),
                    "a commit sent again had applied already"
                );
            }
            return Ok(CommitResult {
                succeeded: ours,
                revision: if ours { kv.mod_revision() } else { 0 },
            });
        }
    }
}

/// Splits one watch response into batches, one per revision.
fn batches(resp: &ec::WatchResponse) -> Vec<WatchBatch> {
    let mut out: Vec<WatchBatch> = Vec::new();
    for ev in resp.events() {
        let Some(kv) = ev.kv() else { continue };
        let rev = kv.mod_revision();
        let kind = match ev.event_type() {
            ec::EventType::Put => EventKind::Put,
            ec::EventType::Delete => EventKind::Delete,
        };
        let event = Event {
            kind,
            key: Bytes::copy_from_slice(kv.key()),
            value: (kind == EventKind::Put).then(|| Bytes::copy_from_slice(kv.value())),
            prev_value: ev.prev_kv().map(|p| Bytes::copy_from_slice(p.value())),
            mod_revision: rev,
        };
        match out.last_mut() {
            Some(b) if b.revision == rev => b.events.push(event),
            _ => out.push(WatchBatch {
                revision: rev,
                events: vec![event],
            }),
        }
    }
    out
}

enum WatchEnd {
    /// The consumer is gone.
    Dropped,
    /// Fatal: send it and stop.
    Fatal(StorageError),
    /// The connection broke: resume.
    Broken(StorageError),
}

/// Creates an etcd watch from `from` and waits for its creation.
async fn open_watch(
    inner: &Inner,
    prefix: &[u8],
    from: Revision,
    prev: bool,
) -> Result<ec::WatchStream, StorageError> {
    match open_watch_once(inner, prefix, from, prev).await {
        // etcd refuses a watch with a token it no longer knows (it restarted,
        // or the token expired) by canceling it, which etcd-client's token
        // refresh does not see: authenticate again and retry once.
        Err(StorageError::Other(m))
            if inner.credentials.is_some() && m.contains("permission denied") =>
        {
            inner
                .client
                .refresh_token()
                .await
                .map_err(|e| map_err(e, None))?;
            open_watch_once(inner, prefix, from, prev).await
        }
        r => r,
    }
}

async fn open_watch_once(
    inner: &Inner,
    prefix: &[u8],
    from: Revision,
    prev: bool,
) -> Result<ec::WatchStream, StorageError> {
    let mut wc = inner.watch.clone();
    let opts = ec::WatchOptions::new()
        .with_range(prefix_end(prefix))
        .with_start_revision(from);
    let opts = if prev { opts.with_prev_key() } else { opts };
    let mut stream = wc
        .watch(prefix.to_vec(), Some(opts))
        .await
        .map_err(|e| map_err(e, None))?;
    // The first response says whether the watch was created, or canceled at
    // once because `from` is compacted.
    let first = stream.message().await.map_err(|e| map_err(e, None))?;
    match first {
        None => Err(StorageError::Unavailable(
            "etcd closed the watch before creating it".into(),
        )),
        Some(r) if r.compact_revision() > 0 => Err(StorageError::Compacted {
            compacted: r.compact_revision(),
        }),
        Some(r) if r.canceled() => Err(canceled(&r)),
        Some(r) if r.created() => Ok(stream),
        Some(_) => Err(StorageError::Other(
            "etcd's first watch response was not its creation".into(),
        )),
    }
}

fn canceled(r: &ec::WatchResponse) -> StorageError {
    if r.compact_revision() > 0 {
        return StorageError::Compacted {
            compacted: r.compact_revision(),
        };
    }
    let reason = r.cancel_reason();
    if reason.contains("no leader") || reason.is_empty() {
        StorageError::Unavailable(format!("etcd canceled the watch: {reason}"))
    } else {
        StorageError::Other(format!("etcd canceled the watch: {reason}"))
    }
}

/// Forwards one etcd watch until it ends; `next` is the next revision due.
async fn pump(
    stream: &mut ec::WatchStream,
    tx: &mpsc::Sender<Result<WatchBatch, StorageError>>,
    next: &mut Revision,
) -> WatchEnd {
    loop {
        let msg = tokio::select! {
            _ = tx.closed() => return WatchEnd::Dropped,
            m = stream.message() => m,
        };
        let resp = match msg {
            Ok(Some(r)) => r,
            Ok(None) => {
                return WatchEnd::Broken(StorageError::Unavailable(
                    "etcd ended the watch stream".into(),
                ))
            }
            Err(e) => {
                return match map_err(e, None) {
                    e @ StorageError::Unavailable(_) => WatchEnd::Broken(e),
                    e => WatchEnd::Fatal(e),
                }
            }
        };
        for b in batches(&resp) {
            // After a resume, skip what was already delivered.
            if b.revision < *next {
                continue;
            }
            *next = b.revision + 1;
            if tx.send(Ok(b)).await.is_err() {
                return WatchEnd::Dropped;
            }
        }
        if resp.canceled() {
            return match canceled(&resp) {
                e @ StorageError::Unavailable(_) => WatchEnd::Broken(e),
                e => WatchEnd::Fatal(e),
            };
        }
    }
}

/// The task behind a [`WatchStream`]: pumps, and resumes broken watches.
async fn watch_task(
    inner: Arc<Inner>,
    prefix: Vec<u8>,
    prev: bool,
    mut next: Revision,
    mut stream: ec::WatchStream,
    tx: mpsc::Sender<Result<WatchBatch, StorageError>>,
) {
    loop {
        let err = match pump(&mut stream, &tx, &mut next).await {
            WatchEnd::Dropped => return,
            WatchEnd::Fatal(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
            WatchEnd::Broken(e) => e,
        };
        drop(stream);
        let broke = Instant::now();
        let mut delay = Duration::from_millis(50);
        let mut last_err = err;
        stream = loop {
            if broke.elapsed() > WATCH_RESUME_FOR {
                let _ = tx.send(Err(last_err)).await;
                return;
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(1));
            let attempt = tokio::time::timeout(
                inner.request_timeout,
                open_watch(&inner, &prefix, next, prev),
            )
            .await
            .unwrap_or_else(|_| {
                Err(StorageError::Unavailable(
                    "etcd watch creation timed out".into(),
                ))
            });
            // Only a success is recorded in the liveness: with several
            // members, an attempt on a dead one says little about the others.
            match attempt {
                Ok(s) => {
                    inner.liveness.record(&Ok(()));
                    break s;
                }
                Err(e @ StorageError::Unavailable(_)) => last_err = e,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        };
        tracing::debug!(next, "etcd watch resumed");
    }
}

impl EtcdStore {
    /// An etcd watch of `prefix` from `from`, with previous values when `prev`.
    async fn watch_with(
        &self,
        prefix: &[u8],
        from: Revision,
        prev: bool,
    ) -> Result<WatchStream, StorageError> {
        if from < 0 {
            return Err(StorageError::Invalid(format!(
                "watch from a negative revision {from}"
            )));
        }
        let prefix = prefix.to_vec();
        let handle = self.handle.clone();
        let rx = self
            .run(Retry::Unavailable, move |inner| {
                let (prefix, handle) = (prefix.clone(), handle.clone());
                async move {
                    // "Now" is the next revision: etcd's start_revision 0 races
                    // with commits made just before the watch is created.
                    let from = if from == 0 {
                        current_revision(&inner).await? + 1
                    } else {
                        from
                    };
                    let stream = match open_watch(&inner, &prefix, from, prev).await {
                        Err(StorageError::Compacted { compacted: 0 }) => {
                            return Err(StorageError::Compacted {
                                compacted: compacted_revision(&inner).await?,
                            })
                        }
                        r => r?,
                    };
                    let (tx, rx) = mpsc::channel(64);
                    handle.spawn(watch_task(inner, prefix, prev, from, stream, tx));
                    Ok(rx)
                }
            })
            .await?;
        let guard = self.runtime.clone();
        Ok(Box::pin(futures_util::stream::unfold(
            (rx, guard, false),
            |(mut rx, guard, ended)| async move {
                if ended {
                    return None;
                }
                let item = rx.recv().await?;
                let ended = item.is_err();
                Some((item, (rx, guard, ended)))
            },
        )))
    }
}

#[async_trait]
impl Storage for EtcdStore {
    async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, Revision), StorageError> {
        let prefix = prefix.to_vec();
        self.run(Retry::Long, move |inner| {
            let prefix = prefix.clone();
            async move { range(&inner, prefix, 0).await }
        })
        .await
    }

    async fn range_at(
        &self,
        prefix: &[u8],
        revision: Revision,
    ) -> Result<Vec<KeyValue>, StorageError> {
        if revision <= 0 {
            return Err(StorageError::Invalid(format!(
                "no revision {revision} to read at"
            )));
        }
        let prefix = prefix.to_vec();
        self.run(Retry::Long, move |inner| {
            let prefix = prefix.clone();
            async move { range(&inner, prefix, revision).await.map(|(kvs, _)| kvs) }
        })
        .await
    }

    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StorageError> {
        if key.is_empty() {
            return Err(StorageError::Invalid("empty key".into()));
        }
        let key = key.to_vec();
        self.run(Retry::Unavailable, move |inner| {
            let key = key.clone();
            async move {
                let mut kv = inner.kv.clone();
                let r = kv.get(key, None).await.map_err(|e| map_err(e, None))?;
                Ok(r.kvs().first().map(key_value))
            }
        })
        .await
    }

    async fn commit(
        &self,
        compares: Vec<Compare>,
        writes: Vec<WriteOp>,
    ) -> Result<CommitResult, StorageError> {
        // Checked here as the memory store does, with its messages (etcd
        // would refuse them too, less clearly).
        let mut seen = HashSet::with_capacity(writes.len());
        for w in &writes {
            if w.key().is_empty() {
                return Err(StorageError::Invalid("a write with an empty key".into()));
            }
            if !seen.insert(w.key().clone()) {
                return Err(StorageError::Invalid(format!(
                    "key {:?} written twice in one commit",
                    String::from_utf8_lossy(w.key())
                )));
            }
        }
        for c in &compares {
            if c.key().is_empty() {
                return Err(StorageError::Invalid("a compare with an empty key".into()));
            }
        }
        let Some(fence) = fence_of(&compares, &writes) else {
            return self
                .run(Retry::NotSent, move |inner| {
                    let (compares, writes) = (compares.clone(), writes.clone());
                    async move { commit(&inner, compares, writes).await }
                })
                .await;
        };
        // A fenced commit is sent again after any failure, even one that
        // left it maybe applied (a member died with it, an election lost
        // it): of all its copies at most one applies, since each compares
        // the fence and puts it. A copy that fails its compare after an
        // earlier copy may have reached etcd finds out whether that one
        // applied.
        let size: usize = writes
            .iter()
            .map(|w| match w {
                WriteOp::Put { key, value, .. } => key.len() + value.len(),
                WriteOp::Delete { key } => key.len(),
            })
            .sum();
        let retry = if size > RESEND_EARLY_BYTES {
            Retry::FencedLarge
        } else {
            Retry::Fenced
        };
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        self.run(retry, move |inner| {
            let (compares, writes, fence) = (compares.clone(), writes.clone(), fence.clone());
            let earlier = sent.fetch_add(1, Ordering::Relaxed);
            async move {
                let r = commit(&inner, compares, writes).await?;
                if r.succeeded || earlier == 0 {
                    return Ok(r);
                }
                fence_winner(&inner, &fence).await
            }
        })
        .await
    }

    async fn watch(&self, prefix: &[u8], from: Revision) -> Result<WatchStream, StorageError> {
        self.watch_with(prefix, from, true).await
    }

    async fn watch_without_prev(
        &self,
        prefix: &[u8],
        from: Revision,
    ) -> Result<WatchStream, StorageError> {
        self.watch_with(prefix, from, false).await
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.run(Retry::Unavailable, |inner| async move {
            current_revision(&inner).await
        })
        .await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StorageError> {
        if ttl.is_zero() {
            return Err(StorageError::Invalid("lease TTL must be positive".into()));
        }
        // Whole seconds, rounded up.
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let secs = i64::try_from(secs)
            .map_err(|_| StorageError::Invalid(format!("lease TTL {ttl:?} too long")))?;
        // A grant repeated after a lost answer leaves an unused lease that
        // expires by itself: harmless.
        self.run(Retry::Unavailable, move |inner| async move {
            let mut lc = inner.client.lease_client();
            let r = lc.grant(secs, None).await.map_err(|e| map_err(e, None))?;
            if !r.error().is_empty() {
                return Err(StorageError::Other(format!(
                    "etcd lease grant: {}",
                    r.error()
                )));
            }
            Ok(r.id())
        })
        .await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StorageError> {
        self.run(Retry::Unavailable, move |inner| async move {
            let mut lc = inner.client.lease_client();
            // etcd-client sends one request and checks the first answer's
            // TTL (0: the lease is gone); the stream closes when dropped.
            let (_keeper, _stream) = lc
                .keep_alive(lease)
                .await
                .map_err(|e| map_err(e, Some(lease)))?;
            Ok(())
        })
        .await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StorageError> {
        self.run(Retry::NotSent, move |inner| async move {
            let mut lc = inner.client.lease_client();
            lc.revoke(lease)
                .await
                .map_err(|e| map_err(e, Some(lease)))?;
            Ok(())
        })
        .await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.run(Retry::NotSent, move |inner| async move {
            let mut kv = inner.kv.clone();
            match kv.compact(revision, None).await {
                Ok(_) => Ok(()),
                Err(e) => match map_err(e, None) {
                    StorageError::Compacted { .. } => Err(StorageError::Compacted {
                        compacted: compacted_revision(&inner).await?,
                    }),
                    e => Err(e),
                },
            }
        })
        .await
    }

    fn kind(&self) -> &'static str {
        "etcd"
    }

    async fn members(&self) -> Result<Option<ClusterView>, StorageError> {
        self.run(Retry::Unavailable, |inner| async move {
            cluster_view(&inner).await
        })
        .await
        .map(Some)
    }

    fn liveness(&self) -> Option<watch::Receiver<bool>> {
        Some(self.inner.liveness.tx.subscribe())
    }

    fn unreachable_reason(&self) -> Option<String> {
        self.inner.liveness.reason.lock().ok()?.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"a/"), b"a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn unreachable_etcd_is_unavailable() {
        let port = free_port();
        let s = EtcdStore::connect(EtcdOptions {
            connect_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(500),
            probe_interval: Duration::from_millis(100),
            ..EtcdOptions::new([format!("127.0.0.1:{port}")])
        })
        .await
        .unwrap();
        let started = Instant::now();
        let e = s.current_revision().await.unwrap_err();
        assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");
        let e = s
            .commit(vec![], vec![WriteOp::put("k", "v")])
            .await
            .unwrap_err();
        assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");
        match s.watch(b"k", 0).await {
            Err(StorageError::Unavailable(_)) => {}
            Err(e) => panic!("watch: {e:?}"),
            Ok(_) => panic!("a watch on an unreachable etcd"),
        }
        // Three requests of at most 500 ms each.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(!s.is_connected());
        let live = s.liveness().unwrap();
        assert!(!*live.borrow());
    }

    #[tokio::test]
    async fn invalid_options_fail_connect() {
        let invalid = |o: EtcdOptions| async move {
            match EtcdStore::connect(o).await {
                Err(StorageError::Invalid(m)) => m,
                Err(e) => panic!("{e:?}"),
                Ok(_) => panic!("connected with invalid options"),
            }
        };
        invalid(EtcdOptions::new(Vec::<String>::new())).await;
        let m = invalid(EtcdOptions {
            password: Some("secret".into()),
            ..EtcdOptions::default()
        })
        .await;
        assert!(m.contains("password without a user"), "{m}");
        let m = invalid(EtcdOptions {
            tls: Some(EtcdTls {
                ca: Some("/nonexistent/ca.pem".into()),
                ..EtcdTls::default()
            }),
            ..EtcdOptions::default()
        })
        .await;
        assert!(m.contains("/nonexistent/ca.pem"), "{m}");
        invalid(EtcdOptions {
            probe_interval: Duration::ZERO,
            ..EtcdOptions::default()
        })
        .await;
        invalid(EtcdOptions::new(["http://[bad"])).await;
    }

    #[tokio::test]
    async fn the_probe_ends_with_the_store() {
        let s = EtcdStore::connect(EtcdOptions {
            probe_interval: Duration::from_millis(10),
            ..EtcdOptions::new([format!("127.0.0.1:{}", free_port())])
        })
        .await
        .unwrap();
        let weak = Arc::downgrade(&s.inner);
        let mut live = s.liveness().unwrap();
        drop(s);
        // The runtime is shut down with the store: the probe is gone, the
        // liveness channel closed, nothing holds the shared state.
        tokio::time::timeout(Duration::from_secs(5), async {
            while live.changed().await.is_ok() {}
        })
        .await
        .unwrap();
        assert!(weak.upgrade().is_none());
    }
}
