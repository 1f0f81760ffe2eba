// Api: Docker's Engine API on top of the engine: a request's version, route and answer.
// The front door for docker, docker-py, testcontainers and the Actions runner (docs/api.md).
#pragma once

#include <string>

#include "cache/store.h"
#include "runner/api/container_routes.h"
#include "runner/api/event_routes.h"
#include "runner/api/exec_routes.h"
#include "runner/api/image_routes.h"
#include "runner/api/network_routes.h"
#include "runner/api/server.h"
#include "runner/api/system_routes.h"
#include "runner/api/volume_routes.h"
#include "runner/loop/loop.h"

namespace sandrun::runner::api {

class Api {
 public:
  Api(Loop& loop, HostFacts facts, cache::Store store, ContainerRegistry& containers, Networks& networks,
      PullDefaults pull = {})
      : loop_(loop), facts_(std::move(facts)), store_(std::move(store)), event_routes_(loop, events_),
        images_(loop, store_, std::move(pull), events_), volumes_(loop, store_.root(), events_),
        networks_(networks), network_routes_(loop, networks, facts_.id, events_), containers_(containers),
        container_routes_(loop, store_, containers), execs_(loop, containers, &events_), exec_routes_(execs_) {
    container_routes_.set_execs(&execs_);
  }
  // Answers the exchange's request (now, or from the threadpool's answer later).
  void handle(Exchange& ex);
  // The server options Docker's clients expect (headers, bounds).
  ServerOptions server_options() const;
  // What happens to the engine's objects: every part of the daemon publishes here.
  EventBus& events() { return events_; }
  // The areas' handlers, for what the container registry hooks into them (in_use checks,
  // volume mounts).
  ImageRoutes& images() { return images_; }
  VolumeRoutes& volumes() { return volumes_; }
  // The daemon's networks (runner/net/networks.h), for the container registry too.
  Networks& networks() { return networks_; }
  NetworkRoutes& network_routes() { return network_routes_; }

 private:
  Loop& loop_;
  HostFacts facts_;
  cache::Store store_;
  EventBus events_;
  EventRoutes event_routes_;  // after events_: it unsubscribes from it when it goes
  ImageRoutes images_;        // after events_: they publish there
  VolumeRoutes volumes_;
  Networks& networks_;
  NetworkRoutes network_routes_;
  ContainerRegistry& containers_;
  ContainerRoutes container_routes_;
  ExecRegistry execs_;  // after events_: it follows the containers' destroy events there
  ExecRoutes exec_routes_;
};

}  // namespace sandrun::runner::api
