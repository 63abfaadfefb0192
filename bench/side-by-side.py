#!/usr/bin/python3
"""Side-by-side benchmark: oxsdb against ovsdb-server, with oxsdb-bench as the load.

Builds release, starts each contender on loopback -- oxsdb on the memory
store, oxsdb on a one-member etcd, ovsdb-server standalone, ovsdb-server
clustered with three members (load on the leader), and raw etcd Txns at the
same concurrency as the ceiling for the etcd store -- runs each scenario on
them in turn for several rounds (every contender started fresh, on an empty
database, for every scenario of every round) and prints, per scenario, a
markdown table of medians, spreads (min-max) and the ratio of each contender
to ovsdb-server standalone (always oriented so that > 1 means better than
ovsdb-server), plus the peak RSS of each server after the snapshots.

Standard library only; run with /usr/bin/python3 from anywhere:

    bench/side-by-side.py                      # everything, 3 rounds
    bench/side-by-side.py --quick --rounds 1   # a short try of the script
    bench/side-by-side.py --only oxsdb-memory,ovsdb-server --scenarios txn,fanout
    bench/side-by-side.py --check              # start/verify/stop each contender, no load

Progress goes to stderr, the tables to stdout (and to --out FILE).
"""

import argparse
import datetime
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NB_SCHEMA = "/usr/share/ovn/ovn-nb.ovsschema"
NB_DB = "OVN_Northbound"
SB_SCHEMA = "/usr/share/ovn/ovn-sb.ovsschema"
SB_DB = "OVN_Southbound"
# The schema and database the contenders serve: set by measure() for each
# scenario (condfanout runs on the Southbound schema, the others on the
# Northbound one), read by the contenders' start functions.
SCHEMA = NB_SCHEMA
DB = NB_DB
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
OVSDB_SERVER = shutil.which("ovsdb-server") or "/usr/sbin/ovsdb-server"
OVSDB_TOOL = shutil.which("ovsdb-tool") or "/usr/bin/ovsdb-tool"
OVSDB_CLIENT = shutil.which("ovsdb-client") or "/usr/bin/ovsdb-client"
OVS_APPCTL = shutil.which("ovs-appctl") or "/usr/bin/ovs-appctl"

# etcd as the issue asks: durable (no --unsafe-no-fsync), limits large enough
# for the 10,000-row transactions and the 100,000-row snapshot set-up.
ETCD_LIMITS = [
    "--max-txn-ops", "100000",
    "--max-request-bytes", "67108864",
    "--quota-backend-bytes", "8589934592",
]

LOADAVG_AT_START = "?"
ELECTION_TIMER_STEPS = [2000, 4000, 8000, 10000]  # ms: ovsdb-server-clustered ends at 10 s
START_TIMEOUT = 60  # seconds for a contender to come up
RUN_TIMEOUT = 1800  # seconds for one oxsdb-bench run
STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL

CONTENDERS = ["oxsdb-memory", "oxsdb-file", "oxsdb-etcd", "oxsdb-etcd-2servers", "oxsdb-etcd3",
              "ovsdb-server",
              "ovsdb-server-clustered", "etcd-raw", "etcd-raw3"]
RAW_ETCD = ("etcd-raw", "etcd-raw3")
BASELINE = "ovsdb-server"

# name -> what oxsdb-bench runs (full and --quick; None: not in --quick), the
# main figure (higher or lower is better), the other figures shown as medians,
# and the counters shown as sums over all rounds (errors are never averaged away).
SCENARIOS = {
    "txn": dict(
        args=["txn", "--clients", "8", "--seconds", "5"],
        quick=["txn", "--clients", "8", "--seconds", "2"],
        main="rate", unit="committed txn/s", higher=True,
        others=["p50_ms", "p99_ms", "cpu_us_per_op", "cpu_us_per_op_server", "cpu_us_per_op_store"],
        counters=["errors"],
        what="8 clients, each one transaction at a time",
    ),
    "fanout": dict(
        args=["fanout", "--monitors", "1000", "--txns", "100"],
        quick=["fanout", "--monitors", "200", "--txns", "20"],
        main="rate", unit="notifications/s", higher=True,
        others=["p50_ms", "p99_ms", "max_ms", "monitor_setup_s", "cpu_us_per_op"],
        counters=["missed", "duplicated", "unexpected", "errors"],
        what="monitors each receiving every transaction; latency from commit to notification",
    ),
    "snapshot-10k": dict(
        args=["snapshot", "--ports", "10000", "--switches", "100", "--fetches", "5"],
        quick=["snapshot", "--ports", "10000", "--switches", "100", "--fetches", "5"],
        main="median_ms", unit="ms, full initial monitor reply", higher=False,
        others=["p99_ms", "preload_s", "cpu_ms_per_op"], counters=["errors"], rss=True,
        what="a fresh client's monitor of everything, 10,000 ports on 100 switches",
    ),
    "snapshot-100k": dict(
        args=["snapshot", "--ports", "100000", "--switches", "1000", "--fetches", "3"],
        quick=None,
        main="median_ms", unit="ms, full initial monitor reply", higher=False,
        others=["p99_ms", "preload_s", "cpu_ms_per_op"], counters=["errors"], rss=True,
        what="a fresh client's monitor of everything, 100,000 ports on 1,000 switches",
    ),
    "bulk-1k": dict(
        args=["bulk", "--rows", "1000", "--repeat", "5"],
        quick=["bulk", "--rows", "1000", "--repeat", "5"],
        main="median_ms", unit="ms per 1,000-row transaction", higher=False,
        others=["rows_per_s", "delete_median_ms", "cpu_ms_per_op"], counters=["errors"],
        what="one transaction inserting 1,000 rows, 5 times",
    ),
    "bulk-10k": dict(
        args=["bulk", "--rows", "10000", "--repeat", "3"],
        quick=None,
        main="median_ms", unit="ms per 10,000-row transaction", higher=False,
        others=["rows_per_s", "delete_median_ms", "cpu_ms_per_op"], counters=["errors"],
        what="one transaction inserting 10,000 rows, 3 times",
    ),
}

# condfanout (issue 16) configurations M,K,D (sessions, clauses, datapaths),
# separated by ';': the two targets. Each becomes a scenario
# condfanout-MxKxD; --scenarios condfanout selects them all.
CONDFANOUT_DEFAULT = "1000,300,3000;200,3000,3000"


def add_condfanout(configs):
    """Adds one condfanout scenario per M,K,D configuration; returns their names."""
    names = []
    for conf in [c for c in configs.split(";") if c.strip()]:
        m, k, d = (int(x) for x in conf.split(","))
        if not (m > 0 and 0 < k <= d):
            raise ValueError(f"condfanout {conf}: need M > 0 and 0 < K <= D")
        rest = ["--clauses", str(k), "--datapaths", str(d), "--ports", "4"]
        if k >= 1000:
            # 64 sessions setting up 3,000-clause monitors at once kept both
            # servers busy past their 5 s inactivity probe on 2 cores: they
            # dropped sessions (ovsdb-server during set-up, oxsdb after).
            rest += ["--setup-parallelism", "4", "--change-parallelism", "4"]
        base = ["condfanout", "--sessions", str(m), *rest]
        mq = max(1, m // 5)
        name = f"condfanout-{m}x{k}x{d}"
        # A condition listing (nearly) every datapath has fewer than 10 others
        # to add: its first change only drops, so each session makes two
        # (the second adds back what the first dropped).
        per_session = 1 if d - k >= 10 else 2
        SCENARIOS[name] = dict(
            args=base + ["--writes", "1000", "--changes", str(per_session * m)],
            quick=["condfanout", "--sessions", str(mq), *rest,
                   "--writes", "200", "--changes", str(per_session * mq)],
            schema=SB_SCHEMA, db=SB_DB,
            main="rate", unit="notifications/s", higher=True,
            others=["cpu_us_per_notification", "cpu_us_per_notification_busiest_server",
                    "writer_p50_ms", "change_p50_ms",
                    "cpu_ms_per_change", "cpu_ms_per_setup", "setup_s"],
            ratios=["cpu_us_per_notification", "writer_p50_ms", "change_p50_ms",
                    "cpu_ms_per_change", "cpu_ms_per_setup"],
            counters=["missed", "duplicated", "unexpected", "errors"], rss=True,
            what=f"{m:,} Southbound sessions, each a monitor_cond on Port_Binding with "
                 f"{k:,} datapath clauses over {d:,} datapaths (4 ports each); one writer "
                 f"updating one port per transaction; then {per_session} monitor_cond_change "
                 f"call(s) per session, each dropping 10 datapaths and adding up to 10 others "
                 f"(every row checked)",
        )
        names.append(name)
    return names


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class StartError(Exception):
    pass


# ---------------------------------------------------------------------------
# Processes: everything this script starts is registered here and stopped at
# the end, on an exception and on Ctrl-C/SIGTERM. Each child gets its own
# session (and so its own process group), so a Ctrl-C in the terminal reaches
# only this script, which then stops them in order.


class Procs:
    def __init__(self):
        self.live = []

    def spawn(self, name, argv, logfile, cwd=None):
        out = open(logfile, "ab")
        try:
            p = subprocess.Popen(
                [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True,
            )
        finally:
            out.close()
        p.name = name
        p.logfile = logfile
        self.live.append(p)
        return p

    def spawn_split(self, name, argv, stdout_file, stderr_file, cwd=None):
        with open(stdout_file, "wb") as out, open(stderr_file, "wb") as err:
            p = subprocess.Popen(
                [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, cwd=cwd, start_new_session=True,
            )
        p.name = name
        p.logfile = stderr_file
        self.live.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log(f"{p.name} (pid {p.pid}) ignored SIGTERM for {STOP_TIMEOUT} s: SIGKILL")
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in reversed(list(self.live)):
            self.stop(p)


def tail(path, n=15):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + l for l in lines[-n:]) or "    (empty)"


def free_ports(n):
    """n distinct free loopback ports (bound to port 0 all at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until(what, fn, procs, timeout=START_TIMEOUT):
    """Poll fn() until it returns something true; fail if a process in procs dies."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        for p in procs:
            if p.poll() is not None:
                raise StartError(
                    f"{p.name} exited with status {p.returncode} while waiting for {what}; "
                    f"its log ({p.logfile}):\n{tail(p.logfile)}")
        try:
            r = fn()
            if r:
                return r
        except Exception as e:  # noqa: BLE001 - anything means "not yet"
            last = e
        if time.monotonic() > deadline:
            raise StartError(f"timed out after {timeout} s waiting for {what}"
                             + (f" (last error: {last})" if last else ""))
        time.sleep(0.1)


def tcp_accepts(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def run_quiet(argv, timeout=10):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def ovsdb_lists_db(port):
    r = run_quiet([OVSDB_CLIENT, "--timeout=5", "list-dbs", f"tcp:127.0.0.1:{port}"])
    return r.returncode == 0 and DB in r.stdout.split()


def db_serving(port, want_leader=True):
    """_Server says the database is connected (and, if asked, the leader)."""
    txn = json.dumps(["_Server", {"op": "select", "table": "Database",
                                  "where": [["name", "==", DB]],
                                  "columns": ["connected", "leader"]}])
    r = run_quiet([OVSDB_CLIENT, "--timeout=5", "transact", f"tcp:127.0.0.1:{port}", txn])
    if r.returncode != 0:
        return False
    rows = json.loads(r.stdout)[0]["rows"]
    return bool(rows) and rows[0]["connected"] is True and (
        not want_leader or rows[0]["leader"] is True)


def etcd_healthy(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
        return json.loads(r.read()).get("health") == "true"


def cluster_status(ctl):
    """ovs-appctl cluster/status of one raft member as a dict (+ 'servers': count)."""
    r = run_quiet([OVS_APPCTL, "-t", ctl, "cluster/status", DB])
    if r.returncode != 0:
        return None
    st, servers, in_servers = {}, 0, False
    for line in r.stdout.splitlines():
        if line.startswith("Servers:"):
            in_servers = True
        elif in_servers and line.startswith(" "):
            servers += 1
        elif ":" in line:
            in_servers = False
            k, v = line.split(":", 1)
            st[k.strip()] = v.strip()
    st["servers"] = servers
    return st


def vm_hwm_mib(pid):
    """Peak resident set size (VmHWM) of a live process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------
# Contenders. start() brings one up in a fresh directory and returns a
# Running describing how to load it; stop with Procs.stop on its processes.


class Running:
    def __init__(self, name, procs, remote=None, pids=(), rss_pid=None, extra_rss=None,
                 endpoint=None, leader_ctl=None):
        self.name = name
        self.procs = procs  # Popen objects, in start order
        self.remote = remote  # tcp:127.0.0.1:PORT for oxsdb-bench
        self.pids = list(pids)  # --server-pid: every process doing the contender's work
        self.rss_pid = rss_pid  # whose VmHWM is "the server's peak RSS"
        self.extra_rss = extra_rss or {}  # label -> pid, reported beside it
        self.endpoint = endpoint  # etcd client URL (etcd-raw)
        self.leader_ctl = leader_ctl  # clustered: the leader's unixctl socket

    def dead(self):
        return [p for p in self.procs if p.poll() is not None]

    def leader_still(self):
        if not self.leader_ctl:
            return True
        st = cluster_status(self.leader_ctl)
        return bool(st) and st.get("Role") == "leader"


class Env:
    def __init__(self, procs, oxsdb):
        self.procs = procs
        self.oxsdb = oxsdb


def start_etcd(env, d):
    client, peer = free_ports(2)
    url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    p = env.procs.spawn("etcd", [
        ETCD, "--name", "default", "--data-dir", d / "etcd",
        "--listen-client-urls", url, "--advertise-client-urls", url,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"default={peer_url}",
        *ETCD_LIMITS, "--logger", "zap", "--log-level", "warn",
    ], d / "etcd.log")
    wait_until(f"etcd on port {client} to be healthy", lambda: etcd_healthy(client), [p])
    return p, url


def start_etcd_cluster(env, d, n=3):
    """n etcd members on loopback, one data directory each; returns their
    processes and client URLs."""
    ports = free_ports(2 * n)
    clients = [f"http://127.0.0.1:{ports[2 * i]}" for i in range(n)]
    peers = [f"http://127.0.0.1:{ports[2 * i + 1]}" for i in range(n)]
    cluster = ",".join(f"m{i}={peers[i]}" for i in range(n))
    procs = []
    for i in range(n):
        procs.append(env.procs.spawn(f"etcd-m{i}", [
            ETCD, "--name", f"m{i}", "--data-dir", d / f"etcd-m{i}",
            "--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
            "--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            *ETCD_LIMITS, "--logger", "zap", "--log-level", "warn",
        ], d / f"etcd-m{i}.log"))
    for i in range(n):
        port = ports[2 * i]
        wait_until(f"etcd member m{i} on port {port} to be healthy",
                   lambda port=port: etcd_healthy(port), procs)
    return procs, clients


def start_oxsdb(env, d, store_args, also_wait=(), name="oxsdb"):
    (port,) = free_ports(1)
    p = env.procs.spawn(name, [
        env.oxsdb, *store_args, f"--remote=ptcp:{port}:127.0.0.1", SCHEMA,
    ], d / f"{name}.log", cwd=d)
    alive = [p, *also_wait]
    wait_until(f"oxsdb to accept on port {port}", lambda: tcp_accepts(port), alive)
    wait_until("oxsdb to answer list-dbs", lambda: ovsdb_lists_db(port), alive)
    wait_until("oxsdb's _Server to show the database connected",
               lambda: db_serving(port), alive)
    return p, port


def start_ovsdb_server(env, d, dbfile, name):
    (port,) = free_ports(1)
    p = env.procs.spawn(name, [
        OVSDB_SERVER, dbfile, f"--remote=ptcp:{port}:127.0.0.1",
        f"--unixctl={d / (name + '.ctl')}", f"--pidfile={d / (name + '.pid')}",
        "--no-chdir", f"--log-file={d / (name + '.log')}", "-vconsole:off",
    ], d / (name + ".out"), cwd=d)
    p.logfile = d / (name + ".log")
    return p, port


def contender_oxsdb_memory(env, d):
    p, port = start_oxsdb(env, d, ["--store=memory"])
    return Running("oxsdb-memory", [p], f"tcp:127.0.0.1:{port}", [p.pid], p.pid)


def contender_oxsdb_file(env, d):
    data = d / "oxsdb-data"
    data.mkdir(exist_ok=True)
    p, port = start_oxsdb(env, d, ["--store=file", f"--data-dir={data}"])
    return Running("oxsdb-file", [p], f"tcp:127.0.0.1:{port}", [p.pid], p.pid)


def contender_oxsdb_etcd(env, d):
    e, url = start_etcd(env, d)
    p, port = start_oxsdb(env, d, ["--store=etcd", f"--etcd-endpoints={url}"], [e])
    return Running("oxsdb-etcd", [e, p], f"tcp:127.0.0.1:{port}", [p.pid, e.pid], p.pid,
                   extra_rss={"etcd": e.pid}, endpoint=url)


def contender_oxsdb_etcd_2servers(env, d):
    """Two oxsdb servers on one etcd member: condfanout spreads its sessions
    over both (the writer uses the first), and reports each server's own CPU
    per notification of its sessions."""
    e, url = start_etcd(env, d)
    store = ["--store=etcd", f"--etcd-endpoints={url}"]
    p1, port1 = start_oxsdb(env, d, store, [e], name="oxsdb-a")
    p2, port2 = start_oxsdb(env, d, store, [e, p1], name="oxsdb-b")
    return Running("oxsdb-etcd-2servers", [e, p1, p2],
                   [f"tcp:127.0.0.1:{port1}", f"tcp:127.0.0.1:{port2}"],
                   [p1.pid, p2.pid, e.pid], p1.pid,
                   extra_rss={"second server": p2.pid, "etcd": e.pid}, endpoint=url)


def contender_oxsdb_etcd3(env, d):
    es, urls = start_etcd_cluster(env, d)
    p, port = start_oxsdb(env, d, ["--store=etcd", "--etcd-endpoints=" + ",".join(urls)], es)
    return Running("oxsdb-etcd3", [*es, p], f"tcp:127.0.0.1:{port}", [p.pid, *(e.pid for e in es)],
                   p.pid, extra_rss={"etcd m0": es[0].pid}, endpoint=",".join(urls))


def contender_ovsdb_server(env, d):
    r = run_quiet([OVSDB_TOOL, "create", d / "db.db", SCHEMA])
    if r.returncode != 0:
        raise StartError(f"ovsdb-tool create failed: {r.stderr.strip()}")
    p, port = start_ovsdb_server(env, d, d / "db.db", "ovsdb-server")
    wait_until(f"ovsdb-server to accept on port {port}", lambda: tcp_accepts(port), [p])
    wait_until("ovsdb-server to answer list-dbs", lambda: ovsdb_lists_db(port), [p])
    return Running("ovsdb-server", [p], f"tcp:127.0.0.1:{port}", [p.pid], p.pid)


def contender_ovsdb_clustered(env, d):
    raft = free_ports(3)
    files = [d / f"db{i + 1}.db" for i in range(3)]
    steps = [[OVSDB_TOOL, "create-cluster", files[0], SCHEMA, f"tcp:127.0.0.1:{raft[0]}"]]
    for i in (1, 2):
        steps.append([OVSDB_TOOL, "join-cluster", files[i], DB,
                      f"tcp:127.0.0.1:{raft[i]}", f"tcp:127.0.0.1:{raft[0]}"])
    for argv in steps:
        r = run_quiet(argv)
        if r.returncode != 0:
            raise StartError(f"{shlex.join(map(str, argv))} failed: {r.stderr.strip()}")
    members = []
    for i in range(3):
        p, port = start_ovsdb_server(env, d, files[i], f"member{i + 1}")
        members.append((p, port, str(d / f"member{i + 1}.ctl")))
    procs = [m[0] for m in members]
    for p, port, _ in members:
        wait_until(f"{p.name} to accept on port {port}", lambda port=port: tcp_accepts(port), procs)
        wait_until(f"{p.name} to answer list-dbs", lambda port=port: ovsdb_lists_db(port), procs)

    def leader():
        sts = [cluster_status(ctl) for _, _, ctl in members]
        if not all(st and st.get("Status") == "cluster member" for st in sts):
            return None
        leaders = [i for i, st in enumerate(sts) if st.get("Role") == "leader"]
        if len(leaders) != 1 or sts[leaders[0]]["servers"] != 3:
            return None
        return leaders[0] + 1  # 1-based, so that member1 is true

    li = wait_until("the raft cluster to have three members and a leader", leader, procs) - 1
    lp, lport, lctl = members[li]
    wait_until(f"the leader {lp.name} to serve {DB}", lambda: db_serving(lport), procs)
    # The default 1 s election timer elects a new leader whenever the load
    # generator starves the leader of CPU for a second (2-core machines): raise
    # it as OVN deployments at scale do (ovn-ctl --db-nb-election-timer); raft
    # allows at most doubling per change.
    for t in ELECTION_TIMER_STEPS:
        def change(t=t):
            r = run_quiet([OVS_APPCTL, "-t", lctl, "cluster/change-election-timer", DB, str(t)])
            return r.returncode == 0 or None
        wait_until(f"the leader to accept election timer {t} ms", change, procs)
        wait_until(f"every member to have election timer {t} ms",
                   lambda t=t: all((cluster_status(ctl) or {}).get("Election timer") == str(t)
                                   for _, _, ctl in members), procs)
    if cluster_status(lctl).get("Role") != "leader":
        raise StartError(f"{lp.name} lost the leadership while the election timer was raised")
    log(f"  ovsdb-server-clustered: leader is {lp.name} (client port {lport})")
    pids = [lp.pid] + [m[0].pid for m in members if m[0] is not lp]
    return Running("ovsdb-server-clustered", procs, f"tcp:127.0.0.1:{lport}", pids, lp.pid,
                   leader_ctl=lctl)


def contender_etcd_raw(env, d):
    e, url = start_etcd(env, d)
    return Running("etcd-raw", [e], None, [e.pid], e.pid, endpoint=url)


def contender_etcd_raw3(env, d):
    es, urls = start_etcd_cluster(env, d)
    return Running("etcd-raw3", es, None, [e.pid for e in es], es[0].pid, endpoint=",".join(urls))


DESCRIBE = {
    "oxsdb-memory": "--store=memory",
    "oxsdb-file": "--store=file (the default: an OVSDB database file, as ovsdb-server's)",
    "oxsdb-etcd": "--store=etcd on a one-member etcd, durable (fsync), " + " ".join(ETCD_LIMITS),
    "ovsdb-server": "standalone, the baseline of the ratios",
    "ovsdb-server-clustered": "three raft members, load on the leader, election timer raised to "
                              f"{ELECTION_TIMER_STEPS[-1] // 1000} s",
    "etcd-raw": "raw etcd Txns on the same one-member etcd, txn only",
    "oxsdb-etcd3": "--store=etcd on a three-member etcd (every endpoint given), durable, same limits",
    "oxsdb-etcd-2servers": "two oxsdb --store=etcd servers on one etcd member (condfanout only: "
                           "sessions alternate between them, the writer on the first)",
    "etcd-raw3": "raw etcd Txns on the same three-member etcd, txn only",
}

START = {
    "oxsdb-memory": contender_oxsdb_memory,
    "oxsdb-file": contender_oxsdb_file,
    "oxsdb-etcd": contender_oxsdb_etcd,
    "ovsdb-server": contender_ovsdb_server,
    "ovsdb-server-clustered": contender_ovsdb_clustered,
    "etcd-raw": contender_etcd_raw,
    "oxsdb-etcd3": contender_oxsdb_etcd3,
    "oxsdb-etcd-2servers": contender_oxsdb_etcd_2servers,
    "etcd-raw3": contender_etcd_raw3,
}


def runs_scenario(contender, scenario):
    if contender == "oxsdb-etcd-2servers":
        return scenario.startswith("condfanout")
    return scenario == "txn" if contender in RAW_ETCD else True


# ---------------------------------------------------------------------------
# One measurement: a fresh contender, one oxsdb-bench run, the contender stopped.


def bench_argv(bench, scenario, args, running):
    if running.name in RAW_ETCD:
        # Raw etcd Txns at the txn scenario's concurrency and duration.
        rest = args[1:]  # ["--clients", "8", "--seconds", N]
        return [bench, "etcd-txn", "--endpoints", running.endpoint, *rest]
    remotes = running.remote if isinstance(running.remote, list) else [running.remote]
    g = [bench]
    for r in remotes:
        g += ["--remote", r]
    for pid in running.pids:
        g += ["--server-pid", str(pid)]
    return g + args


def busiest_server(data):
    """condfanout: the highest own CPU per notification among the servers
    (each server's CPU over the notifications of the sessions it serves;
    an etcd member's CPU is in no server's share)."""
    per = data.get("per_server") if isinstance(data, dict) else None
    if per:
        figures = [x.get("cpu_us_per_notification") for x in per]
        if all(isinstance(f, (int, float)) for f in figures):
            data["cpu_us_per_notification_busiest_server"] = max(figures)


def split_cpu(data, contender):
    """oxsdb's own CPU per transaction and its store's (etcd members), from
    the per-process figures (--server-pid order: oxsdb first)."""
    by_pid = data.get("cpu_us_per_op_by_pid") if isinstance(data, dict) else None
    if not by_pid or not contender.startswith("oxsdb-etcd"):
        return
    data["cpu_us_per_op_server"] = by_pid[0]
    data["cpu_us_per_op_store"] = sum(by_pid[1:])


def measure(env, bench, tmp, rnd, scenario, args, contender):
    global SCHEMA, DB
    SCHEMA = SCENARIOS[scenario].get("schema", NB_SCHEMA)
    DB = SCENARIOS[scenario].get("db", NB_DB)
    d = tmp / f"round{rnd}" / scenario / contender
    d.mkdir(parents=True)
    res = dict(contender=contender, scenario=scenario, round=rnd, rc=None, data=None,
               problem=None, notes=[], rss_mib=None, extra_rss={})
    running = None
    try:
        t0 = time.monotonic()
        running = START[contender](env, d)
        log(f"  {contender} up in {time.monotonic() - t0:.1f} s")
        argv = bench_argv(bench, scenario, args, running)
        res["argv"] = shlex.join(map(str, argv))
        log(f"  $ {res['argv']}")
        p = env.procs.spawn_split("oxsdb-bench", argv, d / "bench.out", d / "bench.err", cwd=d)
        try:
            res["rc"] = p.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            env.procs.stop(p)
            res["problem"] = f"oxsdb-bench timed out after {RUN_TIMEOUT} s"
        finally:
            env.procs.stop(p)
        if SCENARIOS[scenario].get("rss"):
            res["rss_mib"] = vm_hwm_mib(running.rss_pid)
            res["extra_rss"] = {k: vm_hwm_mib(pid) for k, pid in running.extra_rss.items()}
        lines = [l for l in (d / "bench.out").read_text(errors="replace").splitlines() if l.strip()]
        if lines:
            try:
                res["data"] = json.loads(lines[-1])
                split_cpu(res["data"], contender)
                busiest_server(res["data"])
            except json.JSONDecodeError:
                res["problem"] = res["problem"] or f"last stdout line is not JSON: {lines[-1][:200]!r}"
        elif not res["problem"]:
            res["problem"] = "oxsdb-bench printed nothing on stdout"
        if res["rc"] not in (0, None):
            res["notes"].append(f"exit {res['rc']}")
        for dp in running.dead():
            res["notes"].append(f"{dp.name} died (status {dp.returncode})")
        if not running.leader_still():
            res["notes"].append("leader changed")
        if res["rc"] != 0 or res["problem"]:
            log(f"  oxsdb-bench exit status {res['rc']}"
                + (f", {res['problem']}" if res["problem"] else "")
                + f"; its stderr ({d / 'bench.err'}):\n{tail(d / 'bench.err')}")
    except StartError as e:
        res["problem"] = f"{contender} did not start: {e}"
        log(f"  {res['problem']}")
    finally:
        if running:
            for p in reversed(running.procs):
                env.procs.stop(p)
    shown = json.dumps(res["data"]) if res["data"] is not None else res["problem"]
    extra = f" rss={res['rss_mib']:.1f}MiB" if res["rss_mib"] else ""
    log(f"  => {contender} {scenario} round {rnd}: rc={res['rc']} {shown}{extra}")
    return res


# ---------------------------------------------------------------------------
# Report.


def fmt(x):
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != x:
            return "—"
        a = abs(x)
        if a >= 1000:
            return f"{x:,.0f}"
        if a >= 100:
            return f"{x:.0f}"
        if a >= 10:
            return f"{x:.1f}"
        if a >= 0.1:
            return f"{x:.2f}"
        return f"{x:.2g}"
    return str(x)


def median(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and not isinstance(x, bool)]
    return statistics.median(xs) if xs else None


def ratio(value, base, higher):
    if value is None or base is None or value == 0 or base == 0:
        return None
    return value / base if higher else base / value


def figure(results, key):
    if key == "rss_mib":
        return [r["rss_mib"] for r in results if r["rss_mib"] is not None]
    return [r["data"][key] for r in results
            if isinstance(r.get("data"), dict) and isinstance(r["data"].get(key), (int, float))]


def scenario_table(scenario, results, contenders, rounds):
    spec = SCENARIOS[scenario]
    main, higher = spec["main"], spec["higher"]
    others = list(spec["others"])
    has_rss = spec.get("rss") and any(r["rss_mib"] is not None for r in results)
    counters = spec["counters"]
    # The server/store split of etcd contenders is shown, not compared.
    cpu = spec.get("ratios") or [
        o for o in others if o.startswith("cpu_") and not o.endswith(("_server", "_store"))]
    by = {c: [r for r in results if r["contender"] == c] for c in contenders}
    base = by.get(BASELINE) or []
    base_main = median(figure(base, main))
    orient = "contender/ovsdb-server" if higher else "ovsdb-server/contender"
    head = [f"contender", f"{main} median ({spec['unit']})", f"{main} spread (min–max)"]
    head += [f"{o} median" for o in others]
    if has_rss:
        head += ["peak RSS MiB (VmHWM) median"]
    head += [f"{c} (sum of rounds)" for c in counters]
    head += [f"ratio {main} ({orient})"]
    head += [f"ratio {o} (ovsdb-server/contender)" for o in cpu]  # lower is better for all
    if has_rss:
        head += ["ratio RSS (ovsdb-server/contender)"]
    head += ["rounds ok", "notes"]
    rows = []
    for c in contenders:
        rs = by.get(c)
        if not rs:
            continue
        vals = figure(rs, main)
        m = median(vals)
        row = [f"`{c}`", fmt(m), f"{fmt(min(vals))}–{fmt(max(vals))}" if vals else "—"]
        row += [fmt(median(figure(rs, o))) for o in others]
        if has_rss:
            rss = median(figure(rs, "rss_mib"))
            cell = fmt(rss)
            for label in sorted({k for r in rs for k in r["extra_rss"]}):
                extra = median([r["extra_rss"].get(label) for r in rs if r["extra_rss"].get(label)])
                cell += f" (+ {label} {fmt(extra)})"
            row.append(cell)
        for k in counters:
            got = figure(rs, k)
            row.append(fmt(sum(got)) if got else "—")
        row.append(fmt(ratio(m, base_main, higher)))
        for o in cpu:
            row.append(fmt(ratio(median(figure(rs, o)), median(figure(base, o)), False)))
        if has_rss:
            row.append(fmt(ratio(median(figure(rs, "rss_mib")),
                                 median(figure(base, "rss_mib")), False)))
        ok = sum(1 for r in rs if r["rc"] == 0 and not r["problem"] and not r["notes"])
        row.append(f"{ok}/{len(rs)}")
        notes = []
        for r in rs:
            for n in r["notes"]:
                notes.append(f"r{r['round']}: {n}")
            if r["problem"]:
                notes.append(f"r{r['round']}: {r['problem'].splitlines()[0][:120]}")
            samples = (r.get("data") or {}).get("error_samples") if isinstance(r.get("data"), dict) else None
            if samples:
                notes.append(f"r{r['round']}: e.g. {str(samples[0])[:120]}")
        row.append("; ".join(notes).replace("|", "/").replace("\n", " ") or "")
        rows.append(row)
    if not rows:
        return ""
    out = [f"### {scenario}: {spec['what']}", ""]
    if scenario == "txn" and any(c in by for c in RAW_ETCD):
        out += ["(`etcd-raw`/`etcd-raw3`: `oxsdb-bench etcd-txn`, raw etcd Txns at the same "
                "concurrency on the same one-member/three-member etcd: the ceiling for "
                "`oxsdb-etcd`/`oxsdb-etcd3`.)", ""]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head) - 1)) + "|---|")
    for row in rows:
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    return "\n".join(out)


def machine():
    model, cores = "?", 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("processor"):
                cores += 1
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return f"{model}, {cores or os.cpu_count()} cores, {ram} RAM"


def first_line(argv):
    try:
        r = run_quiet(argv)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def git_commit():
    r = run_quiet(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    commit = r.stdout.strip() or "?"
    st = run_quiet(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])
    if st.stdout.strip():
        commit += " (with uncommitted changes)"
    return commit


def header(args, oxsdb, tmp):
    fs = run_quiet(["df", "--output=fstype", tmp]).stdout.split()
    lines = [
        "## oxsdb side by side",
        "",
        f"- machine: {machine()}",
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- commit: {git_commit()}",
        f"- command: `{shlex.join([sys.executable, *sys.argv])}`",
        f"- load average when the run started: {LOADAVG_AT_START} (anything else busy on the "
        f"machine skews every figure)",
        f"- versions: {first_line([oxsdb, '--version'])}; {first_line([OVSDB_SERVER, '--version'])}; "
        f"{first_line([ETCD, '--version'])}",
        f"- {args.rounds} round(s){', --quick' if args.quick else ''}; every contender started fresh "
        f"(empty database) for every scenario of every round, on loopback; the load generator "
        f"(oxsdb-bench) runs on the same machine; temporary directory on {fs[-1] if fs else '?'}",
        "- contenders: " + "; ".join(f"`{c}` ({DESCRIBE[c]})" for c in args.contenders),
        "- cpu_us_per_op: CPU of every process of the contender (oxsdb and etcd; all three raft "
        "members) per committed transaction / notification; peak RSS: the server's VmHWM after "
        "the snapshot (oxsdb, ovsdb-server, the raft leader; etcd's beside it)",
        "- ratios: against `ovsdb-server` standalone, oriented so that > 1 means better than "
        "ovsdb-server (rates: contender/ovsdb-server; times, CPU and RSS: ovsdb-server/contender); "
        "counters (errors, missed, duplicated, unexpected) are sums over all rounds; a round with a nonzero "
        "exit of oxsdb-bench or a dead server is counted in the figures but not in \"rounds ok\" "
        "and named in the notes",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# --check: each contender started, probed with ovsdb-client, stopped.


def check(env, tmp, contenders):
    failed = 0
    for c in contenders:
        d = tmp / "check" / c
        d.mkdir(parents=True)
        log(f"check {c}")
        running = None
        try:
            t0 = time.monotonic()
            running = START[c](env, d)
            log(f"  up in {time.monotonic() - t0:.1f} s, pids {running.pids}")
            if running.leader_ctl:
                st = cluster_status(running.leader_ctl) or {}
                log(f"  leader: role {st.get('Role')}, election timer {st.get('Election timer')} ms, "
                    f"{st.get('servers')} servers")
            if running.remote:
                r = run_quiet([OVSDB_CLIENT, "list-dbs", running.remote])
                log(f"  list-dbs: {r.stdout.split()} rc={r.returncode}")
                txn = json.dumps([DB, {"op": "insert", "table": "Logical_Switch",
                                       "row": {"name": "check"}}])
                r = run_quiet([OVSDB_CLIENT, "transact", running.remote, txn])
                log(f"  transact insert: {r.stdout.strip()} rc={r.returncode}")
                ok = r.returncode == 0 and '"uuid"' in r.stdout
                r = run_quiet([OVSDB_CLIENT, "transact", running.remote, json.dumps(
                    [DB, {"op": "select", "table": "Logical_Switch", "where": [],
                          "columns": ["name"]}])])
                log(f"  transact select: {r.stdout.strip()} rc={r.returncode}")
                ok = ok and '"check"' in r.stdout
            else:
                key = "Y2hlY2s="  # base64("check")
                req = urllib.request.Request(
                    running.endpoint + "/v3/kv/put", method="POST",
                    data=json.dumps({"key": key, "value": key}).encode())
                with urllib.request.urlopen(req, timeout=5) as resp:
                    log(f"  etcd put: {resp.read().decode().strip()}")
                req = urllib.request.Request(running.endpoint + "/v3/kv/range", method="POST",
                                             data=json.dumps({"key": key}).encode())
                with urllib.request.urlopen(req, timeout=5) as resp:
                    body = resp.read().decode()
                log(f"  etcd range: {body.strip()}")
                ok = '"count":"1"' in body
            rss = vm_hwm_mib(running.rss_pid)
            extra = {k: vm_hwm_mib(p) for k, p in running.extra_rss.items()}
            log(f"  peak RSS {fmt(rss)} MiB {' '.join(f'{k} {fmt(v)} MiB' for k, v in extra.items())}")
            if running.dead():
                ok = False
                log(f"  dead: {[p.name for p in running.dead()]}")
        except StartError as e:
            log(f"  did not start: {e}")
            ok = False
        finally:
            if running:
                for p in reversed(running.procs):
                    env.procs.stop(p)
                left = [p.pid for p in running.procs if p.poll() is None]
                gone = all(not Path(f"/proc/{p.pid}").exists() for p in running.procs)
                log(f"  stopped: exit statuses {[p.returncode for p in running.procs]}"
                    + ("" if gone and not left else f"; STILL RUNNING {left}"))
                ok = ok and gone and not left
        log(f"  {c}: {'OK' if ok else 'FAILED'}")
        failed += not ok
    return 1 if failed else 0


# ---------------------------------------------------------------------------


def parse_args():
    ap = argparse.ArgumentParser(
        description="Side-by-side benchmark of oxsdb and ovsdb-server (load: oxsdb-bench).")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every scenario (default 3)")
    ap.add_argument("--only", help="contenders, comma-separated: " + ",".join(CONTENDERS))
    ap.add_argument("--scenarios", help="scenarios, comma-separated: " + ",".join(SCENARIOS)
                    + ",condfanout (every --condfanout configuration, condfanout-MxKxD each)")
    ap.add_argument("--quick", action="store_true",
                    help="short runs to try the script: txn 2 s, fanout 200 monitors x 20 txns, "
                         "snapshot 10k only, bulk 1k only, condfanout with M/5 sessions, "
                         "200 writes, M/5 changes")
    ap.add_argument("--condfanout", default=CONDFANOUT_DEFAULT,
                    help="condfanout configurations M,K,D (sessions, clauses per condition, "
                         f"datapaths), ';'-separated (default {CONDFANOUT_DEFAULT!r})")
    ap.add_argument("--out", help="also write the report (markdown) to this file")
    ap.add_argument("--bench", help="use this oxsdb-bench binary (then only oxsdb is built)")
    ap.add_argument("--oxsdb", help="use this oxsdb binary (default target/release/oxsdb)")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build")
    ap.add_argument("--check", action="store_true",
                    help="only start each contender, probe it with ovsdb-client, read its RSS "
                         "and stop it (no oxsdb-bench needed)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    a = ap.parse_args()
    try:
        condfanout = add_condfanout(a.condfanout)
    except ValueError as e:
        ap.error(f"--condfanout: {e}")
    a.contenders = CONTENDERS if not a.only else [c.strip() for c in a.only.split(",") if c.strip()]
    bad = [c for c in a.contenders if c not in CONTENDERS]
    if bad:
        ap.error(f"unknown contender(s) {','.join(bad)}; known: {','.join(CONTENDERS)}")
    a.scenario_list = list(SCENARIOS) if not a.scenarios else [
        n for s in a.scenarios.split(",") if s.strip()
        for n in (condfanout if s.strip() == "condfanout" else [s.strip()])]
    bad = [s for s in a.scenario_list if s not in SCENARIOS]
    if bad:
        ap.error(f"unknown scenario(s) {','.join(bad)}; known: {','.join(SCENARIOS)}")
    if a.quick:
        skipped = [s for s in a.scenario_list if SCENARIOS[s]["quick"] is None]
        if skipped and a.scenarios:
            print(f"--quick: skipping {','.join(skipped)}", file=sys.stderr)
        a.scenario_list = [s for s in a.scenario_list if SCENARIOS[s]["quick"] is not None]
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    return a


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target").resolve()


def build(args):
    bins = ["--bin", "oxsdb"] + ([] if args.bench or args.check else ["--bin", "oxsdb-bench"])
    argv = ["cargo", "build", "--release", *bins]
    log(f"$ {shlex.join(argv)}  (in {REPO})")
    r = subprocess.run(argv, cwd=REPO, stdout=sys.stderr, stderr=sys.stderr)
    if r.returncode != 0:
        sys.exit(f"side-by-side: {shlex.join(argv)} failed with status {r.returncode}")


def main():
    args = parse_args()
    for tool in (ETCD, OVSDB_SERVER, OVSDB_TOOL, OVSDB_CLIENT, OVS_APPCTL, NB_SCHEMA, SB_SCHEMA):
        if not Path(tool).exists():
            sys.exit(f"side-by-side: {tool} is missing (Debian: etcd-server, openvswitch-common, "
                     f"ovn-central)")
    if not args.no_build:
        build(args)
    oxsdb = Path(args.oxsdb).resolve() if args.oxsdb else target_dir() / "release" / "oxsdb"
    bench = Path(args.bench).resolve() if args.bench else target_dir() / "release" / "oxsdb-bench"
    for b in [oxsdb] + ([] if args.check else [bench]):
        if not b.exists():
            sys.exit(f"side-by-side: {b} does not exist")

    # 1000 monitors need more than 1024 descriptors, in oxsdb-bench and the servers.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    plan = [(s, c) for s in args.scenario_list for c in args.contenders if runs_scenario(c, s)]
    if not plan and not args.check:
        sys.exit("side-by-side: nothing to run (etcd-raw runs only txn; --quick leaves out "
                 "snapshot-100k and bulk-10k)")
    global LOADAVG_AT_START
    LOADAVG_AT_START = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    if float(LOADAVG_AT_START.split()[0]) > 0.5 and not args.check:
        log(f"warning: load average {LOADAVG_AT_START}: something else is using the CPU")
    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix="oxsdb-side-by-side-"))
    log(f"working in {tmp}")

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in the background
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    env = Env(procs, oxsdb)
    results, interrupted, status = [], False, 0
    try:
        if args.check:
            status = check(env, tmp, args.contenders)
        else:
            n, total = 0, len(plan) * args.rounds
            for rnd in range(1, args.rounds + 1):
                for s, c in plan:
                    n += 1
                    spec = SCENARIOS[s]
                    log(f"[{n}/{total}] round {rnd}/{args.rounds}: {s} on {c}")
                    results.append(measure(env, bench, tmp, rnd, s,
                                           spec["quick"] if args.quick else spec["args"], c))
    except KeyboardInterrupt as e:
        interrupted = True
        log(f"interrupted ({str(e) or 'Ctrl-C'}): stopping everything")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        failed_runs = any(r["rc"] != 0 or r["problem"] or r["notes"] for r in results)
        if args.keep or interrupted or failed_runs or status:
            log(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    if args.check:
        return status

    report = [header(args, oxsdb, tempfile.gettempdir())]
    if interrupted:
        report.append("**Interrupted: partial results.**\n")
    for s in args.scenario_list:
        t = scenario_table(s, [r for r in results if r["scenario"] == s], args.contenders,
                           args.rounds)
        if t:
            report.append(t)
    raw = ["<details><summary>every run</summary>", "", "```"]
    for r in results:
        raw.append(json.dumps({k: r.get(k) for k in
                               ("scenario", "contender", "round", "rc", "data", "rss_mib",
                                "extra_rss", "problem", "notes", "argv")}))
    raw += ["```", "", "</details>", ""]
    text = "\n".join(report)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n" + "\n".join(raw))
        log(f"report written to {args.out}")
    bad = [r for r in results if r["rc"] != 0 or r["problem"] or r["notes"]]
    if bad:
        log(f"{len(bad)} of {len(results)} runs had errors (see the notes columns)")
    return 130 if interrupted else (1 if bad else 0)


if __name__ == "__main__":
    sys.exit(main())
