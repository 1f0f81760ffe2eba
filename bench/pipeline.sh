#!/usr/bin/env bash
# pipeline.sh: what the CI runner features cost (issue 5), beside bwrap and a bare /bin/true,
# all measured in one run on this machine. Usage: bench/pipeline.sh [BUILD_DIR]
#
# N jobs of /bin/true, PAR at a time, as: plain jobs (the baseline); the same with
# --format json (every event a JSON line); a graph (PAR chains, each job needing the one
# before); jobs that each collect one artifact (the container is held after its command, its
# /tmp read through /proc/PID/root); jobs with a copy-on-write overlay of this repository as
# their workspace; and jobs with retries = 1 that fail once (two containers each). Peers: the
# same N /bin/true, PAR at a time, bare and under bwrap (when installed).
#
# Runs as root. Everything it writes goes to one temp dir ($TMPDIR or /tmp), removed on exit.
# Knobs: PIPE_JOBS (200), PIPE_PARALLEL (8), PIPE_ROUNDS (3; the median is reported).
set -uo pipefail
export LC_ALL=C

N=${PIPE_JOBS:-200}
PAR=${PIPE_PARALLEL:-8}
ROUNDS=${PIPE_ROUNDS:-3}

die() { echo "pipeline.sh: $*" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
locate_sandrun "${1:-build}" "containers need it"
REPO=$(cd "$here/.." && pwd)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sandrun-pipeline.XXXXXX") || die "mktemp failed"
cleanup() { "$SANDRUN" --root "$TMP/root" cleanup >/dev/null 2>&1; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

now_us() { echo "${EPOCHREALTIME/./}"; }
# timed FILE CMD...: the wall time of CMD in us appended to FILE ("fail" when it failed).
timed() {
  local file=$1; shift
  local t0 rc t1; t0=$(now_us)
  "$@" >/dev/null 2>&1
  rc=$?; t1=$(now_us)
  if (( rc != 0 )); then echo fail >>"$file"; else echo $((t1 - t0)) >>"$file"; fi
}
xargs_n() { local n=$1; shift; seq 1 "$n" | xargs -P "$PAR" -I{} "$@" >/dev/null 2>&1; }

# jobfile FILE KIND: N jobs j1..jN of the kind.
jobfile() {
  local f=$1 kind=$2 i cmd='command = ["/bin/true"]'
  {
    echo '[defaults]'
    case $kind in
      overlay) echo "workspace = { path = \"$REPO\", mode = \"overlay\" }" ;;
      artifacts) echo 'artifacts = ["/tmp/result.txt"]'
                 cmd='command = ["sh", "-c", "echo result > /tmp/result.txt"]' ;;
      retry) echo 'retries = 1'
             echo "volumes = [\"$TMP/marks:/marks\"]"
             cmd='command = ["sh", "-c", "test -e /marks/$HOSTNAME || { touch /marks/$HOSTNAME; exit 1; }"]' ;;
    esac
    for ((i = 1; i <= N; i++)); do
      echo "[jobs.j$i]"
      echo "$cmd"
      if [[ $kind == graph ]] && (( i > PAR )); then echo "needs = [\"j$((i - PAR))\"]"; fi
    done
  } >"$f"
}

mkdir -p "$TMP/marks"
for k in plain graph artifacts overlay retry; do jobfile "$TMP/$k.toml" "$k"; done

SR=("$SANDRUN" --root "$TMP/root")
"${SR[@]}" exec -- /bin/true >/dev/null 2>&1 || die "sandrun exec -- /bin/true failed"
have() { command -v "$1" >/dev/null 2>&1; }
BWRAP=()
if have bwrap; then
  BWRAP=(bwrap --unshare-all --die-with-parent --ro-bind "$(ls -d "$TMP"/root/layers/sha256/* | head -1)" / --proc /proc --dev /dev)
fi

run_kind() {  # run_kind KIND FILE
  case $1 in
    bare) xargs_n "$N" /bin/true ;;
    bwrap) xargs_n "$N" "${BWRAP[@]}" /bin/true ;;
    json) "${SR[@]}" run -j "$PAR" --progress plain --out "$TMP/out" --format json "$TMP/plain.toml" ;;
    retry) rm -f "$TMP"/marks/*; "${SR[@]}" run -j "$PAR" --progress plain --out "$TMP/out" "$TMP/retry.toml" ;;
    *) "${SR[@]}" run -j "$PAR" --progress plain --out "$TMP/out" "$TMP/$1.toml" ;;
  esac
}

kinds=(bare plain json graph artifacts overlay retry)
((${#BWRAP[@]})) && kinds=(bare bwrap "${kinds[@]:1}")
echo "sandrun pipeline benchmark, $(date -u +%F) ($(date -u +%T) UTC)"
echo "machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r)"
echo "$N jobs, $PAR at a time, median of $ROUNDS rounds (rounds interleave the kinds)"
echo
for k in "${kinds[@]}"; do run_kind "$k" >/dev/null 2>&1; done  # warm-up
for ((r = 1; r <= ROUNDS; r++)); do
  for k in "${kinds[@]}"; do
    settle
    timed "$TMP/t-$k" run_kind "$k"
  done
done
base=$(stats "$TMP/t-plain" | cut -d' ' -f1)
printf '%-10s %10s %12s %12s\n' kind "wall ms" "jobs/s" "vs plain"
for k in "${kinds[@]}"; do
  s=$(stats "$TMP/t-$k" | cut -d' ' -f1)
  if [[ $s == fail ]]; then printf '%-10s %10s\n' "$k" fail; continue; fi
  awk -v k="$k" -v s="$s" -v n="$N" -v b="$base" 'BEGIN { printf "%-10s %10.1f %12.0f %11.2fx\n", k, s, n / (s / 1000), s / b }'
done
