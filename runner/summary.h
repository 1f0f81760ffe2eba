// The end-of-run summary: one row per job (status, time) and the totals.
#pragma once

#include <string>
#include <vector>

#include "runner/job.h"

namespace sandrun::runner {

// "passed", "failed: exit 3", "killed by SIGKILL", "timed out after 10s", "setup failed",
// "failed: command not found", "cancelled", "not started".
std::string status_text(const JobResult& r);

// The table and a totals line, e.g.
//   JOB    STATUS          TIME
//   build  passed          1.20s
//   unit   failed: exit 3  0.31s
//   2 jobs: 1 passed, 1 failed in 1.52s
std::string summary_table(const std::vector<JobResult>& results, std::chrono::milliseconds wall, bool color);

// "1.20s", "95ms", "2m05s"
std::string format_elapsed(std::chrono::milliseconds d);

}  // namespace sandrun::runner
