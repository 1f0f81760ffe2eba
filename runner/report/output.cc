// Streaming a job's output to its log file and the run's events.
#include "runner/report/output.h"

#include "runner/report/events.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

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
  std::string text = "sandrun: " + e.render() + "\n";
  console_write(STDERR_FILENO, text);
}

void console_write_async(int fd, std::string_view data) { ConsoleThread::get().push(fd, data); }

size_t console_backlog() { return ConsoleThread::get().backlog(); }

void console_write(int fd, std::string_view data) {
  ConsoleThread::get().drain();  // what the loop handed over comes first
  write_all_to(fd, data);
}

std::string job_prefix(std::string_view name, size_t index, const ConsoleStyle& style) {
  std::string label = "[" + std::string(name) + "]";
  if (label.size() < style.name_width + 2) label.append(style.name_width + 2 - label.size(), ' ');
  if (!style.color) return label + " ";
  return std::string(kColors[index % (sizeof kColors / sizeof kColors[0])]) + label + kReset + " ";
}

JobOutput::JobOutput(std::string name, size_t index, ConsoleMode mode, RunEvents* events)
    : name_(std::move(name)), index_(index), mode_(mode), events_(events) {}

void JobOutput::set_log(const std::string& path, bool append) {
  log_path_ = path;
  append_ = append;
}

void JobOutput::drop_stale_log() {
  if (!log_path_.empty()) ::unlink(log_path_.c_str());
}

Result<void> JobOutput::open_log() {
  if (log_path_.empty()) return {};
  auto fd = fs::open_path(log_path_, O_WRONLY | O_CREAT | O_NOFOLLOW | (append_ ? O_APPEND : O_TRUNC), 0644);
  if (!fd) return std::move(fd.error().wrap(fmt::format("job {:?}: open log file", name_)));
  log_ = std::move(*fd);
  return {};
}

void JobOutput::write(int stream, std::string_view data) {
  // The log gets the raw bytes: page-cache writes, bounded by one pipe read per call.
  if (log_ && !log_failed_) {
    if (auto r = fs::write_all(log_.get(), data); !r) {
      log_failed_ = true;
      log::warn("job {:?}: writing {} failed, the log is incomplete: {}", name_, log_path_, r.error().message());
    }
  }
  const int idx = stream == 2 ? 1 : 0;
  switch (mode_) {
    case ConsoleMode::passthrough:
      console_write_async(stream == 2 ? STDERR_FILENO : STDOUT_FILENO, data);
      return;
    case ConsoleMode::none:
    case ConsoleMode::prefixed:
      lines_[idx].feed(data, [&](std::string_view line) { emit_line(idx, line); });
      return;
  }
}

void JobOutput::keep(std::string_view line) {
  if (tail_.size() == kTailLines) tail_.pop_front();
  tail_.emplace_back(line.substr(0, kTailLineBytes));
}

void JobOutput::emit_line(int idx, std::string_view line) {
  keep(line);
  if (mode_ == ConsoleMode::prefixed && events_) events_->job_output(index_, idx == 1 ? 2 : 1, line);
}

void JobOutput::finish() {
  if (mode_ == ConsoleMode::passthrough) return;
  for (int idx = 0; idx < 2; ++idx) {
    if (lines_[idx].has_partial()) emit_line(idx, lines_[idx].flush());
  }
}

void JobOutput::note(std::string_view text) {
  std::string line = "sandrun: ";
  line.append(text);
  if (mode_ != ConsoleMode::passthrough) keep(line);
  line += '\n';
  if (log_ && !log_failed_) (void)fs::write_all(log_.get(), line);
  if (mode_ == ConsoleMode::prefixed) {
    if (events_) events_->job_note(index_, text);
  } else if (mode_ == ConsoleMode::passthrough) {
    console_write_async(STDERR_FILENO, line);
  }
}

}  // namespace sandrun::runner
