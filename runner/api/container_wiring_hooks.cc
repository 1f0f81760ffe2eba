// The Engine API's side of the container wiring: in-use hooks and NetworkMembers.
#include "runner/api/container_wiring_hooks.h"

#include <chrono>
#include <future>

#include "runner/api/api.h"

namespace sandrun::runner::api {
namespace {

Refusal refusal_of(ContainerRefusal::Kind k) {
  switch (k) {
    case ContainerRefusal::Kind::not_found: return Refusal::not_found;
    case ContainerRefusal::Kind::conflict:
    case ContainerRefusal::Kind::not_modified: return Refusal::conflict;
    case ContainerRefusal::Kind::invalid: return Refusal::invalid;
    case ContainerRefusal::Kind::failed: break;
  }
  return Refusal::none;
}

}  // namespace

RegistryNetworkMembers::RegistryNetworkMembers(Loop& loop, ContainerRegistry& registry)
    : registry_(registry), inbox_(loop) {
  inbox_.unref();  // the daemon's loop ends when its server and containers are gone
}

Result<std::string> RegistryNetworkMembers::on_loop(std::function<void(ContainerRegistry::NetDone)> call, Refusal* why) {
  struct Answer {
    std::promise<void> done;
    std::optional<Result<std::string>> result;
    Refusal why = Refusal::none;
  };
  auto answer = std::make_shared<Answer>();
  auto ready = answer->done.get_future();
  inbox_.poster()([call = std::move(call), answer] {
    call([answer](Result<std::string> id, std::optional<ContainerRefusal> refusal) {
      if (refusal) answer->why = refusal_of(refusal->kind);
      answer->result = std::move(id);
      answer->done.set_value();
    });
  });
  // The loop answers at once, or after one attach; a daemon that is going answers nothing.
  if (ready.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
    return Error::msg("the container registry did not answer (the daemon is shutting down?)");
  if (why) *why = answer->why;
  return std::move(*answer->result);
}

Result<std::string> RegistryNetworkMembers::connect(const std::string& container, const NetworkInfo& network,
                                                    const EndpointConfig& config, Refusal* why) {
  NetworkJoin join{network.record.id, network.record.name, config.aliases, config.ipv4};
  return on_loop([this, container, join](ContainerRegistry::NetDone done) {
    registry_.join_network(container, join, std::move(done));
  }, why);
}

Result<std::string> RegistryNetworkMembers::disconnect(const std::string& container, const NetworkInfo& network,
                                                       bool, Refusal* why) {
  return on_loop([this, container, id = network.record.id](ContainerRegistry::NetDone done) {
    registry_.leave_network(container, id, std::move(done));
  }, why);
}

DaemonWiring::DaemonWiring(Loop& loop, Api& api, ContainerRegistry& registry)
    : api_(api), registry_(registry), wiring_(api.volumes().store(), api.networks()), members_(loop, registry) {
  registry_.set_wiring(&wiring_);
  api_.network_routes().set_members(&members_);
  ContainerRegistry* reg = &registry_;
  api_.volumes().set_users([reg](std::string_view name) {
    std::vector<std::string> ids;
    for (const ContainerRecord* r : reg->list())
      for (const VolumeMount& v : r->wiring.volumes)
        if (v.name == name) {
          ids.push_back(r->id);
          break;
        }
    return ids;
  });
  api_.images().set_users([reg](std::string_view image_id) {
    std::vector<std::string> ids;
    for (const ContainerRecord* r : reg->list())
      if (r->image_id == image_id) ids.push_back(r->id);
    return ids;
  });
}

DaemonWiring::~DaemonWiring() {
  api_.images().set_users(nullptr);
  api_.volumes().set_users(nullptr);
  api_.network_routes().set_members(nullptr);
  registry_.set_wiring(nullptr);
}

}  // namespace sandrun::runner::api
