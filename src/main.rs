//! The `oxsdb` command line.

use clap::Parser;
use oxsdb::schema::DatabaseSchema;
use std::path::PathBuf;

/// oxsdb: an OVSDB server. This build holds the database engine; the network
/// server arrives with the actors layer.
#[derive(Parser, Debug)]
#[command(name = "oxsdb", version, about)]
struct Cli {
    /// Schema files (.ovsschema) of the databases to serve.
    #[arg(value_name = "SCHEMA")]
    schemas: Vec<PathBuf>,

    /// Only check the schemas and print each database's name, version and table count.
    #[arg(long)]
    check_schemas: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut loaded = Vec::new();
    for path in &cli.schemas {
        match DatabaseSchema::from_file(path) {
            Ok(s) => loaded.push(s),
            Err(e) => {
                eprintln!("oxsdb: {e}");
                std::process::exit(1);
            }
        }
    }
    for s in &loaded {
        println!("{} {} ({} tables)", s.name, s.version, s.tables.len());
    }
    if !cli.check_schemas {
        anyhow::bail!("serving over the network is not built yet; use --check-schemas")
    }
    Ok(())
}
