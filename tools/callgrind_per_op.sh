#!/usr/bin/env bash
# User-space instructions the server spends per operation, counted by
# callgrind: a measure that does not drift with the machine's speed, as CPU
# time does on a shared VM (which has no hardware counters). Use it to
# compare two builds of oxsdb on the same load; speed claims still come from
# bench/side-by-side.py.
#
# Usage: tools/callgrind_per_op.sh SCENARIO BINARY...
#   SCENARIO: txn      (oxsdb-bench txn --clients 8 --seconds 8; per committed transaction)
#             bulk     (oxsdb-bench bulk --rows 1000 --repeat 5; per row inserted or deleted)
#             etcd-txn (txn, with oxsdb on a fresh one-member etcd, 10 s; per
#                       committed transaction; etcd itself is not counted)
# Each BINARY is an oxsdb binary (copy target/release/oxsdb aside to keep one).
# Needs valgrind (apt-get install valgrind) and a release oxsdb-bench.
# Start-up is not counted: instrumentation is switched on once the server
# listens. Profiles stay in $TMPDIR for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: $0 txn|bulk|etcd-txn BINARY...}
shift
[ $# -gt 0 ] || { echo "usage: $0 txn|bulk|etcd-txn BINARY..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "$0: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
bench=target/release/oxsdb-bench
[ -x "$bench" ] || cargo build --release --bin oxsdb-bench
out=${TMPDIR:-/tmp}/oxsdb-callgrind.$$
mkdir -p "$out"
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
for bin in "$@"; do
  port=$(free_port)
  name=$(basename "$bin")
  store=(--store=memory)
  etcd_pid=""
  if [ "$scenario" = etcd-txn ]; then
    command -v etcd >/dev/null || { echo "$0: etcd-txn needs etcd (apt-get install etcd-server)" >&2; exit 2; }
    client=$(free_port)
    peer=$(free_port)
    rm -rf "$out/$name.etcd"
    etcd --name m0 --data-dir "$out/$name.etcd" \
      --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "m0=http://127.0.0.1:$peer" --logger zap --log-level warn >"$out/$name.etcd.log" 2>&1 &
    etcd_pid=$!
    sleep 2
    store=(--store=etcd "--etcd-endpoints=http://127.0.0.1:$client")
  fi
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/$name.out" \
    "$bin" "${store[@]}" --remote="ptcp:$port:127.0.0.1" --unixctl="$out/$name.ctl" \
    /usr/share/ovn/ovn-nb.ovsschema >"$out/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    grep -q listening "$out/$name.log" 2>/dev/null && break
    sleep 0.2
  done
  callgrind_control -i on "$pid" >/dev/null 2>&1
  case "$scenario" in
    txn|etcd-txn)
      seconds=8
      [ "$scenario" = etcd-txn ] && seconds=10
      n=$("$bench" --remote "tcp:127.0.0.1:$port" txn --clients 8 --seconds "$seconds" 2>"$out/$name.bench.log" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["committed"])')
      what="transaction" ;;
    bulk)
      "$bench" --remote "tcp:127.0.0.1:$port" bulk --rows 1000 --repeat 5 >/dev/null 2>"$out/$name.bench.log"
      n=10000
      what="row inserted or deleted" ;;
    *) kill "$pid"; echo "$0: unknown scenario $scenario" >&2; exit 2 ;;
  esac
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  if [ -n "$etcd_pid" ]; then
    kill "$etcd_pid"
    wait "$etcd_pid" 2>/dev/null || true
  fi
  ir=$(callgrind_annotate "$out/$name.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "$name: $ir instructions, $n ops, $((ir / n)) per $what ($out/$name.out)"
done
