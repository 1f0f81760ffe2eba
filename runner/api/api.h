// Api: Docker's Engine API on top of the engine: a request's version, route and answer.
// The front door for docker, docker-py, testcontainers and the Actions runner (docs/api.md).
#pragma once

#include <string>

#include "cache/store.h"
#include "runner/api/container_routes.h"
#include "runner/api/event_routes.h"
#include "runner/api/server.h"
#include "runner/api/system_routes.h"
#include "runner/loop/loop.h"

namespace sandrun::runner::api {

class Api {
 public:
  Api(Loop& loop, HostFacts facts, cache::Store store, ContainerRegistry& containers)
      : loop_(loop), facts_(std::move(facts)), store_(store), event_routes_(loop, events_), containers_(containers),
        container_routes_(loop, std::move(store), containers) {}
  // Answers the exchange's request (now, or from the threadpool's answer later).
  void handle(Exchange& ex);
  // The server options Docker's clients expect (headers, bounds).
  ServerOptions server_options() const;
  // What happens to the engine's objects: every part of the daemon publishes here.
  EventBus& events() { return events_; }

 private:
  Loop& loop_;
  HostFacts facts_;
  cache::Store store_;
  EventBus events_;
  EventRoutes event_routes_;  // after events_: it unsubscribes from it when it goes
  ContainerRegistry& containers_;
  ContainerRoutes container_routes_;
};

}  // namespace sandrun::runner::api
