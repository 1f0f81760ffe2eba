// The end-of-run summary: one row per job (status, time, peak memory, CPU) and the totals.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runner/engine/job.h"

namespace sandrun::runner {

// "passed", "failed: exit 3", "failed: signal SIGSEGV", "killed: timed out after 10s",
// "killed: out of memory (limit 64 MiB)", "... (pids limit 64 reached)" where a fork failed
// at the limit, "setup failed", "failed: command not found", "cancelled", "not started".
std::string status_text(const JobResult& r);

// status_text plus "allowed" for a failure with allow_failure and the attempt for a job with
// retries: "passed (attempt 2/3)", "failed: exit 1 (allowed)", "failed: exit 1 (allowed,
// attempt 2/2)".
std::string summary_status(const JobResult& r);

// Lines of a failed job's output_tail that the summary repeats.
inline constexpr size_t kSummaryTailLines = 10;

// The table, the last lines of each job that failed the run, and a totals line, e.g. (the usage columns when cgroups measured them)
//   JOB    STATUS          TIME   PEAK MEM  CPU
//   build  passed          1.20s  212 MiB   2.31s
//   unit   failed: exit 3  0.31s  8.5 MiB   95ms
//
//   unit: failed: exit 3, its last 2 lines:
//     expected 4, got 5
//     FAILED test_sum
//
//   2 jobs: 1 passed, 1 failed in 1.52s
std::string summary_table(const std::vector<JobResult>& results, std::chrono::milliseconds wall, bool color);

// "212 MiB" or "-"; CPU time as format_elapsed, or "-".
std::string format_memory(std::optional<uint64_t> bytes);
std::string format_cpu(std::optional<uint64_t> usec);

// "1.20s", "95ms", "2m05s"
std::string format_elapsed(std::chrono::milliseconds d);

}  // namespace sandrun::runner
