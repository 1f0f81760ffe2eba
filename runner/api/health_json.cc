// Docker's Healthcheck and State.Health, to and from the engine's values.
#include "runner/api/health_json.h"

#include <fmt/format.h>

#include "runner/api/container_json.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr int64_t kNsPerMs = 1'000'000;

// A duration field in nanoseconds: nullopt for 0 or absent (the default); Docker refuses
// anything under 1ms (its MinimumDuration).
std::variant<std::optional<milliseconds>, std::string> duration(const json& v, const char* key) {
  auto it = v.find(key);
  if (it == v.end() || it->is_null()) return std::optional<milliseconds>{};
  if (!it->is_number_integer()) return fmt::format("Healthcheck.{}: expected an integer (nanoseconds)", key);
  const int64_t ns = it->get<int64_t>();
  if (ns == 0) return std::optional<milliseconds>{};
  if (ns < kNsPerMs) return fmt::format("{} in Healthcheck cannot be less than 1ms", key);
  return std::optional<milliseconds>{milliseconds(ns / kNsPerMs)};
}

}  // namespace

std::variant<HealthcheckSpec, std::string> parse_healthcheck(const json& v) {
  HealthcheckSpec out;
  if (v.is_null()) return out;
  if (!v.is_object()) return std::string("Healthcheck: expected an object");
  struct Field {
    const char* key;
    milliseconds* target;
    bool* given;
  };
  const Field fields[] = {{"Interval", &out.check.interval, &out.interval},
                          {"Timeout", &out.check.timeout, &out.timeout},
                          {"StartPeriod", &out.check.start_period, &out.start_period},
                          {"StartInterval", &out.check.start_interval, &out.start_interval}};
  for (const Field& f : fields) {
    auto d = duration(v, f.key);
    if (auto* err = std::get_if<std::string>(&d)) return *err;
    if (auto ms = std::get<std::optional<milliseconds>>(d)) {
      *f.target = *ms;
      *f.given = true;
    }
  }
  if (auto it = v.find("Retries"); it != v.end() && !it->is_null()) {
    if (!it->is_number_integer()) return std::string("Healthcheck.Retries: expected an integer");
    const int64_t n = it->get<int64_t>();
    if (n < 0) return std::string("Retries in Healthcheck cannot be negative");
    if (n > 0) {
      out.check.retries = static_cast<unsigned>(std::min<int64_t>(n, 1'000'000));
      out.retries = true;
    }
  }
  auto test = v.find("Test");
  if (test == v.end() || test->is_null()) return out;
  if (!test->is_array()) return std::string("Healthcheck.Test: expected an array of strings");
  std::vector<std::string> words;
  for (const auto& w : *test) {
    if (!w.is_string()) return std::string("Healthcheck.Test: expected an array of strings");
    words.push_back(w.get<std::string>());
  }
  if (words.empty()) return out;
  const std::string kind = words.front();
  if (kind == "NONE") {
    out.kind = HealthcheckSpec::Kind::none;
    return out;
  }
  if (kind == "CMD") {
    if (words.size() < 2 || words[1].empty()) return std::string("Healthcheck.Test: CMD needs a command");
    out.check.argv.assign(words.begin() + 1, words.end());
  } else if (kind == "CMD-SHELL") {
    if (words.size() != 2 || words[1].empty()) return std::string("Healthcheck.Test: CMD-SHELL needs one command line");
    out.check.argv = {"/bin/sh", "-c", words[1]};
  } else {
    return fmt::format("Healthcheck.Test: unknown type {:?} (CMD, CMD-SHELL or NONE)", kind);
  }
  out.kind = HealthcheckSpec::Kind::check;
  return out;
}

std::optional<HealthCheck> effective_healthcheck(const HealthcheckSpec& create, const HealthcheckSpec& image) {
  if (create.kind == HealthcheckSpec::Kind::none) return std::nullopt;
  if (create.kind == HealthcheckSpec::Kind::check) return create.check;
  if (image.kind != HealthcheckSpec::Kind::check) return std::nullopt;
  HealthCheck c = image.check;
  if (create.interval) c.interval = create.check.interval;
  if (create.timeout) c.timeout = create.check.timeout;
  if (create.start_period) c.start_period = create.check.start_period;
  if (create.start_interval) c.start_interval = create.check.start_interval;
  if (create.retries) c.retries = create.check.retries;
  return c;
}

json health_state_json(const HealthState& s) {
  json log = json::array();
  for (const auto& r : s.log) {
    log.push_back({{"Start", rfc3339_nano(r.start_ns)}, {"End", rfc3339_nano(r.end_ns)}, {"ExitCode", r.exit_code},
                   {"Output", r.output}});
  }
  return {{"Status", std::string(health_status_name(s.status))}, {"FailingStreak", s.failing_streak}, {"Log", log}};
}

}  // namespace sandrun::runner::api
