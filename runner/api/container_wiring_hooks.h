// The daemon's wiring of containers to volumes, images and networks, seen from the Engine API:
// the in-use answers of the volume and image routes (a volume or image a container uses is
// refused for removal), and NetworkMembers for POST /networks/{id}/connect and /disconnect,
// which asks the container registry on its loop.
#pragma once

#include <memory>
#include <string>

#include "runner/api/network_routes.h"
#include "runner/engine/container_registry.h"
#include "runner/engine/container_wiring.h"
#include "runner/loop/inbox.h"

namespace sandrun::runner::api {

class Api;

// NetworkMembers over the registry: called on a threadpool thread, each request is handed to
// the loop (an Inbox) and waited for (the registry answers on its loop; an attach runs on the
// threadpool in between).
class RegistryNetworkMembers : public NetworkMembers {
 public:
  // On the loop thread.
  RegistryNetworkMembers(Loop& loop, ContainerRegistry& registry);
  Result<std::string> connect(const std::string& container, const NetworkInfo& network, const EndpointConfig& config,
                              Refusal* why) override;
  Result<std::string> disconnect(const std::string& container, const NetworkInfo& network, bool force,
                                 Refusal* why) override;

 private:
  Result<std::string> on_loop(std::function<void(ContainerRegistry::NetDone)> call, Refusal* why);

  ContainerRegistry& registry_;
  Inbox inbox_;
};

// Everything of the wiring a daemon sets up (on the loop thread, before it serves), and undoes
// when it goes (its destructor, before `api` and `registry` go).
class DaemonWiring {
 public:
  DaemonWiring(Loop& loop, Api& api, ContainerRegistry& registry);
  ~DaemonWiring();
  DaemonWiring(const DaemonWiring&) = delete;
  DaemonWiring& operator=(const DaemonWiring&) = delete;

 private:
  Api& api_;
  ContainerRegistry& registry_;
  ContainerWiring wiring_;
  RegistryNetworkMembers members_;
};

}  // namespace sandrun::runner::api
