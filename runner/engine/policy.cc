// The host file's [defaults] and [policy] applied to one job, before anything of it is pulled
// or resolved.
#include "runner/engine/policy.h"

#include <sched.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <thread>

#include <fmt/ranges.h>

#include "cache/store.h"
#include "sandbox/capabilities.h"
#include "sandbox/host_features.h"

namespace sandrun::runner {
namespace {

using config::JobSpec;
using config::Rule;

std::string quoted_list(const std::vector<std::string>& items) {
  std::vector<std::string> q;
  for (const auto& i : items) q.push_back(fmt::format("{:?}", i));
  return fmt::format("[{}]", fmt::join(q, ", "));
}

// "(/etc/sandrun/sandrun.toml:3:14: bind_paths = ["/srv/ci"])": the policy line that refuses.
template <typename T>
std::string policy_at(const Rule<T>& rule, std::string_view key, std::string_view shown) {
  return fmt::format("({}: {} = {})", rule.pos.str(), key, shown);
}
std::string policy_at(const Rule<bool>& rule, std::string_view key) { return policy_at(rule, key, "false"); }

// Where a key's value came from: "jobs.toml:7:3: jobs.build.seccomp", or the `exec` flag
// ("exec: --security-opt seccomp=unconfined") for a job made of flags.
std::string where(const JobSpec& job, const char* key, std::string_view flag, std::string_view suffix = "") {
  const config::SourcePos pos = job.where(key);
  if (pos.file.empty()) return fmt::format("exec: {}", flag);
  if (job.name.empty()) return fmt::format("{}: defaults.{}{}", pos.str(), key, suffix);  // the host's own
  return fmt::format("{}: jobs.{}.{}{}", pos.str(), job.name, key, suffix);
}

std::string volume_text(const config::VolumeSpec& v) {
  return fmt::format("{}:{}{}", v.source, v.target, v.readonly ? ":ro" : "");
}

size_t usable_cpus() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return static_cast<size_t>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// 1. The host's [defaults] for what the job leaves unset.
void apply_defaults(JobSpec& job, const config::HostConfig& config, const PolicyHost& host) {
  const JobSpec& d = config.defaults;
  auto take = [&](const char* key, auto& field, const auto& value) {
    if (field || !value) return;
    field = value;
    job.key_pos[key] = d.key_pos.at(key);
  };
  if (!host.service) take("timeout", job.timeout, d.timeout);
  take("nofile", job.nofile, d.nofile);
  // The disk limit is enforced without cgroups (a file system per container slot), where
  // loop devices can be set up.
  if (host.disk) {
    take("disk", job.limits.disk, d.limits.disk);
    take("disk_inodes", job.limits.disk_inodes, d.limits.disk_inodes);
  }
  take("log_max", job.log_max, d.log_max);
  // The artifact caps always have a value: the host's applies where the job file set none.
  auto cap = [&](const char* key, uint64_t& field, uint64_t value) {
    if (job.key_pos.contains(key) || !d.key_pos.contains(key)) return;
    field = value;
    job.key_pos[key] = d.key_pos.at(key);
  };
  cap("artifacts_max_size", job.artifacts.max_size, d.artifacts.max_size);
  cap("artifacts_max_files", job.artifacts.max_files, d.artifacts.max_files);
  // Limits only where cgroups enforce them, as the built-in pids default: an operator's
  // default must not make every rootless job fail.
  if (!host.cgroups) return;
  take("memory", job.limits.memory, d.limits.memory);
  take("cpus", job.limits.cpus, d.limits.cpus);
  take("pids", job.limits.pids, d.limits.pids);
}

// 2. The ceilings of limits still unset, with the policy's position.
void apply_ceilings(JobSpec& job, const config::Policy& p, const PolicyHost& host) {
  auto take = [&](const char* key, auto& field, const auto& rule) {
    field = *rule.value;
    job.key_pos[key] = rule.pos;
  };
  if (p.max_memory && !job.limits.memory) take("memory", job.limits.memory, p.max_memory);
  if (p.max_cpus && !job.limits.cpus && *p.max_cpus.value < static_cast<double>(usable_cpus()))
    take("cpus", job.limits.cpus, p.max_cpus);
  if (p.max_pids && !job.limits.pids && *p.max_pids.value < config::kDefaultPids) take("pids", job.limits.pids, p.max_pids);
  if (p.max_timeout && !job.timeout && !host.service) take("timeout", job.timeout, p.max_timeout);
  if (p.max_log && !job.log_max && *p.max_log.value < config::kDefaultLogMax) take("log_max", job.log_max, p.max_log);
  // Unset, the disk limits have defaults of their own (config::kDefaultDisk): a ceiling below
  // them replaces them.
  if (host.disk) {
    if (p.max_disk && !job.limits.disk && *p.max_disk.value < config::kDefaultDisk)
      take("disk", job.limits.disk, p.max_disk);
    if (p.max_disk_inodes && !job.limits.disk_inodes && *p.max_disk_inodes.value < config::kDefaultDiskInodes)
      take("disk_inodes", job.limits.disk_inodes, p.max_disk_inodes);
  }
  if (p.max_nofile && !job.nofile) {
    const auto own = sandbox::host::probe_nofile();
    const uint64_t max = *p.max_nofile.value;
    if (own.hard > max) {
      job.nofile = std::make_pair(std::min(own.soft, max), max);
      job.key_pos["nofile"] = p.max_nofile.pos;
    }
  }
}

Result<void> check_limits(const JobSpec& job, const config::Policy& p) {
  if (p.max_memory && job.limits.memory && *job.limits.memory > *p.max_memory.value)
    return Error::msg("{}: memory = {} is above the policy's max_memory {}",
                      where(job, "memory", fmt::format("--memory {}", config::format_size(*job.limits.memory))),
                      config::format_size(*job.limits.memory),
                      policy_at(p.max_memory, "max_memory", fmt::format("{:?}", config::format_size(*p.max_memory.value))));
  if (p.max_cpus && job.limits.cpus && *job.limits.cpus > *p.max_cpus.value)
    return Error::msg("{}: cpus = {} is above the policy's max_cpus {}",
                      where(job, "cpus", fmt::format("--cpus {}", *job.limits.cpus)), *job.limits.cpus,
                      policy_at(p.max_cpus, "max_cpus", fmt::format("{}", *p.max_cpus.value)));
  if (p.max_pids && job.limits.pids && *job.limits.pids > *p.max_pids.value)
    return Error::msg("{}: pids = {} is above the policy's max_pids {}",
                      where(job, "pids", fmt::format("--pids-limit {}", *job.limits.pids)), *job.limits.pids,
                      policy_at(p.max_pids, "max_pids", std::to_string(*p.max_pids.value)));
  if (p.max_nofile && job.nofile && job.nofile->second > *p.max_nofile.value)
    return Error::msg("{}: nofile hard limit {} is above the policy's max_nofile {}",
                      where(job, "nofile", fmt::format("--ulimit nofile={}:{}", job.nofile->first, job.nofile->second)),
                      job.nofile->second, policy_at(p.max_nofile, "max_nofile", std::to_string(*p.max_nofile.value)));
  if (p.max_disk && job.limits.disk && *job.limits.disk > *p.max_disk.value)
    return Error::msg("{}: disk = {} is above the policy's max_disk {}",
                      where(job, "disk", fmt::format("--disk {}", config::format_size(*job.limits.disk))),
                      config::format_size(*job.limits.disk),
                      policy_at(p.max_disk, "max_disk", fmt::format("{:?}", config::format_size(*p.max_disk.value))));
  if (p.max_disk_inodes && job.limits.disk_inodes && *job.limits.disk_inodes > *p.max_disk_inodes.value)
    return Error::msg("{}: disk_inodes = {} is above the policy's max_disk_inodes {}",
                      where(job, "disk_inodes", fmt::format("--disk-inodes {}", *job.limits.disk_inodes)),
                      *job.limits.disk_inodes,
                      policy_at(p.max_disk_inodes, "max_disk_inodes", std::to_string(*p.max_disk_inodes.value)));
  if (p.max_log && job.log_max && *job.log_max > *p.max_log.value)
    return Error::msg("{}: log_max = {} is above the policy's max_log {}", where(job, "log_max", "log_max"),
                      config::format_size(*job.log_max),
                      policy_at(p.max_log, "max_log", fmt::format("{:?}", config::format_size(*p.max_log.value))));
  if (p.max_timeout && job.timeout && *job.timeout > *p.max_timeout.value)
    return Error::msg("{}: timeout = {:?} is above the policy's max_timeout {}",
                      where(job, "timeout", fmt::format("--timeout {}", config::format_duration(*job.timeout))),
                      config::format_duration(*job.timeout),
                      policy_at(p.max_timeout, "max_timeout", fmt::format("{:?}", config::format_duration(*p.max_timeout.value))));
  return {};
}

// The real path of a policy prefix (it may itself lie behind a symlink, /home -> /data/home);
// as written when it does not exist.
std::string real_prefix(const std::string& prefix) {
  char buf[PATH_MAX];
  return ::realpath(prefix.c_str(), buf) ? std::string(buf) : prefix;
}

bool beneath(const std::string& path, const std::string& prefix) {
  if (prefix == "/") return true;
  return path == prefix || (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
                            path[prefix.size()] == '/');
}

// A host path to bind, fully resolved, checked against bind_paths; returns the resolved path.
Result<std::string> check_bind(const std::string& source, const std::string& ctx, const config::Policy& p) {
  char buf[PATH_MAX];
  if (!::realpath(source.c_str(), buf)) return Error::sys("{}: {}", ctx, source);
  const std::string real = buf;
  for (const auto& prefix : *p.bind_paths.value) {
    if (beneath(real, real_prefix(prefix))) return real;
  }
  const std::string shown = real == source ? real : fmt::format("{} (resolved from {})", real, source);
  return Error::msg("{}: host path {} is outside the policy's bind_paths {}", ctx, shown,
                    policy_at(p.bind_paths, "bind_paths", quoted_list(*p.bind_paths.value)));
}

Result<void> check_binds(JobSpec& job, const config::Policy& p) {
  if (!p.bind_paths) return {};
  if (job.workspace) job.workspace = SANDRUN_TRY(check_bind(*job.workspace, where(job, "workspace", "workspace"), p));
  for (size_t i = 0; i < job.volumes.size(); ++i) {
    auto& v = job.volumes[i];
    const std::string ctx = where(job, "volumes", fmt::format("-v {}", volume_text(v)), fmt::format("[{}]", i));
    v.source = SANDRUN_TRY(check_bind(v.source, ctx, p));
  }
  return {};
}

bool allows_all(const std::vector<std::string>& caps) {
  return std::any_of(caps.begin(), caps.end(), [](const std::string& c) { return c == "ALL" || c == "all"; });
}

// A capability of Docker's default set adds nothing (after a cap_drop it only restores it):
// only the others must be in the policy's list.
Result<void> check_cap_add(const JobSpec& job, const config::Policy& p) {
  if (!p.cap_add || allows_all(*p.cap_add.value)) return {};
  sandbox::CapSet allowed = sandbox::default_capabilities();
  for (const auto& name : *p.cap_add.value) {
    if (auto cap = sandbox::parse_capability(name)) allowed |= sandbox::CapSet{1} << *cap;
  }
  const std::string shown = p.cap_add.value->empty() ? "false" : quoted_list(*p.cap_add.value);
  for (size_t i = 0; i < job.cap_add.size(); ++i) {
    const auto& [name, pos] = job.cap_add[i];
    const bool all = name == "ALL" || name == "all";
    auto cap = sandbox::parse_capability(name);
    if (!all && (!cap || (allowed & (sandbox::CapSet{1} << *cap)))) continue;  // unknown names: resolve's error
    const std::string ctx = pos.file.empty() ? fmt::format("exec: --cap-add {}", name)
                                             : fmt::format("{}: jobs.{}.cap_add[{}]", pos.str(), job.name, i);
    return Error::msg("{}: capability {} is not allowed by the policy {}", ctx, all ? "ALL" : sandbox::capability_names(sandbox::CapSet{1} << *cap).at(0),
                      policy_at(p.cap_add, "cap_add", shown));
  }
  return {};
}

Result<void> check_switches(const JobSpec& job, const config::Policy& p) {
  if (p.seccomp_unconfined && !*p.seccomp_unconfined.value && job.seccomp == "unconfined")
    return Error::msg("{}: seccomp = \"unconfined\" is not allowed by the policy {}",
                      where(job, "seccomp", "--security-opt seccomp=unconfined"),
                      policy_at(p.seccomp_unconfined, "seccomp_unconfined"));
  if (p.seccomp_profiles && !*p.seccomp_profiles.value && job.seccomp != "unconfined" && job.seccomp != "default")
    return Error::msg("{}: a seccomp profile file ({}) is not allowed by the policy {}",
                      where(job, "seccomp", fmt::format("--security-opt seccomp={}", job.seccomp)), job.seccomp,
                      policy_at(p.seccomp_profiles, "seccomp_profiles"));
  if (p.network_host && !*p.network_host.value && job.network == config::Network::host)
    return Error::msg("{}: network = \"host\" is not allowed by the policy {}", where(job, "network", "--network host"),
                      policy_at(p.network_host, "network_host"));
  if (p.no_new_privs_off && !*p.no_new_privs_off.value && !job.no_new_privs)
    return Error::msg("{}: no_new_privs = false is not allowed by the policy {}",
                      where(job, "no_new_privs", "--security-opt no-new-privileges=false"),
                      policy_at(p.no_new_privs_off, "no_new_privs_off"));
  if (p.userns_off && !*p.userns_off.value && job.userns == false)
    return Error::msg("{}: userns = false is not allowed by the policy {}", where(job, "userns", "--userns=false"),
                      policy_at(p.userns_off, "userns_off"));
  return {};
}

// "127.0.0.1:5000" allows exactly that host and port, "ghcr.io" that host on any port (as
// --insecure-registry reads them); host names compare case-insensitively.
bool registry_allowed(const std::string& registry, const std::vector<std::string>& allowed) {
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  const std::string r = lower(registry);
  const std::string host = r.substr(0, r.rfind(':') == std::string::npos || r.back() == ']' ? r.size() : r.rfind(':'));
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) {
    const std::string l = lower(a);
    return l == r || l == host;
  });
}

Result<void> check_registry(const JobSpec& job, const config::Policy& p) {
  if (!p.registries) return {};
  auto ref = cache::parse_ref(job.image);
  if (!ref || ref->registry().empty() || registry_allowed(ref->registry(), *p.registries.value)) return {};
  const std::string ctx = job.image_pos.file.empty()
                              ? fmt::format("exec: --image {}", job.image)
                              : fmt::format("{}: jobs.{}.image", job.image_pos.str(), job.name);
  return Error::msg("{}: registry {} of image {:?} is not among the policy's registries {}", ctx, ref->registry(),
                    job.image, policy_at(p.registries, "registries", quoted_list(*p.registries.value)));
}

}  // namespace

Result<void> check_host_config(const config::HostConfig& config) {
  const config::Policy& p = config.policy;
  if (p.cap_add) {
    for (const auto& name : *p.cap_add.value) {
      if (name == "ALL" || name == "all") continue;
      if (auto cap = sandbox::parse_capability(name); !cap)
        return std::move(cap.error().wrap(fmt::format("{}: policy.cap_add", p.cap_add.pos.str())));
    }
  }
  // The host's own defaults within its own ceilings: a job that sets nothing would be refused.
  JobSpec defaults = config.defaults;
  defaults.name.clear();
  return check_limits(defaults, p);
}

Result<JobSpec> apply_host_config(const JobSpec& written, const config::HostConfig& config, const PolicyHost& host) {
  if (config.path.empty()) return written;
  JobSpec job = written;
  apply_defaults(job, config, host);
  const config::Policy& p = config.policy;
  apply_ceilings(job, p, host);
  SANDRUN_TRY(check_registry(job, p));
  SANDRUN_TRY(check_binds(job, p));
  SANDRUN_TRY(check_cap_add(job, p));
  SANDRUN_TRY(check_switches(job, p));
  SANDRUN_TRY(check_limits(job, p));
  return job;
}

std::string policy_summary(const config::HostConfig& config) {
  const config::Policy& p = config.policy;
  std::vector<std::string> keys;
  auto add = [&keys](const char* name, bool set) {
    if (set) keys.push_back(name);
  };
  add("bind_paths", bool(p.bind_paths));
  add("cap_add", bool(p.cap_add));
  add("seccomp_unconfined", bool(p.seccomp_unconfined));
  add("seccomp_profiles", bool(p.seccomp_profiles));
  add("network_host", bool(p.network_host));
  add("no_new_privs_off", bool(p.no_new_privs_off));
  add("userns_off", bool(p.userns_off));
  add("max_memory", bool(p.max_memory));
  add("max_cpus", bool(p.max_cpus));
  add("max_pids", bool(p.max_pids));
  add("max_nofile", bool(p.max_nofile));
  add("max_timeout", bool(p.max_timeout));
  add("max_disk", bool(p.max_disk));
  add("max_disk_inodes", bool(p.max_disk_inodes));
  add("max_log", bool(p.max_log));
  add("max_job_file", bool(p.max_job_file));
  add("registries", bool(p.registries));
  add("max_image_bytes", bool(p.max_image_bytes));
  add("max_image_entries", bool(p.max_image_entries));
  add("max_layer_bytes", bool(p.max_layer_bytes));
  add("max_layer_entries", bool(p.max_layer_entries));
  std::vector<std::string> defaults;
  for (std::string_view key : config::kHostDefaultKeys) {
    if (config.defaults.key_pos.contains(std::string(key))) defaults.emplace_back(key);
  }
  return fmt::format("policy: {}; defaults: {}", keys.empty() ? "none" : fmt::format("{}", fmt::join(keys, ", ")),
                     defaults.empty() ? "none" : fmt::format("{}", fmt::join(defaults, ", ")));
}

cache::ImageLimits image_limits(const config::HostConfig& config) {
  const config::Policy& p = config.policy;
  cache::ImageLimits limits;  // the defaults: 64 GiB and 2 million entries per image
  if (p.max_image_bytes) limits.max_image_bytes = *p.max_image_bytes.value;
  if (p.max_image_entries) limits.max_image_entries = *p.max_image_entries.value;
  if (p.max_layer_bytes) limits.max_layer_bytes = *p.max_layer_bytes.value;
  if (p.max_layer_entries) limits.max_layer_entries = *p.max_layer_entries.value;
  return limits;
}

}  // namespace sandrun::runner
