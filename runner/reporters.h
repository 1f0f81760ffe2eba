// Reporters: the run's events passed on to every reporter, each event once whoever sends it.
#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "runner/events.h"

namespace sandrun::runner {

// Where a reporter writes: fd 1 (stdout) or 2 (stderr). The default writes to the console.
using WriteFn = std::function<void(int fd, std::string_view data)>;
WriteFn console_writer();

// Passes every event to each reporter added, in order. run_started, job_finished (per job) and
// run_finished go through once each: the command sends them itself around a run (complete()),
// and they are not repeated where the runner sent them already.
class Reporters : public RunEvents {
 public:
  void add(RunEvents* r) { list_.push_back(r); }

  void loop_started(uv_loop_t* loop) override;
  void run_started(const std::vector<const JobPlan*>& plans) override;
  void job_queued(size_t index) override;
  void job_started(size_t index, unsigned attempt, unsigned max_attempts) override;
  void job_output(size_t index, int stream, std::string_view line) override;
  void job_note(size_t index, std::string_view text) override;
  void job_retrying(size_t index, const JobResult& result) override;
  void job_finished(size_t index, const JobResult& result) override;
  void run_finished(const std::vector<JobResult>& results, int interrupted_by) override;

  // After the run: job_finished for each job not reported yet, then run_finished.
  void complete(const std::vector<JobResult>& results, int interrupted_by);

 private:
  std::vector<RunEvents*> list_;
  bool started_ = false;
  bool finished_ = false;
  std::vector<bool> job_done_;
};

}  // namespace sandrun::runner
