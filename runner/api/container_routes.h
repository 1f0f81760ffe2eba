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

// A refusal of the registry as Docker's answer (404, 409, 304, 400, 500).
Response answer(const ContainerRefusal& r);

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
  // The cap of a request's body that goes to a file (an archive's PUT), else nullopt.
  std::optional<uint64_t> body_file_cap(RouteId id) const;

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
  // container_io_routes.cc: its terminal's size, stats as a stream.
  void resize(Exchange& ex, const Call& call, const std::string& id);
  void stats_stream(Exchange& ex, const std::string& id);
  // container_archive_routes.cc: docker cp (GET, HEAD and PUT /containers/{id}/archive).
  void archive(Exchange& ex, const Call& call, const std::string& id);
  void put_pending(Exchange& ex, const std::string& id, const std::string& path, bool copy_owners);

  Loop& loop_;
  cache::Store store_;
  ContainerRegistry& registry_;
  const ExecRegistry* execs_ = nullptr;
};

}  // namespace sandrun::runner::api
