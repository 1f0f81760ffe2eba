// The end-of-run summary table.
#include "runner/summary.h"

#include <algorithm>

#include "config/job_file.h"
#include "sandbox/sandbox.h"

namespace sandrun::runner {

std::string status_text(const JobResult& r) {
  using S = JobResult::Status;
  switch (r.status) {
    case S::passed: return "passed";
    case S::failed: return fmt::format("failed: exit {}", r.exit_code);
    case S::signaled: return "killed by " + sandbox::signal_name(r.signal);
    case S::timed_out: return "timed out after " + config::format_duration(r.timeout);
    case S::setup_failed: return "setup failed";
    case S::exec_failed: return r.exit_code == 127 ? "failed: command not found" : "failed: cannot execute";
    case S::cancelled: return "cancelled";
    case S::not_started: return "not started";
  }
  return "?";
}

std::string format_elapsed(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000) return fmt::format("{:.2f}s", static_cast<double>(ms) / 1000.0);
  return fmt::format("{}m{:02}s", ms / 60'000, (ms / 1000) % 60);
}

std::string summary_table(const std::vector<JobResult>& results, std::chrono::milliseconds wall, bool color) {
  size_t wname = 3, wstatus = 6;
  for (const auto& r : results) {
    wname = std::max(wname, r.name.size());
    wstatus = std::max(wstatus, status_text(r).size());
  }
  std::string out = fmt::format("{:<{}}  {:<{}}  {}\n", "JOB", wname, "STATUS", wstatus, "TIME");
  size_t passed = 0, failed = 0, other = 0;
  for (const auto& r : results) {
    std::string st = status_text(r);
    std::string padded = fmt::format("{:<{}}", st, wstatus);
    if (color) {
      const char* c = r.ok() ? "\033[32m" : (r.status == JobResult::Status::not_started ? "\033[2m" : "\033[31m");
      padded = c + padded + "\033[0m";
    }
    std::string time = r.status == JobResult::Status::not_started ? "-" : format_elapsed(r.duration);
    out += fmt::format("{:<{}}  {}  {}\n", r.name, wname, padded, time);
    if (r.ok()) {
      ++passed;
    } else if (r.status == JobResult::Status::not_started || r.status == JobResult::Status::cancelled) {
      ++other;
    } else {
      ++failed;
    }
  }
  out += fmt::format("{} job{}: {} passed, {} failed", results.size(), results.size() == 1 ? "" : "s", passed, failed);
  if (other) out += fmt::format(", {} cancelled", other);
  out += fmt::format(" in {}\n", format_elapsed(wall));
  return out;
}

}  // namespace sandrun::runner
