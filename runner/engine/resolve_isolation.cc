// A job's limits and hardening, checked against the host before anything starts.
#include "runner/engine/resolve_isolation.h"

#include <algorithm>

#include "runner/engine/resolve.h"
#include "sandbox/capabilities.h"

namespace sandrun::runner {
namespace {

Error at(const config::JobSpec& job, const char* key, Error e) { return std::move(e.wrap(key_context(job, key))); }

// The disk keys as `exec` flags when the job is made of them.
Error disk_at(const config::JobSpec& job, const char* key, Error e) {
  if (!job.where(key).file.empty()) return at(job, key, std::move(e));
  return std::move(e.wrap(std::string_view(key) == "disk" ? "exec: --disk" : "exec: --disk-inodes"));
}

// Each limit is checked on its own so that the error names the key that asked for it.
Result<void> check_limits(const config::JobSpec& job, const HostIsolation& host, const sandbox::cgroup::Limits& l) {
  const std::pair<const char*, sandbox::cgroup::Limits> each[] = {
      {"memory", {l.memory, {}, {}, {}}},
      {"cpus", {{}, l.cpus, {}, {}}},
      {"pids", {{}, {}, l.pids, {}}},
      {"cpuset", {{}, {}, {}, l.cpuset}},
  };
  for (const auto& [key, one] : each) {
    if (!one.memory && !one.cpus && !one.pids && !one.cpuset) continue;
    // The default pids limit is not the user's: without cgroups it is simply not applied.
    const bool asked = job.key_pos.count(key) > 0 || std::string_view(key) != "pids";
    if (!host.cgroups) {
      if (!asked) continue;
      Error e = host.cgroups_missing ? *host.cgroups_missing : Error::msg("cgroups are not available");
      return at(job, key, std::move(e.wrap(fmt::format("cannot enforce {}", key))));
    }
    if (auto r = host.cgroups->check(one); !r) return at(job, key, std::move(r).error());
  }
  return {};
}

// Each name is checked at its own position: "jobs.toml:7:21: jobs.unit.cap_add[1]: unknown
// capability "NET_ADMN" (did you mean CAP_NET_ADMIN?)".
Result<void> check_capability_names(const config::JobSpec& job, const char* key, const std::vector<config::Named>& names) {
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& [name, pos] = names[i];
    if (name == "ALL" || name == "all") continue;
    auto cap = sandbox::parse_capability(name);
    if (cap) continue;
    if (pos.file.empty()) {
      return std::move(cap.error().wrap(fmt::format("exec: --{}", key == std::string_view("cap_add") ? "cap-add" : "cap-drop")));
    }
    return std::move(cap.error().wrap(fmt::format("{}: jobs.{}.{}[{}]", pos.str(), job.name, key, i)));
  }
  return {};
}

// A capability sandrun itself cannot grant (outside its own bounding set, as when it runs in a
// container) is refused up front, at its entry, instead of failing the container's start.
Result<void> check_grantable(const config::JobSpec& job) {
  for (size_t i = 0; i < job.cap_add.size(); ++i) {
    const auto& [name, pos] = job.cap_add[i];
    auto cap = sandbox::parse_capability(name);
    if (!cap || (sandbox::bounding_set() & (sandbox::CapSet{1} << *cap))) continue;
    Error e = Error::msg("{} is not in sandrun's own capability bounding set on this host, so no container can hold it",
                         sandbox::capability_names(sandbox::CapSet{1} << *cap).at(0))
                  .hint("sandrun runs with a reduced bounding set (in a container?); see CapBnd in /proc/self/status");
    if (pos.file.empty()) return std::move(e.wrap("exec: --cap-add"));
    return std::move(e.wrap(fmt::format("{}: jobs.{}.cap_add[{}]", pos.str(), job.name, i)));
  }
  return {};
}

Result<uint64_t> capabilities_of(const config::JobSpec& job) {
  SANDRUN_TRY(check_capability_names(job, "cap_add", job.cap_add));
  SANDRUN_TRY(check_grantable(job));
  SANDRUN_TRY(check_capability_names(job, "cap_drop", job.cap_drop));
  auto caps = sandbox::resolve_capabilities(config::names_of(job.cap_add), config::names_of(job.cap_drop));
  if (!caps) return at(job, job.cap_add.empty() ? "cap_drop" : "cap_add", std::move(caps).error());
  return *caps;
}

Result<void> resolve_rlimits(const config::JobSpec& job, const HostIsolation& host, sandbox::Hardening& h) {
  if (!job.nofile) return {};
  const auto [soft, hard] = *job.nofile;
  if (hard > host.nofile.hard && !host.nofile.can_raise_hard) {
    return at(job, "nofile",
              std::move(Error::msg("nofile hard limit {} is above sandrun's own hard limit {}", hard, host.nofile.hard)
                            .hint("raising a hard limit needs CAP_SYS_RESOURCE, which sandrun lacks here; "
                                  "ask for at most the current hard limit (ulimit -Hn)")));
  }
  h.nofile = std::make_pair(soft, hard);
  return {};
}

// The disk limit: the job's, else the default bounded by half of what the state dir's file
// system has free (so no job fills it); refused when it cannot fit or cannot be enforced.
Result<void> resolve_disk(const config::JobSpec& job, const HostIsolation& host, sandbox::DiskLimit& disk) {
  disk.enforced = host.loop_disks;
  const bool asked = job.limits.disk || job.limits.disk_inodes;
  if (!disk.enforced && asked) {
    const char* key = job.limits.disk ? "disk" : "disk_inodes";
    return disk_at(job, key, std::move(Error::msg("cannot enforce {}: {}", key, host.loop_disks_missing)
                                       .hint("run sandrun as root on a host with loop devices and e2fsprogs, "
                                             "or leave the disk limit out (docs/security.md, Disk)")));
  }
  const uint64_t free = host.state_free.value_or(UINT64_MAX);
  if (job.limits.disk) {
    disk.bytes = *job.limits.disk;
    if (disk.bytes > free)
      return disk_at(job, "disk",
                std::move(Error::msg("disk = {} is more than the file system of sandrun's state dir has free ({})",
                                     config::format_size(disk.bytes), config::format_size(free))
                              .hint("ask for less, free some space, or give --root on a larger file system")));
  } else {
    const uint64_t bounded = std::min(config::kDefaultDisk, free / 2) & ~((uint64_t{1} << 20) - 1);
    disk.bytes = std::max(config::kMinDisk, bounded);
  }
  if (job.limits.disk_inodes) {
    disk.inodes = *job.limits.disk_inodes;
    if (disk.inodes > config::max_disk_inodes(disk.bytes))
      return disk_at(job, "disk_inodes",
                std::move(Error::msg("disk_inodes = {} is more than a disk of {} can hold (at most {}, one per 2 KiB)",
                                     disk.inodes, config::format_size(disk.bytes), config::max_disk_inodes(disk.bytes))
                              .hint("raise disk, or ask for fewer files")));
  } else {
    disk.inodes = std::min(config::kDefaultDiskInodes, disk.bytes / 4096);
  }
  return {};
}

}  // namespace

HostIsolation HostIsolation::probe() {
  HostIsolation host;
  auto backend = sandbox::cgroup::Backend::detect();
  if (backend) {
    host.cgroups = std::move(*backend);
  } else {
    host.cgroups_missing = std::move(backend).error();
  }
  host.nofile = sandbox::host::probe_nofile();
  return host;
}

Result<void> resolve_isolation(const config::JobSpec& job, HostIsolation& host, sandbox::ContainerPlan& plan) {
  auto& limits = plan.limits;
  limits.memory = job.limits.memory;
  limits.cpus = job.limits.cpus;
  limits.pids = job.limits.pids.value_or(config::kDefaultPids);
  limits.cpuset = job.limits.cpuset;
  SANDRUN_TRY(check_limits(job, host, limits));
  plan.use_cgroup = host.cgroups != nullptr;
  SANDRUN_TRY(resolve_disk(job, host, plan.disk));

  auto& h = plan.hardening;
  h.capabilities = SANDRUN_TRY(capabilities_of(job));
  h.no_new_privs = job.no_new_privs;
  h.read_only_rootfs = job.read_only_rootfs;
  SANDRUN_TRY(resolve_rlimits(job, host, h));
  if (job.seccomp != "unconfined") {
    auto filter = host.seccomp.get(job.seccomp, h.capabilities);
    if (!filter) return at(job, "seccomp", std::move(filter).error());
    h.seccomp = std::move(*filter);
  }
  return {};
}

}  // namespace sandrun::runner
