// Streaming a job's output to its log file and the run's events.
#include "runner/report/output.h"

#include "runner/report/events.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "config/job_file.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"
#include "sandbox/sys/text.h"

namespace sandrun::runner {
namespace {

// Bright, distinguishable colors for job prefixes, cycled by job index.
const char* const kColors[] = {"\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m",
                               "\033[96m", "\033[93m", "\033[95m", "\033[92m", "\033[94m"};
constexpr const char* kReset = "\033[0m";

}  // namespace

namespace {

void write_all_to(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// The console's own thread: writes what the loop hands it, in order, so that a slow terminal
// or a full pipe (or ^S) never blocks the loop. Made on first use; at exit it writes what is
// left and ends.
class ConsoleThread {
 public:
  static ConsoleThread& get() {
    static ConsoleThread t;
    return t;
  }
  void push(int fd, std::string_view data) {
    if (data.empty()) return;
    std::lock_guard l(m_);
    if (!q_.empty() && q_.back().first == fd) {
      q_.back().second.append(data);
    } else {
      q_.emplace_back(fd, std::string(data));
    }
    backlog_ += data.size();
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    cv_.notify_one();
  }
  void drain() {
    std::unique_lock l(m_);
    idle_.wait(l, [this] { return q_.empty() && !writing_; });
  }
  size_t backlog() const { return backlog_.load(); }
  ~ConsoleThread() {
    {
      std::lock_guard l(m_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    std::unique_lock l(m_);
    for (;;) {
      cv_.wait(l, [this] { return stop_ || !q_.empty(); });
      if (q_.empty()) return;  // stopping, and everything is written
      auto [fd, data] = std::move(q_.front());
      q_.pop_front();
      writing_ = true;
      l.unlock();
      write_all_to(fd, data);
      l.lock();
      backlog_ -= data.size();
      writing_ = false;
      if (q_.empty()) idle_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::condition_variable idle_;
  std::deque<std::pair<int, std::string>> q_;
  std::atomic<size_t> backlog_{0};
  bool writing_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

void print_error(const Error& e) {
  // A message may echo what a user wrote (a name, a path, a value): never raw to a terminal.
  std::string text = "sandrun: " + terminal_safe(e.render(), /*keep_newlines=*/true) + "\n";
  console_write(STDERR_FILENO, text);
}

void console_write_async(int fd, std::string_view data) { ConsoleThread::get().push(fd, data); }

size_t console_backlog() { return ConsoleThread::get().backlog(); }

void console_write(int fd, std::string_view data) {
  ConsoleThread::get().drain();  // what the loop handed over comes first
  write_all_to(fd, data);
}

std::string job_prefix(std::string_view name, size_t index, const ConsoleStyle& style) {
  std::string label = "[" + terminal_safe(name) + "]";
  if (label.size() < style.name_width + 2) label.append(style.name_width + 2 - label.size(), ' ');
  if (!style.color) return label + " ";
  return std::string(kColors[index % (sizeof kColors / sizeof kColors[0])]) + label + kReset + " ";
}

JobOutput::JobOutput(std::string name, size_t index, ConsoleMode mode, RunEvents* events)
    : name_(std::move(name)), index_(index), mode_(mode), events_(events) {}

JobOutput::~JobOutput() { close_log(); }

void JobOutput::set_log(const std::string& path, bool append) {
  log_path_ = path;
  append_ = append;
}

void JobOutput::set_log_max(uint64_t bytes) { log_max_ = bytes ? bytes : kDefaultLogMax; }

void JobOutput::drop_stale_log() {
  if (!log_path_.empty()) ::unlink(log_path_.c_str());
}

Result<void> JobOutput::open_log() {
  if (log_path_.empty()) return {};
  // Appending, it is also read: whether the earlier attempt's last line ended.
  auto fd = fs::open_path(log_path_, O_CREAT | O_NOFOLLOW | (append_ ? O_RDWR | O_APPEND : O_WRONLY | O_TRUNC), 0644);
  if (!fd) return std::move(fd.error().wrap(fmt::format("job {:?}: open log file", name_)));
  log_ = std::move(*fd);
  // An earlier attempt's log counts: the bound is the job's, whatever its attempts.
  struct stat st{};
  log_bytes_ = append_ && ::fstat(log_.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  char last = '\n';
  if (log_bytes_ && ::pread(log_.get(), &last, 1, static_cast<off_t>(log_bytes_ - 1)) != 1) last = '\n';
  log_ends_line_ = last == '\n';
  return {};
}

void JobOutput::close_log() {
  if (log_ && !log_failed_ && ring_used_) {
    // The marker line (unless nothing was dropped after all), then the kept end in order (the
    // ring's older part first).
    std::string marker = !dropped_ || log_ends_line_ ? "" : "\n";
    if (dropped_)
      marker += fmt::format("sandrun: log truncated at log_max ({}): {} bytes dropped here; its last {} bytes follow\n",
                          config::format_size(log_max_), dropped_, ring_used_);
    const size_t start = (ring_next_ + ring_.size() - ring_used_) % ring_.size();
    const size_t first = std::min(ring_used_, ring_.size() - start);
    for (std::string_view part : {std::string_view(marker), std::string_view(ring_).substr(start, first),
                                  std::string_view(ring_).substr(0, ring_used_ - first)}) {
      if (auto r = fs::write_all(log_.get(), part); !r) break;
    }
  }
  ring_ = std::string();
  ring_next_ = ring_used_ = 0;
  log_.reset();
}

// The raw bytes, up to the head of log_max; past it they go to the ring of the kept end.
void JobOutput::write_log(std::string_view data) {
  if (!log_ || log_failed_ || data.empty()) return;
  const uint64_t tail = std::min<uint64_t>(kLogTailMax, log_max_ / 2);
  const uint64_t head = log_max_ - tail;
  if (!past_max_) {
    const size_t n = log_bytes_ >= head ? 0 : static_cast<size_t>(std::min<uint64_t>(head - log_bytes_, data.size()));
    if (n) {
      if (auto r = fs::write_all(log_.get(), data.substr(0, n)); !r) {
        log_failed_ = true;
        log::warn("job {:?}: writing {} failed, the log is incomplete: {}", name_, log_path_, r.error().message());
        return;
      }
      log_bytes_ += n;
      log_ends_line_ = data[n - 1] == '\n';
      data.remove_prefix(n);
    }
    if (data.empty()) return;
    past_max_ = true;
    ring_.resize(static_cast<size_t>(tail));
  }
  const bool dropping = dropped_ > 0;
  keep_log_tail(data);
  if (!dropping && dropped_ > 0) log_past_max();
}

void JobOutput::keep_log_tail(std::string_view data) {
  const size_t cap = ring_.size();
  if (cap == 0) {
    dropped_ += data.size();
    return;
  }
  if (data.size() > cap) {
    dropped_ += data.size() - cap;
    data.remove_prefix(data.size() - cap);
  }
  const size_t evicted = ring_used_ + data.size() > cap ? ring_used_ + data.size() - cap : 0;
  dropped_ += evicted;
  ring_used_ = std::min(cap, ring_used_ + data.size());
  const size_t first = std::min(data.size(), cap - ring_next_);
  ring_.replace(ring_next_, first, data.substr(0, first));
  ring_.replace(0, data.size() - first, data.substr(first));
  ring_next_ = (ring_next_ + data.size()) % cap;
}

// Said once, on the console only: the log file's own marker goes in when it closes.
void JobOutput::log_past_max() {
  const std::string text =
      fmt::format("the log {} reached log_max ({}): its first {} are kept, then only its last {}", log_path_,
                  config::format_size(log_max_), config::format_size(log_bytes_), config::format_size(ring_.size()));
  if (mode_ == ConsoleMode::prefixed) {
    if (events_) events_->job_note(index_, text);
  } else if (mode_ == ConsoleMode::passthrough) {
    console_write_async(STDERR_FILENO, "sandrun: " + terminal_safe(text) + "\n");
  }
}

void JobOutput::write(int stream, std::string_view data) {
  // The log gets the raw bytes (page-cache writes, bounded by one pipe read per call), up to
  // log_max.
  write_log(data);
  const int idx = stream == 2 ? 1 : 0;
  switch (mode_) {
    case ConsoleMode::passthrough:
      console_write_async(stream == 2 ? STDERR_FILENO : STDOUT_FILENO, data);
      return;
    case ConsoleMode::none:
    case ConsoleMode::prefixed:
      lines_[idx].feed(data, [&](std::string_view line, LinePart part) { emit_line(idx, line, part); });
      return;
  }
}

void JobOutput::keep(std::string_view line) {
  if (tail_.size() == kTailLines) tail_.pop_front();
  tail_.emplace_back(line.substr(0, kTailLineBytes));
}

void JobOutput::emit_line(int idx, std::string_view line, LinePart part) {
  keep(line);
  if (mode_ == ConsoleMode::prefixed && events_) events_->job_output(index_, idx == 1 ? 2 : 1, line, part);
}

void JobOutput::finish() {
  if (mode_ == ConsoleMode::passthrough) return;
  for (int idx = 0; idx < 2; ++idx) {
    if (!lines_[idx].has_partial()) continue;
    LinePart part;
    std::string rest = lines_[idx].flush(&part);
    emit_line(idx, rest, part);
  }
}

void JobOutput::note(std::string_view text) {
  std::string line = "sandrun: ";
  line.append(text);
  if (mode_ != ConsoleMode::passthrough) keep(line);
  line += '\n';
  write_log(line);
  if (mode_ == ConsoleMode::prefixed) {
    if (events_) events_->job_note(index_, text);
  } else if (mode_ == ConsoleMode::passthrough) {
    console_write_async(STDERR_FILENO, terminal_safe(line, /*keep_newlines=*/true));
  }
}

}  // namespace sandrun::runner
static_assert(sandrun::runner::JobOutput::kDefaultLogMax == sandrun::config::kDefaultLogMax);
