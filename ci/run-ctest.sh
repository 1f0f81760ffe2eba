#!/usr/bin/env bash
# Runs one build's ctest suite for ci/test.sh and proves that it ran: inside ci/offline-net.sh
# (no packet may leave the machine), with a JUnit record of every test, then checks
#   - ctest passed, and every test it was asked to run did run (none "not run" or skipped: under
#     CI=true or SANDRUN_TESTS_MUST_WORK=1 a skip is a failure, and ctest counts gtest's skips
#     apart from failures; elsewhere skips are counted and shown);
#   - the number run equals the number listed beforehand and is at least MIN_TESTS (ctest exits
#     0 on "No tests were found");
#   - every gtest binary of the build (tests/gtest-binaries.txt) contributed tests, unless all
#     its labels are excluded (a binary whose discovery came back empty would otherwise vanish).
# The last line printed (also written to BUILD_DIR/ctest-summary.txt) is the stage's summary.
#
# Usage: ci/run-ctest.sh BUILD_DIR MIN_TESTS [CTEST_ARGS...]   (for example -j 2 -LE REGEX)
set -uo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 && -d $1 && $2 =~ ^[0-9]+$ ]] || { echo "usage: ci/run-ctest.sh BUILD_DIR MIN_TESTS [CTEST_ARGS...]" >&2; exit 2; }
build=$(realpath "$1") min=$2
shift 2
summary_file=$build/ctest-summary.txt
rm -f "$summary_file"
verdict() { echo "$*" | tee "$summary_file"; }

# The selection as ctest sees it (-j does not change it; -L/-LE/-R/-E do).
select=()
for a in "$@"; do [[ $a == -j* || $a =~ ^[0-9]+$ ]] || select+=("$a"); done
listing=$(ctest --test-dir "$build" --show-only=json-v1 "${select[@]}") || { verdict "ctest could not list the tests of $build"; exit 1; }
expected=$(jq '.tests | length' <<<"$listing")

problems=()
exclude=""
for ((i = 0; i < ${#select[@]}; i++)); do [[ ${select[i]} == -LE ]] && exclude=${select[i + 1]:-}; done
# Under a selection by name or label (-R, -E, -L) which binaries must contribute is unknown.
filtered=0
for a in "${select[@]}"; do [[ $a == -R || $a == -E || $a == -L ]] && filtered=1; done
if ((!filtered)); then
  while read -r name labels; do
    [[ -n $name ]] || continue
    if [[ -n $exclude ]]; then
      # ctest -LE leaves out a test when any of its labels matches.
      out=0
      IFS=, read -ra ls <<<"$labels"
      for l in "${ls[@]}"; do [[ $l =~ $exclude ]] && out=1; done
      ((out)) && continue
    fi
    n=$(jq --arg b "/$name" '[.tests[] | select(.command[0] | endswith($b))] | length' <<<"$listing")
    ((n > 0)) || problems+=("$name lists no test")
  done <"$build/tests/gtest-binaries.txt"
fi

junit=$build/ctest-junit.xml
rm -f "$junit"
status=0
ci/offline-net.sh ctest --test-dir "$build" --output-on-failure --output-junit "$junit" "$@" || status=$?

ran=0 failed=0 notrun=0
if [[ -f $junit ]]; then
  ran=$(grep -c '<testcase ' "$junit" || true)
  failed=$(grep -c '<testcase .*status="fail"' "$junit" || true)
  notrun=$(grep -Ec '<testcase .*status="(notrun|disabled)"' "$junit" || true)
  ran=$((ran - notrun))
else
  problems+=("ctest wrote no JUnit record")
fi
((status == 0)) || problems+=("ctest failed (status $status)")
((failed == 0)) || problems+=("$failed failed")
((expected >= min)) || problems+=("only $expected tests listed, fewer than the $min expected at least")
# Outside CI (an unprivileged developer) the tests that need root skip, as README.md says.
if [[ ${CI:-} == true || ${SANDRUN_TESTS_MUST_WORK:-} == 1 ]]; then
  ((notrun == 0)) || problems+=("$notrun skipped or not run")
  ((ran == expected)) || problems+=("$ran ran of $expected listed")
  ((ran >= min)) || problems+=("$ran ran, fewer than the $min expected at least")
else
  ((ran + notrun == expected)) || problems+=("$((ran + notrun)) ran or skipped of $expected listed")
fi

detail="$ran tests ran ($expected listed, at least $min expected), $failed failed, $notrun skipped"
if ((${#problems[@]})); then
  verdict "FAILED: $detail: $(IFS=';'; echo "${problems[*]}" | sed 's/;/; /g')"
  exit 1
fi
verdict "passed: $detail"
