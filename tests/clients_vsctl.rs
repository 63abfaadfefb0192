//! `ovs-vsctl --no-wait` (Open vSwitch 3.1) against oxsdb and against the
//! reference `ovsdb-server`, both serving `vswitch.ovsschema`: the same
//! commands must give the same outputs, with UUIDs named canonically (by the
//! content of the rows, read from the server after each step) and hash-ordered
//! listings sorted.

mod support;

use std::path::Path;
use std::time::Duration;

use support::clients::{
    canonical_names, cmd, mask_remotes, read_db, run, run_both, sort_records, sort_tree,
    strip_log_timestamps, Transcript,
};
use support::servers::{Kind, Server};

const VSWITCH_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
const T: Duration = Duration::from_secs(30);

/// How an output is put in a canonical order.
#[derive(Clone, Copy)]
enum Shape {
    /// As printed.
    Plain,
    /// `show`: an indented tree.
    Tree,
    /// `list`/`find`: records separated by blank lines.
    Records,
    /// One item per line in hash order.
    Lines,
}

fn vsctl(server: &Server, t: &mut Transcript, label: &str, shape: Shape, args: &[&str]) {
    let db = format!("--db={}", server.tcp());
    let mut c = cmd("ovs-vsctl", ["--no-wait", "--timeout=20", db.as_str()]);
    c.args(args);
    let out = run(&mut c, T);
    // Names of the rows as they are now.
    let mut names = canonical_names(&read_db(&server.addr(), "Open_vSwitch"));
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
        format!(
            "rc={}\n{stdout}{}",
            support::clients::rc(&out.status),
            if stderr.is_empty() {
                String::new()
            } else {
                format!("stderr:\n{stderr}")
            }
        ),
    );
}

#[test]
fn ovs_vsctl() {
    assert!(
        Path::new(VSWITCH_SCHEMA).is_file(),
        "{VSWITCH_SCHEMA} is missing: run `apt-get install openvswitch-switch`"
    );
    support::clients::tool("ovs-vsctl");
    run_both("ovs_vsctl", |kind: Kind, _| {
        let server = Server::start(kind, &[Path::new(VSWITCH_SCHEMA)]);
        let mut t = Transcript::new();
        let s = &server;
        use Shape::*;
        vsctl(s, &mut t, "init", Plain, &["init"]);
        vsctl(s, &mut t, "init again", Plain, &["init"]);
        vsctl(s, &mut t, "add-br br0", Plain, &["add-br", "br0"]);
        vsctl(
            s,
            &mut t,
            "bridges, ports and interfaces in one transaction",
            Plain,
            &[
                "add-br",
                "br1",
                "--",
                "add-port",
                "br0",
                "p1",
                "--",
                "set",
                "Interface",
                "p1",
                "type=internal",
                "--",
                "add-port",
                "br0",
                "p2",
                "tag=10",
                "--",
                "set",
                "Interface",
                "p2",
                "type=vxlan",
                "options:remote_ip=10.0.0.2",
                "options:key=5",
                "--",
                "br-set-external-id",
                "br0",
                "owner",
                "test",
                "--",
                "set",
                "Bridge",
                "br1",
                "external_ids:foo=bar",
                "stp_enable=true",
                "other_config:hwaddr=\"00:11:22:33:44:55\"",
                "--",
                "add-bond",
                "br1",
                "bond0",
                "e1",
                "e2",
                "e3",
                "--",
                "add-br",
                "vlan10",
                "br1",
                "10",
            ],
        );
        // Twenty ports in two commands.
        for half in 0..2 {
            let mut args: Vec<String> = Vec::new();
            for i in half * 10..half * 10 + 10 {
                let p = format!("tap{i}");
                if !args.is_empty() {
                    args.push("--".into());
                }
                args.extend([
                    "add-port".into(),
                    "br1".into(),
                    p.clone(),
                    format!("tag={}", 100 + i % 4),
                ]);
                args.extend([
                    "--".into(),
                    "set".into(),
                    "Interface".into(),
                    p.clone(),
                    format!("external_ids:iface-id=vm{i}"),
                    format!("external_ids:attached-mac=\"52:54:00:00:00:{i:02x}\""),
                    "mtu_request=1400".into(),
                ]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            vsctl(s, &mut t, &format!("add ports, batch {half}"), Plain, &args);
        }
        vsctl(s, &mut t, "show", Tree, &["show"]);
        vsctl(s, &mut t, "list-br", Plain, &["list-br"]);
        vsctl(s, &mut t, "list-ports br0", Plain, &["list-ports", "br0"]);
        vsctl(s, &mut t, "list-ports br1", Plain, &["list-ports", "br1"]);
        vsctl(s, &mut t, "list-ifaces br1", Plain, &["list-ifaces", "br1"]);
        vsctl(s, &mut t, "port-to-br p2", Plain, &["port-to-br", "p2"]);
        vsctl(s, &mut t, "iface-to-br e2", Plain, &["iface-to-br", "e2"]);
        vsctl(
            s,
            &mut t,
            "br-to-parent vlan10",
            Plain,
            &["br-to-parent", "vlan10"],
        );
        vsctl(
            s,
            &mut t,
            "br-to-vlan vlan10",
            Plain,
            &["br-to-vlan", "vlan10"],
        );
        vsctl(s, &mut t, "br-exists br0", Plain, &["br-exists", "br0"]);
        vsctl(s, &mut t, "br-exists nope", Plain, &["br-exists", "nope"]);
        vsctl(
            s,
            &mut t,
            "br-get-external-id br0",
            Plain,
            &["br-get-external-id", "br0"],
        );
        vsctl(
            s,
            &mut t,
            "list Bridge br0",
            Records,
            &["list", "Bridge", "br0"],
        );
        vsctl(s, &mut t, "list Bridge", Records, &["list", "Bridge"]);
        vsctl(s, &mut t, "list Port", Records, &["list", "Port"]);
        vsctl(
            s,
            &mut t,
            "list Interface (columns)",
            Records,
            &[
                "--columns=name,type,options,external_ids,mtu_request",
                "list",
                "Interface",
            ],
        );
        vsctl(
            s,
            &mut t,
            "list Open_vSwitch",
            Records,
            &["list", "Open_vSwitch"],
        );
        vsctl(
            s,
            &mut t,
            "find Interface type=vxlan",
            Records,
            &["find", "Interface", "type=vxlan"],
        );
        vsctl(
            s,
            &mut t,
            "find Port tag=101",
            Records,
            &["--columns=name,tag", "find", "Port", "tag=101"],
        );
        vsctl(
            s,
            &mut t,
            "get Bridge br0 external_ids",
            Plain,
            &["get", "Bridge", "br0", "external_ids"],
        );
        vsctl(
            s,
            &mut t,
            "get Bridge br1 external_ids:foo",
            Plain,
            &["get", "Bridge", "br1", "external_ids:foo"],
        );
        vsctl(
            s,
            &mut t,
            "get Interface p2 options:remote_ip type",
            Plain,
            &["get", "Interface", "p2", "options:remote_ip", "type"],
        );
        vsctl(
            s,
            &mut t,
            "get Port p2 tag",
            Plain,
            &["get", "Port", "p2", "tag"],
        );
        vsctl(
            s,
            &mut t,
            "get Bridge br0 ports",
            Plain,
            &["get", "Bridge", "br0", "ports"],
        );
        vsctl(
            s,
            &mut t,
            "get missing key",
            Plain,
            &["get", "Bridge", "br0", "external_ids:nope"],
        );
        vsctl(
            s,
            &mut t,
            "get --if-exists missing key",
            Plain,
            &["--if-exists", "get", "Bridge", "br0", "external_ids:nope"],
        );
        vsctl(
            s,
            &mut t,
            "bridges --format=json",
            Plain,
            &[
                "--format=json",
                "--columns=name,external_ids,stp_enable",
                "list",
                "Bridge",
                "br1",
            ],
        );
        vsctl(
            s,
            &mut t,
            "--bare list",
            Lines,
            &["--bare", "--columns=name", "list", "Interface"],
        );
        vsctl(
            s,
            &mut t,
            "--format=csv list",
            Lines,
            &[
                "--format=csv",
                "--no-headings",
                "--columns=name,type",
                "list",
                "Interface",
            ],
        );
        // Modifications.
        vsctl(
            s,
            &mut t,
            "set and add",
            Plain,
            &[
                "set",
                "Bridge",
                "br0",
                "fail_mode=secure",
                "protocols=OpenFlow13,OpenFlow15",
                "--",
                "add",
                "Bridge",
                "br0",
                "other_config",
                "datapath-id=0000000000000001",
                "--",
                "set",
                "Interface",
                "p1",
                "ofport_request=7",
                "--",
                "set",
                "Port",
                "p2",
                "trunks=1,2,3",
                "vlan_mode=trunk",
            ],
        );
        vsctl(
            s,
            &mut t,
            "remove and clear",
            Plain,
            &[
                "remove",
                "Bridge",
                "br0",
                "protocols",
                "OpenFlow15",
                "--",
                "clear",
                "Port",
                "p2",
                "tag",
                "--",
                "remove",
                "Bridge",
                "br1",
                "external_ids",
                "foo",
            ],
        );
        vsctl(
            s,
            &mut t,
            "list Bridge br0 after set",
            Records,
            &["list", "Bridge", "br0"],
        );
        vsctl(
            s,
            &mut t,
            "list Port p2 after set",
            Records,
            &["list", "Port", "p2"],
        );
        vsctl(
            s,
            &mut t,
            "create QoS with queues",
            Plain,
            &[
                "--id=@q0",
                "create",
                "Queue",
                "other_config:min-rate=1000",
                "--",
                "--id=@q1",
                "create",
                "Queue",
                "other_config:max-rate=5000",
                "--",
                "--id=@qos",
                "create",
                "QoS",
                "type=linux-htb",
                "queues=0=@q0,1=@q1",
                "--",
                "set",
                "Port",
                "p1",
                "qos=@qos",
            ],
        );
        vsctl(s, &mut t, "list QoS", Records, &["list", "QoS"]);
        vsctl(s, &mut t, "list Queue", Records, &["list", "Queue"]);
        vsctl(
            s,
            &mut t,
            "set-controller and fail-mode",
            Plain,
            &[
                "set-controller",
                "br0",
                "tcp:127.0.0.1:6653",
                "ptcp:6654",
                "--",
                "set-fail-mode",
                "br1",
                "standalone",
                "--",
                "set-manager",
                "ptcp:6640",
            ],
        );
        vsctl(
            s,
            &mut t,
            "get-controller br0",
            Lines,
            &["get-controller", "br0"],
        );
        vsctl(
            s,
            &mut t,
            "get-fail-mode br1",
            Plain,
            &["get-fail-mode", "br1"],
        );
        vsctl(s, &mut t, "get-manager", Plain, &["get-manager"]);
        vsctl(
            s,
            &mut t,
            "list Controller",
            Records,
            &["list", "Controller"],
        );
        // Errors.
        vsctl(s, &mut t, "add-br existing", Plain, &["add-br", "br0"]);
        vsctl(
            s,
            &mut t,
            "--may-exist add-br existing",
            Plain,
            &["--may-exist", "add-br", "br0"],
        );
        vsctl(
            s,
            &mut t,
            "add-port existing",
            Plain,
            &["add-port", "br1", "p1"],
        );
        vsctl(
            s,
            &mut t,
            "del-port unknown",
            Plain,
            &["del-port", "br0", "nope"],
        );
        vsctl(
            s,
            &mut t,
            "set unknown column",
            Plain,
            &["set", "Bridge", "br0", "colour=red"],
        );
        vsctl(
            s,
            &mut t,
            "set bad value",
            Plain,
            &["set", "Port", "p2", "tag=99999"],
        );
        vsctl(
            s,
            &mut t,
            "get unknown record",
            Plain,
            &["get", "Bridge", "nope", "name"],
        );
        // Deletions.
        vsctl(s, &mut t, "del-port p1", Plain, &["del-port", "br0", "p1"]);
        vsctl(
            s,
            &mut t,
            "del-port tap ports",
            Plain,
            &[
                "del-port",
                "tap0",
                "--",
                "del-port",
                "tap1",
                "--",
                "--if-exists",
                "del-port",
                "tap99",
            ],
        );
        vsctl(s, &mut t, "show after del-port", Tree, &["show"]);
        vsctl(
            s,
            &mut t,
            "list QoS after del-port (garbage collected)",
            Records,
            &["list", "QoS"],
        );
        vsctl(s, &mut t, "del-br vlan10", Plain, &["del-br", "vlan10"]);
        vsctl(s, &mut t, "del-br br1", Plain, &["del-br", "br1"]);
        vsctl(s, &mut t, "del-br unknown", Plain, &["del-br", "br1"]);
        vsctl(
            s,
            &mut t,
            "--if-exists del-br unknown",
            Plain,
            &["--if-exists", "del-br", "br1"],
        );
        vsctl(s, &mut t, "show at the end", Tree, &["show"]);
        vsctl(
            s,
            &mut t,
            "list Interface at the end",
            Records,
            &["list", "Interface"],
        );
        vsctl(
            s,
            &mut t,
            "list Port at the end",
            Records,
            &["list", "Port"],
        );
        // Everything in the database, compared as data too.
        let data = support::clients::canonical_contents(&read_db(&server.addr(), "Open_vSwitch"));
        let mut text = String::new();
        for (table, rows) in data {
            for r in rows {
                text.push_str(&format!("{table} {r}\n"));
            }
        }
        t.add("database contents", text);
        t
    });
}
