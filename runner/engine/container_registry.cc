// The daemon's long-lived containers: records, starts, stops, exits, removal, waiters.
#include "runner/engine/container_registry.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "runner/engine/container_adopt.h"
#include "runner/engine/container_registry_entry.h"
#include "runner/engine/session.h"
#include "runner/net/port_proxy.h"
#include "sandbox/netns.h"
#include "sandbox/userns.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {

namespace {


int exit_code_of(const Container& c, std::string* error) {
  if (c.start_error()) {
    *error = c.start_error()->message();
    return 125;
  }
  const sandbox::Outcome o = c.outcome();
  switch (o.kind) {
    case sandbox::Outcome::Kind::exited: return o.code;
    case sandbox::Outcome::Kind::signaled: return 128 + o.signal;
    case sandbox::Outcome::Kind::exec_failed:
      *error = o.error ? o.error->message() : "exec failed";
      return o.error && o.error->code() == EACCES ? 126 : 127;
    case sandbox::Outcome::Kind::setup_failed:
      *error = o.error ? o.error->message() : "setup failed";
      return 125;
  }
  return 125;
}

// Image lookup as Docker's: a missing image is "No such image" (the client pulls it), except
// the built-in busybox, made on first use.
Result<cache::ImageRecord> image_for(cache::Store& store, const std::string& ref, std::optional<ContainerRefusal>& refusal) {
  if (auto found = SANDRUN_TRY(store.find(ref))) return std::move(*found);
  const cache::ImageRef parsed = SANDRUN_TRY(cache::parse_ref(ref));
  if (parsed.name == cache::kBuiltinImage && parsed.registry().empty()) return store.ensure(ref);
  refusal = refuse(ContainerRefusal::Kind::not_found, fmt::format("No such image: {}", ref));
  return Error::msg("No such image: {}", ref);
}

}  // namespace

ContainerRegistry::ContainerRegistry(Loop& loop, cache::Store store, Options options)
    : loop_(loop), store_(std::move(store)), options_(std::move(options)), budget_(options_.max_running) {
  isolation_ = std::make_unique<HostIsolation>(HostIsolation::probe());
  engine_ = std::make_unique<Engine>(loop_, options_.root, isolation_->cgroups.get(), options_.live_restore);
  health_ = std::make_unique<HealthMonitor>(
      loop_, *engine_, [this](const std::string& id) { return running(id); },
      [this](const std::string& id, HealthStatus s) {
        if (Entry* e = entry(id)) publish(*e, fmt::format("health_status: {}", health_status_name(s)));
      });
  uv_timer_init(loop_.get(), reaper_.get());
  reaper_.mark_live();
  reaper_.get()->data = this;
}

ContainerRegistry::~ContainerRegistry() = default;

std::string ContainerRegistry::dir_of(const std::string& id) const {
  return fs::join(fs::join(options_.root, "containers"), id);
}

ContainerRegistry::Entry* ContainerRegistry::entry(const std::string& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : it->second.get();
}

const ContainerRecord* ContainerRegistry::find(std::string_view ref) const {
  if (ref.empty()) return nullptr;
  if (auto it = entries_.find(std::string(ref)); it != entries_.end()) return &it->second->rec;
  const std::string_view name = ref.front() == '/' ? ref.substr(1) : ref;
  for (const auto& [id, e] : entries_) {
    if (e->rec.name == name) return &e->rec;
  }
  const ContainerRecord* found = nullptr;
  for (const auto& [id, e] : entries_) {
    if (!id.starts_with(ref)) continue;
    if (found) return nullptr;  // ambiguous
    found = &e->rec;
  }
  return found;
}

ContainerRefusal ContainerRegistry::no_such(std::string_view ref) const {
  return refuse(ContainerRefusal::Kind::not_found, fmt::format("No such container: {}", ref));
}

std::vector<const ContainerRecord*> ContainerRegistry::list() const {
  std::vector<const ContainerRecord*> out;
  for (const auto& [id, e] : entries_) out.push_back(&e->rec);
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->created_ns > b->created_ns; });
  return out;
}

ContainerRegistry::Counts ContainerRegistry::counts() const {
  Counts c;
  for (const auto& [id, e] : entries_) {
    ++c.total;
    if (e->rec.status == ContainerStatus::running) ++c.running;
    else ++c.stopped;
  }
  return c;
}

LiveInfo ContainerRegistry::live(const std::string& id) const {
  Entry* e = entry(id);
  if (!e || !e->live || e->tearing_down) return {};
  return LiveInfo{e->live->pid(), e->live->cgroup()};
}

Container* ContainerRegistry::running(const std::string& id) const {
  Entry* e = entry(id);
  if (!e || !e->live || e->tearing_down || e->rec.status != ContainerStatus::running) return nullptr;
  const Container::State st = e->live->state();
  return st == Container::State::running || st == Container::State::stopping ? e->live.get() : nullptr;
}

void ContainerRegistry::create(CreateRequest req, std::function<void(Result<std::string>, std::optional<ContainerRefusal>)> done) {
  auto fail = [&done](ContainerRefusal r) { answer_refusal(done, std::move(r)); };
  if (shutting_down_) return fail(refuse(ContainerRefusal::Kind::conflict, "the daemon is shutting down"));
  const std::string id = new_container_id();
  if (req.name.empty()) req.name = default_container_name(id);
  if (!req.name.empty() && req.name.front() == '/') req.name.erase(0, 1);
  if (!valid_container_name(req.name))
    return fail(refuse(ContainerRefusal::Kind::invalid, fmt::format("Invalid container name ({}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                                                           "are allowed", req.name)));
  const ContainerRecord* taken = find("/" + req.name);
  if ((taken && taken->name == req.name) || reserved_names_.count(req.name)) {
    return fail(refuse(ContainerRefusal::Kind::conflict,
                       fmt::format("Conflict. The container name \"/{}\" is already in use by container \"{}\". You have "
                                   "to remove (or rename) that container to be able to reuse that name.",
                                   req.name, taken ? taken->id : std::string("(being created)"))));
  }
  reserved_names_.insert(req.name);
  auto e = std::make_shared<std::unique_ptr<Entry>>(std::make_unique<Entry>());
  Entry& en = **e;
  en.owner = this;
  en.dir = dir_of(id);
  en.rec.id = id;
  en.rec.name = req.name;
  en.rec.labels = std::move(req.labels);
  en.rec.client = std::move(req.client);
  en.rec.auto_remove = req.auto_remove;
  en.rec.health = std::move(req.health);
  en.rec.open_stdin = req.open_stdin;
  en.rec.stdin_once = req.stdin_once;
  en.rec.tty = req.tty;
  if (req.tty_rows && req.tty_cols) en.tty_size = sandbox::TtySize{req.tty_rows, req.tty_cols};
  en.rec.created_ns = now_ns();
  en.rec.wiring = std::move(req.wiring);
  if (!en.rec.wiring.empty() && !wiring_) {
    reserved_names_.erase(req.name);
    return fail(refuse(ContainerRefusal::Kind::invalid, "volumes and networks are not wired in this engine"));
  }
  req.spec.name = req.spec.base_name = req.name;
  req.spec.pull = config::PullPolicy::never;
  en.rec.spec = std::move(req.spec);
  auto refusal = std::make_shared<std::optional<ContainerRefusal>>();
  auto error = std::make_shared<std::optional<Error>>();
  auto dirs = std::make_shared<std::vector<std::string>>(std::move(req.make_dirs));
  creating_.emplace_back();
  BlockingCall& call = creating_.back();
  call = run_blocking(
      loop_,
      [this, e, refusal, error, dirs](const std::atomic<bool>&) {
        Entry& en = **e;
        auto r = [&]() -> Result<void> {
          for (const auto& d : *dirs) {
            // Made only when missing, as Docker: an existing source of any type (a file, the
            // daemon's own socket for `-v /var/run/docker.sock:...`) is bound as it is.
            std::error_code ec;
            if (std::filesystem::exists(d, ec)) continue;
            std::filesystem::create_directories(d, ec);
            if (ec) return Error::sys_code(ec.value(), "create the bind source {}", d);
          }
          const cache::ImageRecord image = SANDRUN_TRY(image_for(store_, en.rec.spec.image, *refusal));
          en.rec.image_id = image.id;
          if (wiring_) SANDRUN_TRY(wire_create(en.rec, *refusal));
          auto prepared = prepare_jobs(store_, {en.rec.spec}, cache::PullOptions{}, options_.host);
          if (!prepared) {
            *refusal = refuse(ContainerRefusal::Kind::invalid, prepared.error().message());
            return std::move(prepared.error());
          }
          en.plan = std::move(prepared->plans.front());
          en.leases = std::move(prepared->leases);
          if (::mkdir(en.dir.c_str(), 0700) < 0) return Error::sys("create {}", en.dir);
          return save_record(en.dir, en.rec);
        }();
        if (!r) *error = std::move(r.error());
      },
      [this, e, refusal, error, done = std::move(done), name = req.name] {
        reserved_names_.erase(name);
        if (*refusal || *error) {
          ContainerRefusal out = *refusal ? **refusal : refuse(ContainerRefusal::Kind::failed, (*error)->message());
          done(Error::msg("{}", out.message), std::move(out));
        } else {
          const std::string id = (*e)->rec.id;
          publish(**e, "create");
          entries_.emplace(id, std::move(*e));
          done(id, std::nullopt);
        }
        std::erase_if(creating_, [](const BlockingCall& c) { return !c.pending(); });
      });
}

void ContainerRegistry::start(const std::string& id, Done done) {
  Entry* e = entry(id);
  if (!e) return done(no_such(id));
  if (e->running()) return done(refuse(ContainerRefusal::Kind::not_modified, "container already started"));
  if (shutting_down_) return done(refuse(ContainerRefusal::Kind::conflict, "the daemon is shutting down"));
  if (e->rec.status == ContainerStatus::removing)
    return done(refuse(ContainerRefusal::Kind::conflict, fmt::format("container {} is marked for removal and cannot be started", id)));
  e->starting = true;
  e->start_done.push_back(std::move(done));
  after_teardown(*e, [this, e] { admit(*e); });
}

void ContainerRegistry::admit(Entry& e) {
  const std::string id = e.rec.id;
  budget_.admit(id, [this, id] {
    Entry* p = entry(id);
    if (!p) return budget_.release();
    p->has_place = true;
    launch(*p);
  });
  if (budget_.queued(id))
    log::info("containers: {} waits for its turn to start (-j {}: {} running, {} waiting)", e.rec.name, budget_.max(),
              budget_.in_use(), budget_.waiting());
}

void ContainerRegistry::release_place(Entry& e) {
  if (!e.has_place) return;
  e.has_place = false;
  budget_.release();
}

void ContainerRegistry::give_up_queued(Entry& e) {
  e.starting = false;
  auto starts = std::move(e.start_done);
  for (auto& d : starts) d(refuse(ContainerRefusal::Kind::conflict, "container stopped before its turn to start came"));
  auto subs = std::move(e.subscribers);
  for (auto& [tok, s] : subs) {
    subs_.erase(tok);
    if (s.end) s.end();
  }
  answer_waiters(e, false);
  check_shutdown();
}

// Prepares (on the threadpool: the log file, the plan of a record an earlier daemon made)
// and starts a fresh Container.
void ContainerRegistry::launch(Entry& en) {
  Entry* e = &en;
  const uint64_t log_max = e->rec.spec.log_max.value_or(
      options_.host.defaults.log_max.value_or(config::kDefaultLogMax));
  if (!e->log) e->log = std::make_unique<ContainerLog>(e->dir, log_max);
  auto error = std::make_shared<std::optional<Error>>();
  e->work = run_blocking(
      loop_,
      [this, e, error](const std::atomic<bool>&) {
        auto r = [&]() -> Result<void> {
          if (!e->plan) {
            auto prepared = SANDRUN_TRY(prepare_jobs(store_, {e->rec.spec}, cache::PullOptions{}, options_.host));
            e->plan = std::move(prepared.plans.front());
            e->leases = std::move(prepared.leases);
          }
          // As root its published ports are reached through a namespace the daemon makes (as a
          // pod's); rootless, through the container's own socket factory.
          SANDRUN_TRY(e->log->open());
          // On user networks (or with extra hosts): the namespace its networks are attached to.
          if (wiring_) e->wired = SANDRUN_TRY(wiring_->attach(e->rec, e->plan->container->hostname));
          if (!e->rec.spec.ports.empty() && ::geteuid() == 0 && !(e->wired && e->wired->netns))
            e->netns = SANDRUN_TRY(sandbox::create_container_netns());
          return {};
        }();
        if (!r) *error = std::move(r.error());
      },
      [this, e, error] {
        ContainerStart start;
        start.stdin_pipe = e->rec.open_stdin;
        if (e->rec.tty) start.tty = e->tty_size.value_or(sandbox::TtySize{});
        if (!e->archives.empty()) start.prepare_layer = archives_applier(*e);
        e->rec.ports.clear();
        if (!*error && e->wired) {
          if (auto r = wire_start(*e, start); !r) *error = std::move(r.error());
        } else if (!*error && e->netns) {
          auto proxy = PortProxy::open(loop_.get(), e->netns.get(), e->rec.spec.ports, "");
          if (proxy) {
            e->proxy = std::move(*proxy);
            e->rec.ports = e->proxy->published();
            start.netns_fd = e->netns.get();
          } else {
            *error = std::move(proxy.error());
          }
        } else if (!e->rec.spec.ports.empty()) {
          start.ports = e->rec.spec.ports;
        }
        if (*error) {
          e->starting = false;
          e->proxy.reset();
          e->netns.reset();
          if (e->wired && wiring_) {
            e->wired.reset();
            e->rec.endpoints.clear();
            e->wiring_call = run_blocking(loop_, [w = wiring_, id = e->rec.id](const std::atomic<bool>&) { w->stopped(id); }, [] {});
          }
          e->rec.error = (*error)->message();
          release_place(*e);
          auto done = std::move(e->start_done);
          for (auto& d : done) d(refuse(ContainerRefusal::Kind::failed, e->rec.error));
          return save(*e);
        }
        start.survive_daemon = options_.live_restore;
        e->live = std::make_unique<Container>(*engine_, e->plan->container, std::move(start),
                                              JobOutput(e->rec.name, 0, ConsoleMode::none, nullptr), hooks_for(*e));
        give_pending_stdin(*e);
        e->rec.error.clear();
        e->live->start();
      });
}

Container::Hooks ContainerRegistry::hooks_for(Entry& en) {
  Entry* e = &en;
  Container::Hooks hooks;
  hooks.port_published = [e](const PublishedPort& p) { e->rec.ports.push_back(p); };
  hooks.running = [this, e] { on_running(*e); };
  hooks.exited = [this, e] { on_exited(*e); };
  hooks.removed = [this, e] { on_removed(*e); };
  hooks.output = [e](int stream, std::string_view data) {
    const int64_t t = now_ns();
    e->each_subscriber([&](Subscriber& s) {
      if (s.bytes) s.bytes(stream, data);
    });
    e->log->write(stream, data, t, [e](const LogRecord& r) {
      e->each_subscriber([&](Subscriber& s) {
        if (s.record) s.record(r);
      });
    });
  };
  hooks.stdin_drained = [this, e] { stdin_drained(*e); };
  return hooks;
}

void ContainerRegistry::on_running(Entry& e) {
  e.starting = false;
  e.rec.status = ContainerStatus::running;
  e.rec.started_ns = now_ns();
  e.rec.finished_ns = 0;
  e.rec.pid = e.live->pid();
  if (options_.live_restore) e.rec.live = live_state_of(*e.live);
  publish(e, "start");
  if (e.rec.health) health_->started(e.rec.id, *e.rec.health);
  if (wiring_ && e.wired && e.wired->netns) {
    e.wiring_call = run_blocking(loop_, [w = wiring_, id = e.rec.id, pid = e.rec.pid](const std::atomic<bool>&) {
      w->running(id, pid);
    }, [] {});
  }
  // Answered once the record says it runs: a daemon killed after the answer keeps that.
  Entry* p = &e;
  save(e, [p] {
    auto done = std::move(p->start_done);
    for (auto& d : done) d(std::nullopt);
  });
  // A stop or a shutdown that came while it was starting.
  if (shutting_down_) e.live->stop(SIGTERM);
}

void ContainerRegistry::on_exited(Entry& e) {
  const bool was_starting = e.starting;
  e.starting = false;
  e.tearing_down = true;
  e.kill_timer = UvHandle<uv_timer_t>();  // closed; a fresh one for the next stop
  e.rec.exit_code = exit_code_of(*e.live, &e.rec.error);
  e.rec.oom_killed = e.live->usage().oom_killed;
  e.rec.status = ContainerStatus::exited;
  e.rec.finished_ns = now_ns();
  if (!e.rec.started_ns) e.rec.started_ns = e.rec.finished_ns;
  e.rec.pid = 0;
  e.rec.live = {};
  e.rec.ports.clear();
  e.proxy.reset();  // its published ports close with it
  health_->stopped(e.rec.id);
  if (e.log) {
    e.log->finish(e.rec.finished_ns, [&e](const LogRecord& r) {
      e.each_subscriber([&](Subscriber& s) {
        if (s.record) s.record(r);
      });
    });
    e.log->close();
  }
  save(e);
  if (e.rec.oom_killed) publish(e, "oom");
  publish(e, "die", {{"exitCode", std::to_string(e.rec.exit_code)}});
  if (!e.stop_done.empty()) publish(e, "stop");
  if (was_starting) {
    auto done = std::move(e.start_done);
    for (auto& d : done) d(refuse(ContainerRefusal::Kind::failed, e.rec.error.empty() ? "the container could not start" : e.rec.error));
  }
  auto subs = std::move(e.subscribers);
  for (auto& [tok, s] : subs) {
    subs_.erase(tok);
    if (s.end) s.end();
  }
  auto stops = std::move(e.stop_done);
  for (auto& d : stops) d(std::nullopt);
  answer_waiters(e, false);
  unwire(e, [p = &e] { p->live->remove(); });
}

void ContainerRegistry::on_removed(Entry& e) {
  graveyard_.push_back(std::move(e.live));
  e.netns.reset();
  e.wired.reset();
  uv_timer_start(reaper_.get(), on_reap, 0, 0);
  e.tearing_down = false;
  release_place(e);
  auto after = std::move(e.after_teardown);
  for (auto& f : after) f();
  if (e.rec.auto_remove && !e.running() && e.rec.status == ContainerStatus::exited && !shutting_down_) {
    erase(e, [](std::optional<ContainerRefusal>) {});
    return;
  }
  check_shutdown();
}

void ContainerRegistry::on_reap(uv_timer_t* t) { static_cast<ContainerRegistry*>(t->data)->graveyard_.clear(); }

void ContainerRegistry::after_teardown(Entry& e, std::function<void()> f) {
  if (e.tearing_down) return e.after_teardown.push_back(std::move(f));
  f();
}

void ContainerRegistry::save(Entry& e, std::function<void()> then) {
  if (then) e.saved.push_back(std::move(then));
  if (e.saving.pending()) {
    e.save_again = true;
    return;
  }
  Entry* p = &e;
  e.saving = run_blocking(
      loop_,
      [dir = e.dir, rec = e.rec](const std::atomic<bool>&) {
        if (auto r = save_record(dir, rec); !r) log::warn("containers: {}", r.error().message());
      },
      [this, p] {
        if (p->save_again && !p->after_save) {
          p->save_again = false;
          return save(*p);
        }
        auto saved = std::move(p->saved);
        auto after = std::move(p->after_save);
        p->after_save = nullptr;
        for (auto& f : saved) f();
        if (after) after();  // the entry may go here
      });
}

uint64_t ContainerRegistry::wait(const std::string& id, WaitCondition condition, std::function<void(int)> done) {
  Entry* e = entry(id);
  if (!e) return 0;
  if (condition == WaitCondition::not_running && !e->running()) {
    done(e->rec.exit_code);
    return 0;
  }
  const uint64_t token = next_token_++;
  e->waiters.push_back(Entry::Waiter{token, condition, std::move(done)});
  waits_[token] = id;
  return token;
}

void ContainerRegistry::cancel_wait(uint64_t token) {
  auto it = waits_.find(token);
  if (it == waits_.end()) return;
  if (Entry* e = entry(it->second)) std::erase_if(e->waiters, [token](const Entry::Waiter& w) { return w.token == token; });
  waits_.erase(it);
}

void ContainerRegistry::answer_waiters(Entry& e, bool removed) {
  std::vector<Entry::Waiter> ready, left;
  for (auto& w : e.waiters) (!removed && w.condition == WaitCondition::removed ? left : ready).push_back(std::move(w));
  e.waiters = std::move(left);
  for (auto& w : ready) {
    waits_.erase(w.token);
    w.done(e.rec.exit_code);
  }
}

uint64_t ContainerRegistry::subscribe(const std::string& id, Subscriber s) {
  Entry* e = entry(id);
  if (!e) return 0;
  const uint64_t token = next_token_++;
  e->subscribers.emplace(token, std::move(s));
  subs_[token] = id;
  return token;
}

std::optional<uint64_t> ContainerRegistry::log_position(const std::string& id) const {
  Entry* e = entry(id);
  if (!e || !e->log || !e->log->is_open()) return std::nullopt;
  return e->log->size();
}

bool ContainerRegistry::active(const std::string& id) const {
  Entry* e = entry(id);
  return e && e->running();
}

void ContainerRegistry::unsubscribe(uint64_t token) {
  auto it = subs_.find(token);
  if (it == subs_.end()) return;
  if (Entry* e = entry(it->second)) {
    if (e->iterating) e->unsubscribed.push_back(token);
    else e->subscribers.erase(token);
  }
  subs_.erase(it);
}

void ContainerRegistry::shutdown(std::function<void()> done) {
  shutting_down_ = true;
  shutdown_done_ = std::move(done);
  creating_.clear();
  for (auto& [id, e] : entries_) {
    if (!e->running()) continue;
    // --live-restore: what can outlive the daemon goes on running, for the next one to adopt.
    if (options_.live_restore && detach(*e)) continue;
    stop(id, options_.shutdown_grace, [](std::optional<ContainerRefusal>) {});
  }
  check_shutdown();
}

void ContainerRegistry::publish(const Entry& e, std::string action, std::map<std::string, std::string> extra) {
  if (!events_) return;
  EngineEvent ev;
  ev.type = "container";
  ev.action = std::move(action);
  ev.id = e.rec.id;
  ev.attributes = e.rec.labels;
  ev.attributes["name"] = e.rec.name;
  ev.attributes["image"] = e.rec.spec.image;
  for (auto& [k, v] : extra) ev.attributes[k] = std::move(v);
  events_->publish(std::move(ev));
}

void ContainerRegistry::release_host() {
  // A live engine's containers each have a cgroup run of their own, removed with them; those
  // left running keep theirs.
  if (!isolation_->cgroups || options_.live_restore) return;
  if (auto r = isolation_->cgroups->remove_run(engine_->run_id()); !r) log::warn("{}", r.error().message());
}

void ContainerRegistry::check_shutdown() {
  if (!shutting_down_ || !shutdown_done_) return;
  for (auto& [id, e] : entries_) {
    if (e->running() || e->tearing_down || e->live || e->work.pending()) return;
  }
  reaper_.close();
  auto d = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  d();
}

}  // namespace sandrun::runner
