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

}  // namespace

ServerOptions Api::server_options() const {
  ServerOptions o;
  o.server_header = "sandrun/" SANDRUN_VERSION " (linux)";
  o.decorate = add_common_headers;
  // Bodies are kept for the routes that read them (within the parser's bound).
  o.keep_body = [](const Request& req) {
    auto parsed = parse_target(req.target);
    const Target* target = std::get_if<Target>(&parsed);
    if (!target) return false;
    const Match m = match_route(req.method, target->path);
    return m.route && ContainerRoutes::wants_body(m.route->id);
  };
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
  switch (m.route->id) {
    case RouteId::ping: return ex.reply(ping_response());
    case RouteId::version: return ex.reply(version_response(facts_));
    case RouteId::events: return event_routes_.handle(ex, call);
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
    default: break;
  }
  ex.reply(not_implemented(*m.route));
}

}  // namespace sandrun::runner::api
