#!/usr/bin/env bash
# ci/offline-net.sh, the guard the host stages run ctest in: a command that reaches only
# loopback and the namespace's own address passes and keeps its exit status; one that tries an
# address off the machine (198.51.100.1, TEST-NET-2: documentation only, and the attempt cannot
# leave the namespace anyway) fails the run, saying how many packets it sent. Needs root.
# Usage: offline_net_test.sh SOURCE_DIR
set -uo pipefail
guard=$1/ci/offline-net.sh
# Without root the guard runs commands as they are: the attempt below would then really go out.
if [[ $(id -u) -ne 0 ]]; then
  echo "needs root (it makes a network namespace)"
  [[ ${CI:-} == true || ${SANDRUN_TESTS_MUST_WORK:-} == 1 ]] && exit 1
  exit 77
fi
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# Connections to loopback and to the namespace's own address (closed ports: refused at once).
out=$(bash "$guard" bash -c '
  ip -4 -o addr show scope global | grep -q " 192.0.2.1/24 " || exit 3
  for a in 127.0.0.1 192.0.2.1; do (exec 3<>/dev/tcp/$a/9) 2>/dev/null; done
  exit 7' 2>&1)
status=$?
((status != 3)) || fail "the namespace has no 192.0.2.1/24 for tests to serve from: $out"
((status == 7)) || fail "a command that stays on the machine should keep its exit status 7, got $status: $out"
[[ $out != *"sent"* ]] || fail "nothing left the machine, yet: $out"

out=$(bash "$guard" bash -c 'timeout 2 bash -c "exec 3<>/dev/tcp/198.51.100.1/9" 2>/dev/null; exit 0' 2>&1)
status=$?
((status != 0)) || fail "a connection attempt to 198.51.100.1 passed unnoticed"
[[ $out == *"sent"*"packet(s) toward addresses off this machine"* ]] || fail "the guard did not say what happened: $out"

((fails == 0)) || exit 1
echo "offline-net: a local command passes with its status; an attempt off the machine fails the run"
