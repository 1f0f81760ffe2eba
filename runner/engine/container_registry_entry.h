// The container registry's entry of one container (container_registry.h): its record and its
// live side. Private to the registry's files (container_registry.cc, container_registry_net.cc).
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runner/engine/container_registry.h"
#include "runner/engine/container_wiring.h"
#include "runner/net/port_proxy.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

inline ContainerRefusal refuse(ContainerRefusal::Kind kind, std::string message) {
  return ContainerRefusal{kind, std::move(message)};
}

// Answers `done(error, refusal)` with the refusal's message as the error (read before the
// refusal is moved: the order of a call's arguments is unspecified).
template <typename Answer>
void answer_refusal(Answer& done, ContainerRefusal r) {
  Error e = Error::msg("{}", r.message);
  done(std::move(e), std::move(r));
}

struct ContainerRegistry::Entry {
  ContainerRecord rec;
  std::string dir;
  std::optional<JobPlan> plan;  // resolved at create (or at the first start after a restart)
  std::vector<cache::LayerLease> leases;
  std::unique_ptr<Container> live;
  std::unique_ptr<ContainerLog> log;
  UniqueFd netns;                    // its own network namespace, for published ports (root)
  std::optional<WiredStart> wired;   // while it runs: its networks (container_wiring.h)
  BlockingCall wiring_call;          // a step of its wiring on the threadpool
  bool remove_volumes = false;       // its anonymous volumes go when it is removed
  std::unique_ptr<PortProxy> proxy;  // its published ports (root), closed when it exits
  bool starting = false;          // a start is under way (before `running`)
  bool tearing_down = false;      // exited: its Container is being removed
  bool has_place = false;         // holds a place of the -j budget (from launch to teardown)
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
  // Its stdin and terminal (container_registry.cc, "its stdin and terminal"): bytes written before the Container is
  // made (given to it at its start), an end-of-file asked for meanwhile, the writers waiting
  // for room, the terminal's size for the next start.
  std::string stdin_pending;
  bool stdin_pending_end = false;
  std::map<uint64_t, std::function<void()>> stdin_waiters;
  std::optional<sandbox::TtySize> tty_size;
  // Tars copied in while it did not run (docker cp), extracted at each of its starts.
  struct Archive {
    std::string file;  // ROOT/containers/<id>/archive-N.tar
    std::string dir;   // where in the container
    bool copy_owners = false;
  };
  std::vector<Archive> archives;

  bool running() const { return starting || (live && !tearing_down && rec.status == ContainerStatus::running); }
};

}  // namespace sandrun::runner
