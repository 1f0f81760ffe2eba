// GET /events over the engine's event bus.
#include "runner/api/event_routes.h"

#include <time.h>

#include <charconv>
#include <cmath>
#include <deque>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runner/loop/timer.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace {

// Events a follower that does not read may have waiting before it is dropped (its connection
// closed): the engine never waits for a client.
constexpr size_t kFollowerBacklog = 10'000;

bool any_of(const std::vector<std::string>& values, const std::string& v) {
  for (const auto& x : values)
    if (x == v) return true;
  return false;
}

std::string attr(const EngineEvent& e, const char* key) {
  auto it = e.attributes.find(key);
  return it == e.attributes.end() ? std::string() : it->second;
}

// Go's time.ParseDuration for what clients send: "10m", "1h30m", "1.5s", "300ms".
std::optional<int64_t> parse_duration_ns(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    const double n = std::strtod(std::string(s.substr(i, j - i)).c_str(), nullptr);
    size_t k = j;
    while (k < s.size() && std::isalpha(static_cast<unsigned char>(s[k]))) ++k;
    const std::string_view unit = s.substr(j, k - j);
    double scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "µs") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else return std::nullopt;
    total += n * scale;
    i = k;
  }
  return static_cast<int64_t>(total);
}

}  // namespace

std::string event_json(const EngineEvent& e) {
  nlohmann::json actor_attrs = nlohmann::json::object();
  for (const auto& [k, v] : e.attributes) actor_attrs[k] = v;
  nlohmann::json j;
  // The fields of the old format, which the docker CLI still reads for these types.
  if (e.type == "container" || e.type == "image") {
    j["status"] = e.action;
    j["id"] = e.id;
    if (auto it = e.attributes.find("image"); it != e.attributes.end()) j["from"] = it->second;
  }
  j["Type"] = e.type;
  j["Action"] = e.action;
  j["Actor"] = {{"ID", e.id}, {"Attributes", actor_attrs}};
  j["scope"] = "local";
  j["time"] = e.time_ns / 1'000'000'000;
  j["timeNano"] = e.time_ns;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool event_matches(const EngineEvent& e, const Filters& f) {
  for (const auto& [key, values] : f) {
    if (values.empty()) continue;
    bool ok = false;
    if (key == "type") {
      ok = any_of(values, e.type);
    } else if (key == "event") {
      // "health_status" matches "health_status: healthy", as Docker.
      const std::string base = e.action.substr(0, e.action.find(':'));
      ok = any_of(values, e.action) || any_of(values, base);
    } else if (key == "container") {
      ok = e.type == "container" && (any_of(values, e.id) || any_of(values, attr(e, "name")));
      for (const auto& v : values) ok = ok || (e.type == "container" && v.size() >= 12 && e.id.starts_with(v));
    } else if (key == "image") {
      ok = any_of(values, attr(e, "image")) || (e.type == "image" && any_of(values, e.id));
    } else if (key == "network" || key == "volume") {
      ok = e.type == key && (any_of(values, e.id) || any_of(values, attr(e, "name")));
    } else if (key == "label") {
      ok = labels_match(values, e.attributes);
    } else if (key == "scope") {
      ok = any_of(values, "local");
    } else {
      ok = true;  // daemon, plugin, node, service, config: nothing of sandrun's is filtered out by them
    }
    if (!ok) return false;
  }
  return true;
}

Result<int64_t> parse_event_time(std::string_view v, int64_t now_ns) {
  if (v.empty()) return Error::msg("an empty time");
  if (std::isdigit(static_cast<unsigned char>(v[0])) && v.find_first_not_of("0123456789.") == std::string_view::npos) {
    const size_t dot = v.find('.');
    int64_t sec = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + (dot == std::string_view::npos ? v.size() : dot), sec);
    if (ec != std::errc{}) return Error::msg("{:?} is not a time", v);
    int64_t ns = 0;
    if (dot != std::string_view::npos) {
      std::string frac(v.substr(dot + 1, 9));
      frac.resize(9, '0');
      std::from_chars(frac.data(), frac.data() + 9, ns);
    }
    return sec * 1'000'000'000 + ns;
  }
  if (auto d = parse_duration_ns(v)) return now_ns - *d;
  struct tm tm {};
  const std::string s(v);
  const char* rest = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return Error::msg("{:?} is not a time (Unix seconds, RFC 3339 or a duration such as 10m)", v);
  int64_t ns = 0;
  if (*rest == '.') {
    std::string frac;
    for (++rest; std::isdigit(static_cast<unsigned char>(*rest)); ++rest)
      if (frac.size() < 9) frac += *rest;
    frac.resize(9, '0');
    std::from_chars(frac.data(), frac.data() + 9, ns);
  }
  int64_t offset = 0;
  if (*rest == '+' || *rest == '-') {
    int hh = 0, mm = 0;
    if (std::sscanf(rest + 1, "%d:%d", &hh, &mm) < 1) return Error::msg("{:?}: a bad time zone offset", v);
    offset = (*rest == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
  } else if (*rest != 'Z' && *rest != '\0') {
    return Error::msg("{:?} is not a time (Unix seconds, RFC 3339 or a duration such as 10m)", v);
  }
  const int64_t sec = static_cast<int64_t>(::timegm(&tm)) - offset;
  return sec * 1'000'000'000 + ns;
}

struct EventRoutes::Follow {
  Exchange* ex = nullptr;
  Filters filters;
  uint64_t token = 0;
  std::deque<std::string> backlog;  // lines send() could not take yet
  bool blocked = false;
  std::unique_ptr<Timer> until;
};

EventRoutes::EventRoutes(Loop& loop, EventBus& bus) : loop_(loop), bus_(bus) {}

EventRoutes::~EventRoutes() {
  for (auto& [ex, f] : follows_) bus_.unsubscribe(f->token);
}

void EventRoutes::end(Exchange* ex) {
  auto it = follows_.find(ex);
  if (it == follows_.end()) return;
  bus_.unsubscribe(it->second->token);
  follows_.erase(it);  // its timer goes with it
  ex->end();
}

void EventRoutes::handle(Exchange& ex, const Call& call) {
  const Query q = Query::parse(call.target.query);
  auto filters = parse_filters(q, {"type", "event", "container", "image", "network", "volume", "label", "daemon",
                                   "scope", "plugin", "node", "service", "config"});
  if (!filters) return ex.reply(Response::error(400, filters.error().message()));
  const int64_t now = EventBus::now_ns();
  int64_t since = now, until = INT64_MAX;
  for (auto [name, out] : {std::pair{"since", &since}, std::pair{"until", &until}}) {
    if (auto v = q.get(name); v && !v->empty()) {
      auto t = parse_event_time(*v, now);
      if (!t) return ex.reply(Response::error(400, fmt::format("{}: {}", name, t.error().message())));
      *out = *t;
    }
  }
  if (q.get("since") && since > until) return ex.reply(Response::error(400, "since must be before until"));
  ex.begin_stream(Response::json(""));
  const bool has_since = q.get("since").has_value();
  auto follow = std::make_unique<Follow>();
  Follow* f = follow.get();
  f->ex = &ex;
  f->filters = std::move(*filters);
  if (has_since)
    bus_.replay(since, until, [&](const EngineEvent& e) {
      if (event_matches(e, f->filters)) ex.send(event_json(e) + "\n");
    });
  if (until <= now) return ex.end();  // only the past was asked for
  f->token = bus_.subscribe([this, f](const EngineEvent& e) {
    if (!event_matches(e, f->filters)) return;
    std::string line = event_json(e) + "\n";
    if (f->blocked) {
      if (f->backlog.size() >= kFollowerBacklog) {
        log::warn("api: an events follower (pid {}) read none of {} events: dropped", f->ex->peer().pid,
                  kFollowerBacklog);
        return end(f->ex);
      }
      f->backlog.push_back(std::move(line));
      return;
    }
    f->blocked = !f->ex->send(line);
  });
  ex.on_drain([f] {
    while (!f->backlog.empty()) {
      const bool room = f->ex->send(f->backlog.front());
      f->backlog.pop_front();
      if (!room) return;
    }
    f->blocked = false;
  });
  ex.on_gone([this, f] {
    bus_.unsubscribe(f->token);
    follows_.erase(f->ex);
  });
  if (until != INT64_MAX) {
    f->until = std::make_unique<Timer>(loop_);
    f->until->start(std::chrono::milliseconds((until - now) / 1'000'000 + 1), [this, f] { end(f->ex); });
  }
  follows_.emplace(&ex, std::move(follow));
}

}  // namespace sandrun::runner::api
