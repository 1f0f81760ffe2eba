// Docker's volumes, tmpfs mounts, networks and extra hosts of a create body into the engine's
// WiringSpec (runner/engine/container_wiring.h).
#include "runner/api/container_create_wiring.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "runner/api/create_fields.h"
#include "runner/net/ipv4.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

using create_fields::Bad;
using create_fields::bad;
using create_fields::str;

void check_target(const std::string& target, std::string_view field) {
  if (target.empty() || target.front() != '/')
    bad(fmt::format("{}: invalid mount config: the mount destination {:?} must be an absolute path", field, target));
}

// "64m", "1g", "1048576": bytes (Docker's RAMInBytes: k, m, g, t with an optional b).
uint64_t size_of(const std::string& text, std::string_view field) {
  char* end = nullptr;
  const double n = std::strtod(text.c_str(), &end);
  std::string unit(end);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!unit.empty() && unit.back() == 'b') unit.pop_back();
  uint64_t mult = 1;
  if (unit == "k") mult = 1ULL << 10;
  else if (unit == "m") mult = 1ULL << 20;
  else if (unit == "g") mult = 1ULL << 30;
  else if (unit == "t") mult = 1ULL << 40;
  else if (!unit.empty()) bad(fmt::format("{}: invalid size: '{}'", field, text));
  if (end == text.c_str() || n < 0) bad(fmt::format("{}: invalid size: '{}'", field, text));
  return static_cast<uint64_t>(n * static_cast<double>(mult));
}

// HostConfig.Tmpfs's options: "size=64m,mode=1777" (rw, ro; the other flags are logged).
TmpfsMount tmpfs_of(const std::string& target, const std::string& options, bool& readonly) {
  TmpfsMount t;
  t.target = target;
  t.options = options;
  for (size_t p = 0, c; p <= options.size(); p = c + 1) {
    c = options.find(',', p);
    if (c == std::string::npos) c = options.size();
    const std::string opt = options.substr(p, c - p);
    const size_t eq = opt.find('=');
    const std::string key = opt.substr(0, eq), value = eq == std::string::npos ? "" : opt.substr(eq + 1);
    if (opt.empty() || opt == "rw") continue;
    if (opt == "ro") readonly = true;
    else if (key == "size" && !value.empty() && value.back() == '%')
      bad(fmt::format("HostConfig.Tmpfs: {}: a size in percent is not supported by sandrun", target));
    else if (key == "size") t.size = size_of(value, "HostConfig.Tmpfs");
    else if (key == "mode") {
      char* end = nullptr;
      const unsigned long m = std::strtoul(value.c_str(), &end, 8);
      if (value.empty() || *end || m > 07777) bad(fmt::format("HostConfig.Tmpfs: {}: invalid mode '{}'", target, value));
      t.mode = static_cast<uint32_t>(m);
    } else {
      log::info("api: create: tmpfs option {:?} of {} is not honoured by sandrun (ignored)", opt, target);
    }
  }
  return t;
}

// Binds' named volumes ("NAME:/path[:opts]"; host paths are the caller's), Mounts of type
// volume and tmpfs, HostConfig.Tmpfs, Config.Volumes (anonymous volumes).
void read_volumes(const json& cfg, const json& hc, WiringSpec& w, json& mounts, std::set<std::string>& targets) {
  if (auto it = hc.find("Binds"); it != hc.end() && it->is_array()) {
    for (const auto& b : *it) {
      if (!b.is_string()) continue;  // the caller refuses it
      const std::string spec = b.get<std::string>();
      const size_t c1 = spec.find(':');
      if (c1 == std::string::npos || spec.front() == '/') continue;  // a host path: the caller's
      const size_t c2 = spec.find(':', c1 + 1);
      VolumeMount v;
      v.name = spec.substr(0, c1);
      v.target = spec.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1);
      v.mode = c2 == std::string::npos ? "" : spec.substr(c2 + 1);
      check_target(v.target, "HostConfig.Binds");
      for (size_t p = 0, c; p <= v.mode.size(); p = c + 1) {
        c = v.mode.find(',', p);
        if (c == std::string::npos) c = v.mode.size();
        const std::string opt = v.mode.substr(p, c - p);
        if (opt == "ro") v.readonly = true;
        else if (!opt.empty() && opt != "rw" && opt != "z" && opt != "Z" && opt != "nocopy" && opt != "rprivate" &&
                 opt != "private")
          bad(fmt::format("HostConfig.Binds: {:?}: mount option {:?} is not supported by sandrun", spec, opt));
      }
      targets.insert(v.target);
      w.volumes.push_back(std::move(v));
    }
  }
  if (auto it = hc.find("Mounts"); it != hc.end() && it->is_array()) {
    for (const auto& m : *it) {
      if (!m.is_object()) continue;
      const std::string type = str(m, "Type", "HostConfig.Mounts[].");
      const std::string target = str(m, "Target", "HostConfig.Mounts[].");
      const bool ro = m.value("ReadOnly", false);
      if (type == "volume") {
        VolumeMount v;
        v.name = str(m, "Source", "HostConfig.Mounts[].");
        v.anonymous = v.name.empty();
        v.target = target;
        v.readonly = ro;
        if (auto o = m.find("VolumeOptions"); o != m.end() && o->is_object()) {
          if (auto l = o->find("Labels"); l != o->end() && l->is_object())
            for (const auto& [k, val] : l->items())
              if (val.is_string()) v.labels[k] = val.get<std::string>();
          if (auto d = o->find("DriverConfig"); d != o->end() && d->is_object() && !str(*d, "Name", "").empty() &&
                                                   str(*d, "Name", "") != "local")
            bad(fmt::format("HostConfig.Mounts: volume driver {:?} is not supported by sandrun (only local)", str(*d, "Name", "")));
        }
        targets.insert(target);
        w.volumes.push_back(std::move(v));
      } else if (type == "tmpfs") {
        TmpfsMount t;
        t.target = target;
        if (auto o = m.find("TmpfsOptions"); o != m.end() && o->is_object()) {
          if (auto s = o->find("SizeBytes"); s != o->end() && s->is_number_integer() && s->get<int64_t>() > 0)
            t.size = static_cast<uint64_t>(s->get<int64_t>());
          if (auto md = o->find("Mode"); md != o->end() && md->is_number_integer() && md->get<int64_t>() > 0)
            t.mode = static_cast<uint32_t>(md->get<int64_t>() & 07777);
        }
        if (ro) t.options = "ro";
        targets.insert(target);
        w.tmpfs.push_back(t);
        mounts.push_back({{"Type", "tmpfs"}, {"Source", ""}, {"Destination", target}, {"Mode", ""}, {"RW", !ro},
                          {"Propagation", ""}});
      }
    }
  }
  if (auto it = hc.find("Tmpfs"); it != hc.end() && !it->is_null()) {
    if (!it->is_object()) bad("HostConfig.Tmpfs: expected an object of strings");
    for (const auto& [target, opts] : it->items()) {
      if (!opts.is_string()) bad("HostConfig.Tmpfs: expected an object of strings");
      check_target(target, "HostConfig.Tmpfs");
      bool ro = false;
      TmpfsMount t = tmpfs_of(target, opts.get<std::string>(), ro);
      if (ro) t.options = "ro";
      targets.insert(target);
      w.tmpfs.push_back(std::move(t));
    }
  }
  // The image's VOLUMEs are not kept by sandrun's cache; the client's Config.Volumes (`-v
  // /path`) each get an anonymous volume unless something else is mounted there.
  if (auto it = cfg.find("Volumes"); it != cfg.end() && it->is_object()) {
    for (const auto& [target, v] : it->items()) {
      // The docker CLI lists its binds here too ("NAME:/path", "/host:/path"): Binds has them.
      if (target.find(':') != std::string::npos || targets.count(target)) continue;
      check_target(target, "Volumes");
      VolumeMount anon;
      anon.target = target;
      anon.anonymous = true;
      w.volumes.push_back(std::move(anon));
    }
  }
}

// NetworkMode naming a user network, and NetworkingConfig.EndpointsConfig (aliases, address).
void read_networks(const json& cfg, const json& hc, WiringSpec& w) {
  const std::string mode = str(hc, "NetworkMode", "HostConfig.");
  json endpoints = json::object();
  if (auto nc = cfg.find("NetworkingConfig"); nc != cfg.end() && nc->is_object())
    if (auto ec = nc->find("EndpointsConfig"); ec != nc->end() && ec->is_object()) endpoints = *ec;
  const std::set<std::string> builtin = {"", "default", "bridge", "none", "host"};
  if (mode.starts_with("container:"))
    bad("HostConfig.NetworkMode: sharing another container's network (container:NAME) is not supported by sandrun");
  std::vector<std::string> nets;
  if (!builtin.count(mode)) nets.push_back(mode);
  for (const auto& [name, v] : endpoints.items())
    if (!builtin.count(name) && std::find(nets.begin(), nets.end(), name) == nets.end()) nets.push_back(name);
  if (!nets.empty() && builtin.count(mode) && !mode.empty() && mode != "default" && mode != "bridge")
    bad(fmt::format("HostConfig.NetworkMode: container cannot be connected to network {} with network mode {}", nets.front(), mode));
  for (const auto& name : nets) {
    NetworkJoin join;
    join.network_name = name;
    if (auto e = endpoints.find(name); e != endpoints.end() && e->is_object()) {
      if (auto a = e->find("Aliases"); a != e->end() && a->is_array())
        for (const auto& alias : *a)
          if (alias.is_string()) join.aliases.push_back(alias.get<std::string>());
      if (auto ipam = e->find("IPAMConfig"); ipam != e->end() && ipam->is_object()) {
        const std::string ip = str(*ipam, "IPv4Address", "NetworkingConfig.EndpointsConfig.IPAMConfig.");
        if (!ip.empty()) join.ipv4 = ip;
      }
    }
    w.networks.push_back(std::move(join));
  }
}

// ExtraHosts: "name:address" (or "name=address"); "host-gateway" maps to kHostGatewayAddress.
void read_extra_hosts(const json& hc, WiringSpec& w) {
  auto it = hc.find("ExtraHosts");
  if (it == hc.end() || it->is_null()) return;
  if (!it->is_array()) bad("HostConfig.ExtraHosts: expected an array of strings");
  for (const auto& h : *it) {
    if (!h.is_string()) bad("HostConfig.ExtraHosts: expected an array of strings");
    const std::string s = h.get<std::string>();
    size_t sep = s.find('=');
    if (sep == std::string::npos) sep = s.find(':');
    if (sep == std::string::npos || sep == 0) bad(fmt::format("HostConfig.ExtraHosts: bad format for add-host: {:?}", s));
    const std::string name = s.substr(0, sep);
    std::string addr = s.substr(sep + 1);
    if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']') addr = addr.substr(1, addr.size() - 2);
    if (addr == "host-gateway") addr = kHostGatewayAddress;
    if (!Ipv4::parse(addr) && addr.find(':') == std::string::npos)
      bad(fmt::format("HostConfig.ExtraHosts: invalid IP address in add-host: {:?}", addr));
    if (name.find_first_of(" \t\n#") != std::string::npos)
      bad(fmt::format("HostConfig.ExtraHosts: invalid host name in add-host: {:?}", name));
    w.extra_hosts.emplace_back(name, addr);
  }
}

}  // namespace

std::optional<std::string> read_wiring(const json& cfg, const json& hc, WiringSpec& w, json& mounts) {
  try {
    std::set<std::string> targets;
    for (const auto& m : mounts)
      if (m.is_object() && m.contains("Destination")) targets.insert(m["Destination"].get<std::string>());
    read_volumes(cfg, hc, w, mounts, targets);
    read_networks(cfg, hc, w);
    read_extra_hosts(hc, w);
  } catch (const Bad& b) {
    return b.message;
  }
  return std::nullopt;
}

}  // namespace sandrun::runner::api
