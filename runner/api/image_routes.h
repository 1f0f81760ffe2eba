// The image routes of the Engine API (docs/api.md, "Images") over the image cache
// (cache/store.h): every cache call on the threadpool, Docker's JSON made here.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/store.h"
#include "runner/api/pull_defaults.h"
#include "runner/api/routes.h"
#include "runner/api/server.h"
#include "runner/engine/event_bus.h"
#include "runner/loop/loop.h"

namespace sandrun::runner::api {

class ImageRoutes {
 public:
  // Images pulled, tagged, untagged, deleted and loaded are published on `events`.
  ImageRoutes(Loop& loop, cache::Store store, PullDefaults pull, EventBus& events)
      : loop_(loop), store_(std::move(store)), pull_(std::move(pull)), events_(events) {}
  void handle(const Call& call, Exchange& ex);

  // Which containers use the image of this id ("sha256:..."), called on the loop thread before
  // an image is deleted. Unset (no container registry yet): none.
  using Users = std::function<std::vector<std::string>(std::string_view image_id)>;
  void set_users(Users users) { users_ = std::move(users); }

  // Where a route's request body goes when it is a file (POST /images/load): nullopt for
  // every other route. The value is the body's cap in bytes (the operator's image bound).
  std::optional<uint64_t> body_file_cap(const Call& call) const;

 private:
  void list(const Call& call, Exchange& ex);
  void inspect(const Call& call, Exchange& ex, bool history);
  void tag(const Call& call, Exchange& ex);
  void remove(const Call& call, Exchange& ex);
  void prune(const Call& call, Exchange& ex);
  void create(const Call& call, Exchange& ex);
  struct PullAnswer;
  void stream_pull(Exchange& ex, const cache::ImageRef& ref, cache::PullOptions o);
  void save(const Call& call, Exchange& ex);
  void load(const Call& call, Exchange& ex);
  std::vector<std::string> users(const std::string& id) const { return users_ ? users_(id) : std::vector<std::string>{}; }

  Loop& loop_;
  cache::Store store_;
  PullDefaults pull_;
  EventBus& events_;
  Users users_;
};

}  // namespace sandrun::runner::api
