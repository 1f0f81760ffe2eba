#!/usr/bin/env bash
# The host stage's selection (ci/host-exclusions.sh) against a build's real test list: with the
# probes' answers forced to "yes" everything runs on the host; with "no" the live i386 test, or
# the rootless tests, are left out (and only they), and each of them runs in the VM; unforced,
# the i386 answer matches what int 0x80 does here.
# Usage: host_exclusions_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
select=$src/ci/host-exclusions.sh
probe=$build/tests/sandrun-probe
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# The probes' forced answers of the caller must not leak into the checks.
unset SANDRUN_HOST_IA32 SANDRUN_HOST_USERNS

# Test names ctest would run with the given extra arguments.
names() { ctest --test-dir "$build" --show-only=json-v1 "$@" | jq -r '.tests[].name' | sort; }

all=$(names)
abi=$(grep -c '^SeccompAbiTest\.' <<<"$all" || true)
((abi > 0)) || fail "the build lists no SeccompAbiTest test: nothing to select"

# check_exclusion IA32 USERNS EXPECTED_REGEX PATTERN: with the answers forced, the selection is
# EXPECTED_REGEX, it leaves out exactly the tests whose names match PATTERN (grep -E), and each
# of those carries the label vm (the VM stage runs it: it runs somewhere).
check_exclusion() {
  local got left other missing
  got=$(SANDRUN_HOST_IA32=$1 SANDRUN_HOST_USERNS=$2 "$select" "$probe" 2>/dev/null)
  [[ $got == "$3" ]] || { fail "ia32=$1 userns=$2: expected exclusion '$3', got '$got'"; return; }
  [[ -n $got ]] || return 0
  left=$(comm -23 <(echo "$all") <(names -LE "$got"))
  [[ -n $left ]] || fail "ia32=$1 userns=$2: the exclusion $got leaves no test out"
  other=$(grep -Ev "$4" <<<"$left" || true)
  [[ -z $other ]] || fail "ia32=$1 userns=$2: the exclusion $got also leaves out: $other"
  [[ $left == "$(grep -E "$4" <<<"$all")" ]] || fail "ia32=$1 userns=$2: the exclusion $got keeps some of $4 on the host"
  missing=$(comm -23 <(echo "$left") <(echo "$vm"))
  [[ -z $missing ]] || fail "left out on the host but not labelled vm (would run nowhere): $missing"
}
vm=$(names -L '^vm$')
userns_tests='^RootlessTest[.]|Rootless$'
check_exclusion yes yes '' ''
check_exclusion no yes '^(needs-ia32)$' '^SeccompAbiTest[.]'
check_exclusion yes no '^(needs-unpriv-userns)$' "$userns_tests"
check_exclusion no no '^(needs-ia32|needs-unpriv-userns)$' "^SeccompAbiTest[.]|$userns_tests"
grep -qx 'SeccompAbiTest.I386SyscallsAreRefusedWithEnosys' <<<"$vm" || fail "the live i386 test is not labelled vm"
rootless=$(grep -cE "$userns_tests" <<<"$vm" || true)
((rootless > 0)) || fail "no rootless test is labelled vm"

if SANDRUN_HOST_IA32=maybe "$select" "$probe" >/dev/null 2>&1; then fail "a bad forced answer is accepted"; fi
if SANDRUN_HOST_USERNS=maybe "$select" "$probe" >/dev/null 2>&1; then fail "a bad forced answer is accepted"; fi

# Unforced: the probe's answer agrees with int 0x80 as the live test sees it.
actual=$("$probe" try i386 2>&1 || true)
probed=$("$select" "$probe" 2>/dev/null)
case $actual in
  "i386 ALLOWED") [[ $probed != *needs-ia32* ]] || fail "the entry works here but the host stage would exclude '$probed'" ;;
  *) [[ $probed == *needs-ia32* ]] || fail "the entry does not work here ($actual) but the host stage would run the i386 test" ;;
esac

if ((fails)); then exit 1; fi
echo "host selection: all answers yes -> runs all $(wc -l <<<"$all") tests; no -> leaves the i386 test ($abi) and the rootless tests ($rootless) to the VM; here: ${actual}, exclusion '${probed}'"
