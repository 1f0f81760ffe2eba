#!/usr/bin/env bash
# ctest runs tests side by side, and many check that "their" process is gone by looking for it
# on the host (host_has_process({"sleep", "86391"})): two tests watching the same command line
# fail each other at random, and so does any other process of a shared machine with that command
# line (a `sleep 30` in someone's shell). So every process a test watches for is a sleep of five
# digits or more, and every long sleep a test starts (3 or more digits) appears in one test file.
# Usage: unique_markers_test.sh SOURCE_DIR
set -euo pipefail
cd "$1/tests"
dups=0
while read -r n; do
  files=$(grep -rlE "sleep $n([^0-9.]|\$)|\"sleep\", \"$n\"" --include='*.cc' --include='*.h' . | sort -u)
  if (($(wc -l <<<"$files") > 1)); then
    echo "FAIL: 'sleep $n' is used by more than one test file:" $files
    dups=$((dups + 1))
  fi
done < <(grep -rhoE 'sleep [0-9]{3,}\b' --include='*.cc' --include='*.h' . | awk '{ print $2 }' | sort -u)
short=$(grep -rnoE '\{"sleep", "[0-9]{1,4}"\}' --include='*.cc' --include='*.h' . || true)
if [[ -n $short ]]; then
  echo "FAIL: a test watches for a sleep that other processes of the machine may run too (use 5 digits):"
  echo "$short"
  dups=$((dups + 1))
fi
((dups == 0)) || exit 1
echo "every watched sleep has a marker of 5 digits or more, and every long sleep belongs to one test file"
