#!/usr/bin/env bash
# A clean-machine rehearsal: clones the committed HEAD into an empty directory and runs the two
# commands of README.md there, as CI does (.ci/run on a fresh clone, CI=true, no standard
# input), so that a step that only works because of something installed or built by hand shows
# before a change is submitted. The commands are read from README.md itself: the quick start
# (the line that starts with `ci/install-deps.sh &&`) and the test command (`ci/test.sh`).
#
# Usage: ci/fresh-check.sh [--quick-only] [--keep]
#   --quick-only  run the quick start only (a few minutes), not the whole suite (~30 min)
#   --keep        keep the clone (default: removed at the end, whatever happened)
# Uncommitted changes are not part of the check: it says so when there are some.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
quick_only=0 keep=0
for a in "$@"; do
  case $a in
    --quick-only) quick_only=1 ;;
    --keep) keep=1 ;;
    *) echo "usage: ci/fresh-check.sh [--quick-only] [--keep]" >&2; exit 2 ;;
  esac
done

if [[ -n $(git status --porcelain) ]]; then
  echo "fresh-check: the work tree has uncommitted changes; they are NOT checked (HEAD $(git rev-parse --short HEAD) is)" >&2
fi
quick=$(grep -m1 -E '^ci/install-deps\.sh && ' README.md) || { echo "fresh-check: README.md has no quick-start line" >&2; exit 1; }
grep -qx 'ci/test.sh' README.md || { echo "fresh-check: README.md does not give ci/test.sh as the test command" >&2; exit 1; }

dir=$(mktemp -d /var/tmp/sandrun-fresh.XXXXXX)
# mktemp makes it 0700: the rootless tests run the built sandrun as another user, who must be
# able to reach it, as in any checkout (CI's included).
chmod 755 "$dir"
if ((!keep)); then trap 'rm -rf "$dir"' EXIT; fi
git clone -q --no-local "$repo" "$dir/sandrun"
cd "$dir/sandrun"
echo "fresh-check: clone of $(git rev-parse --short HEAD) in $dir/sandrun"

start=$SECONDS
echo "fresh-check: quick start: $quick"
CI=true bash -c "$quick" </dev/null
echo "fresh-check: quick start passed in $((SECONDS - start))s"
# The quick start builds only what it runs: no test binary may be in its build directory.
if [[ -n $(find build/tests -name '*_test' -type f 2>/dev/null) ]]; then
  echo "fresh-check: the quick start built test binaries: it should build only sandrun" >&2
  exit 1
fi
((quick_only)) && exit 0

start=$SECONDS
echo "fresh-check: test command: ci/test.sh (CI=true, as .ci/run)"
CI=true bash .ci/run </dev/null
echo "fresh-check: the test command passed in $((SECONDS - start))s"
