// Container: one container's life on the loop, as an object with explicit states:
//
//   created --start()--> starting --(cloned)--> running --stop()/kill()--> stopping
//                           |                      |                          |
//                           +--(failed to start)---+----(PID 1 reaped, pipes at EOF)---> exited
//   exited --remove()--> removed   (cgroup and writable layer gone, slot back in the pool)
//
// Every change of state goes through transition(). What `run`, `exec`, a service, a ready
// check (and next the daemon and the CI hooks) start is a Container; a job adds its scheduling
// rules around one (job.h), a pod shares one network namespace among several (pod.h).
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/engine/caches.h"
#include "runner/engine/engine.h"
#include "runner/engine/input.h"
#include "runner/engine/plan.h"
#include "runner/loop/loop.h"
#include "runner/loop/uv_handle.h"
#include "runner/report/output.h"
#include "sandbox/cgroup.h"
#include "sandbox/sandbox.h"

namespace sandrun::runner {

class PortProxy;
class SocketFactoryClient;

// What one start of a container adds to its plan (with the slot, it makes the
// sandbox::Placement): values known only when it starts.
struct ContainerStart {
  int netns_fd = -1;                  // join this network namespace (a pod's); -1: the plan's
  std::vector<std::string> env;       // "NAME=value" after the plan's (a pod's service ports)
  // Files of the container's /etc written into its writable layer before it starts: "hosts"
  // (a pod's services by name), "resolv.conf" (a private network's DNS forwarder).
  std::vector<std::pair<std::string, std::string>> etc_files;
  std::vector<CacheMount> caches;     // named cache volumes
  // Mounts of this start only, after the caches' (a daemon container's tmpfs mounts).
  std::vector<sandbox::Bind> binds;
  // Published through the container's own socket factory (plan.socket_factory: rootless). A
  // pod publishes its containers' ports through its namespace instead (pod.h).
  std::vector<config::PortSpec> ports;
  // Its stdin: a pipe the engine writes (Container::write_stdin); else /dev/null.
  bool stdin_pipe = false;
  // A terminal of this size as the first process's stdin, stdout and stderr (one stream, as
  // stdout); resize() changes it.
  std::optional<sandbox::TtySize> tty;
  // Run on the threadpool once its writable layer is made, before its command starts (files
  // copied into a container that did not run: docker cp), with the plan and the writable
  // layer's host path. An error fails the start.
  std::function<Result<void>(const sandbox::ContainerPlan&, const sandbox::Placement&)> prepare_layer;
  // It outlives this process (the daemon's --live-restore): sandbox::Placement::survive_parent.
  bool survive_daemon = false;
};

struct AdoptedParts;

class Container {
 public:
  enum class State { created, starting, running, stopping, exited, removed };

  struct Hooks {
    // hold_after_exit: the command has ended; the container holds its files until stopped.
    std::function<void()> command_exited;
    // A port the container published (its socket factory's), before it is reported running.
    std::function<void(const PublishedPort&)> port_published;
    // Bytes of its stdout (1) or stderr (2) as read, besides its JobOutput (the daemon's log
    // and attached clients).
    std::function<void(int stream, std::string_view data)> output;
    // It runs: cloned and watched (pid() is PID 1).
    std::function<void()> running;
    // The container has exited (outcome(), usage() and duration() are final). remove() next.
    std::function<void()> exited;
    // remove() is done: the container is gone. The owner may destroy it after this returns
    // (not from inside the hook).
    std::function<void()> removed;
    // Its stdin queue is back under Input::kLow after write_stdin() returned false.
    std::function<void()> stdin_drained;
  };

  struct Usage {
    std::optional<uint64_t> memory_peak;  // bytes
    std::optional<uint64_t> cpu_usec;
    bool oom_killed = false;              // the kernel's OOM killer ended a process in it
    bool pids_limit_hit = false;          // a fork failed at pids.max
    std::string disk_full;                // "disk limit reached (64 MiB)": its file system is full
  };

  Container(Engine& engine, std::shared_ptr<const sandbox::ContainerPlan> plan, ContainerStart start,
            JobOutput output, Hooks hooks);
  ~Container();
  // Live restore: a container an earlier daemon started and left running, already running
  // (its `running` hook is not called). It is watched through its pidfd and pipes; not our
  // child, its end is read from the status pipe (sandrun-init's `exited` record), else
  // SIGKILL when we sent it, else an unknown status (exit code 255).
  static std::unique_ptr<Container> adopt(Engine& engine, std::shared_ptr<const sandbox::ContainerPlan> plan,
                                          AdoptedParts parts, JobOutput output, Hooks hooks);
  Container(const Container&) = delete;
  Container& operator=(const Container&) = delete;

  State state() const { return state_; }
  const sandbox::ContainerPlan& plan() const { return *plan_; }
  std::shared_ptr<const sandbox::ContainerPlan> shared_plan() const { return plan_; }
  // Its cgroup from the start until remove() (null without one); the variables its start added
  // to the plan's.
  const sandbox::cgroup::Group* cgroup() const { return cgroup_.get(); }
  const std::vector<std::string>& start_env() const { return start_.env; }
  JobOutput& output() { return output_; }
  const JobOutput& output() const { return output_; }

  // created -> starting: claims a slot and clones on the threadpool.
  void start();
  // Sends `sig` to PID 1 (running -> stopping); before it runs, `sig` is sent once it does
  // (SIGKILL wins). Nothing once it has exited.
  void stop(int sig);
  void kill() { stop(SIGKILL); }
  // While running, with ContainerStart::stdin_pipe or tty: queues bytes for its stdin (false:
  // stop until Hooks::stdin_drained), end-of-file (a terminal: ^D), the terminal's size.
  bool write_stdin(std::string_view data) { return input_.write(data); }
  void close_stdin() { input_.end(); }
  Result<void> resize(sandbox::TtySize size);
  // exited -> removed: empties and removes the cgroup and the writable layer on the threadpool.
  void remove();
  // Live restore: lets a running container (started with survive_daemon, or adopted) go on
  // without this object: stops watching it, keeps its slot and cgroup. No hook is called; the
  // Container may be destroyed after. False (nothing done) when it cannot outlive us.
  bool detach();
  // What a record needs to adopt it later: its slot's directory and its cgroup's own run under
  // sandrun/ ("" when none).
  std::string slot_dir() const;
  std::string cgroup_path() const;

  // Once exited: why it could not start (sandrun's own failure), else nullopt.
  const std::optional<Error>& start_error() const { return start_error_; }
  // Once exited (or, for a held container, once command_exited ran): how the command ended.
  sandbox::Outcome outcome() const;
  const Usage& usage() const { return usage_; }
  // From the start to the command's end (the `exited` record of a held container, else
  // PID 1's reaping).
  std::chrono::milliseconds duration() const;
  // While running: PID 1 and its pidfd (e.g. for reading a held container's files).
  pid_t pid() const { return sandbox_ ? sandbox_->pid() : adopted_pid_; }
  int pidfd() const { return sandbox_ ? sandbox_->pidfd() : adopted_pidfd_.get(); }

 private:
  enum class Event { start, cloned, failed_to_start, stop, command_exited, pid1_reaped, stream_closed, remove, torn_down };
  // The one place the state changes.
  void transition(Event event);

  static void on_pidfd(uv_poll_t* h, int status, int events);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  // Backpressure: while the console's thread is behind, the container's stdout and stderr are
  // not read (its writes wait in the pipe), and a timer looks again.
  void pause_output();
  static void on_resume(uv_timer_t* t);
  void clone_blocking();  // on a threadpool thread
  Result<void> watch();
  Result<void> watch_fds(UniqueFd (&fds)[3], UniqueFd in, int pidfd);
  // An adopted container's PID 1 has exited: its wait status as far as it can be known.
  int adopted_wait_status() const;
  Result<void> publish_ports();
  void fail(const Error& error);
  void record_usage();
  bool ended() const;

  Engine& engine_;
  std::shared_ptr<const sandbox::ContainerPlan> plan_;
  ContainerStart start_;
  JobOutput output_;
  Hooks hooks_;
  State state_ = State::created;
  sandbox::Placement placement_;
  Slot* slot_ = nullptr;
  std::unique_ptr<sandbox::cgroup::Group> cgroup_;
  std::optional<sandbox::Sandbox> sandbox_;
  CacheLease caches_;
  std::optional<Error> start_error_;
  std::optional<int> wait_status_;
  sandbox::StatusDecoder status_;
  bool command_ended_ = false;
  int pending_signal_ = 0;
  UvHandle<uv_poll_t> pidfd_poll_;
  UvHandle<uv_pipe_t> pipes_[3];  // stdout (or the terminal), stderr, status
  int open_pipes_ = 0;
  int terminal_fd_ = -1;          // the terminal's master (owned by pipes_[0]) while it is open
  Input input_;
  UvHandle<uv_timer_t> resume_;
  bool paused_ = false;
  BlockingCall blocking_;         // the clone or the teardown, on the threadpool
  Result<void> teardown_result_;
  std::chrono::steady_clock::time_point started_at_;
  std::chrono::steady_clock::time_point ended_at_;
  Usage usage_;
  std::unique_ptr<SocketFactoryClient> factory_;  // rootless published ports (before proxy_: it goes last)
  std::unique_ptr<PortProxy> proxy_;
  // Its cgroup's own run under sandrun/ (Engine::next_cgroup of a live engine), removed with
  // it; "" when it shares the engine's.
  std::string own_cgroup_run_;
  // Adopted (live restore): PID 1 is not our child; its cgroup is known by its run only.
  bool adopted_ = false;
  pid_t adopted_pid_ = -1;
  UniqueFd adopted_pidfd_;
  bool sent_sigkill_ = false;
};

}  // namespace sandrun::runner
