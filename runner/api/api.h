// Api: Docker's Engine API on top of the engine: a request's version, route and answer.
// The front door for docker, docker-py, testcontainers and the Actions runner (docs/api.md).
#pragma once

#include <string>

#include "cache/store.h"
#include "runner/api/image_routes.h"
#include "runner/api/server.h"
#include "runner/api/system_routes.h"
#include "runner/api/volume_routes.h"
#include "runner/loop/loop.h"

namespace sandrun::runner::api {

class Api {
 public:
  Api(Loop& loop, HostFacts facts, cache::Store store, PullDefaults pull = {})
      : loop_(loop), facts_(std::move(facts)), store_(std::move(store)), images_(loop, store_, std::move(pull)),
        volumes_(loop, store_.root()) {}
  // Answers the exchange's request (now, or from the threadpool's answer later).
  void handle(Exchange& ex);
  // The server options Docker's clients expect (headers, bounds).
  ServerOptions server_options() const;
  // The areas' handlers, for what the container registry hooks into them (in_use checks,
  // volume mounts).
  ImageRoutes& images() { return images_; }
  VolumeRoutes& volumes() { return volumes_; }

 private:
  Loop& loop_;
  HostFacts facts_;
  cache::Store store_;
  ImageRoutes images_;
  VolumeRoutes volumes_;
};

}  // namespace sandrun::runner::api
