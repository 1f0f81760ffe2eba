#!/usr/bin/env bash
# Installs what is needed, checks the module boundaries, then runs the three stages of the test
# suite, each to its end:
#   1. optimised  RelWithDebInfo build (everything: sandrun, tests, benchmarks) + ctest on the host
#   2. vm         the tests labelled cgroup2 or vm, in a QEMU VM with Debian's kernel and a pure
#                 cgroup v2 hierarchy (ci/test-cgroup2.sh), with the optimised build
#   3. sanitizer  Debug build with ASan+UBSan + ctest on the host
# A failing stage does not stop the others: one summary line per stage is printed at the end,
# and the exit status is non-zero when any stage failed. Each stage proves it ran: it fails when
# fewer tests ran than it listed or than its floor (ci/run-ctest.sh, ci/test-cgroup2.sh), when
# a test skipped, or when a test sent a packet off this machine (ci/offline-net.sh).
# Tests that need a kernel feature this host lacks are left to the VM (ci/host-exclusions.sh).
# Before the three, the stage `architecture` checks the module boundaries
# (ci/check-architecture.sh against ci/architecture.rules; no build needed).
# This is the test command of README.md and of CI (.ci/run). The privileged tests need root;
# under CI=true (or SANDRUN_TESTS_MUST_WORK=1) a test that cannot run fails instead of
# skipping. docs/testing.md says which tests run where.
set -uo pipefail
cd "$(dirname "$0")/.."

ci/install-deps.sh --tests || { echo "ci/test.sh: installing the packages failed" >&2; exit 1; }
jobs=$(nproc)
# The floors: a stage that runs fewer tests than this has lost some (a binary that listed
# none, a label that matched nothing). Raise them as the suite grows.
min_host_tests=600
min_vm_tests=20

names=() results=() failed=0 total_passed=0 total_failed=0
record() {  # record NAME STATUS START DETAIL
  local secs=$((SECONDS - $3))
  names+=("$1")
  # Counts from the stage's line: "628 tests ran (...), 0 failed" or "29 of 29 tests passed".
  if [[ $4 =~ ([0-9]+)\ tests\ ran.*\ ([0-9]+)\ failed ]]; then
    total_passed=$((total_passed + BASH_REMATCH[1] - BASH_REMATCH[2]))
    total_failed=$((total_failed + BASH_REMATCH[2]))
  elif [[ $4 =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ passed ]]; then
    total_passed=$((total_passed + BASH_REMATCH[1]))
    total_failed=$((total_failed + BASH_REMATCH[2] - BASH_REMATCH[1]))
  fi
  if (($2 == 0)); then results+=("passed in ${secs}s: $4"); else results+=("FAILED in ${secs}s: $4"); failed=1; fi
}

# The compiler cache: one per machine (outside the checkout, so that the next clean checkout
# finds it), keyed by paths relative to the checkout (CCACHE_BASEDIR; NOHASHDIR: the debug
# info's directory is not part of the key). Without ccache the builds are plain.
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_DIR=${CCACHE_DIR:-/var/cache/sandrun-ci/ccache} CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=true
  export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

# build_and_test DIR BUILD_TYPE [CMAKE_ARGS...]: configure, build everything, run ctest.
detail="" built_ok=0
build_and_test() {
  local dir=$1 type=$2
  shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "${launcher[@]}" "$@" || { detail="cmake configure failed"; return 1; }
  cmake --build "$dir" -j "$jobs" || { detail="the build failed"; return 1; }
  built_ok=1
  local exclude args=(-j "$jobs")
  exclude=$(ci/host-exclusions.sh "$dir/tests/sandrun-probe") || { detail="probing the host's features failed"; return 1; }
  [[ -z $exclude ]] || args+=(-LE "$exclude")
  local status=0
  ci/run-ctest.sh "$dir" "$min_host_tests" "${args[@]}" || status=$?
  detail=$(cat "$dir/ctest-summary.txt" 2>/dev/null || echo "ctest did not report")
  [[ -z $exclude ]] || detail+="; left to the VM: tests labelled $exclude"
  return "$status"
}

# Before the builds: the module boundaries (ci/architecture.rules), in well under a second.
# Its last line ("architecture: N files checked, M violations") is the stage's detail.
echo "=== architecture: module boundaries (ci/check-architecture.sh) ==="
start=$SECONDS status=0
out=$(ci/check-architecture.sh 2>&1) || status=$?
echo "$out"
detail=$(tail -n 1 <<<"$out")
[[ -n $detail ]] || detail="ci/check-architecture.sh did not report (status $status)"
record architecture "$status" "$start" "$detail"

echo "=== stage 1/3: optimised build + ctest ==="
start=$SECONDS status=0
build_and_test build RelWithDebInfo || status=$?
record optimised "$status" "$start" "$detail"

echo "=== stage 2/3: cgroup v2 VM ==="
start=$SECONDS status=0
if ((built_ok)); then
  # This host has cgroup v1 (and may lack kernel features): the tests labelled cgroup2 or vm
  # run again in a VM (ci/v2vm.sh, QEMU without KVM; the first run builds its image, ~1.5 min).
  ci/test-cgroup2.sh build "$min_vm_tests" || status=$?
  detail=$(cat build/cgroup2-vm-summary.txt 2>/dev/null || echo "the VM stage did not report (status $status)")
else
  status=1 detail="not run: stage 1 built nothing to run"
fi
record vm "$status" "$start" "$detail"

echo "=== stage 3/3: sanitizer build (ASan+UBSan) + ctest ==="
start=$SECONDS status=0 built_ok=0
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
build_and_test build-asan Debug -DSANDRUN_SANITIZE=ON -DSANDRUN_BUILD_BENCH=OFF || status=$?
record sanitizer "$status" "$start" "$detail"

echo
echo "=== ci/test.sh summary ==="
for i in "${!names[@]}"; do printf '%-10s %s\n' "${names[i]}" "${results[i]}"; done
echo "tests: $total_passed passed, $total_failed failed"
if ((failed)); then
  echo "ci/test.sh: FAILED"
  exit 1
fi
echo "ci/test.sh: all stages passed"
