//! oxsdb on an etcd that requires TLS client certificates, and on an etcd
//! with authentication enabled, through the real oxsdb binary:
//!
//! 1. `client_tls_with_client_certificates`: etcd serves https with
//!    `--client-cert-auth`; two oxsdb with `--etcd-cacert`, `--etcd-cert`,
//!    `--etcd-key` transact (A) and monitor (B). A client certificate signed
//!    by another CA, and a CA that did not sign etcd's certificate, each give
//!    transactions a clear `not leader` error naming the TLS failure, soon
//!    (no hang), and `_Server` says not connected.
//! 2. `authentication_with_a_role_on_the_prefix`: etcd with `auth enable`,
//!    a root user and a user whose role grants read-write on the servers'
//!    prefix only: two oxsdb as that user transact and monitor, and a lock
//!    passes from one to the other; a wrong
//!    password makes oxsdb refuse to start, saying that etcd refused the
//!    credentials, and a user without a role on the prefix makes it refuse
//!    to start, saying what to grant.
//!
//! Certificates are made by the test with the `openssl` command; users and
//! roles with `etcdctl`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::cluster::*;
use support::etcd::{EtcdCluster, ServerTls};
use support::process::Oxsdb;
use support::rpc::Rpc;
use support::tools::{run as run_timeout, tool};

/// How long a refused transaction may take: etcd's request timeout in these
/// tests is 2 s; anything much longer is a hang.
const ERROR_LIMIT: Duration = Duration::from_secs(10);

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("oxsdb-security-")
        .tempdir()
        .expect("tempdir")
}

/// Starts oxsdb with `args`, which must make it exit before listening;
/// its exit status and stderr.
fn refused_start(args: &[String], dir: &Path, what: &str) -> (std::process::ExitStatus, String) {
    match Oxsdb::try_start(args, dir, None) {
        Ok(s) => panic!("oxsdb started {what}:\n{}", s.all_stderr()),
        Err(e) => e,
    }
}

/// Runs `openssl` with `args` in `dir`; panics with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = run_timeout(
        Command::new(tool("openssl")).current_dir(dir).args(args),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        out.stderr
    );
}

/// A certificate authority: its certificate and key.
struct Ca {
    cert: PathBuf,
    key: PathBuf,
}

/// A self-signed CA named `name` in `dir` (EC P-256 keys: quick to make).
fn make_ca(dir: &Path, name: &str) -> Ca {
    let (cert, key) = (format!("{name}.pem"), format!("{name}-key.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    Ca {
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

/// A certificate for 127.0.0.1 (server and client use) signed by `ca`:
/// (certificate, key).
fn make_leaf(dir: &Path, ca: &Ca, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key, csr, ext) = (
        format!("{name}.pem"),
        format!("{name}-key.pem"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
    )
    .expect("write extensions");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca.cert.display().to_string(),
            "-CAkey",
            &ca.key.display().to_string(),
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
    (dir.join(cert), dir.join(key))
}

/// The `Database` row of [`DB`] in `_Server`.
fn server_row(rpc: &mut Rpc) -> Value {
    let r = rpc
        .transact(
            json!(["_Server", {"op": "select", "table": "Database",
                               "where": [["name", "==", DB]]}]),
            T,
        )
        .unwrap_or_else(|e| panic!("_Server select: {e}"));
    r[0]["rows"][0].clone()
}

/// A monitor on B, an insert through A: the monitor gets exactly that row,
/// and both servers read it back.
fn transact_and_monitor(a: &Oxsdb, b: &Oxsdb, key: &str) {
    let mut mon = connect(b);
    let reply = mon
        .call(
            "monitor_cond",
            json!([DB, "m", {"Entry": [{"columns": ["key", "seq"]}]}]),
            T,
        )
        .unwrap_or_else(|e| panic!("monitor_cond: {e}"));
    assert!(reply["error"].is_null(), "monitor_cond: {reply}");
    let mut rpc = connect(a);
    let r = transact(
        &mut rpc,
        json!([{"op": "insert", "table": "Entry", "row": {"key": key, "seq": 7}}]),
    );
    assert!(txn_error(&r).is_none(), "insert through A: {r}");
    let uuid = r[0]["uuid"][1].as_str().unwrap_or_default().to_string();
    let deadline = Instant::now() + T;
    let update = loop {
        if let Some(m) = mon.notifications.pop() {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "B's monitor got no update for A's insert; B's log:\n{}",
            b.all_stderr()
        );
        if let Some(m) = mon
            .next_message(Duration::from_millis(200))
            .unwrap_or_else(|e| panic!("monitor connection: {e}"))
        {
            mon.notifications.push(m);
        }
    };
    assert_eq!(update["method"], json!("update2"), "{update}");
    assert_eq!(
        update["params"][1],
        json!({"Entry": {uuid: {"insert": {"key": key, "seq": 7}}}}),
        "{update}"
    );
    for s in [a, b] {
        let rows = select_all(&mut connect(s), "Entry");
        assert!(
            rows.iter().any(|r| r["key"] == json!(key)),
            "{key} missing: {rows:?}"
        );
    }
}

/// Starts oxsdb with `extra` on a TLS etcd that it cannot talk to; checks
/// that it serves clear `not leader` errors at once, soon naming `cause` (any
/// of them: a rejected client certificate may first show as a closed
/// connection), that `_Server` says not connected, and that the log names
/// the cause.
fn refused_over_tls(endpoints: &[String], dir: &Path, extra: &[&str], cause: &[&str]) {
    let schema = write_schema(dir, "1.0.0");
    let srv = start_server(endpoints, &unique_prefix(), Some(&schema), extra, dir);
    let mut rpc = connect(&srv);
    let started = Instant::now();
    let named = |d: &str| {
        d.contains("TLS handshake with etcd failed") && cause.iter().any(|c| d.contains(c))
    };
    let mut replies = Vec::new();
    let (e, named_after) = loop {
        let began = Instant::now();
        let r = rpc
            .transact(
                json!([DB, {"op": "insert", "table": "Entry", "row": {"key": "x", "seq": 1}}]),
                ERROR_LIMIT,
            )
            .unwrap_or_else(|e| {
                panic!(
                    "no transact reply within {ERROR_LIMIT:?} from an oxsdb that cannot talk to \
                     etcd: {e}\n{}",
                    srv.all_stderr()
                )
            });
        let took = began.elapsed();
        let e = txn_error(&r).unwrap_or_else(|| panic!("committed without TLS to etcd: {r}"));
        assert_eq!(e["error"], json!("not leader"), "{e}");
        let details = e["details"].as_str().unwrap_or_default().to_string();
        assert!(details.contains("etcd"), "{e}");
        replies.push(took);
        if named(&details) {
            break (e, started.elapsed());
        }
        assert!(
            started.elapsed() < ERROR_LIMIT,
            "the error must name the TLS failure (one of {cause:?}) within {ERROR_LIMIT:?}: \
             {e}\nlog:\n{}",
            srv.all_stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "FIGURES: oxsdb {extra:?}: {} transactions answered in at most {:.2?}; the cause named \
         {named_after:.2?} after the first was sent: {e}",
        replies.len(),
        replies.iter().max().copied().unwrap_or_default(),
    );
    let row = server_row(&mut rpc);
    assert_eq!(row["connected"], json!(false), "{row}");
    assert_eq!(row["leader"], json!(false), "{row}");
    let log = srv.all_stderr();
    assert!(
        log.lines().any(named),
        "the log must name the TLS failure (one of {cause:?}):\n{log}"
    );
}

#[test]
fn client_tls_with_client_certificates() {
    let dir = tempdir();
    let pki = dir.path();
    let ca = make_ca(pki, "ca");
    let (server_cert, server_key) = make_leaf(pki, &ca, "etcd");
    let (client_cert, client_key) = make_leaf(pki, &ca, "oxsdb");
    let other = make_ca(pki, "other-ca");
    let (rogue_cert, rogue_key) = make_leaf(pki, &other, "rogue");
    let etcd = EtcdCluster::start_tls(
        1,
        &[],
        &ServerTls {
            cert: server_cert,
            key: server_key,
            ca: ca.cert.clone(),
        },
    );
    let endpoints = etcd.endpoints();
    assert!(endpoints[0].starts_with("https://"), "{endpoints:?}");
    let s = |p: &PathBuf| p.display().to_string();
    let good = [
        format!("--etcd-cacert={}", s(&ca.cert)),
        format!("--etcd-cert={}", s(&client_cert)),
        format!("--etcd-key={}", s(&client_key)),
    ];
    let good: Vec<&str> = good.iter().map(String::as_str).collect();

    // Trusted both ways: two servers transact and monitor.
    let schema = write_schema(pki, "1.0.0");
    let prefix = unique_prefix();
    let a = start_server(&endpoints, &prefix, Some(&schema), &good, pki);
    let b = start_server(&endpoints, &prefix, Some(&schema), &good, pki);
    wait_ready(&a);
    wait_ready(&b);
    transact_and_monitor(&a, &b, "over-tls");
    let row = server_row(&mut connect(&a));
    assert_eq!(row["connected"], json!(true), "{row}");

    // A client certificate etcd does not trust.
    let rogue = [
        format!("--etcd-cacert={}", s(&ca.cert)),
        format!("--etcd-cert={}", s(&rogue_cert)),
        format!("--etcd-key={}", s(&rogue_key)),
    ];
    let rogue: Vec<&str> = rogue.iter().map(String::as_str).collect();
    refused_over_tls(
        &endpoints,
        pki,
        &rogue,
        &[
            "BadCertificate",
            "CertificateRequired",
            "certificate required",
        ],
    );

    // No client certificate at all.
    let anonymous = [format!("--etcd-cacert={}", s(&ca.cert))];
    let anonymous: Vec<&str> = anonymous.iter().map(String::as_str).collect();
    refused_over_tls(
        &endpoints,
        pki,
        &anonymous,
        &[
            "BadCertificate",
            "CertificateRequired",
            "certificate required",
        ],
    );

    // A CA that did not sign etcd's certificate.
    let wrong_ca = [
        format!("--etcd-cacert={}", s(&other.cert)),
        format!("--etcd-cert={}", s(&client_cert)),
        format!("--etcd-key={}", s(&client_key)),
    ];
    let wrong_ca: Vec<&str> = wrong_ca.iter().map(String::as_str).collect();
    refused_over_tls(&endpoints, pki, &wrong_ca, &["UnknownIssuer"]);

    // The good servers were not disturbed.
    transact_and_monitor(&a, &b, "still-over-tls");
}

/// Lock "L" taken through A, waited for through B, passed to B when A
/// unlocks it (the lock keys and their watch, through etcd).
fn locks_pass_between(a: &Oxsdb, b: &Oxsdb) {
    let call = |rpc: &mut Rpc, method: &str| {
        let r = rpc
            .call(method, json!(["L"]), T)
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        assert!(r["error"].is_null(), "{method}: {r}");
        r["result"].clone()
    };
    let (mut ra, mut rb) = (connect(a), connect(b));
    assert_eq!(call(&mut ra, "lock"), json!({"locked": true}));
    assert_eq!(call(&mut rb, "lock"), json!({"locked": false}));
    call(&mut ra, "unlock");
    let wanted = json!({"id": null, "method": "locked", "params": ["L"]});
    let deadline = Instant::now() + T;
    while !rb.notifications.contains(&wanted) {
        assert!(
            Instant::now() < deadline,
            "B's waiter never got the lock: {:?}\nB's log:\n{}",
            rb.notifications,
            b.all_stderr()
        );
        if let Some(m) = rb
            .next_message(Duration::from_millis(100))
            .unwrap_or_else(|e| panic!("B's lock connection: {e}"))
        {
            rb.notifications.push(m);
        }
    }
}

/// Runs `etcdctl` on `endpoint` with `args`; panics with its output on
/// failure.
fn etcdctl(endpoint: &str, args: &[&str]) -> String {
    let out = run_timeout(
        Command::new(tool("etcdctl"))
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .args(args),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "etcdctl {args:?} failed: {}{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

#[test]
fn authentication_with_a_role_on_the_prefix() {
    let dir = tempdir();
    let etcd = EtcdCluster::single();
    let ep = etcd.members[0].endpoint();
    let prefix = unique_prefix();
    etcdctl(&ep, &["user", "add", "root:root-secret"]);
    etcdctl(&ep, &["role", "add", "oxsdb-rw"]);
    etcdctl(
        &ep,
        &[
            "role",
            "grant-permission",
            "oxsdb-rw",
            "--prefix=true",
            "readwrite",
            &format!("{prefix}/"),
        ],
    );
    etcdctl(&ep, &["user", "add", "oxsdb:oxsdb-secret"]);
    etcdctl(&ep, &["user", "grant-role", "oxsdb", "oxsdb-rw"]);
    // A user without any role.
    etcdctl(&ep, &["user", "add", "nobody:nobody-secret"]);
    etcdctl(&ep, &["auth", "enable"]);
    // Anonymous requests are refused from now on.
    let out = run_timeout(
        Command::new(tool("etcdctl"))
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={ep}"))
            .args(["put", "k", "v"]),
        Duration::from_secs(30),
    );
    assert!(!out.status.success(), "auth is not enabled: {}", out.stdout);

    let endpoints = etcd.endpoints();
    let schema = write_schema(dir.path(), "1.0.0");
    let user = ["--etcd-user=oxsdb", "--etcd-password=oxsdb-secret"];
    let a = start_server(&endpoints, &prefix, Some(&schema), &user, dir.path());
    let b = start_server(&endpoints, &prefix, Some(&schema), &user, dir.path());
    wait_ready(&a);
    wait_ready(&b);
    transact_and_monitor(&a, &b, "authenticated");
    locks_pass_between(&a, &b);
    let row = server_row(&mut connect(&b));
    assert_eq!(row["connected"], json!(true), "{row}");
    // What oxsdb wrote is there, under the prefix, for root to see.
    let keys = etcdctl(
        &ep,
        &[
            "--user=root:root-secret",
            "get",
            "--prefix",
            "--keys-only",
            &format!("{prefix}/"),
        ],
    );
    assert!(
        keys.contains(&format!("{prefix}/clus/clus/Entry/")),
        "{keys}"
    );

    // A wrong password: oxsdb refuses to start, saying why, soon.
    let began = Instant::now();
    let mut args = etcd_args(
        &endpoints,
        &prefix,
        &["--etcd-user=oxsdb", "--etcd-password=wrong"],
    );
    args.push(schema.display().to_string());
    let (status, stderr) = refused_start(&args, dir.path(), "with a wrong etcd password");
    let took = began.elapsed();
    eprintln!("FIGURES: wrong etcd password: oxsdb exited with {status} after {took:.2?}");
    assert!(!status.success(), "{status}");
    assert!(
        stderr.contains("etcd") && stderr.contains("authentication failed"),
        "the message must say that etcd refused the credentials:\n{stderr}"
    );
    assert!(
        stderr.contains("--etcd-user") || stderr.contains("--etcd-password"),
        "the message must name the options to check:\n{stderr}"
    );
    assert!(took < ERROR_LIMIT, "{took:?}");
    // A user without a role on the prefix: refused at start, saying what
    // to grant.
    let mut args = etcd_args(
        &endpoints,
        &prefix,
        &["--etcd-user=nobody", "--etcd-password=nobody-secret"],
    );
    args.push(schema.display().to_string());
    let (status, stderr) = refused_start(&args, dir.path(), "as a user without permissions");
    assert!(!status.success(), "{status}");
    assert!(
        stderr.contains("permission denied") && stderr.contains("--etcd-prefix"),
        "the message must say that etcd denied the user and what to grant:\n{stderr}"
    );

    // The good servers go on, and nothing they asked was refused (their
    // role covers only the prefix).
    transact_and_monitor(&a, &b, "still-authenticated");
    for s in [&a, &b] {
        let log = s.all_stderr();
        assert!(
            !log.contains("permission denied") && !log.contains("refused"),
            "a request outside the prefix:\n{log}"
        );
    }
}
