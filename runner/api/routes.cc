// Docker's route table, version prefixes and route matching.
#include "runner/api/routes.h"

#include <charconv>
#include <vector>

#include <fmt/format.h>

namespace sandrun::runner::api {
namespace {

using S = RouteState;
constexpr S Y = S::implemented;
constexpr S P = S::planned;
constexpr S U = S::unsupported;

// moby's routers in their order (system, container, image, network, volume, exec, build,
// session, swarm, plugin, distribution, grpc). Image names contain '/', hence {name*}.
constexpr Route kRoutes[] = {
    {"GET", "/_ping", Y, RouteId::ping},
    {"HEAD", "/_ping", Y, RouteId::ping},
    {"GET", "/version", Y, RouteId::version},
    {"GET", "/info", Y, RouteId::info},
    {"GET", "/events", Y, RouteId::events},
    {"GET", "/system/df", U},
    {"POST", "/auth", U},
    // containers
    {"HEAD", "/containers/{id}/archive", Y, RouteId::container_archive_head},
    {"GET", "/containers/json", Y, RouteId::container_list},
    {"GET", "/containers/{id}/export", U},
    {"GET", "/containers/{id}/changes", U},
    {"GET", "/containers/{id}/json", Y, RouteId::container_inspect},
    {"GET", "/containers/{id}/top", Y, RouteId::container_top},
    {"GET", "/containers/{id}/logs", Y, RouteId::container_logs},
    {"GET", "/containers/{id}/stats", Y, RouteId::container_stats},
    {"GET", "/containers/{id}/attach/ws", U},
    {"GET", "/containers/{id}/archive", Y, RouteId::container_archive_get},
    {"POST", "/containers/create", Y, RouteId::container_create},
    {"POST", "/containers/{id}/kill", Y, RouteId::container_kill},
    {"POST", "/containers/{id}/pause", U},
    {"POST", "/containers/{id}/unpause", U},
    {"POST", "/containers/{id}/restart", Y, RouteId::container_restart},
    {"POST", "/containers/{id}/start", Y, RouteId::container_start},
    {"POST", "/containers/{id}/stop", Y, RouteId::container_stop},
    {"POST", "/containers/{id}/wait", Y, RouteId::container_wait},
    {"POST", "/containers/{id}/resize", Y, RouteId::container_resize},
    {"POST", "/containers/{id}/attach", Y, RouteId::container_attach},
    {"POST", "/containers/{id}/rename", U},
    {"POST", "/containers/{id}/update", U},
    {"POST", "/containers/prune", Y, RouteId::container_prune},
    {"POST", "/commit", U},
    {"PUT", "/containers/{id}/archive", Y, RouteId::container_archive_put},
    {"DELETE", "/containers/{id}", Y, RouteId::container_delete},
    // exec
    {"POST", "/containers/{id}/exec", Y, RouteId::exec_create},
    {"POST", "/exec/{id}/start", Y, RouteId::exec_start},
    {"POST", "/exec/{id}/resize", Y, RouteId::exec_resize},
    {"GET", "/exec/{id}/json", Y, RouteId::exec_inspect},
    // images
    {"GET", "/images/json", Y, RouteId::image_list},
    {"GET", "/images/search", U},
    {"GET", "/images/get", Y, RouteId::image_get},
    {"GET", "/images/{name*}/get", Y, RouteId::image_get_one},
    {"GET", "/images/{name*}/history", Y, RouteId::image_history},
    {"GET", "/images/{name*}/json", Y, RouteId::image_inspect},
    {"POST", "/images/load", Y, RouteId::image_load},
    {"POST", "/images/create", Y, RouteId::image_create},
    {"POST", "/images/{name*}/push", U},
    {"POST", "/images/{name*}/tag", Y, RouteId::image_tag},
    {"POST", "/images/prune", Y, RouteId::image_prune},
    {"DELETE", "/images/{name*}", Y, RouteId::image_delete},
    // networks
    {"GET", "/networks", Y, RouteId::network_list},
    {"GET", "/networks/", Y, RouteId::network_list},
    {"GET", "/networks/{id}", Y, RouteId::network_inspect},
    {"POST", "/networks/create", Y, RouteId::network_create},
    {"POST", "/networks/{id}/connect", Y, RouteId::network_connect},
    {"POST", "/networks/{id}/disconnect", Y, RouteId::network_disconnect},
    {"POST", "/networks/prune", Y, RouteId::network_prune},
    {"DELETE", "/networks/{id}", Y, RouteId::network_delete},
    // volumes
    {"GET", "/volumes", Y, RouteId::volume_list},
    {"GET", "/volumes/{name}", Y, RouteId::volume_inspect},
    {"POST", "/volumes/create", Y, RouteId::volume_create},
    {"POST", "/volumes/prune", Y, RouteId::volume_prune},
    {"PUT", "/volumes/{name}", U},
    {"DELETE", "/volumes/{name}", Y, RouteId::volume_delete},
    // build, sessions
    {"POST", "/build", U},
    {"POST", "/build/prune", Y, RouteId::build_prune},  // no build cache: nothing to prune
    {"POST", "/build/cancel", U},
    {"POST", "/session", U},
    {"POST", "/grpc", U},
    // swarm mode: never (sandrun is one node, no orchestrator)
    {"GET", "/swarm", U},
    {"GET", "/swarm/unlockkey", U},
    {"POST", "/swarm/init", U},
    {"POST", "/swarm/join", U},
    {"POST", "/swarm/leave", U},
    {"POST", "/swarm/update", U},
    {"POST", "/swarm/unlock", U},
    {"GET", "/services", U},
    {"GET", "/services/{id}", U},
    {"GET", "/services/{id}/logs", U},
    {"POST", "/services/create", U},
    {"POST", "/services/{id}/update", U},
    {"DELETE", "/services/{id}", U},
    {"GET", "/nodes", U},
    {"GET", "/nodes/{id}", U},
    {"POST", "/nodes/{id}/update", U},
    {"DELETE", "/nodes/{id}", U},
    {"GET", "/tasks", U},
    {"GET", "/tasks/{id}", U},
    {"GET", "/tasks/{id}/logs", U},
    {"GET", "/secrets", U},
    {"GET", "/secrets/{id}", U},
    {"POST", "/secrets/create", U},
    {"POST", "/secrets/{id}/update", U},
    {"DELETE", "/secrets/{id}", U},
    {"GET", "/configs", U},
    {"GET", "/configs/{id}", U},
    {"POST", "/configs/create", U},
    {"POST", "/configs/{id}/update", U},
    {"DELETE", "/configs/{id}", U},
    // plugins
    {"GET", "/plugins", U},
    {"GET", "/plugins/privileges", U},
    {"GET", "/plugins/{name*}/json", U},
    {"POST", "/plugins/pull", U},
    {"POST", "/plugins/create", U},
    {"POST", "/plugins/{name*}/enable", U},
    {"POST", "/plugins/{name*}/disable", U},
    {"POST", "/plugins/{name*}/push", U},
    {"POST", "/plugins/{name*}/upgrade", U},
    {"POST", "/plugins/{name*}/set", U},
    {"DELETE", "/plugins/{name*}", U},
    // distribution
    {"GET", "/distribution/{name*}/json", U},
};

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 1;  // after the leading '/'
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Segments [pi..] of the pattern against [si..] of the path; a {name*} takes one or more.
bool match_from(const std::vector<std::string_view>& pat, size_t pi, const std::vector<std::string_view>& seg,
                size_t si, std::string_view path, Params& params) {
  if (pi == pat.size()) return si == seg.size();
  const std::string_view p = pat[pi];
  const bool param = p.size() > 2 && p.front() == '{' && p.back() == '}';
  if (!param) return si < seg.size() && seg[si] == p && match_from(pat, pi + 1, seg, si + 1, path, params);
  if (si == seg.size() || seg[si].empty()) return false;
  const bool many = p[p.size() - 2] == '*';
  const std::string name(p.substr(1, p.size() - (many ? 3 : 2)));
  const size_t last = many ? seg.size() : si + 1;
  for (size_t end = last; end > si; --end) {  // greedy, as moby's {name:.*}
    if (match_from(pat, pi + 1, seg, end, path, params)) {
      const char* b = seg[si].data();
      const char* e = seg[end - 1].data() + seg[end - 1].size();
      params[name] = std::string(b, static_cast<size_t>(e - b));
      return true;
    }
  }
  return false;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// "1.43" -> {1, 43}; nullopt unless digits and dots, as moby's {version:[0-9.]+}.
std::optional<std::vector<int>> parse_version(std::string_view v) {
  std::vector<int> parts;
  size_t i = 0;
  while (i <= v.size()) {
    size_t j = v.find('.', i);
    if (j == std::string_view::npos) j = v.size();
    int n = 0;
    auto [p, ec] = std::from_chars(v.data() + i, v.data() + j, n);
    if (ec != std::errc{} || p != v.data() + j) return std::nullopt;
    parts.push_back(n);
    i = j + 1;
  }
  return parts;
}

// Compares dotted versions as moby's versions.compare (missing parts are 0).
int compare_versions(const std::vector<int>& a, const std::vector<int>& b) {
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const int x = i < a.size() ? a[i] : 0, y = i < b.size() ? b[i] : 0;
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

}  // namespace

std::span<const Route> docker_routes() { return kRoutes; }

std::variant<Target, Response> parse_target(std::string_view target) {
  // The absolute form ("http://docker/v1.43/info") as Go's server takes it.
  if (target.starts_with("http://") || target.starts_with("https://")) {
    const size_t slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (target.empty() || target.front() != '/') return Response::error(400, "invalid request target");
  Target t;
  std::string_view raw_path = target;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    raw_path = target.substr(0, q);
    t.query = std::string(target.substr(q + 1));
  }
  auto path = percent_decode(raw_path);
  if (!path) return Response::error(400, "invalid URL escape in the request path");
  if (path->find('\0') != std::string::npos) return Response::error(400, "NUL in the request path");
  for (std::string_view seg : split_path(*path)) {
    if (seg == "." || seg == "..") return Response::error(400, "the request path has . or .. segments");
  }
  t.version = std::string(kMaxApiVersion);
  t.path = *path;
  // "/v{version:[0-9.]+}/...": anything else is an unversioned path.
  if (path->size() > 2 && (*path)[1] == 'v') {
    const size_t slash = path->find('/', 2);
    const std::string_view v = std::string_view(*path).substr(2, slash == std::string::npos ? std::string::npos : slash - 2);
    if (!v.empty() && v.find_first_not_of("0123456789.") == std::string_view::npos) {
      const auto parts = parse_version(v);
      if (!parts || compare_versions(*parts, {1, kMinApiMinor}) < 0)
        return Response::error(400, fmt::format("client version {} is too old. Minimum supported API version is {}, "
                                                "please upgrade your client to a newer version",
                                                v, kMinApiVersion));
      if (compare_versions(*parts, {1, kMaxApiMinor}) > 0)
        return Response::error(
            400, fmt::format("client version {} is too new. Maximum supported API version is {}", v, kMaxApiVersion));
      t.version = std::string(v);
      t.minor = parts->size() > 1 ? (*parts)[1] : 0;
      t.path = slash == std::string::npos ? "/" : path->substr(slash);
    }
  }
  return t;
}

Match match_route(std::string_view method, std::string_view path) {
  Match m;
  const auto seg = split_path(path);
  for (const Route& r : kRoutes) {
    if (r.method != method) continue;
    const auto pat = split_path(r.pattern);
    Params params;
    if (match_from(pat, 0, seg, 0, path, params)) {
      m.route = &r;
      m.params = std::move(params);
      return m;
    }
  }
  return m;
}

Response not_found() { return Response::error(404, "page not found"); }

Response not_implemented(const Route& route) {
  const bool never = route.state == RouteState::unsupported;
  std::string pattern(route.pattern);
  for (size_t star; (star = pattern.find("*}")) != std::string::npos;) pattern.erase(star, 1);
  return Response::error(501, fmt::format("{} {} is not {} by sandrun{}", route.method, pattern,
                                          never ? "supported" : "implemented", never ? "" : " yet"));
}

}  // namespace sandrun::runner::api
