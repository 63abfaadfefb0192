#!/usr/bin/env bash
# The oxsdb test command: installs what the tests need (Debian packages, as
# root or with sudo) and runs every test. Usage: ./test.sh [cargo test args]
set -euo pipefail
cd "$(dirname "$0")"

# The real components the tests run against, from Debian's packages:
# etcd and etcdctl, openssl (certificates for etcd's TLS), ovs-pki (certificates for pssl:/ssl: tests), the reference
# ovsdb-server/ovsdb-client/ovsdb-tool, OVN (ovn-nbctl, ovn-northd, schemas), ovs-vsctl and vswitch.ovsschema, the Python IDL,
# and protoc with its well-known .proto files for etcd-client's build.
need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v ovsdb-server >/dev/null 2>&1 || need+=(openvswitch-common)
command -v ovs-pki >/dev/null 2>&1 || need+=(openvswitch-common)
[ -f /usr/share/openvswitch/vswitch.ovsschema ] || need+=(openvswitch-switch)
[ -f /usr/share/ovn/ovn-nb.ovsschema ] || need+=(ovn-central)
/usr/bin/python3 -c 'import ovs.db.idl' >/dev/null 2>&1 || need+=(python3-openvswitch)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Run everything (a failing test binary does not stop the others, so one
# run shows every failure); then one closing line that sums every test binary's results
# (cargo's own last line belongs to whichever binary ran last).
# A one-shot build gains nothing from incremental data, which would add
# gigabytes to target/ (a CI machine's disk once filled while linking).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
echo "test.sh: $(df -h --output=avail . | tail -1 | tr -d ' ') free on the build disk"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --all-targets --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# The real-client suites again with oxsdb on etcd (an etcd member started by
# each test binary, a key prefix per server).
OXSDB_CLIENT_TESTS_STORE=etcd cargo test --no-fail-fast --test clients_ovsdb_client --test clients_ovn \
  --test clients_vsctl --test clients_python_idl --test group_commit \
  --test monitor_cond_change "$@" 2>&1 | tee -a "$log" || status=$?
# The README's quick start, run as written (it builds the release binary)
# with its outputs compared: the front door must never break unnoticed.
qs_failed=0
/usr/bin/python3 tools/readme_quickstart.py 2>&1 | tee -a "$log" || { status=1; qs_failed=1; }
echo "test.sh: target/ holds $(du -sh target 2>/dev/null | cut -f1), $(df -h --output=avail . | tail -1 | tr -d ' ') left free"
awk -v qs_failed="$qs_failed" '
     /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^readme-quickstart: [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
     END { printf "oxsdb: %d passed, %d failed\n", p, f + qs_failed }' "$log"
exit "$status"
