//! The `oxsdb` command line, in the style of ovsdb-server.

use anyhow::{bail, Context};
use clap::Parser;
use oxsdb::actors::server::{self, LocalDb, Remote, ServerConfig, Store};
use oxsdb::metrics::args::MetricsArgs;
use oxsdb::process::args::{absolute, ovs_style_args, program_name, DaemonArgs};
use oxsdb::process::daemon;
use oxsdb::process::logging;
use oxsdb::process::pidfile::Pidfile;
use oxsdb::process::signals::Signals;
use oxsdb::process::ssl_args::SslArgs;
use oxsdb::schema::DatabaseSchema;
use oxsdb::storage::db_record::clustered_schema;
use oxsdb::storage::etcd::{EtcdOptions, EtcdStore, EtcdTls};
use oxsdb::storage::file_log::{FileDb, FileLog, FileOptions};
use oxsdb::storage::keys::{Keys, DEFAULT_PREFIX};
use oxsdb::storage::ovsdb_log::LogReader;
use oxsdb::storage::Storage;
use oxsdb::unixctl::ovsdb::{commands, ControlStore, ServerControl};
use oxsdb::unixctl::server::ControlServer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// oxsdb: an OVSDB server (RFC 7047 and ovsdb-server's extensions).
///
/// Serves the databases of the given schema files to ovsdb-client,
/// ovn-nbctl, ovn-northd, ovs-vsctl and the OVSDB IDLs, exactly as
/// ovsdb-server does.
#[derive(Parser, Debug)]
#[command(name = "oxsdb", version, about, long_about = None)]
struct Cli {
    /// Databases to serve: OVSDB database files (served in place, e.g. made by
    /// `ovsdb-tool create` or ovsdb-server) or schema files (.ovsschema; the
    /// database is created as DATA_DIR/<name>.db on first start).
    #[arg(value_name = "DATABASE|SCHEMA")]
    schemas: Vec<PathBuf>,

    /// Serve clients: listen on ptcp:PORT[:IP], pssl:PORT[:IP] or
    /// punix:PATH, connect out to tcp:IP:PORT, ssl:IP:PORT or unix:PATH, or
    /// follow the remotes a database column holds, db:DB,TABLE,COLUMN
    /// (repeatable; IPv6 addresses in brackets, e.g. ptcp:6641:[::1]).
    #[arg(long = "remote", value_name = "REMOTE")]
    remotes: Vec<String>,

    /// Where committed data lives: file (OVSDB database files, durable, the
    /// default), memory (nothing kept across restarts) or etcd (an etcd v3
    /// cluster that any number of oxsdb servers share).
    #[arg(long, value_name = "STORE", default_value = "file")]
    store: String,

    /// etcd members to use with --store=etcd: URL[,URL...] (http://host:2379,
    /// or https:// with the TLS options); repeatable.
    #[arg(
        long = "etcd-endpoints",
        value_name = "URLS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    etcd_endpoints: Vec<String>,

    /// PEM file of the CA that signed the etcd members' certificates.
    #[arg(long = "etcd-cacert", value_name = "FILE")]
    etcd_cacert: Option<PathBuf>,

    /// PEM client certificate for etcd members that check client certificates.
    #[arg(long = "etcd-cert", value_name = "FILE")]
    etcd_cert: Option<PathBuf>,

    /// PEM key of --etcd-cert.
    #[arg(long = "etcd-key", value_name = "FILE")]
    etcd_key: Option<PathBuf>,

    /// etcd user, for etcd with authentication enabled.
    #[arg(long = "etcd-user", value_name = "NAME")]
    etcd_user: Option<String>,

    /// Password of --etcd-user (or the environment variable OXSDB_ETCD_PASSWORD).
    #[arg(
        long = "etcd-password",
        value_name = "PASSWORD",
        env = "OXSDB_ETCD_PASSWORD",
        hide_env_values = true
    )]
    etcd_password: Option<String>,

    /// Milliseconds one etcd request may take before it fails (a dead etcd
    /// fails transactions within about this long).
    #[arg(long = "etcd-timeout", value_name = "MS", default_value_t = 5000)]
    etcd_timeout: u64,

    /// Milliseconds to establish a connection to an etcd member.
    #[arg(
        long = "etcd-connect-timeout",
        value_name = "MS",
        default_value_t = 3000
    )]
    etcd_connect_timeout: u64,

    /// Seconds a killed server's OVSDB locks outlive it (its etcd lease's TTL;
    /// etcd rounds up to whole seconds, at least 2 with default settings).
    #[arg(long = "lock-ttl", value_name = "SECONDS", default_value_t = 5)]
    lock_ttl: u64,

    /// Directory of the database files created from schemas (file store).
    #[arg(long = "data-dir", value_name = "DIR", default_value = ".")]
    data_dir: PathBuf,

    /// fsync every commit before replying (file store); without it only
    /// transactions with a durable "commit" operation are fsynced.
    #[arg(long)]
    fsync: bool,

    /// Compact a database file once it exceeds this many bytes and twice its
    /// size after the last compaction (file store; ovsdb-server's rule is 10 MB).
    #[arg(long = "compact-min-size", value_name = "BYTES", default_value_t = 10 << 20)]
    compact_min_size: u64,

    /// ... and at least this many seconds passed since the last compaction
    /// (ovsdb-server waits 10 minutes).
    #[arg(
        long = "compact-min-interval",
        value_name = "SECONDS",
        default_value_t = 600
    )]
    compact_min_interval: u64,

    /// Milliseconds of client silence before the server sends an echo (TCP
    /// only; a second silent interval closes the connection); 0 disables.
    #[arg(long = "inactivity-probe", value_name = "MS", default_value_t = 5000)]
    inactivity_probe: u64,

    /// Largest JSON-RPC message accepted, in bytes; a larger one closes that connection.
    #[arg(long = "max-message-size", value_name = "BYTES", default_value_t = oxsdb::codec::framing::DEFAULT_MAX_MESSAGE_SIZE)]
    max_message_size: usize,

    /// Key prefix in the store.
    #[arg(long = "etcd-prefix", value_name = "PREFIX", default_value = DEFAULT_PREFIX)]
    prefix: String,

    /// Service name in the store (default: the first database's name in lower case).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,

    /// Threads serving client connections besides the one running the
    /// databases (0: everything on one thread, which costs the least CPU per
    /// transaction; more help only when encoding and socket work for
    /// thousands of clients outweigh the databases' work).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,

    /// Daemon, logging and control-socket options (ovsdb-server's).
    #[command(flatten)]
    daemon: DaemonArgs,

    /// Prometheus metrics.
    #[command(flatten)]
    metrics: MetricsArgs,

    /// ovsdb-server's SSL options.
    #[command(flatten)]
    ssl: SslArgs,
}

fn main() {
    let cli = Cli::parse_from(ovs_style_args(std::env::args_os()));
    if let Err(e) = run(cli) {
        eprintln!("oxsdb: {e:#}");
        std::process::exit(1);
    }
}

/// What one positional argument is: a database file or a schema file.
enum Source {
    Database(PathBuf, String),
    Schema(Arc<DatabaseSchema>),
}

/// Database files start with OVSDB's record header; anything else must be a schema.
fn classify(path: &Path) -> anyhow::Result<Source> {
    let mut head = [0u8; 13];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    if head[..n].starts_with(b"OVSDB JSON ") || head[..n].starts_with(b"OVSDB CLUSTER") {
        let file = std::fs::File::open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        let mut reader = LogReader::new(std::io::BufReader::new(file));
        let name = match reader.read() {
            Ok(Some(rec)) => rec
                .json
                .get("name")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            _ => None,
        }
        .with_context(|| {
            format!(
                "{}: the first record is not a database schema",
                path.display()
            )
        })?;
        return Ok(Source::Database(path.to_path_buf(), name));
    }
    let s = DatabaseSchema::from_file(path).map_err(anyhow::Error::msg)?;
    Ok(Source::Schema(Arc::new(s)))
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    // A daemon leaves its directory: every path becomes absolute first.
    for p in &mut cli.schemas {
        *p = absolute(p);
    }
    cli.data_dir = absolute(&cli.data_dir);
    // Arguments first: a bad file is a one-line error naming it, before anything starts.
    let sources = cli
        .schemas
        .iter()
        .map(|p| classify(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if sources.is_empty() && cli.store != "etcd" {
        bail!("no database or schema given: oxsdb [OPTIONS] DATABASE|SCHEMA... (see --help)");
    }
    let tls = cli.ssl.settings()?;
    // Malformed remotes stop the start with a message naming them.
    for r in &cli.remotes {
        r.parse::<Remote>()?;
    }
    let first_name = match sources.first() {
        Some(Source::Database(_, n)) => Some(n.clone()),
        Some(Source::Schema(s)) => Some(s.name.clone()),
        None => None,
    };
    let service = match (&cli.service, first_name) {
        (Some(s), _) => s.clone(),
        (None, Some(n)) => n.to_lowercase(),
        (None, None) => bail!(
            "--store=etcd without a schema serves the databases stored for a service: name it with --service"
        ),
    };
    let keys = Keys::new(&cli.prefix, &service).map_err(anyhow::Error::msg)?;
    let program = program_name();
    let options = cli.daemon.daemon_options(&program);
    // Before any thread exists (fork copies only this one): the etcd
    // store and the server start threads.
    let mut daemon = daemon::start_if_asked(&options)?;
    // Logging next: opening database files reports what it repairs.
    let log = logging::init(
        &cli.daemon.log_specs(),
        cli.daemon.log_file_path(&program).as_deref(),
    )?;
    let pidfile = cli
        .daemon
        .pidfile_path(&program)
        .map(|p| Pidfile::create(&p, cli.daemon.overwrite_pidfile))
        .transpose()?;
    let mut files = Vec::new();
    let mut control_store = None;
    let (store, schemas): (Store, Vec<Arc<DatabaseSchema>>) = match cli.store.as_str() {
        "etcd" => {
            let mut schemas = Vec::new();
            for s in sources {
                match s {
                    Source::Schema(s) => schemas.push(clustered_schema(s)),
                    Source::Database(p, _) => bail!(
                        "{}: --store=etcd serves schemas only; load a database file into etcd by serving its schema and restoring a backup (ovsdb-client backup, then ovsdb-client restore --force: on etcd the database is clustered, its schema without ephemeral columns)",
                        p.display()
                    ),
                }
            }
            let tls =
                (cli.etcd_cacert.is_some() || cli.etcd_cert.is_some() || cli.etcd_key.is_some())
                    .then(|| EtcdTls {
                        ca: cli.etcd_cacert.clone(),
                        cert: cli.etcd_cert.clone(),
                        key: cli.etcd_key.clone(),
                        domain: None,
                    });
            let options = EtcdOptions {
                endpoints: cli.etcd_endpoints.clone(),
                user: cli.etcd_user.clone(),
                password: cli.etcd_password.clone(),
                tls,
                connect_timeout: Duration::from_millis(cli.etcd_connect_timeout),
                request_timeout: Duration::from_millis(cli.etcd_timeout),
                // An etcd user needs a role on the prefix only.
                scope: keys.service_prefix().to_vec(),
                ..EtcdOptions::default()
            };
            // The store runs its client on a runtime of its own; this one only waits for it.
            let store: Arc<dyn Storage> = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(EtcdStore::connect(options))
                .map_err(|e| anyhow::anyhow!("etcd: {e}"))?;
            (Store::Shared(store), schemas)
        }
        "memory" => {
            let mut schemas = Vec::new();
            for s in sources {
                match s {
                    Source::Schema(s) => schemas.push(s),
                    Source::Database(p, _) => {
                        bail!("{}: --store=memory serves schemas only; use --store=file for database files", p.display())
                    }
                }
            }
            (Store::Memory, schemas)
        }
        "file" => {
            let dbs: Vec<FileDb> = sources
                .into_iter()
                .map(|s| match s {
                    Source::Database(path, _) => FileDb { path, schema: None },
                    Source::Schema(schema) => FileDb {
                        path: cli.data_dir.join(format!("{}.db", schema.name)),
                        schema: Some(schema),
                    },
                })
                .collect();
            let options = FileOptions {
                fsync_every_commit: cli.fsync,
                compact_min_bytes: cli.compact_min_size,
                compact_min_interval: Duration::from_secs(cli.compact_min_interval),
                ..FileOptions::default()
            };
            let opened = FileLog::open_all(dbs, options.clone()).map_err(anyhow::Error::msg)?;
            files = opened
                .iter()
                .map(|(log, db)| (db.schema.name.clone(), log.path().to_path_buf()))
                .collect();
            control_store = Some(ControlStore::File(options));
            let dbs = opened
                .into_iter()
                .map(|(log, db)| LocalDb {
                    log: Box::new(log),
                    db,
                })
                .collect();
            (Store::Local(dbs), Vec::new())
        }
        other => bail!("--store={other}: unknown store; use file, memory or etcd"),
    };
    let control_store = match (&store, control_store) {
        (Store::Shared(s), _) => ControlStore::Shared(s.clone()),
        (_, Some(c)) => c,
        _ => ControlStore::Memory,
    };
    let probe = (cli.inactivity_probe > 0).then(|| Duration::from_millis(cli.inactivity_probe));
    let config = ServerConfig {
        remotes: cli.remotes.clone(),
        tls,
        inactivity_probe: probe,
        max_message_size: cli.max_message_size,
        store,
        keys: keys.clone(),
        lock_ttl: Duration::from_secs(cli.lock_ttl.max(1)),
        threads: cli.threads,
    };
    let sys = actix::System::new();
    let result = sys.block_on(async move {
        // Handlers first: a SIGTERM right after "listening" must still exit cleanly.
        let signals = Signals::install();
        let schemas = match &config.store {
            Store::Shared(store) => server::shared_schemas(&**store, &keys, schemas).await?,
            _ => schemas,
        };
        let running = server::start(config, schemas).await?;
        let metrics_at = match cli.metrics.metrics {
            Some(addr) => {
                let listener = oxsdb::metrics::http::bind(addr)
                    .await
                    .with_context(|| format!("--metrics={addr}: cannot listen"))?;
                let local = listener.local_addr()?;
                tracing::info!("serving metrics at http://{local}/metrics");
                oxsdb::metrics::http::serve(listener, running.registry.clone());
                Some(local)
            }
            None => None,
        };
        // A detaching server leaves its starter's terminal quiet (the log
        // has the same lines).
        if !daemon.detached() {
            for b in &running.bound {
                eprintln!("oxsdb: listening on {b}");
            }
            if let Some(local) = metrics_at {
                eprintln!("oxsdb: metrics at http://{local}/metrics");
            }
        }
        let exit = Arc::new(tokio::sync::Notify::new());
        let control = ServerControl {
            registry: running.registry.clone(),
            remotes: running.remotes.clone(),
            log: log.clone(),
            store: control_store,
            keys,
            files: Arc::new(std::sync::Mutex::new(files)),
        };
        let ctl = ControlServer::start_configured(
            cli.daemon
                .unixctl_path(&program, std::process::id())
                .as_deref(),
            cli.daemon.unixctl.is_some(),
            Arc::new(commands(control, &program)),
            exit.clone(),
        )?;
        daemon.ready()?;
        signals.wait(&exit, &log).await;
        tracing::info!("shutting down");
        running.shutdown();
        drop(ctl);
        Ok::<(), anyhow::Error>(())
    });
    drop(pidfile);
    result
}
