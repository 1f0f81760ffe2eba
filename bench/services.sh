#!/usr/bin/env bash
# services.sh: services start in parallel (issue 6). A job with 3 services whose ready checks
# each take 1 s (`sleep 1`) against the same job with 1 such service and with none; the
# job's start is measured from the run's start to the job's first output line, and the
# run's wall time. Target: 3 services start in about 1 s, not 3.
# Usage: bench/services.sh [BUILD_DIR]. Runs as root; its temp dir is removed on exit.
# Knobs: SVC_ROUNDS (5; the median is reported).
set -uo pipefail
export LC_ALL=C
ROUNDS=${SVC_ROUNDS:-5}
die() { echo "services.sh: $*" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
locate_sandrun "${1:-build}" "services need it"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sandrun-services.XXXXXX") || die "mktemp failed"
trap '"$SANDRUN" --root "$TMP/root" cleanup >/dev/null 2>&1; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
SR=("$SANDRUN" --root "$TMP/root")

jobfile() {  # jobfile FILE NSERVICES
  {
    echo '[jobs.app]'
    echo 'run = "echo started"'
    for ((i = 1; i <= $2; i++)); do
      echo "[jobs.app.services.s$i]"
      echo 'image = "busybox"'
      echo 'command = ["sleep", "1000"]'
      echo 'ready = { run = "sleep 1", interval = "100ms", timeout = "30s" }'
    done
  } >"$1"
}
for n in 0 1 3; do jobfile "$TMP/s$n.toml" "$n"; done
"${SR[@]}" run --out "$TMP/out" "$TMP/s0.toml" >/dev/null 2>&1 || die "a plain job failed"

now_us() { echo "${EPOCHREALTIME/./}"; }
echo "sandrun services benchmark, $(date -u +%F) ($(date -u +%T) UTC)"
echo "machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r)"
echo "median of $ROUNDS rounds: ms from the run's start to the job's first line, and the run's wall time"
echo
for ((r = 1; r <= ROUNDS; r++)); do
  for n in 0 1 3; do
    settle
    t0=$(now_us)
    first=""
    while IFS= read -r line; do
      [[ -z $first && $line == *started* ]] && first=$(now_us)
    done < <("${SR[@]}" run --progress plain --out "$TMP/out" "$TMP/s$n.toml" 2>/dev/null)
    t1=$(now_us)
    [[ -n $first ]] || die "the job with $n services did not start: $(cat "$TMP"/out/logs/*.log 2>/dev/null | tail -5)"
    echo $((first - t0)) >>"$TMP/start-$n"
    echo $((t1 - t0)) >>"$TMP/wall-$n"
  done
done
printf '%-10s %14s %12s\n' services "job start ms" "wall ms"
for n in 0 1 3; do
  printf '%-10s %14s %12s\n' "$n" "$(stats "$TMP/start-$n" | cut -d' ' -f1)" "$(stats "$TMP/wall-$n" | cut -d' ' -f1)"
done
