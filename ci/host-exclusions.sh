#!/usr/bin/env bash
# Prints the ctest label regex of the tests that the host stage of ci/test.sh leaves to the VM
# (ci/test-cgroup2.sh), because they need a kernel feature this host lacks; prints nothing when
# the host has them all. Features are found by behaviour, never from the kernel's config:
#   needs-ia32           the i386 system call entry: getpid through int 0x80 works (some
#                        hypervisors refuse it although the kernel has IA32 emulation: the
#                        call gets SIGSEGV).
#   needs-unpriv-userns  an unprivileged user may create a user namespace (sysctls such as
#                        user.max_user_namespaces, kernel.unprivileged_userns_clone or
#                        AppArmor's restriction may refuse it): tried as uid 65534.
# Tests carrying such a label also carry `vm`, so the VM runs them on every CI run.
#
# Usage: ci/host-exclusions.sh PROBE    (PROBE: a build's tests/sandrun-probe)
# Env: SANDRUN_HOST_IA32=yes|no and SANDRUN_HOST_USERNS=yes|no force the answers
# (tests/ci/host_exclusions_test.sh).
# The answer is also reported on stderr, for the CI log.
set -euo pipefail
[[ $# -eq 1 && -x $1 ]] || { echo "usage: ci/host-exclusions.sh PROBE (the build's tests/sandrun-probe)" >&2; exit 2; }

ia32=${SANDRUN_HOST_IA32:-}
if [[ -z $ia32 ]]; then
  # The probe tries the call in a child: "i386 ALLOWED" when the entry works, "i386 refused
  # SIGSEGV" when there is none (the probe then exits 0, "all refused").
  out=$("$1" try i386 2>&1 || true)
  case $out in
    "i386 ALLOWED") ia32=yes ;;
    "i386 refused SIGSEGV") ia32=no ;;
    *) echo "ci/host-exclusions.sh: unexpected answer from the i386 probe: $out" >&2; exit 1 ;;
  esac
fi
userns=${SANDRUN_HOST_USERNS:-}
if [[ -z $userns ]]; then
  # As the tests do it: an unprivileged user (root drops to nobody first) maps itself to root
  # in a new user namespace.
  try=(unshare --user --map-root-user true)
  if [[ $(id -u) -eq 0 ]]; then try=(setpriv --reuid=65534 --regid=65534 --clear-groups -- "${try[@]}"); fi
  if "${try[@]}" >/dev/null 2>&1; then userns=yes; else userns=no; fi
fi
for answer in "SANDRUN_HOST_IA32=$ia32" "SANDRUN_HOST_USERNS=$userns"; do
  case ${answer#*=} in
    yes|no) ;;
    *) echo "ci/host-exclusions.sh: ${answer%%=*} must be yes or no, not '${answer#*=}'" >&2; exit 2 ;;
  esac
done

excluded=()
if [[ $ia32 == no ]]; then excluded+=(needs-ia32); fi
if [[ $userns == no ]]; then excluded+=(needs-unpriv-userns); fi
echo "host: i386 syscall entry (int 0x80): $ia32; unprivileged user namespaces: $userns${excluded[*]:+; left to the VM: ${excluded[*]}}" >&2
if ((${#excluded[@]})); then
  (IFS='|'; echo "^(${excluded[*]})\$")
fi
