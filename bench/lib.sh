# Helpers shared by the benchmark scripts (bench/e2e.sh, bench/image.sh): finding the sandrun
# binary, how busy the CPUs are, and the statistics of a file of timings. Sourced, not run.

# locate_sandrun BUILD_DIR WHY_ROOT: sets SANDRUN to the built binary (BUILD_DIR relative to the
# current directory or to the repository); dies unless run as root with bash 5.
locate_sandrun() {
  local here build=$1
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  if [[ -x $build/sandrun ]]; then
    SANDRUN=$(cd "$build" && pwd)/sandrun
  elif [[ -x $here/../$build/sandrun ]]; then
    SANDRUN=$(cd "$here/../$build" && pwd)/sandrun
  else
    die "no sandrun binary in $build/ (build it first: cmake --build $build)"
  fi
  [[ $(id -u) == 0 ]] || die "must run as root ($2)"
  (( BASH_VERSINFO[0] >= 5 )) || die "needs bash 5 (EPOCHREALTIME)"
}

# How busy the CPUs are over SECONDS (default 1; everything on the machine, in %).
cpu_busy() {
  local a b
  a=$(head -1 /proc/stat); sleep "${1:-1}"; b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { na = split(a, x); split(b, y); t = 0
    for (i = 2; i <= na; i++) t += y[i] - x[i]
    idle = (y[5] - x[5]) + (y[6] - x[6]); printf "%.0f\n", t ? 100 * (t - idle) / t : 0 }'
}

# Waits (at most 5 s) until the CPUs are idle again, so that the work one command leaves
# behind (orphaned inits reaped by PID 1, namespaces freed, the kernel writing back) is not
# billed to the next one measured.
settle() {
  local i
  for ((i = 0; i < 25; i++)); do
    (( $(cpu_busy 0.2) < 10 )) && return
  done
}

# stats FILE (one time in us per line) -> "median p90 count" in ms, or "fail" when a run failed
# or there is no data.
stats() {
  [[ -s $1 ]] || { echo fail; return; }
  grep -q fail "$1" && { echo fail; return; }
  sort -n "$1" | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    i = int(NR * 0.9 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
    printf "%.2f %.2f %d\n", m / 1000, v[i] / 1000, NR }'
}
