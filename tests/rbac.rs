//! RBAC (ovsdb-server(7), "Role Based Access Control") compared with the
//! reference on the same steps.
//!
//! The reference `ovsdb-server` serves OVN Southbound and Northbound
//! configured as `ovn-ctl` configures it: remotes from
//! `SB_Global.connections`, keys from the `SSL` table (`ovn-sbctl set-ssl`
//! with `ovs-pki` certificates), a `pssl:` Connection with
//! `role=ovn-controller` (and a `ptcp:` one with the same role, whose
//! clients have no certificate and so no id). The real `ovn-northd` writes
//! the RBAC tables into it, and into oxsdb; then chassis clients (hv1, hv2:
//! `ovsdb-client` over TLS with their own certificates, whose common name is
//! the chassis name) insert, update, mutate and delete their own rows and
//! try the same on another chassis's rows and on tables and columns their
//! role does not grant.
//!
//! oxsdb runs in-process (its TLS remotes live elsewhere): the same steps go
//! through the in-process client with the same role and id a TLS session
//! would carry, and every reply must equal the reference's (UUIDs
//! normalised), as must the tables afterwards: once on the memory store,
//! once on etcd with two servers (hv1 on one, hv2 on the other).

mod support;

use oxsdb::actors::local_client::{ClientError, LocalClient};
use oxsdb::actors::server::{self, RunningServer, ServerConfig, Store};
use oxsdb::actors::session::{Session, SessionConfig};
use oxsdb::schema::DatabaseSchema;
use oxsdb::storage::etcd::{EtcdOptions, EtcdStore};
use oxsdb::storage::keys::Keys;
use oxsdb::storage::Storage;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use support::clients::{cmd, poll, run, run_ok, tool, Background};
use support::etcd::EtcdCluster;
use support::normalize::Normalizer;
use support::reference::ReferenceServer;
use support::rpc::Rpc;

const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";
const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB: &str = "OVN_Southbound";
const ROLE: &str = "ovn-controller";
const T: Duration = Duration::from_secs(30);

/// Runs a blocking helper off the actix thread, which must stay free to
/// serve the in-process oxsdb meanwhile.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking helper")
}

/// Certificates made with `ovs-pki`, as an OVN deployment makes them:
/// chassis certificates signed by `switchca` (the server trusts it), the
/// server's by `controllerca` (the chassis trust it).
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(chassis: &[&str]) -> Pki {
        tool("ovs-pki");
        let dir = tempfile::Builder::new()
            .prefix("oxsdb-pki-")
            .tempdir()
            .expect("tempdir");
        let pki = |args: &[&str]| {
            let mut c = cmd("ovs-pki", Vec::<String>::new());
            c.current_dir(dir.path())
                .arg(format!("--dir={}", dir.path().join("pki").display()))
                .arg(format!("--log={}", dir.path().join("pki.log").display()))
                .args(args);
            run_ok(&mut c, Duration::from_secs(120));
        };
        pki(&["init"]);
        for name in chassis {
            // -u: the common name is the chassis name alone (no id appended).
            pki(&["-u", "req+sign", name, "switch"]);
        }
        pki(&["-u", "req+sign", "sb", "controller"]);
        Pki { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn key(&self, name: &str) -> PathBuf {
        self.file(&format!("{name}-privkey.pem"))
    }

    fn cert(&self, name: &str) -> PathBuf {
        self.file(&format!("{name}-cert.pem"))
    }

    /// The CA the chassis certificates are signed by (the server's `ca_cert`).
    fn switch_ca(&self) -> PathBuf {
        self.file("pki/switchca/cacert.pem")
    }

    /// The CA the server certificate is signed by (the chassis's `-C`).
    fn controller_ca(&self) -> PathBuf {
        self.file("pki/controllerca/cacert.pem")
    }
}

/// Who runs a step.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// A connection without a role: no RBAC (northd, the admin).
    Admin,
    /// A chassis over TLS with its certificate, on the `role=ovn-controller` remote.
    Chassis(&'static str),
    /// A client on a `ptcp:` remote with the role: a role but no id.
    NoId,
}

/// The reference side: the ovn-ctl-style server and its remotes.
struct Reference {
    server: ReferenceServer,
    pki: Arc<Pki>,
    pssl_port: u16,
    role_tcp_port: u16,
}

impl Reference {
    fn start(pki: Arc<Pki>) -> Reference {
        let server = ReferenceServer::start_with(
            &[PathBuf::from(SB_SCHEMA), PathBuf::from(NB_SCHEMA)],
            &[
                "--remote=db:OVN_Southbound,SB_Global,connections",
                "--private-key=db:OVN_Southbound,SSL,private_key",
                "--certificate=db:OVN_Southbound,SSL,certificate",
                "--ca-cert=db:OVN_Southbound,SSL,ca_cert",
                "--ssl-protocols=db:OVN_Southbound,SSL,ssl_protocols",
                "--ssl-ciphers=db:OVN_Southbound,SSL,ssl_ciphers",
            ],
        );
        let db = format!("--db={}", server.tcp());
        let sbctl = |args: &[&str]| {
            run_ok(cmd("ovn-sbctl", [db.as_str()]).args(args), T);
        };
        sbctl(&[
            "set-ssl",
            &pki.key("sb").display().to_string(),
            &pki.cert("sb").display().to_string(),
            &pki.switch_ca().display().to_string(),
        ]);
        sbctl(&[
            "set-connection",
            &format!("role={ROLE}"),
            "pssl:0:127.0.0.1",
            // Not the harness's own `ptcp:0:127.0.0.1`: a remote of the same
            // name would be replaced by this one, role and all.
            "ptcp:0:127.0.0.2",
        ]);
        let bound = |target: &str| -> u16 {
            let deadline = std::time::Instant::now() + T;
            loop {
                let out = run(
                    cmd("ovn-sbctl", [db.as_str()]).args([
                        "--bare",
                        "--columns=status",
                        "find",
                        "Connection",
                        &format!("target=\"{target}\""),
                    ]),
                    T,
                );
                if let Some(port) = bound_port(&out.stdout) {
                    return port;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{target} not bound after {T:?}: {}\nserver log:\n{}",
                    out.all(),
                    server.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        let pssl_port = bound("pssl:0:127.0.0.1");
        let role_tcp_port = bound("ptcp:0:127.0.0.2");
        Reference {
            server,
            pki,
            pssl_port,
            role_tcp_port,
        }
    }

    /// `ovsdb-client transact` as `who`; the printed result array.
    fn transact(&self, who: Who, ops: &[Value]) -> Value {
        let mut c = cmd("ovsdb-client", ["--timeout=30"]);
        let remote = match who {
            Who::Admin => self.server.tcp(),
            Who::NoId => format!("tcp:127.0.0.2:{}", self.role_tcp_port),
            Who::Chassis(name) => {
                c.arg(format!("--private-key={}", self.pki.key(name).display()))
                    .arg(format!("--certificate={}", self.pki.cert(name).display()))
                    .arg(format!("--ca-cert={}", self.pki.controller_ca().display()));
                format!("ssl:127.0.0.1:{}", self.pssl_port)
            }
        };
        let mut txn = vec![json!(SB)];
        txn.extend(ops.iter().cloned());
        c.arg("transact")
            .arg(remote)
            .arg(Value::Array(txn).to_string());
        let out = run(&mut c, T);
        assert!(out.success(), "ovsdb-client transact failed: {}", out.all());
        serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("ovsdb-client printed non-JSON ({e}): {}", out.stdout))
    }
}

/// oxsdb in-process: OVN Southbound and Northbound on `store`, a `ptcp:`
/// remote for ovn-northd.
async fn start_oxsdb(store: Store) -> RunningServer {
    let schemas: Vec<Arc<DatabaseSchema>> = [SB_SCHEMA, NB_SCHEMA]
        .iter()
        .map(|p| {
            support::tools::require_file(Path::new(p));
            Arc::new(DatabaseSchema::from_file(p).expect("OVN schema"))
        })
        .collect();
    let keys = Keys::new("ovsdb", "ovn").expect("keys");
    let schemas = match &store {
        Store::Shared(s) => server::shared_schemas(&**s, &keys, schemas)
            .await
            .expect("the schemas in etcd"),
        _ => schemas,
    };
    let config = ServerConfig {
        remotes: vec!["ptcp:0:127.0.0.1".to_string()],
        inactivity_probe: None,
        max_message_size: 64 << 20,
        store,
        keys: keys.clone(),
        lock_ttl: Duration::from_secs(5),
        threads: 1,
        tls: Default::default(),
    };
    server::start(config, schemas).await.expect("oxsdb starts")
}

/// The `bound_port` of a Connection row's `status` printed by `--bare`.
fn bound_port(status: &str) -> Option<u16> {
    let at = status.find("bound_port=")? + "bound_port=".len();
    let digits: String = status[at..]
        .chars()
        .filter(|c| *c != '"')
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// `tcp:IP:PORT` of a running in-process server.
fn oxsdb_tcp(running: &RunningServer) -> String {
    let bound = running.bound.first().expect("a bound remote");
    // "ptcp:PORT:IP"
    let mut parts = bound.trim_start_matches("ptcp:").splitn(2, ':');
    let port = parts.next().expect("port");
    let ip = parts.next().expect("ip");
    format!("tcp:{ip}:{port}")
}

/// The real ovn-northd on an NB and an SB remote, killed on drop.
fn start_northd(remote: &str, dir: &Path, tag: &str) -> Background {
    tool("ovn-northd");
    let mut c = cmd("ovn-northd", Vec::<String>::new());
    c.arg(format!("--ovnnb-db={remote}"))
        .arg(format!("--ovnsb-db={remote}"))
        .arg(format!(
            "--log-file={}",
            dir.join(format!("{tag}-northd.log")).display()
        ))
        .arg(format!(
            "--pidfile={}",
            dir.join(format!("{tag}-northd.pid")).display()
        ))
        .arg(format!(
            "--unixctl={}",
            dir.join(format!("{tag}-northd.ctl")).display()
        ))
        .arg("-vconsole:off");
    Background::spawn(&mut c)
}

/// The RBAC tables as a comparable value: permission rows by table, and the
/// role's table names.
fn rbac_tables(role_rows: &Value, perm_rows: &Value) -> Value {
    let mut perms: Vec<Value> = perm_rows["rows"].as_array().cloned().unwrap_or_default();
    perms.sort_by_key(|r| r["table"].to_string());
    let roles: Vec<Value> = role_rows["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let tables: Vec<Value> = r["permissions"][1]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|pair| pair[0].clone())
                .collect();
            json!({"name": r["name"], "tables": tables})
        })
        .collect();
    json!({"roles": roles, "permissions": perms})
}

fn select_rbac() -> Vec<Value> {
    vec![
        json!({"op": "select", "table": "RBAC_Role", "where": [], "columns": ["name", "permissions"]}),
        json!({"op": "select", "table": "RBAC_Permission", "where": [],
               "columns": ["table", "authorization", "insert_delete", "update"]}),
    ]
}

/// Whether ovn-northd has written the role with all its permissions.
fn rbac_written(r: &Value) -> bool {
    let perms = r[1]["rows"].as_array().map_or(0, Vec::len);
    let roles = r[0]["rows"].as_array().map_or(0, Vec::len);
    roles == 1 && perms >= 10
}

fn name_is(name: &str) -> Value {
    json!([["name", "==", name]])
}

/// The steps, in order: who, what, and the transaction.
fn steps() -> Vec<(Who, &'static str, Vec<Value>)> {
    let own_rows = |name: &str, ip: &str| {
        vec![
            json!({"op": "insert", "table": "Encap", "uuid-name": "e",
                   "row": {"type": "geneve", "ip": ip, "chassis_name": name}}),
            json!({"op": "insert", "table": "Chassis", "uuid-name": "c",
                   "row": {"name": name, "hostname": format!("{name}.example"),
                           "encaps": ["named-uuid", "e"]}}),
            json!({"op": "insert", "table": "Chassis_Private",
                   "row": {"name": name, "chassis": ["named-uuid", "c"]}}),
        ]
    };
    let hv1 = Who::Chassis("hv1");
    let hv2 = Who::Chassis("hv2");
    vec![
        (
            Who::Admin,
            "admin adds a datapath and a port",
            vec![
                json!({"op": "insert", "table": "Datapath_Binding", "uuid-name": "dp",
                   "row": {"tunnel_key": 1}}),
                json!({"op": "insert", "table": "Port_Binding",
                   "row": {"logical_port": "lp1", "tunnel_key": 1,
                           "datapath": ["named-uuid", "dp"]}}),
            ],
        ),
        (
            hv1,
            "hv1 inserts its Encap, Chassis and Chassis_Private",
            own_rows("hv1", "10.0.0.1"),
        ),
        (hv2, "hv2 inserts its own", own_rows("hv2", "10.0.0.2")),
        (
            hv1,
            "hv1 inserts a Chassis named hv3",
            vec![
                json!({"op": "insert", "table": "Chassis", "row": {"name": "hv3", "hostname": "h"}}),
            ],
        ),
        (
            hv1,
            "hv1 inserts an Encap for hv2",
            vec![json!({"op": "insert", "table": "Encap",
                   "row": {"type": "geneve", "ip": "10.0.0.9", "chassis_name": "hv2"}})],
        ),
        (
            hv1,
            "hv1 updates columns it may of its Chassis",
            vec![
                json!({"op": "update", "table": "Chassis", "where": name_is("hv1"),
                   "row": {"nb_cfg": 5, "external_ids": ["map", [["k", "v"]]]}}),
            ],
        ),
        (
            hv1,
            "hv1 updates its hostname (not in update)",
            vec![
                json!({"op": "update", "table": "Chassis", "where": name_is("hv1"),
                   "row": {"hostname": "elsewhere"}}),
            ],
        ),
        (
            hv1,
            "hv1 updates hv2's Chassis",
            vec![
                json!({"op": "update", "table": "Chassis", "where": name_is("hv2"), "row": {"nb_cfg": 7}}),
            ],
        ),
        (
            hv1,
            "hv1 updates every Chassis",
            vec![json!({"op": "update", "table": "Chassis", "where": [], "row": {"nb_cfg": 8}})],
        ),
        (
            hv1,
            "hv1 updates a forbidden column of no row",
            vec![
                json!({"op": "update", "table": "Chassis", "where": name_is("nobody"),
                   "row": {"hostname": "x"}}),
            ],
        ),
        (
            hv1,
            "hv1 mutates its Chassis",
            vec![
                json!({"op": "mutate", "table": "Chassis", "where": name_is("hv1"),
                   "mutations": [["nb_cfg", "+=", 1],
                                 ["external_ids", "insert", ["map", [["k2", "v2"]]]]]}),
            ],
        ),
        (
            hv1,
            "hv1 mutates hv2's Chassis_Private",
            vec![
                json!({"op": "mutate", "table": "Chassis_Private", "where": name_is("hv2"),
                   "mutations": [["nb_cfg", "+=", 1]]}),
            ],
        ),
        (
            hv1,
            "hv1 mutates and updates its Encap",
            vec![
                json!({"op": "mutate", "table": "Encap", "where": [["chassis_name", "==", "hv1"]],
                   "mutations": [["options", "insert", ["map", [["csum", "true"]]]]]}),
                json!({"op": "update", "table": "Encap", "where": [["chassis_name", "==", "hv1"]],
                   "row": {"ip": "10.0.1.1"}}),
            ],
        ),
        (
            hv1,
            "hv1 gives its Encap to hv2",
            vec![
                json!({"op": "update", "table": "Encap", "where": [["chassis_name", "==", "hv1"]],
                   "row": {"chassis_name": "hv2"}}),
            ],
        ),
        (
            hv1,
            "hv1 inserts an FDB entry (anyone may)",
            vec![json!({"op": "insert", "table": "FDB",
                   "row": {"mac": "00:00:00:00:00:01", "dp_key": 1, "port_key": 1}})],
        ),
        (
            hv1,
            "hv1 inserts a Port_Binding (insert_delete false)",
            vec![json!({"op": "insert", "table": "Port_Binding",
                   "row": {"logical_port": "lp2", "tunnel_key": 2}})],
        ),
        (
            hv1,
            "hv1 claims the port",
            vec![
                json!({"op": "update", "table": "Port_Binding", "where": [["logical_port", "==", "lp1"]],
                   "row": {"up": true}}),
                json!({"op": "mutate", "table": "Port_Binding", "where": [["logical_port", "==", "lp1"]],
                   "mutations": [["options", "insert", ["map", [["requested-chassis", "hv1"]]]]]}),
            ],
        ),
        (
            hv1,
            "hv1 mutates the port's tag (not in update)",
            vec![
                json!({"op": "mutate", "table": "Port_Binding", "where": [["logical_port", "==", "lp1"]],
                   "mutations": [["tag", "insert", ["set", [5]]]]}),
            ],
        ),
        (
            hv1,
            "hv1 mutates the port with no mutations",
            vec![json!({"op": "mutate", "table": "Port_Binding", "where": [], "mutations": []})],
        ),
        (
            hv1,
            "hv1 deletes the port",
            vec![json!({"op": "delete", "table": "Port_Binding", "where": []})],
        ),
        (
            hv1,
            "hv1 inserts a Datapath_Binding (no permission row)",
            vec![json!({"op": "insert", "table": "Datapath_Binding", "row": {"tunnel_key": 2}})],
        ),
        (
            hv1,
            "hv1 updates RBAC_Role (no permission row, no rows)",
            vec![
                json!({"op": "update", "table": "RBAC_Role", "where": name_is("nobody"),
                   "row": {"name": "x"}}),
            ],
        ),
        (
            hv1,
            "hv1 deletes hv2's Chassis_Private",
            vec![json!({"op": "delete", "table": "Chassis_Private", "where": name_is("hv2")})],
        ),
        (
            hv1,
            "a refused operation undoes the ones before it",
            vec![
                json!({"op": "update", "table": "Chassis", "where": name_is("hv1"), "row": {"nb_cfg": 40}}),
                json!({"op": "update", "table": "Chassis", "where": name_is("hv2"), "row": {"nb_cfg": 41}}),
                json!({"op": "select", "table": "Chassis", "where": [], "columns": ["nb_cfg"]}),
            ],
        ),
        (
            hv1,
            "hv1 deletes its Chassis_Private",
            vec![json!({"op": "delete", "table": "Chassis_Private", "where": name_is("hv1")})],
        ),
        (
            Who::NoId,
            "a client with the role and no certificate updates",
            vec![
                json!({"op": "update", "table": "Chassis", "where": name_is("hv1"), "row": {"nb_cfg": 9}}),
            ],
        ),
        (
            Who::NoId,
            "a client with the role and no certificate reads",
            vec![
                json!({"op": "select", "table": "Chassis", "where": name_is("hv1"),
                   "columns": ["name", "nb_cfg", "external_ids"]}),
            ],
        ),
        (
            Who::Admin,
            "admin deletes hv2's Chassis",
            vec![json!({"op": "delete", "table": "Chassis", "where": name_is("hv2")})],
        ),
        // ovn-northd writes plain authorization columns only: the
        // `column:key` form and the odd ones (empty pieces, a missing key,
        // unknown or non-string columns) as ovsdb-server reads them.
        (
            Who::Admin,
            "admin rewrites the Port_Binding permission",
            vec![json!({"op": "update", "table": "RBAC_Permission",
                   "where": [["table", "==", "Port_Binding"]],
                   "row": {"authorization": ["set", ["options:requested-chassis",
                               "::external_ids::iface-chassis::x", "nosuch", "tunnel_key",
                               "_uuid", "options:"]],
                           "insert_delete": true,
                           "update": ["set", ["up", "nosuch"]]}})],
        ),
        (
            Who::Admin,
            "admin adds ports for hv2 and for hv1 by external_ids",
            vec![
                json!({"op": "insert", "table": "Datapath_Binding", "uuid-name": "dp3",
                   "row": {"tunnel_key": 3}}),
                json!({"op": "insert", "table": "Port_Binding",
                   "row": {"logical_port": "lp3", "tunnel_key": 1,
                           "datapath": ["named-uuid", "dp3"],
                           "options": ["map", [["requested-chassis", "hv2"]]]}}),
                json!({"op": "insert", "table": "Port_Binding",
                   "row": {"logical_port": "lp4", "tunnel_key": 2,
                           "datapath": ["named-uuid", "dp3"],
                           "external_ids": ["map", [["iface-chassis", "hv1"]]]}}),
            ],
        ),
        (
            hv1,
            "hv1 updates the port requested for it",
            vec![json!({"op": "update", "table": "Port_Binding",
                   "where": [["logical_port", "==", "lp1"]], "row": {"up": false}})],
        ),
        (
            hv1,
            "hv1 updates the port requested for hv2",
            vec![json!({"op": "update", "table": "Port_Binding",
                   "where": [["logical_port", "==", "lp3"]], "row": {"up": true}})],
        ),
        (
            hv1,
            "hv1 updates the port its external_ids name",
            vec![json!({"op": "update", "table": "Port_Binding",
                   "where": [["logical_port", "==", "lp4"]], "row": {"up": true}})],
        ),
        (
            hv1,
            "hv1 updates its port's options (no longer in update)",
            vec![json!({"op": "update", "table": "Port_Binding",
                   "where": [["logical_port", "==", "lp1"]],
                   "row": {"options": ["map", [["requested-chassis", "hv1"]]]}})],
        ),
        (
            hv1,
            "hv1 inserts a port requested for itself (fails at commit)",
            vec![json!({"op": "insert", "table": "Port_Binding",
                   "row": {"logical_port": "lp5", "tunnel_key": 5,
                           "options": ["map", [["requested-chassis", "hv1"]]]}})],
        ),
        (
            hv1,
            "hv1 inserts a port requested for hv2",
            vec![json!({"op": "insert", "table": "Port_Binding",
                   "row": {"logical_port": "lp6", "tunnel_key": 6,
                           "options": ["map", [["requested-chassis", "hv2"]]]}})],
        ),
        (
            hv1,
            "hv1 deletes the port requested for it",
            vec![
                json!({"op": "delete", "table": "Port_Binding", "where": [["logical_port", "==", "lp1"]]}),
            ],
        ),
        (
            hv2,
            "hv2 deletes every port",
            vec![json!({"op": "delete", "table": "Port_Binding", "where": []})],
        ),
    ]
}

/// The guarded tables at the end, without UUIDs, rows sorted.
fn final_tables() -> Vec<Value> {
    [
        (
            "Chassis",
            json!(["name", "hostname", "nb_cfg", "external_ids"]),
        ),
        ("Chassis_Private", json!(["name", "nb_cfg"])),
        ("Encap", json!(["chassis_name", "ip", "options", "type"])),
        ("FDB", json!(["mac", "dp_key", "port_key"])),
        (
            "Port_Binding",
            json!(["logical_port", "up", "options", "tag", "external_ids"]),
        ),
        ("Datapath_Binding", json!(["tunnel_key"])),
    ]
    .into_iter()
    .map(|(t, cols)| json!({"op": "select", "table": t, "where": [], "columns": cols}))
    .collect()
}

fn sorted_rows(result: &Value) -> Value {
    let mut out = Vec::new();
    for r in result.as_array().cloned().unwrap_or_default() {
        let mut rows = r["rows"].as_array().cloned().unwrap_or_default();
        rows.sort_by_key(|row| row.to_string());
        out.push(Value::Array(rows));
    }
    Value::Array(out)
}

/// oxsdb's in-process clients, one per identity: the admin and hv1 on
/// one server, hv2 and the client without id on another (or the same).
struct Subject {
    admin: LocalClient,
    chassis: Vec<(&'static str, LocalClient)>,
    no_id: LocalClient,
    /// The admin of the second server, when there are two.
    mirror: Option<LocalClient>,
}

impl Subject {
    fn new(first: &RunningServer, second: Option<&RunningServer>) -> Subject {
        let role = || Some(Arc::<str>::from(ROLE));
        let other = second.unwrap_or(first);
        let chassis = [("hv1", first), ("hv2", other)]
            .into_iter()
            .map(|(n, server)| {
                let c =
                    LocalClient::with_identity(server.registry.clone(), role(), Some(Arc::from(n)));
                (n, c)
            })
            .collect();
        Subject {
            admin: LocalClient::new(first.registry.clone()),
            chassis,
            no_id: LocalClient::with_identity(other.registry.clone(), role(), None),
            mirror: second.map(|s| LocalClient::new(s.registry.clone())),
        }
    }

    async fn transact(&self, who: Who, ops: &[Value]) -> Value {
        let client = match who {
            Who::Admin => &self.admin,
            Who::NoId => &self.no_id,
            Who::Chassis(name) => {
                &self
                    .chassis
                    .iter()
                    .find(|(n, _)| *n == name)
                    .expect("a known chassis")
                    .1
            }
        };
        Self::run(client, ops).await
    }

    async fn run(client: &LocalClient, ops: &[Value]) -> Value {
        match client.transact(SB, ops.to_vec()).await {
            Ok(v) => v,
            Err(ClientError::Server(e)) => json!({"rpc-error": e}),
            Err(e) => panic!("oxsdb transact failed: {e}"),
        }
    }

    /// With two servers: waits until the second has the first's contents,
    /// so that the next step, on either, sees what the reference sees.
    async fn settle(&self) {
        let Some(mirror) = &self.mirror else { return };
        let mut ops = final_tables();
        ops.extend(select_rbac());
        let mut last = (Value::Null, Value::Null);
        for _ in 0..1000 {
            let a = sorted_rows(&Self::run(&self.admin, &ops).await);
            let b = sorted_rows(&Self::run(mirror, &ops).await);
            if a == b {
                return;
            }
            last = (a, b);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the second server did not catch up:\n  first:  {}\n  second: {}",
            last.0, last.1
        );
    }
}

/// ovs-pki's certificates and the reference configured as ovn-ctl does.
async fn start_reference() -> Arc<Reference> {
    let pki = Arc::new(blocking(|| Pki::new(&["hv1", "hv2"])).await);
    Arc::new(blocking(move || Reference::start(pki)).await)
}

/// The real ovn-northd writes the RBAC tables into the reference and into
/// oxsdb (through `ox_remote`); they must be equal. Stops both northds, so
/// that only the steps write from then on.
async fn northd_writes_rbac(reference: &Arc<Reference>, subject: &Subject, ox_remote: &str) {
    let ref_dir = reference.server.dir().to_path_buf();
    let mut ref_northd = start_northd(&reference.server.tcp(), &ref_dir, "reference");
    let mut ox_northd = start_northd(ox_remote, &ref_dir, "oxsdb");
    let ref_rbac = blocking({
        let reference = reference.clone();
        move || {
            poll("ovn-northd writing RBAC into the reference", T, || {
                let r = reference.transact(Who::Admin, &select_rbac());
                rbac_written(&r).then_some(r)
            })
        }
    })
    .await;
    let mut ox_rbac = Value::Null;
    for _ in 0..3000 {
        ox_rbac = subject.transact(Who::Admin, &select_rbac()).await;
        if rbac_written(&ox_rbac) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        rbac_written(&ox_rbac),
        "ovn-northd did not write the RBAC tables into oxsdb: {ox_rbac}\nnorthd: {}",
        ox_northd.stderr()
    );
    assert_eq!(
        rbac_tables(&ox_rbac[0], &ox_rbac[1]),
        rbac_tables(&ref_rbac[0], &ref_rbac[1]),
        "ovn-northd wrote different RBAC tables into oxsdb"
    );
    blocking(move || {
        ref_northd.terminate();
        ox_northd.terminate();
    })
    .await;
    subject.settle().await;
}

/// Runs every step on both and asserts the same replies and the same tables.
async fn same_steps(reference: &Arc<Reference>, subject: &Subject) {
    let (mut ref_names, mut ox_names) = (Normalizer::new(), Normalizer::new());
    let mut differences = Vec::new();
    let mut refused = 0;
    for (who, what, ops) in steps() {
        let expected = blocking({
            let (reference, ops) = (reference.clone(), ops.clone());
            move || reference.transact(who, &ops)
        })
        .await;
        let actual = subject.transact(who, &ops).await;
        subject.settle().await;
        let (expected, actual) = (ref_names.normalize(&expected), ox_names.normalize(&actual));
        if expected.to_string().contains("permission error") {
            refused += 1;
        }
        if expected != actual {
            differences.push(format!(
                "{what} ({who:?}):\n  reference: {expected}\n  oxsdb:     {actual}"
            ));
        }
    }
    let expected = blocking({
        let reference = reference.clone();
        move || reference.transact(Who::Admin, &final_tables())
    })
    .await;
    let actual = subject.transact(Who::Admin, &final_tables()).await;
    assert!(
        differences.is_empty(),
        "oxsdb answered differently from ovsdb-server:\n{}",
        differences.join("\n")
    );
    assert_eq!(
        sorted_rows(&actual),
        sorted_rows(&expected),
        "the tables differ after the same steps"
    );
    // The steps must exercise refusals, not only successes.
    assert!(
        refused >= 12,
        "only {refused} steps were refused by the reference"
    );
}

/// A JSON-RPC connection to a Session of `running` configured as the
/// TLS remotes configure theirs: `role`, and `peer_id` from the certificate.
async fn session_with(running: &RunningServer, peer_id: Option<&str>) -> Rpc {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("address").to_string();
    let rpc = blocking(move || Rpc::open(&addr)).await;
    let (stream, peer) = listener.accept().expect("accept");
    stream.set_nonblocking(true).expect("non-blocking");
    let stream = tokio::net::TcpStream::from_std(stream).expect("tokio stream");
    let config = SessionConfig {
        inactivity_probe: None,
        max_message_size: 64 << 20,
        lane: 0,
        role: Some(Arc::from(ROLE)),
        peer_id: peer_id.map(Arc::from),
        read_only: false,
    };
    Session::start(stream, peer.to_string(), running.registry.clone(), config);
    rpc
}

/// Sends `request` and returns the reply, off the actix thread.
async fn call(rpc: Rpc, request: Value) -> (Rpc, Value) {
    blocking(move || {
        let mut rpc = rpc;
        rpc.send(&request).expect("send");
        let reply = rpc.read_message();
        (rpc, reply)
    })
    .await
}

/// Sessions (not the in-process client) carry the role and id to the
/// database: raw JSON-RPC on a session with the role and no id against the
/// reference's `ptcp:` remote with the role, `convert` included; and a
/// session with hv1's id against `ovsdb-client` over TLS with hv1's
/// certificate.
async fn sessions_carry_role_and_id(reference: &Arc<Reference>, running: &RunningServer) {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(SB_SCHEMA).expect("the Southbound schema"))
            .expect("schema JSON");
    let requests = [
        json!({"id": 1, "method": "transact", "params": [SB,
            {"op": "update", "table": "Chassis", "where": [], "row": {"nb_cfg": 1}}]}),
        json!({"id": 2, "method": "convert", "params": [SB, schema]}),
        json!({"id": 3, "method": "transact", "params": [SB,
            {"op": "select", "table": "Chassis", "where": [], "columns": ["name"]}]}),
    ];
    let port = reference.role_tcp_port;
    let mut theirs = blocking(move || Rpc::open(&format!("127.0.0.2:{port}"))).await;
    let mut ours = session_with(running, None).await;
    for request in requests {
        let expected;
        let actual;
        (theirs, expected) = call(theirs, request.clone()).await;
        (ours, actual) = call(ours, request.clone()).await;
        let method = &request["method"];
        assert_eq!(
            actual, expected,
            "{method} on a session with the role and no id"
        );
    }

    let ops = vec![
        json!({"op": "update", "table": "Chassis", "where": [["name", "==", "hv1"]],
                          "row": {"nb_cfg": 77}}),
    ];
    let expected = blocking({
        let (reference, ops) = (reference.clone(), ops.clone());
        move || reference.transact(Who::Chassis("hv1"), &ops)
    })
    .await;
    let mut params = vec![json!(SB)];
    params.extend(ops);
    let ours = session_with(running, Some("hv1")).await;
    let (_, reply) = call(
        ours,
        json!({"id": 4, "method": "transact", "params": params}),
    )
    .await;
    assert_eq!(
        reply["result"], expected,
        "transact on a session with hv1's id"
    );
}

#[actix::test]
async fn chassis_rbac_matches_reference() {
    let reference = start_reference().await;
    let running = start_oxsdb(Store::Memory).await;
    let subject = Subject::new(&running, None);
    northd_writes_rbac(&reference, &subject, &oxsdb_tcp(&running)).await;
    same_steps(&reference, &subject).await;
    sessions_carry_role_and_id(&reference, &running).await;
    drop(subject);
    running.shutdown();
}

/// The same on `--store=etcd` with two servers: ovn-northd writes the RBAC
/// tables through the first; hv1 and the admin use the first, hv2 and the
/// client without id the second, which judges them by the RBAC rows it
/// learnt from etcd.
#[actix::test]
async fn chassis_rbac_matches_reference_on_etcd_with_two_servers() {
    let etcd = EtcdCluster::single();
    let reference = start_reference().await;
    let connect = || async {
        let store: Arc<dyn Storage> = EtcdStore::connect(EtcdOptions::new(etcd.endpoints()))
            .await
            .expect("etcd client");
        Store::Shared(store)
    };
    let first = start_oxsdb(connect().await).await;
    let second = start_oxsdb(connect().await).await;
    let subject = Subject::new(&first, Some(&second));
    northd_writes_rbac(&reference, &subject, &oxsdb_tcp(&first)).await;
    same_steps(&reference, &subject).await;
    drop(subject);
    first.shutdown();
    second.shutdown();
}
