// ChildPlan: the flat, fully prepared plan the child executes between clone and exec.
// The parent builds it (allocating freely); the child only reads it and makes system calls.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/spec.h"
#include "sandbox/sys/result.h"

namespace sandrun::sandbox {

struct BindPlan {
  const char* source;
  const char* target;
  bool readonly;
  bool is_dir;
};

struct ChildPlan {
  // Descriptors as numbered in the parent (all O_CLOEXEC); the child places them at 0..4.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int status_fd = -1;
  int init_fd = -1;  // the sealed sandrun-init memfd, or -1 to exec the command directly

  const char* root_dir = nullptr;
  const char* overlay_options = nullptr;
  const BindPlan* binds = nullptr;
  size_t nbinds = 0;
  const char* hostname = nullptr;
  size_t hostname_len = 0;
  bool new_net = true;
  const char* workdir = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  size_t ngroups = 0;
  char* const* argv = nullptr;  // sandrun-init's argv (init, command...) or the command's
  char* const* envp = nullptr;
  const char* path = nullptr;   // the container's PATH, to find the command without an init
};

// Owns every string and array a ChildPlan points into.
class PreparedPlan {
 public:
  // Validates `spec` (absolute paths, non-empty argv, sane hostname) and flattens it.
  // Heap-allocated and pinned: the plan points into the strings it owns.
  static Result<std::unique_ptr<PreparedPlan>> make(const SandboxSpec& spec, bool with_init);
  PreparedPlan(const PreparedPlan&) = delete;
  PreparedPlan& operator=(const PreparedPlan&) = delete;

  // The plan, with the descriptors still to be filled in by the caller.
  ChildPlan& plan() { return plan_; }

 private:
  PreparedPlan() = default;

  std::string overlay_options_;
  std::string root_dir_;
  std::string hostname_;
  std::string workdir_;
  std::string path_;
  std::vector<Bind> binds_;
  std::vector<BindPlan> bind_plans_;
  std::vector<gid_t> groups_;
  std::vector<std::string> argv_;
  std::vector<std::string> env_;
  std::vector<char*> argv_ptrs_;
  std::vector<char*> env_ptrs_;
  ChildPlan plan_;
};

// Escapes a path for overlayfs's option string (',' ':' and '\' are special there).
std::string overlay_escape(const std::string& path);

// Executes the plan in the freshly cloned child; never returns. Async-signal-safe.
[[noreturn]] void run_child(const ChildPlan& plan);
// clone()'s entry point: `plan` is a const ChildPlan*.
int child_entry(void* plan);

}  // namespace sandrun::sandbox
