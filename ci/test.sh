#!/usr/bin/env bash
# Installs what is needed, builds sandrun twice (optimised, then with ASan+UBSan) and runs the
# whole test suite on both builds. This is the test command of README.md and of CI (.ci/run).
# The privileged tests need root; under CI=true (or SANDRUN_TESTS_MUST_WORK=1) a test that
# cannot run fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/install-deps.sh
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"
# This host has cgroup v1: the tests labelled cgroup2 run again in a VM with a pure cgroup v2
# hierarchy (ci/v2vm.sh, QEMU without KVM; the first run builds its image, ~1.5 min).
ci/test-cgroup2.sh build

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSANDRUN_SANITIZE=ON -DSANDRUN_BUILD_BENCH=OFF
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"
