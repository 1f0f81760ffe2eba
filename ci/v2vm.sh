#!/bin/bash
# v2vm.sh - run a shell command inside a throw-away QEMU (TCG, no KVM) VM that
# boots Debian's own 6.1 kernel with a pure cgroup v2 hierarchy at /sys/fs/cgroup.
# Needed because this host only has cgroup v1/hybrid and we must not touch it.
# Copied from /work/shared/tools/v2vm.sh (the team's shared tool) so that CI, which runs on a
# clean clone, has it; keep the two in step.
#
# Usage:
#   v2vm.sh build                         # build/refresh the cached image only
#   v2vm.sh run [-d DIR]... [-t SECS] [-m MiB] [-c CPUS] [--] 'shell command'
#   v2vm.sh clean                         # remove the cache dir
#
#   -d DIR   share host directory DIR (read-write, 9p virtfs) at the SAME absolute
#            path inside the VM; may be repeated. The command starts in the first
#            DIR (or / if none).
#   -t SECS  hard wall-clock limit for the whole VM run (default 600); on expiry
#            qemu is killed and the exit status is 124.
#   -m MiB   guest RAM (default 2048); -c CPUS guest vCPUs (default 2).
#
# The command runs as root via `bash -c` in the VM; its stdout+stderr are streamed
# to our stdout and v2vm.sh exits with the command's exit status (125 if the VM
# never reported one, 124 on timeout). The root fs is opened with -snapshot, so
# every run starts from the same clean image; only writes under -d dirs persist.
# Guest: Debian bookworm minbase (+kmod procps iproute2 + $V2VM_PKGS), same glibc
# as the host, so binaries built on this host run unchanged in the VM.
# Inside: cgroup2 mounted at /sys/fs/cgroup (nsdelegate), controllers
# cpuset cpu io memory hugetlb pids rdma misc; the command runs in the root cgroup.
#
# Env: V2VM_DIR (cache, default /var/tmp/v2vm), V2VM_PKGS (extra debs, comma-
# separated, e.g. "g++,make"; if set and different from the cached image's, the
# image is rebuilt; if unset, any cached image is reused), V2VM_CPU (qemu -cpu,
# default qemu64 = baseline x86-64, ~10% faster under TCG than "max"; use max
# for binaries built with -march=native), V2VM_CONSOLE=1 to also show the kernel
# console log after the run.
# Cost (2-vCPU host, TCG): ~8 s per run for boot+poweroff; fork/exec, unshare and
# g++ run ~8-10x slower than on the host. One-off build ~1.5 min, 260 MB cache
# (513 MB with V2VM_PKGS=g++).
set -euo pipefail

CACHE=${V2VM_DIR:-/var/tmp/v2vm}
SUITE=bookworm
BASE_PKGS=kmod,procps,iproute2
EXTRA_PKGS=${V2VM_PKGS:-}
STAMP_VER="v4 suite=$SUITE"   # bump when the image layout changes
STAMP_WANT="$STAMP_VER pkgs=$BASE_PKGS,$EXTRA_PKGS"

log() { echo "v2vm: $*" >&2; }
die() { log "ERROR: $*"; exit 125; }

need_host_pkgs() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  command -v qemu-img >/dev/null || missing+=(qemu-utils)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
  command -v cpio >/dev/null || missing+=(cpio)
  command -v modprobe >/dev/null || missing+=(kmod)
  if ((${#missing[@]})); then
    log "installing host packages: ${missing[*]}"
    [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock)" ] || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  fi
}

# Fetch a .deb (without installing it on the host) and unpack it into $2.
fetch_unpack() {
  local pkg=$1 dest=$2 dl=$CACHE/debs
  mkdir -p "$dl" "$dest"
  (cd "$dl" && apt-get download -qq "$pkg" >/dev/null 2>&1) \
    || (apt-get update -qq && cd "$dl" && apt-get download -qq "$pkg" >/dev/null)
  dpkg-deb -x "$(ls -t "$dl"/"${pkg}"_*.deb | head -1)" "$dest"
}

build() {
  # An existing image is reused as-is unless V2VM_PKGS is set and differs from it.
  if [ -z "${V2VM_PKGS+x}" ] && [ -f "$CACHE/stamp" ] && grep -q "^$STAMP_VER pkgs=" "$CACHE/stamp"; then
    STAMP_WANT=$(cat "$CACHE/stamp")
  fi
  if [ -f "$CACHE/stamp" ] && [ "$(cat "$CACHE/stamp")" = "$STAMP_WANT" ] \
     && [ -f "$CACHE/rootfs.img" ] && [ -f "$CACHE/initrd.img" ] && [ -f "$CACHE/vmlinuz" ]; then
    return 0
  fi
  need_host_pkgs
  log "building VM image in $CACHE (one-off, ~1.5 min)"
  rm -rf "$CACHE/kernel" "$CACHE/rootfs" "$CACHE/initramfs" "$CACHE/stamp"
  mkdir -p "$CACHE"

  # --- kernel: Debian's linux-image-amd64 (6.1), unpacked, not installed -----
  local kpkg kver
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$kpkg" ] || { apt-get update -qq; kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); }
  [ -n "$kpkg" ] || die "cannot resolve linux-image-amd64"
  fetch_unpack "$kpkg" "$CACHE/kernel"
  kver=${kpkg#linux-image-}
  cp "$CACHE/kernel/boot/vmlinuz-$kver" "$CACHE/vmlinuz"
  local kmods=$CACHE/kernel/lib/modules/$kver
  depmod -b "$CACHE/kernel" "$kver"

  # --- tiny initramfs: static busybox + virtio/ext4/9p modules --------------
  fetch_unpack busybox-static "$CACHE/bb"
  local ir=$CACHE/initramfs
  mkdir -p "$ir"/{bin,dev,proc,sys,root,mod}
  cp "$CACHE/bb/bin/busybox" "$ir/bin/busybox"
  for a in sh mount umount insmod switch_root mkdir sleep cat echo ls; do ln -sf busybox "$ir/bin/$a"; done
  : > "$ir/modlist"
  local m f
  for m in crc32c_generic virtio_pci virtio_blk ext4 9pnet_virtio 9p; do
    modprobe -d "$CACHE/kernel" -S "$kver" --show-depends "$m" | awk '$1=="insmod"{print $2}' | while read -r f; do
      f=${f#"$CACHE/kernel"}; b=$(basename "$f")
      grep -qx "$b" "$ir/modlist" || { cp "$CACHE/kernel$f" "$ir/mod/$b"; echo "$b" >> "$ir/modlist"; }
    done
  done
  cat > "$ir/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /modlist); do insmod /mod/$m 2>/dev/null; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 -o rw /dev/vda /root || { echo "v2vm-initramfs: cannot mount /dev/vda"; echo o > /proc/sysrq-trigger; }
umount /proc /sys /dev 2>/dev/null
exec switch_root /root /sbin/v2init
EOF
  chmod +x "$ir/init"
  (cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > "$CACHE/initrd.img"

  # --- rootfs: debootstrap minbase ------------------------------------------
  local rf=$CACHE/rootfs inc=$BASE_PKGS
  [ -n "$EXTRA_PKGS" ] && inc="$inc,$EXTRA_PKGS"
  local mirror
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || { log "no Debian mirror found in apt's sources"; exit 1; }
  debootstrap --variant=minbase --include="$inc" "$SUITE" "$rf" "$mirror" > "$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  # Kernel modules the guest may want at run time (overlay, veth, bridge, nf*, ...),
  # minus the big hardware driver trees.
  mkdir -p "$rf/lib/modules/$kver/kernel"
  cp -a "$kmods"/modules.order "$kmods"/modules.builtin* "$rf/lib/modules/$kver/"
  for d in arch block crypto fs kernel lib mm net security virt; do
    [ -d "$kmods/kernel/$d" ] && cp -a "$kmods/kernel/$d" "$rf/lib/modules/$kver/kernel/"
  done
  mkdir -p "$rf/lib/modules/$kver/kernel/drivers"
  for d in virtio block char net/veth.ko net/tun.ko net/macvlan.ko net/ipvlan net/vxlan net/dummy.ko net/wireguard md; do
    if [ -e "$kmods/kernel/drivers/$d" ]; then
      mkdir -p "$rf/lib/modules/$kver/kernel/drivers/$(dirname "$d")"
      cp -a "$kmods/kernel/drivers/$d" "$rf/lib/modules/$kver/kernel/drivers/$d"
    fi
  done
  rm -rf "$rf/lib/modules/$kver/kernel/net/wireless" "$rf/lib/modules/$kver/kernel/net/mac80211" \
         "$rf/lib/modules/$kver/kernel/net/bluetooth"
  depmod -b "$rf" "$kver"
  echo v2vm > "$rf/etc/hostname"
  echo "127.0.0.1 localhost v2vm" > "$rf/etc/hosts"
  : > "$rf/etc/fstab"
  rm -rf "$rf"/var/cache/apt/archives/*.deb "$rf"/var/lib/apt/lists/*
  # PID 1 stub: mount the per-run control share and run the init script v2vm.sh puts there.
  cat > "$rf/sbin/v2init" <<'EOF'
#!/bin/bash
mkdir -p /v2vm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 v2vmctl /v2vm && exec /bin/bash /v2vm/init
echo "v2vm: cannot mount control share" > /dev/console; echo o > /proc/sysrq-trigger; sleep 10
EOF
  chmod +x "$rf/sbin/v2init"

  # --- ext4 image -----------------------------------------------------------
  local mb
  mb=$(du -sm "$rf" | cut -f1)
  rm -f "$CACHE/rootfs.img"
  mkfs.ext4 -q -F -L v2vmroot -d "$rf" "$CACHE/rootfs.img" "$((mb * 13 / 10 + 256))M"
  rm -rf "$CACHE/rootfs" "$CACHE/initramfs" "$CACHE/bb" "$CACHE/kernel" "$CACHE/debs"
  echo "$STAMP_WANT" > "$CACHE/stamp"
  log "image ready: $(du -sh "$CACHE" | cut -f1) in $CACHE"
}

# Guest PID-1 script (run by /sbin/v2init from the control share /v2vm).
guest_init() {
  cat <<'EOF'
#!/bin/bash
# PID 1 inside the VM: set up a cgroup-v2-only system, run /v2vm/cmd, power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
hostname v2vm
ip link set lo up 2>/dev/null
out=/v2vm/out
i=0
while read -r tag path; do
  mkdir -p "$path" && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,access=client,posixacl "$tag" "$path" \
    || echo "v2vm: failed to mount $tag at $path" >> $out
  [ $i -eq 0 ] && cd "$path"; i=$((i+1))
done < /v2vm/shares
echo "V2VM_BOOTED $(cut -d' ' -f1 /proc/uptime)" > /dev/console
bash /v2vm/cmd < /dev/null >> $out 2>&1
rc=$?
echo "$rc" > /v2vm/rc
echo "V2VM_RC=$rc" > /dev/console
cd /; sync
echo o > /proc/sysrq-trigger
sleep 10
EOF
}

run() {
  local timeout=600 mem=2048 cpus=2 shares=()
  while (($#)); do
    case $1 in
      -d) shares+=("$(realpath "$2")"); shift 2;;
      -t) timeout=$2; shift 2;;
      -m) mem=$2; shift 2;;
      -c) cpus=$2; shift 2;;
      --) shift; break;;
      -*) die "unknown option $1";;
      *) break;;
    esac
  done
  (($#)) || die "no command given"
  build
  local work
  work=$(mktemp -d /tmp/v2vm-run.XXXXXX)
  local qpid="" tpid=""
  cleanup() {
    if [ -n "$tpid" ]; then kill "$tpid" 2>/dev/null || true; fi
    if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; fi
    rm -rf "$work"
  }
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  mkdir "$work/ctl"
  guest_init > "$work/ctl/init"
  printf '%s\n' "$*" > "$work/ctl/cmd"
  : > "$work/ctl/shares"; : > "$work/ctl/out"
  local args=() i=0 s
  for s in "${shares[@]}"; do
    [ -d "$s" ] || die "not a directory: $s"
    args+=(-virtfs "local,path=$s,mount_tag=v2vmshare$i,security_model=passthrough,id=v2vmshare$i")
    echo "v2vmshare$i $s" >> "$work/ctl/shares"; i=$((i+1))
  done
  qemu-system-x86_64 -accel tcg,thread=multi -cpu "${V2VM_CPU:-qemu64}" -m "$mem" -smp "$cpus" \
    -nodefaults -no-user-config -display none -no-reboot -snapshot \
    -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init systemd.unified_cgroup_hierarchy=1 mitigations=off" \
    -drive "file=$CACHE/rootfs.img,format=raw,if=virtio,cache=unsafe" \
    -virtfs "local,path=$work/ctl,mount_tag=v2vmctl,security_model=passthrough,id=v2vmctl" \
    "${args[@]}" \
    -serial "file:$work/console" \
    -nic none </dev/null >"$work/qemu.log" 2>&1 &
  qpid=$!
  tail -s 0.2 -n +1 -f --pid=$qpid "$work/ctl/out" & tpid=$!
  local waited=0
  while kill -0 "$qpid" 2>/dev/null; do
    if ((waited >= timeout * 10)); then
      log "timeout after ${timeout}s, killing VM"; kill "$qpid" 2>/dev/null || true
      wait "$qpid" 2>/dev/null || true; qpid=""
      wait "$tpid" 2>/dev/null || true; tpid=""
      if [ "${V2VM_CONSOLE:-0}" = 1 ]; then cat "$work/console" >&2; fi
      exit 124
    fi
    sleep 0.1; waited=$((waited + 1))
  done
  wait "$qpid" 2>/dev/null || true; qpid=""
  wait "$tpid" 2>/dev/null || true; tpid=""
  if [ "${V2VM_CONSOLE:-0}" = 1 ]; then cat "$work/console" "$work/qemu.log" >&2; fi
  if [ -s "$work/ctl/rc" ]; then
    exit "$(cat "$work/ctl/rc")"
  fi
  log "VM did not report an exit status; console tail:"; tail -20 "$work/console" "$work/qemu.log" >&2
  exit 125
}

case ${1:-} in
  build) build ;;
  run) shift; run "$@" ;;
  clean) rm -rf "$CACHE" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
