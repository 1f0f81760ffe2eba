// Docker's volume routes: JSON in and out, filters, and the in-use check on the loop thread;
// the file system work on the threadpool.
#include "runner/api/volume_routes.h"

#include <set>

#include <fmt/format.h>

#include "runner/api/query.h"
#include "runner/api/route_util.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

json volume_json(const Volume& v) {
  return {{"Name", v.name},
          {"Driver", "local"},
          {"Mountpoint", v.mountpoint},
          {"Labels", v.labels},
          {"Scope", "local"},
          {"CreatedAt", rfc3339(v.created, v.created_nsec)},
          {"Options", json::object()}};
}

EngineEvent volume_event(std::string action, std::string name) {
  return EngineEvent{"volume", std::move(action), std::move(name), {{"driver", "local"}}, 0};
}

Response no_such_volume(std::string_view name) { return Response::error(404, fmt::format("get {}: no such volume", name)); }

Response invalid_name(std::string_view name) {
  return Response::error(400, fmt::format("create {}: \"{}\" includes invalid characters for a local volume name, only "
                                          "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
                                          "directory, use absolute path",
                                          name, name));
}

// The request's "Labels" (an object of strings), or a 400.
std::variant<std::map<std::string, std::string>, Response> labels_of(const json& body) {
  std::map<std::string, std::string> out;
  if (!body.contains("Labels") || body["Labels"].is_null()) return out;
  if (!body["Labels"].is_object()) return Response::error(400, "Labels: must be an object of strings");
  for (const auto& [k, v] : body["Labels"].items()) {
    if (!v.is_string()) return Response::error(400, fmt::format("Labels: the value of {:?} is not a string", k));
    out[k] = v.get<std::string>();
  }
  return out;
}

// Docker's "dangling" filter value: true/1 or false/0.
std::optional<bool> bool_filter(const std::string& v) {
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return std::nullopt;
}

}  // namespace

void VolumeRoutes::handle(const Call& call, Exchange& ex) {
  switch (call.route.id) {
    case RouteId::volume_create: return create(call, ex);
    case RouteId::volume_list: return list(call, ex);
    case RouteId::volume_delete: return remove(call, ex);
    case RouteId::volume_prune: return prune(call, ex);
    case RouteId::volume_inspect: {
      const std::string name = call.params.at("name");
      return answer_blocking(loop_, ex, [store = store_, name](const std::atomic<bool>&) {
        auto v = store->find(name);
        if (!v) return Response::error(500, v.error().message());
        if (!*v) return no_such_volume(name);
        return Response::json(json_text(volume_json(**v)));
      });
    }
    default: return ex.reply(not_implemented(call.route));
  }
}

void VolumeRoutes::create(const Call&, Exchange& ex) {
  auto parsed = json_body(ex.request());
  if (auto* r = std::get_if<Response>(&parsed)) return ex.reply(std::move(*r));
  const json& body = std::get<json>(parsed);
  std::string name;
  if (body.contains("Name") && !body["Name"].is_null()) {
    if (!body["Name"].is_string()) return ex.reply(Response::error(400, "Name: must be a string"));
    name = body["Name"].get<std::string>();
  }
  if (!name.empty() && !VolumeStore::valid_name(name)) return ex.reply(invalid_name(name));
  const std::string driver = body.contains("Driver") && body["Driver"].is_string() ? body["Driver"].get<std::string>() : "";
  if (!driver.empty() && driver != "local")
    return ex.reply(Response::error(400, fmt::format("create {}: volume driver {:?} is not supported by sandrun: only "
                                                     "\"local\"", name, driver)));
  if (body.contains("DriverOpts") && !body["DriverOpts"].is_null() && !body["DriverOpts"].empty())
    return ex.reply(Response::error(400, fmt::format("create {}: DriverOpts are not supported by sandrun (its local "
                                                     "volumes are plain directories)", name)));
  auto labels = labels_of(body);
  if (auto* r = std::get_if<Response>(&labels)) return ex.reply(std::move(*r));
  answer_blocking(loop_, ex, events_, [store = store_, name, labels = std::get<0>(labels)](const std::atomic<bool>&,
                                                                                           Events& events) {
    auto before = name.empty() ? Result<std::optional<Volume>>(std::optional<Volume>{}) : store->find(name);
    const bool existed = before && before->has_value();
    auto v = store->create(name, labels);
    if (!v) return Response::error(500, v.error().message());
    if (!existed) events.push_back(volume_event("create", v->name));
    return Response::json(json_text(volume_json(*v)), 201);
  });
}

void VolumeRoutes::list(const Call& call, Exchange& ex) {
  auto filters = parse_filters(Query::parse(call.target.query), {"name", "label", "dangling", "driver"});
  if (!filters) return ex.reply(Response::error(400, filters.error().message()));
  Filters f = filters.take();
  std::optional<bool> dangling;
  if (auto it = f.find("dangling"); it != f.end() && !it->second.empty()) {
    dangling = bool_filter(it->second.front());
    if (!dangling)
      return ex.reply(Response::error(400, fmt::format("invalid filter 'dangling={}'", it->second.front())));
  }
  auto out = std::make_shared<Result<std::vector<Volume>>>(std::vector<Volume>{});
  ex.work = run_blocking(
      loop_, [store = store_, out](const std::atomic<bool>&) { *out = store->list(); },
      [this, &ex, out, f, dangling] {
        if (!*out) return ex.reply(Response::error(500, out->error().message()));
        json vols = json::array();
        for (const Volume& v : **out) {
          if (auto it = f.find("name"); it != f.end()) {
            bool any = false;
            for (const auto& n : it->second) any = any || v.name.find(n) != std::string::npos;
            if (!any) continue;
          }
          if (auto it = f.find("driver"); it != f.end() && std::find(it->second.begin(), it->second.end(), "local") == it->second.end())
            continue;
          if (auto it = f.find("label"); it != f.end() && !labels_match(it->second, v.labels)) continue;
          // users() is the container registry's: asked here, on the loop thread.
          if (dangling && users(v.name).empty() != *dangling) continue;
          vols.push_back(volume_json(v));
        }
        ex.reply(Response::json(json_text({{"Volumes", vols}, {"Warnings", json::array()}})));
      });
}

void VolumeRoutes::remove(const Call& call, Exchange& ex) {
  const std::string name = call.params.at("name");
  const bool force = Query::parse(call.target.query).flag("force");
  if (auto ids = users(name); !ids.empty())
    return ex.reply(Response::error(409, fmt::format("remove {}: volume is in use - [{}]", name, fmt::join(ids, ", "))));
  answer_blocking(loop_, ex, events_, [store = store_, name, force](const std::atomic<bool>&, Events& events) {
    auto removed = store->remove(name);
    if (!removed) return Response::error(500, removed.error().message());
    if (*removed) events.push_back(volume_event("destroy", name));
    // Docker's force: a missing volume is not an error.
    if (!*removed && !force) return no_such_volume(name);
    Response r;
    r.status = 204;
    return r;
  });
}

void VolumeRoutes::prune(const Call& call, Exchange& ex) {
  auto filters = parse_filters(Query::parse(call.target.query), {"label", "label!", "all"});
  if (!filters) return ex.reply(Response::error(400, filters.error().message()));
  const Filters f = filters.take();
  // API 1.42 and later prune only anonymous volumes unless the filter all=true says otherwise.
  bool all = call.target.minor < 42;
  if (auto it = f.find("all"); it != f.end() && !it->second.empty()) {
    auto b = bool_filter(it->second.front());
    if (!b) return ex.reply(Response::error(400, fmt::format("invalid filter 'all={}'", it->second.front())));
    all = *b;
  }
  // The volumes in use now, from the container registry (on the loop thread).
  auto listed = std::make_shared<Result<std::vector<Volume>>>(std::vector<Volume>{});
  ex.work = run_blocking(
      loop_, [store = store_, listed](const std::atomic<bool>&) { *listed = store->list(); },
      [this, &ex, listed, f, all] {
        if (!*listed) return ex.reply(Response::error(500, listed->error().message()));
        std::set<std::string> busy;
        for (const Volume& v : **listed)
          if (!users(v.name).empty()) busy.insert(v.name);
        auto pick = [f, all, busy](const Volume& v) {
          if (busy.count(v.name) || (!all && !v.anonymous)) return false;
          if (auto it = f.find("label"); it != f.end() && !labels_match(it->second, v.labels)) return false;
          if (auto it = f.find("label!"); it != f.end())
            for (const auto& l : it->second)
              if (labels_match({l}, v.labels)) return false;
          return true;
        };
        answer_blocking(loop_, ex, events_, [store = store_, pick](const std::atomic<bool>&, Events& events) {
          auto report = store->prune(pick);
          if (!report) return Response::error(500, report.error().message());
          for (const auto& n : report->removed) events.push_back(volume_event("destroy", n));
          events.push_back(EngineEvent{"volume", "prune", "", {{"reclaimed", std::to_string(report->bytes)}}, 0});
          return Response::json(json_text({{"VolumesDeleted", report->removed}, {"SpaceReclaimed", report->bytes}}));
        });
      });
}

}  // namespace sandrun::runner::api
