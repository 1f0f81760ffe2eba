#!/usr/bin/env bash
# ctest runs tests side by side, and many check that "their" process is gone by looking for it
# on the host (host_has_process({"sleep", "86391"})): two tests watching the same command line
# fail each other at random. Every long sleep a test starts (sleep NNN with 3 or more digits)
# must therefore appear in one test file only.
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
((dups == 0)) || exit 1
echo "every long sleep marker belongs to one test file"
