// The daemon's containers, what clients ask of a running or stopped one: stop (a signal, then
// SIGKILL after the grace period), kill, restart, and removal (forced or not, with its
// anonymous volumes) down to the erasure of its record.
#include <signal.h>

#include <filesystem>

#include "runner/engine/container_registry.h"
#include "runner/engine/container_registry_entry.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {

void ContainerRegistry::stop(const std::string& id, std::optional<std::chrono::milliseconds> grace, Done done, int sig) {
  Entry* e = entry(id);
  if (!e) return done(no_such(id));
  if (!e->running()) return done(refuse(ContainerRefusal::Kind::not_modified, "container already stopped"));
  if (budget_.withdraw(id)) {
    give_up_queued(*e);
    return done(std::nullopt);
  }
  e->stop_done.push_back(std::move(done));
  if (e->starting && !e->live) {
    // Still preparing: it stops as soon as it runs.
    e->start_done.push_back([this, id, grace, sig](std::optional<ContainerRefusal> r) {
      if (!r) stop(id, grace, [](std::optional<ContainerRefusal>) {}, sig);
    });
    return;
  }
  if (grace && grace->count() <= 0) return e->live->kill();
  e->live->stop(sig);
  if (!grace) return;
  if (!e->kill_timer.live()) {
    uv_timer_init(loop_.get(), e->kill_timer.get());
    e->kill_timer.mark_live();
    e->kill_timer.get()->data = e;
  }
  uv_timer_start(e->kill_timer.get(), on_kill_timer, static_cast<uint64_t>(grace->count()), 0);
}

void ContainerRegistry::on_kill_timer(uv_timer_t* t) {
  auto* e = static_cast<Entry*>(t->data);
  if (e->live) e->live->kill();
}

void ContainerRegistry::kill(const std::string& id, int sig, Done done) {
  Entry* e = entry(id);
  if (!e) return done(no_such(id));
  if (!e->running())
    return done(refuse(ContainerRefusal::Kind::conflict, fmt::format("Cannot kill container: {}: Container {} is not running", id, id)));
  publish(*e, "kill", {{"signal", std::to_string(sig)}});
  if (budget_.withdraw(id)) give_up_queued(*e);
  else if (e->live) e->live->stop(sig);
  else e->start_done.push_back([this, id, sig](std::optional<ContainerRefusal> r) {
    if (!r) kill(id, sig, [](std::optional<ContainerRefusal>) {});
  });
  done(std::nullopt);
}

void ContainerRegistry::restart(const std::string& id, std::optional<std::chrono::milliseconds> grace, Done done) {
  Entry* e = entry(id);
  if (!e) return done(no_such(id));
  auto go = [this, id, done](std::optional<ContainerRefusal> r) mutable {
    if (r && r->kind != ContainerRefusal::Kind::not_modified) return done(std::move(r));
    Entry* e = entry(id);
    if (!e) return done(no_such(id));
    ++e->rec.restarts;
    start(id, std::move(done));
  };
  if (e->running()) return stop(id, grace, std::move(go));
  go(std::nullopt);
}

void ContainerRegistry::remove(const std::string& id, bool force, Done done, bool volumes) {
  Entry* e = entry(id);
  if (!e) return done(no_such(id));
  if (volumes) e->remove_volumes = true;
  if (e->rec.status == ContainerStatus::removing)
    return done(refuse(ContainerRefusal::Kind::conflict, fmt::format("removal of container {} is already in progress", id)));
  if (e->running()) {
    if (!force)
      return done(refuse(ContainerRefusal::Kind::conflict,
                         fmt::format("You cannot remove a running container {}. Stop the container before attempting "
                                     "removal or force remove", id)));
    return stop(id, std::chrono::milliseconds(0), [this, id, done, volumes](std::optional<ContainerRefusal>) mutable {
      remove(id, false, std::move(done), volumes);
    }, SIGKILL);
  }
  e->rec.status = ContainerStatus::removing;
  after_teardown(*e, [this, e, done = std::move(done)]() mutable { erase(*e, std::move(done)); });
}

// Removes its directory (on the threadpool), then the entry.
void ContainerRegistry::erase(Entry& en, Done done) {
  Entry* e = &en;
  e->rec.status = ContainerStatus::removing;
  if (e->saving.pending()) {
    // Its record is being written (a rename into the directory): removed once that is done.
    e->after_save = [this, e, done = std::move(done)]() mutable { erase(*e, std::move(done)); };
    return;
  }
  e->work = run_blocking(
      loop_,
      [dir = e->dir, w = wiring_, wiring = e->rec.wiring, volumes = e->remove_volumes || e->rec.auto_remove](const std::atomic<bool>&) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        if (ec) log::warn("containers: remove {}: {}", dir, ec.message());
        if (w && volumes) w->remove_anonymous(wiring);
      },
      [this, e, done = std::move(done)] {
        health_->forget(e->rec.id);
        publish(*e, "destroy");
        answer_waiters(*e, true);
        const std::string id = e->rec.id;
        auto subs = std::move(e->subscribers);
        for (auto& [tok, s] : subs) {
          subs_.erase(tok);
          if (s.end) s.end();
        }
        // This callback was moved out of the entry's BlockingCall: the entry may go now.
        entries_.erase(id);
        done(std::nullopt);
        check_shutdown();
      });
}

}  // namespace sandrun::runner
