// A daemon container's volumes, tmpfs mounts and user networks: made at create, joined at
// start, left at exit, removed with it.
#include "runner/engine/container_wiring.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "runner/engine/container_record.h"
#include "runner/engine/volumes.h"
#include "sandbox/netns.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"
#include "sandbox/userns.h"

namespace sandrun::runner {

using nlohmann::json;

json wiring_to_json(const WiringSpec& w) {
  json j = json::object();
  json vols = json::array();
  for (const auto& v : w.volumes)
    vols.push_back({{"name", v.name}, {"target", v.target}, {"ro", v.readonly}, {"anonymous", v.anonymous},
                    {"labels", v.labels}, {"mode", v.mode}});
  j["volumes"] = vols;
  json tmpfs = json::array();
  for (const auto& t : w.tmpfs)
    tmpfs.push_back({{"target", t.target}, {"size", t.size}, {"mode", t.mode}, {"options", t.options}});
  j["tmpfs"] = tmpfs;
  json nets = json::array();
  for (const auto& n : w.networks) {
    json e = {{"id", n.network_id}, {"name", n.network_name}, {"aliases", n.aliases}};
    if (n.ipv4) e["ipv4"] = *n.ipv4;
    nets.push_back(e);
  }
  j["networks"] = nets;
  json hosts = json::array();
  for (const auto& [name, addr] : w.extra_hosts) hosts.push_back({name, addr});
  j["extra_hosts"] = hosts;
  return j;
}

WiringSpec wiring_from_json(const json& j) {
  WiringSpec w;
  if (!j.is_object()) return w;
  for (const auto& v : j.value("volumes", json::array()))
    w.volumes.push_back({v.value("name", ""), v.value("target", ""), v.value("ro", false), v.value("anonymous", false),
                         v.value("labels", std::map<std::string, std::string>{}), v.value("mode", "")});
  for (const auto& t : j.value("tmpfs", json::array()))
    w.tmpfs.push_back({t.value("target", ""), t.value("size", uint64_t{0}), t.value("mode", 01777u), t.value("options", "")});
  for (const auto& n : j.value("networks", json::array())) {
    NetworkJoin join{n.value("id", ""), n.value("name", ""), n.value("aliases", std::vector<std::string>{}), {}};
    if (n.contains("ipv4")) join.ipv4 = n["ipv4"].get<std::string>();
    w.networks.push_back(std::move(join));
  }
  for (const auto& h : j.value("extra_hosts", json::array()))
    w.extra_hosts.emplace_back(h.at(0).get<std::string>(), h.at(1).get<std::string>());
  return w;
}

ContainerWiring::ContainerWiring(std::shared_ptr<VolumeStore> volumes, Networks& networks)
    : volumes_(std::move(volumes)), networks_(networks) {}

std::pair<uid_t, gid_t> ContainerWiring::volumes_owner(const config::JobSpec& spec) {
  if (::geteuid() != 0) return {::geteuid(), ::getegid()};
  if (spec.userns == false) return {0, 0};
  const sandbox::UserNamespace ns = sandbox::userns::remapped_root();
  if (!ns.enabled && ns.uid_map.empty()) return {0, 0};
  return {sandbox::userns::to_host(ns.uid_map, 0).value_or(0), sandbox::userns::to_host(ns.gid_map, 0).value_or(0)};
}

Result<void> ContainerWiring::prepare(ContainerRecord& rec, std::optional<WiringRefusal>& refusal) {
  WiringSpec& w = rec.wiring;
  if (!w.volumes.empty()) {
    const auto [uid, gid] = volumes_owner(rec.spec);
    for (VolumeMount& v : w.volumes) {
      std::string dir;
      if (v.anonymous && v.name.empty()) {
        const Volume made = SANDRUN_TRY(volumes_->create("", v.labels, uid, gid));
        v.name = made.name;
      } else if (!VolumeStore::valid_name(v.name)) {
        refusal = WiringRefusal{WiringRefusal::Kind::invalid};
        return Error::msg("create {}: \"{}\" includes invalid characters for a local volume name, only "
                          "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use "
                          "absolute path", v.name, v.name);
      } else if (!v.labels.empty() && !SANDRUN_TRY(volumes_->find(v.name))) {
        SANDRUN_TRY(volumes_->create(v.name, v.labels, uid, gid));
      }
      dir = SANDRUN_TRY(volumes_->mount_dir(v.name, uid, gid));
      rec.spec.volumes.push_back({dir, v.target, v.readonly});
    }
  }
  for (NetworkJoin& n : w.networks) {
    Refusal why = Refusal::none;
    auto found = networks_.inspect(n.network_id.empty() ? n.network_name : n.network_id, &why);
    if (!found) {
      if (why == Refusal::not_found) {
        refusal = WiringRefusal{WiringRefusal::Kind::not_found};
        return Error::msg("network {} not found", n.network_name);
      }
      refusal = WiringRefusal{WiringRefusal::Kind::invalid};
      return std::move(found.error());
    }
    n.network_id = found->record.id;
    n.network_name = found->record.name;
  }
  return {};
}

namespace {

LiveEndpoint live_of(const NetworkInfo& net, const EndpointInfo& ep) {
  return LiveEndpoint{net.record.id, net.record.name, ep, net.record.gateway, net.record.subnet.prefix};
}

}  // namespace

Result<WiredStart> ContainerWiring::attach(const ContainerRecord& rec, const std::string& hostname) {
  const std::string& id = rec.id;
  WiredStart out;
  if (rec.wiring.networks.empty() && rec.wiring.extra_hosts.empty()) return out;  // the common case: nothing
  networks_.detach_all(id);  // what an earlier start of it may have left
  {
    std::lock_guard lock(mu_);
    pids_.erase(id);
    extra_[id] = rec.wiring.extra_hosts;
  }
  if (!rec.wiring.networks.empty()) {
    out.netns = SANDRUN_TRY(sandbox::create_container_netns());
    for (const NetworkJoin& join : rec.wiring.networks) {
      Refusal why = Refusal::none;
      auto ep = attach_one(id, rec.name, hostname, join, out.netns.get(), &why);
      if (!ep) {
        networks_.detach_all(id);
        return std::move(ep.error().wrap(fmt::format("connect to network {}", join.network_name)));
      }
      out.endpoints.push_back(std::move(*ep));
    }
    out.publish = SANDRUN_TRY(networks_.publish_target(id));
  }
  if (!rec.wiring.networks.empty() || !rec.wiring.extra_hosts.empty()) out.hosts = hosts_file(id, rec.wiring);
  return out;
}

Result<WiredStart> ContainerWiring::rejoin(const ContainerRecord& rec, const std::string& hostname, int netns_fd,
                                           pid_t pid) {
  const std::string& id = rec.id;
  WiredStart out;
  {
    std::lock_guard lock(mu_);
    extra_[id] = rec.wiring.extra_hosts;
  }
  auto joined = [&]() -> Result<void> {
    if (rec.wiring.networks.empty()) return {};
    SANDRUN_TRY(std::move(remove_network_links(netns_fd)).wrap("remove its old links"));
    for (const NetworkJoin& join : rec.wiring.networks) {
      Refusal why = Refusal::none;
      auto ep = attach_one(id, rec.name, hostname, join, netns_fd, &why);
      if (!ep) return std::move(ep.error().wrap(fmt::format("connect to network {} again", join.network_name)));
      out.endpoints.push_back(std::move(*ep));
    }
    out.publish = SANDRUN_TRY(networks_.publish_target(id));
    return {};
  }();
  if (!joined) {
    stopped(id);  // on none of them, and nothing of it kept here
    return std::move(joined.error());
  }
  running(id, pid);
  return out;
}

Result<LiveEndpoint> ContainerWiring::attach_one(const std::string& id, const std::string& name,
                                                 const std::string& hostname, const NetworkJoin& join, int netns_fd,
                                                 Refusal* why) {
  Attachment a;
  a.container_id = id;
  a.name = name;
  a.hostname = hostname;
  a.aliases = join.aliases;
  a.netns_fd = netns_fd;
  a.address = join.ipv4;
  a.write_etc = writer_for(id);
  const EndpointInfo ep = SANDRUN_TRY(networks_.attach(join.network_id, a, why));
  auto net = networks_.inspect(join.network_id);
  if (!net) return std::move(net.error());
  return live_of(*net, ep);
}

EtcWriter ContainerWiring::writer_for(const std::string& id) {
  // Called with the networks' lock held: it takes only mu_ (never the other way round).
  return [this, id](const std::string& name, const std::string& content) {
    pid_t pid = 0;
    std::string text = content;
    {
      std::lock_guard lock(mu_);
      auto it = pids_.find(id);
      if (it == pids_.end()) return;  // not running yet: its start writes the file
      pid = it->second;
      if (auto e = extra_.find(id); e != extra_.end())
        for (const auto& [host, addr] : e->second) text += fmt::format("{}\t{}\n", addr, host);
    }
    // The file is reached through the container's own root, resolved inside it (a symlink the
    // container planted at /etc/hosts is not followed out), and rewritten in place.
    auto r = [&]() -> Result<void> {
      auto root = SANDRUN_TRY(fs::open_path(fmt::format("/proc/{}/root", pid), O_PATH | O_DIRECTORY));
      auto file = SANDRUN_TRY(fs::open_beneath(root.get(), "etc/" + name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW,
                                               RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, 0644));
      return fs::write_all(file.get(), text);
    }();
    if (!r) log::warn("container {}: rewrite /etc/{}: {}", id.substr(0, 12), name, r.error().message());
  };
}

std::string ContainerWiring::hosts_file(const std::string& id, const WiringSpec& w) const {
  std::string text = networks_.hosts_file(id);
  for (const auto& [host, addr] : w.extra_hosts) text += fmt::format("{}\t{}\n", addr, host);
  return text;
}

void ContainerWiring::running(const std::string& id, pid_t pid) {
  {
    std::lock_guard lock(mu_);
    pids_[id] = pid;
  }
  // Members that came between its attach and its start are in the file from now on.
  if (auto target = networks_.publish_target(id); target) writer_for(id)("hosts", networks_.hosts_file(id));
}

void ContainerWiring::stopped(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    pids_.erase(id);
    extra_.erase(id);
  }
  networks_.detach_all(id);
}

void ContainerWiring::remove_anonymous(const WiringSpec& w) {
  for (const auto& v : w.volumes) {
    if (!v.anonymous || v.name.empty()) continue;
    if (auto r = volumes_->remove(v.name); !r) log::warn("remove the anonymous volume {}: {}", v.name, r.error().message());
  }
}

}  // namespace sandrun::runner
