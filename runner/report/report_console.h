// The console reporter of `sandrun run`: plain prefixed lines, or (on a terminal) the logs
// above a live status block of the running jobs; --quiet keeps only failed jobs' output.
#pragma once

#include "runner/loop/loop.h"
#include "runner/loop/uv_handle.h"

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "runner/report/output.h"
#include "runner/report/reporters.h"

namespace sandrun::runner {

struct ConsoleOptions {
  bool tty = false;    // the live status block (else plain lines)
  bool quiet = false;  // a job's output only when it failed (and not allow_failure)
  ConsoleStyle style;
  // The terminal's size for the status block; 0: asked of stdout (80x24 when it does not say).
  size_t width = 0;
  size_t height = 0;
  WriteFn write = console_writer();
  OutputGate::Backlog backlog = console_backlog;  // the console's backlog, for OutputGate
  std::function<std::chrono::steady_clock::time_point()> clock = [] { return std::chrono::steady_clock::now(); };
};

// Plain mode: "[job] line" on the job's stream (stdout or stderr), and on stderr
// "[job] started", "[job] retrying (attempt 2 of 3): failed: exit 1",
// "[job] passed (attempt 2/3) in 1.20s", "[job] failed: exit 1 (allowed) in 95ms",
// "[job] skipped (needs build)", "[job] sandrun: <note>".
// Tty mode: everything on stdout, one write per redraw: the cursor goes up over the block,
// clears to the end of the screen, writes the new log lines and the block again (a line per
// running job with its elapsed time, and the counts). A timer on the loop refreshes the times
// 4 times a second and flushes buffered lines; it is closed once every job has finished.
// Plain mode writes what one loop iteration produced at once (BatchedWriter).
class ConsoleReporter : public RunEvents {
 public:
  // Lines of a job's output kept for --quiet (the last ones; the log file has them all).
  static constexpr size_t kQuietLines = 200;

  explicit ConsoleReporter(ConsoleOptions options);
  ~ConsoleReporter() override;

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

  // The run's loop has been closed: its timer (if any is left) must not be touched again.
  void loop_ended();
  // Tty mode: the status block as drawn now, one string per terminal line.
  std::vector<std::string> status_block() const;
  // Tty mode: writes pending lines and redraws the block (the timer calls it).
  void redraw();

 private:
  enum class Phase { waiting, queued, running, done };
  struct JobState {
    std::string name;
    std::string prefix;
    Phase phase = Phase::waiting;
    std::chrono::steady_clock::time_point since;
    unsigned attempt = 1, max_attempts = 1;
    std::deque<std::pair<int, std::string>> kept;  // --quiet: the last lines, with their stream
    size_t dropped = 0;                            // --quiet: lines no longer kept
  };

  JobState& job(size_t index);
  void line(int fd, std::string text);  // a log line (text ends with '\n')
  void keep(JobState& j, int fd, std::string text);
  void start_loop_handles();  // tty: the refresh timer; plain: batched writes
  void close_loop_handles();
  void flush_lines();
  std::pair<size_t, size_t> terminal_size() const;

  void say_hidden(bool at_end);

  ConsoleOptions o_;
  BatchedWriter out_;  // plain mode
  OutputGate gate_;
  std::vector<JobState> jobs_;
  size_t passed_ = 0, failed_ = 0, allowed_ = 0, skipped_ = 0, cancelled_ = 0, finished_ = 0;
  std::string pending_;    // tty: log lines not yet written
  size_t drawn_lines_ = 0; // tty: lines of the block on the screen now
  Loop* loop_ = nullptr;
  UvHandle<uv_timer_t> timer_;
};

// Cuts `text` to at most `columns` characters (UTF-8 code points; a cut line ends with "…").
std::string fit_columns(std::string_view text, size_t columns);

}  // namespace sandrun::runner
