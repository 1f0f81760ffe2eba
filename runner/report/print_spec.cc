// Rendering resolved job plans as JSON for --dry-run / --print-spec.
#include "runner/report/print_spec.h"

#include "sandbox/mount_points.h"

#include <nlohmann/json.hpp>

#include "config/job_file.h"
#include "sandbox/capabilities.h"
#include "sandbox/plan.h"

namespace sandrun::runner {
namespace {

using nlohmann::ordered_json;

ordered_json limits_json(const JobPlan& plan) {
  const auto& l = plan.spec().limits;
  ordered_json j = ordered_json::object();
  j["cgroup"] = plan.spec().use_cgroup;
  j["memory"] = l.memory ? ordered_json(config::format_size(*l.memory)) : ordered_json(nullptr);
  j["memory_bytes"] = l.memory ? ordered_json(*l.memory) : ordered_json(nullptr);
  j["swap"] = l.memory ? "counted in memory" : "unlimited";
  j["cpus"] = l.cpus ? ordered_json(*l.cpus) : ordered_json(nullptr);
  j["pids"] = l.pids ? ordered_json(*l.pids) : ordered_json(nullptr);
  j["cpuset"] = l.cpuset ? ordered_json(*l.cpuset) : ordered_json(nullptr);
  const auto& d = plan.spec().disk;
  j["disk"] = config::format_size(d.bytes);
  j["disk_bytes"] = d.bytes;
  j["disk_inodes"] = d.inodes;
  j["disk_mechanism"] = d.enforced ? "ext4 image on a loop device per container slot" : "none (not enforced)";
  return j;
}

ordered_json hardening_json(const sandbox::ContainerPlan& s) {
  const auto& h = s.hardening;
  ordered_json j = ordered_json::object();
  j["capabilities"] = s.uid == 0 ? sandbox::capability_names(h.capabilities) : std::vector<std::string>{};
  j["bounding_set"] = sandbox::capability_names(h.capabilities);
  j["no_new_privs"] = h.no_new_privs;
  if (h.seccomp) {
    j["seccomp"] = {{"profile", h.seccomp->description()}, {"instructions", h.seccomp->instructions()}};
  } else {
    j["seccomp"] = "unconfined";
  }
  j["read_only_rootfs"] = h.read_only_rootfs;
  std::vector<std::string> masked, readonly;
  if (h.mask_paths) {
    for (const char* p : sandbox::kMaskedPaths) masked.push_back(std::string("/") + p);
    masked.push_back("/sys/devices/system/cpu/cpu*/thermal_throttle");
    for (const char* p : sandbox::kReadOnlyPaths) readonly.push_back(std::string("/") + p);
  }
  j["masked_paths"] = masked;
  j["readonly_paths"] = readonly;
  ordered_json rl = ordered_json::object();
  rl["core"] = h.core_limit;
  if (h.nofile) {
    rl["nofile"] = {{"soft", h.nofile->first}, {"hard", h.nofile->second}};
  } else {
    rl["nofile"] = "inherited";
  }
  j["rlimits"] = rl;
  j["namespaces"] = s.userns.enabled ? (s.new_net ? std::vector<std::string>{"user", "mount", "pid", "ipc", "uts", "cgroup", "net"}
                                                  : std::vector<std::string>{"user", "mount", "pid", "ipc", "uts", "cgroup"})
                 : s.new_net ? std::vector<std::string>{"mount", "pid", "ipc", "uts", "cgroup", "net"}
                              : std::vector<std::string>{"mount", "pid", "ipc", "uts", "cgroup"};
  return j;
}

ordered_json userns_json(const sandbox::UserNamespace& ns) {
  if (!ns.enabled) {
    return ns.off_reason.empty() ? std::string("none: container root is host root")
                                 : fmt::format("none: container root is host root ({})", ns.off_reason);
  }
  auto maps = [](const std::vector<sandbox::IdMap>& m) {
    ordered_json a = ordered_json::array();
    for (const auto& e : m) a.push_back({{"inside", e.inside}, {"outside", e.outside}, {"count", e.count}});
    return a;
  };
  ordered_json j = ordered_json::object();
  j["uid_map"] = maps(ns.uid_map);
  j["gid_map"] = maps(ns.gid_map);
  j["origin"] = ns.origin;
  j["via_newuidmap"] = ns.via_helpers;
  j["idmapped_layers"] = ns.idmap_layers;
  return j;
}

ordered_json plan_json(const JobPlan& plan) {
  const auto& s = plan.spec();
  ordered_json j = ordered_json::object();
  j["name"] = plan.name;
  j["hostname"] = s.hostname;
  j["layers"] = s.lower_dirs;
  // Where the container's writes to / go: a private copy-on-write layer, or nowhere (a
  // read-only root made of lower layers only, its mount points from the mount-point layer).
  j["writable_layer"] = !sandbox::uses_mount_point_layer(s);
  if (sandbox::uses_mount_point_layer(s)) {
    j["mount_point_layer"] = s.mount_point_layer;
  } else {
    j["writable_layer_volatile"] = s.volatile_upper;  // false: synced when it is unmounted
  }
  j["command"] = s.argv;
  j["init"] = s.init;
  j["env"] = s.env;
  j["workdir"] = s.workdir;
  j["user"] = {{"uid", s.uid}, {"gid", s.gid}, {"groups", s.groups}};
  ordered_json mounts = ordered_json::array();
  for (const auto& b : s.binds) {
    ordered_json m = {{"source", b.source}, {"target", b.target}, {"readonly", b.readonly}};
    // "overlay": a private copy-on-write view of the source, which is never modified.
    m["mode"] = b.overlay() ? "overlay" : b.readonly ? "ro" : "rw";
    // Its writable layer is the container slot's, chosen when it starts (slots.h).
    if (b.overlay()) m["upper"] = "<slot>/disk/ws-upper";
    mounts.push_back(std::move(m));
  }
  j["volumes"] = mounts;
  ordered_json caches = ordered_json::array();
  for (const auto& c : plan.caches) caches.push_back({{"name", c.name}, {"target", c.target}});
  j["caches"] = caches;  // under <state>/caches; read-write, or copy-on-write while another job holds one
  j["network"] = plan.network == config::Network::host      ? "host"
                 : plan.network == config::Network::private_ ? "private"
                                                             : "none";
  j["timeout"] = plan.timeout ? ordered_json(config::format_duration(*plan.timeout)) : ordered_json(nullptr);
  j["limits"] = limits_json(plan);
  j["hardening"] = hardening_json(s);
  j["user_namespace"] = userns_json(s.userns);
  ordered_json ports = ordered_json::array();
  for (const auto& port : plan.ports)
    ports.push_back({{"host_ip", port.host_ip}, {"host_port", port.host_port}, {"container_port", port.container_port}});
  j["ports"] = ports;
  ordered_json services = ordered_json::array();
  for (const auto& svc : plan.services) {
    ordered_json sj = plan_json(svc.plan);
    if (svc.ready) {
      sj["ready"] = {{"command", svc.ready->spec().argv},
                     {"interval", config::format_duration(svc.ready_interval)},
                     {"timeout", config::format_duration(svc.ready_timeout)}};
    } else {
      sj["ready"] = nullptr;
    }
    services.push_back(std::move(sj));
  }
  if (!plan.services.empty()) j["services"] = services;  // each in the job's network namespace
  return j;
}

}  // namespace

std::string specs_json(const std::vector<JobPlan>& plans, const HostIsolation& host, const std::string& policy) {
  ordered_json doc = ordered_json::object();
  if (host.cgroups) {
    doc["cgroups"] = host.cgroups->info().version == sandbox::cgroup::Version::v2 ? "v2" : "v1";
  } else {
    doc["cgroups"] = "unavailable: " + (host.cgroups_missing ? host.cgroups_missing->message() : std::string("?"));
  }
  doc["policy"] = policy.empty() ? ordered_json(nullptr) : ordered_json(policy);
  ordered_json jobs = ordered_json::array();
  for (const auto& p : plans) jobs.push_back(plan_json(p));
  doc["jobs"] = jobs;
  return doc.dump(2) + "\n";
}

}  // namespace sandrun::runner
