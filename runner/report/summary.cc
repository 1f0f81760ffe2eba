// The end-of-run summary table.
#include "runner/report/summary.h"

#include <fmt/ranges.h>

#include <algorithm>

#include "config/job_file.h"
#include "runner/net/address.h"
#include "sandbox/sys/text.h"
#include "sandbox/sandbox.h"

namespace sandrun::runner {

namespace {

// Where a fork failed at the pids limit, say so: it is often why a job failed or hung.
// The same for a full writable file system (the disk limit).
std::string pids_note(const JobResult& r) {
  if (!r.disk_full.empty()) return fmt::format(" ({}){}", r.disk_full, r.pids_limit_hit ? " (pids limit reached)" : "");
  if (!r.pids_limit_hit) return "";
  if (r.pids_limit) return fmt::format(" (pids limit {} reached)", *r.pids_limit);
  return " (pids limit reached)";
}

}  // namespace

std::string status_text(const JobResult& r) {
  using S = JobResult::Status;
  switch (r.status) {
    case S::passed: return "passed";
    case S::failed: return fmt::format("failed: exit {}", r.exit_code) + pids_note(r);
    case S::signaled: return "failed: signal " + sandbox::signal_name(r.signal) + pids_note(r);
    case S::timed_out: return "killed: timed out after " + config::format_duration(r.timeout) + pids_note(r);
    case S::oom_killed:
      return fmt::format("killed: out of memory (limit {})", config::format_size(r.memory_limit.value_or(0)));
    case S::setup_failed: return "setup failed";
    case S::exec_failed: return r.exit_code == 127 ? "failed: command not found" : "failed: cannot execute";
    case S::cancelled: return "cancelled";
    case S::not_started: return "not started";
    case S::skipped: return r.skipped_because.empty() ? "skipped" : fmt::format("skipped (needs {})", r.skipped_because);
  }
  return "?";
}

std::string format_memory(std::optional<uint64_t> bytes) {
  if (!bytes) return "-";
  return config::format_size(*bytes);
}

std::string format_cpu(std::optional<uint64_t> usec) {
  if (!usec) return "-";
  return format_elapsed(std::chrono::milliseconds(*usec / 1000));
}

std::string format_elapsed(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000) return fmt::format("{:.2f}s", static_cast<double>(ms) / 1000.0);
  return fmt::format("{}m{:02}s", ms / 60'000, (ms / 1000) % 60);
}

std::string summary_status(const JobResult& r) {
  std::vector<std::string> notes;
  if (!r.ok() && r.counts_as_passed()) notes.push_back("allowed");
  if (r.max_attempts > 1 && r.status != JobResult::Status::skipped && r.status != JobResult::Status::not_started)
    notes.push_back(fmt::format("attempt {}/{}", r.attempt, r.max_attempts));
  std::string st = status_text(r);
  if (!notes.empty()) st += fmt::format(" ({})", fmt::join(notes, ", "));
  return st;
}

namespace {

bool ran_and_failed(const JobResult& r) {
  using S = JobResult::Status;
  return !r.ok() && r.status != S::skipped && r.status != S::cancelled && r.status != S::not_started;
}

const char* status_color(const JobResult& r) {
  using S = JobResult::Status;
  if (r.ok()) return "\033[32m";
  if (r.status == S::not_started || r.status == S::skipped || r.status == S::cancelled) return "\033[2m";
  return r.counts_as_passed() ? "\033[33m" : "\033[31m";
}

// The last lines of each job that failed the run, where a reader of the summary looks first.
std::string failure_tails(const std::vector<JobResult>& results) {
  std::string out;
  for (const auto& r : results) {
    if (!ran_and_failed(r) || r.counts_as_passed() || r.output_tail.empty()) continue;
    const size_t n = std::min(r.output_tail.size(), kSummaryTailLines);
    out += fmt::format("\n{}: {}, its last {}:\n", r.name, summary_status(r), n == 1 ? "line" : fmt::format("{} lines", n));
    for (size_t i = r.output_tail.size() - n; i < r.output_tail.size(); ++i) out += "  " + r.output_tail[i] + "\n";
  }
  return out;
}

// Where each job's (and service's) published ports went on the host: "127.0.0.1:40123 ->
// integration/redis:6379". Ports picked by the kernel are known only here and in the events.
std::string published_ports(const std::vector<JobResult>& results) {
  std::string out;
  for (const auto& r : results) {
    for (const auto& p : r.ports) {
      out += fmt::format("  {} -> {}{}:{}\n", address_text(p.host_ip, p.host_port), r.name,
                         p.service.empty() ? "" : "/" + p.service, p.container_port);
    }
  }
  return out.empty() ? out : "\npublished ports:\n" + out;
}

}  // namespace

std::string summary_table(const std::vector<JobResult>& written, std::chrono::milliseconds wall, bool color) {
  using S = JobResult::Status;
  // For a terminal: what jobs printed or were named with never drives it (sandbox/sys/text.h).
  std::vector<JobResult> results = written;
  for (auto& r : results) {
    r.name = terminal_safe(r.name);
    r.skipped_because = terminal_safe(r.skipped_because);
    for (auto& line : r.output_tail) line = terminal_safe(line);
  }
  size_t wname = 3, wstatus = 6, wtime = 4, wmem = 8;
  bool usage = false;
  for (const auto& r : results) {
    wname = std::max(wname, r.name.size());
    wstatus = std::max(wstatus, summary_status(r).size());
    wtime = std::max(wtime, format_elapsed(r.duration).size());
    wmem = std::max(wmem, format_memory(r.memory_peak).size());
    usage = usage || r.memory_peak || r.cpu_usec;
  }
  std::string out = fmt::format("{:<{}}  {:<{}}  ", "JOB", wname, "STATUS", wstatus);
  out += usage ? fmt::format("{:<{}}  {:<{}}  CPU\n", "TIME", wtime, "PEAK MEM", wmem) : "TIME\n";
  size_t passed = 0, failed = 0, allowed = 0, skipped = 0, cancelled = 0;
  for (const auto& r : results) {
    std::string padded = fmt::format("{:<{}}", summary_status(r), wstatus);
    if (color) padded = status_color(r) + padded + "\033[0m";
    const bool ran = r.status != S::not_started && r.status != S::skipped;
    std::string time = ran ? format_elapsed(r.duration) : "-";
    out += fmt::format("{:<{}}  {}  ", r.name, wname, padded);
    if (usage) {
      out += fmt::format("{:<{}}  {:<{}}  {}\n", time, wtime, ran ? format_memory(r.memory_peak) : "-", wmem,
                         ran ? format_cpu(r.cpu_usec) : "-");
    } else {
      out += time + "\n";
    }
    if (r.ok()) {
      ++passed;
    } else if (r.status == S::skipped) {
      ++skipped;
    } else if (r.status == S::not_started || r.status == S::cancelled) {
      ++cancelled;
    } else {
      ++failed;
      if (r.counts_as_passed()) ++allowed;
    }
  }
  out += published_ports(results);
  for (const auto& r : results) {
    if (!r.artifacts_truncated.empty()) out += fmt::format("{}: artifacts truncated: {}\n", r.name, r.artifacts_truncated);
  }
  if (std::string tails = failure_tails(results); !tails.empty()) out += tails + "\n";
  out += fmt::format("{} job{}: {} passed, {} failed", results.size(), results.size() == 1 ? "" : "s", passed, failed);
  if (allowed) out += fmt::format(" ({} allowed)", allowed);
  if (skipped) out += fmt::format(", {} skipped", skipped);
  if (cancelled) out += fmt::format(", {} cancelled", cancelled);
  out += fmt::format(" in {}\n", format_elapsed(wall));
  return out;
}

}  // namespace sandrun::runner
