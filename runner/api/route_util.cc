// Helpers shared by the route handlers.
#include "runner/api/route_util.h"

#include <time.h>

#include <charconv>
#include <cstdio>

#include <fmt/format.h>

namespace sandrun::runner::api {

std::variant<nlohmann::json, Response> json_body(const Request& req) {
  if (req.body.empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(req.body, nullptr, false);
  if (j.is_discarded()) return Response::error(400, "invalid JSON: the request body is not valid JSON");
  if (!j.is_object()) return Response::error(400, "invalid JSON: the request body is not a JSON object");
  return j;
}

std::string rfc3339(int64_t seconds, int64_t nanos) {
  const time_t t = static_cast<time_t>(seconds);
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  char buf[64];
  ::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (nanos > 0) {
    std::string frac = fmt::format("{:09d}", nanos);
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    out += "." + frac;
  }
  return out + "Z";
}

std::optional<int64_t> parse_rfc3339(std::string_view text) {
  struct tm tm {};
  const std::string s(text);
  const char* rest = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return std::nullopt;
  int64_t secs = static_cast<int64_t>(::timegm(&tm));
  if (*rest == '.') {
    ++rest;
    while (*rest >= '0' && *rest <= '9') ++rest;
  }
  if (*rest == 'Z' || *rest == 'z' || *rest == '\0') return secs;
  int sign = *rest == '-' ? -1 : 1;
  if (*rest != '+' && *rest != '-') return std::nullopt;
  int hh = 0, mm = 0;
  if (std::sscanf(rest + 1, "%d:%d", &hh, &mm) != 2) return std::nullopt;
  return secs - sign * (hh * 3600 + mm * 60);
}

}  // namespace sandrun::runner::api
