// Runs one function in a forked child under a seccomp filter and reports how it ended: the
// harness of the seccomp tests (seccomp_test, seccomp_abi_test).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>

#include "sandbox/harden_child.h"
#include "sandbox/seccomp_filter.h"

namespace sandrun::sandbox::seccomp_harness {

inline constexpr int kSetupFailed = 250;
inline constexpr int kSignalled = 1000;  // + the signal number

// Runs `fn` in a forked child under `filter` (null: no filter) and returns what it returned:
// 0 for success, an errno otherwise; kSignalled + N when the child died of signal N.
inline int run_filtered(const SeccompFilter* filter, const std::function<int()>& fn) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (harden::set_no_new_privs() != 0) ::_exit(kSetupFailed);
    if (filter && harden::load_seccomp(filter->prog()) != 0) ::_exit(kSetupFailed + 1);
    ::_exit(fn());
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  return WIFSIGNALED(status) ? kSignalled + WTERMSIG(status) : WEXITSTATUS(status);
}

// 0 for a system call's success, its errno otherwise.
inline int err(long r) { return r < 0 ? errno : 0; }

}  // namespace sandrun::sandbox::seccomp_harness
