// The exec routes of the Engine API: create, start (hijacked stream, or detached), resize,
// inspect, translated to and from the engine's ExecRegistry (runner/engine/exec_registry.h).
#pragma once

#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "runner/api/routes.h"
#include "runner/api/server.h"
#include "runner/engine/exec_registry.h"

namespace sandrun::runner::api {

// Docker's ExecConfig body into the engine's request, or the 400's message.
struct ExecCreate {
  ExecRequest request;
  ExecRegistry::Attach attach;
};
std::variant<ExecCreate, std::string> read_exec_create(const nlohmann::json& body);
// GET /exec/{id}/json.
nlohmann::json exec_inspect_json(const ExecRegistry::Exec& x);

class ExecRoutes {
 public:
  explicit ExecRoutes(ExecRegistry& execs) : execs_(execs) {}
  // Answers an exec route; false when `call` is not one.
  bool handle(Exchange& ex, const Call& call);
  // Whether the request's body is read (create, start).
  static bool wants_body(RouteId id) { return id == RouteId::exec_create || id == RouteId::exec_start; }

 private:
  void create(Exchange& ex, const std::string& container);
  void start(Exchange& ex, const Call& call, const std::string& id);
  void resize(Exchange& ex, const Call& call, const std::string& id);

  ExecRegistry& execs_;
};

}  // namespace sandrun::runner::api
