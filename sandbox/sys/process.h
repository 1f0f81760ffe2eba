// Child: the one owner of a child process (a pidfd, killed and reaped unless released), and
// spawn(), the one way to run a helper program.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::sys {

// A child process of ours. Move-only. A Child that was neither reaped nor released is
// SIGKILLed (through its pidfd) and reaped by its destructor, so no path leaves a zombie or a
// stray process behind. Signals go through the pidfd: never by a bare pid number, except to a
// child not yet reaped whose kernel has no pidfd_open (its pid cannot be reused before we reap
// it), and to its process group (see kill_group).
class Child {
 public:
  Child() = default;  // owns nothing; reaped() is true
  // Takes over a child made elsewhere (clone3 with CLONE_PIDFD). `what` names it in errors
  // ("the container's init"); empty: "pid N".
  static Child adopt(pid_t pid, UniqueFd pidfd, std::string what = {});
  // Takes over a child made by fork() and not reaped: opens its pidfd (race-free, as the pid
  // stays taken until we reap it). Where the kernel has no pidfd_open (before 5.3) the Child
  // works by pid alone, which is safe for the same reason.
  static Child adopt_forked(pid_t pid, std::string what = {});

  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;  // kills and reaps what this held first
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { kill_and_reap(); }

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  // Nothing left to reap: reaped, released, moved from or never set.
  bool reaped() const { return !running_; }

  // With `on`, kill_and_reap() (and so the destructor) also SIGKILLs the process group the
  // child leads: for a helper started in its own group that forks (slirp4netns does). The
  // group is killed before the reap, while the leader's pid (the group's id) is still taken.
  void set_kill_group(bool on) { kill_group_ = on; }

  // Sends `sig` through the pidfd. A child that is already gone (exited, reaped) is no error.
  Result<void> signal(int sig);
  // Reaps the child when it has exited (poll the pidfd for readability first); nullopt while
  // it runs. Returns a waitpid-style status.
  Result<std::optional<int>> try_reap();
  // Blocks until the child exits and reaps it (EINTR-safe; also with an O_NONBLOCK pidfd).
  Result<int> wait();
  // SIGKILLs (with kill_group, the group too) and reaps an unreaped child; else nothing.
  void kill_and_reap();
  // Gives the child up: it is neither killed nor reaped by this object any more. Returns the
  // pidfd (invalid when there was none).
  UniqueFd release();

 private:
  std::string name() const;

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool running_ = false;  // ours and not yet reaped
  bool kill_group_ = false;
  std::string what_;
};

// How spawn() runs a program.
struct SpawnOptions {
  // The program: a path with a '/', or a name looked up in `search` (":"-separated; relative
  // entries are skipped), as execvp does, but decided before the fork.
  std::string path;
  std::vector<std::string> args;  // args[0] is the program's name
  // The environment. nullopt: only PATH=/usr/local/sbin:...:/bin (no variable of ours, such
  // as tokens or proxies, reaches a helper).
  std::optional<std::vector<std::string>> env;
  // Where a bare program name is searched; nullptr: the standard system directories.
  const char* search = nullptr;
  // fds 0, 1 and 2 in the child; -1: /dev/null.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Each {ours, theirs} becomes the child's fd `theirs` (>= 3). Every other fd is closed in
  // the child, whatever its CLOEXEC flag (another thread may have opened one without it).
  std::vector<std::pair<int, int>> keep;
  // Starts the child in a process group of its own (a terminal's ^C then reaches only us)
  // and makes the Child kill that group too (Child::set_kill_group).
  bool own_process_group = false;
};

// Runs a program with default signal dispositions and an empty signal mask, and the fds that
// `options` names only. Returns once it has exec'd; an exec failure is an error naming the
// program (and the child is reaped). The pidfd comes from clone3(CLONE_PIDFD), race-free (or,
// where clone3 is refused, from pidfd_open right after a fork).
Result<Child> spawn(const SpawnOptions& options);

// What a program run by run_captured() printed, and its wait status.
struct Captured {
  int status = 0;
  std::string output;
};
// Runs `options` to its end with its stdout (and, with `with_stderr`, its stderr) on one
// CLOEXEC pipe, and returns what it printed. An error: it could not be started (spawn()'s, so
// its code says why: ENOENT for a missing program) or its output could not be read.
Result<Captured> run_captured(SpawnOptions options, bool with_stderr);

// The wait status (as waitpid returns it) of a waitid() result.
int wait_status_from(const siginfo_t& info);

// "SIGKILL" for 9, "signal 42" when unnamed.
std::string signal_text(int sig);

}  // namespace sandrun::sys
