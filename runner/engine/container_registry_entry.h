// ContainerRegistry's entry: one container's record and live state, shared by the registry's
// files (container_registry.cc, container_restore.cc). Internal to runner/engine.
#pragma once

#include <algorithm>

#include "runner/engine/container_registry.h"
#include "runner/net/port_proxy.h"

namespace sandrun::runner {

struct ContainerRegistry::Entry {
  ContainerRecord rec;
  std::string dir;
  std::optional<JobPlan> plan;  // resolved at create (or at the first start after a restart)
  std::vector<cache::LayerLease> leases;
  std::unique_ptr<Container> live;
  std::unique_ptr<ContainerLog> log;
  UniqueFd netns;                    // its own network namespace, for published ports (root)
  std::unique_ptr<PortProxy> proxy;  // its published ports (root), closed when it exits
  bool starting = false;          // a start is under way (before `running`)
  bool tearing_down = false;      // exited: its Container is being removed
  std::vector<Done> start_done;   // answered once it runs (or could not start)
  std::vector<Done> stop_done;    // answered once it has exited
  std::vector<std::function<void()>> after_teardown;
  struct Waiter {
    uint64_t token;
    WaitCondition condition;
    std::function<void(int)> done;
  };
  std::vector<Waiter> waiters;
  std::map<uint64_t, Subscriber> subscribers;
  int iterating = 0;                 // inside a loop over the subscribers: erase later
  std::vector<uint64_t> unsubscribed;

  // Calls f(subscriber) for each; one that unsubscribes meanwhile is erased after the loop.
  template <typename F>
  void each_subscriber(F&& f) {
    ++iterating;
    for (auto& [tok, s] : subscribers) {
      if (std::find(unsubscribed.begin(), unsubscribed.end(), tok) == unsubscribed.end()) f(s);
    }
    if (--iterating == 0) {
      for (uint64_t t : unsubscribed) subscribers.erase(t);
      unsubscribed.clear();
    }
  }
  UvHandle<uv_timer_t> kill_timer;
  BlockingCall work;              // preparing a start, or removing the directory
  BlockingCall saving;
  bool save_again = false;
  std::function<void()> after_save;  // an erase waiting for the record's write to end
  std::vector<std::function<void()>> saved;  // run once the record as it is now is on disk
  ContainerRegistry* owner = nullptr;

  bool running() const { return starting || (live && !tearing_down && rec.status == ContainerStatus::running); }
};

}  // namespace sandrun::runner
