// ContainerRegistry at the daemon's start and stop: reading the records an earlier daemon left
// (load), adopting what it left running (--live-restore) and leaving running containers to the
// next daemon at shutdown.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>

#include "runner/engine/container_adopt.h"
#include "runner/engine/container_registry_entry.h"
#include "runner/engine/session.h"
#include "sandbox/proc.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::runner {
namespace {

// Its published ports as they were (the same host ports), from its network namespace, which
// its init holds: opened through /proc, then the pidfd says it is still that process.
Result<void> reopen_ports(uv_loop_t* loop, const ContainerRecord& rec, int pidfd, UniqueFd& netns,
                          std::unique_ptr<PortProxy>& proxy) {
  if (rec.ports.empty()) return {};
  netns = SANDRUN_TRY(sandbox::open_container_netns(rec.pid, pidfd));
  std::vector<config::PortSpec> specs;
  for (const auto& p : rec.ports) {
    config::PortSpec s;
    s.host_ip = p.host_ip;
    s.host_port = p.host_port;
    s.container_port = p.container_port;
    s.text = fmt::format("{}:{}:{}", p.host_ip, p.host_port, p.container_port);
    specs.push_back(std::move(s));
  }
  proxy = SANDRUN_TRY(std::move(PortProxy::open(loop, netns.get(), specs, "")).wrap("publish its ports again"));
  return {};
}

}  // namespace

ContainerRecord::Live ContainerRegistry::live_state_of(const Container& c) {
  return ContainerRecord::Live{sandbox::process_start_time(c.pid()), c.slot_dir(), c.cgroup_path()};
}

Result<void> ContainerRegistry::load() {
  const std::string base = fs::join(options_.root, "containers");
  if (::mkdir(base.c_str(), 0700) < 0 && errno != EEXIST) return Error::sys("create {}", base);
  std::error_code ec;
  for (const auto& d : std::filesystem::directory_iterator(base, ec)) {
    const std::string dir = d.path().string();
    auto rec = load_record(dir);
    if (!rec) {
      log::warn("containers: skipping {}: {}", dir, rec.error().message());
      continue;
    }
    auto e = std::make_unique<Entry>();
    e->rec = std::move(*rec);
    e->dir = dir;
    e->owner = this;
    if (e->rec.status == ContainerStatus::running && options_.live_restore && e->rec.live.pid_start) {
      if (restore(*e)) {
        const std::string id = e->rec.id;
        // Its health checks go on, from `starting` (their log stayed with the earlier daemon).
        if (e->rec.health) health_->started(id, *e->rec.health);
        entries_.emplace(id, std::move(e));
        continue;
      }
    }
    if (e->rec.status == ContainerStatus::running || e->rec.status == ContainerStatus::removing) {
      // It ran under an earlier daemon, which is gone: so is the container (swept). One that
      // outlived it (--live-restore) and is not adopted now ends here.
      if (e->rec.live.pid_start) end_unadopted(e->rec);
      e->rec.live = {};
      e->rec.ports.clear();
      e->rec.status = ContainerStatus::exited;
      e->rec.exit_code = 255;
      e->rec.error = "the daemon that ran it stopped";
      e->rec.finished_ns = now_ns();
      e->rec.pid = 0;
      if (auto r = save_record(dir, e->rec); !r) log::warn("containers: {}", r.error().message());
    }
    if (e->rec.auto_remove && e->rec.status == ContainerStatus::exited) {
      std::filesystem::remove_all(dir, ec);
      continue;
    }
    const std::string id = e->rec.id;
    entries_.emplace(id, std::move(e));
  }
  // One clean slot ready (and ROOT/slots made) before the first start; after the adoptions,
  // which took their slots back first (a claim cleans an unlocked slot it finds in use).
  SANDRUN_TRY(engine_->slots().reserve(1));
  return {};
}

bool ContainerRegistry::restore(Entry& e) {
  auto adopted = [&]() -> Result<void> {
    auto parts = SANDRUN_TRY(adopt_container(e.rec, engine_->slots(), engine_->cgroups()));
    const int pidfd = parts.pidfd.get();
    auto ended = [&](Error err) -> Error {
      (void)sys::pidfd_send_signal(pidfd, SIGKILL);  // it cannot be followed: it ends
      return err;
    };
    auto prepared = prepare_jobs(store_, {e.rec.spec}, cache::PullOptions{}, options_.host);
    if (!prepared) return ended(std::move(prepared.error()));
    e.plan = std::move(prepared->plans.front());
    e.leases = std::move(prepared->leases);
    const uint64_t log_max = e.rec.spec.log_max.value_or(options_.host.defaults.log_max.value_or(config::kDefaultLogMax));
    e.log = std::make_unique<ContainerLog>(e.dir, log_max);
    if (auto r = e.log->open(); !r) return ended(std::move(r.error()));
    if (auto r = reopen_ports(loop_.get(), e.rec, pidfd, e.netns, e.proxy); !r) return ended(std::move(r.error()));
    e.live = Container::adopt(*engine_, e.plan->container, std::move(parts),
                              JobOutput(e.rec.name, 0, ConsoleMode::none, nullptr), hooks_for(e));
    return {};
  }();
  if (!adopted) {
    log::warn("containers: {:?} ({}) left running by an earlier daemon cannot be adopted: {}", e.rec.name,
              e.rec.id.substr(0, 12), adopted.error().message());
    e.log.reset();
    e.proxy.reset();
    e.netns.reset();
    return false;
  }
  log::info("containers: adopted {:?} ({}), pid {}", e.rec.name, e.rec.id.substr(0, 12), e.rec.pid);
  return true;
}

void ContainerRegistry::rejoin_networks() {
  if (!wiring_) return;
  for (auto& [id, e] : entries_) {
    const WiringSpec& w = e->rec.wiring;
    if (!e->live || e->rec.status != ContainerStatus::running || (w.networks.empty() && w.extra_hosts.empty())) continue;
    auto joined = [&]() -> Result<WiredStart> {
      const pid_t pid = e->live->pid();
      UniqueFd netns = SANDRUN_TRY(sandbox::open_container_netns(pid, e->live->pidfd()));
      WiredStart wired = SANDRUN_TRY(wiring_->rejoin(e->rec, e->plan->container->hostname, netns.get(), pid));
      wired.netns = std::move(netns);
      return wired;
    }();
    if (!joined) {
      log::warn("containers: {:?} ({}) runs on without its networks: {}", e->rec.name, id.substr(0, 12),
                joined.error().message());
      continue;
    }
    e->rec.endpoints = joined->endpoints;
    e->wired = std::move(*joined);
    save(*e);
  }
}

bool ContainerRegistry::detach(Entry& e) {
  if (e.starting || !e.live || e.tearing_down || !e.live->detach()) return false;
  // What the log holds of an unfinished line is written as it is: the next daemon goes on
  // from the pipe's next byte.
  if (e.log) {
    e.log->finish(now_ns(), [](const LogRecord&) {});
    e.log->close();
  }
  e.proxy.reset();  // its ports are refused until the next daemon publishes them again
  e.netns.reset();
  e.kill_timer = UvHandle<uv_timer_t>();
  auto subs = std::move(e.subscribers);
  for (auto& [tok, s] : subs) {
    subs_.erase(tok);
    if (s.end) s.end();
  }
  graveyard_.push_back(std::move(e.live));
  uv_timer_start(reaper_.get(), on_reap, 0, 0);
  log::info("containers: {:?} ({}) left running for the next daemon (--live-restore)", e.rec.name, e.rec.id.substr(0, 12));
  return true;
}

std::set<std::string> ContainerRegistry::adopted_cgroups() const {
  std::set<std::string> runs;
  for (const auto& [id, e] : entries_) {
    if (e->live && !e->rec.live.cgroup.empty()) runs.insert(e->rec.live.cgroup);
  }
  return runs;
}

}  // namespace sandrun::runner
