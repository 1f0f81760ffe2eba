// Exec: a new process in a running container (Docker's `exec`, health checks, ready checks):
// it joins the namespaces of the container's PID 1 and its cgroup, takes its root, and gets
// exactly the hardening the first process got (the plan's seccomp filter, capabilities,
// no_new_privs, rlimits), as the plan's user or another, with the plan's environment plus
// overrides, in the plan's working directory or another.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "sandbox/container_plan.h"
#include "sandbox/sandbox.h"
#include "sandbox/status.h"
#include "sandbox/sys/process.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"
#include "sandbox/terminal.h"

namespace sandrun::sandbox {

// What an exec adds to its container's plan.
struct ExecSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in the PATH of the resulting environment
  // "NAME=value" after the plan's (and the container's start's): same names replace.
  std::vector<std::string> env;
  std::string workdir;            // absolute container path; empty: the plan's. Never created.
  struct Ids {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
  };
  std::optional<Ids> user;        // unset: the plan's uid, gid and groups
  bool stdin_pipe = false;        // a pipe sandrun writes; else the container's /dev/null
  std::optional<TtySize> tty;     // a pty of the container's /dev/pts as 0, 1 and 2
};

// The running container to enter: its PID 1 (a pidfd of ours) and, when it has one, its
// cgroup's fds (valid until start returns).
struct ExecTarget {
  pid_t pid = -1;
  int pidfd = -1;
  int cgroup_dir_fd = -1;          // v2: Group::clone_into_fd() (clone3 CLONE_INTO_CGROUP)
  std::vector<int> cgroup_procs;   // v1: Group::procs_fds() (the child writes "0" to each)
  std::vector<std::string> start_env;  // Placement::env of the container's start
};

class Exec {
 public:
  // Forks (no shared memory: other processes of the container exist, and the child must be
  // non-dumpable to them until it execs) a child that joins the container and execs
  // spec.argv. The calling thread enters the container's PID namespace for the clone and
  // goes back at once (a thread's PID namespace for children is its own). Needs root. Returns
  // once forked, or with a terminal once the child has sent it: success or failure of the
  // setup arrives later on the status pipe (end-of-file: it exec'd).
  static Result<Exec> start(const ContainerPlan& plan, const ExecTarget& target, const ExecSpec& spec);

  Exec(Exec&&) noexcept;
  Exec& operator=(Exec&&) noexcept;
  Exec(const Exec&) = delete;
  Exec& operator=(const Exec&) = delete;
  ~Exec();  // not reaped nor released: killed and reaped

  pid_t pid() const { return child_.pid(); }  // as the host sees it
  int pidfd() const { return child_.pidfd(); }
  UniqueFd take_stdout() { return std::move(stdout_); }
  UniqueFd take_stderr() { return std::move(stderr_); }
  UniqueFd take_stdin() { return std::move(stdin_); }       // ExecSpec::stdin_pipe
  UniqueFd take_terminal() { return std::move(terminal_); } // ExecSpec::tty
  UniqueFd take_status() { return std::move(status_); }

  Result<void> signal(int sig) { return child_.signal(sig); }
  Result<std::optional<int>> try_reap() { return child_.try_reap(); }
  Result<int> wait() { return child_.wait(); }

 private:
  Exec() = default;
  UniqueFd stdout_, stderr_, stdin_, terminal_, status_;
  sys::Child child_;  // last: destroyed (killed and reaped) first
};

// The exec's environment: the plan's, then the start's, then the exec's own; a later
// NAME= replaces an earlier one in place.
std::vector<std::string> exec_env(const ContainerPlan& plan, const std::vector<std::string>& start_env,
                                  const std::vector<std::string>& overrides);

// How an exec ended, from its status records (a setup failure, or the command not found) and
// its wait status; messages name the exec's command, user and working directory.
Outcome interpret_exec(const ContainerPlan& plan, const ExecSpec& spec, const std::vector<StatusRecord>& records,
                       int wait_status);

}  // namespace sandrun::sandbox
