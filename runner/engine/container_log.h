// The log of a long-lived container, written by the daemon: one record per line of its stdout
// or stderr (a line longer than kMaxLinePart comes in parts, flagged partial), each with its
// stream and the time it was read (ns), in ROOT/containers/<id>/log and log.1. Bounded: when
// `log` reaches half of log_max it becomes log.1 (the older log.1 goes), so both stay within
// log_max. Read back with tail, since and until (read_log), and followed by the registry.
//
// A record on disk: u8 stream (1 stdout, 2 stderr), u8 flags (1: partial), u16 0, u32 size,
// i64 time (ns since the epoch, little-endian as the host), then `size` bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/report/output.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

struct LogRecord {
  int stream = 1;  // 1 stdout, 2 stderr
  bool partial = false;  // the line goes on in the next record
  int64_t time_ns = 0;
  std::string data;  // the line with its '\n' (none when partial, or at the end of output)
};

class ContainerLog {
 public:
  // Writes ROOT/containers/<id>/log (dir) within `max` bytes (both files together).
  ContainerLog(std::string dir, uint64_t max);
  // Opens the log for appending (blocking: on the threadpool).
  Result<void> open();
  // Bytes of `stream` read at `time_ns`: complete lines become records (`emit` gets each too,
  // for followers), the rest waits for its line's end. On the loop: the page cache takes it.
  template <typename F>
  void write(int stream, std::string_view data, int64_t time_ns, F&& emit) {
    lines_[stream == 2 ? 1 : 0].feed(data, [&](std::string_view line, LinePart part) {
      LogRecord r{stream, part.partial, time_ns, std::string(line)};
      if (!part.partial) r.data += '\n';
      append(r);
      emit(r);
    });
  }
  // End of output: the unfinished lines as records of their own.
  template <typename F>
  void finish(int64_t time_ns, F&& emit) {
    for (int i = 0; i < 2; ++i) {
      if (!lines_[i].has_partial()) continue;
      LogRecord r{i + 1, false, time_ns, lines_[i].flush()};
      append(r);
      emit(r);
    }
  }
  void close();
  bool is_open() const { return static_cast<bool>(fd_); }
  // Bytes in `log` now: where a reader stops so that a follower's records come once.
  uint64_t size() const { return bytes_; }

 private:
  void append(const LogRecord& r);
  void rotate();

  std::string dir_;
  uint64_t max_;
  UniqueFd fd_;
  uint64_t bytes_ = 0;
  LineSplitter lines_[2];
  bool failed_ = false;
};

struct LogQuery {
  bool stdout_ = true;
  bool stderr_ = true;
  std::optional<size_t> tail;  // the last N records (of the streams asked for)
  int64_t since_ns = 0;        // records at or after (0: all)
  int64_t until_ns = 0;        // records before (0: no end)
  std::optional<uint64_t> end;  // read `log` up to this offset only (a follower's start)
  bool matches(const LogRecord& r) const {
    return (r.stream == 2 ? stderr_ : stdout_) && r.time_ns >= since_ns && (until_ns == 0 || r.time_ns < until_ns);
  }
};

// The records of the log in `dir` that `q` asks for, oldest first. Blocking.
Result<std::vector<LogRecord>> read_log(const std::string& dir, const LogQuery& q);

// Encodes one record as on disk (tests, and the writer).
std::string encode_log_record(const LogRecord& r);

}  // namespace sandrun::runner
