// ExecProcess: a process started in a running Container (Docker's `exec`, health checks, ready
// checks), on the loop, with explicit states:
//
//   created --start()--> starting --(forked into the container)--> running
//                           |                                         |
//                           +--(failed to start)--> exited <--(reaped, output at EOF)
//
// It joins the container's namespaces and cgroup and gets what its first process got
// (sandbox/exec.h). Its stdout and stderr (or its terminal) are read on the loop and handed
// to Hooks::output; its stdin, when asked for, is written through write_stdin().
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/engine/engine.h"
#include "runner/engine/input.h"
#include "runner/loop/loop.h"
#include "runner/loop/uv_handle.h"
#include "sandbox/exec.h"
#include "sandbox/sandbox.h"

namespace sandrun::runner {

class Container;

// What an exec runs, as Docker's ExecConfig says it (the front door translates).
struct ExecRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "NAME=value": replaces the container's same-named ones
  std::string workdir;           // absolute; empty: the container's
  std::string user;              // "uid[:gid]" or "name[:group]" of the image; empty: the container's
  bool stdin_pipe = false;       // write_stdin(); else /dev/null
  std::optional<sandbox::TtySize> tty;  // one stream (stdout) from a terminal; resize()
};

class ExecProcess {
 public:
  enum class State { created, starting, running, exited };

  struct Hooks {
    // Output as it comes: stream 1 (stdout, or the terminal) or 2 (stderr).
    std::function<void(int stream, std::string_view data)> output;
    // running: the process is in the container (pid() is known).
    std::function<void()> started;
    // exited: outcome() is final. The owner may destroy it after this returns (not inside).
    std::function<void()> exited;
    // The stdin queue is back under Input::kLow after write_stdin() returned false.
    std::function<void()> stdin_drained;
  };

  // `container` must be running when start() is called; the exec keeps what it needs of it
  // (its plan, a pidfd and its cgroup's fds), so the container may end first (the kernel then
  // ends the exec's process with the container's PID namespace).
  ExecProcess(Engine& engine, Container& container, ExecRequest request, Hooks hooks);
  ~ExecProcess();  // a process still running is killed and reaped
  ExecProcess(const ExecProcess&) = delete;
  ExecProcess& operator=(const ExecProcess&) = delete;

  // created -> starting: resolves the user in the image and forks on the threadpool.
  void start();
  // Through the pidfd; nothing once exited. Before it runs: sent once it does.
  void signal(int sig);
  // Queues bytes for its stdin (or terminal). False: stop until Hooks::stdin_drained.
  bool write_stdin(std::string_view data);
  // End-of-file on its stdin (a terminal: ^D).
  void close_stdin();
  // The terminal's size (SIGWINCH to the process); an error without a terminal.
  Result<void> resize(sandbox::TtySize size);
  // Backpressure from the reader of the output: stop and go on reading its pipes.
  void pause_output();
  void resume_output();

  State state() const { return state_; }
  const ExecRequest& request() const { return request_; }
  pid_t pid() const { return exec_ ? exec_->pid() : -1; }  // as the host sees it
  // Once exited: why it could not start (sandrun's own failure), else nullopt.
  const std::optional<Error>& start_error() const { return start_error_; }
  // Once exited: how the command ended (a setup failure in the container names its stage).
  sandbox::Outcome outcome() const;
  // Once exited: Docker's ExitCode (the exit code, 128 + signal, 126/127 when it could not
  // execute, 1 for a setup failure, -1 when it never started).
  int exit_code() const;

 private:
  enum class Event { start, forked, failed_to_start, reaped, stream_closed };
  void transition(Event event);
  void fork_blocking();  // on a threadpool thread
  Result<void> watch();
  void fail(const Error& error);
  static void on_pidfd(uv_poll_t* h, int status, int events);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);

  Engine& engine_;
  std::shared_ptr<const sandbox::ContainerPlan> plan_;
  sandbox::ExecTarget target_;
  UniqueFd pidfd_;                        // a dup of the container's PID 1's
  std::vector<UniqueFd> cgroup_fds_;      // dups of its cgroup's fds
  ExecRequest request_;
  sandbox::ExecSpec spec_;
  Hooks hooks_;
  State state_ = State::created;
  std::optional<sandbox::Exec> exec_;
  std::optional<Error> start_error_;
  std::optional<int> wait_status_;
  sandbox::StatusDecoder status_;
  int pending_signal_ = 0;
  UvHandle<uv_poll_t> pidfd_poll_;
  UvHandle<uv_pipe_t> pipes_[3];  // stdout (or the terminal), stderr, status
  int open_pipes_ = 0;
  int terminal_fd_ = -1;          // the terminal's master (owned by pipes_[0]) while it is open
  bool paused_ = false;
  Input input_;
  BlockingCall blocking_;
};

}  // namespace sandrun::runner
