// EventBus: what happens to the engine's objects (containers, images, networks, volumes), for
// whoever follows it (the Engine API's /events: `docker events`, testcontainers' waits), kept
// for a while so that a follower may ask for what happened since a time. Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>

namespace sandrun::runner {

struct EngineEvent {
  std::string type;    // "container", "image", "network", "volume"
  std::string action;  // "create", "start", "die", "oom", "health_status: healthy", "destroy", "pull", ...
  std::string id;      // the object's id (an image's reference for image events, as Docker)
  std::map<std::string, std::string> attributes;  // name, image, exitCode, the labels, ...
  int64_t time_ns = 0;  // since the epoch; set by publish() when 0
};

class EventBus {
 public:
  using Subscriber = std::function<void(const EngineEvent&)>;
  // The events kept for `since` (the oldest go first).
  static constexpr size_t kKept = 4096;

  // Tells every subscriber, in the order they subscribed, and keeps the event.
  void publish(EngineEvent event);
  // Every event from now on; returns a token for unsubscribe(). A subscriber may unsubscribe
  // itself (or others) from inside its call.
  uint64_t subscribe(Subscriber s);
  void unsubscribe(uint64_t token);
  // The kept events with since_ns <= time_ns <= until_ns, oldest first.
  template <class F>
  void replay(int64_t since_ns, int64_t until_ns, F&& f) const {
    for (const auto& e : kept_)
      if (e.time_ns >= since_ns && e.time_ns <= until_ns) f(e);
  }
  size_t subscribers() const { return subscribers_.size(); }

  static int64_t now_ns();

 private:
  std::deque<EngineEvent> kept_;
  std::map<uint64_t, Subscriber> subscribers_;
  uint64_t next_ = 1;
};

}  // namespace sandrun::runner
