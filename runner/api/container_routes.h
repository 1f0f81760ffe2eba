// The container routes of the Engine API (create, start, stop, kill, restart, wait, delete,
// prune, inspect, list, logs, top, stats), translated to and from the engine's
// ContainerRegistry (runner/engine/container_registry.h).
#pragma once

#include "cache/store.h"
#include "runner/api/routes.h"
#include "runner/api/server.h"
#include "runner/engine/container_registry.h"
#include "runner/engine/exec_registry.h"
#include "runner/loop/loop.h"

namespace sandrun::runner::api {

class ContainerRoutes {
 public:
  ContainerRoutes(Loop& loop, cache::Store store, ContainerRegistry& registry)
      : loop_(loop), store_(std::move(store)), registry_(registry) {}
  // Answers a container route; false when `call` is not one.
  bool handle(Exchange& ex, const Call& call);
  // Whether the request's body is read (create).
  static bool wants_body(RouteId id) { return id == RouteId::container_create; }
  // The execs, for inspect's ExecIDs (may stay unset: none shown).
  void set_execs(const ExecRegistry* execs) { execs_ = execs; }

 private:
  void create(Exchange& ex, const Call& call);
  void start(Exchange& ex, const std::string& id);
  void stop(Exchange& ex, const Call& call, const std::string& id, bool restart);
  void kill(Exchange& ex, const Call& call, const std::string& id);
  void wait(Exchange& ex, const Call& call, const std::string& id);
  void remove(Exchange& ex, const Call& call, const std::string& id);
  void prune(Exchange& ex, const Call& call);
  void list(Exchange& ex, const Call& call);
  void logs(Exchange& ex, const Call& call, const std::string& id);
  void follow_logs(Exchange& ex, const Call& call, const std::string& id, LogQuery q, bool timestamps);
  void attach(Exchange& ex, const Call& call, const std::string& id);
  void top(Exchange& ex, const std::string& id);
  void stats(Exchange& ex, const Call& call, const std::string& id);

  Loop& loop_;
  cache::Store store_;
  ContainerRegistry& registry_;
  const ExecRegistry* execs_ = nullptr;
};

}  // namespace sandrun::runner::api
