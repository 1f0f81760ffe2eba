// JobResult: how one job (one attempt of it) ended, for the scheduler and the reports.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runner/engine/plan.h"

namespace sandrun::runner {

struct JobResult {
  enum class Status { not_started, passed, failed, signaled, timed_out, oom_killed, setup_failed, exec_failed, cancelled, skipped };
  std::string name;
  size_t index = 0;     // in the run's plans (and events)
  Status status = Status::not_started;
  int exit_code = 0;
  int signal = 0;
  std::string message;  // sandrun's explanation for setup/exec failures
  std::chrono::milliseconds duration{0};
  std::chrono::milliseconds timeout{0};
  // From the container's cgroup (when it had one).
  std::optional<uint64_t> memory_peak;   // bytes
  std::optional<uint64_t> cpu_usec;
  std::optional<uint64_t> memory_limit;  // as set, for "out of memory (limit 64 MiB)"
  std::optional<uint64_t> pids_limit;
  bool oom_killed = false;               // the kernel's OOM killer ended a process in it
  bool pids_limit_hit = false;           // a fork failed at pids.max
  // "disk limit reached (64 MiB)": the container's writable file system was full at its end.
  std::string disk_full;
  unsigned attempt = 1;                  // which attempt this result is (1 + retries used)
  unsigned max_attempts = 1;             // 1 + the job's retries
  bool allow_failure = false;            // a failure of this job does not fail the run
  std::string skipped_because;           // skipped: the need that did not pass ("build")
  // Artifacts collected (paths relative to <out>/artifacts/<job>/, or the archive's name).
  std::vector<std::string> artifacts;
  uint64_t artifacts_bytes = 0;
  std::vector<std::string> artifact_warnings;  // skipped FIFOs, the size cap reached, ...
  // Why the collection stopped early ("artifacts_max_files (10000) reached"); empty: complete.
  std::string artifacts_truncated;
  std::vector<std::string> output_tail;        // the job's last lines (stdout and stderr), for reports
  std::vector<PublishedPort> ports;            // what the job and its services published
  bool ok() const { return status == Status::passed; }
  // Neither this job nor the run failed because of it: passed, or failed with allow_failure.
  bool counts_as_passed() const { return ok() || (allow_failure && status != Status::cancelled && status != Status::skipped && status != Status::not_started); }
};

}  // namespace sandrun::runner
