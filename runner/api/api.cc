// The Engine API's dispatch: version prefix, route table, handlers.
#include "runner/api/api.h"

#include <memory>

#include "runner/api/routes.h"
#include "sandbox/sys/log.h"

#ifndef SANDRUN_VERSION
#define SANDRUN_VERSION "0.0.0"
#endif

namespace sandrun::runner::api {
namespace {

bool mutating(std::string_view method) { return method != "GET" && method != "HEAD"; }

// The routes whose handlers read a JSON body (the parser drops every other request's).
bool takes_body(const Request& req) {
  if (req.method != "POST") return false;
  auto parsed = parse_target(req.target);
  const Target* target = std::get_if<Target>(&parsed);
  if (!target) return false;
  const Match m = match_route(req.method, target->path);
  if (!m.route || m.route->state != RouteState::implemented) return false;
  switch (m.route->id) {
    case RouteId::network_create:
    case RouteId::network_connect:
    case RouteId::network_disconnect: return true;
    default: return false;
  }
}

}  // namespace

ServerOptions Api::server_options() const {
  ServerOptions o;
  o.server_header = "sandrun/" SANDRUN_VERSION " (linux)";
  o.decorate = add_common_headers;
  // JSON bodies are kept for the routes served that read one; an image load's goes to a file.
  o.keep_body = [](const Request& req) {
    auto parsed = parse_target(req.target);
    const Target* t = std::get_if<Target>(&parsed);
    const Match m = t ? match_route(req.method, t->path) : Match{};
    return m.route && (m.route->id == RouteId::volume_create || takes_body(req) ||
                       ContainerRoutes::wants_body(m.route->id) || ExecRoutes::wants_body(m.route->id));
  };
  o.body_to_file = [this](const Request& req) -> std::optional<uint64_t> {
    auto parsed = parse_target(req.target);
    const Target* t = std::get_if<Target>(&parsed);
    if (!t) return std::nullopt;
    const Match m = match_route(req.method, t->path);
    if (!m.route || m.route->state != RouteState::implemented) return std::nullopt;
    if (auto cap = container_routes_.body_file_cap(m.route->id)) return cap;
    return images_.body_file_cap(Call{*m.route, *t, m.params});
  };
  o.body_dir = store_.root() + "/tmp";
  return o;
}

void Api::handle(Exchange& ex) {
  const Request& req = ex.request();
  auto parsed = parse_target(req.target);
  if (auto* refused = std::get_if<Response>(&parsed)) return ex.reply(std::move(*refused));
  const Target& target = std::get<Target>(parsed);
  const Match m = match_route(req.method, target.path);
  // Who changed what: every request that may change state names its client.
  if (mutating(req.method)) {
    const Peer& p = ex.peer();
    log::info("api: {} {} by pid {} uid {} gid {}{}", req.method, target.path, p.pid, p.uid, p.gid,
              m.route && m.route->state == RouteState::implemented ? "" : " (not served)");
  }
  if (!m.route) return ex.reply(not_found());
  if (m.route->state != RouteState::implemented) return ex.reply(not_implemented(*m.route));
  const Call call{*m.route, target, m.params};
  if (container_routes_.handle(ex, call)) return;
  if (exec_routes_.handle(ex, call)) return;
  switch (m.route->id) {
    case RouteId::ping: return ex.reply(ping_response());
    case RouteId::version: return ex.reply(version_response(facts_));
    case RouteId::events: return event_routes_.handle(ex, call);
    case RouteId::build_prune: return ex.reply(build_prune_response());
    case RouteId::info: {
      // The image index is read under the cache's file locks: on the threadpool.
      auto count = std::make_shared<Result<size_t>>(size_t{0});
      ex.work = run_blocking(
          loop_,
          [store = store_, count](const std::atomic<bool>&) {
            auto images = store.list();
            *count = images ? Result<size_t>(images->size()) : Result<size_t>(std::move(images.error()));
          },
          [this, &ex, count] {
            if (!*count) return ex.reply(Response::error(500, count->error().wrap("list images").message()));
            const auto c = containers_.counts();
            ex.reply(info_response(facts_, **count, ContainerCounts{c.total, c.running, c.stopped}));
          });
      return;
    }
    case RouteId::image_list: case RouteId::image_get: case RouteId::image_get_one: case RouteId::image_history:
    case RouteId::image_inspect: case RouteId::image_load: case RouteId::image_create: case RouteId::image_tag:
    case RouteId::image_prune: case RouteId::image_delete:
      return images_.handle(call, ex);
    case RouteId::volume_list: case RouteId::volume_inspect: case RouteId::volume_create: case RouteId::volume_prune:
    case RouteId::volume_delete:
      return volumes_.handle(call, ex);
    case RouteId::network_list:
    case RouteId::network_inspect:
    case RouteId::network_create:
    case RouteId::network_connect:
    case RouteId::network_disconnect:
    case RouteId::network_prune:
    case RouteId::network_delete: return network_routes_.handle(ex, call);
    default: break;
  }
  ex.reply(not_implemented(*m.route));
}

}  // namespace sandrun::runner::api
