//! TLS and remotes with the real clients, oxsdb and the reference
//! ovsdb-server side by side: certificates made by `ovs-pki`;
//! `ovsdb-client`, `ovn-nbctl` and the Python IDL over `ssl:`; an
//! untrusted client certificate and plain TCP refused; remotes and keys
//! read from the database (`ovn-nbctl set-ssl`, `set-connection`) with
//! the status written back; read-only connections; active `tcp:`, `ssl:`
//! and `unix:` remotes connecting out to a listening `ovsdb-client`; IPv6.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::process::{Kind, Oxsdb};
use support::reference::ReferenceServer;
use support::tools::{require_file, run, tool, Background, Output, TOOL_TIMEOUT};

const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";

/// A private PKI made by ovs-pki: a CA, a server and a client
/// certificate it signed, and a client certificate of another CA.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = tool("ovs-pki");
        let dir = tempfile::Builder::new()
            .prefix("oxsdb-pki-")
            .tempdir()
            .expect("tempdir");
        let ok = |c: &mut Command| {
            let o = run(c.current_dir(dir.path()), Duration::from_secs(60));
            assert!(o.success(), "{}", o.all());
        };
        ok(Command::new(&pki).arg("--dir=pki").arg("init"));
        ok(Command::new(&pki).args(["--dir=pki", "req+sign", "server", "switch"]));
        ok(Command::new(&pki).args(["--dir=pki", "req+sign", "client", "switch"]));
        ok(Command::new(&pki).args(["--dir=rogue-pki", "init"]));
        ok(Command::new(&pki).args(["--dir=rogue-pki", "req+sign", "rogue", "switch"]));
        Pki { dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn ca(&self) -> String {
        self.file("pki/switchca/cacert.pem")
    }

    /// The server's key options.
    fn server_args(&self) -> Vec<String> {
        vec![
            format!("--private-key={}", self.file("server-privkey.pem")),
            format!("--certificate={}", self.file("server-cert.pem")),
            format!("--ca-cert={}", self.ca()),
        ]
    }

    /// A client's `-p -c -C` options (`who`: client or rogue).
    fn client_args(&self, who: &str) -> Vec<String> {
        vec![
            format!("--private-key={}", self.file(&format!("{who}-privkey.pem"))),
            format!("--certificate={}", self.file(&format!("{who}-cert.pem"))),
            format!("--ca-cert={}", self.ca()),
        ]
    }
}

/// A port free now on `ip` (the servers bind it right after).
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Both servers on a fresh NB database with `args`; oxsdb keeps its data in memory.
fn both(args: &[String]) -> (Oxsdb, ReferenceServer, tempfile::TempDir) {
    require_file(Path::new(NB));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = vec![NB.to_string(), "--store=memory".to_string()];
    a.extend(args.iter().cloned());
    let ox = Oxsdb::start(&a, dir.path(), None);
    let reference = ReferenceServer::start_with(&[PathBuf::from(NB)], args);
    (ox, reference, dir)
}

fn client(args: &[String]) -> Output {
    let mut c = Command::new(tool("ovsdb-client"));
    c.arg("--timeout=20").args(args);
    run(&mut c, TOOL_TIMEOUT)
}

fn nbctl(db: &str, extra: &[String], args: &[&str]) -> Output {
    let mut c = Command::new(tool("ovn-nbctl"));
    c.arg(format!("--db={db}"))
        .arg("--timeout=10")
        .args(extra)
        .args(args);
    run(&mut c, TOOL_TIMEOUT)
}

/// Text with UUIDs and the ports given replaced, for comparing servers.
fn masked(text: &str, ports: &[u16]) -> String {
    let mut out = String::new();
    let mut rest = text;
    // UUIDs: 8-4-4-4-12 hex digits.
    while let Some(i) = rest.find(|c: char| c.is_ascii_hexdigit()) {
        out.push_str(&rest[..i]);
        let cand = &rest[i..];
        let is_uuid = cand.len() >= 36
            && cand.as_bytes()[..36].iter().enumerate().all(|(j, b)| {
                if [8, 13, 18, 23].contains(&j) {
                    *b == b'-'
                } else {
                    b.is_ascii_hexdigit()
                }
            });
        if is_uuid {
            out.push_str("<uuid>");
            rest = &cand[36..];
        } else {
            let n = cand
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(cand.len());
            out.push_str(&cand[..n]);
            rest = &cand[n..];
        }
    }
    out.push_str(rest);
    for p in ports {
        out = out.replace(&p.to_string(), "<port>");
    }
    out
}

fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: not within {timeout:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn ovsdb_client_over_ssl_matches_reference() {
    let pki = Pki::new();
    let (po, pr) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let mut outputs = Vec::new();
    for (kind, port) in [(Kind::Oxsdb, po), (Kind::Reference, pr)] {
        let mut args = pki.server_args();
        args.push(format!("--remote=pssl:{port}:127.0.0.1"));
        let (ox, reference, _dir) = both_one(kind, &args);
        let ssl = format!("ssl:127.0.0.1:{port}");
        let mut ca = pki.client_args("client");
        let list = client(&[ca.clone(), vec!["list-dbs".into(), ssl.clone()]].concat());
        assert!(list.success(), "{kind:?} list-dbs: {}", list.all());
        let monitor = Background::spawn(Command::new(tool("ovsdb-client")).args(&ca).args([
            "monitor",
            &ssl,
            "OVN_Northbound",
            "Logical_Switch",
            "name",
        ]));
        // The monitor's initial reply (an empty table) before the insert.
        std::thread::sleep(Duration::from_millis(500));
        let txn =
            r#"["OVN_Northbound",{"op":"insert","table":"Logical_Switch","row":{"name":"sw0"}}]"#;
        ca.extend(["transact".to_string(), ssl.clone(), txn.to_string()]);
        let t = client(&ca);
        assert!(t.success(), "{kind:?} transact: {}", t.all());
        let seen = poll("the monitor's update", Duration::from_secs(10), || {
            let o = monitor.stdout();
            if o.contains("sw0") {
                Ok(o)
            } else {
                Err(o)
            }
        });
        drop(monitor);
        outputs.push(format!(
            "list-dbs:\n{}\ntransact:\n{}\nmonitor:\n{}",
            list.stdout,
            masked(&t.stdout, &[]),
            masked(&seen, &[])
        ));
        drop((ox, reference));
    }
    assert_eq!(
        outputs[0], outputs[1],
        "oxsdb (left) and ovsdb-server (right) differ over ssl"
    );
}

/// One server of `kind` on a fresh NB database.
fn both_one(
    kind: Kind,
    args: &[String],
) -> (Option<Oxsdb>, Option<ReferenceServer>, tempfile::TempDir) {
    require_file(Path::new(NB));
    let dir = tempfile::tempdir().expect("tempdir");
    match kind {
        Kind::Oxsdb => {
            let mut a = vec![NB.to_string(), "--store=memory".to_string()];
            a.extend(args.iter().cloned());
            (Some(Oxsdb::start(&a, dir.path(), None)), None, dir)
        }
        Kind::Reference => (
            None,
            Some(ReferenceServer::start_with(&[PathBuf::from(NB)], args)),
            dir,
        ),
    }
}

#[test]
fn untrusted_certificates_and_plain_tcp_get_nothing() {
    let pki = Pki::new();
    let port = free_port("127.0.0.1");
    let mut args = pki.server_args();
    args.push(format!("--remote=pssl:{port}:127.0.0.1"));
    let (mut ox, _, _dir) = both_one(Kind::Oxsdb, &args);
    let ox = ox.as_mut().expect("oxsdb");
    let ssl = format!("ssl:127.0.0.1:{port}");

    // A client certificate of another CA: the handshake fails, as with ovsdb-server.
    let rogue = client(
        &[
            pki.client_args("rogue"),
            vec!["--timeout=3".into(), "list-dbs".into(), ssl.clone()],
        ]
        .concat(),
    );
    assert!(
        !rogue.success(),
        "a certificate of another CA was accepted: {}",
        rogue.all()
    );
    assert!(!rogue.stdout.contains("OVN_Northbound"), "{}", rogue.all());

    // Plain JSON-RPC to the TLS port: no JSON-RPC reply.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(br#"{"method":"list_dbs","params":[],"id":1}"#)
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.contains("result") && !text.contains("OVN_Northbound"),
        "plain TCP got {text:?}"
    );

    // The server is still up for a trusted client.
    let ok = client(&[pki.client_args("client"), vec!["list-dbs".into(), ssl]].concat());
    assert!(
        ok.success() && ok.stdout.contains("OVN_Northbound"),
        "{}",
        ok.all()
    );
    assert!(ox.is_running());
}

#[test]
fn ovn_nbctl_with_remotes_and_keys_from_the_database_matches_reference() {
    let pki = Pki::new();
    let args: Vec<String> = [
        "--remote=db:OVN_Northbound,NB_Global,connections",
        "--private-key=db:OVN_Northbound,SSL,private_key",
        "--certificate=db:OVN_Northbound,SSL,certificate",
        "--ca-cert=db:OVN_Northbound,SSL,ca_cert",
        "--ssl-protocols=db:OVN_Northbound,SSL,ssl_protocols",
        "--ssl-ciphers=db:OVN_Northbound,SSL,ssl_ciphers",
    ]
    .map(String::from)
    .to_vec();
    let (ox, reference, _dir) = both(&args);
    let mut lists = Vec::new();
    for tcp in [ox.tcp(), reference.tcp()] {
        let (port, plain_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        for step in [
            vec!["init".to_string()],
            vec![
                "set-ssl".into(),
                pki.file("server-privkey.pem"),
                pki.file("server-cert.pem"),
                pki.ca(),
                "TLSv1.2,TLSv1.3".into(),
            ],
            vec![
                "set-connection".into(),
                format!("pssl:{port}:127.0.0.1"),
                format!("ptcp:{plain_port}:127.0.0.1"),
            ],
        ] {
            let steps: Vec<&str> = step.iter().map(String::as_str).collect();
            let o = nbctl(&tcp, &[], &steps);
            assert!(o.success(), "{tcp}: ovn-nbctl {step:?}: {}", o.all());
        }
        // The listener appears once the rows are followed.
        let ssl = format!("ssl:127.0.0.1:{port}");
        let keys = pki.client_args("client");
        poll("ovn-nbctl over ssl", Duration::from_secs(20), || {
            let o = nbctl(&ssl, &keys, &["ls-add", "sw0"]);
            if o.success() {
                Ok(())
            } else {
                Err(o.all())
            }
        });
        let ls = nbctl(&ssl, &keys, &["ls-list"]);
        assert!(ls.stdout.contains("sw0"), "{}", ls.all());
        // The status columns written back: bound ports, no client connected now.
        let list = poll("the Connection status", Duration::from_secs(20), || {
            let o = nbctl(&tcp, &[], &["list", "connection"]);
            if o.stdout.matches("bound_port").count() == 2
                && !o.stdout.contains("is_connected        : true")
            {
                Ok(o)
            } else {
                Err(o.all())
            }
        });
        let mut rows: Vec<String> = masked(&list.stdout, &[port, plain_port])
            .split("\n\n")
            .map(|r| r.trim().to_string())
            .collect();
        rows.sort();
        // Keys removed from the SSL row: ovsdb-server keeps the last ones in use.
        let o = nbctl(&tcp, &[], &["del-ssl"]);
        assert!(o.success(), "{}", o.all());
        let again = nbctl(&ssl, &keys, &["ls-list"]);
        lists.push(format!(
            "ls-list: {}\nconnections:\n{}\nafter del-ssl: {}",
            masked(&ls.stdout, &[]),
            rows.join("\n\n"),
            masked(&again.all(), &[port])
        ));
    }
    assert_eq!(
        lists[0], lists[1],
        "oxsdb (left) and ovsdb-server (right) differ"
    );
}

/// oxsdb (memory store) and ovsdb-server on the Southbound schema, each
/// serving the remotes of `SB_Global:connections` as ovn-ctl starts them;
/// the directory lives as long as the servers.
fn southbound_pair_following_connections() -> (tempfile::TempDir, Oxsdb, ReferenceServer) {
    const SB: &str = "/usr/share/ovn/ovn-sb.ovsschema";
    require_file(Path::new(SB));
    let dir = tempfile::tempdir().expect("tempdir");
    let args = vec!["--remote=db:OVN_Southbound,SB_Global,connections".to_string()];
    let ox = Oxsdb::start(
        &[vec![SB.to_string(), "--store=memory".into()], args.clone()].concat(),
        dir.path(),
        None,
    );
    let reference = ReferenceServer::start_with(&[PathBuf::from(SB)], &args);
    (dir, ox, reference)
}

/// `ovn-sbctl` with `args` against the server at `tcp`; it must succeed.
fn sbctl_ok(tcp: &str, args: &[&str]) -> Output {
    let mut c = Command::new(tool("ovn-sbctl"));
    c.arg(format!("--db={tcp}")).arg("--timeout=10").args(args);
    let o = run(&mut c, TOOL_TIMEOUT);
    assert!(o.success(), "ovn-sbctl {args:?}: {}", o.all());
    o
}

#[test]
fn read_only_connections_refuse_writes_as_reference() {
    let (_dir, ox, reference) = southbound_pair_following_connections();
    let mut seen = Vec::new();
    for tcp in [ox.tcp(), reference.tcp()] {
        let port = free_port("127.0.0.1");
        let sbctl = |a: &[&str]| sbctl_ok(&tcp, a);
        sbctl(&["init"]);
        let target = format!("ptcp:{port}:127.0.0.1");
        // No role: RBAC (checked first by ovsdb-server) is another test's subject.
        sbctl(&["set-connection", "read-only", &target]);
        let ro = format!("tcp:127.0.0.1:{port}");
        let write = poll("the read-only listener", Duration::from_secs(20), || {
            let o = client(&[
                "transact".into(),
                ro.clone(),
                r#"["OVN_Southbound",{"op":"insert","table":"Chassis","row":{"name":"ch0","hostname":"h"}},{"op":"select","table":"Chassis","where":[]}]"#.into(),
            ]);
            if o.stderr.contains("Connection refused") {
                Err(o.all())
            } else {
                Ok(o)
            }
        });
        let read = client(&[
            "dump".into(),
            ro.clone(),
            "OVN_Southbound".into(),
            "SB_Global".into(),
            "options".into(),
        ]);
        // ovsdb-client's lock command waits; the raw reply shows the refusal.
        let mut rpc =
            support::rpc::Rpc::connect_retry(&format!("127.0.0.1:{port}"), Duration::from_secs(10));
        let lock = format!(
            "{:?}",
            rpc.call(
                "lock",
                serde_json::json!(["mylock"]),
                Duration::from_secs(10)
            )
        );
        let conn = sbctl(&["--columns=read_only,role,target", "list", "connection"]);
        seen.push(format!(
            "write: {}\nread: {}\nlock: {}\nrow: {}",
            masked(&write.all(), &[port]),
            masked(&read.all(), &[port]),
            lock,
            masked(&conn.stdout, &[port])
        ));
    }
    assert_eq!(
        seen[0], seen[1],
        "oxsdb (left) and ovsdb-server (right) differ"
    );
}

#[test]
fn python_idl_over_ssl() {
    let pki = Pki::new();
    let port = free_port("127.0.0.1");
    let mut args = pki.server_args();
    args.push(format!("--remote=pssl:{port}:127.0.0.1"));
    let (_ox, _, _dir) = both_one(Kind::Oxsdb, &args);
    let ssl = format!("ssl:127.0.0.1:{port}");
    let t = client(&[
        pki.client_args("client"),
        vec![
            "transact".into(),
            ssl.clone(),
            r#"["OVN_Northbound",{"op":"insert","table":"Logical_Switch","row":{"name":"py0"}}]"#.into(),
        ],
    ]
    .concat());
    assert!(t.success(), "{}", t.all());
    let script = r#"
import sys, time
import ovs.db.idl, ovs.poller, ovs.stream
remote, schema, key, cert, ca = sys.argv[1:6]
ovs.stream.Stream.ssl_set_private_key_file(key)
ovs.stream.Stream.ssl_set_certificate_file(cert)
ovs.stream.Stream.ssl_set_ca_cert_file(ca)
helper = ovs.db.idl.SchemaHelper(location=schema)
helper.register_all()
idl = ovs.db.idl.Idl(remote, helper)
deadline = time.time() + 20
while time.time() < deadline:
    idl.run()
    names = sorted(r.name for r in idl.tables["Logical_Switch"].rows.values())
    if names:
        print(" ".join(names))
        sys.exit(0)
    p = ovs.poller.Poller()
    idl.wait(p)
    p.timer_wait(100)
    p.block()
print("timeout")
sys.exit(2)
"#;
    let mut c = Command::new("/usr/bin/python3");
    c.args(["-c", script, &ssl, NB])
        .arg(pki.file("client-privkey.pem"))
        .arg(pki.file("client-cert.pem"))
        .arg(pki.ca());
    let o = run(&mut c, TOOL_TIMEOUT);
    assert!(
        o.success() && o.stdout.trim() == "py0",
        "the Python IDL over ssl: {}",
        o.all()
    );
}

#[test]
fn active_remotes_connect_out_and_reconnect_like_reference() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut results = Vec::new();
    for kind in [Kind::Oxsdb, Kind::Reference] {
        let (tcp_port, ssl_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        let sock = dir.path().join(format!("{}-active.sock", kind.name()));
        let mut args = pki.server_args();
        args.push(format!("--remote=tcp:127.0.0.1:{tcp_port}"));
        args.push(format!("--remote=ssl:127.0.0.1:{ssl_port}"));
        args.push(format!("--remote=unix:{}", sock.display()));
        // Nothing listens yet: the server backs off and tries again.
        let server = both_one(kind, &args);
        std::thread::sleep(Duration::from_millis(1500));
        let mut got = Vec::new();
        for (listen, extra) in [
            (format!("ptcp:{tcp_port}:127.0.0.1"), vec![]),
            (
                format!("pssl:{ssl_port}:127.0.0.1"),
                pki.client_args("client"),
            ),
            (format!("punix:{}", sock.display()), vec![]),
        ] {
            let o = client(&[extra, vec!["list-dbs".into(), listen.clone()]].concat());
            assert!(
                o.success(),
                "{kind:?}: ovsdb-client list-dbs {listen}: {}",
                o.all()
            );
            got.push(o.stdout);
        }
        results.push(got);
        drop(server);
    }
    assert_eq!(
        results[0], results[1],
        "oxsdb (left) and ovsdb-server (right) differ"
    );
    assert!(results[0][0].contains("OVN_Northbound"), "{:?}", results[0]);
}

#[test]
fn ipv6_remotes() {
    let pki = Pki::new();
    let (tp, sp) = (free_port("::1"), free_port("::1"));
    let mut args = pki.server_args();
    args.push(format!("--remote=ptcp:{tp}:[::1]"));
    args.push(format!("--remote=pssl:{sp}:[::1]"));
    let (_ox, _, _dir) = both_one(Kind::Oxsdb, &args);
    let plain = client(&["list-dbs".into(), format!("tcp:[::1]:{tp}")]);
    assert!(plain.stdout.contains("OVN_Northbound"), "{}", plain.all());
    let ssl = client(
        &[
            pki.client_args("client"),
            vec!["list-dbs".into(), format!("ssl:[::1]:{sp}")],
        ]
        .concat(),
    );
    assert!(ssl.stdout.contains("OVN_Northbound"), "{}", ssl.all());
}

#[test]
fn unusable_ssl_settings_stop_the_start_naming_them() {
    for (arg, named) in [
        ("--ssl-protocols=TLSv1.1", "TLSv1.1"),
        ("--ssl-ciphers=AES128-SHA", "AES128-SHA"),
        (
            "--ssl-ciphersuites=TLS_AES_128_CCM_SHA256",
            "TLS_AES_128_CCM_SHA256",
        ),
        ("--remote=pssl:1:1.2.3", "pssl:1:1.2.3"),
    ] {
        let o = support::process::oxsdb_fails(&[NB, "--store=memory", arg]);
        assert!(!o.success(), "{arg} was accepted");
        assert!(o.stderr.contains(named), "{arg}: {}", o.all());
    }
}

/// The subject of the certificate the TLS server at `port` presents.
fn served_subject(pki: &Pki, port: u16) -> String {
    let mut c = Command::new(tool("openssl"));
    c.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-cert", &pki.file("client-cert.pem")])
        .args(["-key", &pki.file("client-privkey.pem")])
        .args(["-CAfile", &pki.ca()]);
    let o = support::tools::run_with_input(&mut c, b"", TOOL_TIMEOUT);
    o.stdout
        .lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn keys_are_read_again_when_their_files_change() {
    let pki = Pki::new();
    let o = run(
        Command::new(tool("ovs-pki"))
            .args(["--dir=pki", "req+sign", "server2", "switch"])
            .current_dir(pki.dir.path()),
        Duration::from_secs(60),
    );
    assert!(o.success(), "{}", o.all());
    let (key, cert) = (pki.file("key.pem"), pki.file("cert.pem"));
    std::fs::copy(pki.file("server-privkey.pem"), &key).expect("copy");
    std::fs::copy(pki.file("server-cert.pem"), &cert).expect("copy");
    let port = free_port("127.0.0.1");
    let args = vec![
        format!("--private-key={key}"),
        format!("--certificate={cert}"),
        format!("--ca-cert={}", pki.ca()),
        format!("--remote=pssl:{port}:127.0.0.1"),
    ];
    let (_ox, _, _dir) = both_one(Kind::Oxsdb, &args);
    let first = served_subject(&pki, port);
    assert!(first.contains("server id:"), "{first}");
    std::fs::copy(pki.file("server2-cert.pem"), &cert).expect("copy");
    std::fs::copy(pki.file("server2-privkey.pem"), &key).expect("copy");
    let second = poll(
        "the new certificate served",
        Duration::from_secs(10),
        || {
            let s = served_subject(&pki, port);
            if s != first && s.contains("server2 id:") {
                Ok(s)
            } else {
                Err(s)
            }
        },
    );
    assert_ne!(first, second);
    // Clients go on working with the new keys.
    let ok = client(
        &[
            pki.client_args("client"),
            vec!["list-dbs".into(), format!("ssl:127.0.0.1:{port}")],
        ]
        .concat(),
    );
    assert!(ok.stdout.contains("OVN_Northbound"), "{}", ok.all());
}

/// The ports of the `pssl:` listeners a server logged, in order.
fn logged_pssl_ports(server: &Oxsdb) -> Vec<u16> {
    server
        .stderr()
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("listening on pssl:")? + "listening on pssl:".len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok()
        })
        .collect()
}

#[test]
fn two_servers_on_etcd_follow_the_same_connection_rows() {
    let pki = Pki::new();
    let etcd = support::etcd::EtcdCluster::single();
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = support::cluster::unique_prefix();
    let extra = [
        "--remote=db:OVN_Northbound,NB_Global,connections",
        "--private-key=db:OVN_Northbound,SSL,private_key",
        "--certificate=db:OVN_Northbound,SSL,certificate",
        "--ca-cert=db:OVN_Northbound,SSL,ca_cert",
    ];
    let start = || {
        support::cluster::start_server(
            &etcd.endpoints(),
            &prefix,
            Some(Path::new(NB)),
            &extra,
            dir.path(),
        )
    };
    let (a, b) = (start(), start());
    let none: Vec<String> = Vec::new();
    for step in [
        vec!["init".to_string()],
        vec![
            "set-ssl".into(),
            pki.file("server-privkey.pem"),
            pki.file("server-cert.pem"),
            pki.ca(),
        ],
        // Each server binds its own port for the same row.
        vec!["set-connection".into(), "pssl:0:127.0.0.1".into()],
    ] {
        let steps: Vec<&str> = step.iter().map(String::as_str).collect();
        let o = nbctl(&a.tcp(), &none, &steps);
        assert!(o.success(), "ovn-nbctl {step:?}: {}", o.all());
    }
    let keys = pki.client_args("client");
    for server in [&a, &b] {
        let port = poll(
            "a pssl listener from the row",
            Duration::from_secs(20),
            || {
                logged_pssl_ports(server)
                    .last()
                    .copied()
                    .ok_or_else(|| server.stderr())
            },
        );
        let ssl = format!("ssl:127.0.0.1:{port}");
        let o = poll("ovn-nbctl over ssl", Duration::from_secs(20), || {
            let o = nbctl(&ssl, &keys, &["ls-list"]);
            if o.success() {
                Ok(o)
            } else {
                Err(o.all())
            }
        });
        assert!(o.stderr.is_empty(), "{}", o.all());
    }
    // The row removed: every server closes its listener.
    let o = nbctl(&b.tcp(), &none, &["del-connection"]);
    assert!(o.success(), "{}", o.all());
    for server in [&a, &b] {
        let port = logged_pssl_ports(server).last().copied().expect("a port");
        poll(
            "the listener closed",
            Duration::from_secs(20),
            || match TcpStream::connect(("127.0.0.1", port)) {
                Err(_) => Ok(()),
                Ok(_) => Err(format!("port {port} still accepts")),
            },
        );
    }
}

/// `text` with every run of digits replaced (ages in seconds differ between runs).
fn digits_masked(text: &str) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

#[test]
fn active_remote_status_matches_reference() {
    let args = vec!["--remote=db:OVN_Northbound,NB_Global,connections".to_string()];
    let (ox, reference, _dir) = both(&args);
    let mut seen = Vec::new();
    for tcp in [ox.tcp(), reference.tcp()] {
        let port = free_port("127.0.0.1");
        for step in [
            vec!["init".to_string()],
            vec!["set-connection".into(), format!("tcp:127.0.0.1:{port}")],
        ] {
            let steps: Vec<&str> = step.iter().map(String::as_str).collect();
            let o = nbctl(&tcp, &[], &steps);
            assert!(o.success(), "{}", o.all());
        }
        let status = |want: &str| {
            poll(
                &format!("a status with {want}"),
                Duration::from_secs(20),
                || {
                    let o = nbctl(
                        &tcp,
                        &[],
                        &["--columns=is_connected,status,target", "list", "connection"],
                    );
                    if o.stdout.contains(want) {
                        Ok(digits_masked(&o.stdout))
                    } else {
                        Err(o.all())
                    }
                },
            )
        };
        // Nothing listens: the server backs off and retries.
        let before = status("state=BACKOFF");
        // A passive ovsdb-client: the server connects, is served, is closed.
        let o = client(&["list-dbs".into(), format!("ptcp:{port}:127.0.0.1")]);
        assert!(o.success(), "{}", o.all());
        let after = status("sec_since_disconnect");
        seen.push(format!(
            "before:\n{before}\nserved:\n{}\nafter:\n{after}",
            o.stdout
        ));
    }
    assert_eq!(
        seen[0], seen[1],
        "oxsdb (left) and ovsdb-server (right) differ"
    );
}

/// Whether `openssl s_client` with `extra` completes a handshake with the server at `port`.
fn handshake_ok(pki: &Pki, port: u16, extra: &[&str]) -> bool {
    let mut c = Command::new(tool("openssl"));
    c.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-cert", &pki.file("client-cert.pem")])
        .args(["-key", &pki.file("client-privkey.pem")])
        .args(["-CAfile", &pki.ca()])
        .args(extra);
    let o = support::tools::run_with_input(&mut c, b"", TOOL_TIMEOUT);
    o.stdout.contains("Verify return code: 0 (ok)") && !o.stdout.contains("Cipher is (NONE)")
}

#[test]
fn protocols_and_bootstrap_ca_cert_are_honoured() {
    let pki = Pki::new();
    // Only TLSv1.3: a TLSv1.2-only client is refused.
    let port = free_port("127.0.0.1");
    let mut args = pki.server_args();
    args.push("--ssl-protocols=TLSv1.3".into());
    args.push(format!("--remote=pssl:{port}:127.0.0.1"));
    let server = both_one(Kind::Oxsdb, &args);
    assert!(handshake_ok(&pki, port, &["-tls1_3"]), "TLSv1.3 refused");
    assert!(!handshake_ok(&pki, port, &["-tls1_2"]), "TLSv1.2 accepted");
    drop(server);

    // A CA to bootstrap that is not there yet: no TLS connection until it is.
    let port = free_port("127.0.0.1");
    let ca = pki.file("later-ca.pem");
    let args = vec![
        format!("--private-key={}", pki.file("server-privkey.pem")),
        format!("--certificate={}", pki.file("server-cert.pem")),
        format!("--bootstrap-ca-cert={ca}"),
        format!("--remote=pssl:{port}:127.0.0.1"),
    ];
    let (ox, _, _dir) = both_one(Kind::Oxsdb, &args);
    let ssl = format!("ssl:127.0.0.1:{port}");
    let list = || {
        client(
            &[
                pki.client_args("client"),
                vec!["--timeout=3".into(), "list-dbs".into(), ssl.clone()],
            ]
            .concat(),
        )
    };
    let refused = list();
    assert!(
        !refused.stdout.contains("OVN_Northbound"),
        "{}",
        refused.all()
    );
    std::fs::copy(pki.ca(), &ca).expect("copy the CA");
    let ok = list();
    assert!(ok.stdout.contains("OVN_Northbound"), "{}", ok.all());
    let ox = ox.expect("oxsdb");
    assert!(ox.stderr().contains("bootstrap-ca-cert"), "{}", ox.stderr());
}

#[test]
fn a_new_role_closes_the_remotes_connections() {
    let (_dir, ox, reference) = southbound_pair_following_connections();
    let mut seen = Vec::new();
    for tcp in [ox.tcp(), reference.tcp()] {
        let port = free_port("127.0.0.1");
        let sbctl = |a: &[&str]| sbctl_ok(&tcp, a);
        sbctl(&["init"]);
        let target = format!("ptcp:{port}:127.0.0.1");
        sbctl(&["set-connection", "role=ovn-controller", &target]);
        let remote = format!("tcp:127.0.0.1:{port}");
        let mut monitor = poll(
            "a monitor on the role's listener",
            Duration::from_secs(20),
            || {
                let mut m = Background::spawn(Command::new(tool("ovsdb-client")).args([
                    "monitor",
                    &remote,
                    "OVN_Southbound",
                    "SB_Global",
                    "nb_cfg",
                ]));
                if m.poll_for(Duration::from_secs(2), |o| o.contains("nb_cfg")) {
                    Ok(m)
                } else {
                    Err(m.stderr())
                }
            },
        );
        // Options that are not the role leave the connection alone...
        let uuid = sbctl(&["--bare", "--columns=_uuid", "list", "connection"]).stdout;
        sbctl(&["set", "connection", uuid.trim(), "inactivity_probe=30000"]);
        std::thread::sleep(Duration::from_secs(1));
        let kept = monitor.exited().is_none();
        // ...a new role closes it.
        sbctl(&["set", "connection", uuid.trim(), "role=other"]);
        let closed = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            monitor.exited().is_some()
        });
        seen.push((kept, closed));
    }
    // Other options leave connections alone on both servers.
    assert!(seen[0].0 && seen[1].0, "{seen:?}");
    // A new role closes them, as current Open vSwitch does
    // (ovsdb_jsonrpc_server_set_remotes recreates a remote whose role
    // changed, so that no session keeps the old role's rights); the
    // installed ovsdb-server 3.1 predates that and keeps them.
    assert!(seen[0].1, "oxsdb kept a connection of the old role");
}

/// Accepts the one connection an active remote makes to `listener` (the
/// server backs off up to 8 s between attempts).
fn accept_active(listener: &std::net::TcpListener) -> support::rpc::Rpc {
    listener.set_nonblocking(true).expect("nonblocking");
    let stream = poll("the server connecting out", Duration::from_secs(30), || {
        listener.accept().map(|(s, _)| s).map_err(|e| e.to_string())
    });
    stream.set_nonblocking(false).expect("blocking");
    support::rpc::Rpc::from_stream(stream).expect("the server's connection")
}

/// The uuid of the only Connection row.
fn connection_uuid(tcp: &str) -> String {
    let o = nbctl(
        tcp,
        &[],
        &["--bare", "--columns=_uuid", "list", "connection"],
    );
    assert!(o.success(), "{}", o.all());
    o.stdout.trim().to_string()
}

#[test]
fn active_remote_status_names_the_sessions_locks_as_reference() {
    let args = vec!["--remote=db:OVN_Northbound,NB_Global,connections".to_string()];
    let (ox, reference, _dir) = both(&args);
    let mut seen = Vec::new();
    for (tcp, addr) in [(ox.tcp(), ox.addr()), (reference.tcp(), reference.addr())] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        for step in [
            vec!["init".to_string()],
            vec!["set-connection".into(), format!("tcp:127.0.0.1:{port}")],
        ] {
            let steps: Vec<&str> = step.iter().map(String::as_str).collect();
            let o = nbctl(&tcp, &[], &steps);
            assert!(o.success(), "{}", o.all());
        }
        // No probes on the server's connection: the status then says ACTIVE throughout.
        let uuid = connection_uuid(&tcp);
        let o = nbctl(
            &tcp,
            &[],
            &["set", "connection", &uuid, "inactivity_probe=0"],
        );
        assert!(o.success(), "{}", o.all());
        let mut x = accept_active(&listener);
        let mut y = support::rpc::Rpc::open(&addr);
        let t = Duration::from_secs(10);
        let mut log = Vec::new();
        let mut call = |who: &str, c: &mut support::rpc::Rpc, method: &str, name: &str| {
            let r = c.call(method, serde_json::json!([name]), t).expect(method);
            log.push(format!("{who} {method} {name}: {}", r["result"]));
        };
        // The server's session holds locks, waits for locks another
        // connection holds, and has locks it stole stolen from it (lost
        // for good, even once the thief lets go); several of each kind,
        // one unlocked on the way, so that the names come in the order of
        // ovsdb-server's table of the session's waiters.
        for (who, method, name) in [
            ("x", "lock", "held_a"),
            ("x", "lock", "held_b"),
            ("y", "lock", "waited_a"),
            ("x", "lock", "waited_a"),
            ("x", "lock", "held_c"),
            ("x", "steal", "lost_a"),
            ("y", "steal", "lost_a"),
            ("x", "lock", "held_d"),
            ("x", "unlock", "held_b"),
            ("y", "lock", "waited_b"),
            ("x", "lock", "waited_b"),
            ("x", "steal", "lost_b"),
            ("y", "steal", "lost_b"),
            ("x", "lock", "held_e"),
            ("y", "unlock", "lost_a"),
            ("y", "unlock", "lost_b"),
        ] {
            let c = if who == "x" { &mut x } else { &mut y };
            call(who, c, method, name);
        }
        let mut notes = std::mem::take(&mut x.notifications);
        while let Ok(Some(m)) = x.next_message(Duration::from_millis(300)) {
            notes.push(m);
        }
        log.push(format!("x notifications: {notes:?}"));
        let status = poll("a status naming the locks", Duration::from_secs(20), || {
            // Keeps y's connection (probed every 5 s) answering.
            let _ = y.next_message(Duration::from_millis(1));
            let o = nbctl(
                &tcp,
                &[],
                &["--columns=is_connected,status,target", "list", "connection"],
            );
            if o.stdout.contains("locks_lost") {
                Ok(digits_masked(&o.stdout))
            } else {
                Err(o.all())
            }
        });
        seen.push(format!("{}\n{status}", log.join("\n")));
    }
    assert_eq!(
        seen[0], seen[1],
        "oxsdb (left) and ovsdb-server (right) differ"
    );
    assert!(
        seen[0].contains("locks_held=\"held_")
            && seen[0].contains("locks_waiting=\"waited_")
            && seen[0].contains("locks_lost=\"lost_"),
        "{}",
        seen[0]
    );
}

#[test]
fn option_changes_reach_open_sessions_as_reference() {
    let (_dir, ox, reference) = southbound_pair_following_connections();
    let mut seen = Vec::new();
    for tcp in [ox.tcp(), reference.tcp()] {
        let sbctl = |a: &[&str]| sbctl_ok(&tcp, a);
        let port = free_port("127.0.0.1");
        sbctl(&["init"]);
        sbctl(&["set-connection", &format!("ptcp:{port}:127.0.0.1")]);
        let uuid = sbctl(&["--bare", "--columns=_uuid", "list", "connection"]).stdout;
        let uuid = uuid.trim();
        sbctl(&["set", "connection", uuid, "inactivity_probe=0"]);
        let addr = format!("127.0.0.1:{port}");
        let t = Duration::from_secs(10);
        // A connection that answers probes and one that never reads.
        let mut answering = support::rpc::Rpc::connect_retry(&addr, Duration::from_secs(20));
        answering
            .call("echo", serde_json::json!([]), t)
            .expect("echo");
        let mut silent = TcpStream::connect(&addr).expect("connect");
        silent
            .write_all(br#"{"method":"echo","params":["s"],"id":"s"}"#)
            .expect("write");
        silent
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let mut heard = Vec::new();
        let mut read_silent = |heard: &mut Vec<u8>| {
            let mut buf = [0u8; 4096];
            if let Ok(n) = silent.read(&mut buf) {
                heard.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(heard).to_string()
        };
        poll("the echo reply", t, || {
            let text = read_silent(&mut heard);
            if text.contains(r#""id":"s""#) {
                Ok(())
            } else {
                Err(text)
            }
        });
        heard.clear();
        // Both options change on the open sessions' remote.
        sbctl(&[
            "set",
            "connection",
            uuid,
            "inactivity_probe=1000",
            "read_only=true",
        ]);
        // The new probe reaches the open connection that never speaks.
        poll("an echo request on the silent connection", t, || {
            let _ = answering.next_message(Duration::from_millis(1));
            let text = read_silent(&mut heard);
            if text.contains(r#""method":"echo""#) {
                Ok(())
            } else {
                Err(text)
            }
        });
        // ovsdb-server keeps a remote's read_only as it was when the
        // remote was made: the open and new connections still write.
        let insert = |name: &str| {
            serde_json::json!(["OVN_Southbound",
                {"op": "insert", "table": "Address_Set", "row": {"name": name}}])
        };
        let open = answering.call("transact", insert("from_open"), t);
        let mut fresh = support::rpc::Rpc::open(&addr);
        let new = fresh.call("transact", insert("from_new"), t);
        let lock = fresh.call("lock", serde_json::json!(["L"]), t);
        seen.push(masked(
            &format!("open: {open:?}\nnew: {new:?}\nlock: {lock:?}"),
            &[port],
        ));
    }
    assert_eq!(
        seen[0], seen[1],
        "oxsdb (left) and ovsdb-server (right) differ"
    );
    assert!(!seen[0].contains("error\": String"), "{}", seen[0]);
}

#[test]
fn punix_socket_files_go_with_their_remote_and_at_exit_as_reference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seen = Vec::new();
    for kind in [Kind::Oxsdb, Kind::Reference] {
        let given = dir.path().join(format!("{}-given.sock", kind.name()));
        let from_row = dir.path().join(format!("{}-row.sock", kind.name()));
        let kept_row = dir.path().join(format!("{}-kept.sock", kind.name()));
        let args = vec![
            "--remote=db:OVN_Northbound,NB_Global,connections".to_string(),
            format!("--remote=punix:{}", given.display()),
        ];
        let (mut ox, mut reference, _d) = both_one(kind, &args);
        let server: &mut support::process::ServerProcess = match (&mut ox, &mut reference) {
            (Some(o), _) => o,
            (_, Some(r)) => r,
            _ => panic!("no server"),
        };
        let tcp = server.tcp();
        let o = nbctl(&tcp, &[], &["init"]);
        assert!(o.success(), "{}", o.all());
        let target = format!("punix:{}", from_row.display());
        let o = nbctl(&tcp, &[], &["set-connection", &target]);
        assert!(o.success(), "{}", o.all());
        let exists = |p: &Path, want: bool| {
            poll(
                &format!("{} {}", p.display(), if want { "made" } else { "gone" }),
                Duration::from_secs(20),
                || {
                    if p.exists() == want {
                        Ok(())
                    } else {
                        Err(String::new())
                    }
                },
            )
        };
        exists(&from_row, true);
        let unix = format!("unix:{}", from_row.display());
        let listed = nbctl(&unix, &[], &["--columns=target", "list", "connection"]);
        assert!(listed.success(), "{kind:?}: {}", listed.all());
        let o = nbctl(&tcp, &[], &["del-connection"]);
        assert!(o.success(), "{}", o.all());
        exists(&from_row, false);
        // A row's listener still open at exit goes too.
        let target = format!("punix:{}", kept_row.display());
        let o = nbctl(&tcp, &[], &["set-connection", &target]);
        assert!(o.success(), "{}", o.all());
        exists(&kept_row, true);
        let before_exit = (given.exists(), kept_row.exists());
        server.stop();
        seen.push(format!(
            "listed over the row's socket:\n{}\nsockets before exit: {before_exit:?}\nafter SIGTERM: {:?}",
            masked(&listed.stdout, &[]).replace(kind.name(), "KIND"),
            (given.exists(), kept_row.exists())
        ));
    }
    assert_eq!(
        seen[0], seen[1],
        "oxsdb (left) and ovsdb-server (right) differ"
    );
    assert!(
        seen[0].ends_with("after SIGTERM: (false, false)"),
        "{}",
        seen[0]
    );
}

/// A TLS server of the test's own, as an OVSDB peer that listens: it
/// sends its CA after its certificate (what ovsdb-server's
/// `--peer-ca-cert` adds to the chain) and verifies client certificates
/// against the CA.
fn peer_with_ca_in_chain(pki: &Pki) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = |f: &str| CertificateDer::from_pem_file(f).expect("a certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert(&pki.ca())).expect("the CA");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("a client verifier");
    let key = PrivateKeyDer::from_pem_file(pki.file("server-privkey.pem")).expect("the key");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![cert(&pki.file("server-cert.pem")), cert(&pki.ca())],
            key,
        )
        .expect("a server config");
    Arc::new(config)
}

/// Serves one connection the server made: the TLS handshake, then
/// `list_dbs`; its result, or how the connection ended.
fn list_dbs_over(config: &std::sync::Arc<rustls::ServerConfig>, tcp: TcpStream) -> String {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let conn = rustls::ServerConnection::new(config.clone()).expect("a connection");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    if tls
        .write_all(br#"{"method":"list_dbs","params":[],"id":1}"#)
        .and_then(|()| tls.flush())
        .is_err()
    {
        return "closed".into();
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return "closed".into(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        let values = serde_json::Deserializer::from_slice(&got).into_iter::<serde_json::Value>();
        for v in values.flatten() {
            if v["id"] == 1 {
                let mut dbs: Vec<String> = v["result"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|d| d.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                dbs.sort();
                return format!("list_dbs: {dbs:?}");
            }
        }
    }
}

#[test]
fn active_ssl_remote_bootstraps_its_ca_from_the_peer_as_reference() {
    use rustls::pki_types::pem::PemObject;
    use std::os::unix::fs::PermissionsExt;
    let pki = Pki::new();
    let peer = peer_with_ca_in_chain(&pki);
    let ca_der = |f: &Path| {
        rustls::pki_types::CertificateDer::pem_file_iter(f)
            .expect("a PEM file")
            .map(|c| c.expect("a certificate").as_ref().to_vec())
            .collect::<Vec<_>>()
    };
    let mut seen = Vec::new();
    for kind in [Kind::Oxsdb, Kind::Reference] {
        let ca = pki
            .dir
            .path()
            .join(format!("{}-bootstrapped.pem", kind.name()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let args = vec![
            format!("--private-key={}", pki.file("client-privkey.pem")),
            format!("--certificate={}", pki.file("client-cert.pem")),
            format!("--bootstrap-ca-cert={}", ca.display()),
            format!("--remote=ssl:127.0.0.1:{port}"),
        ];
        let server = both_one(kind, &args);
        listener.set_nonblocking(true).expect("nonblocking");
        let mut outcomes = Vec::new();
        poll("a served list_dbs", Duration::from_secs(40), || {
            let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
            tcp.set_nonblocking(false).map_err(|e| e.to_string())?;
            let outcome = list_dbs_over(&peer, tcp);
            outcomes.push(outcome.clone());
            if outcome.starts_with("list_dbs") {
                Ok(())
            } else {
                Err(outcome)
            }
        });
        let mode = std::fs::metadata(&ca)
            .expect("the CA file")
            .permissions()
            .mode()
            & 0o777;
        seen.push(format!(
            "connections: {outcomes:?}\nsaved the peer's CA: {}\nmode: {mode:o}",
            ca_der(&ca) == ca_der(Path::new(&pki.ca()))
        ));
        drop(server);
    }
    assert_eq!(
        seen[0], seen[1],
        "oxsdb (left) and ovsdb-server (right) differ"
    );
    assert!(seen[0].contains("saved the peer's CA: true"), "{}", seen[0]);
}

#[test]
fn a_new_dscp_closes_the_remotes_connections_as_reference() {
    let args = vec!["--remote=db:OVN_Northbound,NB_Global,connections".to_string()];
    let (ox, reference, _dir) = both(&args);
    let mut seen = Vec::new();
    for tcp in [ox.tcp(), reference.tcp()] {
        let port = free_port("127.0.0.1");
        let o = nbctl(&tcp, &[], &["init"]);
        assert!(o.success(), "{}", o.all());
        let o = nbctl(
            &tcp,
            &[],
            &["set-connection", &format!("ptcp:{port}:127.0.0.1")],
        );
        assert!(o.success(), "{}", o.all());
        let uuid = connection_uuid(&tcp);
        let addr = format!("127.0.0.1:{port}");
        let t = Duration::from_secs(10);
        let mut conn = support::rpc::Rpc::connect_retry(&addr, Duration::from_secs(20));
        conn.call("echo", serde_json::json!([]), t).expect("echo");
        let set = |setting: &str| {
            let o = nbctl(&tcp, &[], &["set", "connection", &uuid, setting]);
            assert!(o.success(), "{}", o.all());
        };
        // Another option leaves the connection open (a slow server
        // would only answer the more surely).
        set("max_backoff=2000");
        std::thread::sleep(Duration::from_millis(500));
        let kept = match conn.call("echo", serde_json::json!(["kept"]), t) {
            Ok(r) => format!("after max_backoff: answered {}", r["result"]),
            Err(e) => format!("after max_backoff: {e}"),
        };
        // A new DSCP closes it.
        set("other_config:dscp=10");
        let closed = poll(
            "the connection closed",
            Duration::from_secs(20),
            || match conn.call("echo", serde_json::json!([]), Duration::from_millis(500)) {
                Err(e) if e.kind() != std::io::ErrorKind::TimedOut => Ok("after dscp: closed"),
                other => Err(format!("{other:?}")),
            },
        );
        // The remote made again accepts connections.
        let mut again = support::rpc::Rpc::connect_retry(&addr, Duration::from_secs(20));
        let r = again.call("echo", serde_json::json!(["again"]), t);
        seen.push(format!(
            "{kept}\n{closed}\nnew connection: {:?}",
            r.map(|r| r["result"].clone())
        ));
    }
    assert_eq!(
        seen[0], seen[1],
        "oxsdb (left) and ovsdb-server (right) differ"
    );
    assert!(seen[0].contains("after dscp: closed"), "{}", seen[0]);
}
