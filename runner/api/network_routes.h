// The network routes of the Engine API (docs/api.md, "Networks"): Docker's JSON in and out,
// the engine's runner/net/networks.h underneath, and Docker's predefined networks "bridge",
// "host" and "none", listed and never removed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runner/api/routes.h"
#include "runner/api/server.h"
#include "runner/engine/event_bus.h"
#include "runner/loop/loop.h"
#include "runner/net/networks.h"

namespace sandrun::runner::api {

// What POST /networks/{id}/connect and /disconnect need of the container registry (being
// built on branch wt-ctr). It finds the container by id, name or id prefix, records the
// network in its settings and, while it runs, attaches its network namespace with
// Networks::attach (detach with Networks::detach); a container that does not run joins its
// networks when it starts. Called on a threadpool thread.
class NetworkMembers {
 public:
  virtual ~NetworkMembers() = default;
  struct EndpointConfig {
    std::vector<std::string> aliases;   // EndpointConfig.Aliases
    std::optional<std::string> ipv4;    // EndpointConfig.IPAMConfig.IPv4Address
  };
  // Each returns the container's full id (for the network's connect and disconnect events).
  // Refusals set `why` (not_found: no such container; conflict: already on the network).
  virtual Result<std::string> connect(const std::string& container, const NetworkInfo& network,
                                      const EndpointConfig& config, Refusal* why) = 0;
  virtual Result<std::string> disconnect(const std::string& container, const NetworkInfo& network, bool force,
                                         Refusal* why) = 0;
};

class NetworkRoutes {
 public:
  // Publishes Docker's network events (create, connect, disconnect, destroy) on `events`.
  NetworkRoutes(Loop& loop, Networks& networks, std::string engine_id, EventBus& events);
  // Until the container registry sets itself here, connect and disconnect answer 501.
  void set_members(NetworkMembers* members) { members_ = members; }
  // Answers a request of one of the network routes.
  void handle(Exchange& ex, const Call& call);

 private:
  void create(Exchange& ex);
  void list(Exchange& ex, const Call& call);
  void inspect(Exchange& ex, const Call& call);
  void remove(Exchange& ex, const Call& call);
  void prune(Exchange& ex, const Call& call);
  void connect(Exchange& ex, const Call& call, bool disconnect);
  // Runs `work` on the threadpool, then (on the loop thread) publishes the events it added and
  // replies with what it returned.
  using Work = std::function<Response(std::vector<EngineEvent>& events)>;
  void blocking(Exchange& ex, Work work);

  Loop& loop_;
  Networks& networks_;
  std::string engine_id_;
  EventBus& events_;
  NetworkMembers* members_ = nullptr;
};

}  // namespace sandrun::runner::api
