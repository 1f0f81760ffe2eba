// Job: one container's life on the loop: start, stream output, time out, reap, tear down.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/job_file.h"
#include "runner/engine/artifacts.h"
#include "runner/engine/caches.h"
#include "runner/report/output.h"
#include "runner/engine/slots.h"
#include "runner/loop/uv_handle.h"
#include "sandbox/cgroup.h"
#include "sandbox/sandbox.h"

namespace sandrun::runner {

class Runner;
class PortProxy;
class SocketFactoryClient;

struct ServicePlan;

// A port published on the host: host_ip:host_port forwards to container_port of `service`'s
// container ("" = the job's own).
struct PublishedPort {
  std::string service;
  uint16_t container_port = 0;
  std::string host_ip;
  uint16_t host_port = 0;
};

// A job resolved and ready to run: what the runner needs beyond the sandbox spec.
struct JobPlan {
  std::string name;
  sandbox::SandboxSpec spec;  // upper/work/root are filled in per container
  std::optional<std::chrono::milliseconds> timeout;
  sandbox::cgroup::Limits limits;  // pids carries the default when the job sets none
  bool use_cgroup = false;         // the host has cgroups: the container gets its own
  // The job's name made safe as a file name (logs/<file_name>.log, artifacts/<file_name>/):
  // no '/', no control characters, not "." or "..".
  std::string file_name;
  std::vector<size_t> needs;       // indices (in the run's plans) of the jobs this one needs
  unsigned retries = 0;
  bool allow_failure = false;
  config::Artifacts artifacts;     // what is collected after the job exits
  std::vector<std::string> junit;  // JUnit files among the artifacts, for the --junit report
  std::vector<std::pair<std::string, std::string>> matrix;  // for reports
  std::vector<CacheMount> caches;  // named cache volumes, bound when the container starts
  config::Network network = config::Network::none;
  // The runner makes the job's network namespace itself (services, published ports, or
  // network = "private") and every container of the job joins it (SandboxSpec::netns_fd).
  bool shared_netns = false;
  std::vector<config::PortSpec> ports;  // published ports of the job's container
  std::vector<ServicePlan> services;    // started before the job, in the order written
  // Files of the container's /etc written into its writable layer before it starts: "hosts"
  // (the job's services by name), "resolv.conf" (a private network's DNS forwarder). Others
  // come from the image.
  std::vector<std::pair<std::string, std::string>> etc_files;
};

// A service of a job: its own container plan (name = the service's name), its ready check
// as a container plan of the same image in the job's network namespace (argv = the check).
struct ServicePlan {
  JobPlan plan;
  std::optional<JobPlan> ready;  // none: ready once started
  std::chrono::milliseconds ready_interval{1000};
  std::chrono::milliseconds ready_timeout{60'000};
};

struct JobResult {
  enum class Status { not_started, passed, failed, signaled, timed_out, oom_killed, setup_failed, exec_failed, cancelled, skipped };
  std::string name;
  size_t index = 0;     // in the run's plans (and events)
  Status status = Status::not_started;
  int exit_code = 0;
  int signal = 0;
  std::string message;  // sandrun's explanation for setup/exec failures
  std::chrono::milliseconds duration{0};
  std::chrono::milliseconds timeout{0};
  // From the container's cgroup (when it had one).
  std::optional<uint64_t> memory_peak;   // bytes
  std::optional<uint64_t> cpu_usec;
  std::optional<uint64_t> memory_limit;  // as set, for "out of memory (limit 64 MiB)"
  std::optional<uint64_t> pids_limit;
  bool oom_killed = false;               // the kernel's OOM killer ended a process in it
  bool pids_limit_hit = false;           // a fork failed at pids.max
  unsigned attempt = 1;                  // which attempt this result is (1 + retries used)
  unsigned max_attempts = 1;             // 1 + the job's retries
  bool allow_failure = false;            // a failure of this job does not fail the run
  std::string skipped_because;           // skipped: the need that did not pass ("build")
  // Artifacts collected (paths relative to <out>/artifacts/<job>/, or the archive's name).
  std::vector<std::string> artifacts;
  uint64_t artifacts_bytes = 0;
  std::vector<std::string> artifact_warnings;  // skipped FIFOs, the size cap reached, ...
  std::vector<std::string> output_tail;        // the job's last lines (stdout and stderr), for reports
  std::vector<PublishedPort> ports;            // what the job and its services published
  bool ok() const { return status == Status::passed; }
  // Neither this job nor the run failed because of it: passed, or failed with allow_failure.
  bool counts_as_passed() const { return ok() || (allow_failure && status != Status::cancelled && status != Status::skipped && status != Status::not_started); }
};

class Job {
 public:
  // One attempt (1-based) of plan `plan` (its index in the run is output's index).
  Job(Runner& runner, JobPlan plan, JobOutput output, unsigned attempt = 1);
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // Creates the container's directories and starts it (on the loop thread).
  void start();
  // Called (on the loop thread) instead of telling the Runner when the container is torn
  // down: for the containers of a job's services and ready checks (runner/pod.h).
  void on_done(std::function<void(Job&)> f) { on_done_ = std::move(f); }
  // The output's last lines so far (a service's log tail, for a failure message).
  std::vector<std::string> output_tail() const { return output_.tail(); }
  // Cancellation: passes `sig` to the container's init; kill() ends it at once.
  void stop(int sig);
  void kill();
  bool active() const { return state_ == State::running || state_ == State::tearing_down; }
  bool finished() const { return state_ == State::done; }
  const JobResult& result() const { return result_; }
  size_t index() const { return result_.index; }

 private:
  enum class State { pending, running, tearing_down, done };

  static void on_pidfd(uv_poll_t* h, int status, int events);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_timeout(uv_timer_t* t);

  void spawn();    // on a threadpool thread
  void spawned();  // back on the loop
  Result<void> watch();
  Result<void> publish_ports();
  void stream_closed(uv_stream_t* s);
  void reap();
  void maybe_exited();
  void record_outcome();
  void record_usage();
  void fail_to_start(const Error& error);
  void teardown();
  void teardown_done(const Result<void>& r);
  // Artifacts: the held container's command is over (its `exited` record arrived); collect
  // on the threadpool if `when` says so, then kill the container.
  void command_exited();
  void artifacts_collected(Result<ArtifactReport> report);

  Runner& runner_;
  JobPlan plan_;
  JobOutput output_;
  JobResult result_;
  State state_ = State::pending;
  Slot* slot_ = nullptr;
  std::unique_ptr<sandbox::cgroup::Group> cgroup_;
  std::optional<sandbox::Sandbox> sandbox_;
  CacheLease caches_;              // the locks of the caches this container has read-write
  std::optional<int> wait_status_;
  sandbox::StatusDecoder status_;
  UvHandle<uv_poll_t> pidfd_poll_;
  UvHandle<uv_pipe_t> pipes_[3];  // stdout, stderr, status
  int open_pipes_ = 0;
  UvHandle<uv_timer_t> timer_;
  bool timed_out_ = false;
  bool cancelled_ = false;
  bool spawning_ = false;          // a threadpool thread is starting the container
  std::optional<Error> spawn_error_;
  int stop_signal_ = 0;            // a cancellation to deliver once the container runs
  std::chrono::steady_clock::time_point started_at_;
  std::function<void(Job&)> on_done_;
  // Rootless published ports: the container's socket factory, which makes proxy_'s inner
  // sockets (declared first: it outlives the proxy, which calls it).
  std::unique_ptr<SocketFactoryClient> factory_;
  std::unique_ptr<PortProxy> proxy_;
  std::chrono::steady_clock::time_point command_ended_at_;  // the exited record (held containers)
  bool exit_seen_ = false;         // hold_after_exit: the command's `exited` record arrived
  bool collecting_ = false;        // a threadpool thread is collecting the artifacts
  std::shared_ptr<std::atomic<bool>> collect_cancel_;
};

}  // namespace sandrun::runner
