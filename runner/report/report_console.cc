// The console reporter: plain lines, the live status block, --quiet.
#include "runner/report/report_console.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include "runner/net/address.h"
#include "runner/report/summary.h"
#include "sandbox/sys/text.h"

namespace sandrun::runner {
namespace {

constexpr uint64_t kRefreshMs = 250;
constexpr size_t kFlushBytes = 64 * 1024;  // tty: pending log lines written before the next tick
constexpr const char* kGreen = "\033[32m";
constexpr const char* kRed = "\033[31m";
constexpr const char* kReset = "\033[0m";

// "3.2s" below a minute, "1m05s" above: the status block's elapsed times.
std::string coarse_elapsed(std::chrono::steady_clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms < 60'000) return fmt::format("{:.1f}s", static_cast<double>(std::max<int64_t>(ms, 0)) / 1000.0);
  return fmt::format("{}m{:02}s", ms / 60'000, (ms / 1000) % 60);
}

bool failed_run(const JobResult& r) {
  using S = JobResult::Status;
  return !r.counts_as_passed() && r.status != S::skipped && r.status != S::cancelled && r.status != S::not_started;
}

}  // namespace

std::string fit_columns(std::string_view text, size_t columns) {
  size_t count = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;  // a continuation byte
    if (count == columns) {
      if (columns == 0) return "";
      // Keep columns - 1 characters and the ellipsis.
      size_t keep = 0, seen = 0;
      for (; keep < text.size(); ++keep) {
        if ((static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) continue;
        if (seen == columns - 1) break;
        ++seen;
      }
      return std::string(text.substr(0, keep)) + "…";
    }
    ++count;
  }
  return std::string(text);
}

ConsoleReporter::ConsoleReporter(ConsoleOptions options)
    : o_(std::move(options)), out_(o_.write), gate_(o_.backlog) {}

// The loop's handles are closed inside the loop (job_finished, run_finished); by the time the
// reporter goes the loop may be gone, so the destructor leaves them alone.
ConsoleReporter::~ConsoleReporter() = default;

void ConsoleReporter::loop_started(Loop& loop) {
  loop_ = &loop;
  start_loop_handles();
}

void ConsoleReporter::start_loop_handles() {
  // Without jobs there is nothing to refresh, and no job_finished would close them.
  if (!loop_ || jobs_.empty()) return;
  if (!o_.tty) {
    out_.attach(*loop_);
    return;
  }
  if (timer_.live()) return;
  uv_timer_init(loop_->get(), timer_.get());
  timer_.mark_live();
  timer_.get()->data = this;
  // The block never keeps the loop alive: the run ends when its jobs do.
  uv_unref(timer_.handle());
  uv_timer_start(timer_.get(), [](uv_timer_t* t) { static_cast<ConsoleReporter*>(t->data)->redraw(); }, kRefreshMs,
                 kRefreshMs);
}

void ConsoleReporter::close_loop_handles() {
  out_.detach();
  timer_ = UvHandle<uv_timer_t>();
}

void ConsoleReporter::loop_ended() {
  // Only reached with the timer open if a job never reported its end inside the loop. The
  // loop outlives the reporter (its owner made it first), so the handles close as usual.
  close_loop_handles();
  loop_ = nullptr;
}

ConsoleReporter::JobState& ConsoleReporter::job(size_t index) {
  if (index >= jobs_.size()) {
    const size_t from = jobs_.size();
    jobs_.resize(index + 1);
    for (size_t i = from; i < jobs_.size(); ++i) jobs_[i].prefix = job_prefix(jobs_[i].name, i, o_.style);
  }
  return jobs_[index];
}

void ConsoleReporter::run_started(const std::vector<const JobPlan*>& plans) {
  jobs_.clear();
  jobs_.resize(plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    jobs_[i].name = plans[i]->name;
    jobs_[i].prefix = job_prefix(plans[i]->name, i, o_.style);
  }
  start_loop_handles();
  if (o_.tty) redraw();
}

void ConsoleReporter::line(int fd, std::string text) {
  if (o_.tty) {
    pending_ += text;
  } else {
    out_.write(fd, text);
  }
}

void ConsoleReporter::flush_lines() {
  // Lines wait for the timer's next tick (at most 250 ms), unless there are many or no timer.
  if (o_.tty && !pending_.empty() && (pending_.size() >= kFlushBytes || !timer_.live())) redraw();
}

void ConsoleReporter::keep(JobState& j, int fd, std::string text) {
  if (j.kept.size() == kQuietLines) {
    j.kept.pop_front();
    ++j.dropped;
  }
  j.kept.emplace_back(fd, std::move(text));
}

void ConsoleReporter::job_queued(size_t index) {
  JobState& j = job(index);
  j.phase = Phase::queued;
}

void ConsoleReporter::job_started(size_t index, unsigned attempt, unsigned max_attempts) {
  JobState& j = job(index);
  j.phase = Phase::running;
  j.since = o_.clock();
  j.attempt = attempt;
  j.max_attempts = max_attempts;
  if (o_.quiet) {
    j.kept.clear();
    j.dropped = 0;
  }
  if (o_.tty) {
    redraw();
  } else if (!o_.quiet) {
    line(2, attempt > 1 ? fmt::format("{}started (attempt {} of {})\n", j.prefix, attempt, max_attempts)
                        : j.prefix + "started\n");
  }
}

// A line of a job's output, escaped (a job must not drive the terminal); a part of a long line
// that goes on in the next part ends with "...".
void ConsoleReporter::job_output(size_t index, int stream, std::string_view text, LinePart part) {
  if (!o_.quiet && !gate_.admit()) return;  // the console fell behind: counted, said later
  say_hidden(/*at_end=*/false);
  JobState& j = job(index);
  std::string l = j.prefix;
  l += terminal_safe(text);
  if (part.partial) l += "...";
  l += '\n';
  const int fd = stream == 2 ? 2 : 1;
  if (o_.quiet) {
    keep(j, fd, std::move(l));
  } else {
    line(fd, std::move(l));
    flush_lines();
  }
}

void ConsoleReporter::say_hidden(bool at_end) {
  if (const uint64_t n = gate_.take_hidden(at_end)) {
    line(2, fmt::format("sandrun: {}\n", hidden_lines_text(n)));
    flush_lines();
  }
}

void ConsoleReporter::job_note(size_t index, std::string_view text) {
  JobState& j = job(index);
  // A note may hold a hint on a line of its own (sandrun's, not the job's).
  std::string l = fmt::format("{}sandrun: {}\n", j.prefix, terminal_safe(text, /*keep_newlines=*/true));
  if (o_.quiet) {
    keep(j, 2, std::move(l));
  } else {
    line(2, std::move(l));
    flush_lines();
  }
}

// Where a port went matters even when the run is quiet: a person may be waiting to connect.
void ConsoleReporter::port_published(size_t index, const PublishedPort& p) {
  JobState& j = job(index);
  line(2, fmt::format("{}published {} -> {}{}\n", j.prefix, address_text(p.host_ip, p.host_port),
                      p.service.empty() ? "" : p.service + ":", p.container_port));
  if (o_.tty) {
    redraw();
  } else {
    flush_lines();
  }
}

// Services starting, ready, exited: what the job waits for.
void ConsoleReporter::service_state(size_t index, std::string_view service, std::string_view state) {
  if (o_.quiet) return;
  JobState& j = job(index);
  line(2, fmt::format("{}service {}: {}\n", j.prefix, terminal_safe(service), terminal_safe(state)));
  if (o_.tty) {
    redraw();
  } else {
    flush_lines();
  }
}

void ConsoleReporter::job_retrying(size_t index, const JobResult& result) {
  JobState& j = job(index);
  j.phase = Phase::queued;
  if (o_.quiet) return;
  line(2, fmt::format("{}retrying (attempt {} of {}): {}\n", j.prefix, result.attempt + 1, result.max_attempts,
                      terminal_safe(status_text(result))));
  if (o_.tty) redraw();
}

void ConsoleReporter::job_finished(size_t index, const JobResult& r) {
  using S = JobResult::Status;
  JobState& j = job(index);
  if (j.phase == Phase::done) return;
  j.phase = Phase::done;
  ++finished_;
  if (r.ok()) {
    ++passed_;
  } else if (r.status == S::skipped) {
    ++skipped_;
  } else if (r.status == S::cancelled || r.status == S::not_started) {
    ++cancelled_;
  } else if (r.counts_as_passed()) {
    ++allowed_;
  } else {
    ++failed_;
  }
  say_hidden(/*at_end=*/false);
  const bool failed = failed_run(r);
  if (o_.quiet && failed) {
    if (j.dropped) line(2, fmt::format("{}sandrun: ({} earlier lines in the log file)\n", j.prefix, j.dropped));
    for (auto& [fd, text] : j.kept) line(fd, std::move(text));
  }
  j.kept.clear();
  if (!o_.quiet || failed) {
    std::string status = terminal_safe(summary_status(r));
    if (r.status != S::skipped && r.status != S::not_started) status += " in " + format_elapsed(r.duration);
    if (o_.style.color && (r.ok() || failed)) status = (r.ok() ? kGreen : kRed) + status + kReset;
    line(2, j.prefix + status + "\n");
  }
  if (o_.tty) redraw();
  if (finished_ >= jobs_.size()) close_loop_handles();
}

void ConsoleReporter::run_finished(const std::vector<JobResult>&, int) {
  say_hidden(/*at_end=*/true);
  close_loop_handles();
  if (!o_.tty) return;
  jobs_.clear();  // an empty block: redraw() erases it
  passed_ = failed_ = allowed_ = skipped_ = cancelled_ = finished_ = 0;
  redraw();
}

std::pair<size_t, size_t> ConsoleReporter::terminal_size() const {
  size_t w = o_.width, h = o_.height;
  if (!w || !h) {
    struct winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
      if (!w) w = ws.ws_col;
      if (!h) h = ws.ws_row;
    }
  }
  return {w ? w : 80, h ? h : 24};
}

std::vector<std::string> ConsoleReporter::status_block() const {
  std::vector<std::string> out;
  if (jobs_.empty()) return out;
  const auto [width, height] = terminal_size();
  // The block stays within the screen (a cursor cannot go up beyond its top), and each line
  // within a column less than the width, so that no line wraps and the cursor arithmetic holds.
  const size_t columns = width > 1 ? width - 1 : 1;
  const size_t max_rows = height > 3 ? height - 2 : 1;
  size_t running = 0, waiting = 0, name_width = 0;
  for (const auto& j : jobs_) {
    if (j.phase == Phase::running) {
      ++running;
      name_width = std::max(name_width, std::min<size_t>(j.name.size(), 24));
    }
    if (j.phase == Phase::waiting || j.phase == Phase::queued) ++waiting;
  }
  const auto now = o_.clock();
  size_t shown = 0;
  for (const auto& j : jobs_) {
    if (j.phase != Phase::running) continue;
    if (shown + 1 == max_rows && running > max_rows) {
      out.push_back(fit_columns(fmt::format("  ... and {} more running", running - shown), columns));
      break;
    }
    std::string text = fmt::format("  {:<{}}  {}", terminal_safe(j.name), name_width, coarse_elapsed(now - j.since));
    if (j.max_attempts > 1) text += fmt::format(" (attempt {}/{})", j.attempt, j.max_attempts);
    out.push_back(fit_columns(text, columns));
    ++shown;
  }
  std::string counts = fmt::format("{} passed, {} failed", passed_, failed_);
  if (allowed_) counts += fmt::format(" ({} allowed)", allowed_);
  counts += fmt::format(", {} running, {} queued, {} skipped", running, waiting, skipped_);
  if (cancelled_) counts += fmt::format(", {} cancelled", cancelled_);
  out.push_back(fit_columns(counts, columns));
  return out;
}

void ConsoleReporter::redraw() {
  if (!o_.tty) return;
  std::string out;
  // Up to the block's first line, and clear from there to the end of the screen.
  if (drawn_lines_) out += fmt::format("\r\033[{}A\033[J", drawn_lines_);
  out += pending_;
  pending_.clear();
  auto block = status_block();
  for (const auto& l : block) out += l + "\n";
  drawn_lines_ = block.size();
  if (!out.empty()) o_.write(1, out);
}

}  // namespace sandrun::runner
