//! The reference `ovsdb-server` (Open vSwitch's implementation, the oracle
//! of every differential test): on fresh databases made from schemas by
//! `ovsdb-tool create`, or on existing database files. If the Open vSwitch
//! tools are missing the test FAILS with what to install, never skips.

use std::ffi::OsString;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use super::process::{Kind, ServerProcess};
use super::rpc::Rpc;
use super::tools::{ovsdb_tool_create, require_file, schema_name};

/// A running reference `ovsdb-server`, killed on drop; the process's
/// methods (`port`, `tcp()`, `stop()`, ...) are reached through it.
pub struct ReferenceServer {
    process: ServerProcess,
    /// The name of the first database.
    pub db_name: String,
    // Kept last: removed after the server has been killed.
    tmp: Option<tempfile::TempDir>,
}

impl ReferenceServer {
    /// A fresh database from `schema`, served in a private directory.
    pub fn start(schema: &Path) -> ReferenceServer {
        ReferenceServer::start_with(&[schema.to_path_buf()], &[] as &[&str])
    }

    /// A fresh database from each schema, served with `args` (remotes,
    /// options) in a private directory.
    pub fn start_with<S: Into<OsString> + Clone>(
        schemas: &[PathBuf],
        args: &[S],
    ) -> ReferenceServer {
        let tmp = tempfile::Builder::new()
            .prefix("oxsdb-ref-")
            .tempdir()
            .expect("tempdir");
        let mut dbs = Vec::new();
        for (i, schema) in schemas.iter().enumerate() {
            require_file(schema);
            let db = tmp.path().join(format!("db{i}"));
            if let Err(e) = ovsdb_tool_create(&db, schema) {
                panic!("ovsdb-tool create {} failed: {e}", schema.display());
            }
            dbs.push(db);
        }
        let mut server = ReferenceServer::on_files_with(&dbs, args, tmp.path());
        server.db_name = schemas.first().map(|s| schema_name(s)).unwrap_or_default();
        server.tmp = Some(tmp);
        server
    }

    /// `ovsdb-server` on existing database files, its own files in `dir`.
    pub fn on_files(dbs: &[PathBuf], dir: &Path) -> ReferenceServer {
        ReferenceServer::on_files_with(dbs, &[] as &[&str], dir)
    }

    fn on_files_with<S: Into<OsString> + Clone>(
        dbs: &[PathBuf],
        args: &[S],
        dir: &Path,
    ) -> ReferenceServer {
        let mut all: Vec<OsString> = args.iter().cloned().map(Into::into).collect();
        all.extend(dbs.iter().map(|d| d.as_os_str().to_owned()));
        let process = ServerProcess::spawn(Kind::Reference, &all, &[], dir, None)
            .unwrap_or_else(|(s, out)| panic!("ovsdb-server exited with {s}; output:\n{out}"));
        ReferenceServer {
            process,
            db_name: String::new(),
            tmp: None,
        }
    }

    /// A JSON-RPC connection to it.
    pub fn connect(&self) -> Rpc {
        Rpc::open(&self.addr())
    }
}

impl Deref for ReferenceServer {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.process
    }
}

impl DerefMut for ReferenceServer {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}
