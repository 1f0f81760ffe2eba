// What happens during a run, as events for the console, the JSON event stream, JUnit and the
// summary (runner/report*.cc implement them). The runner calls them on the loop thread.
#pragma once

#include <string_view>
#include <vector>

#include "runner/engine/plan.h"
#include "runner/engine/result.h"
#include "runner/loop/loop.h"
#include "runner/report/output.h"

namespace sandrun::runner {

class RunEvents {
 public:
  virtual ~RunEvents() = default;
  // The run's loop, before any job starts: a reporter may keep a timer on it, which it closes
  // once every job has finished (job_finished) or at run_finished, whichever comes first.
  virtual void loop_started(Loop& loop) { (void)loop; }
  // Before anything starts: every planned job, in order (JobPlan::name, index = position).
  virtual void run_started(const std::vector<const JobPlan*>& plans) { (void)plans; }
  // A job waits for a container slot (its needs have passed).
  virtual void job_queued(size_t index) { (void)index; }
  // An attempt of a job started (attempt 1..max).
  virtual void job_started(size_t index, unsigned attempt, unsigned max_attempts) {
    (void)index, (void)attempt, (void)max_attempts;
  }
  // One line of a job's output (without its newline); stream 1 = stdout, 2 = stderr. A line
  // longer than kMaxLinePart comes as several calls, `part` saying which.
  virtual void job_output(size_t index, int stream, std::string_view line, LinePart part = {}) {
    (void)index, (void)stream, (void)line, (void)part;
  }
  // A line from sandrun about a job ("timed out after 10s; killed the container").
  virtual void job_note(size_t index, std::string_view text) { (void)index, (void)text; }
  // A port of the job (or of one of its services) is published on the host.
  virtual void port_published(size_t index, const PublishedPort& port) { (void)index, (void)port; }
  // A service of the job changed state: "starting", "ready", "failed: ...", "stopped".
  virtual void service_state(size_t index, std::string_view service, std::string_view state) {
    (void)index, (void)service, (void)state;
  }
  // An attempt failed and the job runs again (`result` is the failed attempt's).
  virtual void job_retrying(size_t index, const JobResult& result) { (void)index, (void)result; }
  // The job's final result: passed, failed, skipped (needs), cancelled, not started.
  virtual void job_finished(size_t index, const JobResult& result) { (void)index, (void)result; }
  // Everything has ended.
  virtual void run_finished(const std::vector<JobResult>& results, int interrupted_by) {
    (void)results, (void)interrupted_by;
  }
};

}  // namespace sandrun::runner
