#!/usr/bin/env bash
# The host stage's selection (ci/host-exclusions.sh) against a build's real test list: with the
# i386 probe's answer forced to "yes" the live i386 test runs on the host, with "no" it is left
# out (and only it); unforced, the answer matches what int 0x80 does here.
# Usage: host_exclusions_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
select=$src/ci/host-exclusions.sh
probe=$build/tests/sandrun-probe
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# Test names ctest would run with the given extra arguments.
names() { ctest --test-dir "$build" --show-only=json-v1 "$@" | jq -r '.tests[].name' | sort; }

all=$(names)
abi=$(grep -c '^SeccompAbiTest\.' <<<"$all" || true)
((abi > 0)) || fail "the build lists no SeccompAbiTest test: nothing to select"

yes=$(SANDRUN_HOST_IA32=yes "$select" "$probe" 2>/dev/null)
[[ -z $yes ]] || fail "with a working i386 entry nothing should be excluded, got '$yes'"

no=$(SANDRUN_HOST_IA32=no "$select" "$probe" 2>/dev/null)
[[ $no == '^(needs-ia32)$' ]] || fail "without an i386 entry the exclusion should be ^(needs-ia32)\$, got '$no'"
if [[ -n $no ]]; then
  left=$(comm -23 <(echo "$all") <(names -LE "$no"))
  [[ -n $left ]] || fail "the exclusion $no leaves no test out"
  other=$(grep -v '^SeccompAbiTest\.' <<<"$left" || true)
  [[ -z $other ]] || fail "the exclusion $no also leaves out: $other"
  grep -q '^SeccompAbiTest\.I386SyscallsAreRefusedWithEnosys$' <<<"$left" ||
    fail "the exclusion does not leave out SeccompAbiTest.I386SyscallsAreRefusedWithEnosys"
  # Left to the VM: each test the host leaves out carries the label the VM stage runs.
  vm=$(names -L '^vm$')
  missing=$(comm -23 <(echo "$left") <(echo "$vm"))
  [[ -z $missing ]] || fail "left out on the host but not labelled vm (would run nowhere): $missing"
fi

if SANDRUN_HOST_IA32=maybe "$select" "$probe" >/dev/null 2>&1; then fail "a bad forced answer is accepted"; fi

# Unforced: the probe's answer agrees with int 0x80 as the live test sees it.
actual=$("$probe" try i386 2>&1 || true)
probed=$("$select" "$probe" 2>/dev/null)
case $actual in
  "i386 ALLOWED") [[ -z $probed ]] || fail "the entry works here but the host stage would exclude '$probed'" ;;
  *) [[ -n $probed ]] || fail "the entry does not work here ($actual) but the host stage would run the i386 test" ;;
esac

if ((fails)); then exit 1; fi
echo "host selection: yes -> runs all ($(wc -l <<<"$all") tests); no -> leaves ${abi} SeccompAbiTest test(s) to the VM; here: ${actual}"
