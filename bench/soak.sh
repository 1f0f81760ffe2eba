#!/usr/bin/env bash
# soak.sh: does sandrun leak over a long run? Usage: bench/soak.sh [BUILD_DIR]
#
# 1. One `sandrun run -j 8` of SOAK_JOBS (10,000) short jobs. sandrun's own process is sampled
#    every 100 finished jobs (counted from its JSON events): open fds, RSS, threads, the
#    mounts under its state dir, its cgroups (the `sandrun` subtree of every hierarchy) and
#    its slot dirs. The first thousand jobs are compared with the last thousand: for counts
#    the smallest value seen in each (up to 8 containers are in flight at any sample, each
#    with its fds and cgroups; what leaks raises the floor), for RSS the largest.
# 2. SOAK_EXECS (2,000) `sandrun exec` one after the other: after every 100 of them, what is
#    left on the host (mounts, cgroups, slot dirs, files in the state dir) and the peak RSS of
#    each exec process (GNU time's %M), first thousand against last thousand.
#
# Targets (issue 15): no growth of fds, mounts, cgroups or slot dirs, and less than 1 MiB of
# RSS growth, between the first and the last thousand. Prints a table and one line per target;
# exits 1 when a target is missed. Runs as root; everything goes to one temp dir, removed on
# exit. Knobs: SOAK_JOBS, SOAK_EXECS, SOAK_PARALLEL (8). Figures: docs/benchmarks.md.
set -uo pipefail
export LC_ALL=C

JOBS=${SOAK_JOBS:-10000}
EXECS=${SOAK_EXECS:-2000}
PAR=${SOAK_PARALLEL:-8}

die() { echo "soak.sh: $*" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
locate_sandrun "${1:-build}" "containers need it"
[[ -x /usr/bin/time ]] || die "needs GNU time (/usr/bin/time, package time)"
(( JOBS >= 2000 && EXECS >= 2000 )) || die "SOAK_JOBS and SOAK_EXECS must be at least 2000 (first and last thousand)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sandrun-soak.XXXXXX") || die "mktemp failed"
ROOT=$TMP/root
cleanup() {
  trap - EXIT INT TERM
  [[ -n ${RUN_PID:-} ]] && kill "$RUN_PID" 2>/dev/null && wait "$RUN_PID" 2>/dev/null
  "$SANDRUN" --root "$ROOT" cleanup >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# sandrun's cgroups of this state dir only (other sandrun runs may share the machine): a run's
# cgroup is sandrun/PID-START-TAG, TAG the FNV-1a hash of the state dir (runner/engine/engine.cc).
tag=2166136261
for ((i = 0; i < ${#ROOT}; i++)); do
  printf -v c '%d' "'${ROOT:i:1}"
  tag=$(( ((tag ^ c) * 16777619) & 0xFFFFFFFF ))
done
printf -v TAG '%08x' "$tag"
mounts() { awk -v r="$ROOT" 'index($5, r) == 1' /proc/self/mountinfo | wc -l; }
cgroups() { find /sys/fs/cgroup -path "*/sandrun/*-$TAG*" -type d 2>/dev/null | wc -l; }
slots() { find "$ROOT/slots" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
files() { find "$ROOT" -xdev 2>/dev/null | wc -l; }

echo "sandrun soak, $(date -u '+%Y-%m-%d (%H:%M:%S UTC)')"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
echo "sandrun: $SANDRUN"
"$SANDRUN" --root "$ROOT" exec -- /bin/true >/dev/null 2>&1 || die "sandrun exec -- /bin/true failed"

# ---- 1. one long run ---------------------------------------------------------------------------
JF=$TMP/jobs.toml
{
  echo "[defaults]"
  echo "timeout = \"60s\""
  for ((i = 1; i <= JOBS; i++)); do printf '[jobs.j%d]\ncommand = ["/bin/sh", "-c", "echo %d"]\n' "$i" "$i"; done
} >"$JF"
SAMPLES=$TMP/run-samples  # finished fds rss_kib threads mounts cgroups slots
: >"$SAMPLES"
# The sampler, called by the reader of the events: awk, so that sandrun's JSON events are read
# as fast as they come (a slow reader makes sandrun hold them, which is not a leak).
cat >"$TMP/sample.sh" <<EOF
#!/usr/bin/env bash
# sample.sh PID FINISHED
fds=\$(find "/proc/\$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
rss=\$(awk '/^VmRSS:/ { print \$2 }' "/proc/\$1/status" 2>/dev/null)
thr=\$(awk '/^Threads:/ { print \$2 }' "/proc/\$1/status" 2>/dev/null)
mounts=\$(awk -v r="$ROOT" 'index(\$5, r) == 1' /proc/self/mountinfo | wc -l)
cgroups=\$(find /sys/fs/cgroup -path "*/sandrun/*-$TAG*" -type d 2>/dev/null | wc -l)
slots=\$(find "$ROOT/slots" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
[[ -n \$rss ]] && echo "\$2 \$fds \$rss \$thr \$mounts \$cgroups \$slots" >>"$SAMPLES"
EOF
echo "run: $JOBS jobs, -j $PAR" >&2
t0=$SECONDS
mkfifo "$TMP/events" || die "mkfifo failed"
"$SANDRUN" --root "$ROOT" run -j "$PAR" --format json --out "$TMP/out" "$JF" >"$TMP/events" 2>"$TMP/run.err" &
RUN_PID=$!
finished=$(awk -v pid="$RUN_PID" -v jobs="$JOBS" -v sampler="$TMP/sample.sh" '
  /"event":"job_finished"/ { n++; if (n % 100 == 0 && n < jobs) system("bash " sampler " " pid " " n) }
  END { print n + 0 }' <"$TMP/events")
wait "$RUN_PID"; run_status=$?; RUN_PID=
run_secs=$((SECONDS - t0))
(( run_status == 0 && finished == JOBS )) ||
  die "the run failed (status $run_status, $finished of $JOBS jobs finished): $(tail -3 "$TMP/run.err")"
after_run="mounts $(mounts), cgroups $(cgroups), slot dirs $(slots) once it ended"

# ---- 2. many execs -----------------------------------------------------------------------------
echo "exec: $EXECS one after the other" >&2
EXEC_SAMPLES=$TMP/exec-samples  # n mounts cgroups slots files
RSS=$TMP/exec-rss               # n peak_rss_kib
: >"$EXEC_SAMPLES"; : >"$RSS"
t0=$SECONDS
for ((i = 1; i <= EXECS; i++)); do
  /usr/bin/time -f "$i %M" -a -o "$RSS" "$SANDRUN" --root "$ROOT" exec -- /bin/true >/dev/null 2>>"$TMP/exec.err" ||
    die "exec $i failed: $(tail -3 "$TMP/exec.err")"
  (( i % 100 == 0 )) && echo "$i $(mounts) $(cgroups) $(slots) $(files)" >>"$EXEC_SAMPLES"
done
exec_secs=$((SECONDS - t0))

# ---- report ------------------------------------------------------------------------------------
# first/last: the largest (smallest) value of column C among samples whose first column is in [lo, hi].
window_max() {  # FILE COL LO HI
  awk -v c="$2" -v lo="$3" -v hi="$4" '$1 >= lo && $1 <= hi && (m == "" || $c > m) { m = $c } END { print (m == "" ? "?" : m) }' "$1"
}
window_min() {  # FILE COL LO HI
  awk -v c="$2" -v lo="$3" -v hi="$4" '$1 >= lo && $1 <= hi && (m == "" || $c < m) { m = $c } END { print (m == "" ? "?" : m) }' "$1"
}
window_median() {  # FILE COL LO HI
  awk -v c="$2" -v lo="$3" -v hi="$4" '$1 >= lo && $1 <= hi { print $c }' "$1" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) printf "%d\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else print "?" }'
}
missed=0
row() {  # NAME FIRST LAST LIMIT UNIT
  local growth=$(($3 - $2)) verdict=met
  (( growth > $4 )) && { verdict="NOT met"; missed=1; }
  printf "%-34s %10s %10s %+9d %s   (target: growth <= %s%s) %s\n" "$1" "$2" "$3" "$growth" "$5" "$4" "$5" "$verdict"
}
echo
echo "1. sandrun run -j $PAR, $JOBS jobs in ${run_secs}s: in the first and in the last thousand, the smallest count and the largest RSS"
printf "%-34s %10s %10s %9s\n" "" "first 1000" "last 1000" "growth"
lo2=$((JOBS - 1000))
row "open fds of sandrun" "$(window_min "$SAMPLES" 2 1 1000)" "$(window_min "$SAMPLES" 2 "$lo2" "$JOBS")" 0 ""
row "RSS of sandrun (KiB)" "$(window_max "$SAMPLES" 3 1 1000)" "$(window_max "$SAMPLES" 3 "$lo2" "$JOBS")" 1024 " KiB"
row "threads of sandrun" "$(window_min "$SAMPLES" 4 1 1000)" "$(window_min "$SAMPLES" 4 "$lo2" "$JOBS")" 0 ""
row "mounts under the state dir" "$(window_min "$SAMPLES" 5 1 1000)" "$(window_min "$SAMPLES" 5 "$lo2" "$JOBS")" 0 ""
row "cgroups of this state dir" "$(window_min "$SAMPLES" 6 1 1000)" "$(window_min "$SAMPLES" 6 "$lo2" "$JOBS")" 0 ""
row "slot dirs" "$(window_min "$SAMPLES" 7 1 1000)" "$(window_min "$SAMPLES" 7 "$lo2" "$JOBS")" 0 ""
echo "  ($after_run)"
echo
echo "2. sandrun exec x $EXECS in ${exec_secs}s: left on the host after the 100th..1000th and after the last thousand"
printf "%-34s %10s %10s %9s\n" "" "first 1000" "last 1000" "growth"
lo2=$((EXECS - 1000 + 1))
row "mounts under the state dir" "$(window_max "$EXEC_SAMPLES" 2 1 1000)" "$(window_max "$EXEC_SAMPLES" 2 "$lo2" "$EXECS")" 0 ""
row "cgroups of this state dir" "$(window_max "$EXEC_SAMPLES" 3 1 1000)" "$(window_max "$EXEC_SAMPLES" 3 "$lo2" "$EXECS")" 0 ""
row "slot dirs" "$(window_max "$EXEC_SAMPLES" 4 1 1000)" "$(window_max "$EXEC_SAMPLES" 4 "$lo2" "$EXECS")" 0 ""
row "files in the state dir" "$(window_max "$EXEC_SAMPLES" 5 1 1000)" "$(window_max "$EXEC_SAMPLES" 5 "$lo2" "$EXECS")" 0 ""
row "peak RSS of one exec, median (KiB)" "$(window_median "$RSS" 2 1 1000)" "$(window_median "$RSS" 2 "$lo2" "$EXECS")" 1024 " KiB"
echo
if (( missed )); then echo "soak: a target was NOT met"; exit 1; fi
echo "soak: every target met"
