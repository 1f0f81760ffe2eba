// Where a job's output goes: its log file (raw bytes, in arrival order) and the run's events
// (one per line, for the console, JSON and reports), or straight through (exec).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

class RunEvents;

enum class ConsoleMode {
  prefixed,     // lines as RunEvents::job_output (the console reporter prints "[job] line"), for `run`
  passthrough,  // the bytes as they come, for `exec`
  none,         // log files only
};

struct ConsoleStyle {
  bool color = false;     // ANSI colors (a terminal, NO_COLOR unset)
  size_t name_width = 0;  // pad prefixes to align
};

// "[job] " padded to `name_width`, colored by job index when `color`.
std::string job_prefix(std::string_view name, size_t index, const ConsoleStyle& style);

// A line longer than this comes in parts of at most this many bytes, in memory, on the console
// and in the JSON events (the log file has the line as written).
inline constexpr size_t kMaxLinePart = 16 * 1024;

// Where a part sits in its line: `continued` when it is not the line's first part, `partial`
// when the line goes on in the next part (Docker's "partial" flag). Both false: a whole line.
struct LinePart {
  bool continued = false;
  bool partial = false;
};

// Splits a byte stream into lines; a line longer than `max` is cut (the rest follows as
// another part), and what is left at the end is returned by flush().
class LineSplitter {
 public:
  explicit LineSplitter(size_t max = kMaxLinePart) : max_(max) {}
  // Calls emit(line, part) (the line without its newline) for every complete line or part.
  template <typename F>
  void feed(std::string_view data, F&& emit) {
    while (!data.empty()) {
      const size_t nl = data.find('\n');
      const size_t len = nl == std::string_view::npos ? data.size() : nl;
      const size_t room = max_ - partial_.size();
      if (len > room) {  // the line outgrows the bound: emit what fits, go on with the rest
        partial_.append(data.substr(0, room));
        emit(std::string_view(partial_), LinePart{continued_, true});
        continued_ = true;
        partial_.clear();
        data.remove_prefix(room);
        continue;
      }
      if (nl == std::string_view::npos) {
        partial_.append(data);
        return;
      }
      const LinePart part{std::exchange(continued_, false), false};
      if (partial_.empty()) {
        emit(data.substr(0, len), part);
      } else {
        partial_.append(data.substr(0, len));
        emit(std::string_view(partial_), part);
        partial_.clear();
      }
      data.remove_prefix(len + 1);
    }
  }
  bool has_partial() const { return !partial_.empty(); }
  // The unfinished rest, and how it sits in its line.
  std::string flush(LinePart* part = nullptr) {
    if (part) *part = LinePart{std::exchange(continued_, false), false};
    continued_ = false;
    return std::exchange(partial_, std::string());
  }

 private:
  size_t max_;
  std::string partial_;
  bool continued_ = false;  // parts of the current line were emitted already
};

class JobOutput {
 public:
  // Number of lines tail() keeps, and the bytes kept of each.
  static constexpr size_t kTailLines = 20;
  static constexpr size_t kTailLineBytes = 4096;

  // The default log_max, and the most of a log's end kept past it.
  static constexpr uint64_t kDefaultLogMax = uint64_t{1} << 30;  // config::kDefaultLogMax
  static constexpr uint64_t kLogTailMax = 2 << 20;

  // In prefixed mode every complete line goes to events->job_output(index, ...) and every
  // note to events->job_note (`events` may be null: log file and tail only).
  JobOutput(std::string name, size_t index, ConsoleMode mode, RunEvents* events);
  ~JobOutput();
  JobOutput(JobOutput&&) = default;
  JobOutput& operator=(JobOutput&&) = default;
  // Names the job's log file; nothing is opened yet, so a run of thousands of jobs holds log
  // descriptors only for the running ones.
  // With `append`, an earlier attempt's log is continued instead of truncated.
  void set_log(const std::string& path, bool append = false);
  // The log file's bound (bytes; 0 is taken as the default). Past it the file keeps its first
  // log_max - T bytes, then a marker line naming the bytes dropped, then the last T bytes
  // (T = min(kLogTailMax, log_max / 2)), which wait in memory until the log closes; the console
  // is told once.
  void set_log_max(uint64_t bytes);
  // Removes the log an earlier run left for a job that does not run this time.
  void drop_stale_log();
  // Opens the log file when the job starts, truncating (not replacing) an earlier one: reusing
  // its inode is measurably cheaper than a new one on a busy ext4. Closes it when it ends.
  Result<void> open_log();
  // Writes the kept end of a log past log_max (after its marker line) and closes it.
  void close_log();
  // A chunk of the job's stdout (stream 1) or stderr (stream 2).
  void write(int stream, std::string_view data);
  // End of both streams: flushes partial lines.
  void finish();
  // A line from sandrun itself about this job (on the console's stderr and in the log).
  void note(std::string_view text);
  const std::string& log_path() const { return log_path_; }
  ConsoleMode mode() const { return mode_; }
  // Bytes of output that did not reach the log file (past log_max).
  uint64_t log_dropped() const { return dropped_; }
  size_t index() const { return index_; }
  // The job's last lines (stdout, stderr and sandrun's notes as "sandrun: ..."), oldest first,
  // at most kTailLines of at most kTailLineBytes each (for JobResult::output_tail).
  std::vector<std::string> tail() const { return {tail_.begin(), tail_.end()}; }

 private:
  void emit_line(int stream, std::string_view line, LinePart part);
  void keep(std::string_view line);
  void write_log(std::string_view data);
  void keep_log_tail(std::string_view data);
  void log_past_max();

  std::string name_;
  size_t index_ = 0;
  bool append_ = false;
  ConsoleMode mode_;
  RunEvents* events_;
  std::deque<std::string> tail_;
  UniqueFd log_;
  std::string log_path_;
  LineSplitter lines_[2];
  bool log_failed_ = false;
  // The log's bound: bytes in the file, and past the head the end kept in a ring.
  uint64_t log_max_ = kDefaultLogMax;
  uint64_t log_bytes_ = 0;
  bool log_ends_line_ = true;  // the last byte written was a newline (or none was)
  bool past_max_ = false;
  uint64_t dropped_ = 0;
  std::string ring_;       // sized to the tail kept once the head is full
  size_t ring_next_ = 0;   // where the next byte goes
  size_t ring_used_ = 0;
};

// Writes all of `data` to a console fd; errors (a closed pipe) are ignored.
// Prints "sandrun: <message>" (and the hint) to stderr.
void print_error(const Error& e);

// After everything console_write_async handed over has been written. Blocking: not for the loop.
void console_write(int fd, std::string_view data);
// From the loop: the console's own thread writes it, in order, so a slow terminal or a full
// pipe never blocks the loop. The queue is not bounded here: the reporters stop handing job
// output over while the backlog is above kConsoleBacklogHigh (and count the lines not shown);
// `exec`'s passthrough pauses its container instead.
void console_write_async(int fd, std::string_view data);
// Bytes handed to console_write_async and not written yet.
size_t console_backlog();
// The backlog above which job output is not shown (or `exec`'s container is paused), and
// below which it is again.
inline constexpr size_t kConsoleBacklogHigh = 8 << 20;
inline constexpr size_t kConsoleBacklogLow = 2 << 20;

}  // namespace sandrun::runner
