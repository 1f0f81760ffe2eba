// Sandbox: one live container (a cloned process tree in its own namespaces) and its fds.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "sandbox/container_plan.h"
#include "sandbox/status.h"
#include "sandbox/sys/process.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::sandbox {

// How a container ended, from its status records and its PID 1's wait status.
struct Outcome {
  enum class Kind { exited, signaled, setup_failed, exec_failed };
  Kind kind = Kind::exited;
  int code = 0;    // exit code (exited)
  int signal = 0;  // terminating signal (signaled)
  std::optional<Error> error;  // what went wrong (setup_failed, exec_failed)
  bool ok() const { return kind == Kind::exited && code == 0; }
};

// Accumulates bytes read from the status pipe into records.
class StatusDecoder {
 public:
  void feed(const char* data, size_t size);
  const std::vector<StatusRecord>& records() const { return records_; }
  bool started() const;  // the command is running (or ran)
  // sandrun-init reported the command's end (with hold_after_exit, the container now holds).
  bool exited() const;

 private:
  std::string partial_;
  std::vector<StatusRecord> records_;
};

namespace cgroup {
class Group;
}

class Sandbox {
 public:
  // Clones the container's first process into new mount, pid, ipc, uts, cgroup (and net)
  // namespaces; it sets up the root and execs sandrun-init (or the command). Returns at once:
  // success or failure of the setup arrives later on the status pipe. Must be called from
  // the thread that outlives the container (the parent-death signal follows that thread).
  // With `group`, the container's first process starts inside it (v2: clone3 with
  // CLONE_INTO_CGROUP; v1: it joins before anything else) and its cgroup namespace is rooted
  // there. The group must outlive the container.
  static Result<Sandbox> start(const ContainerPlan& spec, const Placement& place,
                               const cgroup::Group* group = nullptr);

  Sandbox(Sandbox&& other) noexcept;
  Sandbox& operator=(Sandbox&& other) noexcept;
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;
  // A container that was neither reaped nor released is killed and reaped here.
  ~Sandbox();

  pid_t pid() const { return child_.pid(); }
  int pidfd() const { return child_.pidfd(); }
  // The read ends of the container's stdout, stderr and status pipes (O_CLOEXEC).
  UniqueFd take_stdout() { return std::move(stdout_); }
  UniqueFd take_stderr() { return std::move(stderr_); }
  UniqueFd take_status() { return std::move(status_); }
  // The write end of its stdin (Placement::stdin_pipe), else invalid.
  UniqueFd take_stdin() { return std::move(stdin_); }
  // The master of its terminal (Placement::tty), else invalid.
  UniqueFd take_terminal() { return std::move(terminal_); }
  // sandrun's end of the socket factory (ContainerPlan::socket_factory), else invalid.
  UniqueFd take_socket_factory() { return std::move(factory_); }

  // Sends `sig` to the container's PID 1 through its pidfd. SIGKILL ends the whole tree
  // (the kernel kills a PID namespace with its init). Already gone is not an error.
  Result<void> signal(int sig);
  // Reaps PID 1 when it has exited (poll the pidfd first); nullopt while it runs.
  // Returns a waitpid-style status.
  Result<std::optional<int>> try_reap();
  // Blocks until PID 1 exits and reaps it.
  Result<int> wait();
  bool reaped() const { return child_.reaped(); }
  // Lets the container go on without this object (Placement::survive_parent: the daemon's
  // --live-restore): neither killed nor reaped here any more.
  void release() { (void)child_.release(); }

 private:
  Sandbox() = default;

  UniqueFd stdout_;
  UniqueFd stderr_;
  UniqueFd status_;
  UniqueFd stdin_;
  UniqueFd terminal_;
  UniqueFd factory_;
  sys::Child child_;  // last: destroyed (killed and reaped) first
};

// Turns the records and PID 1's wait status into an Outcome with full messages that name
// the mount, path or command (e.g. "mount overlay on /var/lib/sandrun/run/r1/0/root: ...").
Outcome interpret(const ContainerPlan& spec, const Placement& place, const std::vector<StatusRecord>& records,
                  int wait_status);

// The message for one setup failure record.
Error describe_failure(const ContainerPlan& spec, const Placement& place, const StatusRecord& record);

// "SIGKILL" for 9, "signal 42" when unnamed.
std::string signal_name(int sig);

}  // namespace sandrun::sandbox
