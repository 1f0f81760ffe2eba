#!/bin/sh
# bench/ports.sh: published ports, the proxy in sandrun's loop vs a direct loopback connection
# to the same server (sandrun-kv-server in a fresh network namespace). Root. Prints a markdown
# table for docs/benchmarks.md, headed by the machine and the date.
# Usage: bench/ports.sh [BUILD_DIR] [sandrun-ports-bench options: --bytes N --rounds N ...]
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
cmake --build "$build" --target sandrun-ports-bench >/dev/null
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
exec "$build/sandrun-ports-bench" "$@"
