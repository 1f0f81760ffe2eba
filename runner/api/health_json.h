// Docker's health check JSON: a create's (or an image config's) Healthcheck into the engine's
// HealthCheck, and State.Health of inspect from the engine's HealthState.
#pragma once

#include <optional>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "runner/engine/health_check.h"

namespace sandrun::runner::api {

// What a Healthcheck object asks for.
struct HealthcheckSpec {
  enum class Kind { inherit, none, check };
  Kind kind = Kind::inherit;  // inherit: Test empty or absent (the image's check, if any)
  HealthCheck check;          // kind == check: Test and the durations (Docker's defaults for 0)
  // Durations given as 0 (the default): an inherited check keeps the image's for these.
  bool interval = false, timeout = false, start_period = false, start_interval = false, retries = false;
};

// Healthcheck {Test, Interval, Timeout, StartPeriod, StartInterval, Retries} (durations in
// nanoseconds), or the 400's message in Docker's words. `v` null or absent: inherit.
std::variant<HealthcheckSpec, std::string> parse_healthcheck(const nlohmann::json& v);

// The check a container runs: the create's, else the image's (with the create's durations
// over the image's), else none (NONE in either, or no Test anywhere).
std::optional<HealthCheck> effective_healthcheck(const HealthcheckSpec& create, const HealthcheckSpec& image);

// State.Health: {"Status", "FailingStreak", "Log": [{"Start", "End", "ExitCode", "Output"}]}.
nlohmann::json health_state_json(const HealthState& s);

}  // namespace sandrun::runner::api
