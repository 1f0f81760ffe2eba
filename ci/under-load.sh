#!/usr/bin/env bash
# Runs a command with every core kept busy by a CPU hog (one shell busy-loop per core, at the
# command's own priority), as on a shared, loaded CI machine; the hogs are ended by their pids
# when the command ends, whatever happened. CPU only: nothing is written to disk.
# Usage: ci/under-load.sh [-n HOGS] CMD [ARGS...]     (HOGS: default nproc)
# Example, the check of docs/testing.md: ci/under-load.sh ci/test.sh
set -uo pipefail
hogs=$(nproc)
if [[ ${1:-} == -n ]]; then hogs=$2; shift 2; fi
(($#)) || { echo "usage: ci/under-load.sh [-n HOGS] CMD [ARGS...]" >&2; exit 2; }
pids=()
cleanup() { ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT TERM
for ((i = 0; i < hogs; i++)); do
  bash -c 'while :; do :; done' &
  pids+=($!)
done
echo "ci/under-load.sh: $hogs CPU hog(s) running (pids ${pids[*]})" >&2
status=0
"$@" || status=$?
exit "$status"
