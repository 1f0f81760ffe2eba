// Runner: one libuv loop running many jobs in parallel, with admission, cancellation on
// SIGINT/SIGTERM and a clean loop at the end.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "runner/events.h"
#include "runner/job.h"
#include "runner/output.h"
#include "runner/slots.h"
#include "runner/uv_handle.h"

namespace sandrun::runner {

struct RunOptions {
  size_t parallel = 1;                                // containers at once
  ConsoleMode console = ConsoleMode::prefixed;
  ConsoleStyle style;
  std::string log_dir;                                // <out>/logs; empty: no log files
  std::chrono::milliseconds stop_grace{10'000};       // SIGTERM -> SIGKILL on cancellation
  sandbox::cgroup::Backend* cgroups = nullptr;        // for jobs whose plan uses a cgroup
  RunEvents* events = nullptr;                        // reporters (console, JSON, JUnit); may be null
  std::string artifacts_dir;                          // <out>/artifacts; empty: none collected
  bool fail_fast = false;                             // the first failure cancels the rest
  // Admission beyond `parallel`: the sum of the running jobs' memory limits stays within this
  // many bytes (0: no memory admission).
  uint64_t memory_budget = 0;
};

// A stable 32-bit tag of a state dir path (FNV-1a), part of each run's cgroup name.
uint32_t state_tag(std::string_view state_root);

class Runner {
 public:
  // `state_root` holds the container slots (see slots.h).
  Runner(RunOptions options, std::string state_root, std::vector<JobPlan> plans);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Runs every job to its end (or cancellation) and tears everything down. The loop is
  // closed cleanly before this returns.
  Result<void> run();
  std::vector<JobResult> results() const;
  // The signal that cancelled the run (SIGINT or SIGTERM), or 0.
  int interrupted_by() const { return interrupted_; }

  // For jobs:
  uv_loop_t* loop() { return &loop_; }
  SlotPool& slots() { return slots_; }
  const std::string& state_root() const { return state_root_; }
  sandbox::cgroup::Backend* cgroups() { return options_.cgroups; }
  // This run's cgroup subtree name (sandrun/<run>/...) and a fresh name per container.
  const std::string& run_id() const { return run_id_; }
  uint64_t next_container_id() { return ++containers_; }
  uv_buf_t read_buffer();
  RunEvents* events() { return options_.events; }
  void job_done();

 private:
  static void on_signal(uv_signal_t* h, int signum);
  static void on_grace_expired(uv_timer_t* t);
  void schedule();
  void cancel(int sig);
  void maybe_finish();

  RunOptions options_;
  std::string state_root_;
  SlotPool slots_;
  uv_loop_t loop_;
  std::vector<std::unique_ptr<Job>> jobs_;
  size_t next_ = 0;
  size_t active_ = 0;
  int interrupted_ = 0;
  UvHandle<uv_signal_t> sigint_;
  UvHandle<uv_signal_t> sigterm_;
  UvHandle<uv_timer_t> grace_;
  std::unique_ptr<char[]> buffer_;
  std::string run_id_;
  std::atomic<uint64_t> containers_{0};
};

}  // namespace sandrun::runner
