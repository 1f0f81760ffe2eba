#!/usr/bin/env bash
# ci/check-architecture.sh: the real tree passes its rules; on a small fixture tree with its
# own rules each deliberate violation (a third-party header outside its module, a libuv call,
# type or macro outside the allowed files, a plan used non-const outside resolve) fails the
# check and is reported at its file:line with its rule, while the same text in a comment or a
# string, const uses and forward declarations pass; a rules file with an unknown directive or a
# path that does not exist (a stale rule) is refused with exit status 2.
# Usage: architecture_test.sh SOURCE_DIR
set -uo pipefail
[[ $# -eq 1 && -d $1 ]] || { echo "usage: architecture_test.sh SOURCE_DIR" >&2; exit 2; }
check=$1/ci/check-architecture.sh
fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The real tree with its real rules.
rc=0
out=$("$check" "$1" 2>&1) || rc=$?
if ((rc == 0)); then ok "the tree passes ci/architecture.rules (${out##*$'\n'})"; else fail "the tree breaks ci/architecture.rules (exit $rc):"$'\n'"$out"; fi

# 2. The fixture: libuv belongs to runner/loop/ and runner/engine/, toml++ to one config file,
# and ContainerPlan is written only by its header and runner/engine/resolve.cc.
base=$tmp/base
mkdir -p "$base"/{runner/loop,runner/engine,sandbox,config,cache,tests}
cat >"$tmp/rules" <<'EOF'
# the fixture's rules
scan runner sandbox cache config
header uv.h          runner/loop/ runner/engine/
header toml++/       config/toml_read.h
symbol uv_\w+        runner/loop/ runner/engine/
symbol UV_\w+        runner/loop/ runner/engine/
const-only ContainerPlan   sandbox/container_plan.h runner/engine/resolve.cc
EOF
cat >"$base/runner/loop/uv_handle.h" <<'EOF'
// The handle owner.
#include <uv.h>
inline void close_it(uv_handle_t* h) { uv_close(h, nullptr); }
EOF
cat >"$base/runner/engine/loop.cc" <<'EOF'
#include "runner/loop/uv_handle.h"
void run(uv_loop_t* loop) { uv_run(loop, UV_RUN_DEFAULT); }
EOF
cat >"$base/sandbox/container_plan.h" <<'EOF'
#pragma once
namespace sandbox {
struct ContainerPlan { int mounts = 0; };
}
EOF
cat >"$base/runner/engine/resolve.cc" <<'EOF'
#include "sandbox/container_plan.h"
sandbox::ContainerPlan resolve() { sandbox::ContainerPlan plan; plan.mounts = 2; return plan; }
EOF
cat >"$base/runner/other.cc" <<'EOF'
#include <memory>
#include "sandbox/container_plan.h"
#include "runner/loop/uv_handle.h"
int mounts(const sandbox::ContainerPlan& plan) { return plan.mounts; }
EOF
cat >"$base/sandbox/x.cc" <<'EOF'
#include "sandbox/container_plan.h"
int x() { return 1; }
EOF
cat >"$base/config/toml_read.h" <<'EOF'
#include <toml++/toml.h>
EOF
echo 'int y() { return 2; }' >"$base/config/y.cc"
echo 'int z() { return 3; }' >"$base/cache/z.cc"
# tests/ is not scanned: it may use anything.
echo '#include <uv.h>' >"$base/tests/loop_test.cc"

# run_fixture FILE TEXT: a fresh copy of the fixture with TEXT appended to FILE (created when
# missing); sets $out, $rc and $line (the line number of TEXT's first line).
run_fixture() {
  rm -rf "$tmp/t"
  cp -r "$base" "$tmp/t"
  mkdir -p "$(dirname "$tmp/t/$1")"
  touch "$tmp/t/$1"
  line=$(($(wc -l <"$tmp/t/$1") + 1))
  printf '%s\n' "$2" >>"$tmp/t/$1"
  rc=0
  out=$("$check" --rules "$tmp/rules" "$tmp/t" 2>&1) || rc=$?
}

run_fixture config/y.cc ''
if ((rc == 0)); then ok "the fixture passes its rules"; else fail "the fixture breaks its rules (exit $rc):"$'\n'"$out"; fi

# violation FILE TEXT RULE...: TEXT in FILE fails the check with exactly one report per RULE,
# each at FILE:LINE.
violation() {
  local file=$1 text=$2 rule
  shift 2
  run_fixture "$file" "$text"
  local what="'${text//$'\n'/\\n}' in $file"
  ((rc == 1)) || { fail "$what: expected exit 1, got $rc:"$'\n'"$out"; return; }
  for rule in "$@"; do
    grep -qF "$file:$line: $rule: " <<<"$out" || { fail "$what: no report '$file:$line: $rule: ...' in:"$'\n'"$out"; return; }
  done
  local reports
  reports=$(grep -c '^[^ ]*:[0-9]*: ' <<<"$out")
  ((reports == $#)) || { fail "$what: expected $# reports, got $reports:"$'\n'"$out"; return; }
  grep -qx "architecture: [0-9]* files checked, $# violations" <<<"$out" || { fail "$what: no summary line in:"$'\n'"$out"; return; }
  ok "$what is reported: $(grep -m1 -F "$file:$line: " <<<"$out")"
}
violation sandbox/x.cc '#include <uv.h>' 'header uv.h'
violation sandbox/x.cc '#include "uv.h"' 'header uv.h'
violation cache/z.cc '#include <toml++/toml.h>' 'header toml++/'
violation config/y.cc 'uv_timer_t t;' 'symbol uv_\w+'
violation runner/other.cc 'void f(uv_loop_t* loop) { uv_run(loop, UV_RUN_DEFAULT); }' 'symbol uv_\w+' 'symbol UV_\w+'
violation sandbox/new.hpp 'int fd(uv_poll_t* p);' 'symbol uv_\w+'
violation config/y.cc '/* a comment */ uv_timer_t t;' 'symbol uv_\w+'
violation config/y.cc "char quote = '\"'; uv_timer_t t;" 'symbol uv_\w+'
violation runner/other.cc 'void edit(ContainerPlan& p);' 'const-only ContainerPlan'
violation runner/other.cc 'std::shared_ptr<ContainerPlan> p;' 'const-only ContainerPlan'
violation runner/other.cc 'sandbox::ContainerPlan copy;' 'const-only ContainerPlan'
violation runner/other.cc 'auto p = ContainerPlan{};' 'const-only ContainerPlan'
violation runner/other.cc 'const std::shared_ptr<ContainerPlan>& p;' 'const-only ContainerPlan'
violation runner/other.cc 'void f(const std::vector<ContainerPlan*>& v);' 'const-only ContainerPlan'
violation runner/other.cc 'std::vector<ContainerPlan> plans;' 'const-only ContainerPlan'
violation runner/other.cc $'int mounts(sandbox::ContainerPlan* b,\n           const sandbox::ContainerPlan& a);' 'const-only ContainerPlan'

# allowed FILE TEXT: TEXT in FILE passes the check.
allowed() {
  run_fixture "$1" "$2"
  local what="'${2//$'\n'/\\n}' in $1"
  if ((rc == 0)); then ok "$what passes"; else fail "$what: expected exit 0, got $rc:"$'\n'"$out"; fi
}
allowed config/y.cc '// uv_timer_t t; uv_run(loop, UV_RUN_DEFAULT);'
allowed config/y.cc $'/* uv_timer_t t;\n   uv_run(loop, UV_RUN_DEFAULT); */ int w;'
allowed config/y.cc $'// a continued comment \\\n   uv_timer_t t;'
allowed config/y.cc 'const char* m = "uv_run failed: UV_EBADF \" uv_timer_t";'
allowed config/y.cc 'const char* r = R"x(uv_run("a") UV_RUN_DEFAULT)x";'
allowed config/y.cc 'int my_uv_timer = 1000'\''000;'
allowed sandbox/x.cc '// #include <uv.h>'
allowed sandbox/x.cc '/* #include <toml++/toml.h> */'
allowed sandbox/x.cc '#include "runner/loop/uv_handle.h"'
allowed runner/engine/job.cc 'void go(uv_loop_t* l) { uv_run(l, UV_RUN_NOWAIT); }'
allowed runner/other.cc 'int count(const sandbox::ContainerPlan& p);'
allowed runner/other.cc 'std::shared_ptr<const ContainerPlan> shared;'
allowed runner/other.cc 'std::shared_ptr<const ::sandbox::ContainerPlan> shared;'
allowed runner/other.cc $'int count(const\n          sandbox::ContainerPlan& p);'
allowed runner/other.cc 'int n = sandbox::ContainerPlan::max_mounts;'
allowed runner/other.cc 'int count(ContainerPlan const& p);'
allowed runner/other.cc 'int count(const std::vector<ContainerPlan>& plans);'
allowed runner/other.cc 'int count(const std::vector<std::optional<sandbox::ContainerPlan>>& plans);'
allowed runner/other.cc 'namespace sandbox { struct ContainerPlan; }'
allowed runner/other.cc 'class ContainerPlan;'
allowed runner/other.cc '// ContainerPlan& p is written here'
allowed runner/other.cc 'const char* s = "ContainerPlan& p";'
allowed runner/engine/resolve.cc 'void fill(sandbox::ContainerPlan& p) { p.mounts = 3; }'

# 4. Bad rules files: exit 2, naming the rules file's line.
# bad_rules LINE EXPECTED: the fixture's rules plus LINE are refused, the message has EXPECTED.
bad_rules() {
  { cat "$tmp/rules"; echo "$1"; } >"$tmp/bad.rules"
  local n
  n=$(wc -l <"$tmp/bad.rules")
  rc=0
  out=$("$check" --rules "$tmp/bad.rules" "$base" 2>&1) || rc=$?
  if ((rc != 2)); then
    fail "rule '$1': expected exit 2, got $rc:"$'\n'"$out"
  elif ! grep -qF "bad.rules:$n: $2" <<<"$out"; then
    fail "rule '$1': no 'bad.rules:$n: $2' in:"$'\n'"$out"
  else
    ok "rule '$1' is refused: $(grep -m1 -F "bad.rules:$n:" <<<"$out")"
  fi
}
bad_rules 'forbid uv.h runner/' "unknown directive 'forbid'"
bad_rules 'header uv.h runner/gone/' "stale rule: directory 'runner/gone/' does not exist"
bad_rules 'const-only JobPlan sandbox/plan.cc' "stale rule: file 'sandbox/plan.cc' does not exist"
bad_rules 'scan runner bench' "stale rule: directory 'bench/' does not exist"
bad_rules 'header uv.h runner' "'runner' is a directory: write 'runner/'"
bad_rules 'symbol uv_( runner/' "bad regex 'uv_('"
bad_rules 'header uv.h' "header needs a pattern and at least one allowed path"

((fails == 0)) || { echo "$fails checks failed"; exit 1; }
echo "all checks passed"
