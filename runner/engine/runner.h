// Runner: one libuv loop running many jobs in parallel, with admission, cancellation on
// SIGINT/SIGTERM and a clean loop at the end.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "runner/engine/engine.h"
#include "runner/engine/job.h"
#include "runner/engine/plan.h"
#include "runner/engine/pod.h"
#include "runner/engine/result.h"
#include "runner/loop/loop.h"
#include "runner/loop/uv_handle.h"
#include "runner/report/events.h"
#include "runner/report/output.h"

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

// Schedules the jobs of a run: a job becomes ready when every job it needs has passed (or
// failed with allow_failure), and is skipped when one did not; ready jobs start in order while
// a container slot is free and, with a memory budget, their memory limits fit beside the
// running ones'. A failed attempt runs again in a fresh container while retries are left.
class Runner {
 public:
  // `state_root` holds the container slots (see slots.h). `loop` outlives the runner.
  Runner(Loop& loop, RunOptions options, std::string state_root, std::vector<JobPlan> plans);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Runs every job to its end (or cancellation) and tears everything down: when this
  // returns, nothing of the run is left on the loop.
  Result<void> run();
  // The final result of each plan, in plan order.
  std::vector<JobResult> results() const { return results_; }
  // The signal that cancelled the run (SIGINT or SIGTERM), or 0.
  int interrupted_by() const { return interrupted_; }
  // A failure cancelled the rest of the run (fail_fast).
  bool failed_fast() const { return failed_fast_; }

  // For jobs:
  Engine& engine() { return engine_; }
  RunEvents* events() { return options_.events; }
  const RunOptions& options() const { return options_; }
  const std::string& artifacts_dir() const { return options_.artifacts_dir; }
  // <log_dir>/<file_name>.log, or "" when the run keeps no logs (or the container has none).
  std::string log_path(const std::string& file_name) const {
    return options_.log_dir.empty() || file_name.empty() ? "" : options_.log_dir + "/" + file_name + ".log";
  }
  // A job (one attempt of plan `index`) has ended and torn down its container.
  void job_done(size_t index, const JobResult& result);

 private:
  enum class State { waiting, queued, running, done };

  static void on_signal(uv_signal_t* h, int signum);
  static void on_grace_expired(uv_timer_t* t);
  static void on_reap(uv_timer_t* t);
  void collect_ended();
  void schedule();
  void update_waiting();
  bool fits(size_t index) const;
  void start(size_t index, unsigned attempt);
  void finish(size_t index, JobResult result);
  void stop_all(int sig);
  void kill_all();
  void maybe_finish();

  Loop& loop_;
  RunOptions options_;
  Engine engine_;
  const std::vector<JobPlan> plans_;
  std::vector<State> state_;
  std::vector<JobResult> results_;
  std::vector<unsigned> next_attempt_;
  // The attempts that run. One that ended moves to ended_*, freed at the next turn of the
  // loop (reaper_): a job ends inside its own callback, so it is never freed in place, and a
  // long run keeps only what runs (a run of 10,000 jobs held every container, its buffers
  // and cgroup fds, until the end).
  std::vector<std::unique_ptr<Job>> jobs_;
  std::vector<std::unique_ptr<Pod>> pods_;      // jobs with services, ports or a private network
  std::vector<std::unique_ptr<Job>> ended_jobs_;
  std::vector<std::unique_ptr<Pod>> ended_pods_;
  std::vector<size_t> queue_;                   // ready, in the order they became ready
  size_t active_ = 0;
  uint64_t memory_in_use_ = 0;
  int interrupted_ = 0;
  bool failed_fast_ = false;
  UvHandle<uv_signal_t> sigint_;
  UvHandle<uv_signal_t> sigterm_;
  UvHandle<uv_timer_t> grace_;
  UvHandle<uv_timer_t> reaper_;
};

}  // namespace sandrun::runner
