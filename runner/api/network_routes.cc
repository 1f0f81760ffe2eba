// The network routes: create, list, inspect, remove, prune, connect and disconnect.
#include "runner/api/network_routes.h"

#include <time.h>

#include <charconv>

#include <fmt/format.h>

#include "runner/api/network_json.h"
#include "runner/api/query.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

int status_of(Refusal why) {
  switch (why) {
    case Refusal::not_found: return 404;
    case Refusal::conflict:
    case Refusal::in_use: return 409;
    case Refusal::invalid: return 400;
    case Refusal::none: break;
  }
  return 500;
}

Response refused(Refusal why, const Error& e) { return Response::error(status_of(why), e.message()); }

// Docker's network event: Actor.ID the network's id, attributes its name and type (and the
// container's id for connect and disconnect).
EngineEvent network_event(const NetworkRecord& r, std::string action, const std::string& container = "") {
  EngineEvent e{"network", std::move(action), r.id, {{"name", r.name}, {"type", "bridge"}}, 0};
  if (!container.empty()) e.attributes["container"] = container;
  return e;
}

std::string body_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

// Docker's substring match of the name and id filters (any of the values).
bool any_part_of(const std::vector<std::string>& values, const std::string& text) {
  for (const auto& v : values)
    if (text.find(v) != std::string::npos) return true;
  return false;
}

bool any_equal(const std::vector<std::string>& values, std::string_view text) {
  for (const auto& v : values)
    if (v == text) return true;
  return false;
}

// A Go duration ("24h", "1h30m", "90s"), a Unix time ("1733400000", "1733400000.5") or an RFC 3339
// time, as the cutoff of prune's `until`: "YYYY-MM-DDTHH:MM:SS", compared with Created.
Result<std::string> until_cutoff(const std::string& v) {
  time_t now = ::time(nullptr), at = 0;
  struct tm tm {};
  if (::strptime(v.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) {
    at = ::timegm(&tm);
  } else if (!v.empty() && v.find_first_not_of("0123456789.") == std::string::npos) {
    long long secs = 0;
    std::from_chars(v.data(), v.data() + v.size(), secs);
    at = static_cast<time_t>(secs);
  } else {
    long long total = 0;
    size_t pos = 0;
    while (pos < v.size()) {
      long long n = 0;
      auto [end, ec] = std::from_chars(v.data() + pos, v.data() + v.size(), n);
      if (ec != std::errc() || end == v.data() + v.size()) return Error::msg("invalid filter 'until={}'", v);
      const char unit = *end;
      pos = static_cast<size_t>(end - v.data()) + 1;
      if (unit == 'h') total += n * 3600;
      else if (unit == 'm') total += n * 60;
      else if (unit == 's') total += n;
      else return Error::msg("invalid filter 'until={}'", v);
    }
    if (v.empty()) return Error::msg("invalid filter 'until='");
    at = now - static_cast<time_t>(total);
  }
  ::gmtime_r(&at, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

// GET /networks's filters on one network (predefined: no labels, no containers).
struct ListFilter {
  Filters f;
  bool keep(const std::string& name, const std::string& id, std::string_view driver, bool builtin, size_t containers,
            const std::map<std::string, std::string>& labels) const {
    if (f.count("name") && !any_part_of(f.at("name"), name)) return false;
    if (f.count("id") && !any_part_of(f.at("id"), id)) return false;
    if (f.count("driver") && !any_equal(f.at("driver"), driver)) return false;
    if (f.count("scope") && !any_equal(f.at("scope"), "local")) return false;
    if (f.count("type") && !any_equal(f.at("type"), builtin ? "builtin" : "custom")) return false;
    if (f.count("label") && !labels_match(f.at("label"), labels)) return false;
    if (f.count("dangling")) {
      const bool dangling = !builtin && containers == 0;
      if (!any_equal(f.at("dangling"), dangling ? "true" : "false") && !any_equal(f.at("dangling"), dangling ? "1" : "0"))
        return false;
    }
    return true;
  }
};

Result<void> check_list_filters(const Filters& f) {
  if (f.count("type"))
    for (const auto& t : f.at("type"))
      if (t != "custom" && t != "builtin") return Error::msg("invalid filter: 'type'='{}'", t);
  if (f.count("dangling"))
    for (const auto& d : f.at("dangling"))
      if (d != "true" && d != "false" && d != "1" && d != "0")
        return Error::msg("invalid filter 'dangling={}'", d);
  return {};
}

}  // namespace

NetworkRoutes::NetworkRoutes(Loop& loop, Networks& networks, std::string engine_id, EventBus& events)
    : loop_(loop), networks_(networks), engine_id_(std::move(engine_id)), events_(events) {}

void NetworkRoutes::blocking(Exchange& ex, Work work) {
  struct Answer {
    Response response;
    std::vector<EngineEvent> events;
  };
  auto answer = std::make_shared<Answer>();
  ex.work = run_blocking(
      loop_, [work = std::move(work), answer](const std::atomic<bool>&) { answer->response = work(answer->events); },
      [this, &ex, answer] {
        for (auto& e : answer->events) events_.publish(std::move(e));
        ex.reply(std::move(answer->response));
      });
}

void NetworkRoutes::handle(Exchange& ex, const Call& call) {
  switch (call.route.id) {
    case RouteId::network_create: return create(ex);
    case RouteId::network_list: return list(ex, call);
    case RouteId::network_inspect: return inspect(ex, call);
    case RouteId::network_delete: return remove(ex, call);
    case RouteId::network_prune: return prune(ex, call);
    case RouteId::network_connect: return connect(ex, call, false);
    case RouteId::network_disconnect: return connect(ex, call, true);
    default: return ex.reply(not_implemented(call.route));
  }
}

void NetworkRoutes::create(Exchange& ex) {
  std::vector<std::string> warnings;
  auto spec = parse_network_create(ex.request().body, warnings);
  if (!spec) return ex.reply(Response::error(400, spec.error().message()));
  if (is_predefined_name(spec->name))
    return ex.reply(Response::error(409, fmt::format("network with name {} already exists", spec->name)));
  blocking(ex, [this, spec = std::move(*spec), warnings = std::move(warnings)](std::vector<EngineEvent>& events) {
    Refusal why = Refusal::none;
    auto made = networks_.create(spec, &why);
    if (!made) return refused(why, made.error());
    events.push_back(network_event(made->record, "create"));
    std::string warning;
    for (const auto& w : warnings) warning += (warning.empty() ? "" : "; ") + w;
    return Response::json(body_json({{"Id", made->record.id}, {"Warning", warning}}), 201);
  });
}

void NetworkRoutes::list(Exchange& ex, const Call& call) {
  auto filters = parse_filters(Query::parse(call.target.query), {"dangling", "driver", "id", "label", "name", "scope", "type"});
  if (!filters) return ex.reply(Response::error(400, filters.error().message()));
  if (auto r = check_list_filters(*filters); !r) return ex.reply(Response::error(400, r.error().message()));
  blocking(ex, [this, keep = ListFilter{std::move(*filters)}](std::vector<EngineEvent>&) {
    json out = json::array();
    for (const auto& p : predefined_networks(engine_id_))
      if (keep.keep(p.name, p.id, p.driver, true, 0, {})) out.push_back(predefined_json(p));
    for (const auto& n : networks_.list())
      if (keep.keep(n.record.name, n.record.id, "bridge", false, n.endpoints.size(), n.record.labels))
        out.push_back(network_json(n, false));
    return Response::json(body_json(out));
  });
}

void NetworkRoutes::inspect(Exchange& ex, const Call& call) {
  const std::string ref = call.params.at("id");
  for (const auto& p : predefined_networks(engine_id_))
    if (p.name == ref || p.id == ref) return ex.reply(Response::json(body_json(predefined_json(p))));
  blocking(ex, [this, ref](std::vector<EngineEvent>&) {
    Refusal why = Refusal::none;
    auto n = networks_.inspect(ref, &why);
    if (!n) return refused(why, n.error());
    return Response::json(body_json(network_json(*n, true)));
  });
}

void NetworkRoutes::remove(Exchange& ex, const Call& call) {
  const std::string ref = call.params.at("id");
  for (const auto& p : predefined_networks(engine_id_))
    if (p.name == ref || p.id == ref)
      return ex.reply(Response::error(403, fmt::format("{} is a pre-defined network and cannot be removed", p.name)));
  blocking(ex, [this, ref](std::vector<EngineEvent>& events) {
    Refusal why = Refusal::none;
    auto gone = networks_.remove(ref, &why);
    if (!gone) return refused(why, gone.error());
    events.push_back(network_event(*gone, "destroy"));
    Response r;
    r.status = 204;
    r.content_type.clear();
    return r;
  });
}

void NetworkRoutes::prune(Exchange& ex, const Call& call) {
  auto filters = parse_filters(Query::parse(call.target.query), {"until", "label", "label!"});
  if (!filters) return ex.reply(Response::error(400, filters.error().message()));
  std::optional<std::string> cutoff;
  if (filters->count("until")) {
    if (filters->at("until").size() != 1) return ex.reply(Response::error(400, "more than one until filter specified"));
    auto c = until_cutoff(filters->at("until").front());
    if (!c) return ex.reply(Response::error(400, c.error().message()));
    cutoff = *c;
  }
  blocking(ex, [this, f = std::move(*filters), cutoff](std::vector<EngineEvent>& events) {
    auto removed = networks_.prune([&](const NetworkRecord& r) {
      if (cutoff && r.created.substr(0, cutoff->size()) >= *cutoff) return false;
      if (f.count("label") && !labels_match(f.at("label"), r.labels)) return false;
      if (f.count("label!"))
        for (const auto& l : f.at("label!"))
          if (labels_match({l}, r.labels)) return false;
      return true;
    });
    json names = json::array();
    for (const auto& r : removed) {
      names.push_back(r.name);
      events.push_back(network_event(r, "destroy"));
    }
    return Response::json(body_json({{"NetworksDeleted", names}}));
  });
}

void NetworkRoutes::connect(Exchange& ex, const Call& call, bool disconnect) {
  json j = json::parse(ex.request().body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return ex.reply(Response::error(400, "invalid JSON: expected an object"));
  if (!j.contains("Container") || !j["Container"].is_string() || j["Container"].get<std::string>().empty())
    return ex.reply(Response::error(400, "Container: the container to connect is missing"));
  const std::string container = j["Container"].get<std::string>();
  NetworkMembers::EndpointConfig config;
  if (!disconnect && j.contains("EndpointConfig") && j["EndpointConfig"].is_object()) {
    const json& ec = j["EndpointConfig"];
    if (ec.contains("Aliases") && ec["Aliases"].is_array()) {
      for (const auto& a : ec["Aliases"]) {
        if (!a.is_string()) return ex.reply(Response::error(400, "EndpointConfig.Aliases: expected strings"));
        config.aliases.push_back(a.get<std::string>());
      }
    }
    if (ec.contains("IPAMConfig") && ec["IPAMConfig"].is_object() && ec["IPAMConfig"].contains("IPv4Address") &&
        ec["IPAMConfig"]["IPv4Address"].is_string() && !ec["IPAMConfig"]["IPv4Address"].get<std::string>().empty())
      config.ipv4 = ec["IPAMConfig"]["IPv4Address"].get<std::string>();
  }
  const bool force = j.value("Force", false);
  const std::string ref = call.params.at("id");
  for (const auto& p : predefined_networks(engine_id_))
    if (p.name == ref || p.id == ref)
      return ex.reply(Response::error(
          400, fmt::format("sandrun does not {} containers {} the predefined network {}: create a network "
                           "(docker network create) and use it",
                           disconnect ? "disconnect" : "connect", disconnect ? "from" : "to", p.name)));
  blocking(ex, [this, ref, container, config, force, disconnect](std::vector<EngineEvent>& events) {
    Refusal why = Refusal::none;
    auto n = networks_.inspect(ref, &why);
    if (!n) return refused(why, n.error());
    if (!members_)
      return Response::error(501, fmt::format("POST /networks/{{id}}/{}: sandrun's container registry is not in this "
                                              "build yet, so no container can be {} by the API",
                                              disconnect ? "disconnect" : "connect",
                                              disconnect ? "disconnected" : "connected"));
    auto r = disconnect ? members_->disconnect(container, *n, force, &why) : members_->connect(container, *n, config, &why);
    if (!r) return refused(why, r.error());
    events.push_back(network_event(n->record, disconnect ? "disconnect" : "connect", *r));
    Response ok;
    ok.content_type.clear();
    return ok;
  });
}

}  // namespace sandrun::runner::api
