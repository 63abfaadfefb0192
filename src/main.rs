//! The `oxsdb` command line, in the style of ovsdb-server.

use anyhow::{bail, Context};
use clap::Parser;
use oxsdb::actors::server::{self, Remote, ServerConfig};
use oxsdb::schema::DatabaseSchema;
use oxsdb::storage::keys::{Keys, DEFAULT_PREFIX};
use oxsdb::storage::memory::MemoryStore;
use std::path::PathBuf;
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
    /// Schema files (.ovsschema) of the databases to serve.
    #[arg(value_name = "SCHEMA")]
    schemas: Vec<PathBuf>,

    /// Listen for clients: ptcp:PORT[:IP] or punix:PATH (repeatable).
    #[arg(long = "remote", value_name = "REMOTE")]
    remotes: Vec<String>,

    /// Where committed data lives: memory (nothing kept across restarts).
    #[arg(long, value_name = "STORE", default_value = "memory")]
    store: String,

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

    /// Write the process id to this file (removed at exit).
    #[arg(long, value_name = "FILE")]
    pidfile: Option<PathBuf>,

    /// Log to this file instead of standard error.
    #[arg(long = "log-file", value_name = "FILE")]
    log_file: Option<PathBuf>,

    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Number of threads serving client connections (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    match &cli.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("{}: cannot open log file", path.display()))?;
            builder.with_writer(std::sync::Mutex::new(file)).init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("oxsdb: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // Schemas first: a bad file is a one-line error naming it, before anything starts.
    let mut schemas = Vec::new();
    for path in &cli.schemas {
        let s = DatabaseSchema::from_file(path).map_err(anyhow::Error::msg)?;
        schemas.push(Arc::new(s));
    }
    if schemas.is_empty() {
        bail!("no schema given: oxsdb [OPTIONS] SCHEMA... (see --help)");
    }
    let remotes = cli
        .remotes
        .iter()
        .map(|r| r.parse::<Remote>())
        .collect::<Result<Vec<_>, _>>()?;
    if cli.store != "memory" {
        bail!(
            "--store={}: only the memory store is available in this build",
            cli.store
        );
    }
    let service = cli
        .service
        .clone()
        .unwrap_or_else(|| schemas[0].name.to_lowercase());
    let keys = Keys::new(&cli.prefix, &service).map_err(anyhow::Error::msg)?;
    init_logging(&cli)?;
    if let Some(p) = &cli.pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("{}: cannot write pidfile", p.display()))?;
    }
    let probe = (cli.inactivity_probe > 0).then(|| Duration::from_millis(cli.inactivity_probe));
    let config = ServerConfig {
        remotes,
        inactivity_probe: probe,
        max_message_size: cli.max_message_size,
        store: MemoryStore::new(),
        keys,
        model: "standalone",
        threads: cli.threads,
    };
    let sys = actix::System::new();
    let result = sys.block_on(async move {
        let running = server::start(config, schemas).await?;
        for b in &running.bound {
            eprintln!("oxsdb: listening on {b}");
        }
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.shutdown();
        Ok::<(), anyhow::Error>(())
    });
    if let Some(p) = &cli.pidfile {
        let _ = std::fs::remove_file(p);
    }
    result
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
