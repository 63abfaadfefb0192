//! The Remotes actor: the set of remotes ovsdb-server(1) describes — those
//! given with `--remote` or `ovsdb-server/add-remote`, with `db:` remotes
//! and `db:` TLS settings resolved from the database and followed as its
//! rows change (a monitor through an in-process client; listeners and
//! connections are added and removed to match) — and, on local stores,
//! each Connection row's `is_connected` and `status` written back every
//! 2.5 s as ovsdb-server writes them (not on a clustered store, where
//! ovsdb-server does not either).

use crate::actors::local_client::LocalClient;
use crate::actors::remote_io::{accept_loop, connect_loop, Listener, Live, SessionStarter};
use crate::actors::session::SetInactivityProbe;
use crate::actors::CloseSession;
use crate::db::monitor::MonitorVersion;
use crate::remote::db_column::{column_kind, string_column, ColumnKind};
use crate::remote::options::{strings, uuids, RemoteOptions};
use crate::remote::socket_files::SocketFiles;
use crate::remote::target::{DbColumn, Remote};
use crate::remote::tls::{TlsFiles, TlsSettings};
use actix::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the status columns are written and failed listeners retried (ovsdb-server: 2.5 s).
pub const STATUS_INTERVAL: Duration = Duration::from_millis(2500);

/// Rows read from the database, per (database, table).
type Rows = HashMap<(String, String), Vec<Map<String, Value>>>;

/// One remote being served.
struct Running {
    remote: Remote,
    live: Arc<Live>,
    task: tokio::task::JoinHandle<()>,
    bound_port: Option<u16>,
    unix_path: Option<PathBuf>,
}

impl Running {
    fn stop(self, why: &str, files: &SocketFiles) {
        self.task.abort();
        for s in self.live.open_sessions() {
            s.do_send(CloseSession {
                reason: why.to_string(),
            });
        }
        if let Some(p) = &self.unix_path {
            files.unlink(p);
        }
    }
}

/// The actor.
pub struct RemotesActor {
    starter: SessionStarter,
    tls: TlsSettings,
    write_status: bool,
    /// The remotes as configured (command line and add-remote), by name as given.
    configured: BTreeMap<String, Remote>,
    running: HashMap<String, Running>,
    rows: Rows,
    watched: HashSet<(String, String)>,
    client: Option<Rc<LocalClient>>,
    refreshing: bool,
    dirty: bool,
    last_errors: String,
    next_monitor: u64,
    /// The `punix:` listeners' socket files, shared with the server for its exit.
    socket_files: Arc<SocketFiles>,
}

/// Why a remote could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    /// A malformed remote.
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    /// A listener could not be bound.
    #[error("{remote}: listen failed: {source}")]
    Listen {
        /// The remote.
        remote: String,
        /// Why.
        source: std::io::Error,
    },
}

impl RemotesActor {
    /// An actor serving nothing yet.
    pub fn new(starter: SessionStarter, tls: TlsSettings, write_status: bool) -> RemotesActor {
        RemotesActor {
            starter,
            tls,
            write_status,
            configured: BTreeMap::new(),
            running: HashMap::new(),
            rows: Rows::new(),
            watched: HashSet::new(),
            client: None,
            refreshing: false,
            dirty: false,
            last_errors: String::new(),
            next_monitor: 0,
            socket_files: Arc::default(),
        }
    }

    /// The socket files of the `punix:` listeners, for the server to remove at exit.
    pub fn socket_files(&self) -> Arc<SocketFiles> {
        self.socket_files.clone()
    }

    /// Configures the command line's remotes before the actor starts:
    /// listeners are bound now, so that a taken port stops the start;
    /// returns the bound addresses (with the port chosen for port 0).
    pub fn configure_initial(&mut self, names: &[String]) -> Result<Vec<String>, ConfigureError> {
        let mut bound = Vec::new();
        for name in names {
            let remote: Remote = name.parse()?;
            self.configured.insert(name.clone(), remote.clone());
            if let Remote::Db(_) = remote {
                continue;
            }
            let running = self
                .start_remote(&remote, RemoteOptions::default())
                .map_err(|source| ConfigureError::Listen {
                    remote: name.clone(),
                    source,
                })?;
            bound.push(running.1);
            self.running.insert(name.clone(), running.0);
        }
        Ok(bound)
    }

    fn start_remote(
        &self,
        remote: &Remote,
        options: RemoteOptions,
    ) -> std::io::Result<(Running, String)> {
        let dscp = options.dscp;
        let live = Arc::new(Live {
            options: std::sync::RwLock::new(options),
            ..Live::default()
        });
        if remote.is_passive() {
            let listener = Listener::bind(remote, dscp)?;
            let bound = listener.bound_name(remote);
            let port = listener.port();
            tracing::info!("listening on {bound}");
            let task = actix::spawn(accept_loop(
                listener,
                remote.clone(),
                self.starter.clone(),
                live.clone(),
            ));
            let unix_path = match remote {
                Remote::Unix(p) => {
                    self.socket_files.add(p);
                    Some(p.clone())
                }
                _ => None,
            };
            Ok((
                Running {
                    remote: remote.clone(),
                    live,
                    task,
                    bound_port: port,
                    unix_path,
                },
                bound,
            ))
        } else {
            let task = actix::spawn(connect_loop(
                remote.clone(),
                self.starter.clone(),
                live.clone(),
            ));
            Ok((
                Running {
                    remote: remote.clone(),
                    live,
                    task,
                    bound_port: None,
                    unix_path: None,
                },
                remote.to_string(),
            ))
        }
    }

    fn schema(&self, db: &str) -> Option<Arc<crate::schema::DatabaseSchema>> {
        self.starter.registry.get(db).map(|e| e.schema.clone())
    }

    /// The `db:` columns in use: the remotes' and the TLS settings'.
    fn db_columns(&self) -> Vec<(String, DbColumn)> {
        let mut out: Vec<(String, DbColumn)> = self
            .configured
            .iter()
            .filter_map(|(n, r)| match r {
                Remote::Db(c) => Some((n.clone(), c.clone())),
                _ => None,
            })
            .collect();
        for (_, v) in self.tls.db_settings() {
            if let Some(Ok(c)) = DbColumn::parse(v) {
                out.push((v.to_string(), c));
            }
        }
        out
    }

    /// The (database, table) pairs whose rows the `db:` columns need.
    fn needed_tables(&self) -> HashSet<(String, String)> {
        let mut need = HashSet::new();
        for (name, c) in self.db_columns() {
            let schema = self.schema(&c.db);
            if let Ok(kind) = column_kind(schema.as_deref(), &c, &name) {
                need.insert((c.db.clone(), c.table.clone()));
                if let ColumnKind::Refs(t) = kind {
                    need.insert((c.db.clone(), t));
                }
            }
        }
        need
    }

    /// Monitors the tables not yet followed; each change triggers a refresh.
    fn watch(&mut self, ctx: &mut Context<Self>) {
        let Some(client) = self.client.clone() else {
            return;
        };
        for (db, table) in self.needed_tables() {
            if !self.watched.insert((db.clone(), table.clone())) {
                continue;
            }
            self.next_monitor += 1;
            let id = format!("remotes-{}", self.next_monitor);
            let (client, addr) = (client.clone(), ctx.address());
            ctx.spawn(
                async move {
                    let requests = json!({ table.as_str(): {} });
                    match client.monitor(&db, &id, MonitorVersion::V1, requests).await {
                        Ok((_, mut rx)) => {
                            addr.do_send(DbChanged);
                            while rx.recv().await.is_some() {
                                addr.do_send(DbChanged);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(
                                "cannot follow {db} table {table} for remotes: {e}; retrying"
                            );
                            addr.do_send(Unwatch { db, table });
                        }
                    }
                }
                .into_actor(self),
            );
        }
    }

    /// Reads the needed tables again and applies what they say.
    fn refresh(&mut self, ctx: &mut Context<Self>) {
        if self.refreshing {
            self.dirty = true;
            return;
        }
        let Some(client) = self.client.clone() else {
            return;
        };
        self.refreshing = true;
        self.dirty = false;
        let need = self.needed_tables();
        ctx.spawn(
            async move {
                let mut rows = Rows::new();
                for (db, table) in need {
                    let op = json!({"op": "select", "table": table, "where": []});
                    if let Ok(Value::Array(mut r)) = client.transact(&db, vec![op]).await {
                        let got = r
                            .first_mut()
                            .and_then(|r| r.get_mut("rows"))
                            .map(Value::take)
                            .and_then(|v| {
                                serde_json::from_value::<Vec<Map<String, Value>>>(v).ok()
                            });
                        if let Some(got) = got {
                            rows.insert((db, table), got);
                        }
                    }
                }
                rows
            }
            .into_actor(self)
            .map(|rows, act, ctx| {
                act.rows = rows;
                act.refreshing = false;
                act.apply(ctx);
                if act.dirty {
                    act.refresh(ctx);
                }
            }),
        );
    }

    fn rows_of(&self, db: &str, table: &str) -> &[Map<String, Value>] {
        self.rows
            .get(&(db.to_string(), table.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The remotes to serve now, with their options, and the errors met.
    fn resolve(&self) -> (BTreeMap<String, RemoteOptions>, Vec<String>) {
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, remote) in &self.configured {
            let Remote::Db(c) = remote else {
                out.entry(name.clone())
                    .or_insert_with(RemoteOptions::default);
                continue;
            };
            let schema = self.schema(&c.db);
            let kind = match column_kind(schema.as_deref(), c, name) {
                Ok(k) => k,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for row in self.rows_of(&c.db, &c.table) {
                match &kind {
                    ColumnKind::Strings => {
                        for t in strings(row.get(&c.column)) {
                            if t.starts_with("pfd:") {
                                tracing::warn!("pfd: remotes can only be specified on the command line; ignoring \"{t}\" from database");
                                continue;
                            }
                            out.entry(t).or_insert_with(RemoteOptions::default);
                        }
                    }
                    ColumnKind::Refs(t) => {
                        for u in uuids(row.get(&c.column)) {
                            let target = self
                                .rows_of(&c.db, t)
                                .iter()
                                .find(|r| uuids(r.get("_uuid")).first() == Some(&u))
                                .and_then(RemoteOptions::from_row);
                            match target {
                                Some((t, _)) if t.starts_with("pfd:") => tracing::warn!(
                                    "pfd: remotes can only be specified on the command line; ignoring \"{t}\" from database"
                                ),
                                // A row's options override those of a remote also given directly.
                                Some((t, o)) => {
                                    out.insert(t, o);
                                }
                                None => {}
                            }
                        }
                    }
                    ColumnKind::Other => {}
                }
            }
        }
        (out, errors)
    }

    /// The TLS settings with their `db:` columns resolved (ovsdb-server's
    /// query_db_string: the first non-empty string of the column).
    fn resolve_tls(&self, errors: &mut Vec<String>) -> TlsFiles {
        let one = |v: &Option<String>, errors: &mut Vec<String>| -> Option<String> {
            let v = v.as_ref()?;
            let Some(parsed) = DbColumn::parse(v) else {
                return Some(v.clone());
            };
            let c = match parsed {
                Ok(c) => c,
                Err(e) => {
                    errors.push(e.to_string());
                    return None;
                }
            };
            if let Err(e) = string_column(self.schema(&c.db).as_deref(), &c, v) {
                errors.push(e);
                return None;
            }
            self.rows_of(&c.db, &c.table)
                .iter()
                .flat_map(|r| strings(r.get(&c.column)))
                .find(|s| !s.is_empty())
        };
        // A setting that resolves to nothing leaves the one in use, as
        // stream-ssl.c ignores a null file name or value.
        let old = self.starter.keys.files();
        TlsFiles {
            private_key: one(&self.tls.private_key, errors).or(old.private_key),
            certificate: one(&self.tls.certificate, errors).or(old.certificate),
            ca_cert: one(&self.tls.ca_cert, errors).or(old.ca_cert),
            ssl_protocols: one(&self.tls.ssl_protocols, errors).or(old.ssl_protocols),
            ssl_ciphers: one(&self.tls.ssl_ciphers, errors).or(old.ssl_ciphers),
            ssl_ciphersuites: one(&self.tls.ssl_ciphersuites, errors).or(old.ssl_ciphersuites),
        }
    }

    /// Makes the served remotes and the TLS settings match the configuration and the rows.
    fn apply(&mut self, ctx: &mut Context<Self>) {
        let (wanted, mut errors) = self.resolve();
        let files = self.resolve_tls(&mut errors);
        if files != self.starter.keys.files() {
            self.starter.keys.set_files(files);
        }
        let gone: Vec<String> = self
            .running
            .iter()
            .filter(|(n, r)| match wanted.get(*n) {
                None => true,
                // A new role or DSCP is a new remote for ovsdb-server: its sessions are closed.
                Some(o) => r
                    .live
                    .options
                    .read()
                    .map(|c| c.role != o.role || c.dscp != o.dscp)
                    .unwrap_or(true),
            })
            .map(|(n, _)| n.clone())
            .collect();
        for n in gone {
            if let Some(r) = self.running.remove(&n) {
                tracing::info!("{n}: remote deconfigured");
                r.stop("remote deconfigured", &self.socket_files);
            }
        }
        for (name, options) in wanted {
            if let Some(r) = self.running.get(&name) {
                self.update_options(r, options);
                continue;
            }
            let remote = match name.parse::<Remote>() {
                Ok(Remote::Db(_)) => continue,
                Ok(r) => r,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            match self.start_remote(&remote, options) {
                Ok((r, _)) => {
                    self.running.insert(name, r);
                }
                Err(e) => errors.push(format!("{name}: listen failed: {e}")),
            }
        }
        // Logged when they change, not at every retry (ovsdb-server's report_error_if_changed).
        let errors = errors.join("\n");
        if !errors.is_empty() && errors != self.last_errors {
            tracing::warn!("{errors}");
        }
        self.last_errors = errors;
        self.watch(ctx);
    }

    /// New options for a remote being served, as ovsdb-server's
    /// ovsdb_jsonrpc_server_set_remotes applies them: the inactivity probe
    /// (and the backoff of an active remote) to its open sessions as well
    /// as to new ones; `read_only` stays as it was when the remote was
    /// created, for open and new sessions alike, until the remote is
    /// removed (a changed role recreates it, see [`RemotesActor::apply`]).
    fn update_options(&self, r: &Running, options: RemoteOptions) {
        let Ok(mut o) = r.live.options.write() else {
            return;
        };
        let old_probe = self.starter.probe_of(&r.remote, &o);
        let new_probe = self.starter.probe_of(&r.remote, &options);
        *o = RemoteOptions {
            read_only: o.read_only,
            ..options
        };
        drop(o);
        if old_probe != new_probe {
            for s in r.live.open_sessions() {
                s.do_send(SetInactivityProbe(new_probe));
            }
        }
    }

    /// ovsdb-server's status of one target (ovsdb_jsonrpc_server_get_remote_status).
    fn status_of(&self, target: &str) -> (bool, BTreeMap<String, String>) {
        // ovsdb-server reports from a zeroed status: where nothing sets
        // them, both ages are written as "0" (passive and unknown remotes).
        let zero_ages = || {
            BTreeMap::from([
                ("sec_since_connect".to_string(), "0".to_string()),
                ("sec_since_disconnect".to_string(), "0".to_string()),
            ])
        };
        let Some(r) = self.running.get(target) else {
            return (false, zero_ages());
        };
        let n = r.live.open_sessions().len();
        if r.remote.is_passive() {
            let mut m = zero_ages();
            if n > 1 {
                m.insert("n_connections".into(), n.to_string());
            }
            if let Some(p) = r.bound_port.filter(|p| *p != 0) {
                m.insert("bound_port".into(), p.to_string());
            }
            return (n > 0, m);
        }
        let reconnect = r.live.reconnect.lock().unwrap_or_else(|e| e.into_inner());
        match reconnect.as_ref() {
            Some(rc) => {
                let connected = rc.state == crate::remote::reconnect::State::Active;
                let mut m = rc.status(Instant::now());
                if connected {
                    m.extend(
                        r.live
                            .lock_keys()
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v)),
                    );
                }
                (connected, m)
            }
            None => (false, zero_ages()),
        }
    }

    /// Writes each referenced row's `is_connected` and `status` where they changed.
    fn write_status(&mut self, ctx: &mut Context<Self>) {
        if !self.write_status {
            return;
        }
        let Some(client) = self.client.clone() else {
            return;
        };
        let mut txns: HashMap<String, Vec<Value>> = HashMap::new();
        for (name, remote) in &self.configured {
            let Remote::Db(c) = remote else { continue };
            let Some(schema) = self.schema(&c.db) else {
                continue;
            };
            let Ok(ColumnKind::Refs(t)) = column_kind(Some(&schema), c, name) else {
                continue;
            };
            let Some(ts) = schema.table(&t) else { continue };
            let has = |col: &str| ts.column_index(col).is_some();
            for row in self.rows_of(&c.db, &c.table) {
                for u in uuids(row.get(&c.column)) {
                    let Some(target_row) = self
                        .rows_of(&c.db, &t)
                        .iter()
                        .find(|r| uuids(r.get("_uuid")).first() == Some(&u))
                    else {
                        continue;
                    };
                    let Some((target, _)) = RemoteOptions::from_row(target_row) else {
                        continue;
                    };
                    let (connected, status) = self.status_of(&target);
                    let mut new = Map::new();
                    if has("is_connected")
                        && target_row.get("is_connected") != Some(&json!(connected))
                    {
                        new.insert("is_connected".into(), json!(connected));
                    }
                    let status = json!([
                        "map",
                        status
                            .into_iter()
                            .map(|(k, v)| json!([k, v]))
                            .collect::<Vec<_>>()
                    ]);
                    if has("status") && target_row.get("status") != Some(&status) {
                        new.insert("status".into(), status);
                    }
                    if !new.is_empty() {
                        txns.entry(c.db.clone()).or_default().push(json!({
                            "op": "update", "table": t,
                            "where": [["_uuid", "==", ["uuid", u]]], "row": new,
                        }));
                    }
                }
            }
        }
        for (db, ops) in txns {
            let client = client.clone();
            ctx.spawn(
                async move {
                    match client.transact(&db, ops).await {
                        Ok(Value::Array(r)) => {
                            if let Some(e) = r.iter().find(|r| r.get("error").is_some()) {
                                tracing::error!("Failed to update remote status: {e}");
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!("Failed to update remote status: {e}"),
                    }
                }
                .into_actor(self),
            );
        }
    }
}

impl Actor for RemotesActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.client = Some(Rc::new(LocalClient::new(self.starter.registry.clone())));
        self.watch(ctx);
        self.refresh(ctx);
        ctx.run_interval(STATUS_INTERVAL, |act, ctx| {
            // Databases that opened late (etcd) and listeners that failed get another try.
            act.apply(ctx);
            act.write_status(ctx);
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        for (_, r) in self.running.drain() {
            r.stop("server stopping", &self.socket_files);
        }
    }
}

/// A followed table changed.
#[derive(Message)]
#[rtype(result = "()")]
struct DbChanged;

impl Handler<DbChanged> for RemotesActor {
    type Result = ();
    fn handle(&mut self, _: DbChanged, ctx: &mut Context<Self>) {
        self.refresh(ctx);
    }
}

/// A table could not be followed (its database is not open yet): try again later.
#[derive(Message)]
#[rtype(result = "()")]
struct Unwatch {
    db: String,
    table: String,
}

impl Handler<Unwatch> for RemotesActor {
    type Result = ();
    fn handle(&mut self, m: Unwatch, _: &mut Context<Self>) {
        self.watched.remove(&(m.db, m.table));
    }
}

/// `ovsdb-server/add-remote REMOTE`.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct AddRemote(pub String);

impl Handler<AddRemote> for RemotesActor {
    type Result = Result<(), String>;
    fn handle(&mut self, m: AddRemote, ctx: &mut Context<Self>) -> Result<(), String> {
        if m.0.starts_with("pfd:") {
            return Err("pfd: remotes can only be specified on the command line".into());
        }
        let remote: Remote = match DbColumn::parse(&m.0) {
            // ovsdb-server's wording for a malformed db: remote.
            Some(Err(_)) => return Err(format!("\"{}\": invalid syntax", m.0)),
            _ => {
                m.0.parse()
                    .map_err(|e: crate::remote::RemoteError| e.to_string())?
            }
        };
        if let Remote::Db(c) = &remote {
            column_kind(self.schema(&c.db).as_deref(), c, &m.0)?;
        }
        if self.configured.insert(m.0, remote).is_none() {
            self.apply(ctx);
            self.refresh(ctx);
        }
        Ok(())
    }
}

/// `ovsdb-server/remove-remote REMOTE`.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct RemoveRemote(pub String);

impl Handler<RemoveRemote> for RemotesActor {
    type Result = Result<(), String>;
    fn handle(&mut self, m: RemoveRemote, ctx: &mut Context<Self>) -> Result<(), String> {
        if self.configured.remove(&m.0).is_none() {
            return Err("no such remote".into());
        }
        self.apply(ctx);
        Ok(())
    }
}

/// `ovsdb-server/list-remotes`: the configured remotes, sorted.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct ListRemotes;

impl Handler<ListRemotes> for RemotesActor {
    type Result = Vec<String>;
    fn handle(&mut self, _: ListRemotes, _: &mut Context<Self>) -> Vec<String> {
        self.configured.keys().cloned().collect()
    }
}

/// Stops every remote (on shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRemotes;

impl Handler<StopRemotes> for RemotesActor {
    type Result = ();
    fn handle(&mut self, _: StopRemotes, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
