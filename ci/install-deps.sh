#!/usr/bin/env bash
# Installs the Debian 12 packages sandrun needs to build, test and run (idempotent).
# Run as root, or as a user with sudo. Packages come from the mirror apt is configured with.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libuv1-dev libseccomp-dev libcereal-dev libzstd-dev libtomlplusplus-dev libarchive-dev
  libssl-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libcurl4-openssl-dev  # headers only: libcurl.so.4 is dlopen()ed on the first registry pull
  libxml2-dev  # headers only: libxml2.so.2 is dlopen()ed for the --junit report
  node-llhttp  # llhttp's C sources and header: `sandrun serve`'s HTTP parser is built from them
  # The JUnit report's tests: validated against tests/support/junit.xsd with xmllint, and read
  # by a real consumer, junitparser.
  libxml2-utils python3-junitparser
  libgtest-dev libgmock-dev libbenchmark-dev
  busybox-static tar gzip zstd e2fsprogs  # mkfs.ext4: the journal probe test
  jq  # ci/test-cgroup2.sh reads ctest's JSON (ci/v2vm.sh installs its own qemu/debootstrap)
  umoci skopeo  # the image-format tests build OCI layouts and docker/OCI archives with them
  # The registry tests: a real registry on 127.0.0.1, images pushed with skopeo, htpasswd
  # (bcrypt) for Basic auth, openssl for the test CA and the token signing key.
  docker-registry apache2-utils openssl
  # network = "private": outbound access through pasta (preferred) or slirp4netns; the
  # outbound tests run both.
  passt slirp4netns
)
# With --tests (ci/test.sh): the Engine API's real clients, which the quick start does not need:
# docker-py (python3-docker), Debian's docker CLI (docker.io, for /usr/bin/docker only: its
# dockerd is never started; the policy-rc.d below keeps the package from starting it), and Node
# for testcontainers (installed from npm into tests/testcontainers at the end).
if [[ ${1:-} == --tests ]]; then
  packages+=(python3-docker docker.io)
  # ccache: the test command's two builds share a compiler cache across the runs of one machine
  # (ci/test.sh); a cold cache only costs the plain build's time.
  packages+=(ccache)
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# testcontainers for Node, pinned by tests/testcontainers/package-lock.json: installed again
# only when the lock file changed (its hash is kept in node_modules).
npm_modules() {
  [[ ${1:-} == --tests ]] || return 0
  local dir lock stamp
  dir=$(cd "$(dirname "$0")/../tests/testcontainers" && pwd)
  lock=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  stamp=$dir/node_modules/.sandrun-lock
  [[ -f $stamp && $(cat "$stamp") == "$lock" ]] && return 0
  echo "ci/install-deps.sh: npm ci in tests/testcontainers" >&2
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  echo "$lock" >"$stamp"
}

if ((${#missing[@]} == 0)); then
  npm_modules "${1:-}"
  exit
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
echo "ci/install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# docker-registry's postinst starts its service (on :5000, with the package's config) through
# invoke-rc.d. The tests start their own registries; a policy-rc.d that refuses service starts
# (as container images ship) keeps the package from starting one, and goes again afterwards.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\n# ci/install-deps.sh: no service starts while packages install\nexit 101\n' |
    "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if command -v ss >/dev/null && ss -ltnH 'sport = :5000' | grep -q .; then
  echo "ci/install-deps.sh: warning: something listens on port 5000 (a docker-registry service?);" \
       "the tests do not need it and use their own ports" >&2
fi
npm_modules "${1:-}"
