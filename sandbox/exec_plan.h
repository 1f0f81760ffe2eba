// ExecChildPlan: the flat plan of an exec's child (child_exec.cc), built by Exec::start
// (exec.cc). The child only reads it and makes system calls.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace sandrun::sandbox {

struct ExecChildPlan {
  int pidfd = -1;       // the container's PID 1
  int ns_flags = 0;     // what the child joins with setns(pidfd) (the thread joined the PID namespace)
  bool userns = false;  // ns_flags has CLONE_NEWUSER: become the namespace's root first
  bool userns_setgroups = true;
  int root_fd = -1;     // O_PATH of PID 1's root (/proc/PID/root), chroot'ed to after setns
  const int* cgroup_procs = nullptr;  // v1: the `tasks` file of each hierarchy ("0" is written)
  size_t ncgroup_procs = 0;

  // Descriptors in the parent (O_CLOEXEC), placed at 0, 1, 2 and 3 (status).
  int stdin_fd = -1;    // -1: the container's /dev/null (or the terminal)
  int stdout_fd = -1;
  int stderr_fd = -1;
  int status_fd = -1;
  int tty_socket = -1;  // a terminal (child_tty.cc), or -1
  uint16_t tty_rows = 24;
  uint16_t tty_cols = 80;

  const char* workdir = "/";  // resolved beneath the container's root, never created
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  size_t ngroups = 0;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* path = nullptr;

  uint64_t capabilities = 0;
  int last_cap = 40;
  bool no_new_privs = true;
  const struct sock_fprog* seccomp = nullptr;
  uint64_t core_limit = 0;
  bool set_nofile = false;
  uint64_t nofile_soft = 0;
  uint64_t nofile_hard = 0;
};

// Executes the plan in the freshly forked child; never returns. Async-signal-safe.
[[noreturn]] void run_exec_child(const ExecChildPlan& plan);

}  // namespace sandrun::sandbox
