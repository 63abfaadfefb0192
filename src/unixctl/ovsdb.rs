//! ovsdb-server's control commands (ovsdb/ovsdb-server.c, lib/vlog.c,
//! ovsdb/raft.c's `cluster/status`), with ovsdb-server's texts where
//! scripts read them.

use super::table::{Commands, Reply};
use crate::actors::database::{
    Backend, Compact, DatabaseActor, GetStorageHealth, InternalTransact, Stats,
};
use crate::actors::registry::{DbEntry, Registry};
use crate::actors::remotes::{AddRemote, ListRemotes, RemoveRemote};
use crate::actors::server_db::{upsert_ops, DatabaseStatus};
use crate::process::logging::LogControl;
use crate::replica::Replica;
use crate::storage::file_log::{FileDb, FileLog, FileOptions};
use crate::storage::keys::Keys;
use crate::storage::{ClusterView, Storage};
use actix::Actor;
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Where the databases live, as far as the control commands care.
#[derive(Clone)]
pub enum ControlStore {
    /// Database files: `add-db` opens more with these options.
    File(FileOptions),
    /// Memory: nothing to add.
    Memory,
    /// A shared store: `cluster/status` asks it for its members.
    Shared(Arc<dyn Storage>),
}

/// What the commands act on.
#[derive(Clone)]
pub struct ServerControl {
    /// The served databases and sessions.
    pub registry: Arc<Registry>,
    /// The remotes actor: what add-remote, remove-remote and list-remotes act on.
    pub remotes: actix::Addr<crate::actors::remotes::RemotesActor>,
    /// Log levels and file.
    pub log: LogControl,
    /// The store.
    pub store: ControlStore,
    /// Key layout (shared stores).
    pub keys: Keys,
    /// Database files served, by database name (file store).
    pub files: Arc<Mutex<Vec<(String, PathBuf)>>>,
}

/// The Open vSwitch release whose ovsdb-server oxsdb stands in for.
/// Scripts read the last word of `version`'s first line and compare it
/// (ovn-lib's `stop_ovn_daemon` uses `exit` only from 2.5.90 on).
pub const OVS_COMPATIBLE_VERSION: &str = "3.1.0";

/// What `version` answers: ovsdb-server's first line, then what it really is.
pub fn version_text(program: &str) -> String {
    format!(
        "{program} (Open vSwitch) {OVS_COMPATIBLE_VERSION}\noxsdb {}\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Why oxsdb refuses to follow an active server.
const NO_REPLICATION: &str =
    "oxsdb has no active-backup replication: every oxsdb server is active; \
to serve the same databases from several servers, run them on one etcd store (--store=etcd)";

/// The four-hex-digit short form raft uses for ids.
fn short(u: &Uuid) -> String {
    u.simple().to_string().chars().take(4).collect()
}

/// Every ovsdb-server command oxsdb answers, on `ctl`.
pub fn commands(ctl: ServerControl, program: &str) -> Commands {
    let mut t = Commands::new(version_text(program));
    let c = Arc::new(ctl);

    // ovs-vswitchd's `exit --cleanup` is accepted too: ovsdb-server has
    // nothing more to clean up than at any exit.
    t.register_exit("exit", "", 0, 1, |args| async move {
        match args.first().map(String::as_str) {
            None | Some("--cleanup") => Ok(String::new()),
            Some(other) => Err(format!("exit: unknown option {other:?} (only --cleanup)")),
        }
    });

    let k = c.clone();
    t.register("ovsdb-server/compact", "", 0, 1, move |args| {
        compact(k.clone(), args)
    });

    let k = c.clone();
    t.register("ovsdb-server/reconnect", "", 0, 0, move |_| {
        let k = k.clone();
        async move {
            k.registry.disconnect_all("user ran ovsdb-server/reconnect");
            Ok(String::new())
        }
    });

    let k = c.clone();
    t.register("ovsdb-server/add-remote", "REMOTE", 1, 1, move |args| {
        let k = k.clone();
        async move {
            let reply = k.remotes.send(AddRemote(args.concat())).await;
            reply
                .map_err(|_| "the server is stopping".to_string())?
                .map(|()| String::new())
        }
    });

    let k = c.clone();
    t.register("ovsdb-server/remove-remote", "REMOTE", 1, 1, move |args| {
        let k = k.clone();
        async move {
            let reply = k.remotes.send(RemoveRemote(args.concat())).await;
            reply
                .map_err(|_| "the server is stopping".to_string())?
                .map(|()| String::new())
        }
    });

    let k = c.clone();
    t.register("ovsdb-server/list-remotes", "", 0, 0, move |_| {
        let k = k.clone();
        async move {
            let r = k
                .remotes
                .send(ListRemotes)
                .await
                .map_err(|_| "the server is stopping".to_string())?;
            Ok(r.iter().map(|r| format!("{r}\n")).collect())
        }
    });

    let k = c.clone();
    t.register("ovsdb-server/list-dbs", "", 0, 0, move |_| {
        let k = k.clone();
        async move {
            Ok(k.registry
                .names()
                .iter()
                .map(|n| format!("{n}\n"))
                .collect())
        }
    });

    let k = c.clone();
    t.register("ovsdb-server/add-db", "DB", 1, 1, move |args| {
        add_db(k.clone(), args.concat())
    });

    let k = c.clone();
    t.register("ovsdb-server/remove-db", "DB", 1, 1, move |args| {
        remove_db(k.clone(), args.concat())
    });

    let k = c.clone();
    t.register(
        "ovsdb-server/get-db-storage-status",
        "DB",
        1,
        1,
        move |args| {
            let k = k.clone();
            async move {
                let name = args.concat();
                let entry = k
                    .registry
                    .get(&name)
                    .ok_or_else(|| "Failed to find the database.".to_string())?;
                let h = entry
                    .addr
                    .send(GetStorageHealth)
                    .await
                    .map_err(|_| "Failed to find the database.".to_string())?;
                Ok(match h.error {
                    None => "status: ok".into(),
                    Some(e) => format!("status: {e}"),
                })
            }
        },
    );

    // No active-backup replication in oxsdb: every server is active.
    t.register("ovsdb-server/sync-status", "", 0, 0, |_| async {
        Ok("state: active\n".to_string())
    });

    // Active-backup replication: oxsdb has none, every server is active.
    // Becoming or staying active (what promotion asks) succeeds; following
    // another server is refused with what to do instead.
    for name in [
        "ovsdb-server/disconnect-active-ovsdb-server",
        "ovsdb-server/get-active-ovsdb-server",
        "ovsdb-server/get-sync-exclude-tables",
    ] {
        t.register(name, "", 0, 0, |_| async { Ok(String::new()) });
    }
    for (name, min, max) in [
        ("ovsdb-server/set-active-ovsdb-server", 1, 1),
        ("ovsdb-server/connect-active-ovsdb-server", 0, 0),
        ("ovsdb-server/set-active-ovsdb-server-probe-interval", 1, 1),
        ("ovsdb-server/set-sync-exclude-tables", 1, 1),
    ] {
        t.register(name, "", min, max, |_| async {
            Err(NO_REPLICATION.to_string())
        });
    }
    t.register(
        "ovsdb-server/memory-trim-on-compaction",
        "on|off",
        1,
        1,
        |args| async move {
            match args.concat().as_str() {
                "on" | "off" => Ok(String::new()),
                _ => Err("invalid argument".to_string()),
            }
        },
    );
    // oxsdb does not rate-limit its log: nothing to enable or disable.
    for name in ["vlog/enable-rate-limit", "vlog/disable-rate-limit"] {
        t.register(name, "[module]...", 0, usize::MAX, |_| async {
            Ok(String::new())
        });
    }

    let k = c.clone();
    t.register("memory/show", "", 0, 0, move |_| {
        let k = k.clone();
        async move {
            let mut rows = 0;
            let all = k.registry.all();
            for (_, e) in &all {
                if let Ok((n, _)) = e.addr.send(Stats).await {
                    rows += n;
                }
            }
            Ok(format!(
                "databases:{} rows:{rows} sessions:{}\n",
                all.len(),
                k.registry.session_count()
            ))
        }
    });

    // oxsdb keeps no coverage counters; the header keeps parsers of
    // ovsdb-server's output working.
    t.register("coverage/show", "", 0, 0, |_| async {
        Ok("Event coverage, avg rate over last: 5 seconds, last minute, last hour,  hash=00000000:\n0 events never hit\n".to_string())
    });

    let k = c.clone();
    t.register(
        "vlog/set",
        "{spec | PATTERN:destination:pattern}",
        0,
        usize::MAX,
        move |args| {
            let k = k.clone();
            async move {
                if args.is_empty() {
                    k.log.set("any:any:dbg").map_err(|e| e.to_string())?;
                }
                for a in &args {
                    k.log.set(a).map_err(|e| e.to_string())?;
                }
                Ok(String::new())
            }
        },
    );

    let k = c.clone();
    t.register("vlog/list", "", 0, 0, move |_| {
        let k = k.clone();
        async move { Ok(k.log.list()) }
    });

    let k = c.clone();
    t.register("vlog/reopen", "", 0, 0, move |_| {
        let k = k.clone();
        async move {
            k.log.reopen().map_err(|e| e.to_string())?;
            Ok(String::new())
        }
    });

    if let ControlStore::Shared(store) = &c.store {
        let store = store.clone();
        let k = c.clone();
        t.register("cluster/status", "DB", 1, 1, move |args| {
            cluster_status(k.clone(), store.clone(), args.concat())
        });
        for (cmd, which) in [("cluster/cid", true), ("cluster/sid", false)] {
            let k = c.clone();
            t.register(cmd, "DB", 1, 1, move |args| {
                let k = k.clone();
                async move {
                    let (_, h) = clustered(&k, &args.concat()).await?;
                    Ok(if which {
                        h.cid.to_string()
                    } else {
                        k.registry.server_id.to_string()
                    })
                }
            });
        }
    }
    t
}

async fn compact(k: Arc<ServerControl>, args: Vec<String>) -> Reply {
    let name = args.first().cloned();
    if name.as_deref().is_some_and(|n| n.starts_with('_')) {
        return Err("cannot compact built-in databases".into());
    }
    let mut n = 0;
    let mut errors = String::new();
    for (db, entry) in k.registry.all() {
        let wanted = match &name {
            Some(n) => *n == db,
            None => !db.starts_with('_'),
        };
        if !wanted {
            continue;
        }
        n += 1;
        match entry.addr.send(Compact).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => errors.push_str(&format!("{e}\n")),
            Err(e) => errors.push_str(&format!("{db}: {e}\n")),
        }
    }
    if n == 0 {
        Err("no database by that name".into())
    } else if !errors.is_empty() {
        Err(errors)
    } else {
        Ok(String::new())
    }
}

async fn add_db(k: Arc<ServerControl>, file: String) -> Reply {
    let ControlStore::File(options) = &k.store else {
        return Err(
            "ovsdb-server/add-db: only the file store opens databases at run time; restart oxsdb with the database"
                .into(),
        );
    };
    let path = crate::process::args::absolute(std::path::Path::new(&file));
    let known = k.files.lock().map(|f| f.clone()).unwrap_or_default();
    if known.iter().any(|(_, p)| *p == path) {
        return Err(format!("{file}: already open"));
    }
    // Reading the file blocks: off the thread that serves the databases.
    let (to_open, options) = (
        FileDb {
            path: path.clone(),
            schema: None,
        },
        options.clone(),
    );
    let (log, db) = tokio::task::spawn_blocking(move || FileLog::open(&to_open, options))
        .await
        .map_err(|e| format!("{file}: opening failed: {e}", file = path.display()))?
        .map_err(|e| e.to_string())?;
    let schema = db.schema.clone();
    let name = schema.name.clone();
    if k.registry.get(&name).is_some() {
        return Err(format!("{file}: a database named {name} is already served"));
    }
    let mut replica = Replica::new(schema.clone(), k.keys.clone(), Uuid::new_v4());
    replica.db = db;
    let addr = DatabaseActor::new(replica, Backend::Log(Box::new(log)), k.registry.server_id)
        .with_metrics(k.registry.metrics.clone())
        .start();
    k.registry.insert(
        &name,
        DbEntry {
            addr,
            schema: schema.clone(),
        },
    );
    if let Ok(mut f) = k.files.lock() {
        f.push((name.clone(), path));
    }
    if let Some(server) = k.registry.get("_Server") {
        let st = DatabaseStatus {
            name: name.clone(),
            model: "standalone",
            connected: true,
            leader: true,
            schema,
            cid: None,
            sid: None,
            index: None,
        };
        let _ = server
            .addr
            .send(InternalTransact {
                ops: upsert_ops(&st),
            })
            .await;
    }
    k.registry
        .disconnect_unaware(&format!("adding {name} database by user request"));
    tracing::info!(db = %name, "added database by user request");
    Ok(String::new())
}

async fn remove_db(k: Arc<ServerControl>, name: String) -> Reply {
    if k.registry.get(&name).is_none() {
        return Err("Failed to find the database.".into());
    }
    if name.starts_with('_') {
        return Err("Cannot remove reserved database.".into());
    }
    k.registry.remove(&name);
    if let Ok(mut f) = k.files.lock() {
        f.retain(|(n, _)| *n != name);
    }
    if let Some(server) = k.registry.get("_Server") {
        let ops =
            vec![json!({"op": "delete", "table": "Database", "where": [["name", "==", name]]})];
        let _ = server.addr.send(InternalTransact { ops }).await;
    }
    // Sessions hold the database's monitors and transactions: closing them
    // all lets the database (and its file lock) go; clients reconnect.
    k.registry
        .disconnect_all(&format!("removing {name} database by user request"));
    tracing::info!(db = %name, "removed database by user request");
    Ok(String::new())
}

async fn clustered(
    k: &ServerControl,
    name: &str,
) -> Result<(DbEntry, crate::actors::database::StorageHealth), String> {
    let entry = k
        .registry
        .get(name)
        .filter(|_| !name.starts_with('_'))
        .ok_or_else(|| "unknown cluster".to_string())?;
    let h = entry
        .addr
        .send(GetStorageHealth)
        .await
        .map_err(|_| "unknown cluster".to_string())?;
    Ok((entry, h))
}

async fn cluster_status(k: Arc<ServerControl>, store: Arc<dyn Storage>, name: String) -> Reply {
    let (_, h) = clustered(&k, &name).await?;
    let view = store.members().await;
    Ok(render_cluster_status(
        &name,
        &k.registry.server_id,
        &h,
        &view,
    ))
}

/// `cluster/status` in the shape of ovsdb/raft.c's, for a database in a
/// shared store: this server is a member that can commit (`Role: leader`,
/// as `_Server` says) while its store answers; `Servers:` lists the
/// store's members with their health.
pub fn render_cluster_status(
    name: &str,
    sid: &Uuid,
    h: &crate::actors::database::StorageHealth,
    view: &Result<Option<ClusterView>, crate::storage::StorageError>,
) -> String {
    let mut s = String::new();
    let up = h.connected && h.loaded;
    s.push_str(&format!("{}\n", short(sid)));
    s.push_str(&format!("Name: {name}\n"));
    s.push_str(&format!("Cluster ID: {} ({})\n", short(&h.cid), h.cid));
    s.push_str(&format!("Server ID: {} ({})\n", short(sid), sid));
    s.push_str(&format!("Address: {}\n", h.kind));
    if up {
        s.push_str("Status: cluster member\n");
        s.push_str("Role: leader\n");
    } else {
        let why = h
            .error
            .clone()
            .unwrap_or_else(|| "store unreachable".into());
        s.push_str(&format!("Status: disconnected from the cluster ({why})\n"));
        s.push_str("Role: candidate\n");
    }
    let term = match view {
        Ok(Some(v)) => v.term,
        _ => 0,
    };
    s.push_str(&format!("Term: {term}\n"));
    s.push_str(if up {
        "Leader: self\n"
    } else {
        "Leader: unknown\n"
    });
    s.push_str(if up {
        "Vote: self\n"
    } else {
        "Vote: unknown\n"
    });
    s.push('\n');
    s.push_str(&format!("Applied revision: {}\n", h.revision));
    s.push_str("Entries not yet committed: 0\n");
    s.push_str("Entries not yet applied: 0\n");
    match view {
        Ok(Some(v)) => {
            let leader = v
                .members
                .iter()
                .find(|m| m.id == v.leader)
                .map(|m| format!("{} ({:x})", m.name, m.id))
                .unwrap_or_else(|| "unknown".into());
            s.push_str(&format!(
                "Store: {} cluster {:x}, leader {leader}\n",
                h.kind, v.cluster_id
            ));
            let healthy = v.members.iter().filter(|m| m.healthy).count();
            s.push_str(&format!(
                "Store members: {} healthy of {}\n",
                healthy,
                v.members.len()
            ));
            s.push_str("Servers:\n");
            for m in &v.members {
                let url = m.client_urls.first().cloned().unwrap_or_default();
                let id: String = format!("{:016x}", m.id).chars().take(4).collect();
                let mut line = format!("    {id} ({} at {url})", m.name);
                if m.id == v.leader {
                    line.push_str(" (leader)");
                }
                if m.learner {
                    line.push_str(" (learner)");
                }
                if m.healthy {
                    line.push_str(" healthy");
                } else {
                    line.push_str(&format!(
                        " unhealthy: {}",
                        m.problem.clone().unwrap_or_default()
                    ));
                }
                if let Some(i) = m.raft_index {
                    line.push_str(&format!(" raft_index={i}"));
                }
                s.push_str(&line);
                s.push('\n');
            }
        }
        Ok(None) => s.push_str("Servers:\n"),
        Err(e) => {
            s.push_str(&format!("Store members: unknown ({e})\n"));
            s.push_str("Servers:\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::database::StorageHealth;
    use crate::storage::MemberView;

    #[test]
    fn cluster_status_has_raft_lines_scripts_parse() {
        let sid = Uuid::parse_str("e9e4a6d2-bd12-42fa-b3e4-0d2ce1150540").unwrap();
        let h = StorageHealth {
            error: None,
            loaded: true,
            connected: true,
            revision: 42,
            cid: Uuid::parse_str("1e6b3269-ad9d-4338-9671-678e4e395b81").unwrap(),
            kind: "etcd",
        };
        let view = Ok(Some(ClusterView {
            cluster_id: 0xabc,
            leader: 0x8e9e05c52164694d,
            term: 3,
            members: vec![MemberView {
                id: 0x8e9e05c52164694d,
                name: "m0".into(),
                client_urls: vec!["http://127.0.0.1:2379".into()],
                healthy: true,
                raft_index: Some(9),
                ..MemberView::default()
            }],
        }));
        let s = render_cluster_status("OVN_Northbound", &sid, &h, &view);
        assert!(s.starts_with("e9e4\nName: OVN_Northbound\nCluster ID: 1e6b (1e6b3269-ad9d-4338-9671-678e4e395b81)\nServer ID: e9e4 ("), "{s}");
        for line in [
            "Status: cluster member\n",
            "Role: leader\n",
            "Leader: self\n",
            "Term: 3\n",
            "Applied revision: 42\n",
            "    8e9e (m0 at http://127.0.0.1:2379) (leader) healthy raft_index=9\n",
        ] {
            assert!(s.contains(line), "{line:?} missing from:\n{s}");
        }
        let down = StorageHealth {
            connected: false,
            error: Some("etcd: connection refused".into()),
            ..h
        };
        let s = render_cluster_status("OVN_Northbound", &sid, &down, &Ok(None));
        assert!(
            s.contains("Status: disconnected from the cluster (etcd: connection refused)\n"),
            "{s}"
        );
        assert!(s.contains("Leader: unknown\n"), "{s}");
    }
}
