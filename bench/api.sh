#!/usr/bin/env bash
# api.sh: `sandrun serve` against the Engine API services of the peers, side by side in one run,
# through the same clients. Usage: bench/api.sh [BUILD_DIR]
#
# Engines (each on its own socket and state dir under one temp dir, removed on exit):
#  - sandrun serve (BUILD_DIR/sandrun);
#  - dockerd (Debian's docker.io) with its own containerd, socket, data root and exec root, and
#    `--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false`: it
#    touches no host networking;
#  - podman system service (when podman is installed), rootful, cgroupfs, runc, file events.
# Every engine runs the same busybox rootfs (sandrun's built-in image; the peers `docker
# import` a tarball of it as `busybox`), every container with `--network none` (sandrun's
# default; the peers' default bridge would touch the host's firewall).
# Clients: Debian's docker CLI (/usr/bin/docker, never /usr/local/bin's), and a raw HTTP client
# (python3's http.client on the Unix socket: create, start, wait, delete: no CLI start-up).
# Measures (issue 16's targets):
#  1. latency: API_RUNS (30) `docker run --rm --network none busybox true`, alternating engines:
#     the median (target: sandrun <= 0.2x podman's, <= 0.1x dockerd's); the same through the
#     raw client.
#  1b. the client's own cost: `docker --version` (no daemon contact) timed, and the CPU of one
#     CLI process for `--version` and for `run --rm`: the floor and the ceiling this client
#     puts on any engine on this machine.
#  2. throughput: API_JOBS (500) `docker run --rm` from 8 parallel clients: containers/s
#     (target: >= 10x dockerd's).
#  3. idle: API_IDLE (200) `docker run -d busybox sleep 3600`: the memory each idle container
#     costs the engine: the daemon's RSS growth (sandrun serve; dockerd + containerd; podman's
#     service) plus the PSS of the per-container processes (sandrun-init; containerd-shim and
#     the container's init; conmon), divided by the count (target: sandrun <= 150 KiB).
set -uo pipefail
export LC_ALL=C

RUNS=${API_RUNS:-30}
JOBS=${API_JOBS:-500}
IDLE=${API_IDLE:-200}
PAR=8
DOCKER=/usr/bin/docker

die() { echo "api.sh: $*" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
locate_sandrun "${1:-build}" "the daemons need it"
[[ -x $DOCKER ]] || die "no $DOCKER: apt-get install docker.io (its CLI; its dockerd is a peer here)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sandrun-api.XXXXXX") || die "mktemp failed"
declare -A PID SOCK
cleanup() {
  trap - EXIT INT TERM
  local e
  for e in "${!PID[@]}"; do
    kill -TERM "${PID[$e]}" 2>/dev/null
  done
  for e in "${!PID[@]}"; do
    for _ in $(seq 100); do kill -0 "${PID[$e]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PID[$e]}" 2>/dev/null
  done
  "$SANDRUN" --root "$TMP/sandrun/root" cleanup >/dev/null 2>&1
  # dockerd's and podman's own mounts under the temp dir (overlays, shm), deepest first.
  findmnt -rn -o TARGET | grep "^$TMP/" | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_socket() {  # wait_socket ENGINE: until its socket answers _ping (30 s)
  local i
  for ((i = 0; i < 300; i++)); do
    curl -sf --unix-socket "${SOCK[$1]}" http://d/_ping >/dev/null 2>&1 && return 0
    kill -0 "${PID[$1]}" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

dk() { local e=$1; shift; DOCKER_HOST=unix://${SOCK[$e]} DOCKER_CONFIG=$TMP/docker-config "$DOCKER" "$@"; }

mkdir -p "$TMP/docker-config"
ENGINES=()

# ---- the engines ------------------------------------------------------------------------------
start_sandrun() {
  mkdir -p "$TMP/sandrun"
  SOCK[sandrun]=$TMP/sandrun/sandrun.sock
  "$SANDRUN" --root "$TMP/sandrun/root" serve --socket "${SOCK[sandrun]}" >"$TMP/sandrun/log" 2>&1 &
  PID[sandrun]=$!
  wait_socket sandrun || die "sandrun serve did not start: $(tail -3 "$TMP/sandrun/log")"
  ENGINES+=(sandrun)
}

start_dockerd() {
  command -v dockerd >/dev/null || { echo "dockerd: not installed (docker.io): skipped"; return; }
  mkdir -p "$TMP/dockerd"
  SOCK[dockerd]=$TMP/dockerd/docker.sock
  dockerd --host "unix://${SOCK[dockerd]}" --data-root "$TMP/dockerd/root" --exec-root "$TMP/dockerd/exec" \
    --pidfile "$TMP/dockerd/pid" --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
    --ip-masq=false --storage-driver overlay2 --exec-opt native.cgroupdriver=cgroupfs \
    >"$TMP/dockerd/log" 2>&1 &
  PID[dockerd]=$!
  if ! wait_socket dockerd; then
    echo "dockerd: did not start (skipped): $(tail -2 "$TMP/dockerd/log")"
    unset 'PID[dockerd]'
    return
  fi
  ENGINES+=(dockerd)
}

start_podman() {
  command -v podman >/dev/null || { echo "podman: not installed: skipped"; return; }
  mkdir -p "$TMP/podman"
  SOCK[podman]=$TMP/podman/podman.sock
  # Raising hard rlimits fails on this kind of host: podman's defaults are lowered to what it has.
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n' >"$TMP/podman/containers.conf"
  CONTAINERS_CONF=$TMP/podman/containers.conf podman --root "$TMP/podman/root" --runroot "$TMP/podman/run" \
    --cgroup-manager cgroupfs --events-backend file --runtime runc \
    system service --time 0 "unix://${SOCK[podman]}" >"$TMP/podman/log" 2>&1 &
  PID[podman]=$!
  if ! wait_socket podman; then
    echo "podman: did not start (skipped): $(tail -2 "$TMP/podman/log")"
    unset 'PID[podman]'
    return
  fi
  ENGINES+=(podman)
}

start_sandrun
start_dockerd
start_podman

# The same busybox everywhere: sandrun's built-in image, imported by the peers.
dk sandrun run --rm --network none busybox true || die "docker run through sandrun failed"
layers=("$TMP"/sandrun/root/layers/sha256/*)
(( ${#layers[@]} == 1 )) || die "expected one layer in sandrun's root"
tar -C "${layers[0]}" -cf "$TMP/busybox.tar" .
for e in "${ENGINES[@]}"; do
  [[ $e == sandrun ]] && continue
  dk "$e" import "$TMP/busybox.tar" busybox:latest >/dev/null || die "$e: docker import failed"
  dk "$e" run --rm --network none busybox true || die "$e: docker run failed: $(tail -3 "$TMP/$e/log")"
done

echo "engines: ${ENGINES[*]}; client: $($DOCKER --version)"
echo "machine: $(nproc) CPUs, $(uname -r); CPU busy before start: $(cpu_busy)%"
echo

# ---- 1. latency ------------------------------------------------------------------------------
# The raw client: create, start, wait, delete over the socket, one connection per request (as
# the docker CLI does), timed around the four.
cat >"$TMP/raw.py" <<'EOF'
import http.client, json, socket, sys, time
class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)
def call(path, method, url, body=None):
    c = Unix(path)
    c.request(method, url, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status >= 300:
        sys.exit(f"{method} {url}: {r.status} {data!r}")
    return json.loads(data) if data else None
sock, n = sys.argv[1], int(sys.argv[2])
for _ in range(n):
    t0 = time.monotonic()
    cid = call(sock, "POST", "/v1.41/containers/create",
               {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}})["Id"]
    call(sock, "POST", f"/v1.41/containers/{cid}/start")
    st = call(sock, "POST", f"/v1.41/containers/{cid}/wait")
    call(sock, "DELETE", f"/v1.41/containers/{cid}")
    if st["StatusCode"] != 0:
        sys.exit(f"exit {st['StatusCode']}")
    print(int((time.monotonic() - t0) * 1e6))
EOF

lat_cli() {  # lat_cli ENGINE OUT: one timed `docker run --rm`, appended in us
  local t0 t1
  t0=$EPOCHREALTIME
  if dk "$1" run --rm --network none busybox true >/dev/null 2>&1; then
    t1=$EPOCHREALTIME
    echo $(( (${t1/./} - ${t0/./}) )) >>"$2"
  else
    echo fail >>"$2"
  fi
}

declare -A LAT RAW
for e in "${ENGINES[@]}"; do dk "$e" run --rm --network none busybox true >/dev/null 2>&1; done  # warm
for ((i = 0; i < RUNS; i++)); do
  for e in "${ENGINES[@]}"; do lat_cli "$e" "$TMP/lat-$e"; done
done
for e in "${ENGINES[@]}"; do
  python3 "$TMP/raw.py" "${SOCK[$e]}" "$RUNS" >"$TMP/raw-$e" 2>"$TMP/raw-$e.err" || echo fail >>"$TMP/raw-$e"
  LAT[$e]=$(stats "$TMP/lat-$e")
  RAW[$e]=$(stats "$TMP/raw-$e")
done
echo "1. latency, ms (median p90 n): docker run --rm --network none busybox true"
for e in "${ENGINES[@]}"; do printf '   %-8s docker CLI %-22s raw HTTP %s\n' "$e" "${LAT[$e]}" "${RAW[$e]}"; done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.3f", a / b; else print "n/a" }'; }
for e in "${ENGINES[@]}"; do
  [[ $e == sandrun ]] && continue
  echo "   sandrun / $e: docker CLI $(ratio "${LAT[sandrun]%% *}" "${LAT[$e]%% *}")x, raw HTTP $(ratio "${RAW[sandrun]%% *}" "${RAW[$e]%% *}")x"
done
echo

# ---- 1b. the client's own cost ---------------------------------------------------------------
# What the docker CLI takes whichever engine it talks to: `docker --version` (a process start,
# no daemon contact) timed, and the CPU of the CLI processes over 20 `--version` and 20
# `docker run --rm` against sandrun (bash's `times` for a subshell: its children, the CLI; the
# daemon is not one). They bound any engine measured through this client on this machine:
# latency >= the --version floor; throughput <= CPUs / (CLI CPU per run).
cli_cpu_ms() {  # cli_cpu_ms N CMD...: mean CPU (user + system) of CMD's process, ms
  local n=$1 t; shift
  t=$( (for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1; done; times) | tail -1)
  awk -v t="$t" -v n="$n" 'BEGIN { split(t, a, /[ms]+/); printf "%.1f", ((a[1] * 60 + a[2]) + (a[3] * 60 + a[4])) * 1000 / n }'
}
: >"$TMP/floor"
for ((i = 0; i < RUNS; i++)); do
  t0=$EPOCHREALTIME; "$DOCKER" --version >/dev/null 2>&1; t1=$EPOCHREALTIME
  echo $(( ${t1/./} - ${t0/./} )) >>"$TMP/floor"
done
FLOOR=$(stats "$TMP/floor")
CPU_VERSION=$(cli_cpu_ms 20 "$DOCKER" --version)
CPU_RUN=$(cli_cpu_ms 20 dk sandrun run --rm --network none busybox true)
NCPU=$(nproc)
echo "1b. the docker CLI itself: docker --version (no daemon) ${FLOOR} ms (median p90 n); CPU per process: --version ${CPU_VERSION} ms, run --rm ${CPU_RUN} ms"
if [[ -n ${LAT[dockerd]:-} ]]; then
  echo "   0.1x dockerd's median is $(awk -v d="${LAT[dockerd]%% *}" 'BEGIN { printf "%.1f", d / 10 }') ms; the CLI's own floor ${FLOOR%% *} ms"
fi
BOUND=$(awk -v c="$NCPU" -v r="$CPU_RUN" 'BEGIN { if (r > 0) printf "%.0f", c * 1000 / r; else print "n/a" }')
echo "   on $NCPU CPUs the CLI alone allows at most $BOUND docker run/s, whatever the engine"
echo

# ---- 2. throughput ---------------------------------------------------------------------------
per_second() {  # per_second N T0 T1 (EPOCHREALTIME stamps): N / (T1 - T0), one decimal
  awk -v n="$1" -v a="${2/./}" -v b="${3/./}" 'BEGIN { printf "%.1f", n / ((b - a) / 1e6) }'
}
ratios_to_sandrun() {  # ratios_to_sandrun ARRAY: "sandrun / ENGINE: Rx" for each other engine
  local -n rates=$1
  local e
  for e in "${ENGINES[@]}"; do
    [[ $e == sandrun ]] && continue
    echo "   sandrun / $e: $(ratio "${rates[sandrun]}" "${rates[$e]}")x"
  done
}
declare -A RATE
for e in "${ENGINES[@]}"; do
  settle
  export -f dk
  export TMP DOCKER
  export SOCK_E=${SOCK[$e]}
  t0=$EPOCHREALTIME
  seq "$JOBS" | xargs -P "$PAR" -n 1 sh -c \
    'DOCKER_HOST=unix://$SOCK_E DOCKER_CONFIG=$TMP/docker-config $DOCKER run --rm --network none busybox true >/dev/null 2>&1 || echo fail' \
    >"$TMP/tp-$e" 2>&1
  t1=$EPOCHREALTIME
  fails=$(grep -c fail "$TMP/tp-$e")
  RATE[$e]=$(per_second "$JOBS" "$t0" "$t1")
  echo "2. throughput: $e: $JOBS docker run --rm from $PAR clients: ${RATE[$e]} containers/s ($fails failed)"
done
ratios_to_sandrun RATE
# The same through the raw client (8 processes, JOBS/8 runs each): the engines without the
# docker CLI's own cost (section 1b measures it).
declare -A RAWRATE
for e in "${ENGINES[@]}"; do
  settle
  t0=$EPOCHREALTIME
  pids=()
  for ((c = 0; c < PAR; c++)); do
    python3 "$TMP/raw.py" "${SOCK[$e]}" $((JOBS / PAR)) >"$TMP/rawtp-$e-$c" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"  # these clients only: the engines are background jobs too
  t1=$EPOCHREALTIME
  fails=$(cat "$TMP"/rawtp-"$e"-* | grep -vc '^[0-9]*$')
  RAWRATE[$e]=$(per_second $((JOBS / PAR * PAR)) "$t0" "$t1")
  echo "2. throughput, raw HTTP: $e: $((JOBS / PAR * PAR)) runs from $PAR clients: ${RAWRATE[$e]} containers/s ($fails failed)"
done
ratios_to_sandrun RAWRATE
echo

# ---- 3. idle containers ----------------------------------------------------------------------
rss_kib() { local p s=0; for p in "$@"; do s=$((s + $(awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo $s; }
pss_kib() { local p s=0; for p in "$@"; do s=$((s + $(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done; echo $s; }
daemon_pids() {  # the engine's long-lived processes
  case $1 in
    sandrun) echo "${PID[sandrun]}" ;;
    dockerd) echo "${PID[dockerd]}" $(pgrep -P "${PID[dockerd]}" -x containerd) ;;
    podman) echo "${PID[podman]}" ;;
  esac
}
helper_pids() {  # the per-container processes the engine adds besides the command
  case $1 in
    sandrun) pgrep -P "${PID[sandrun]}" | while read -r p; do  # this daemon's children only
               [[ $(readlink "/proc/$p/exe" 2>/dev/null) == *sandrun-init* ]] && echo "$p"; done ;;
    dockerd) pgrep -f "^[^ ]*containerd-shim-runc-v2 " ;;  # the shims of this dockerd's containerd (the only ones running now)
    podman) pgrep -x conmon ;;
  esac
}
for e in "${ENGINES[@]}"; do
  settle
  before=$(rss_kib $(daemon_pids "$e"))
  helpers_before=$(helper_pids "$e" | wc -l)
  for ((i = 0; i < IDLE; i++)); do
    dk "$e" run -d --network none busybox sleep 3600 >/dev/null 2>&1 || { echo "   $e: run -d failed"; break; }
  done
  sleep 2
  after=$(rss_kib $(daemon_pids "$e"))
  mapfile -t hp < <(helper_pids "$e")
  helpers=$(pss_kib "${hp[@]}")
  running=$(dk "$e" ps -q | wc -l)
  per=$(awk -v d=$((after - before)) -v h="$helpers" -v n="$running" 'BEGIN { if (n) printf "%.0f", (d + h) / n; else print "n/a" }')
  echo "3. idle: $e: $running containers: daemon RSS +$((after - before)) KiB, per-container processes (${#hp[@]}, $helpers_before before) PSS $helpers KiB: $per KiB per container"
  dk "$e" ps -q | xargs -r -n 50 sh -c 'DOCKER_HOST=unix://$0 DOCKER_CONFIG='"$TMP"'/docker-config '"$DOCKER"' rm -f "$@" >/dev/null 2>&1' "${SOCK[$e]}"
done
