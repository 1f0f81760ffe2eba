// The container routes that read: list (filters), logs, top, stats.
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "runner/api/container_json.h"
#include "runner/api/container_probe.h"
#include "runner/api/container_routes.h"
#include "runner/api/query.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

const std::vector<std::string_view> kListFilters = {"ancestor", "before", "expose", "exited", "health", "id",
                                                    "label", "label!", "name", "network", "publish", "since",
                                                    "status", "volume", "is-task"};

bool any_of(const Filters& f, const char* key, const std::function<bool(const std::string&)>& match) {
  auto it = f.find(key);
  if (it == f.end() || it->second.empty()) return true;
  for (const auto& v : it->second) {
    if (match(v)) return true;
  }
  return false;
}

// "busybox" and "busybox:latest" name the same image; an id (or its prefix) names it too.
bool ancestor_matches(const std::string& wanted, const ContainerRecord& r) {
  auto norm = [](std::string s) {
    const size_t slash = s.rfind('/');
    if (s.find(':', slash == std::string::npos ? 0 : slash) == std::string::npos && s.find('@') == std::string::npos)
      s += ":latest";
    return s;
  };
  if (norm(wanted) == norm(r.spec.image)) return true;
  const std::string id = r.image_id.starts_with("sha256:") ? r.image_id.substr(7) : r.image_id;
  const std::string w = wanted.starts_with("sha256:") ? wanted.substr(7) : wanted;
  return w.size() >= 4 && id.starts_with(w);
}

bool matches(const Filters& f, const ContainerRecord& r, const HealthState* health) {
  if (!any_of(f, "health", [&](const std::string& v) {
        return v == (health ? std::string(health_status_name(health->status)) : std::string("none"));
      }))
    return false;
  if (!any_of(f, "id", [&](const std::string& v) { return r.id.starts_with(v); })) return false;
  if (!any_of(f, "name", [&](const std::string& v) {
        const std::string n = v.starts_with("/") ? v.substr(1) : v;
        return r.name.find(n) != std::string::npos;
      }))
    return false;
  if (!any_of(f, "status", [&](const std::string& v) { return v == status_name(r.status); })) return false;
  if (!any_of(f, "ancestor", [&](const std::string& v) { return ancestor_matches(v, r); })) return false;
  if (!any_of(f, "exited", [&](const std::string& v) {
        return r.status == ContainerStatus::exited && v == std::to_string(r.exit_code);
      }))
    return false;
  if (!any_of(f, "network", [&](const std::string& v) {
        for (const auto& n : r.wiring.networks)
          if (v == n.network_name || v == n.network_id) return true;
        return r.wiring.networks.empty() && v == (r.spec.network == config::Network::host ? "host" : "none");
      }))
    return false;
  if (auto it = f.find("label"); it != f.end() && !labels_match(it->second, r.labels)) return false;
  if (auto it = f.find("label!"); it != f.end() && !it->second.empty() && labels_match(it->second, r.labels)) return false;
  return true;
}

std::optional<int64_t> unix_ns(const Query& q, std::string_view name) {
  auto v = q.get(name);
  if (!v || v->empty()) return int64_t{0};
  char* end = nullptr;
  const double d = std::strtod(v->c_str(), &end);
  if (end == v->c_str() || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(d * 1e9);
}

}  // namespace

void ContainerRoutes::list(Exchange& ex, const Call& call) {
  const Query q = Query::parse(call.target.query);
  auto filters = parse_filters(q, kListFilters);
  if (!filters) return ex.reply(Response::error(400, filters.error().message()));
  if (auto it = filters->find("health"); it != filters->end()) {
    for (const auto& s : it->second) {
      if (s != "starting" && s != "healthy" && s != "unhealthy" && s != "none")
        return ex.reply(Response::error(400, fmt::format("Unrecognised filter value for health: {}", s)));
    }
  }
  if (auto it = filters->find("status"); it != filters->end()) {
    for (const auto& s : it->second) {
      static const std::set<std::string> kStates = {"created", "restarting", "running", "removing", "paused", "exited", "dead"};
      if (!kStates.count(s)) return ex.reply(Response::error(400, fmt::format("invalid filter 'status={}'", s)));
    }
  }
  auto limit = q.integer("limit", -1);
  if (!limit) return ex.reply(Response::error(400, limit.error().message()));
  // Without ?all only running containers, unless a filter or a limit asks for others.
  const bool all = q.flag("all") || *limit > 0 || filters->count("status") || filters->count("exited");
  const int64_t now = now_ns();
  std::string out = "[";
  long long n = 0;
  for (const ContainerRecord* r : registry_.list()) {
    if (!all && r->status != ContainerStatus::running) continue;
    const HealthState* health = registry_.health(r->id);
    if (!matches(*filters, *r, health)) continue;
    if (*limit > 0 && n >= *limit) break;
    if (n++) out += ',';
    out += list_entry_json(*r, now, health);
  }
  out += "]\n";
  ex.reply(Response::json(std::move(out)));
}

void ContainerRoutes::logs(Exchange& ex, const Call& call, const std::string& id) {
  const Query q = Query::parse(call.target.query);
  LogQuery lq;
  lq.stdout_ = q.flag("stdout");
  lq.stderr_ = q.flag("stderr");
  if (!lq.stdout_ && !lq.stderr_) return ex.reply(Response::error(400, "Bad parameters: you must choose at least one stream"));
  if (auto t = q.get("tail"); t && *t != "all" && !t->empty()) {
    char* end = nullptr;
    const long long n = std::strtoll(t->c_str(), &end, 10);
    if (*end == '\0' && n >= 0) lq.tail = static_cast<size_t>(n);
  }
  auto since = unix_ns(q, "since"), until = unix_ns(q, "until");
  if (!since || !until) return ex.reply(Response::error(400, "since and until are unix times (seconds, with a fraction)"));
  lq.since_ns = *since;
  lq.until_ns = *until;
  const bool timestamps = q.flag("timestamps");
  if (q.flag("follow") && registry_.active(id)) return follow_logs(ex, call, id, lq, timestamps);
  auto text = std::make_shared<Result<std::string>>(std::string());
  // A terminal's output is one stream, sent raw (as Docker does for a Tty container).
  const bool raw = registry_.find(id)->tty;
  ex.work = run_blocking(
      loop_,
      [dir = registry_.dir_of(id), lq, timestamps, raw, text](const std::atomic<bool>&) {
        *text = framed_log(dir, lq, timestamps, raw);
      },
      [&ex, text, raw, minor = call.target.minor] {
        if (!*text) return ex.reply(Response::error(500, text->error().message()));
        Response r;
        r.body = std::move(**text);
        r.content_type = minor >= 42 && !raw ? "application/vnd.docker.multiplexed-stream" : "application/vnd.docker.raw-stream";
        ex.reply(std::move(r));
      });
}

void ContainerRoutes::top(Exchange& ex, const std::string& id) {
  const LiveInfo live = registry_.live(id);
  if (live.pid <= 0) return ex.reply(Response::error(409, fmt::format("Container {} is not running", id)));
  auto text = std::make_shared<Result<std::string>>(std::string());
  ex.work = run_blocking(
      loop_, [pid = live.pid, text](const std::atomic<bool>&) { *text = top_json(pid); },
      [&ex, text] {
        if (!*text) return ex.reply(Response::error(500, text->error().message()));
        ex.reply(Response::json(std::move(**text)));
      });
}

void ContainerRoutes::stats(Exchange& ex, const Call& call, const std::string& id) {
  const Query q = Query::parse(call.target.query);
  const ContainerRecord* rec = registry_.find(id);
  const LiveInfo live = registry_.live(id);
  if (q.flag("stream", true) && !q.flag("one-shot") && live.pid > 0) return stats_stream(ex, id);
  if (live.pid <= 0) {
    // Docker answers a stopped container's stats with zeros.
    json out = {{"read", "0001-01-01T00:00:00Z"}, {"preread", "0001-01-01T00:00:00Z"}, {"id", id},
                {"name", "/" + rec->name}, {"pids_stats", json::object()}, {"cpu_stats", {{"cpu_usage", {{"total_usage", 0}}}, {"system_cpu_usage", 0}, {"online_cpus", 0}}},
                {"precpu_stats", {{"cpu_usage", {{"total_usage", 0}}}, {"system_cpu_usage", 0}, {"online_cpus", 0}}},
                {"memory_stats", json::object()}};
    return ex.reply(Response::json(out.dump() + "\n"));
  }
  auto text = std::make_shared<Result<std::string>>(std::string());
  const int interval = q.flag("one-shot") ? 0 : 100;
  ex.work = run_blocking(
      loop_,
      [pid = live.pid, id, name = rec->name, interval, text](const std::atomic<bool>&) {
        *text = stats_json(pid, id, name, interval);
      },
      [&ex, text] {
        if (!*text) return ex.reply(Response::error(500, text->error().message()));
        ex.reply(Response::json(std::move(**text)));
      });
}

}  // namespace sandrun::runner::api
