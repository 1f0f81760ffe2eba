// What the report tests share: captured reporter output and synthetic plans and results.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "runner/report/events.h"
#include "runner/report/report_console.h"

namespace sandrun::testing {

using runner::JobPlan;
using runner::JobResult;
using S = JobResult::Status;

// Captures what a reporter writes: the text per fd, and each write.
struct Capture {
  std::string out, err;
  std::vector<std::string> writes;
  runner::WriteFn fn() {
    return [this](int fd, std::string_view d) {
      (fd == 2 ? err : out).append(d);
      writes.emplace_back(d);
    };
  }
};

inline std::vector<JobPlan> plans(const std::vector<std::string>& names) {
  std::vector<JobPlan> out;
  for (const auto& n : names) {
    JobPlan p;
    p.name = n;
    p.file_name = n;
    out.push_back(p);
  }
  return out;
}

inline std::vector<const JobPlan*> ptrs(const std::vector<JobPlan>& ps) {
  std::vector<const JobPlan*> out;
  for (const auto& p : ps) out.push_back(&p);
  return out;
}

inline JobResult result(const std::string& name, size_t index, S st, int code = 0) {
  JobResult r;
  r.name = name;
  r.index = index;
  r.status = st;
  r.exit_code = code;
  r.duration = std::chrono::milliseconds(1200);
  return r;
}

}  // namespace sandrun::testing
