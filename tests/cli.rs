//! The `oxsdb` process: arguments, errors at start, pidfile, clean exit on signals.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn oxsdb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oxsdb"))
}

#[test]
fn help_explains_the_options() {
    let out = oxsdb().arg("--help").output().expect("run oxsdb");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--remote",
        "--inactivity-probe",
        "--pidfile",
        "--log-file",
        "--store",
        "--max-message-size",
    ] {
        assert!(text.contains(opt), "--help lacks {opt}:\n{text}");
    }
}

#[test]
fn missing_schema_is_one_line_naming_the_file() {
    let out = oxsdb()
        .arg("/nonexistent/x.ovsschema")
        .output()
        .expect("run oxsdb");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/x.ovsschema"), "{err}");
}

#[test]
fn invalid_schema_is_one_line_naming_the_file_and_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.ovsschema");
    std::fs::write(
        &p,
        r#"{"name": "d", "tables": {"T": {"columns": {"c": {"type": "bogus"}}}}}"#,
    )
    .expect("write");
    let out = oxsdb().arg(&p).output().expect("run oxsdb");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.ovsschema") && err.contains("bogus"),
        "{err}"
    );
}

#[test]
fn bad_remote_is_refused() {
    let out = oxsdb()
        .args(["--remote=udp:1:2", "examples/todo.ovsschema"])
        .output()
        .expect("run oxsdb");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    // The remote named, and the forms to use instead.
    assert!(err.contains("udp:1:2: unknown remote type"), "{err}");
    assert!(err.contains("pssl:[PORT][:IP]"), "{err}");
}

#[test]
fn sigterm_exits_zero_and_removes_the_pidfile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("oxsdb.pid");
    let sock = dir.path().join("db.sock");
    let mut child = oxsdb()
        .arg(format!("--pidfile={}", pidfile.display()))
        .arg(format!("--remote=punix:{}", sock.display()))
        .arg("--remote=ptcp:0:127.0.0.1")
        .arg(format!("--data-dir={}", dir.path().display()))
        .arg("examples/todo.ovsschema")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oxsdb");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut listening = 0;
    while listening < 2 && Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("oxsdb: listening on") => listening += 1,
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    assert_eq!(listening, 2, "oxsdb did not report its listeners");
    let pid = std::fs::read_to_string(&pidfile).expect("pidfile written");
    assert_eq!(pid.trim(), child.id().to_string());
    assert!(sock.exists());
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "oxsdb did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!pidfile.exists(), "pidfile removed at exit");
    assert!(!sock.exists(), "unix socket removed at exit");
}
