// Where a job's output goes: its log file (raw bytes, in arrival order) and the run's events
// (one per line, for the console, JSON and reports), or straight through (exec).
#pragma once

#include <deque>
#include <string>
#include <string_view>
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

// Splits a byte stream into lines; a line longer than `max` is cut (the rest follows as
// another line), and what is left at the end is returned by flush().
class LineSplitter {
 public:
  explicit LineSplitter(size_t max = 64 * 1024) : max_(max) {}
  // Calls emit(line) (without its newline) for every complete line in `data`.
  template <typename F>
  void feed(std::string_view data, F&& emit) {
    while (!data.empty()) {
      const size_t nl = data.find('\n');
      const size_t len = nl == std::string_view::npos ? data.size() : nl;
      const size_t room = max_ - partial_.size();
      if (len > room) {  // the line outgrows the bound: emit what fits, go on with the rest
        partial_.append(data.substr(0, room));
        emit(std::string_view(partial_));
        partial_.clear();
        data.remove_prefix(room);
        continue;
      }
      if (nl == std::string_view::npos) {
        partial_.append(data);
        return;
      }
      if (partial_.empty()) {
        emit(data.substr(0, len));
      } else {
        partial_.append(data.substr(0, len));
        emit(std::string_view(partial_));
        partial_.clear();
      }
      data.remove_prefix(len + 1);
    }
  }
  bool has_partial() const { return !partial_.empty(); }
  std::string flush() { return std::exchange(partial_, std::string()); }

 private:
  size_t max_;
  std::string partial_;
};

class JobOutput {
 public:
  // Number of lines tail() keeps, and the bytes kept of each.
  static constexpr size_t kTailLines = 20;
  static constexpr size_t kTailLineBytes = 4096;

  // In prefixed mode every complete line goes to events->job_output(index, ...) and every
  // note to events->job_note (`events` may be null: log file and tail only).
  JobOutput(std::string name, size_t index, ConsoleMode mode, RunEvents* events);
  // Names the job's log file; nothing is opened yet, so a run of thousands of jobs holds log
  // descriptors only for the running ones.
  // With `append`, an earlier attempt's log is continued instead of truncated.
  void set_log(const std::string& path, bool append = false);
  // Removes the log an earlier run left for a job that does not run this time.
  void drop_stale_log();
  // Opens the log file when the job starts, truncating (not replacing) an earlier one: reusing
  // its inode is measurably cheaper than a new one on a busy ext4. Closes it when it ends.
  Result<void> open_log();
  void close_log() { log_.reset(); }
  // A chunk of the job's stdout (stream 1) or stderr (stream 2).
  void write(int stream, std::string_view data);
  // End of both streams: flushes partial lines.
  void finish();
  // A line from sandrun itself about this job (on the console's stderr and in the log).
  void note(std::string_view text);
  const std::string& log_path() const { return log_path_; }
  size_t index() const { return index_; }
  // The job's last lines (stdout, stderr and sandrun's notes as "sandrun: ..."), oldest first,
  // at most kTailLines of at most kTailLineBytes each (for JobResult::output_tail).
  std::vector<std::string> tail() const { return {tail_.begin(), tail_.end()}; }

 private:
  void emit_line(int stream, std::string_view line);
  void keep(std::string_view line);

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
};

// Writes all of `data` to a console fd; errors (a closed pipe) are ignored.
// Prints "sandrun: <message>" (and the hint) to stderr.
void print_error(const Error& e);

// After everything console_write_async handed over has been written. Blocking: not for the loop.
void console_write(int fd, std::string_view data);
// From the loop: the console's own thread writes it, in order, so a slow terminal or a full
// pipe never blocks the loop (containers are paused while console_backlog() is high).
void console_write_async(int fd, std::string_view data);
// Bytes handed to console_write_async and not written yet.
size_t console_backlog();

}  // namespace sandrun::runner
