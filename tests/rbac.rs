//! RBAC (ovsdb-server(7), "Role Based Access Control") compared with the
//! reference on the same steps, both driven for real.
//!
//! The reference `ovsdb-server` and the oxsdb binary serve OVN Southbound
//! and Northbound configured as `ovn-ctl` configures them: the same
//! command-line flags (remotes from `SB_Global.connections`, keys from the
//! `SSL` table), then `ovn-sbctl set-ssl` with `ovs-pki` certificates and
//! `ovn-sbctl set-connection role=ovn-controller` with a `pssl:` remote (and
//! `ptcp:` ones with the same role, one read-only, whose clients have no
//! certificate and so no id). The real `ovn-northd` writes the RBAC tables
//! into each; then chassis clients (hv1, hv2: `ovsdb-client` over TLS
//! with their own certificates, whose common name is the chassis name, on
//! the `pssl:` port the server bound for the row) insert, update, mutate and
//! delete their own rows and try the same on another chassis's rows and on
//! tables and columns their role does not grant; then `ovn-sbctl` over TLS
//! as the chassis does
//! the like through the IDL; a chassis on a read-only `pssl:` remote with
//! the role; the admin editing the RBAC tables between chassis writes.
//! Every reply must equal the reference's (UUIDs normalised), as must the
//! tables afterwards, the Connection and SSL rows, and raw JSON-RPC on the
//! `ptcp:` remote with the role: once on the file store, once on etcd with
//! two oxsdb servers following the same Connection rows (hv1 writes through
//! one, hv2 and the client without id through the other).

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::clients::{cmd, poll, run, run_ok, tool, Background};
use support::etcd::EtcdCluster;
use support::normalize::Normalizer;
use support::process::Oxsdb;
use support::reference::ReferenceServer;
use support::rpc::Rpc;
use support::tools::require_file;

const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";
const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB: &str = "OVN_Southbound";
const ROLE: &str = "ovn-controller";
const T: Duration = Duration::from_secs(30);

/// The flags ovn-ctl starts the Southbound server with (its `punix:`
/// remote aside), the same on both servers.
const OVN_CTL_FLAGS: [&str; 6] = [
    "--remote=db:OVN_Southbound,SB_Global,connections",
    "--private-key=db:OVN_Southbound,SSL,private_key",
    "--certificate=db:OVN_Southbound,SSL,certificate",
    "--ca-cert=db:OVN_Southbound,SSL,ca_cert",
    "--ssl-protocols=db:OVN_Southbound,SSL,ssl_protocols",
    "--ssl-ciphers=db:OVN_Southbound,SSL,ssl_ciphers",
];

/// The Connection rows `set-connection` makes: TLS for the chassis, and
/// plain TCP with the role (not the harness's own `ptcp:0:127.0.0.1`: a
/// remote of the same name would be replaced by this one, role and all).
const PSSL: &str = "pssl:0:127.0.0.1";
const ROLE_TCP: &str = "ptcp:0:127.0.0.2";
/// Read-only with the role: which of the two refuses a write first.
const READ_ONLY_TCP: &str = "ptcp:0:127.0.0.3";

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
        // Without -u: ovs-pki appends an id, `hv3 id:UUID` is the common
        // name, and so the client's id, which no chassis is named.
        pki(&["req+sign", "hv3", "switch"]);
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
    /// A client on a read-only `ptcp:` remote with the role.
    ReadOnly,
}

/// A server process of either kind.
enum Process {
    Reference(ReferenceServer),
    Oxsdb(Oxsdb),
}

impl Process {
    fn tcp(&self) -> String {
        match self {
            Process::Reference(s) => s.tcp(),
            Process::Oxsdb(s) => s.tcp(),
        }
    }

    fn log(&self) -> String {
        match self {
            Process::Reference(s) => s.log(),
            Process::Oxsdb(s) => s.all_stderr(),
        }
    }
}

/// One side of the comparison: one server (or two on one etcd) configured
/// as ovn-ctl configures it, and where each identity connects.
struct Deployment {
    name: &'static str,
    pki: Arc<Pki>,
    /// The first server and, on etcd, the second.
    servers: Vec<Process>,
    /// The `pssl:` port each chassis uses (hv1 on the first server, hv2 on
    /// the last).
    pssl_ports: Vec<(&'static str, u16)>,
    /// The `ptcp:` port with the role (on the last server).
    role_tcp_port: u16,
    /// The read-only `ptcp:` port with the role (on the last server).
    read_only_port: u16,
    /// Kept for the servers' lifetime.
    _dir: tempfile::TempDir,
    _etcd: Option<EtcdCluster>,
}

impl Deployment {
    /// The reference `ovsdb-server`.
    fn reference(pki: Arc<Pki>) -> Deployment {
        let server = ReferenceServer::start_with(
            &[PathBuf::from(SB_SCHEMA), PathBuf::from(NB_SCHEMA)],
            &OVN_CTL_FLAGS,
        );
        let dir = tempfile::tempdir().expect("tempdir");
        Deployment::configured(
            "ovsdb-server",
            pki,
            vec![Process::Reference(server)],
            dir,
            None,
        )
    }

    /// The oxsdb binary on the file store.
    fn oxsdb_on_files(pki: Arc<Pki>) -> Deployment {
        let dir = tempfile::Builder::new()
            .prefix("oxsdb-rbac-")
            .tempdir()
            .expect("tempdir");
        let mut args = vec![
            "--store=file".to_string(),
            format!("--data-dir={}", dir.path().display()),
        ];
        args.extend(OVN_CTL_FLAGS.iter().map(|s| s.to_string()));
        args.extend([SB_SCHEMA.to_string(), NB_SCHEMA.to_string()]);
        let server = Oxsdb::start_with_env(&args, &[("RUST_LOG", "info")], dir.path());
        Deployment::configured("oxsdb", pki, vec![Process::Oxsdb(server)], dir, None)
    }

    /// Two oxsdb binaries on one etcd.
    fn oxsdb_on_etcd(pki: Arc<Pki>) -> Deployment {
        let etcd = EtcdCluster::single();
        let dir = tempfile::Builder::new()
            .prefix("oxsdb-rbac-")
            .tempdir()
            .expect("tempdir");
        let prefix = support::cluster::unique_prefix();
        let mut args = support::cluster::etcd_args(&etcd.endpoints(), &prefix, &OVN_CTL_FLAGS);
        args.extend([SB_SCHEMA.to_string(), NB_SCHEMA.to_string()]);
        let start = || {
            Process::Oxsdb(Oxsdb::start_with_env(
                &args,
                &[("RUST_LOG", support::cluster::RUST_LOG)],
                dir.path(),
            ))
        };
        let servers = vec![start(), start()];
        Deployment::configured("oxsdb on etcd", pki, servers, dir, Some(etcd))
    }

    /// `ovn-sbctl set-ssl` and `set-connection` through the first server,
    /// then the ports each server bound for the Connection rows.
    fn configured(
        name: &'static str,
        pki: Arc<Pki>,
        servers: Vec<Process>,
        dir: tempfile::TempDir,
        etcd: Option<EtcdCluster>,
    ) -> Deployment {
        require_file(Path::new(SB_SCHEMA));
        let db = format!("--db={}", servers[0].tcp());
        let sbctl = |args: &[&str]| {
            run_ok(cmd("ovn-sbctl", [db.as_str()]).args(args), T);
        };
        sbctl(&[
            "set-ssl",
            &pki.key("sb").display().to_string(),
            &pki.cert("sb").display().to_string(),
            &pki.switch_ca().display().to_string(),
            // As deployments pin them: --ssl-protocols and --ssl-ciphers
            // from the row.
            "TLSv1.2,TLSv1.3",
            "HIGH:!aNULL:!MD5",
        ]);
        // Options apply to the targets after them.
        let role = format!("role={ROLE}");
        sbctl(&[
            "set-connection",
            &role,
            PSSL,
            ROLE_TCP,
            "read-only",
            READ_ONLY_TCP,
        ]);
        let ports = |server: &Process| -> (u16, u16, u16) {
            if servers.len() == 1 {
                // As ovn-ctl users read it: the row's status.
                let bound = |target| bound_in_status(&db, target, server);
                (bound(PSSL), bound(ROLE_TCP), bound(READ_ONLY_TCP))
            } else {
                // Servers on etcd share the rows but not their ports, and
                // do not write a status: each logs what it bound.
                let bound = |scheme, ip| {
                    poll(&format!("{name} listening on {scheme} {ip}"), T, || {
                        logged_port(&server.log(), scheme, ip)
                    })
                };
                (
                    bound("pssl", "127.0.0.1"),
                    bound("ptcp", "127.0.0.2"),
                    bound("ptcp", "127.0.0.3"),
                )
            }
        };
        let (first_pssl, _, _) = ports(&servers[0]);
        let (last_pssl, role_tcp_port, read_only_port) = ports(&servers[servers.len() - 1]);
        // Two servers: two listeners for the one row, hv2 on the second's.
        assert!(
            servers.len() == 1 || first_pssl != last_pssl,
            "{name}: both servers report pssl port {first_pssl}"
        );
        Deployment {
            name,
            pki,
            servers,
            pssl_ports: vec![("hv1", first_pssl), ("hv2", last_pssl), ("hv3", first_pssl)],
            role_tcp_port,
            read_only_port,
            _dir: dir,
            _etcd: etcd,
        }
    }

    fn admin(&self) -> String {
        self.servers[0].tcp()
    }

    fn logs(&self) -> String {
        self.servers
            .iter()
            .map(Process::log)
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// `ovsdb-client transact` as `who`; the printed result array (or the
    /// error it printed, as `{"ovsdb-client": ...}`).
    fn transact(&self, who: Who, ops: &[Value]) -> Value {
        self.transact_on(&self.remote_of(who), who, ops)
    }

    fn remote_of(&self, who: Who) -> String {
        match who {
            Who::Admin => self.admin(),
            Who::NoId => format!("tcp:127.0.0.2:{}", self.role_tcp_port),
            Who::ReadOnly => format!("tcp:127.0.0.3:{}", self.read_only_port),
            Who::Chassis(name) => {
                let port = self
                    .pssl_ports
                    .iter()
                    .find(|(n, _)| *n == name)
                    .expect("a known chassis")
                    .1;
                format!("ssl:127.0.0.1:{port}")
            }
        }
    }

    /// `ovn-sbctl ARGS` as `who` (over TLS with its certificate for a
    /// chassis): `rc=`, stdout and stderr, with UUIDs and this side's
    /// ports masked.
    fn sbctl(&self, who: Who, args: &[&str]) -> String {
        let mut c = cmd("ovn-sbctl", ["--timeout=30"]);
        c.arg(format!("--db={}", self.remote_of(who)));
        if let Who::Chassis(name) = who {
            c.arg(format!("--private-key={}", self.pki.key(name).display()))
                .arg(format!("--certificate={}", self.pki.cert(name).display()))
                .arg(format!("--ca-cert={}", self.pki.controller_ca().display()));
        }
        let text = support::clients::strip_log_timestamps(&run(c.args(args), T).all());
        let text = support::clients::replace_uuids(&text, |_| "<uuid>".to_string());
        self.pssl_ports
            .iter()
            .map(|(_, p)| *p)
            .chain([self.role_tcp_port, self.read_only_port])
            .fold(text, |t, p| t.replace(&format!(":{p}"), ":<port>"))
    }

    fn transact_on(&self, remote: &str, who: Who, ops: &[Value]) -> Value {
        let mut c = cmd("ovsdb-client", ["--timeout=30"]);
        if let Who::Chassis(name) = who {
            c.arg(format!("--private-key={}", self.pki.key(name).display()))
                .arg(format!("--certificate={}", self.pki.cert(name).display()))
                .arg(format!("--ca-cert={}", self.pki.controller_ca().display()));
        }
        let mut txn = vec![json!(SB)];
        txn.extend(ops.iter().cloned());
        c.arg("transact")
            .arg(remote)
            .arg(Value::Array(txn).to_string());
        let out = run(&mut c, T);
        assert!(
            out.success(),
            "{}: ovsdb-client transact as {who:?} failed: {}\nserver logs:\n{}",
            self.name,
            out.all(),
            self.logs()
        );
        serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("ovsdb-client printed non-JSON ({e}): {}", out.stdout))
    }

    /// With two servers: waits until the second has the first's contents,
    /// so that the next step, on either, sees what the reference sees.
    fn settle(&self) {
        if self.servers.len() < 2 {
            return;
        }
        let mut ops = final_tables();
        ops.extend(select_rbac());
        let mut last = (Value::Null, Value::Null);
        let deadline = Instant::now() + T;
        while Instant::now() < deadline {
            let a = sorted_rows(&self.transact_on(&self.servers[0].tcp(), Who::Admin, &ops));
            let b = sorted_rows(&self.transact_on(&self.servers[1].tcp(), Who::Admin, &ops));
            if a == b {
                return;
            }
            last = (a, b);
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the second server did not catch up:\n  first:  {}\n  second: {}",
            last.0, last.1
        );
    }
}

/// The port a Connection row's status names once `server` has bound it.
fn bound_in_status(db: &str, target: &str, server: &Process) -> u16 {
    let deadline = Instant::now() + T;
    loop {
        let out = run(
            cmd("ovn-sbctl", [db]).args([
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
            Instant::now() < deadline,
            "{target} not bound after {T:?}: {}\nserver log:\n{}",
            out.all(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The port of oxsdb's last `listening on SCHEME:PORT:IP` line.
fn logged_port(log: &str, scheme: &str, ip: &str) -> Option<u16> {
    let marker = format!("listening on {scheme}:");
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find(&marker)? + marker.len()..];
            let (port, rest) = rest.split_once(':')?;
            rest.trim_end()
                .starts_with(ip)
                .then(|| port.parse().ok())
                .flatten()
        })
        .next_back()
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
            Who::Chassis("hv3"),
            "a certificate with ovs-pki's id appended inserts its Encap and Chassis",
            vec![
                json!({"op": "insert", "table": "Encap", "uuid-name": "e",
                       "row": {"type": "geneve", "ip": "10.0.0.3", "chassis_name": "hv3"}}),
                json!({"op": "insert", "table": "Chassis",
                       "row": {"name": "hv3", "hostname": "h", "encaps": ["named-uuid", "e"]}}),
            ],
        ),
        (
            Who::ReadOnly,
            "read-only with the role: an update RBAC refuses too",
            vec![json!({"op": "update", "table": "Chassis", "where": [], "row": {"nb_cfg": 4}})],
        ),
        (
            Who::ReadOnly,
            "read-only with the role: an insert (no id: RBAC refuses)",
            vec![json!({"op": "insert", "table": "FDB",
                        "row": {"mac": "00:00:00:00:00:0a", "dp_key": 10, "port_key": 10}})],
        ),
        (
            Who::ReadOnly,
            "read-only with the role: an update of no row",
            vec![
                json!({"op": "update", "table": "Chassis", "where": name_is("nobody"),
                        "row": {"nb_cfg": 4}}),
            ],
        ),
        (
            Who::ReadOnly,
            "read-only with the role: a delete of no row",
            vec![json!({"op": "delete", "table": "FDB", "where": [["mac", "==", "none"]]})],
        ),
        (
            Who::ReadOnly,
            "read-only with the role: a select",
            vec![json!({"op": "select", "table": "Chassis", "where": [], "columns": ["name"]})],
        ),
        (
            hv1,
            "hv1 comments and waits before a write (not checked)",
            vec![
                json!({"op": "comment", "comment": "ovn-controller: registering chassis"}),
                json!({"op": "wait", "table": "Chassis", "where": name_is("hv1"),
                       "columns": ["name"], "until": "==", "rows": [{"name": "hv1"}], "timeout": 0}),
                json!({"op": "insert", "table": "FDB",
                       "row": {"mac": "00:00:00:00:00:09", "dp_key": 9, "port_key": 9}}),
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

/// The admin edits the RBAC tables while the chassis keep writing: each
/// change rules the next transaction (on etcd, also on the other server).
fn rbac_edits() -> Vec<(Who, &'static str, Vec<Value>)> {
    let hv1 = Who::Chassis("hv1");
    let hv2 = Who::Chassis("hv2");
    let chassis_perm = json!([["table", "==", "Chassis"]]);
    let set_nb_cfg = |name: &str, n: i64| {
        vec![
            json!({"op": "update", "table": "Chassis", "where": name_is(name),
                    "row": {"nb_cfg": n}}),
        ]
    };
    let set_ids = |name: &str| {
        vec![
            json!({"op": "update", "table": "Chassis", "where": name_is(name),
                    "row": {"external_ids": ["map", [["edit", "1"]]]}}),
        ]
    };
    vec![
        (
            hv1,
            "hv1 registers again",
            vec![
                json!({"op": "insert", "table": "Encap", "uuid-name": "e",
                       "row": {"type": "geneve", "ip": "10.0.3.1", "chassis_name": "hv1"}}),
                json!({"op": "insert", "table": "Chassis",
                       "row": {"name": "hv1", "hostname": "h1", "encaps": ["named-uuid", "e"]}}),
            ],
        ),
        (
            Who::Admin,
            "admin takes nb_cfg out of Chassis's update",
            vec![
                json!({"op": "mutate", "table": "RBAC_Permission", "where": chassis_perm,
                        "mutations": [["update", "delete", ["set", ["nb_cfg"]]]]}),
            ],
        ),
        (
            hv1,
            "hv1 updates nb_cfg (no longer allowed)",
            set_nb_cfg("hv1", 11),
        ),
        (
            hv1,
            "hv1 updates external_ids (still allowed)",
            set_ids("hv1"),
        ),
        (
            Who::Admin,
            "admin empties Chassis's authorization",
            vec![
                json!({"op": "update", "table": "RBAC_Permission", "where": chassis_perm,
                        "row": {"authorization": ["set", []]}}),
            ],
        ),
        (hv2, "hv2 updates hv1's external_ids", set_ids("hv1")),
        (
            Who::NoId,
            "the client without id updates hv1's external_ids",
            set_ids("hv1"),
        ),
        (
            Who::Admin,
            "admin authorizes Chassis by hostname",
            vec![
                json!({"op": "update", "table": "RBAC_Permission", "where": chassis_perm,
                        "row": {"authorization": "hostname"}}),
            ],
        ),
        (hv1, "hv1 updates its Chassis (hostname h1)", set_ids("hv1")),
        (
            Who::Admin,
            "admin renames hv1's host hv1",
            vec![
                json!({"op": "update", "table": "Chassis", "where": name_is("hv1"),
                        "row": {"hostname": "hv1"}}),
            ],
        ),
        (
            hv1,
            "hv1 updates its Chassis (hostname hv1)",
            set_ids("hv1"),
        ),
        (
            Who::Admin,
            "admin deletes Chassis's permission",
            vec![json!({"op": "delete", "table": "RBAC_Permission", "where": chassis_perm})],
        ),
        (
            hv1,
            "hv1 updates its Chassis (no permission)",
            set_ids("hv1"),
        ),
        (
            hv2,
            "hv2 inserts its Chassis (no permission)",
            vec![
                json!({"op": "insert", "table": "Encap", "uuid-name": "e",
                       "row": {"type": "geneve", "ip": "10.0.3.2", "chassis_name": "hv2"}}),
                json!({"op": "insert", "table": "Chassis",
                       "row": {"name": "hv2", "hostname": "hv2", "encaps": ["named-uuid", "e"]}}),
            ],
        ),
        (
            hv1,
            "hv1 inserts an FDB entry (still allowed)",
            vec![json!({"op": "insert", "table": "FDB",
                        "row": {"mac": "00:00:00:00:00:02", "dp_key": 2, "port_key": 2}})],
        ),
        (
            Who::Admin,
            "admin deletes the role",
            vec![json!({"op": "delete", "table": "RBAC_Role", "where": name_is(ROLE)})],
        ),
        (
            hv1,
            "hv1 inserts an FDB entry (no role)",
            vec![json!({"op": "insert", "table": "FDB",
                        "row": {"mac": "00:00:00:00:00:03", "dp_key": 3, "port_key": 3}})],
        ),
        (
            hv2,
            "hv2 selects (reads are not checked)",
            vec![json!({"op": "select", "table": "Chassis", "where": [], "columns": ["name"]})],
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

/// The real ovn-northd writes the RBAC tables into the reference and into
/// oxsdb (through its first server); they must be equal. Stops both
/// northds, so that only the steps write from then on.
fn northd_writes_rbac(reference: &Deployment, subject: &Deployment) {
    let dir = tempfile::Builder::new()
        .prefix("oxsdb-northd-")
        .tempdir()
        .expect("tempdir");
    let mut northds = Vec::new();
    let mut tables = Vec::new();
    for (tag, side) in [("reference", reference), ("oxsdb", subject)] {
        let northd = start_northd(&side.admin(), dir.path(), tag);
        let r = poll(
            &format!("ovn-northd writing RBAC into {}", side.name),
            T,
            || {
                let r = side.transact(Who::Admin, &select_rbac());
                rbac_written(&r).then_some(r)
            },
        );
        tables.push(rbac_tables(&r[0], &r[1]));
        northds.push(northd);
    }
    assert_eq!(
        tables[1], tables[0],
        "ovn-northd wrote different RBAC tables into oxsdb"
    );
    for mut northd in northds {
        northd.terminate();
    }
    subject.settle();
}

/// Runs every step on both and asserts the same replies and the same tables.
fn same_steps(
    reference: &Deployment,
    subject: &Deployment,
    steps: Vec<(Who, &'static str, Vec<Value>)>,
    min_refused: usize,
) {
    let (mut ref_names, mut ox_names) = (Normalizer::new(), Normalizer::new());
    let mut differences = Vec::new();
    let mut refused = 0;
    for (who, what, ops) in steps {
        let expected = reference.transact(who, &ops);
        let actual = subject.transact(who, &ops);
        subject.settle();
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
    let expected = reference.transact(Who::Admin, &final_tables());
    let actual = subject.transact(Who::Admin, &final_tables());
    assert!(
        differences.is_empty(),
        "{} answered differently from ovsdb-server:\n{}",
        subject.name,
        differences.join("\n")
    );
    assert_eq!(
        sorted_rows(&actual),
        sorted_rows(&expected),
        "the tables differ after the same steps"
    );
    // The steps must exercise refusals, not only successes.
    assert!(
        refused >= min_refused,
        "only {refused} steps were refused by the reference"
    );
}

/// `ovn-sbctl` (the IDL: monitors, `verify`, its own transactions) as the
/// chassis over TLS and as the client without id: the same output, exit
/// code and tables as with the reference.
fn same_sbctl_steps(reference: &Deployment, subject: &Deployment) {
    let hv1 = Who::Chassis("hv1");
    let hv2 = Who::Chassis("hv2");
    // One table per refused step: ovn-sbctl orders the operations of a
    // transaction by its rows' hashes (chassis-del deletes a Chassis and
    // a Chassis_Private), so the first refused, which the error names,
    // would vary from run to run on either server.
    let steps: [(Who, &[&str]); 11] = [
        (hv2, &["chassis-add", "hv2", "geneve", "10.0.0.22"]),
        (hv2, &["set", "Chassis", "hv2", "external_ids:ctl=yes"]),
        (hv2, &["set", "Chassis", "hv1", "external_ids:ctl=yes"]),
        (hv2, &["set", "Chassis", "hv2", "hostname=ctl"]),
        (hv1, &["remove", "Chassis", "hv1", "external_ids", "k"]),
        (hv1, &["destroy", "Chassis", "hv2"]),
        (hv1, &["destroy", "Chassis_Private", "hv2"]),
        (Who::NoId, &["set", "Chassis", "hv2", "nb_cfg=3"]),
        (hv1, &["--if-exists", "chassis-del", "nowhere"]),
        (hv2, &["chassis-del", "hv2"]),
        (hv1, &["chassis-del", "hv1"]),
    ];
    let mut differences = Vec::new();
    for (who, args) in steps {
        let expected = reference.sbctl(who, args);
        let actual = subject.sbctl(who, args);
        subject.settle();
        if expected != actual {
            differences.push(format!(
                "ovn-sbctl {args:?} ({who:?}):\n  reference: {expected}\n  oxsdb:     {actual}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} answered ovn-sbctl differently from ovsdb-server:\n{}",
        subject.name,
        differences.join("\n")
    );
    let expected = reference.transact(Who::Admin, &final_tables());
    let actual = subject.transact(Who::Admin, &final_tables());
    assert_eq!(
        sorted_rows(&actual),
        sorted_rows(&expected),
        "the tables differ after the same ovn-sbctl steps"
    );
}

/// A chassis with its certificate on a read-only `pssl:` Connection with
/// the role, added by the admin and then removed: each operation runs
/// first, RBAC refusing what it refuses, then read-only refuses the writes
/// RBAC allowed; the same replies as the reference's.
fn read_only_chassis(reference: &Deployment, subject: &Deployment) {
    const TARGET: &str = "pssl:0:127.0.0.4";
    let add = vec![
        json!({"op": "insert", "table": "Connection", "uuid-name": "ro",
               "row": {"target": TARGET, "read_only": true, "role": ROLE}}),
        json!({"op": "mutate", "table": "SB_Global", "where": [],
               "mutations": [["connections", "insert", ["set", [["named-uuid", "ro"]]]]]}),
        // Another chassis's row for hv1 to be refused.
        json!({"op": "insert", "table": "Encap", "uuid-name": "e",
               "row": {"type": "geneve", "ip": "10.0.4.2", "chassis_name": "hv2"}}),
        json!({"op": "insert", "table": "Chassis",
               "row": {"name": "hv2", "hostname": "hv2", "encaps": ["named-uuid", "e"]}}),
    ];
    let steps = [
        vec![json!({"op": "insert", "table": "FDB",
                    "row": {"mac": "00:00:00:00:00:0b", "dp_key": 11, "port_key": 11}})],
        vec![
            json!({"op": "update", "table": "Chassis", "where": name_is("hv2"),
                    "row": {"nb_cfg": 12}}),
        ],
        vec![
            json!({"op": "mutate", "table": "Chassis", "where": name_is("hv1"),
                    "mutations": [["nb_cfg", "+=", 1]]}),
        ],
        vec![json!({"op": "select", "table": "Chassis", "where": [], "columns": ["name"]})],
    ];
    let mut replies = Vec::new();
    for side in [reference, subject] {
        let added = side.transact(Who::Admin, &add);
        assert!(
            !added.to_string().contains("error"),
            "{}: {added}",
            side.name
        );
        let last = &side.servers[side.servers.len() - 1];
        let port = if side.servers.len() == 1 {
            bound_in_status(&format!("--db={}", side.admin()), TARGET, last)
        } else {
            poll(&format!("{} listening on {TARGET}", side.name), T, || {
                logged_port(&last.log(), "pssl", "127.0.0.4")
            })
        };
        let remote = format!("ssl:127.0.0.4:{port}");
        let mut names = Normalizer::new();
        let side_replies: Vec<Value> = steps
            .iter()
            .map(|ops| names.normalize(&side.transact_on(&remote, Who::Chassis("hv1"), ops)))
            .collect();
        replies.push(side_replies);
        let removed = side.transact(
            Who::Admin,
            &[
                json!({"op": "mutate", "table": "SB_Global", "where": [],
                       "mutations": [["connections", "delete",
                                      ["set", [added[0]["uuid"].clone()]]]]}),
                json!({"op": "delete", "table": "Connection", "where": [["target", "==", TARGET]]}),
                json!({"op": "delete", "table": "Chassis", "where": name_is("hv2")}),
            ],
        );
        assert!(
            !removed.to_string().contains("error"),
            "{}: {removed}",
            side.name
        );
        side.settle();
    }
    assert!(
        replies[0]
            .iter()
            .any(|r| r.to_string().contains("not allowed"))
            && replies[0]
                .iter()
                .any(|r| r.to_string().contains("permission error")),
        "the reference refused neither way: {:?}",
        replies[0]
    );
    assert_eq!(
        replies[1], replies[0],
        "a chassis on a read-only remote with the role ({})",
        subject.name
    );
}

/// Raw JSON-RPC on the `ptcp:` remote with the role (and no id), byte for
/// byte the same replies: a write refused, `convert` (not subject to RBAC),
/// a read.
fn raw_rpc_with_role_and_no_id(reference: &Deployment, subject: &Deployment) {
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
    let open = |side: &Deployment| Rpc::open(&format!("127.0.0.2:{}", side.role_tcp_port));
    let (mut theirs, mut ours) = (open(reference), open(subject));
    for request in requests {
        theirs.send(&request).expect("send");
        let expected = theirs.read_message();
        ours.send(&request).expect("send");
        let actual = ours.read_message();
        let method = &request["method"];
        assert_eq!(
            actual, expected,
            "{method} on a connection with the role and no id ({})",
            subject.name
        );
    }
}

/// The `Connection` and `SSL` rows `set-ssl` and `set-connection` made,
/// without UUIDs, once no client is connected any more: with the status
/// each server wrote (its bound ports masked) where `with_status`.
fn connection_rows(side: &Deployment, with_status: bool) -> Value {
    let mut columns = vec![
        "target",
        "role",
        "read_only",
        "max_backoff",
        "inactivity_probe",
        "other_config",
        "external_ids",
    ];
    if with_status {
        columns.extend(["is_connected", "status"]);
    }
    let ops = [
        json!({"op": "select", "table": "Connection", "where": [], "columns": columns}),
        json!({"op": "select", "table": "SSL", "where": [],
               "columns": ["private_key", "certificate", "ca_cert", "bootstrap_ca_cert",
                           "ssl_protocols", "ssl_ciphers", "external_ids"]}),
    ];
    let ports: Vec<String> = side
        .pssl_ports
        .iter()
        .map(|(_, p)| p.to_string())
        .chain([side.role_tcp_port, side.read_only_port].map(|p| p.to_string()))
        .collect();
    poll(&format!("{}: no client connected", side.name), T, || {
        let r = side.transact(Who::Admin, &ops);
        assert!(r[1]["rows"].is_array(), "{}: {r}", side.name);
        if r.to_string().contains("\"is_connected\":true") {
            return None;
        }
        let text = r.to_string();
        let masked = ports
            .iter()
            .fold(text, |t, p| t.replace(&format!("\"{p}\""), "\"<port>\""));
        Some(sorted_rows(&serde_json::from_str(&masked).expect("JSON")))
    })
}

/// ovs-pki's certificates (hv1, hv2 and the server's) and the reference.
fn pki_and_reference() -> (Arc<Pki>, Deployment) {
    let pki = Arc::new(Pki::new(&["hv1", "hv2"]));
    let reference = Deployment::reference(pki.clone());
    (pki, reference)
}

/// Every step on the reference and on `subject`, replies and tables
/// compared; `with_status`: whether the Connection rows' status is compared
/// too (servers on etcd write none, as ovsdb-server writes none for
/// clustered databases: whose would it be?).
fn same_deployment(reference: &Deployment, subject: &Deployment, with_status: bool) {
    northd_writes_rbac(reference, subject);
    same_steps(reference, subject, steps(), 12);
    same_sbctl_steps(reference, subject);
    read_only_chassis(reference, subject);
    same_steps(reference, subject, rbac_edits(), 7);
    raw_rpc_with_role_and_no_id(reference, subject);
    assert_eq!(
        connection_rows(subject, with_status),
        connection_rows(reference, with_status),
        "the Connection and SSL rows differ"
    );
}

#[test]
fn chassis_rbac_matches_reference() {
    let (pki, reference) = pki_and_reference();
    let subject = Deployment::oxsdb_on_files(pki);
    same_deployment(&reference, &subject, true);
}

/// The same on `--store=etcd` with two servers following the same
/// Connection rows: ovn-northd writes the RBAC tables through the first;
/// hv1 and the admin use the first, hv2 and the client without id the
/// second, which judges them by the RBAC rows it learnt from etcd.
#[test]
fn chassis_rbac_matches_reference_on_etcd_with_two_servers() {
    let (pki, reference) = pki_and_reference();
    let subject = Deployment::oxsdb_on_etcd(pki);
    same_deployment(&reference, &subject, false);
}
