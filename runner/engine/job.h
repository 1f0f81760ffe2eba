// Job: a container plus its scheduling rules: its timeout, its artifacts, its result (the
// scheduler, runner.h, adds needs and retries).
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
#include "runner/engine/container.h"
#include "runner/engine/plan.h"
#include "runner/engine/result.h"
#include "runner/loop/loop.h"
#include "runner/loop/uv_handle.h"
#include "runner/report/output.h"

namespace sandrun::runner {

class Runner;

class Job {
 public:
  // One attempt (1-based) of plan `plan` (its index in the run is output's index). `start`
  // adds what this start of its container needs beyond the plan (a pod's namespace, ...).
  Job(Runner& runner, const JobPlan& plan, JobOutput output, unsigned attempt = 1, ContainerStart start = {});
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // Starts the container (on the loop thread).
  void start();
  // Called (on the loop thread) instead of telling the Runner when the container is removed:
  // for the containers of a job's services and ready checks (runner/engine/pod.h).
  void on_done(std::function<void(Job&)> f) { on_done_ = std::move(f); }
  // The output's last lines so far (a service's log tail, for a failure message).
  std::vector<std::string> output_tail() const { return container_.output().tail(); }
  // Cancellation: passes `sig` to the container's init; kill() ends it at once.
  void stop(int sig);
  void kill();
  bool finished() const { return container_.state() == Container::State::removed; }
  const JobResult& result() const { return result_; }
  // Its container (a service's: its ready checks are execs into it).
  Container& container() { return container_; }
  size_t index() const { return result_.index; }

 private:
  // The container's hooks.
  void command_exited();
  void exited();
  void removed();
  void record_outcome();
  static void on_timeout(uv_timer_t* t);
  // Artifacts: the held container's command is over; collect on the threadpool if `when`
  // says so, then kill the container.
  void artifacts_collected(Result<ArtifactReport> report);

  Runner& runner_;
  const JobPlan& plan_;
  JobResult result_;
  Container container_;
  UvHandle<uv_timer_t> timer_;
  bool timed_out_ = false;
  bool cancelled_ = false;
  bool command_done_ = false;      // hold_after_exit: the command has ended, the files are held
  std::function<void(Job&)> on_done_;
  BlockingCall collect_;           // the artifacts' collection on the threadpool
  std::optional<Result<ArtifactReport>> collected_;
};

}  // namespace sandrun::runner
