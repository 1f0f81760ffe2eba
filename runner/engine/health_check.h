// HealthCheck: what a container's health check runs and when (Docker's Healthcheck, as the
// front door translated it), and HealthState: what the checks found so far. Values only: the
// live side is health.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandrun::runner {

struct HealthCheck {
  // The command run inside the container (an exec): CMD's argv, or /bin/sh -c for CMD-SHELL.
  std::vector<std::string> argv;
  // Docker's defaults: 30 s between checks, 30 s before a check is killed, 3 failures in a row
  // for "unhealthy"; failures in the start period do not count, and checks there run every
  // start_interval (5 s).
  std::chrono::milliseconds interval{30'000};
  std::chrono::milliseconds timeout{30'000};
  std::chrono::milliseconds start_period{0};
  std::chrono::milliseconds start_interval{5'000};
  unsigned retries = 3;
};

enum class HealthStatus { starting, healthy, unhealthy };
std::string_view health_status_name(HealthStatus s);

struct HealthResult {
  int64_t start_ns = 0;  // CLOCK_REALTIME
  int64_t end_ns = 0;
  int exit_code = 0;     // -1: it timed out (killed) or could not run
  std::string output;    // stdout and stderr as they came, at most kHealthOutputMax bytes
};

inline constexpr size_t kHealthOutputMax = 4096;
inline constexpr size_t kHealthLogKept = 5;

struct HealthState {
  HealthStatus status = HealthStatus::starting;
  unsigned failing_streak = 0;
  std::deque<HealthResult> log;  // the last kHealthLogKept results, oldest first

  // A check's result, as Docker counts it; `in_start_period`: a failure then does not count.
  // Returns true when the status changed.
  bool record(HealthResult result, unsigned retries, bool in_start_period);
};

}  // namespace sandrun::runner
