// The container registry's wiring (container_wiring.h): volumes and networks made at create,
// joined at start, left at exit; networks joined and left by request.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "runner/engine/container_registry.h"
#include "runner/engine/container_registry_entry.h"
#include "runner/net/port_proxy.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {


ContainerRefusal::Kind kind_of(WiringRefusal::Kind k) {
  switch (k) {
    case WiringRefusal::Kind::not_found: return ContainerRefusal::Kind::not_found;
    case WiringRefusal::Kind::conflict: return ContainerRefusal::Kind::conflict;
    case WiringRefusal::Kind::invalid: return ContainerRefusal::Kind::invalid;
  }
  return ContainerRefusal::Kind::failed;
}

ContainerRefusal::Kind kind_of(Refusal r) {
  switch (r) {
    case Refusal::not_found: return ContainerRefusal::Kind::not_found;
    case Refusal::conflict:
    case Refusal::in_use: return ContainerRefusal::Kind::conflict;
    case Refusal::invalid: return ContainerRefusal::Kind::invalid;
    case Refusal::none: break;
  }
  return ContainerRefusal::Kind::failed;
}

// The size option of a tmpfs in fsconfig's words.
std::vector<std::string> tmpfs_options(const TmpfsMount& t) {
  std::vector<std::string> o;
  if (t.size) o.insert(o.end(), {"size", std::to_string(t.size)});
  o.insert(o.end(), {"mode", fmt::format("{:o}", t.mode)});
  return o;
}

}  // namespace

Result<void> ContainerRegistry::wire_create(ContainerRecord& rec, std::optional<ContainerRefusal>& refusal) {
  std::optional<WiringRefusal> why;
  auto r = wiring_->prepare(rec, why);
  if (!r && why) refusal = refuse(kind_of(why->kind), r.error().message());
  return r;
}

Result<void> ContainerRegistry::wire_start(Entry& e, ContainerStart& start) {
  WiredStart& w = *e.wired;
  for (const TmpfsMount& t : e.rec.wiring.tmpfs) {
    sandbox::Bind b;
    b.target = t.target;
    b.tmpfs = true;
    b.tmpfs_options = tmpfs_options(t);
    start.binds.push_back(std::move(b));
  }
  if (!w.hosts.empty()) start.etc_files.emplace_back("hosts", w.hosts);
  e.rec.endpoints = w.endpoints;
  if (w.netns) start.netns_fd = w.netns.get();
  if (e.rec.spec.ports.empty()) return {};
  if (w.publish) {
    // On a network its ports are reached from the network's namespace, at its address there.
    PortProxy::Options o;
    o.inner_host = w.publish->address.str();
    e.proxy = SANDRUN_TRY(PortProxy::open(loop_.get(), w.publish->netns.get(), e.rec.spec.ports, "", o));
  } else if (e.netns) {
    e.proxy = SANDRUN_TRY(PortProxy::open(loop_.get(), e.netns.get(), e.rec.spec.ports, ""));
    start.netns_fd = e.netns.get();
  } else {
    start.ports = e.rec.spec.ports;
    return {};
  }
  e.rec.ports = e.proxy->published();
  return {};
}

void ContainerRegistry::unwire(Entry& e, std::function<void()> then) {
  e.rec.endpoints.clear();
  const WiringSpec& w = e.rec.wiring;
  if (!wiring_ || !e.wired || (!e.wired->netns && w.networks.empty() && w.extra_hosts.empty())) return then();
  e.wiring_call = run_blocking(
      loop_, [w = wiring_, id = e.rec.id](const std::atomic<bool>&) { w->stopped(id); }, std::move(then));
}

void ContainerRegistry::join_network(const std::string& ref, NetworkJoin join, NetDone done) {
  auto fail = [&done](ContainerRefusal r) { answer_refusal(done, std::move(r)); };
  const ContainerRecord* found = find(ref);
  if (!found) return fail(no_such(ref));
  Entry* e = entry(found->id);
  if (!wiring_) return fail(refuse(ContainerRefusal::Kind::failed, "networks are not wired in this engine"));
  for (const auto& n : e->rec.wiring.networks)
    if (n.network_id == join.network_id)
      return fail(refuse(ContainerRefusal::Kind::conflict, fmt::format("endpoint with name {} already exists in network {}",
                                                                      e->rec.name, join.network_name)));
  const bool live = e->live && !e->tearing_down && e->rec.status == ContainerStatus::running && e->live->pid() > 0;
  if (!live) {
    // It joins when it starts.
    e->rec.wiring.networks.push_back(std::move(join));
    save(*e);
    return done(e->rec.id, std::nullopt);
  }
  // Its network namespace: the one the daemon holds, else its own (through its pid, checked
  // alive after the open through its pidfd).
  const pid_t pid = e->live->pid();
  int fd = e->wired && e->wired->netns ? ::fcntl(e->wired->netns.get(), F_DUPFD_CLOEXEC, 3)
                                       : ::open(fmt::format("/proc/{}/ns/net", pid).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::syscall(SYS_pidfd_send_signal, e->live->pidfd(), 0, nullptr, 0) < 0) {
    if (fd >= 0) ::close(fd);
    return fail(refuse(ContainerRefusal::Kind::failed, fmt::format("open the network namespace of container {}", e->rec.id)));
  }
  auto result = std::make_shared<std::optional<Result<LiveEndpoint>>>();
  auto why = std::make_shared<Refusal>(Refusal::none);
  const std::string id = e->rec.id;
  creating_.emplace_back();
  creating_.back() = run_blocking(
      loop_,
      [w = wiring_, id, name = e->rec.name, host = e->plan ? e->plan->container->hostname : e->rec.name, join, pid,
       netns = std::make_shared<UniqueFd>(fd), result, why](const std::atomic<bool>&) {
        *result = w->attach_one(id, name, host, join, netns->get(), why.get());
        if (**result) w->running(id, pid);
      },
      [this, id, join, result, why, done = std::move(done)] {
        Result<LiveEndpoint>& r = **result;
        if (!r) {
          ContainerRefusal refusal = refuse(kind_of(*why), r.error().message());
          Error e = Error::msg("{}", refusal.message);
          done(std::move(e), std::move(refusal));
        } else {
          if (Entry* e = entry(id)) {
            e->rec.wiring.networks.push_back(join);
            e->rec.endpoints.push_back(std::move(*r));
            save(*e);
          }
          done(id, std::nullopt);
        }
        std::erase_if(creating_, [](const BlockingCall& c) { return !c.pending(); });
      });
}

void ContainerRegistry::leave_network(const std::string& ref, const std::string& network_id, NetDone done) {
  auto fail = [&done](ContainerRefusal r) { answer_refusal(done, std::move(r)); };
  const ContainerRecord* found = find(ref);
  if (!found) return fail(no_such(ref));
  Entry* e = entry(found->id);
  auto& nets = e->rec.wiring.networks;
  auto it = std::find_if(nets.begin(), nets.end(), [&](const NetworkJoin& n) { return n.network_id == network_id; });
  if (it == nets.end() || !wiring_)
    return fail(refuse(ContainerRefusal::Kind::conflict,
                       fmt::format("container {} is not connected to network {}", e->rec.id, network_id)));
  nets.erase(it);
  save(*e);
  const std::string id = e->rec.id;
  const bool attached = std::any_of(e->rec.endpoints.begin(), e->rec.endpoints.end(),
                                    [&](const LiveEndpoint& l) { return l.network_id == network_id; });
  if (!attached) return done(id, std::nullopt);
  std::erase_if(e->rec.endpoints, [&](const LiveEndpoint& l) { return l.network_id == network_id; });
  creating_.emplace_back();
  creating_.back() = run_blocking(
      loop_,
      [w = wiring_, id, network_id](const std::atomic<bool>&) {
        if (auto r = w->networks().detach(network_id, id); !r) log::warn("disconnect {}: {}", id, r.error().message());
      },
      [this, id, done = std::move(done)] {
        done(id, std::nullopt);
        std::erase_if(creating_, [](const BlockingCall& c) { return !c.pending(); });
      });
}

}  // namespace sandrun::runner
