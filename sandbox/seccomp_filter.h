// Seccomp profiles compiled to BPF: Docker's default profile, Docker-format JSON profiles, and
// a per-process cache. libseccomp stays inside the .cc files; this header needs only the
// kernel's BPF types.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/capabilities.h"
#include "sandbox/sys/result.h"

namespace sandrun::sandbox {

// What the compiler did, for descriptions, `sandrun doctor` and tests. Counts are for x86_64.
struct SeccompStats {
  size_t rules = 0;                // rules handed to libseccomp
  size_t allowed = 0;              // syscalls allowed whatever their arguments
  size_t conditional = 0;          // syscalls whose outcome depends on their arguments
  size_t other_action = 0;         // syscalls with a fixed action other than allow (clone3 -> ENOSYS)
  size_t default_action = 0;       // known syscalls left to the default action (EPERM in the default profile)
  size_t skipped_names = 0;        // names not on x86_64 (chown32, ...) or unknown to this build
  bool enosys_for_unknown = false;  // syscall numbers unknown to the profile return ENOSYS
};

// A compiled BPF program; immutable, shared by every container that uses the same profile and
// capability set. The child loads it with harden::load_seccomp(filter->prog()).
class SeccompFilter {
 public:
  SeccompFilter(std::vector<struct sock_filter> code, std::string description, SeccompStats stats);
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;

  const struct sock_fprog* prog() const { return &prog_; }  // points into this object
  size_t instructions() const { return code_.size(); }
  // "default (Docker-equivalent, 316 rules)", "/path/profile.json (12 rules)"
  const std::string& description() const { return description_; }
  const SeccompStats& stats() const { return stats_; }

 private:
  std::vector<struct sock_filter> code_;
  struct sock_fprog prog_;
  std::string description_;
  SeccompStats stats_;
};

// Compiles Docker's default profile (moby/profiles seccomp/default.json) for a container holding
// `caps`: the capability-conditional groups follow the caps, as Docker does. Differences from
// Docker, all deliberate tightenings, are listed in seccomp_default.cc.
Result<std::shared_ptr<const SeccompFilter>> compile_default_seccomp(CapSet caps);

// Loads a Docker-format JSON profile (defaultAction, defaultErrnoRet, architectures/archMap,
// syscalls[{names, action, errnoRet, args[{index, value, valueTwo, op}],
// includes/excludes{caps, arches, minKernel}}]) and compiles it for a container holding `caps`.
// Unknown syscall names are ignored, as Docker does. Errors name the file and the problem:
//   seccomp profile /p.json: syscalls[2]: unknown action "SCMP_ACT_FOO"
//   seccomp profile /p.json: invalid JSON: parse error at line 3, column 1: ...
Result<std::shared_ptr<const SeccompFilter>> compile_seccomp_json(const std::string& path, CapSet caps);

// Compiles each distinct (profile, caps) once per process and hands out the shared result;
// thread-safe. profile = "default" | a path to a JSON file ("unconfined" is the caller's: no
// filter). A JSON file is read once: later edits need a new process. Failures are not cached.
// Movable (it lives in a struct returned by value); a moved-from cache must not be used.
class SeccompCache {
 public:
  SeccompCache();
  ~SeccompCache();
  SeccompCache(SeccompCache&&) noexcept;
  SeccompCache& operator=(SeccompCache&&) noexcept;

  Result<std::shared_ptr<const SeccompFilter>> get(const std::string& profile, CapSet caps);
  size_t compiled() const;  // how many filters were compiled so far (disk hits not counted)
  // Also keeps compiled programs in `dir` (sandrun's state dir), so that each `sandrun exec`
  // does not pay a compile (about 2 ms): a file is named by a hash of the sandrun binary's
  // identity, the profile (its text for a JSON file) and the capabilities, written atomically,
  // and read back only when well-formed. Unset: memory only.
  void set_disk_dir(std::string dir);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The building blocks shared by the default table and the JSON loader (the compiler's input).
namespace seccomp_profile {

enum class Op : uint8_t { kNe, kLt, kLe, kEq, kGe, kGt, kMaskedEq };

// Compares argument `index` with `value`; for kMaskedEq, (arg & value) == value_two, as in
// libseccomp and Docker's JSON ("value" is the mask).
struct ArgCmp {
  unsigned index = 0;
  Op op = Op::kEq;
  uint64_t value = 0;
  uint64_t value_two = 0;
};

struct Action {
  enum Kind : uint8_t { kAllow, kErrno, kKillProcess, kKillThread, kTrap, kTrace, kLog };
  Kind kind = kAllow;
  uint16_t errno_ret = 0;  // for kErrno and kTrace
};

// One rule: every condition in `args` must hold (they name distinct arguments).
struct Rule {
  std::string name;
  Action action;
  std::vector<ArgCmp> args;
};

struct Profile {
  std::string description;  // rendered as "DESCRIPTION (NOTE, N rules)"
  std::string note;
  Action default_action{Action::kErrno, EPERM};
  std::vector<Rule> rules;
};

// Compiles for the native ABI (x86_64) only: x32 and i386 system calls are refused with ENOSYS,
// as on a kernel built without them. When the default action refuses, syscall numbers neither
// libseccomp nor the profile know also get ENOSYS (like runc's patchbpf), so libc falls back
// from a syscall newer than the profile instead of failing with the default errno.
Result<std::shared_ptr<const SeccompFilter>> compile(const Profile& profile);

}  // namespace seccomp_profile

}  // namespace sandrun::sandbox
