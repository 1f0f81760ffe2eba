// Where a job's output goes: its log file (raw bytes, in arrival order) and the console
// (live lines with a "[job] " prefix, colored on a terminal), or straight through (exec).
#pragma once

#include <string>
#include <string_view>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

enum class ConsoleMode {
  prefixed,     // "[job] line" on stdout/stderr, for `run`
  passthrough,  // the bytes as they come, for `exec`
  none,         // log files only
};

struct ConsoleStyle {
  bool color = false;     // ANSI colors (a terminal, NO_COLOR unset)
  size_t name_width = 0;  // pad prefixes to align
};

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
  JobOutput(std::string name, size_t index, ConsoleMode mode, ConsoleStyle style);
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

 private:
  void emit_line(int stream, std::string_view line);
  void flush_console(int stream);

  std::string name_;
  size_t index_ = 0;
  bool append_ = false;
  std::string prefix_;
  ConsoleMode mode_;
  UniqueFd log_;
  std::string log_path_;
  LineSplitter lines_[2];
  std::string pending_[2];  // console bytes of one chunk, written at once
  bool log_failed_ = false;
};

// Writes all of `data` to a console fd; errors (a closed pipe) are ignored.
void console_write(int fd, std::string_view data);

}  // namespace sandrun::runner
