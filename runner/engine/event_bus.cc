// The engine's event bus.
#include "runner/engine/event_bus.h"

#include <vector>

namespace sandrun::runner {

int64_t EventBus::now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void EventBus::publish(EngineEvent event) {
  if (event.time_ns == 0) event.time_ns = now_ns();
  kept_.push_back(std::move(event));
  if (kept_.size() > kKept) kept_.pop_front();
  const EngineEvent& e = kept_.back();
  // Subscribers may come and go during the calls: go by token, over a copy of the tokens.
  std::vector<uint64_t> tokens;
  tokens.reserve(subscribers_.size());
  for (const auto& [t, s] : subscribers_) tokens.push_back(t);
  const EngineEvent copy = e;  // kept_ may change under a subscriber that publishes
  for (uint64_t t : tokens) {
    auto it = subscribers_.find(t);
    if (it != subscribers_.end()) {
      auto s = it->second;  // the subscriber may unsubscribe itself while it runs
      s(copy);
    }
  }
}

uint64_t EventBus::subscribe(Subscriber s) {
  const uint64_t t = next_++;
  subscribers_.emplace(t, std::move(s));
  return t;
}

void EventBus::unsubscribe(uint64_t token) { subscribers_.erase(token); }

}  // namespace sandrun::runner
