// The volume routes of the Engine API (docs/api.md, "Volumes") over the engine's VolumeStore.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runner/api/routes.h"
#include "runner/api/server.h"
#include "runner/engine/event_bus.h"
#include "runner/engine/volumes.h"
#include "runner/loop/loop.h"

namespace sandrun::runner::api {

class VolumeRoutes {
 public:
  // Volumes created and destroyed are published on `events`.
  VolumeRoutes(Loop& loop, const std::string& root, EventBus& events)
      : loop_(loop), store_(std::make_shared<VolumeStore>(root)), events_(events) {}
  // GET /volumes, GET /volumes/{name}, POST /volumes/create, DELETE /volumes/{name},
  // POST /volumes/prune.
  void handle(const Call& call, Exchange& ex);

  // The container registry's answer to "which containers use this volume" (ids), called on the
  // loop thread before a volume is removed or pruned, and for the `dangling` filter. Unset:
  // no container uses any volume.
  using Users = std::function<std::vector<std::string>(std::string_view name)>;
  void set_users(Users users) { users_ = std::move(users); }
  // The store, for the container side's `-v NAME:/path` mounts (VolumeStore::mount_dir).
  std::shared_ptr<VolumeStore> store() const { return store_; }

 private:
  void create(const Call& call, Exchange& ex);
  void list(const Call& call, Exchange& ex);
  void remove(const Call& call, Exchange& ex);
  void prune(const Call& call, Exchange& ex);
  std::vector<std::string> users(std::string_view name) const { return users_ ? users_(name) : std::vector<std::string>{}; }

  Loop& loop_;
  std::shared_ptr<VolumeStore> store_;
  EventBus& events_;
  Users users_;
};

}  // namespace sandrun::runner::api
