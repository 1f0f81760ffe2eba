// sandrun-oci-seccomp: prints sandrun's default seccomp profile, for Docker's default
// capabilities, as an OCI runtime-spec `linux.seccomp` object, so that bench/e2e.sh can give crun
// the same filter sandrun loads (a like-for-like "seccomp + limits" comparison).
//
// Usage: sandrun-oci-seccomp [--verify]
//   --verify  also writes the JSON to a temp file, compiles it with sandrun's own Docker-format
//             loader and checks that the BPF program equals compile_default_seccomp()'s; the
//             verdict goes to stderr, the exit status is 1 on a mismatch.
//
// sandbox/seccomp_filter.h does not export the default table (default_profile() lives in an anonymous
// namespace of seccomp_default.cc), and bench/ must not change sandbox/: this file compiles
// that source text into itself, renaming its one external function so that it does not clash
// with the library's. The table printed is therefore exactly the one sandrun compiles, and the
// check below (table -> seccomp_profile::compile == compile_default_seccomp) proves it.
#include "sandbox/seccomp_filter.h"  // first (and once): its declarations keep their names
#define compile_default_seccomp bench_unused_compile_default_seccomp
#include "sandbox/seccomp_default.cc"  // NOLINT(bugprone-suspicious-include)
#undef compile_default_seccomp

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using sandrun::sandbox::CapSet;
using sandrun::sandbox::SeccompFilter;
namespace sp = sandrun::sandbox::seccomp_profile;
using json = nlohmann::ordered_json;

const char* op_name(sp::Op op) {
  switch (op) {
    case sp::Op::kNe: return "SCMP_CMP_NE";
    case sp::Op::kLt: return "SCMP_CMP_LT";
    case sp::Op::kLe: return "SCMP_CMP_LE";
    case sp::Op::kEq: return "SCMP_CMP_EQ";
    case sp::Op::kGe: return "SCMP_CMP_GE";
    case sp::Op::kGt: return "SCMP_CMP_GT";
    case sp::Op::kMaskedEq: return "SCMP_CMP_MASKED_EQ";
  }
  return "?";
}

const char* action_name(sp::Action::Kind kind) {
  switch (kind) {
    case sp::Action::kAllow: return "SCMP_ACT_ALLOW";
    case sp::Action::kErrno: return "SCMP_ACT_ERRNO";
    case sp::Action::kKillProcess: return "SCMP_ACT_KILL_PROCESS";
    case sp::Action::kKillThread: return "SCMP_ACT_KILL_THREAD";
    case sp::Action::kTrap: return "SCMP_ACT_TRAP";
    case sp::Action::kTrace: return "SCMP_ACT_TRACE";
    case sp::Action::kLog: return "SCMP_ACT_LOG";
  }
  return "?";
}

void put_action(json& j, const sp::Action& a) {
  j["action"] = action_name(a.kind);
  if (a.kind == sp::Action::kErrno || a.kind == sp::Action::kTrace) j["errnoRet"] = a.errno_ret;
}

// The OCI object: unconditional rules with the same action are one entry with many names (in
// table order), each argument-conditional rule an entry of its own (entries for one syscall are
// alternatives; the args of one entry must all hold, as in sandrun's Rule).
json to_oci(const sp::Profile& p) {
  json out;
  out["defaultAction"] = action_name(p.default_action.kind);
  if (p.default_action.kind == sp::Action::kErrno) out["defaultErrnoRet"] = p.default_action.errno_ret;
  out["architectures"] = json::array({"SCMP_ARCH_X86_64"});
  json syscalls = json::array();
  std::map<std::pair<int, int>, size_t> plain;  // (kind, errno) -> index in syscalls
  for (const sp::Rule& r : p.rules) {
    if (r.args.empty()) {
      const auto key = std::make_pair(int(r.action.kind), int(r.action.errno_ret));
      auto it = plain.find(key);
      if (it == plain.end()) {
        json e;
        e["names"] = json::array();
        put_action(e, r.action);
        syscalls.push_back(std::move(e));
        it = plain.emplace(key, syscalls.size() - 1).first;
      }
      syscalls[it->second]["names"].push_back(r.name);
      continue;
    }
    json e;
    e["names"] = json::array({r.name});
    put_action(e, r.action);
    json args = json::array();
    for (const sp::ArgCmp& a : r.args) {
      args.push_back({{"index", a.index}, {"value", a.value}, {"valueTwo", a.value_two}, {"op", op_name(a.op)}});
    }
    e["args"] = std::move(args);
    syscalls.push_back(std::move(e));
  }
  out["syscalls"] = std::move(syscalls);
  return out;
}

bool same_program(const SeccompFilter& a, const SeccompFilter& b) {
  const auto* pa = a.prog();
  const auto* pb = b.prog();
  return pa->len == pb->len && std::memcmp(pa->filter, pb->filter, pa->len * sizeof(struct sock_filter)) == 0;
}

int verify(const sp::Profile& profile, const std::string& text, CapSet caps) {
  auto reference = sandrun::sandbox::compile_default_seccomp(caps);
  if (!reference) {
    std::fprintf(stderr, "sandrun-oci-seccomp: %s\n", reference.error().message().c_str());
    return 1;
  }
  auto from_table = sp::compile(profile);
  if (!from_table || !same_program(**from_table, **reference)) {
    std::fprintf(stderr, "sandrun-oci-seccomp: the table does not compile to sandrun's default filter\n");
    return 1;
  }
  char path[] = "/tmp/sandrun-oci-seccomp.XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0 || ::write(fd, text.data(), text.size()) != ssize_t(text.size())) {
    std::perror("sandrun-oci-seccomp: temp file");
    return 1;
  }
  ::close(fd);
  auto from_json = sandrun::sandbox::compile_seccomp_json(path, caps);
  ::unlink(path);
  if (!from_json) {
    std::fprintf(stderr, "sandrun-oci-seccomp: %s\n", from_json.error().message().c_str());
    return 1;
  }
  const bool same = same_program(**from_json, **reference);
  std::fprintf(stderr, "sandrun-oci-seccomp: %zu rules; default filter %zu BPF instructions; the JSON through "
               "sandrun's loader: %zu instructions, %s\n",
               profile.rules.size(), (*reference)->instructions(), (*from_json)->instructions(),
               same ? "identical program" : "DIFFERENT program");
  return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--verify") == 0) {
      check = true;
    } else {
      std::fprintf(stderr, "usage: %s [--verify]\n", argv[0]);
      return 2;
    }
  }
  const CapSet caps = sandrun::sandbox::default_capabilities();
  const sp::Profile profile = sandrun::sandbox::default_profile(caps);
  const std::string text = to_oci(profile).dump(1) + "\n";
  if (check && verify(profile, text, caps) != 0) return 1;
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
