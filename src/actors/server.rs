//! Starting a server: the databases, `_Server`, the lock table and one
//! listener per remote, with sessions on the databases' arbiter or spread over extra ones.

use crate::actors::database::{Backend, DatabaseActor, InternalTransact, Shared};
use crate::actors::loader::{ensure_record, stored_records, OpenError};
use crate::actors::lock_table::LockTable;
use crate::actors::registry::{DbEntry, Registry};
use crate::actors::remote_io::SessionStarter;
use crate::actors::remotes::{ConfigureError, RemotesActor, StopRemotes};
use crate::actors::server_db::{upsert_ops, DatabaseStatus, StatusBoard};
use crate::db::Database;
use crate::remote::socket_files::SocketFiles;
use crate::remote::tls::{TlsKeys, TlsSettings};
use crate::replica::Replica;
use crate::schema::DatabaseSchema;
use crate::storage::keys::Keys;
use crate::storage::log::{LogStore, MemoryLog};
use crate::storage::Storage;
use actix::prelude::*;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub use crate::remote::{Remote, RemoteError};

/// Where the databases live (DESIGN.md, Storage).
pub enum Store {
    /// In memory, nothing kept: a database per schema given to [`start`],
    /// created empty (tests, scratch servers).
    Memory,
    /// Local log stores, one per database, each with its contents (the file
    /// store: `FileLog::open_all`); the schemas given to [`start`] are not used.
    Local(Vec<LocalDb>),
    /// A store shared by several servers (etcd), `_Server` model
    /// `clustered`: databases open themselves from the store (retrying while
    /// it is unreachable), locks live in the store, and `_Server` follows
    /// the store's liveness.
    Shared(Arc<dyn Storage>),
}

/// A database of a local store: its log and what the log holds.
pub struct LocalDb {
    /// Where its commits are appended.
    pub log: Box<dyn LogStore>,
    /// Its contents as loaded.
    pub db: Database,
}

/// Everything needed to start a server.
pub struct ServerConfig {
    /// Where to listen or connect, as given (`ptcp:`, `pssl:`, `punix:`,
    /// `tcp:`, `ssl:`, `unix:`, `db:`; see [`Remote`]).
    pub remotes: Vec<String>,
    /// The TLS settings of `pssl:` and `ssl:` remotes.
    pub tls: TlsSettings,
    /// Inactivity probe for TCP connections (`None`: off); Unix sockets have none.
    pub inactivity_probe: Option<Duration>,
    /// Largest message accepted.
    pub max_message_size: usize,
    /// Where the databases live.
    pub store: Store,
    /// Key prefix and service name in a shared store.
    pub keys: Keys,
    /// With the clustered model: how long a dead server's locks outlive it.
    pub lock_ttl: Duration,
    /// Extra arbiters (threads) for sessions; 0 = sessions run on the
    /// arbiter that calls [`start`], with the databases.
    pub threads: usize,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A remote is malformed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// Listening failed.
    #[error("cannot listen on {remote}: {source}")]
    Listen {
        /// The remote.
        remote: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store failed.
    #[error("cannot load database {db} from the {kind} store: {message}")]
    Store {
        /// The database.
        db: String,
        /// The store kind.
        kind: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// A running server.
pub struct RunningServer {
    /// The served databases.
    pub registry: Arc<Registry>,
    /// The addresses actually bound (with the port chosen for `ptcp:0`).
    pub bound: Vec<String>,
    /// The remotes: add, remove, list.
    pub remotes: Addr<RemotesActor>,
    arbiters: Vec<Arbiter>,
    socket_files: Arc<SocketFiles>,
}

impl RunningServer {
    /// Stops the listeners' arbiters and removes Unix socket files.
    pub fn shutdown(self) {
        self.remotes.do_send(StopRemotes);
        for a in &self.arbiters {
            a.stop();
        }
        // Every punix: listener's, from the command line, the database or
        // add-remote: the remotes actor may not get to stop before the exit.
        self.socket_files.unlink_all();
    }
}

/// Starts databases, `_Server`, the lock table and listeners inside the
/// current actix system.
pub async fn start(
    config: ServerConfig,
    schemas: Vec<Arc<DatabaseSchema>>,
) -> Result<RunningServer, StartError> {
    let server_id = Uuid::new_v4();
    let cluster_id = Uuid::new_v4();
    let shared_store = match &config.store {
        Store::Shared(s) => Some(s.clone()),
        _ => None,
    };
    let locks = if let Some(store) = &shared_store {
        LockTable::shared(
            store.clone(),
            config.keys.clone(),
            server_id,
            config.lock_ttl,
        )
        .start()
    } else {
        LockTable::default().start()
    };
    let registry = Registry::new(server_id, locks);
    let arbiters: Vec<Arbiter> = (0..config.threads).map(|_| Arbiter::new()).collect();
    // Without extra threads, sessions share the databases' thread: every
    // request, reply and notification is then a same-thread hand-off instead
    // of a cross-thread wake-up (measured: about half the CPU per
    // transaction; see the benchmark table in README.md).
    // The session lanes: each lane's sessions are fanned out to by that
    // lane's Monitor actor of each database, on the same arbiter.
    let handles: Arc<Vec<ArbiterHandle>> = Arc::new(if arbiters.is_empty() {
        vec![Arbiter::current()]
    } else {
        arbiters.iter().map(|a| a.handle()).collect()
    });

    // _Server first, so databases can be announced in it.
    let server_schema = Arc::new(DatabaseSchema::server_schema());
    let server_replica = Replica::new(server_schema.clone(), config.keys.clone(), cluster_id);
    let server_addr =
        DatabaseActor::new(server_replica, Backend::Log(Box::new(MemoryLog)), server_id)
            .with_metrics(registry.metrics.clone())
            .start();
    registry.insert(
        "_Server",
        DbEntry {
            addr: server_addr.clone(),
            schema: server_schema.clone(),
        },
    );

    let mut statuses = vec![status("_Server", "standalone", server_schema, None, None)];
    if let Some(store) = &shared_store {
        let mut rows = Vec::new();
        for schema in &schemas {
            let mut st = status(
                &schema.name,
                "clustered",
                schema.clone(),
                None,
                Some(server_id),
            );
            st.connected = false;
            st.leader = false;
            rows.push(st);
        }
        statuses.extend(rows.iter().cloned());
        for st in &statuses {
            let _ = server_addr
                .send(InternalTransact {
                    ops: upsert_ops(st),
                })
                .await;
        }
        let board = StatusBoard::new(server_addr.clone(), rows).start();
        for schema in schemas.clone() {
            // Weak: the registry holds this database's actor.
            let weak = Arc::downgrade(&registry);
            let name = schema.name.clone();
            let shared = Shared {
                status: board.clone().recipient(),
                given_schema: Some(schema.clone()),
                on_schema_changed: Some(Box::new(move |s| {
                    if let Some(registry) = weak.upgrade() {
                        crate::actors::server_db::database_converted(&registry, &name, s);
                    }
                })),
            };
            let addr = DatabaseActor::shared(
                schema.clone(),
                config.keys.clone(),
                store.clone(),
                server_id,
                shared,
            )
            .with_lanes(handles.clone())
            .with_metrics(registry.metrics.clone())
            .start();
            let name = schema.name.clone();
            registry.insert(&name, DbEntry { addr, schema });
        }
        statuses.clear();
    }
    let local = match config.store {
        Store::Shared(_) => Vec::new(),
        Store::Memory => schemas
            .into_iter()
            .map(|schema| LocalDb {
                log: Box::new(MemoryLog),
                db: Database::new(schema),
            })
            .collect(),
        Store::Local(dbs) => dbs,
    };
    for LocalDb { log, db } in local {
        let schema = db.schema.clone();
        let name = schema.name.clone();
        let mut replica = Replica::new(schema.clone(), config.keys.clone(), cluster_id);
        replica.db = db;
        let addr = DatabaseActor::new(replica, Backend::Log(log), server_id)
            .with_lanes(handles.clone())
            .with_metrics(registry.metrics.clone())
            .start();
        registry.insert(
            &name,
            DbEntry {
                addr,
                schema: schema.clone(),
            },
        );
        statuses.push(status(&name, "standalone", schema, None, None));
    }
    for st in &statuses {
        let _ = server_addr
            .send(InternalTransact {
                ops: upsert_ops(st),
            })
            .await;
    }

    let keys = TlsKeys::new(TlsKeys::literal_files(&config.tls), config.tls.bootstrap);
    let starter = SessionStarter {
        registry: registry.clone(),
        handles: handles.clone(),
        next: Arc::new(AtomicUsize::new(0)),
        inactivity_probe: config.inactivity_probe,
        max_message_size: config.max_message_size,
        keys,
    };
    // ovsdb-server writes the status of remotes only into databases it is the only writer of.
    let mut remotes = RemotesActor::new(starter, config.tls.clone(), shared_store.is_none());
    let bound = remotes
        .configure_initial(&config.remotes)
        .map_err(|e| match e {
            ConfigureError::Remote(e) => StartError::Remote(e),
            ConfigureError::Listen { remote, source } => StartError::Listen { remote, source },
        })?;
    let socket_files = remotes.socket_files();
    let remotes = remotes.start();
    Ok(RunningServer {
        registry,
        bound,
        remotes,
        arbiters,
        socket_files,
    })
}

/// The databases a server on a shared store serves: with `given` schemas,
/// those (each checked against the schema stored for it, which the first
/// server stores; a different version is refused); without, every database
/// stored for the service, waiting for the store if it is unreachable. A
/// store unreachable with schemas given is no error: the databases open
/// when it answers.
pub async fn shared_schemas(
    store: &dyn Storage,
    keys: &Keys,
    given: Vec<Arc<DatabaseSchema>>,
) -> Result<Vec<Arc<DatabaseSchema>>, StartError> {
    let refused = |db: &str, e: OpenError| StartError::Store {
        db: db.to_string(),
        kind: store.kind(),
        message: e.to_string(),
    };
    if given.is_empty() {
        let mut delay = Duration::from_millis(100);
        loop {
            match stored_records(store, keys).await {
                Ok(recs) if recs.is_empty() => {
                    return Err(StartError::Store {
                        db: "(any)".into(),
                        kind: store.kind(),
                        message: format!(
                            "no database is stored for service {} under prefix {}: give a schema to create one",
                            keys.service(),
                            keys.prefix()
                        ),
                    })
                }
                Ok(recs) => return Ok(recs.into_iter().map(|r| r.schema).collect()),
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, "cannot list the stored databases; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(refused("(any)", e)),
            }
        }
    }
    for schema in &given {
        match ensure_record(store, keys, &schema.name, Some(schema)).await {
            Ok(_) => {}
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "the store is unreachable: serving anyway, databases open once it answers");
                break;
            }
            Err(e) => return Err(refused(&schema.name, e)),
        }
    }
    Ok(given)
}

fn status(
    name: &str,
    model: &'static str,
    schema: Arc<DatabaseSchema>,
    cid: Option<Uuid>,
    sid: Option<Uuid>,
) -> DatabaseStatus {
    DatabaseStatus {
        name: name.to_string(),
        model,
        connected: true,
        leader: true,
        schema,
        cid,
        sid,
        index: None,
    }
}
