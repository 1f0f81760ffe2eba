#!/usr/bin/env bash
# e2e.sh: end-to-end throughput and latency of sandrun beside bwrap, crun, runc and a bare
# /bin/true, all measured in one run on this machine. Usage: bench/e2e.sh [BUILD_DIR]
#
# sandrun runs with its defaults (seccomp, Docker's capabilities, masked paths, a cgroup with the
# pids limit), with limits on top (memory = "256MiB", cpus = 1, pids = 1024) and without the
# seccomp filter (seccomp = "unconfined"), and without its user namespace (userns = false: the
# container's root is host root, Docker's model; the default is a user namespace). crun runs with its `crun spec` bundle and, for a
# like-for-like comparison, with sandrun's default seccomp profile (printed as OCI JSON by
# BUILD_DIR/sandrun-oci-seccomp), Docker's capabilities and the same limits.
#
# Runs as root. Everything it writes goes to one temp dir ($TMPDIR or /tmp) that is removed
# on exit, even on Ctrl-C; it prints a table. Peers that are not installed are skipped.
# Knobs (environment): E2E_JOBS (500), E2E_JOBS_SMALL (200), E2E_PARALLEL (8),
# E2E_ROUNDS (3; throughput rounds, the median is reported), E2E_LAT_RUNS (30).
# See docs/benchmarks.md for what it measures and the figures.
set -uo pipefail
export LC_ALL=C  # EPOCHREALTIME and printf must use '.' as the decimal point

JOBS=${E2E_JOBS:-500}
JOBS_SMALL=${E2E_JOBS_SMALL:-200}
PAR=${E2E_PARALLEL:-8}
ROUNDS=${E2E_ROUNDS:-3}
LAT_RUNS=${E2E_LAT_RUNS:-30}

die() { echo "e2e.sh: $*" >&2; exit 2; }
note() { echo "note: $*" >&2; }

# ---- locate sandrun -------------------------------------------------------------------------
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
locate_sandrun "${1:-build}" "containers and peers need it"

# ---- temp dir, cleanup ----------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sandrun-e2e.XXXXXX") || die "mktemp failed"
CRUN_STATE=$TMP/crun-state
RUNC_STATE=$TMP/runc-state
# Every crun/runc container id starts with this, so that cleanup can find the cgroups they make
# (crun puts them at /sys/fs/cgroup/<controller>/<id> here) and no id clashes with others'.
CID=sandrun-e2e-$$

# crun refuses this machine's hybrid cgroup layout (a cgroup2 mount with no controllers but
# hugetlb at /sys/fs/cgroup/unified): run it in a private mount namespace without that mount.
# `mount --make-rslave /` first, so the umount never propagates to the host.
in_crun_ns() {
  unshare -m bash -c 'mount --make-rslave / || exit 1
    if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified || exit 1; fi
    exec "$@"' crun-ns "$@"
}

cleanup() {
  trap - EXIT INT TERM
  # Containers of an interrupted run: delete them (and their cgroups) through their runtime.
  if [[ -d $CRUN_STATE ]] && command -v crun >/dev/null; then
    for id in $(in_crun_ns crun --root "$CRUN_STATE" list -q 2>/dev/null); do
      in_crun_ns crun --root "$CRUN_STATE" delete -f "$id" >/dev/null 2>&1
    done
  fi
  if [[ -d $RUNC_STATE ]] && command -v runc >/dev/null; then
    for id in $(runc --root "$RUNC_STATE" list -q 2>/dev/null); do
      runc --root "$RUNC_STATE" delete -f "$id" >/dev/null 2>&1
    done
  fi
  # Cgroups a runtime killed mid-start left behind: ours by name, removed deepest first (rmdir
  # only: a cgroup that still holds a process stays, and is reported).
  local cg
  while read -r cg; do
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || note "could not remove cgroup $cg"
  done < <(find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d -name "$CID-*" 2>/dev/null)
  # sandrun removes its cgroups and slots itself, even on SIGINT; after a harder kill this
  # sweeps what its dead runs left (the same sweep every `sandrun run` does at start).
  if [[ -n ${SR_ROOT:-} && -d $SR_ROOT ]]; then
    "$SANDRUN" --root "$SR_ROOT" cleanup >/dev/null 2>&1
  fi
  # Nothing should be mounted under the temp dir (every runtime mounts in its own namespace);
  # if something is, it is ours: detach it before removing the tree.
  local m
  for m in $(awk -v p="$TMP" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    note "unmounting leftover $m"
    umount -l "$m"
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- timing helpers -------------------------------------------------------------------------
now_us() { echo "${EPOCHREALTIME/./}"; }

# lat_once FILE CMD...: runs CMD once, appends its wall time in us to FILE ("fail" on error).
lat_once() {
  local file=$1; shift
  local t0=${EPOCHREALTIME/./}
  "$@" >/dev/null 2>&1
  local rc=$? t1=${EPOCHREALTIME/./}
  if (( rc != 0 )); then echo fail >>"$file"; else echo $((t1 - t0)) >>"$file"; fi
}

# The same loop as a script, for crun, which must run inside a namespace of its own: RUNS runs
# of each bundle in turn (interleaved, so drift hits all alike), their times appended to FILE.
# crun_lat.sh RUNS STATE IDPREFIX FILE BUNDLE [FILE BUNDLE]...
cat >"$TMP/crun_lat.sh" <<'EOF'
runs=$1 state=$2 prefix=$3; shift 3
for ((i = 1; i <= runs; i++)); do
  for ((k = 1; k < $#; k += 2)); do
    file=${!k} b=$((k + 1)); bundle=${!b}
    t0=${EPOCHREALTIME/./}
    crun --root "$state" run -b "$bundle" "$prefix-$k-$i" >/dev/null 2>&1
    rc=$? t1=${EPOCHREALTIME/./}
    if (( rc != 0 )); then echo fail >>"$file"; else echo $((t1 - t0)) >>"$file"; fi
  done
done
EOF

# xargs_n N CMD...: N runs of CMD, PAR at a time; "{}" is the run number.
xargs_n() {
  local n=$1; shift
  seq 1 "$n" | xargs -P "$PAR" -I{} "$@" >/dev/null 2>&1
}

# timed FILE CMD...: wall time of CMD in us appended to FILE ("fail" when it failed).
timed() {
  local file=$1; shift
  local t0; t0=$(now_us)
  "$@"
  local rc=$? t1; t1=$(now_us)
  if (( rc != 0 )); then echo fail >>"$file"; else echo $((t1 - t0)) >>"$file"; fi
}


# ---- the machine ----------------------------------------------------------------------------
model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
busy=$(cpu_busy)
echo "sandrun e2e benchmark, $(date -u +%F) ($(date -u +%T) UTC)"
echo "machine: $(nproc) CPUs ($model), $mem, kernel $(uname -r)"
echo "sandrun: $SANDRUN ($("$SANDRUN" version 2>/dev/null | head -1))"
echo "temp dir (sandrun's state and logs, the peers' state): $TMP on $(findmnt -no FSTYPE --target "$TMP" 2>/dev/null || echo "?")"
echo "CPU busy before start: $busy%$( ((busy > 10)) && echo "  (something else is running: figures will be noisy)")"
echo

# ---- sandrun's image and the peers' rootfs ----------------------------------------------------
SR_ROOT=$TMP/sandrun-root
"$SANDRUN" --root "$SR_ROOT" exec -- /bin/true >/dev/null 2>&1 ||
  die "sandrun exec -- /bin/true failed: $("$SANDRUN" --root "$SR_ROOT" exec -- /bin/true 2>&1 | tail -3)"
layers=("$SR_ROOT"/layers/sha256/*)
(( ${#layers[@]} == 1 )) && [[ -d ${layers[0]} ]] || die "expected exactly one layer in $SR_ROOT/layers/sha256"
LAYER=${layers[0]}
# Peers get a copy: crun and runc create their mount points in the rootfs.
ROOTFS=$TMP/rootfs
cp -a "$LAYER" "$ROOTFS"

make_jobfile() {  # make_jobfile N INIT(true|false) FILE [LINE of [defaults]...]
  {
    echo "[defaults]"
    echo "init = $2"
    printf '%s\n' "${@:4}"
    for ((i = 1; i <= $1; i++)); do printf '[jobs.j%d]\ncommand = ["/bin/true"]\n' "$i"; done
  } >"$3"
}
for n in "$JOBS" "$JOBS_SMALL" "$PAR"; do  # $PAR: the warm-up
  make_jobfile "$n" true "$TMP/jobs-$n.toml"
  make_jobfile "$n" false "$TMP/jobs-$n-noinit.toml"
  make_jobfile "$n" true "$TMP/jobs-$n-limits.toml" 'memory = "256MiB"' 'cpus = 1' 'pids = 1024'
  make_jobfile "$n" true "$TMP/jobs-$n-unconfined.toml" 'seccomp = "unconfined"'
  make_jobfile "$n" true "$TMP/jobs-$n-nouserns.toml" 'userns = false'
  # As crun's bundle: a read-only root (which in sandrun needs no writable layer).
  make_jobfile "$n" true "$TMP/jobs-$n-ro.toml" 'memory = "256MiB"' 'cpus = 1' 'pids = 1024' 'read_only_rootfs = true'
done
SR_LIMITS=(-m 256MiB --cpus 1 --pids-limit 1024)  # the same for `sandrun exec`

# The peers found on this machine.
have() { command -v "$1" >/dev/null 2>&1; }
BWRAP=() CRUN=0 CRUN_SL=0 RUNC=0
if have bwrap; then
  BWRAP=(bwrap --unshare-all --die-with-parent --ro-bind "$ROOTFS" / --proc /proc --dev /dev --tmpfs /tmp)
  "${BWRAP[@]}" /bin/true >/dev/null 2>&1 || { note "bwrap does not run here; skipped"; BWRAP=(); }
else
  note "bwrap not installed (package bubblewrap); skipped"
fi

# An OCI bundle from the runtime's own `spec`: terminal off, /bin/true, read-only root.
make_bundle() {  # make_bundle RUNTIME DIR
  mkdir -p "$2" && (cd "$2" && "$1" spec >/dev/null 2>&1) || return 1
  jq --arg root "$ROOTFS" '.process.terminal = false | .process.args = ["/bin/true"]
      | .root.path = $root | .root.readonly = true' "$2/config.json" >"$2/config.tmp" &&
    mv "$2/config.tmp" "$2/config.json"
}
# crun's bundle with sandrun's hardening and limits: sandrun's default seccomp profile as OCI
# JSON, Docker's 14 capabilities, and memory 256 MiB (swap included), 1 CPU, 1024 pids.
# jq 1.6 rounds integers above 2^53 (the profile's 64-bit masks), so the profile is pasted in
# as text in place of a placeholder that jq wrote.
DOCKER_CAPS='["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW",
  "CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT",
  "CAP_KILL","CAP_AUDIT_WRITE"]'
make_crun_sl_bundle() {  # make_crun_sl_bundle DIR SECCOMP_JSON limits|no-limits [CONFIG_NAME ARGS_JSON]
  mkdir -p "$1" && cp "$TMP/crun-bundle/config.json" "$1/config.tmp" || return 1
  jq --argjson caps "$DOCKER_CAPS" --arg limits "$3" --argjson args "${5:-null}" '
      if $args then .process.args = $args else . end
      | .process.capabilities |= with_entries(if .key == "inheritable" then . else .value = $caps end)
      | .process.noNewPrivileges = true
      | if $limits == "limits" then
          .linux.resources.memory = {limit: 268435456, swap: 268435456}
          | .linux.resources.cpu = {quota: 100000, period: 100000}
          | .linux.resources.pids = {limit: 1024}
        else . end
      | .linux.seccomp = "@SANDRUN_SECCOMP@"' "$1/config.tmp" >"$1/config.jq" || return 1
  awk -v f="$2" 'BEGIN { while ((getline l < f) > 0) s = s l "\n"; sub(/\n$/, "", s) }
    { p = "\"@SANDRUN_SECCOMP@\""; i = index($0, p)
      if (i) { $0 = substr($0, 1, i - 1) s substr($0, i + length(p)); n++ }
      print }
    END { exit n == 1 ? 0 : 1 }' "$1/config.jq" >"$1/${4:-config.json}" &&
    rm -f "$1/config.tmp" "$1/config.jq" && jq -e '.linux.seccomp.syscalls | length > 0' "$1/${4:-config.json}" >/dev/null
}
OCI_SECCOMP=$(dirname "$SANDRUN")/sandrun-oci-seccomp
if have crun && have jq && have unshare; then
  if make_bundle crun "$TMP/crun-bundle" &&
    in_crun_ns crun --root "$CRUN_STATE" run -b "$TMP/crun-bundle" "$CID-check" >/dev/null 2>&1; then
    CRUN=1
  else
    note "crun does not run here; skipped"
  fi
  if (( CRUN )) && [[ ! -x $OCI_SECCOMP ]]; then
    note "no $OCI_SECCOMP (cmake --build BUILD_DIR --target sandrun-oci-seccomp): crun seccomp+limits skipped"
  elif (( CRUN )); then
    # --verify: sandrun's own JSON loader compiles the output to the very BPF program sandrun's
    # default profile compiles to (else it fails).
    if ! "$OCI_SECCOMP" --verify >"$TMP/oci-seccomp.json" 2>"$TMP/oci-seccomp.log"; then
      note "sandrun-oci-seccomp failed: $(tail -1 "$TMP/oci-seccomp.log"); crun seccomp+limits skipped"
    elif make_crun_sl_bundle "$TMP/crun-sl-bundle" "$TMP/oci-seccomp.json" limits &&
      make_crun_sl_bundle "$TMP/crun-sc-bundle" "$TMP/oci-seccomp.json" no-limits &&
      in_crun_ns crun --root "$CRUN_STATE" run -b "$TMP/crun-sl-bundle" "$CID-check-sl" >/dev/null 2>&1; then
      CRUN_SL=1
      # The proof that the filter and the limits are in force: what the container sees.
      make_crun_sl_bundle "$TMP/crun-sl-bundle" "$TMP/oci-seccomp.json" limits probe.json '["/bin/sh", "-c",
        "grep -E \"^(Seccomp|NoNewPrivs|CapEff):\" /proc/self/status; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max"]' &&
        CRUN_SL_SEES=$(in_crun_ns crun --root "$CRUN_STATE" run -b "$TMP/crun-sl-bundle" -f "$TMP/crun-sl-bundle/probe.json" \
          "$CID-probe" 2>&1 | tr -s '\t\n' '  ')
    else
      note "crun with sandrun's seccomp profile and limits does not run here; skipped"
    fi
  fi
else
  note "crun (or jq, unshare) not installed; crun skipped"
fi
if have runc && have jq; then
  if make_bundle runc "$TMP/runc-bundle" &&
    runc --root "$RUNC_STATE" run -b "$TMP/runc-bundle" "$CID-check" >/dev/null 2>&1; then
    RUNC=1
  else
    note "runc does not run here; skipped"
  fi
else
  note "runc (or jq) not installed; runc skipped"
fi

# ---- throughput -----------------------------------------------------------------------------
# One command per runtime: N containers of /bin/true, PAR at a time. Every round runs each
# runtime once per size, in turn, so a change of background load hits all of them alike.
tp_sandrun() {  # N [noinit|limits|unconfined|ro|nouserns]
  local f=$TMP/jobs-$1${2:+-$2}.toml out=$TMP/out
  "$SANDRUN" --root "$SR_ROOT" run -j "$PAR" --out "$out" "$f" >"$TMP/run.log" 2>&1
  local rc=$?
  rm -rf "$out"
  (( rc == 0 )) && grep -q "$1 passed" "$TMP/run.log"
}
# The same with sandrun's container slots (the containers' writable layers and work dirs, pid
# records) on a tmpfs, the image cache staying on disk: a tmpfs mounted over SR_ROOT/slots
# inside a private mount namespace, so it vanishes with the command.
tp_sandrun_tmpfs() {  # N
  local f=$TMP/jobs-$1.toml out=$TMP/out
  unshare -m bash -c 'mount --make-rslave / && mount -t tmpfs -o mode=0700 sandrun-slots "$1/slots" || exit 1; shift; exec "$@"' \
    tp "$SR_ROOT" "$SANDRUN" --root "$SR_ROOT" run -j "$PAR" --out "$out" "$f" >"$TMP/run.log" 2>&1
  local rc=$?
  rm -rf "$out"
  (( rc == 0 )) && grep -q "$1 passed" "$TMP/run.log"
}
tp_bare() { xargs_n "$1" /bin/true; }
tp_bwrap() { xargs_n "$1" "${BWRAP[@]}" /bin/true; }
tp_crun() {  # N [BUNDLE]
  local bundle=${2:-$TMP/crun-bundle}
  in_crun_ns bash -c 'seq 1 "$1" | xargs -P "$2" -I{} crun --root "$3" run -b "$4" "$5-{}" >/dev/null 2>&1' \
    tp "$1" "$PAR" "$CRUN_STATE" "$bundle" "$CID-r$round-$1-${bundle##*/}"
}
tp_runc() { xargs_n "$1" runc --root "$RUNC_STATE" run -b "$TMP/runc-bundle" "$CID-r$round-$1-{}"; }

RUNTIMES=(bare sandrun sandrun-nouserns sandrun-limits sandrun-ro sandrun-unconfined sandrun-noinit)
have unshare && RUNTIMES+=(sandrun-tmpfs)
(( ${#BWRAP[@]} )) && RUNTIMES+=(bwrap)
(( CRUN )) && RUNTIMES+=(crun)
(( CRUN_SL )) && RUNTIMES+=(crun-sl)
(( RUNC )) && RUNTIMES+=(runc)

tp_one() {  # RUNTIME N
  case $1 in
    sandrun) tp_sandrun "$2" ;;
    sandrun-noinit) tp_sandrun "$2" noinit ;;
    sandrun-limits) tp_sandrun "$2" limits ;;
    sandrun-ro) tp_sandrun "$2" ro ;;
    sandrun-unconfined) tp_sandrun "$2" unconfined ;;
    sandrun-nouserns) tp_sandrun "$2" nouserns ;;
    sandrun-tmpfs) tp_sandrun_tmpfs "$2" ;;
    crun-sl) tp_crun "$2" "$TMP/crun-sl-bundle" ;;
    *) "tp_$1" "$2" ;;
  esac
}

echo "measuring throughput: $JOBS and $JOBS_SMALL x /bin/true, $PAR at a time, $ROUNDS round(s) of: ${RUNTIMES[*]}" >&2
tp_start=$(now_us)
round=0
for rt in "${RUNTIMES[@]}"; do  # warm-up (page cache, first use of the state dir), not recorded
  tp_one "$rt" "$PAR" >/dev/null 2>&1
done
nrt=${#RUNTIMES[@]}
for ((round = 1; round <= ROUNDS; round++)); do
  for n in "$JOBS" "$JOBS_SMALL"; do
    # Each round starts at a different runtime, so none always follows the same neighbour.
    for ((k = 0; k < nrt; k++)); do
      rt=${RUNTIMES[(k + round - 1) % nrt]}
      settle
      timed "$TMP/tp-$rt-$n" tp_one "$rt" "$n"
    done
  done
done
echo "  ($(( ($(now_us) - tp_start) / 1000000 )) s)" >&2

# ---- latency --------------------------------------------------------------------------------
# One container at a time, start to exit as a shell sees it (fork + exec of the runtime
# included; the bare /bin/true row is that floor). Runs interleave so drift hits all alike;
# crun's runs are a block of their own inside its private mount namespace. "crun-sc" (latency
# only) is crun with sandrun's seccomp profile and capabilities but no limits, to split
# crun-sl's cost between the filter and the limits.
LAT=(bare sandrun sandrun-nouserns sandrun-limits sandrun-ro sandrun-unconfined sandrun-noinit)
(( ${#BWRAP[@]} )) && LAT+=(bwrap)
(( RUNC )) && LAT+=(runc)
lat_cmd() {
  case $1 in
    bare) lat_once "$2" /bin/true ;;
    sandrun) lat_once "$2" "$SANDRUN" --root "$SR_ROOT" exec --image busybox -- /bin/true ;;
    sandrun-noinit) lat_once "$2" "$SANDRUN" --root "$SR_ROOT" exec --image busybox --no-init -- /bin/true ;;
    sandrun-nouserns) lat_once "$2" "$SANDRUN" --root "$SR_ROOT" exec --image busybox --userns=false -- /bin/true ;;
    sandrun-limits) lat_once "$2" "$SANDRUN" --root "$SR_ROOT" exec --image busybox "${SR_LIMITS[@]}" -- /bin/true ;;
    sandrun-ro) lat_once "$2" "$SANDRUN" --root "$SR_ROOT" exec --image busybox "${SR_LIMITS[@]}" --read-only -- /bin/true ;;
    sandrun-unconfined)
      lat_once "$2" "$SANDRUN" --root "$SR_ROOT" exec --image busybox --security-opt seccomp=unconfined -- /bin/true ;;
    bwrap) lat_once "$2" "${BWRAP[@]}" /bin/true ;;
    runc) lat_once "$2" runc --root "$RUNC_STATE" run -b "$TMP/runc-bundle" "$CID-lat-$3" ;;
  esac
}
CRUN_LAT=()  # runtime name, bundle
(( CRUN )) && CRUN_LAT+=(crun "$TMP/crun-bundle")
(( CRUN_SL )) && CRUN_LAT+=(crun-sc "$TMP/crun-sc-bundle" crun-sl "$TMP/crun-sl-bundle")
crun_lat_args() {  # DIR: FILE BUNDLE pairs for crun_lat.sh, files under DIR (/dev/null: none)
  local k
  for ((k = 0; k < ${#CRUN_LAT[@]}; k += 2)); do
    if [[ $1 == /dev/null ]]; then echo /dev/null; else echo "$1/lat-${CRUN_LAT[k]}"; fi
    echo "${CRUN_LAT[k + 1]}"
  done
}
echo "measuring latency: $LAT_RUNS runs each of: ${LAT[*]}$(for ((k = 0; k < ${#CRUN_LAT[@]}; k += 2)); do echo -n " ${CRUN_LAT[k]}"; done)" >&2
sync  # the throughput runs' logs and layers, written back now rather than during the latency runs
settle
for ((i = 0; i < 3; i++)); do  # warm-up, not recorded
  for rt in "${LAT[@]}"; do lat_cmd "$rt" /dev/null "w$i"; done
done
# Each pass starts at a different runtime: a runtime leaves work behind when it ends (runc's
# and crun's namespaces are freed asynchronously), and it must not always bill the same one.
nlat=${#LAT[@]}
for ((i = 1; i <= LAT_RUNS; i++)); do
  for ((k = 0; k < nlat; k++)); do
    rt=${LAT[(k + i) % nlat]}
    lat_cmd "$rt" "$TMP/lat-$rt" "$i"
  done
done
if (( ${#CRUN_LAT[@]} )); then
  for ((k = 0; k < ${#CRUN_LAT[@]}; k += 2)); do LAT+=("${CRUN_LAT[k]}"); done
  settle
  mapfile -t args < <(crun_lat_args /dev/null)
  in_crun_ns bash "$TMP/crun_lat.sh" 3 "$CRUN_STATE" "$CID-w" "${args[@]}"
  mapfile -t args < <(crun_lat_args "$TMP")
  in_crun_ns bash "$TMP/crun_lat.sh" "$LAT_RUNS" "$CRUN_STATE" "$CID-lat" "${args[@]}"
fi

# ---- report ---------------------------------------------------------------------------------
label() {
  case $1 in
    bare) echo "bare /bin/true (xargs)" ;;
    sandrun) echo "sandrun run -j $PAR" ;;
    sandrun-noinit) echo "sandrun run -j $PAR, init = false" ;;
    sandrun-tmpfs) echo "sandrun run -j $PAR, slots on tmpfs" ;;
    sandrun-limits) echo "sandrun run -j $PAR, limits" ;;
    sandrun-ro) echo "sandrun run -j $PAR, limits, read-only" ;;
    sandrun-unconfined) echo "sandrun run -j $PAR, seccomp unconfined" ;;
    sandrun-nouserns) echo "sandrun run -j $PAR, userns = false" ;;
    bwrap) echo "bwrap (xargs)" ;;
    crun) echo "crun run (xargs)" ;;
    crun-sl) echo "crun run, seccomp+limits (xargs)" ;;
    runc) echo "runc run (xargs)" ;;
  esac
}
lat_label() {
  case $1 in
    bare) echo "bare /bin/true" ;;
    sandrun) echo "sandrun exec" ;;
    sandrun-noinit) echo "sandrun exec --no-init" ;;
    sandrun-limits) echo "sandrun exec, limits" ;;
    sandrun-ro) echo "sandrun exec, limits, read-only" ;;
    sandrun-unconfined) echo "sandrun exec, seccomp unconfined" ;;
    sandrun-nouserns) echo "sandrun exec --userns=false" ;;
    crun-sc) echo "crun run, seccomp" ;;
    crun-sl) echo "crun run, seccomp+limits" ;;
    bwrap) echo "bwrap" ;;
    *) echo "$1 run" ;;
  esac
}
# rate N FILE -> containers/s from the median wall time of the rounds (or "fail").
rate() {
  local s; s=$(stats "$2")
  [[ $s == fail ]] && { echo fail; return; }
  awk -v n="$1" -v ms="${s%% *}" 'BEGIN { printf "%.1f %.2f\n", n / (ms / 1000), ms / 1000 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "fail" || b == "fail" || b == 0) print "-"; else printf "%.2fx\n", a / b }'; }

echo
echo "Throughput: N x /bin/true on the busybox rootfs, $PAR at a time (median of $ROUNDS round(s))"
echo "  'sandrun vs' = sandrun's containers/s divided by this runtime's (> 1: sandrun is faster);"
echo "  'limits vs'  = the same for sandrun with limits (memory 256MiB, cpus 1, pids 1024)"
tp_fmt='%-38s %8s %8s %10s %10s   %8s %8s %10s %10s\n'
printf "$tp_fmt" "runtime" "$JOBS: s" "c/s" "sandrun vs" "limits vs" "$JOBS_SMALL: s" "c/s" "sandrun vs" "limits vs"
read -r sr_big _ <<<"$(rate "$JOBS" "$TMP/tp-sandrun-$JOBS")"
read -r sr_small _ <<<"$(rate "$JOBS_SMALL" "$TMP/tp-sandrun-$JOBS_SMALL")"
read -r srl_big _ <<<"$(rate "$JOBS" "$TMP/tp-sandrun-limits-$JOBS")"
read -r srl_small _ <<<"$(rate "$JOBS_SMALL" "$TMP/tp-sandrun-limits-$JOBS_SMALL")"
for rt in "${RUNTIMES[@]}"; do
  read -r r1 s1 <<<"$(rate "$JOBS" "$TMP/tp-$rt-$JOBS")"
  read -r r2 s2 <<<"$(rate "$JOBS_SMALL" "$TMP/tp-$rt-$JOBS_SMALL")"
  printf "$tp_fmt" "$(label "$rt")" "${s1:--}" "$r1" "$(ratio "$sr_big" "$r1")" "$(ratio "$srl_big" "$r1")" \
    "${s2:--}" "$r2" "$(ratio "$sr_small" "$r2")" "$(ratio "$srl_small" "$r2")"
done

echo
echo "Latency: one container start to exit, $LAT_RUNS runs (ms)"
echo "  'sandrun vs' = sandrun exec's median divided by this runtime's (< 1: sandrun is faster);"
echo "  'limits vs'  = the same for sandrun exec with limits"
printf '%-38s %9s %9s %11s %11s\n' "runtime" "median" "p90" "sandrun vs" "limits vs"
read -r sr_med _ <<<"$(stats "$TMP/lat-sandrun")"
read -r srl_med _ <<<"$(stats "$TMP/lat-sandrun-limits")"
for rt in "${LAT[@]}"; do
  read -r med p90 _ <<<"$(stats "$TMP/lat-$rt")"
  printf '%-38s %9s %9s %11s %11s\n' "$(lat_label "$rt")" "$med" "${p90:--}" "$(ratio "$sr_med" "$med")" \
    "$(ratio "$srl_med" "$med")"
done

echo
read -r noinit_med _ <<<"$(stats "$TMP/lat-sandrun-noinit")"
read -r bare_med _ <<<"$(stats "$TMP/lat-bare")"
awk -v i="$sr_med" -v n="$noinit_med" -v b="$bare_med" 'BEGIN {
  if (i == "fail" || n == "fail") exit
  printf "sandrun init (one more fork + exec in the container): %.2f ms per run (exec %.2f vs --no-init %.2f)\n", i - n, i, n
  if (b != "fail") printf "sandrun exec above a bare /bin/true: %.2f ms\n", i - b }'
if (( ${#BWRAP[@]} )); then
  read -r bw_rate _ <<<"$(rate "$JOBS" "$TMP/tp-bwrap-$JOBS")"
  read -r bw_med _ <<<"$(stats "$TMP/lat-bwrap")"
  awk -v sr="$sr_big" -v bw="$bw_rate" -v sl="$sr_med" -v bl="$bw_med" 'BEGIN {
    if (sr != "fail" && bw != "fail")
      printf "target: throughput above bwrap:  %s (%.2fx)\n", (sr > bw) ? "met" : "NOT met", sr / bw
    if (sl != "fail" && bl != "fail")
      printf "target: latency below 2x bwrap: %s (%.2fx)\n", (sl < 2 * bl) ? "met" : "NOT met", sl / bl }'
fi
# What the default user namespace costs: against userns = false (targets of issue 14: at most
# 10% less throughput, at most 1 ms more latency).
# The latency target is judged on paired runs: the two run one after the other in each pass
# (LAT's order), and the median of their differences leaves out most of what the machine's
# drift adds to both; the difference of the two medians is shown beside it.
read -r srn_med _ <<<"$(stats "$TMP/lat-sandrun-nouserns")"
read -r srn_big _ <<<"$(rate "$JOBS" "$TMP/tp-sandrun-nouserns-$JOBS")"
paired=$(paste "$TMP/lat-sandrun" "$TMP/lat-sandrun-nouserns" |
  awk '$1 != "fail" && $2 != "fail" { print ($1 - $2) / 1000 }' | sort -g |
  awk '{ v[NR] = $1 } END { if (NR) printf "%.3f %d", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, NR; else print "fail 0" }')
read -r pd np <<<"$paired"
awk -v s="$sr_big" -v n="$srn_big" -v sm="$sr_med" -v nm="$srn_med" -v pd="$pd" -v np="$np" 'BEGIN {
  if (pd != "fail" && sm != "fail" && nm != "fail")
    printf "sandrun user namespace: %+.2f ms per exec (median of %d paired runs; medians %.2f vs userns = false %.2f, %+.2f): target +1 ms %s\n", pd, np, sm, nm, sm - nm, (pd <= 1) ? "met" : "NOT met"
  if (s != "fail" && n != "fail")
    printf "sandrun user namespace: throughput %.2fx of userns = false: target 0.90x %s\n", s / n, (s / n >= 0.9) ? "met" : "NOT met" }'
# sandrun with limits and seccomp against crun with the same profile and limits; what the
# filter and the limits cost each of them (latency medians, ms).
read -r sru_med _ <<<"$(stats "$TMP/lat-sandrun-unconfined")"
read -r sru_big _ <<<"$(rate "$JOBS" "$TMP/tp-sandrun-unconfined-$JOBS")"
awk -v s="$sr_big" -v u="$sru_big" -v sm="$sr_med" -v um="$sru_med" -v sl="$srl_med" 'BEGIN {
  if (sm != "fail" && um != "fail") printf "sandrun seccomp filter: +%.2f ms per exec (%.2f vs unconfined %.2f)", sm - um, sm, um
  if (s != "fail" && u != "fail") printf "; throughput %.2fx of unconfined", s / u
  if (sm != "fail" && um != "fail") printf "\n"
  if (sl != "fail" && sm != "fail") printf "sandrun limits (memory, cpus on top of pids): %+.2f ms per exec\n", sl - sm }'
if (( CRUN_SL )); then
  read -r crun_med _ <<<"$(stats "$TMP/lat-crun")"
  read -r crunsc_med _ <<<"$(stats "$TMP/lat-crun-sc")"
  read -r crunsl_med _ <<<"$(stats "$TMP/lat-crun-sl")"
  read -r crun_big _ <<<"$(rate "$JOBS" "$TMP/tp-crun-$JOBS")"
  read -r crunsl_big _ <<<"$(rate "$JOBS" "$TMP/tp-crun-sl-$JOBS")"
  read -r crunsl_small _ <<<"$(rate "$JOBS_SMALL" "$TMP/tp-crun-sl-$JOBS_SMALL")"
  echo "crun seccomp+limits: $(sed -n 's/^sandrun-oci-seccomp: //p' "$TMP/oci-seccomp.log")"
  echo "  seen inside (Seccomp NoNewPrivs CapEff memory cpu-quota pids): ${CRUN_SL_SEES:-?}"
  awk -v c="$crun_med" -v sc="$crunsc_med" -v sl="$crunsl_med" -v cb="$crun_big" -v slb="$crunsl_big" 'BEGIN {
    if (c != "fail" && sc != "fail") printf "crun seccomp filter (compiled in every container): +%.2f ms per run (%.2f vs %.2f)\n", sc - c, sc, c
    if (sc != "fail" && sl != "fail") printf "crun limits (memory, cpu, pids): %+.2f ms per run\n", sl - sc
    if (cb != "fail" && slb != "fail") printf "crun throughput with seccomp+limits: %.2fx of plain crun'"'"'s\n", slb / cb }'
  read -r srro_big _ <<<"$(rate "$JOBS" "$TMP/tp-sandrun-ro-$JOBS")"
  read -r srro_small _ <<<"$(rate "$JOBS_SMALL" "$TMP/tp-sandrun-ro-$JOBS_SMALL")"
  target() {  # LABEL SANDRUN_BIG SANDRUN_SMALL
    awk -v what="$1" -v b="$2" -v cb="$crunsl_big" -v s="$3" -v cs="$crunsl_small" -v n="$JOBS" -v m="$JOBS_SMALL" 'BEGIN {
      if (b != "fail" && cb != "fail")
        printf "target: throughput with seccomp+limits >= 3x crun'"'"'s, %s: %s at %d (%.2fx)", what, (b >= 3 * cb) ? "met" : "NOT met", n, b / cb
      if (s != "fail" && cs != "fail") printf ", %s at %d (%.2fx)", (s >= 3 * cs) ? "met" : "NOT met", m, s / cs
      printf "\n" }'
  }
  target "read-only root as crun's bundle" "$srro_big" "$srro_small"
  target "sandrun with its writable layer" "$srl_big" "$srl_small"
  awk -v l="$srl_med" -v cl="$crunsl_med" 'BEGIN {
    if (l != "fail" && cl != "fail") printf "latency with seccomp+limits: sandrun exec %.2f ms vs crun %.2f ms (%.2fx)\n", l, cl, l / cl }'
fi
busy=$(cpu_busy)
echo "CPU busy after the end: $busy%$( ((busy > 10)) && echo "  (something else was running: figures are noisy)")"
