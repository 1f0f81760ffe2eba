// Docker's Engine API routes: versioned paths, the table of every route Docker serves (so that
// one sandrun does not serve yet is an honest 501 naming it), and matching a request to one.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "runner/api/http_message.h"

namespace sandrun::runner::api {

// The API versions sandrun answers: /v1.24/... up to /v1.47/... (Docker 27.2's), and paths
// without a version, which mean the newest.
inline constexpr int kMinApiMinor = 24;
inline constexpr int kMaxApiMinor = 47;
inline constexpr std::string_view kMinApiVersion = "1.24";
inline constexpr std::string_view kMaxApiVersion = "1.47";

enum class RouteId {
  ping, version, info, events, build_prune,  // system
  container_archive_head, container_list, container_inspect, container_top, container_logs,
  container_stats, container_archive_get, container_create, container_kill, container_restart,
  container_start, container_stop, container_wait, container_resize, container_attach,
  container_prune, container_archive_put, container_delete,
  exec_create, exec_start, exec_resize, exec_inspect,
  image_list, image_get, image_get_one, image_history, image_inspect, image_load, image_create,
  image_tag, image_prune, image_delete,
  network_list, network_inspect, network_create, network_connect, network_disconnect, network_prune, network_delete,
  volume_list, volume_inspect, volume_create, volume_prune, volume_delete,
  other,  // in the table, never served (RouteState::unsupported)
};

enum class RouteState {
  implemented,
  planned,      // issue 16's subset, not done yet: 501 "... is not implemented by sandrun yet"
  unsupported,  // outside sandrun's scope (swarm, plugins, build, ...): 501 "... is not supported by sandrun"
};

struct Route {
  std::string_view method;
  std::string_view pattern;  // "/containers/{id}/json"; "{name*}" takes one or more segments
  RouteState state;
  RouteId id = RouteId::other;
};

// Every route of Docker's Engine API 1.47 (moby's api/server/router/*), in match order.
std::span<const Route> docker_routes();

// A request target split and checked: the version prefix, the decoded path, the query.
struct Target {
  std::string version;  // as sent ("1.43"), or kMaxApiVersion for an unversioned path
  int minor = kMaxApiMinor;
  std::string path;     // percent-decoded, without the version prefix: "/containers/json"
  std::string query;    // raw, after '?'
};
// The target, or Docker's 400 for a version out of range, a bad escape or an unclean path.
std::variant<Target, Response> parse_target(std::string_view target);

// The parameters of a match: {"id": "abc"}.
using Params = std::map<std::string, std::string, std::less<>>;

// One request matched to its route, as a handler gets it.
struct Call {
  const Route& route;
  const Target& target;
  const Params& params;  // {"id": ...}, {"name": ...}
};

struct Match {
  const Route* route = nullptr;  // nullptr: no route has that path and method (404)
  Params params;
};
// Docker answers a known path with another method 404 too ("page not found").
Match match_route(std::string_view method, std::string_view path);

// The 404 and 501 answers, in Docker's words.
Response not_found();
Response not_implemented(const Route& route);

}  // namespace sandrun::runner::api
