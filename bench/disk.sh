#!/usr/bin/env bash
# disk.sh: what the disk limit (a loop-mounted ext4 per container slot, docs/security.md#disk)
# costs. Usage: bench/disk.sh [BUILD_DIR]
#
# The same sandrun binary twice: as this host runs it (the disk limit on: loop devices and
# e2fsprogs), and as a host without e2fsprogs runs it (mke2fs covered by an empty,
# non-executable file in a private mount namespace: no limit, the writable layer in the slot's
# plain directories). Both are started through the same `unshare -m bash` wrapper. Three measures, each a pair of the two:
#  1. latency: DISK_EXECS (40) paired `sandrun exec -- /bin/true` runs, alternating; the median
#     of the differences, and the medians. exec is a process per container: each one makes
#     its slot's file system (copied from the size's template) and removes it.
#  2. throughput: `sandrun run -j 8` of DISK_JOBS (500) `/bin/true` jobs: containers/s. A
#     slot keeps its file system from one container to the next.
#  3. idle: `sandrun run -j 200` of 200 jobs that sleep 3 s: the run's wall time (3 s of it
#     sleeping), the host memory (MemAvailable) and state-dir bytes it took at its peak.
# Targets (issue 15): none is given in numbers; the figures go to docs/benchmarks.md. Runs as
# root; everything goes to one temp dir on the machine's disk, removed on exit.
set -uo pipefail
export LC_ALL=C

EXECS=${DISK_EXECS:-40}
JOBS=${DISK_JOBS:-500}
IDLE=${DISK_IDLE:-200}

die() { echo "disk.sh: $*" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
locate_sandrun "${1:-build}" "loop devices and containers need it"
[[ -w /dev/loop-control ]] || die "no /dev/loop-control: nothing to compare (modprobe loop)"
MKE2FS=$(command -v mke2fs) || die "no mke2fs (e2fsprogs): nothing to compare"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sandrun-disk.XXXXXX") || die "mktemp failed"
cleanup() {
  trap - EXIT INT TERM
  for r in "$TMP/on" "$TMP/off"; do "$SANDRUN" --root "$r" cleanup >/dev/null 2>&1; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
: >"$TMP/no-mke2fs"
chmod 0644 "$TMP/no-mke2fs"

# on|off ARGS...: sandrun with its own state dir per mode, both started the same way (a bash in
# a private mount namespace); `off` binds the empty file over every mke2fs sandrun looks for.
sr() {
  local mode=$1; shift
  unshare -m --propagation private bash -c '
    mode=$1 f=$2; shift 2
    if [[ $mode == off ]]; then
      for p in /usr/sbin/mke2fs /sbin/mke2fs /usr/local/sbin/mke2fs /usr/bin/mke2fs /bin/mke2fs; do
        [[ -e $p && ! -L $p ]] && mount --bind "$f" "$p"
      done
    fi
    exec "$@"' disk-"$mode" "$mode" "$TMP/no-mke2fs" "$SANDRUN" --root "$TMP/$mode" "$@"
}

for m in on off; do
  sr $m exec -- /bin/true >/dev/null 2>&1 || die "sandrun exec ($m) failed: $(sr $m exec -- /bin/true 2>&1 | tail -3)"
done
mech_on=$(sr on exec --dry-run -- /bin/true 2>/dev/null | sed -n 's/.*"disk_mechanism": "\([^"]*\)".*/\1/p')
mech_off=$(sr off exec --dry-run -- /bin/true 2>/dev/null | sed -n 's/.*"disk_mechanism": "\([^"]*\)".*/\1/p')
[[ $mech_on == *loop* ]] || die "the disk limit is not on in the 'on' runs (disk_mechanism: ${mech_on:-none})"
[[ $mech_on != "$mech_off" ]] || die "the 'off' runs still enforce the disk limit ($mech_off)"

echo "sandrun disk limit, $(date -u '+%Y-%m-%d (%H:%M:%S UTC)')"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), state dir on $(stat -f -c %T "$TMP")"
echo "sandrun: $SANDRUN"
echo "on:  $mech_on"
echo "off: ${mech_off:-none (no mke2fs)}"
echo

now_us() { echo "${EPOCHREALTIME/./}"; }

# 1. Latency, paired.
settle
: >"$TMP/lat"
for ((i = 0; i < EXECS; i++)); do
  t0=$(now_us); sr on exec -- /bin/true >/dev/null 2>&1 || die "exec (on) failed"; t1=$(now_us)
  sr off exec -- /bin/true >/dev/null 2>&1 || die "exec (off) failed"; t2=$(now_us)
  echo "$((t1 - t0)) $((t2 - t1))" >>"$TMP/lat"
done
sort -k1,1n "$TMP/lat" | awk '{ print $1 }' >"$TMP/lat.on"
sort -k2,2n "$TMP/lat" | awk '{ print $2 }' >"$TMP/lat.off"
awk '{ print $1 - $2 }' "$TMP/lat" >"$TMP/lat.diff"
read -r on_m on_p _ < <(stats "$TMP/lat.on")
read -r off_m off_p _ < <(stats "$TMP/lat.off")
diff_m=$(sort -n "$TMP/lat.diff" | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f", m / 1000 }')
printf "exec -- /bin/true: %+.2f ms per exec with the disk limit (median of %d paired runs; medians %.2f vs %.2f ms, p90 %.2f vs %.2f)\n" \
  "$diff_m" "$EXECS" "$on_m" "$off_m" "$on_p" "$off_p"

# 2. Throughput.
{
  for ((i = 0; i < JOBS; i++)); do printf '[jobs.t%d]\ncommand = ["/bin/true"]\n' "$i"; done
} >"$TMP/true.toml"
for m in on off; do
  sync; settle
  t0=$(now_us)
  sr $m run -j 8 --quiet --out "$TMP/out-$m" "$TMP/true.toml" >/dev/null 2>&1 || die "run (throughput, $m) failed"
  t1=$(now_us)
  eval "tp_$m=\$(awk -v n=$JOBS -v us=$((t1 - t0)) 'BEGIN { printf \"%.0f\", n / (us / 1e6) }')"
  rm -rf "$TMP/out-$m"
done
printf "run -j 8, %d x /bin/true: %s containers/s with the disk limit, %s without (%.2fx)\n" "$JOBS" "$tp_on" "$tp_off" \
  "$(awk -v a="$tp_on" -v b="$tp_off" 'BEGIN { print a / b }')"

# 3. Idle containers.
{
  for ((i = 0; i < IDLE; i++)); do printf '[jobs.s%d]\ncommand = ["sleep", "3"]\n' "$i"; done
} >"$TMP/idle.toml"
avail() { awk '/MemAvailable/ { print $2 }' /proc/meminfo; }
used() { df -k --output=used "$TMP" | tail -1; }
for m in on off; do
  sync; settle
  a0=$(avail); u0=$(used); amin=$a0; umax=$u0
  t0=$(now_us)
  sr $m run -j "$IDLE" --quiet --out "$TMP/out-$m" "$TMP/idle.toml" >/dev/null 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    a=$(avail); u=$(used)
    (( a < amin )) && amin=$a
    (( u > umax )) && umax=$u
    sleep 0.2
  done
  wait "$pid" || die "run (idle, $m) failed"
  t1=$(now_us)
  eval "idle_t_$m=$(awk -v us=$((t1 - t0)) 'BEGIN { printf "%.1f", us / 1e6 }')"
  eval "idle_m_$m=$(( (a0 - amin) / 1024 ))"
  eval "idle_d_$m=$(( (umax - u0) / 1024 ))"
  rm -rf "$TMP/out-$m"
done
printf "run -j %d, %d x sleep 3: %s s with the disk limit, %s s without; host memory %s vs %s MiB, state dir %s vs %s MiB at the peak\n" \
  "$IDLE" "$IDLE" "$idle_t_on" "$idle_t_off" "$idle_m_on" "$idle_m_off" "$idle_d_on" "$idle_d_off"
