#!/usr/bin/env bash
# Installs the Debian 12 packages sandrun needs to build, test and run (idempotent).
# Run as root, or as a user with sudo. Packages come from the mirror apt is configured with.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libuv1-dev libseccomp-dev libcereal-dev libzstd-dev libtomlplusplus-dev libarchive-dev
  libssl-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libcurl4-openssl-dev  # headers only: libcurl.so.4 is dlopen()ed on the first registry pull
  libgtest-dev libgmock-dev libbenchmark-dev
  busybox-static tar gzip zstd e2fsprogs  # mkfs.ext4: the journal probe test
  jq  # ci/test-cgroup2.sh reads ctest's JSON (ci/v2vm.sh installs its own qemu/debootstrap)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
echo "ci/install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
