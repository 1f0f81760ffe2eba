// Reporters: the run's events passed on to every reporter, each event once whoever sends it.
#pragma once

#include "runner/loop/loop.h"
#include "runner/loop/uv_handle.h"

#include <functional>
#include <string_view>
#include <vector>

#include "runner/report/events.h"

namespace sandrun::runner {

// Where a reporter writes: fd 1 (stdout) or 2 (stderr). The default writes to the console.
using WriteFn = std::function<void(int fd, std::string_view data)>;
WriteFn console_writer();

// What a reporter writes, in order, gathered while the loop handles a batch of I/O and written
// once per loop iteration (a uv_check handle): a job printing 200k lines costs a few hundred
// writes, not 200k. Without a loop, or once detached, every write goes out at once.
class BatchedWriter {
 public:
  explicit BatchedWriter(WriteFn write) : write_(std::move(write)) {}
  ~BatchedWriter();
  BatchedWriter(const BatchedWriter&) = delete;
  BatchedWriter& operator=(const BatchedWriter&) = delete;

  void attach(Loop& loop);  // the handle never keeps the loop alive
  void write(int fd, std::string_view data);
  void flush();
  // Flushes and closes the handle; call on the loop thread while the loop still runs.
  void detach();
  // The loop is gone: flushes, and leaves a handle still open alone.
  void abandon();

 private:
  WriteFn write_;
  std::vector<std::pair<int, std::string>> pending_;  // consecutive writes to one fd joined
  size_t bytes_ = 0;
  UvHandle<uv_check_t> check_;
};

// A reporter's view of the console, bounded: job output is shown while the console keeps up;
// once its backlog (console_backlog()) is above kConsoleBacklogHigh, lines are counted instead
// of shown until it is back below kConsoleBacklogLow. A reader that stops reading never stops
// the jobs (their log files stay complete); the reporter says how many lines it did not show.
class OutputGate {
 public:
  using Backlog = std::function<size_t()>;
  explicit OutputGate(Backlog backlog) : backlog_(std::move(backlog)) {}
  // True when a line of job output may be shown now; else it is counted.
  bool admit();
  // The lines not shown, once the console has caught up (or, with `at_end`, whatever is left);
  // 0 when there is nothing to say yet.
  uint64_t take_hidden(bool at_end = false);

 private:
  Backlog backlog_;
  bool behind_ = false;
  uint64_t hidden_ = 0;
};

// "N lines of output not shown: the console fell behind (the log files have every line)".
std::string hidden_lines_text(uint64_t lines);

// Passes every event to each reporter added, in order. run_started, job_finished (per job) and
// run_finished go through once each: the command sends them itself around a run (complete()),
// and they are not repeated where the runner sent them already.
class Reporters : public RunEvents {
 public:
  void add(RunEvents* r) { list_.push_back(r); }

  void loop_started(Loop& loop) override;
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

  // After the run: job_finished for each job not reported yet, then run_finished.
  void complete(const std::vector<JobResult>& results, int interrupted_by);

 private:
  std::vector<RunEvents*> list_;
  bool started_ = false;
  bool finished_ = false;
  std::vector<bool> job_done_;
};

}  // namespace sandrun::runner
