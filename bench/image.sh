#!/usr/bin/env bash
# image.sh: the image cache's three measurements (issue 4), each side by side with its peer in
# one run: rootfs import vs tar -x, registry pull vs skopeo copy, and container start on a
# 20-layer image vs the 1-layer busybox image. Usage: bench/image.sh [BUILD_DIR]
#
# 1. Import: a Debian minbase rootfs (debootstrap) as a tarball, uncompressed and gzip -1:
#    `sandrun image import --rootfs FILE NAME` into a fresh state dir against `tar -xf FILE`
#    (`tar -xzf` for the gzip one) into a fresh dir, both in the temp dir, page cache warm.
# 2. Pull: the same rootfs as a 5-layer gzip image in a docker-registry on 127.0.0.1 (started
#    here): `sandrun image pull` into a fresh state dir against `skopeo copy` to a fresh OCI dir
#    with a fresh blob-info cache; and, if podman is installed, against `podman pull` into fresh
#    storage, which unpacks the layers as sandrun does.
# 3. Warm start: `sandrun exec --image X -- /bin/true` on the built-in busybox image, on the same
#    busybox layer imported as a 1-layer OCI image, and on it plus 19 one-file layers; also with
#    --read-only.
#
# Runs as root. The debootstrap rootfs is made once (minutes) and kept as tarballs in
# $IMG_CACHE_DIR (default /var/tmp/sandrun-bench; IMG_REFRESH=1 makes it anew). Everything else
# goes to one temp dir ($TMPDIR or /tmp) that is removed on exit, even on Ctrl-C; the registry
# is killed by its pid. Needs bash 5, debootstrap, skopeo, docker-registry, jq, gzip, sha256sum.
# Knobs (environment): IMG_ROUNDS (5; import and pull rounds, the median is reported),
# IMG_LAT_RUNS (30), IMG_SUITE (bookworm), IMG_MIRROR (default: the Debian mirror apt uses),
# IMG_CACHE_DIR, IMG_REFRESH. See docs/benchmarks.md for the figures.
set -uo pipefail
export LC_ALL=C  # EPOCHREALTIME and printf must use '.' as the decimal point

ROUNDS=${IMG_ROUNDS:-5}
LAT_RUNS=${IMG_LAT_RUNS:-30}
SUITE=${IMG_SUITE:-bookworm}
CACHE=${IMG_CACHE_DIR:-/var/tmp/sandrun-bench}
EXTRA_LAYERS=19  # on top of busybox: the 20-layer image

die() { echo "image.sh: $*" >&2; exit 2; }
note() { echo "note: $*" >&2; }
log() { echo "$*" >&2; }

# ---- locate sandrun, check the tools --------------------------------------------------------
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
locate_sandrun "${1:-build}" "debootstrap, tar -x of a rootfs, containers"
for tool in debootstrap skopeo docker-registry jq gzip sha256sum tar; do
  command -v "$tool" >/dev/null || die "$tool is not installed (ci/install-deps.sh installs all but debootstrap: apt-get install debootstrap)"
done

# ---- temp dir, cleanup ----------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sandrun-image.XXXXXX") || die "mktemp failed"
REG_PID=''     # the docker-registry we started
BUILD_DIR=''   # a debootstrap in progress under $CACHE (removed if we are interrupted)
SR_ROOTS=()    # sandrun state dirs, swept on exit

# Mounts under DIR, deepest first (debootstrap mounts /proc and /sys in its target).
mounts_under() { awk -v p="$1/" 'index($5 "/", p) == 1 { print $5 }' /proc/self/mountinfo | sort -r; }

cleanup() {
  trap - EXIT INT TERM
  if [[ -n $REG_PID ]] && kill -0 "$REG_PID" 2>/dev/null; then
    kill "$REG_PID" 2>/dev/null
    wait "$REG_PID" 2>/dev/null
  fi
  # sandrun removes its cgroups and slots itself, even on SIGINT; after a harder kill this
  # sweeps what its dead processes left.
  local r m
  for r in "${SR_ROOTS[@]}"; do
    [[ -d $r ]] && "$SANDRUN" --root "$r" cleanup >/dev/null 2>&1
  done
  for d in "$TMP" ${BUILD_DIR:+"$BUILD_DIR"}; do
    for m in $(mounts_under "$d"); do
      note "unmounting leftover $m"
      umount -l "$m"
    done
  done
  [[ -n $BUILD_DIR ]] && rm -rf "$BUILD_DIR"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- timing (cpu_busy, settle and stats come from bench/lib.sh) ------------------------------
busy_note() {  # WHEN: prints how busy the CPUs are, and flags a disturbed measurement
  local b; b=$(cpu_busy)
  log "  CPU busy $1: $b%$( ((b > 10)) && echo "  (something else is running: figures will be noisy)")"
  echo "$1: $b%" >>"$TMP/busy.log"
}

# timed FILE [--sync FILE2] CMD...: wall time of CMD in us appended to FILE ("fail" when it
# failed). With --sync, then runs sync(1) and appends the time of CMD + sync to FILE2: what it
# takes until the result is on disk (sandrun syncs its layers itself, tar does not).
timed() {
  local file=$1 sfile=''; shift
  if [[ $1 == --sync ]]; then sfile=$2; shift 2; fi
  local t0=${EPOCHREALTIME/./}
  "$@" >>"$TMP/cmd.log" 2>&1
  local rc=$? t1=${EPOCHREALTIME/./}
  if (( rc != 0 )); then
    echo fail >>"$file"; [[ -n $sfile ]] && echo fail >>"$sfile"
    note "failed: $* (see the end of the output)"; tail -3 "$TMP/cmd.log" >&2
    return 1
  fi
  echo $((t1 - t0)) >>"$file"
  if [[ -n $sfile ]]; then
    sync
    echo $((${EPOCHREALTIME/./} - t0)) >>"$sfile"
  fi
}

med() { local s; s=$(stats "$1"); echo "${s%% *}"; }
rounds() { awk '{ printf "%s%s", (NR > 1) ? " " : "", ($1 == "fail") ? "fail" : int($1 / 1000 + 0.5) }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "fail" || b == "fail" || b == 0) print "-"; else printf "%.2f\n", a / b }'; }

# ---- the machine ----------------------------------------------------------------------------
model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
fs_of() {  # DIR -> "ext4 (vda, no journal)" and the like
  local src fstype dev j
  read -r src fstype < <(findmnt -no SOURCE,FSTYPE --target "$1" 2>/dev/null)
  if [[ $fstype == ext4 ]]; then
    dev=${src##*/}
    if [[ -r /sys/fs/ext4/$dev/journal_task ]]; then
      j=$(cat "/sys/fs/ext4/$dev/journal_task")
      [[ $j == '<none>' ]] && j="no journal" || j="journal"
      echo "ext4 ($dev, $j)"; return
    fi
  fi
  echo "${fstype:-?} (${src:-?})"
}
echo "sandrun image benchmark (issue 4), $(date -u +%F) ($(date -u +%T) UTC)"
echo "machine: $(nproc) CPUs ($model), $mem, kernel $(uname -r)"
echo "sandrun: $SANDRUN ($("$SANDRUN" version 2>/dev/null | head -1))"
echo "peers: $(tar --version | head -1), skopeo $(skopeo --version | awk '{ print $NF }'), docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null)"
echo "temp dir: $TMP on $(fs_of "$TMP")"
# Every tree is kept until the end (see 1. below): about 2 GiB per round.
need_gib=$((2 * ROUNDS + 2))
avail_gib=$(( $(df --output=avail -k "$TMP" | tail -1) >> 20 ))
(( avail_gib >= need_gib )) || die "needs about $need_gib GiB free in $TMP, has $avail_gib GiB"
[[ $(fs_of "$TMP") == *"no journal"* ]] &&
  note "the temp dir is on an ext4 without a journal: inodes freed in the last minutes (by a previous run: wait 6 minutes) slow down file creation"
busy=$(cpu_busy)
echo "CPU busy before start: $busy%$( ((busy > 10)) && echo "  (something else is running: figures will be noisy)")"
echo

# ---- the Debian minbase rootfs, cached ------------------------------------------------------
# The Debian mirror apt is configured with, for the suite: deb822 .sources first, then the
# one-line format. Only http(s)/file URIs that serve the suite itself (not -security).
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    awk -v suite="$SUITE" '
      function flush() { if (deb && has && uri != "" && !done) { print uri; done = 1 } deb = has = 0; uri = "" }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    # deb [options] URI SUITE COMPONENTS...
    sed -E 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2 }'
  done
}
ROOTFS_TAR=$CACHE/$SUITE-minbase.tar
ROOTFS_GZ=$CACHE/$SUITE-minbase.tar.gz
STAMP=$CACHE/$SUITE-minbase.stamp
STAMP_WANT="v1 debootstrap --variant=minbase $SUITE; /dev, /proc, /sys emptied"
make_rootfs() {
  mkdir -p "$CACHE" || die "cannot create $CACHE"
  if [[ ${IMG_REFRESH:-0} != 1 && -s $ROOTFS_TAR && -s $ROOTFS_GZ && -f $STAMP && $(cat "$STAMP") == "$STAMP_WANT" ]]; then
    log "rootfs: cached $ROOTFS_TAR"
    return
  fi
  local mirror=${IMG_MIRROR:-$(debian_mirror | head -1)}
  [[ -n $mirror ]] || die "no Debian mirror for $SUITE in /etc/apt/sources.list{,.d} (set IMG_MIRROR)"
  BUILD_DIR=$(mktemp -d "$CACHE/build.XXXXXX") || die "mktemp in $CACHE failed"
  log "rootfs: debootstrap --variant=minbase $SUITE from $mirror (one-off, a few minutes; kept in $CACHE)"
  local t0=$SECONDS
  debootstrap --variant=minbase "$SUITE" "$BUILD_DIR/root" "$mirror" >"$BUILD_DIR/debootstrap.log" 2>&1 ||
    die "debootstrap failed: $(tail -3 "$BUILD_DIR/debootstrap.log")"
  # As container images are made: no device nodes, nothing under /proc or /sys.
  (cd "$BUILD_DIR/root" && rm -rf dev/* proc/* sys/*)
  tar -C "$BUILD_DIR/root" --numeric-owner -cf "$BUILD_DIR/rootfs.tar" . || die "tar of the rootfs failed"
  gzip -1 -n -c "$BUILD_DIR/rootfs.tar" >"$BUILD_DIR/rootfs.tar.gz" || die "gzip failed"
  mv "$BUILD_DIR/rootfs.tar" "$ROOTFS_TAR" && mv "$BUILD_DIR/rootfs.tar.gz" "$ROOTFS_GZ" &&
    echo "$STAMP_WANT" >"$STAMP" || die "cannot write the cache in $CACHE"
  rm -rf "$BUILD_DIR"; BUILD_DIR=''
  log "rootfs: made in $((SECONDS - t0)) s"
}
make_rootfs
ROOTFS=$TMP/rootfs  # unpacked once, to make the multi-layer image from
mkdir "$ROOTFS" && tar -C "$ROOTFS" -xf "$ROOTFS_TAR" || die "cannot unpack $ROOTFS_TAR"
rootfs_files=$(tar -tf "$ROOTFS_TAR" | wc -l)
rootfs_mib=$(du -sm --apparent-size "$ROOTFS" | cut -f1)
echo "rootfs: $ROOTFS_TAR: $rootfs_files entries, $rootfs_mib MiB unpacked;" \
  "tar $(( $(stat -c %s "$ROOTFS_TAR") >> 20 )) MiB, tar.gz (gzip -1) $(( $(stat -c %s "$ROOTFS_GZ") >> 20 )) MiB"

# ---- OCI layouts ----------------------------------------------------------------------------
# oci_image DIR TAG LAYER.tar...: an OCI image layout in DIR (made if missing) with one image
# tagged TAG whose layers are the given tarballs, each gzip -n (default level, as registries'
# images are), config and manifest as tests/support/oci_layout.cc writes them.
oci_image() {
  local dir=$1 tag=$2; shift 2
  mkdir -p "$dir/blobs/sha256" || return 1
  echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  local t diff dig diffs=() descs=()
  for t in "$@"; do
    diff=$(sha256sum "$t" | cut -d' ' -f1)
    gzip -n -c "$t" >"$dir/layer.tmp" || return 1
    dig=$(sha256sum "$dir/layer.tmp" | cut -d' ' -f1)
    mv "$dir/layer.tmp" "$dir/blobs/sha256/$dig"
    diffs+=("sha256:$diff")
    descs+=("$(jq -cn --arg d "sha256:$dig" --argjson s "$(stat -c %s "$dir/blobs/sha256/$dig")" \
      '{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}')")
  done
  blob() {  # MEDIA_TYPE < JSON -> descriptor
    cat >"$dir/blob.tmp"
    local d; d=$(sha256sum "$dir/blob.tmp" | cut -d' ' -f1)
    mv "$dir/blob.tmp" "$dir/blobs/sha256/$d"
    jq -cn --arg m "$1" --arg d "sha256:$d" --argjson s "$(stat -c %s "$dir/blobs/sha256/$d")" \
      '{mediaType: $m, digest: $d, size: $s}'
  }
  local cfg man
  cfg=$(printf '%s\n' "${diffs[@]}" | jq -cRn --arg arch "$(dpkg --print-architecture)" '{architecture: $arch, os: "linux",
      config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"]},
      rootfs: {type: "layers", diff_ids: [inputs]}}' | blob application/vnd.oci.image.config.v1+json)
  man=$(printf '%s\n' "${descs[@]}" | jq -cn --argjson c "$cfg" '{schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json", config: $c, layers: [inputs]}' |
    blob application/vnd.oci.image.manifest.v1+json)
  local index='{"schemaVersion":2,"manifests":[]}'
  [[ -f $dir/index.json ]] && index=$(cat "$dir/index.json")
  jq -c --argjson m "$man" --arg t "$tag" \
    '.manifests += [$m + {annotations: {"org.opencontainers.image.ref.name": $t}}]' <<<"$index" >"$dir/index.json"
}

# layer_tar OUT PATH...: a layer tarball of the given paths of the rootfs (relative, "./x"),
# with their parent directories, each entry once (no recursion into the parents).
layer_tar() {
  local out=$1; shift
  (cd "$ROOTFS" && {
    local p parent
    local -A seen=()
    for p in "$@"; do
      # The parents of p ("./usr" for "./usr/lib"), once each, then p's whole tree.
      parent=${p%/*}
      while [[ $parent != . && $parent != '' ]]; do
        [[ -n ${seen[$parent]:-} ]] || printf '%s\0' "$parent"
        seen[$parent]=1; parent=${parent%/*}
      done
      find "$p" -print0
    done
  } | tar --numeric-owner --no-recursion --null -T - -cf "$out")
}

# ---- 1. import ------------------------------------------------------------------------------
# Each round: sandrun into a fresh state dir, tar into a fresh dir, both in the temp dir, the
# first of them alternating. Every tree is kept until the script ends: on an ext4 without a
# journal, each new inode costs a scan over the inodes freed in the last 1-6 minutes
# (fs/ext4/ialloc.c, recently_deleted), so deleting a tree would bill the next measurements.
# The tarballs are read once first (warm page cache for both); nothing is dropped.
log "1. import: $ROUNDS rounds of sandrun image import --rootfs vs tar -x (uncompressed and gzip)"
cat "$ROOTFS_TAR" "$ROOTFS_GZ" >/dev/null
IMP=$TMP/import
mkdir "$IMP"
imp_sandrun() {  # ROUND KIND FILE
  local r=$IMP/sr-$2-$1
  SR_ROOTS+=("$r")
  timed "$TMP/imp-sandrun-$2" --sync "$TMP/imps-sandrun-$2" "$SANDRUN" --root "$r" image import --rootfs "$3" "minbase:$1"
}
imp_tar() {  # ROUND KIND FILE
  local d=$IMP/tar-$2-$1 z=''
  [[ $2 == gz ]] && z=z
  mkdir "$d" && timed "$TMP/imp-tar-$2" --sync "$TMP/imps-tar-$2" tar -C "$d" -x${z}f "$3"
}
busy_note "before import"
for ((round = 1; round <= ROUNDS; round++)); do
  for kind in tar gz; do
    file=$ROOTFS_TAR; [[ $kind == gz ]] && file=$ROOTFS_GZ
    if (( round % 2 )); then order=(sandrun tar); else order=(tar sandrun); fi
    for who in "${order[@]}"; do
      sync; settle
      "imp_$who" "$round" "$kind" "$file"
    done
  done
done
busy_note "after import"
# The first sandrun import's layer against the tar -x tree: the same files.
first=$(ls -d "$IMP"/sr-tar-1/layers/sha256/*/ 2>/dev/null | head -1)
if [[ -n $first ]] && ! diff -r --no-dereference -q "$first" "$IMP/tar-tar-1" >"$TMP/imp-diff.log" 2>&1; then
  note "sandrun's layer differs from tar -x's tree: $(head -3 "$TMP/imp-diff.log")"
fi
store_size() {  # STATE_DIR -> "N MiB (layer L MiB, blobs B MiB)"
  local l b; l=$(du -sm "$1/layers" | cut -f1); b=$(du -sm "$1/blobs" | cut -f1)
  echo "$((l + b)) MiB (layer $l MiB, blobs $b MiB)"
}
imp_store_tar=$(store_size "$IMP/sr-tar-1" 2>/dev/null)
imp_store_gz=$(store_size "$IMP/sr-gz-1" 2>/dev/null)

# ---- 2. pull --------------------------------------------------------------------------------
# The rootfs as 5 gzip layers, split by directory: the top level but /usr and /var; /var;
# /usr/share; /usr/lib; the rest of /usr.
log "2. pull: building a 5-layer image, starting docker-registry"
L=$TMP/pull-layers
mkdir "$L"
top=()
for p in "$ROOTFS"/* "$ROOTFS"/.[!.]*; do
  [[ -e $p || -L $p ]] || continue
  b=${p##*/}; [[ $b == usr || $b == var ]] || top+=("./$b")
done
usr_rest=()
for p in "$ROOTFS"/usr/*; do
  b=${p##*/}; [[ $b == share || $b == lib ]] || usr_rest+=("./usr/$b")
done
layer_tar "$L/p1.tar" "${top[@]}" && layer_tar "$L/p2.tar" ./var && layer_tar "$L/p3.tar" ./usr/share &&
  layer_tar "$L/p4.tar" ./usr/lib && layer_tar "$L/p5.tar" "${usr_rest[@]}" || die "cannot make the layers"
oci_image "$TMP/oci-minbase" 5layers "$L"/p{1,2,3,4,5}.tar || die "cannot make the OCI layout"
# The layer blobs, in order (for their sizes and the tar -xzf reference below).
man=$(jq -r '.manifests[0].digest | sub("sha256:"; "")' "$TMP/oci-minbase/index.json")
mapfile -t pull_blobs < <(jq -r '.layers[].digest | sub("sha256:"; "")' "$TMP/oci-minbase/blobs/sha256/$man" |
  sed "s|^|$TMP/oci-minbase/blobs/sha256/|")
pull_layers=$(for f in "${pull_blobs[@]}"; do echo -n "$(( $(stat -c %s "$f") >> 20 )) "; done)
rm -rf "$L"

# docker-registry on a free port of 127.0.0.1, its storage in the temp dir, no access log.
REG=$TMP/registry
mkdir -p "$REG/storage"
reg_answers() {  # PORT: GET /v2/ gets an HTTP answer
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3; head -c 7 <&3' reg "$1" 2>/dev/null | grep -q '^HTTP/1'
}
start_registry() {
  local attempt port i
  for ((attempt = 0; attempt < 5; attempt++)); do
    port=$((20000 + RANDOM % 30000))
    ss -ltnH "sport = :$port" 2>/dev/null | grep -q . && continue
    cat >"$REG/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REG/storage
http:
  addr: 127.0.0.1:$port
  secret: sandrun-bench
EOF
    docker-registry serve "$REG/config.yml" >"$REG/registry.log" 2>&1 &
    REG_PID=$!
    for ((i = 0; i < 100; i++)); do
      if reg_answers "$port"; then REG_PORT=$port; return 0; fi
      kill -0 "$REG_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null; REG_PID=''
  done
  die "docker-registry did not start: $(tail -3 "$REG/registry.log")"
}
start_registry
HOST=127.0.0.1:$REG_PORT
REF=$HOST/bench/minbase:5layers
skopeo copy --quiet --insecure-policy --dest-tls-verify=false --preserve-digests \
  "oci:$TMP/oci-minbase:5layers" "docker://$REF" >"$TMP/push.log" 2>&1 || die "skopeo push failed: $(tail -3 "$TMP/push.log")"
echo "pull image: $REF, layers of ${pull_layers% }MiB (gzip), docker-registry pid $REG_PID"

# skopeo keeps a blob-info cache in /var/lib/containers/cache (root); each run gets an empty one
# (a fresh dir bind-mounted over it in a private mount namespace), so every copy is cold and
# the host's cache is untouched.
PULL=$TMP/pull
mkdir "$PULL"
pull_sandrun() {  # ROUND
  local r=$PULL/sr-$1
  SR_ROOTS+=("$r")
  timed "$TMP/pull-sandrun" --sync "$TMP/pulls-sandrun" "$SANDRUN" --root "$r" image pull --insecure-registry "$HOST" "$REF"
}
pull_skopeo() {  # ROUND
  local d=$PULL/skopeo-$1 c=$PULL/skopeo-cache-$1
  mkdir -p "$c"
  timed "$TMP/pull-skopeo" --sync "$TMP/pulls-skopeo" unshare -m bash -c '
      mount --make-rslave / && mkdir -p /var/lib/containers/cache &&
      mount --bind "$1" /var/lib/containers/cache || exit 1
      exec skopeo copy --quiet --insecure-policy --src-tls-verify=false "docker://$2" "oci:$3:5layers"' \
    pull "$c" "$REF" "$d"
}
# The like-for-like peer, if installed: `podman pull` also unpacks every layer (into its overlay
# storage), where skopeo only stores the blobs. Fresh storage each round, in a private mount
# namespace (its overlay driver mounts its home), its blob-info cache and big temp files there.
pull_podman() {  # ROUND
  local d=$PULL/podman-$1
  mkdir -p "$d/tmp" "$d/cache"
  timed "$TMP/pull-podman" --sync "$TMP/pulls-podman" unshare -m bash -c '
      mount --make-rslave / && mkdir -p /var/lib/containers/cache &&
      mount --bind "$1/cache" /var/lib/containers/cache || exit 1
      TMPDIR=$1/tmp exec podman --root "$1/root" --runroot "$1/run" --tmpdir "$1/libpod" \
        --storage-driver overlay --cgroup-manager cgroupfs --events-backend file \
        pull --quiet --tls-verify=false "$2"' pull "$d" "$REF"
}
# A reference, not a peer: what unpacking the same blobs costs without a registry, tar -xzf of
# each in turn into one fresh dir (sandrun unpacks them while they download, in parallel).
pull_untar() {  # ROUND
  local d=$PULL/untar-$1
  mkdir "$d" && timed "$TMP/pull-untar" --sync "$TMP/pulls-untar" \
    bash -c 'd=$1; shift; for b; do tar -C "$d" -xzf "$b" || exit 1; done' untar "$d" "${pull_blobs[@]}"
}
log "2. pull: $ROUNDS rounds of sandrun image pull vs skopeo copy to an OCI dir (and tar -xzf of the blobs)"
PULLERS=(sandrun skopeo)
pull_sandrun 0; pull_skopeo 0  # warm-up (the registry's page cache), not counted
if ! command -v podman >/dev/null; then
  note "podman is not installed: no like-for-like pull row (apt-get install podman)"
elif pull_podman 0; then
  PULLERS+=(podman)
else
  note "podman pull does not work here; skipped"
fi
PULLERS+=(untar)
rm -f "$TMP"/pull-* "$TMP"/pulls-*
busy_note "before pull"
for ((round = 1; round <= ROUNDS; round++)); do
  np=${#PULLERS[@]}
  for ((k = 0; k < np; k++)); do  # each round starts at another one
    who=${PULLERS[(k + round - 1) % np]}
    sync; settle
    "pull_$who" "$round"
  done
done
busy_note "after pull"
kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null; REG_PID=''

# ---- 3. warm start ------------------------------------------------------------------------
# busybox: the built-in image. bb1: its layer imported as a 1-layer OCI image (the same config
# as bb20, to tell the layer count from the import path). bb20: bb1 + 19 layers of one file.
log "3. warm start: 1-layer and 20-layer images, $LAT_RUNS runs each"
SR_ROOT=$TMP/warm
SR_ROOTS+=("$SR_ROOT")
"$SANDRUN" --root "$SR_ROOT" exec -- /bin/true >>"$TMP/cmd.log" 2>&1 || die "sandrun exec -- /bin/true failed: $(tail -3 "$TMP/cmd.log")"
bb_layer=$(ls -d "$SR_ROOT"/layers/sha256/*/ | head -1)
L=$TMP/warm-layers
mkdir -p "$L" && tar -C "$bb_layer" --numeric-owner -cf "$L/bb.tar" . || die "cannot tar the busybox layer"
extra=()
for ((k = 1; k <= EXTRA_LAYERS; k++)); do
  mkdir -p "$L/x$k/etc/layers" && echo "layer $k" >"$L/x$k/etc/layers/$k" &&
    tar -C "$L/x$k" --numeric-owner -cf "$L/x$k.tar" . || die "cannot make layer $k"
  extra+=("$L/x$k.tar")
done
oci_image "$TMP/oci-bb" bb1:latest "$L/bb.tar" && oci_image "$TMP/oci-bb" bb20:latest "$L/bb.tar" "${extra[@]}" || die "cannot make the OCI layout"
"$SANDRUN" --root "$SR_ROOT" image import "$TMP/oci-bb" >>"$TMP/cmd.log" 2>&1 || die "import of the busybox OCI layout failed: $(tail -3 "$TMP/cmd.log")"
bb20_layers=$("$SANDRUN" --root "$SR_ROOT" image inspect bb20 2>/dev/null | jq '.[0].layers | length' 2>/dev/null)
[[ $bb20_layers == 20 ]] || note "bb20 should have 20 layers, image inspect says ${bb20_layers:-?}"
"$SANDRUN" --root "$SR_ROOT" exec --image bb20 -- cat /etc/layers/19 >"$TMP/bb20.out" 2>&1 && grep -q 'layer 19' "$TMP/bb20.out" ||
  die "bb20 does not run: $(tail -3 "$TMP/bb20.out")"

lat_once() {  # FILE CMD...: one run, its wall time in us appended to FILE ("fail" on error)
  local file=$1; shift
  local t0=${EPOCHREALTIME/./}
  "$@" >/dev/null 2>&1
  local rc=$? t1=${EPOCHREALTIME/./}
  if (( rc != 0 )); then echo fail >>"$file"; else echo $((t1 - t0)) >>"$file"; fi
}
LAT=(busybox busybox-ro bb1 bb1-ro bb20 bb20-ro)
lat_cmd() {  # NAME FILE
  local img=${1%-ro} ro=()
  [[ $1 == *-ro ]] && ro=(--read-only)
  lat_once "$2" "$SANDRUN" --root "$SR_ROOT" exec --image "$img" "${ro[@]}" -- /bin/true
}
busy_note "before warm start"
settle
for ((i = 0; i < 3; i++)); do for v in "${LAT[@]}"; do lat_cmd "$v" /dev/null; done; done
nlat=${#LAT[@]}
for ((i = 1; i <= LAT_RUNS; i++)); do
  for ((k = 0; k < nlat; k++)); do  # interleaved, each pass starting at another one
    v=${LAT[(k + i) % nlat]}
    lat_cmd "$v" "$TMP/lat-$v"
  done
done
busy_note "after warm start"

# ---- report ---------------------------------------------------------------------------------
echo
echo "1. Import of the rootfs tarball into a fresh state dir / dir (ms, median of $ROUNDS; page cache warm)"
echo "   'until synced' adds a sync(1) after the command: sandrun syncs its layer itself, tar does not"
fmt='   %-40s %9s %9s %15s   %s\n'
printf "$fmt" "" "median" "p90" "until synced" "rounds, in order"
for kind in tar gz; do
  for who in tar sandrun; do
    read -r m p _ <<<"$(stats "$TMP/imp-$who-$kind")"
    if [[ $who == tar ]]; then lbl="tar -x${kind/tar/}f"; lbl=${lbl/gz/z}; else lbl="sandrun image import --rootfs"; fi
    printf "$fmt" "$lbl ($kind)" "$m" "${p:--}" "$(med "$TMP/imps-$who-$kind")" "$(rounds "$TMP/imp-$who-$kind")"
  done
done
declare -A R
R[imp_tar]=$(ratio "$(med "$TMP/imp-sandrun-tar")" "$(med "$TMP/imp-tar-tar")")
R[imp_gz]=$(ratio "$(med "$TMP/imp-sandrun-gz")" "$(med "$TMP/imp-tar-gz")")
R[imps_tar]=$(ratio "$(med "$TMP/imps-sandrun-tar")" "$(med "$TMP/imps-tar-tar")")
R[imps_gz]=$(ratio "$(med "$TMP/imps-sandrun-gz")" "$(med "$TMP/imps-tar-gz")")
echo "   sandrun / tar: uncompressed ${R[imp_tar]}x (${R[imps_tar]}x until synced), gzip ${R[imp_gz]}x (${R[imps_gz]}x until synced)"
echo "   sandrun's state dir after the import: ${imp_store_tar:-?} from the tar, ${imp_store_gz:-?} from the tar.gz"

echo
echo "2. Pull of the 5-layer image from docker-registry on 127.0.0.1 (ms, median of $ROUNDS)"
printf "$fmt" "" "median" "p90" "until synced" "rounds, in order"
read -r m p _ <<<"$(stats "$TMP/pull-skopeo")"
printf "$fmt" "skopeo copy docker:// oci:" "$m" "${p:--}" "$(med "$TMP/pulls-skopeo")" "$(rounds "$TMP/pull-skopeo")"
read -r m p _ <<<"$(stats "$TMP/pull-sandrun")"
printf "$fmt" "sandrun image pull" "$m" "${p:--}" "$(med "$TMP/pulls-sandrun")" "$(rounds "$TMP/pull-sandrun")"
if [[ -s $TMP/pull-podman ]]; then
  read -r m p _ <<<"$(stats "$TMP/pull-podman")"
  printf "$fmt" "podman pull (unpacks too)" "$m" "${p:--}" "$(med "$TMP/pulls-podman")" "$(rounds "$TMP/pull-podman")"
fi
read -r m p _ <<<"$(stats "$TMP/pull-untar")"
printf "$fmt" "(reference: tar -xzf of the 5 blobs)" "$m" "${p:--}" "$(med "$TMP/pulls-untar")" "$(rounds "$TMP/pull-untar")"
R[pull]=$(ratio "$(med "$TMP/pull-sandrun")" "$(med "$TMP/pull-skopeo")")
R[pulls]=$(ratio "$(med "$TMP/pulls-sandrun")" "$(med "$TMP/pulls-skopeo")")
echo "   sandrun / skopeo: ${R[pull]}x (${R[pulls]}x until synced); skopeo keeps the layers compressed, sandrun unpacks them"
if [[ -s $TMP/pull-podman ]]; then
  echo "   sandrun / podman: $(ratio "$(med "$TMP/pull-sandrun")" "$(med "$TMP/pull-podman")")x ($(ratio "$(med "$TMP/pulls-sandrun")" "$(med "$TMP/pulls-podman")")x until synced)"
fi

echo
echo "3. Warm start: sandrun exec --image X -- /bin/true, $LAT_RUNS runs (ms)"
printf '   %-48s %9s %9s %9s\n' "image" "median" "p90" "÷ busybox"
for v in "${LAT[@]}"; do
  read -r m p _ <<<"$(stats "$TMP/lat-$v")"
  base=busybox; [[ $v == *-ro ]] && base=busybox-ro
  case ${v%-ro} in
    busybox) lbl="busybox (built-in, 1 layer)" ;; bb1) lbl="bb1 (busybox layer as OCI, 1 layer)" ;; bb20) lbl="bb20 (20 layers)" ;;
  esac
  [[ $v == *-ro ]] && lbl="$lbl, --read-only"
  printf '   %-48s %9s %9s %9s\n' "$lbl" "$m" "${p:--}" "$(ratio "$m" "$(med "$TMP/lat-$base")")"
done
R[warm]=$(ratio "$(med "$TMP/lat-bb20")" "$(med "$TMP/lat-busybox")")
R[warm_ro]=$(ratio "$(med "$TMP/lat-bb20-ro")" "$(med "$TMP/lat-busybox-ro")")
R[warm1]=$(ratio "$(med "$TMP/lat-bb20")" "$(med "$TMP/lat-bb1")")

echo
verdict() {  # RATIO LIMIT -> met / NOT met
  awk -v r="$1" -v l="$2" 'BEGIN { if (r == "-") print "no figure"; else print (r + 0 <= l) ? "met" : "NOT met" }'
}
echo "Targets:"
echo "  import <= 1.2x tar -x:        $(verdict "${R[imp_gz]}" 1.2) gzip (${R[imp_gz]}x), $(verdict "${R[imp_tar]}" 1.2) uncompressed (${R[imp_tar]}x)"
echo "  pull <= 1.0x skopeo copy:     $(verdict "${R[pull]}" 1.0) (${R[pull]}x)"
echo "  20 layers start < 10% slower: $(verdict "${R[warm]}" 1.0999) (${R[warm]}x of busybox; ${R[warm_ro]}x read-only; ${R[warm1]}x of the 1-layer OCI import)"
# Nothing of ours may outlive the run (the registry was killed by its pid, podman's mounts went
# with its namespace): processes naming the temp dir, mounts under it.
left=$(pgrep -f -- "$TMP" | tr '\n' ' ')
[[ -z $left ]] || note "processes still running with $TMP in their command line: $left"
[[ -z $(mounts_under "$TMP") ]] || note "mounts left under $TMP: $(mounts_under "$TMP" | tr '\n' ' ')"
echo "temp dir at the end: $(du -sh "$TMP" | cut -f1), $(du -s --inodes "$TMP" | cut -f1) inodes (removed now)"
busy=$(cpu_busy)
echo "CPU busy: $(paste -sd';' "$TMP/busy.log" | sed 's/;/; /g'); after the end: $busy%"
