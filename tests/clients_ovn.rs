//! OVN against oxsdb and against the reference `ovsdb-server`.
//!
//! (a) `ovn-nbctl` builds a topology of several hundred objects (switches,
//! ports with addresses and port security, ACLs on switches and port groups,
//! routers, router ports, static routes, NAT, load balancers, address sets,
//! port groups, DHCP options) on a server of the OVN Northbound schema; the
//! outputs of `show`, `list` of every table and the listing commands must be
//! equal on both servers (UUIDs named canonically, hash-ordered output sorted).
//!
//! (b) `ovn-northd` end to end: one server process serves both
//! OVN_Northbound and OVN_Southbound, ovn-northd (a child process) connects to
//! both, the same topology is built, `ovn-nbctl --wait=sb sync` must return,
//! and the Southbound must hold the same Datapath_Binding, Port_Binding,
//! Logical_Flow (and other) row counts, and the same logical flows, as with
//! ovsdb-server.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::clients::{
    canonical_names, cmd, counts, mask_remotes, read_db, run, run_both, sort_records, sort_tree,
    strip_log_timestamps, tool, Background, Transcript,
};
use support::servers::{Kind, Server};

const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";
const T: Duration = Duration::from_secs(60);

const SWITCHES: usize = 8;
const PORTS_PER_SWITCH: usize = 24;
const ROUTERS: usize = 2;

/// The topology as batches of ovn-nbctl commands (each batch is one
/// invocation, commands separated by `--`).
fn topology() -> Vec<Vec<Vec<String>>> {
    let s = |v: &[&str]| -> Vec<String> { v.iter().map(|x| x.to_string()).collect() };
    let mut batches = Vec::new();
    // Address sets and DHCP options first (ports refer to the DHCP options).
    let mut b = Vec::new();
    for i in 0..6 {
        let addrs: Vec<String> = (1..=10).map(|k| format!("\"10.{i}.0.{k}\"")).collect();
        b.push(s(&[
            "create",
            "Address_Set",
            &format!("name=as{i}"),
            &format!("addresses=[{}]", addrs.join(",")),
        ]));
    }
    for i in 0..SWITCHES {
        b.push(s(&[
            &format!("--id=@dhcp{i}"),
            "create",
            "DHCP_Options",
            &format!("cidr=10.{i}.0.0/24"),
            &format!("options=\"lease_time\"=\"3600\",\"router\"=\"10.{i}.0.1\",\"server_id\"=\"10.{i}.0.1\",\"server_mac\"=\"c0:ff:ee:00:{i:02x}:01\""),
            &format!("external_ids=switch=ls{i}"),
        ]));
    }
    batches.push(b);
    for i in 0..SWITCHES {
        let mut b = Vec::new();
        let ls = format!("ls{i}");
        b.push(s(&["ls-add", &ls]));
        b.push(s(&[
            "set",
            "Logical_Switch",
            &ls,
            &format!("other_config:subnet=10.{i}.0.0/24"),
            &format!("external_ids:owner=tenant{}", i % 3),
        ]));
        for p in 0..PORTS_PER_SWITCH {
            let lsp = format!("ls{i}-p{p}");
            let mac = format!("00:00:00:{i:02x}:{p:02x}:01");
            let ip = format!("10.{i}.0.{}", p + 10);
            b.push(s(&["lsp-add", &ls, &lsp]));
            b.push(s(&["lsp-set-addresses", &lsp, &format!("{mac} {ip}")]));
            if p % 2 == 0 {
                b.push(s(&["lsp-set-port-security", &lsp, &format!("{mac} {ip}")]));
            }
            if p % 6 == 0 {
                b.push(s(&[
                    "set",
                    "Logical_Switch_Port",
                    &lsp,
                    &format!("external_ids:vm=vm-{i}-{p}"),
                    "options:requested-chassis=hv1",
                ]));
            }
        }
        // ACLs on the switch.
        for a in 0..4 {
            b.push(s(&[
                "acl-add",
                &ls,
                if a % 2 == 0 { "from-lport" } else { "to-lport" },
                &format!("{}", 1000 + a * 10 + i),
                &format!("ip4.src == 10.{i}.0.{} && tcp.dst == {}", a + 10, 80 + a),
                ["allow", "allow-related", "drop", "reject"][a],
            ]));
        }
        b.push(s(&[
            "acl-add",
            &ls,
            "to-lport",
            "900",
            &format!("ip4.src == $as{}", i % 6),
            "allow",
        ]));
        batches.push(b);
    }
    // Routers, router ports, connections to switches, routes, NAT.
    let mut b = Vec::new();
    for r in 0..ROUTERS {
        let lr = format!("lr{r}");
        b.push(s(&["lr-add", &lr]));
        b.push(s(&[
            "set",
            "Logical_Router",
            &lr,
            "options:always_learn_from_arp_request=false",
        ]));
        for i in (r..SWITCHES).step_by(ROUTERS) {
            let lrp = format!("lrp{i}");
            let mac = format!("00:00:01:00:{i:02x}:01");
            b.push(s(&[
                "lrp-add",
                &lr,
                &lrp,
                &mac,
                &format!("10.{i}.0.1/24"),
                &format!("fd00:{i}::1/64"),
            ]));
            let lsp = format!("ls{i}-{lr}");
            b.push(s(&["lsp-add", &format!("ls{i}"), &lsp]));
            b.push(s(&["lsp-set-type", &lsp, "router"]));
            b.push(s(&["lsp-set-addresses", &lsp, "router"]));
            b.push(s(&["lsp-set-options", &lsp, &format!("router-port={lrp}")]));
            b.push(s(&[
                "lr-nat-add",
                &lr,
                "snat",
                &format!("172.16.{r}.{}", i + 1),
                &format!("10.{i}.0.0/24"),
            ]));
        }
        b.push(s(&[
            "lr-route-add",
            &lr,
            "0.0.0.0/0",
            &format!("10.{r}.0.254"),
        ]));
        b.push(s(&[
            "lr-route-add",
            &lr,
            &format!("192.168.{r}.0/24"),
            &format!("10.{r}.0.253"),
        ]));
        b.push(s(&[
            "--policy=src-ip",
            "lr-route-add",
            &lr,
            &format!("10.{r}.0.128/25"),
            &format!("10.{r}.0.252"),
        ]));
        b.push(s(&[
            "lr-nat-add",
            &lr,
            "dnat_and_snat",
            &format!("172.16.{r}.100"),
            &format!("10.{r}.0.10"),
        ]));
        b.push(s(&[
            "lr-policy-add",
            &lr,
            "100",
            &format!("ip4.src == 10.{r}.0.0/24"),
            "allow",
        ]));
    }
    batches.push(b);
    // Load balancers, port groups with ACLs, DHCP on ports.
    let mut b = Vec::new();
    for l in 0..6 {
        let lb = format!("lb{l}");
        let backends: Vec<String> = (0..3)
            .map(|k| format!("10.{}.0.{}:8080", l % SWITCHES, 10 + k))
            .collect();
        b.push(s(&[
            "lb-add",
            &lb,
            &format!("172.30.0.{}:80", l + 1),
            &backends.join(","),
            "tcp",
        ]));
        b.push(s(&["ls-lb-add", &format!("ls{}", l % SWITCHES), &lb]));
        if l % 2 == 0 {
            b.push(s(&["lr-lb-add", &format!("lr{}", l % ROUTERS), &lb]));
        }
    }
    b.push(s(&[
        "lb-add",
        "lb-udp",
        "172.30.1.1:53",
        "10.0.0.20:53,10.0.0.21:53",
        "udp",
    ]));
    b.push(s(&[
        "lb-add",
        "lb-novip-port",
        "172.30.2.1",
        "10.1.0.20,10.1.0.21",
    ]));
    for g in 0..4 {
        let pg = format!("pg{g}");
        let ports: Vec<String> = (0..SWITCHES)
            .map(|i| format!("ls{i}-p{}", g * 3 + 1))
            .collect();
        let mut cmdv = vec!["pg-add".to_string(), pg.clone()];
        cmdv.extend(ports);
        b.push(cmdv);
        b.push(s(&[
            "acl-add",
            &pg,
            "from-lport",
            &format!("{}", 2000 + g),
            &format!("inport == @{pg} && ip4"),
            "allow-related",
        ]));
        b.push(s(&[
            "acl-add",
            &pg,
            "to-lport",
            &format!("{}", 2000 + g),
            &format!("outport == @{pg} && ip4.src == $as{g}"),
            "drop",
        ]));
    }
    batches.push(b);
    batches
}

/// Attaches DHCP options to the first ports of each switch (needs the
/// DHCP_Options UUIDs, found by their cidr).
fn dhcp_batch(server: &Server) -> Vec<Vec<String>> {
    let data = read_db(&server.addr(), "OVN_Northbound");
    let mut b = Vec::new();
    for row in &data["DHCP_Options"] {
        let cidr = row["cidr"].as_str().unwrap_or_default().to_string();
        let uuid = row["_uuid"][1].as_str().unwrap().to_string();
        let i: usize = cidr.split('.').nth(1).and_then(|x| x.parse().ok()).unwrap();
        for p in 0..3 {
            b.push(vec![
                "lsp-set-dhcpv4-options".into(),
                format!("ls{i}-p{p}"),
                uuid.clone(),
            ]);
        }
    }
    b.sort();
    b
}

fn nbctl_command(server: &Server, extra: &[&str]) -> Command {
    let db = format!("--db={}", server.tcp());
    let mut c = cmd(
        "ovn-nbctl",
        ["--no-leader-only", "--timeout=50", db.as_str()],
    );
    c.args(extra);
    c
}

/// Runs one batch as a single ovn-nbctl invocation; its output (UUIDs of
/// created rows) is returned raw.
fn nbctl_batch(server: &Server, batch: &[Vec<String>], extra: &[&str]) -> support::clients::Output {
    let mut c = nbctl_command(server, extra);
    for (k, command) in batch.iter().enumerate() {
        if k > 0 {
            c.arg("--");
        }
        c.args(command);
    }
    run(&mut c, T)
}

fn build_topology(server: &Server, t: &mut Transcript, extra: &[&str]) {
    let out = nbctl_batch(server, &[vec!["init".to_string()]], extra);
    t.add("init", out.all());
    for (k, batch) in topology().iter().enumerate() {
        let out = nbctl_batch(server, batch, extra);
        assert!(
            out.success(),
            "{}: ovn-nbctl batch {k} failed: {}",
            server.kind.name(),
            out.all()
        );
        // The output is the UUIDs of the created rows: count them.
        t.add(
            format!("batch {k}"),
            format!("rc=0 lines={}\n{}", out.stdout.lines().count(), out.stderr),
        );
    }
    let out = nbctl_batch(server, &dhcp_batch(server), extra);
    assert!(
        out.success(),
        "{}: ovn-nbctl dhcp batch: {}",
        server.kind.name(),
        out.all()
    );
}

/// Shapes of outputs.
#[derive(Clone, Copy)]
enum Shape {
    Plain,
    Tree,
    Records,
    Lines,
}

fn nbctl_query(server: &Server, t: &mut Transcript, label: &str, shape: Shape, args: &[&str]) {
    let mut c = nbctl_command(server, &[]);
    c.args(args);
    let out = run(&mut c, T);
    let mut names = canonical_names(&read_db(&server.addr(), "OVN_Northbound"));
    let stdout: String = names
        .text(&out.stdout)
        .lines()
        .map(|l| support::clients::sort_name_lists(l) + "\n")
        .collect();
    let stdout = match shape {
        Shape::Plain => stdout,
        Shape::Tree => sort_tree(&stdout),
        Shape::Records => sort_records(&stdout),
        Shape::Lines => {
            let mut l: Vec<&str> = stdout.lines().collect();
            l.sort();
            l.iter().map(|x| format!("{x}\n")).collect()
        }
    };
    let stderr = mask_remotes(&names.text(&strip_log_timestamps(&out.stderr)));
    t.add(
        label,
        format!("rc={}\n{stdout}{stderr}", support::clients::rc(&out.status)),
    );
}

const NB_TABLES: &[&str] = &[
    "NB_Global",
    "Logical_Switch",
    "Logical_Switch_Port",
    "ACL",
    "Logical_Router",
    "Logical_Router_Port",
    "Logical_Router_Static_Route",
    "Logical_Router_Policy",
    "NAT",
    "Load_Balancer",
    "Address_Set",
    "Port_Group",
    "DHCP_Options",
];

#[test]
fn ovn_nbctl_topology() {
    support::tools::require_file(Path::new(NB_SCHEMA));
    tool("ovn-nbctl");
    run_both("ovn_nbctl_topology", |kind: Kind, _| {
        let server = Server::start(kind, &[Path::new(NB_SCHEMA)]);
        let mut t = Transcript::new();
        let started = Instant::now();
        build_topology(&server, &mut t, &[]);
        eprintln!(
            "{}: topology built in {:.2?}",
            kind.name(),
            started.elapsed()
        );
        let data = read_db(&server.addr(), "OVN_Northbound");
        let total: usize = data.values().map(Vec::len).sum();
        assert!(total >= 300, "only {total} rows in the topology");
        t.add("row counts", format!("{:?}\n", counts(&data)));
        use Shape::*;
        let s = &server;
        nbctl_query(s, &mut t, "show", Tree, &["show"]);
        nbctl_query(s, &mut t, "show ls3", Tree, &["show", "ls3"]);
        nbctl_query(s, &mut t, "ls-list", Lines, &["ls-list"]);
        nbctl_query(s, &mut t, "lsp-list ls1", Lines, &["lsp-list", "ls1"]);
        nbctl_query(
            s,
            &mut t,
            "lsp-get-addresses",
            Plain,
            &["lsp-get-addresses", "ls2-p4"],
        );
        nbctl_query(
            s,
            &mut t,
            "lsp-get-port-security",
            Plain,
            &["lsp-get-port-security", "ls2-p4"],
        );
        nbctl_query(
            s,
            &mut t,
            "lsp-get-dhcpv4-options",
            Plain,
            &["lsp-get-dhcpv4-options", "ls2-p1"],
        );
        nbctl_query(s, &mut t, "acl-list ls0", Plain, &["acl-list", "ls0"]);
        nbctl_query(s, &mut t, "acl-list pg1", Plain, &["acl-list", "pg1"]);
        nbctl_query(s, &mut t, "lr-list", Lines, &["lr-list"]);
        nbctl_query(s, &mut t, "lrp-list lr0", Lines, &["lrp-list", "lr0"]);
        nbctl_query(
            s,
            &mut t,
            "lr-route-list lr1",
            Plain,
            &["lr-route-list", "lr1"],
        );
        nbctl_query(s, &mut t, "lr-nat-list lr0", Plain, &["lr-nat-list", "lr0"]);
        nbctl_query(
            s,
            &mut t,
            "lr-policy-list lr0",
            Plain,
            &["lr-policy-list", "lr0"],
        );
        nbctl_query(s, &mut t, "lb-list", Lines, &["lb-list"]);
        nbctl_query(s, &mut t, "ls-lb-list ls0", Lines, &["ls-lb-list", "ls0"]);
        nbctl_query(s, &mut t, "lr-lb-list lr0", Lines, &["lr-lb-list", "lr0"]);
        nbctl_query(
            s,
            &mut t,
            "dhcp-options-list",
            Lines,
            &["dhcp-options-list"],
        );
        nbctl_query(
            s,
            &mut t,
            "find ACL action=drop",
            Records,
            &["find", "ACL", "action=drop"],
        );
        nbctl_query(
            s,
            &mut t,
            "find Logical_Switch_Port type=router",
            Records,
            &[
                "--columns=name,options",
                "find",
                "Logical_Switch_Port",
                "type=router",
            ],
        );
        nbctl_query(
            s,
            &mut t,
            "get",
            Plain,
            &[
                "get",
                "Logical_Switch",
                "ls1",
                "other_config:subnet",
                "external_ids",
            ],
        );
        nbctl_query(
            s,
            &mut t,
            "list --format=json Address_Set",
            Plain,
            &[
                "--format=json",
                "--columns=name,addresses",
                "find",
                "Address_Set",
                "name=as2",
            ],
        );
        for table in NB_TABLES {
            let mut args = vec!["list", table];
            if *table == "NB_Global" {
                // Timestamps and the like are set by the clients and differ.
                args = vec!["--columns=name,nb_cfg,sb_cfg,hv_cfg,external_ids,options,connections,ssl,ipsec", "list", table];
            }
            nbctl_query(s, &mut t, &format!("list {table}"), Records, &args);
        }
        // Modifications and deletions, then the whole database again.
        let out = nbctl_batch(
            s,
            &[
                vec!["lsp-del".into(), "ls0-p0".into()],
                vec!["ls-del".into(), "ls7".into()],
                vec![
                    "lr-nat-del".into(),
                    "lr1".into(),
                    "snat".into(),
                    "10.3.0.0/24".into(),
                ],
                vec!["lb-del".into(), "lb5".into()],
                vec!["pg-del".into(), "pg3".into()],
                vec!["acl-del".into(), "ls1".into(), "to-lport".into()],
                vec!["lsp-set-enabled".into(), "ls2-p2".into(), "disabled".into()],
                vec!["lr-route-del".into(), "lr0".into(), "0.0.0.0/0".into()],
            ],
            &[],
        );
        t.add("deletions", out.all());
        nbctl_query(s, &mut t, "show after deletions", Tree, &["show"]);
        nbctl_query(
            s,
            &mut t,
            "errors: lsp-add existing",
            Plain,
            &["lsp-add", "ls0", "ls0-p1"],
        );
        nbctl_query(
            s,
            &mut t,
            "errors: unknown switch",
            Plain,
            &["lsp-list", "nope"],
        );
        nbctl_query(
            s,
            &mut t,
            "errors: bad acl",
            Plain,
            &["acl-add", "ls0", "sideways", "1", "ip4", "allow"],
        );
        let data = read_db(&server.addr(), "OVN_Northbound");
        let mut text = format!("{:?}\n", counts(&data));
        for (table, rows) in support::clients::canonical_contents(&data) {
            if table == "NB_Global" {
                continue;
            }
            for r in rows {
                text.push_str(&format!("{table} {r}\n"));
            }
        }
        t.add("database contents", text);
        t
    });
}

/// Counts and contents of the Southbound tables ovn-northd fills.
fn southbound_summary(server: &Server) -> String {
    let sb = read_db(&server.addr(), "OVN_Southbound");
    let mut out = String::new();
    for table in [
        "SB_Global",
        "Datapath_Binding",
        "Port_Binding",
        "Logical_Flow",
        "Logical_DP_Group",
        "Multicast_Group",
        "Address_Set",
        "Port_Group",
        "Load_Balancer",
        "DHCP_Options",
        "DHCPv6_Options",
        "Meter",
        "IP_Multicast",
        "Service_Monitor",
        "MAC_Binding",
        "Chassis",
    ] {
        out.push_str(&format!("{table}: {}\n", sb.get(table).map_or(0, Vec::len)));
    }
    // The logical flows themselves: which datapath (by its external_ids
    // name), pipeline, table, priority, match, actions. Tunnel keys are
    // allocated in hash order, so register values holding them are kept out.
    let mut dp_names = std::collections::HashMap::new();
    for dp in sb.get("Datapath_Binding").into_iter().flatten() {
        let u = dp["_uuid"][1].as_str().unwrap_or_default().to_string();
        // external_ids holds the name and the NB row's UUID: keep the name.
        let name = dp["external_ids"][1]
            .as_array()
            .into_iter()
            .flatten()
            .find(|kv| kv[0] == "name")
            .map(|kv| kv[1].to_string())
            .unwrap_or_default();
        dp_names.insert(u, name);
    }
    let mut flows: Vec<String> = sb
        .get("Logical_Flow")
        .into_iter()
        .flatten()
        .map(|f| {
            let dp = f["logical_datapath"]
                .get(1)
                .and_then(|u| u.as_str())
                .and_then(|u| dp_names.get(u).cloned())
                .unwrap_or_else(|| "group".into());
            let text = format!(
                "{dp} {} {} {} {} {}",
                f["pipeline"], f["table_id"], f["priority"], f["match"], f["actions"]
            );
            support::clients::replace_uuids(&text, |_| "<uuid>".to_string())
        })
        .collect();
    flows.sort();
    if let Some(dir) = std::env::var_os("OXSDB_CLIENT_TESTS_DUMP_DIR") {
        let path =
            Path::new(&dir).join(format!("flows-{}-{}.txt", server.kind.name(), server.port));
        std::fs::write(&path, flows.join("\n")).ok();
    }
    let mut digest: u64 = 0xcbf29ce484222325;
    for f in &flows {
        for b in f.bytes() {
            digest ^= b as u64;
            digest = digest.wrapping_mul(0x100000001b3);
        }
    }
    out.push_str(&format!("logical flows digest: {digest:016x}\n"));
    out
}

/// A running ovn-northd, killed on drop.
struct Northd {
    proc: Background,
    log: std::path::PathBuf,
}

impl Northd {
    fn start(server: &Server) -> Northd {
        let dir = server.dir();
        let log = dir.join("northd.log");
        let mut c = cmd("ovn-northd", Vec::<String>::new());
        c.arg(format!("--ovnnb-db={}", server.tcp()))
            .arg(format!("--ovnsb-db={}", server.tcp()))
            .arg(format!("--log-file={}", log.display()))
            .arg(format!("--pidfile={}", dir.join("northd.pid").display()))
            .arg(format!("--unixctl={}", dir.join("northd.ctl").display()))
            .arg("-vconsole:off");
        Northd {
            proc: Background::spawn(&mut c),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Northd {
    fn drop(&mut self) {
        self.proc.terminate();
    }
}

#[test]
fn ovn_northd_end_to_end() {
    support::tools::require_file(Path::new(NB_SCHEMA));
    support::tools::require_file(Path::new(SB_SCHEMA));
    tool("ovn-northd");
    tool("ovn-nbctl");
    run_both("ovn_northd_end_to_end", |kind: Kind, _| {
        let server = Server::start(kind, &[Path::new(NB_SCHEMA), Path::new(SB_SCHEMA)]);
        let mut t = Transcript::new();
        let northd = Northd::start(&server);
        let started = Instant::now();
        build_topology(&server, &mut t, &[]);
        // Wait until ovn-northd has processed it all into the Southbound.
        let mut sync = nbctl_command(&server, &["--wait=sb", "sync"]);
        let out = run(&mut sync, T);
        if !out.success() {
            panic!(
                "{}: ovn-nbctl --wait=sb sync failed: {}\nnorthd log:\n{}\nserver log:\n{}",
                kind.name(),
                out.all(),
                support::clients::clip(&northd.log(), 6000),
                server.log_tail(40)
            );
        }
        t.add("sync", out.all());
        eprintln!(
            "{}: topology built and synced in {:.2?}",
            kind.name(),
            started.elapsed()
        );
        t.add("southbound", southbound_summary(&server));
        // A change goes through too.
        let out = nbctl_batch(
            &server,
            &[
                vec!["ls-del".into(), "ls7".into()],
                vec!["lsp-del".into(), "ls0-p5".into()],
                vec!["lb-del".into(), "lb0".into()],
            ],
            &["--wait=sb"],
        );
        t.add("deletions --wait=sb", out.all());
        t.add("southbound after deletions", southbound_summary(&server));
        // northd holds the Southbound lock and reports being active.
        let mut status = cmd("ovs-appctl", Vec::<String>::new());
        status
            .arg("-t")
            .arg(server.dir().join("northd.ctl"))
            .arg("status");
        t.add("northd status", run(&mut status, T).all());
        let nb = read_db(&server.addr(), "OVN_Northbound");
        let g = &nb["NB_Global"][0];
        t.add(
            "NB_Global nb_cfg == sb_cfg",
            format!("{} {}\n", g["nb_cfg"] == g["sb_cfg"], g["nb_cfg"]),
        );
        drop(northd);
        t
    });
}

/// ovn-northd and ovn-nbctl keep working across a restart of the server that
/// keeps its data (oxsdb on its file store): the C IDL of ovn-northd
/// reconnects and resynchronises both databases (oxsdb may resume its
/// monitors from the last transaction id), and the next `--wait=sb` change
/// is processed like with ovsdb-server.
#[test]
fn ovn_northd_survives_server_restart() {
    support::tools::require_file(Path::new(NB_SCHEMA));
    support::tools::require_file(Path::new(SB_SCHEMA));
    tool("ovn-northd");
    tool("ovn-nbctl");
    run_both("ovn_northd_survives_server_restart", |kind: Kind, _| {
        let mut server = Server::start_durable(kind, &[Path::new(NB_SCHEMA), Path::new(SB_SCHEMA)]);
        let mut t = Transcript::new();
        let northd = Northd::start(&server);
        let mut small: Vec<Vec<String>> = vec![vec!["init".into()]];
        for i in 0..3 {
            small.push(vec!["ls-add".into(), format!("sw{i}")]);
            for p in 0..4 {
                small.push(vec![
                    "lsp-add".into(),
                    format!("sw{i}"),
                    format!("sw{i}-p{p}"),
                ]);
                small.push(vec![
                    "lsp-set-addresses".into(),
                    format!("sw{i}-p{p}"),
                    format!("00:00:00:00:{i:02x}:{p:02x} 10.{i}.0.{}", p + 2),
                ]);
            }
        }
        let out = nbctl_batch(&server, &small, &["--wait=sb"]);
        assert!(
            out.success(),
            "{}: first change with --wait=sb: {}\nnorthd log:\n{}",
            kind.name(),
            out.all(),
            support::clients::clip(&northd.log(), 4000)
        );
        t.add("southbound before restart", southbound_summary(&server));
        let status = server.restart_keeping_data().expect("running");
        if kind == Kind::Oxsdb {
            assert!(status.success(), "oxsdb exited with {status} on SIGTERM");
        }
        t.add(
            "southbound right after restart",
            southbound_summary(&server),
        );
        // A change made after the restart reaches the Southbound.
        let out = nbctl_batch(
            &server,
            &[
                vec!["ls-add".into(), "sw-new".into()],
                vec!["lsp-add".into(), "sw-new".into(), "new-port".into()],
                vec!["lsp-del".into(), "sw0-p0".into()],
            ],
            &["--wait=sb"],
        );
        if !out.success() {
            panic!(
                "{}: a change after the server restarted was not processed: {}\nnorthd log:\n{}\nserver log:\n{}",
                kind.name(),
                out.all(),
                support::clients::clip(&northd.log(), 6000),
                server.log_tail(40)
            );
        }
        t.add("change after restart", out.all());
        t.add("southbound after the change", southbound_summary(&server));
        drop(northd);
        t
    });
}
