// `--format json`: one compact JSON object per line on stdout for each event of the run, and
// <out>/summary.json at its end. The fields are documented in docs/cli.md.
#pragma once

#include "runner/loop/loop.h"
#include "runner/loop/uv_handle.h"

#include <chrono>
#include <string>
#include <vector>

#include "runner/report/reporters.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner {

// passed, failed, signaled, timed_out, oom_killed, setup_failed, exec_failed, cancelled,
// skipped, not_started.
std::string_view status_name(JobResult::Status s);

// RFC 3339 in UTC with milliseconds: "2026-12-01T22:38:38.123Z".
std::string rfc3339(std::chrono::system_clock::time_point t);

// The run's totals: passed (status passed), failed (did not pass and fails the run),
// allowed_failures (failed with allow_failure), skipped (a need did not pass), cancelled
// (cancelled or never started).
struct RunTotals {
  size_t passed = 0, failed = 0, allowed_failures = 0, skipped = 0, cancelled = 0;
};
RunTotals run_totals(const std::vector<JobResult>& results);

class JsonReporter : public RunEvents {
 public:
  explicit JsonReporter(WriteFn write = console_writer(), OutputGate::Backlog backlog = console_backlog);

  // Events are written once per loop iteration while the loop runs (BatchedWriter).
  void loop_started(Loop& loop) override;
  // The run's loop has been closed: its handle (if any is left) must not be touched again.
  void loop_ended();
  void run_started(const std::vector<const JobPlan*>& plans) override;
  void job_queued(size_t index) override;
  void job_started(size_t index, unsigned attempt, unsigned max_attempts) override;
  void job_output(size_t index, int stream, std::string_view line, LinePart part = {}) override;
  void job_note(size_t index, std::string_view text) override;
  void job_retrying(size_t index, const JobResult& result) override;
  void port_published(size_t index, const PublishedPort& port) override;
  void service_state(size_t index, std::string_view service, std::string_view state) override;
  void job_finished(size_t index, const JobResult& result) override;
  void run_finished(const std::vector<JobResult>& results, int interrupted_by) override;

 private:
  const std::string& name(size_t index) const;
  void emit(const std::string& line);
  void say_hidden(bool at_end);

  BatchedWriter out_;
  OutputGate gate_;
  Loop* loop_ = nullptr;
  size_t finished_ = 0;
  std::vector<std::string> names_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// Writes {"finished", "jobs": [the job_finished objects], "passed", "failed", ...,
// "duration_ms", "interrupted_by"} to `path` (replaced atomically). `finished` is false in the
// summary written before the run starts (every job "not_started"), true in the final one.
Result<void> write_summary_json(const std::string& path, const std::vector<JobResult>& results,
                                std::chrono::milliseconds wall, int interrupted_by, bool finished = true);

}  // namespace sandrun::runner
