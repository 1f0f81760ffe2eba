// The operator's host file applied to a job: host [defaults] for what the job does not set, the
// [policy]'s ceilings, and its refusals. Called by resolve (resolve.h), so every front door
// (the job file, `exec`'s flags, later the API and the CI hooks) goes through it.
#pragma once

#include <string>

#include "cache/store.h"
#include "config/host_config.h"
#include "config/job_file.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner {

// Checks what config/ cannot: capability names of policy.cap_add, and host [defaults] above
// the policy's own ceilings. Errors name the host file's line.
Result<void> check_host_config(const config::HostConfig& config);

// What applying the host file needs to know of the host.
struct PolicyHost {
  bool cgroups = true;   // limits can be enforced (host [defaults] of limits apply only then)
  bool service = false;  // the job is a service (no timeout of its own)
  bool disk = true;      // the disk limit can be enforced (host [defaults] of disk apply only then)
};

// The job as the host file makes it, in this order:
//  1. each of timeout, memory, cpus, pids, nofile, disk, disk_inodes, log_max,
//     artifacts_max_size and artifacts_max_files the job leaves unset (in its table, its
//     file's [defaults] and its flags) takes the host's [defaults] value, its key_pos the host
//     file's line; limits only where cgroups (disk: loop devices) enforce them;
//  2. a limit still unset takes the policy's ceiling (max_memory, max_pids below the default
//     1024, max_cpus below the CPUs sandrun may use, max_nofile below sandrun's own hard limit,
//     max_timeout, max_disk and max_disk_inodes below their defaults);
//  3. the policy refuses what it does not allow, naming the job file's line (or the `exec`
//     flag) and the policy's: "jobs.toml:7:3: jobs.build.volumes[0]: host path /etc is
//     outside the policy's bind_paths (/etc/sandrun/sandrun.toml:3:14: bind_paths =
//     ["/srv/ci"])". Workspace and volume sources are checked fully resolved (symlinks
//     followed, `..` removed) and bound as resolved.
// Without a host file it returns the job unchanged.
Result<config::JobSpec> apply_host_config(const config::JobSpec& job, const config::HostConfig& config,
                                          const PolicyHost& host);

// The caps of image imports and pulls: the [policy] keys max_image_bytes, max_image_entries,
// max_layer_bytes and max_layer_entries, else cache::ImageLimits' defaults.
cache::ImageLimits image_limits(const config::HostConfig& config);

// What a host file sets, for `sandrun doctor`: "policy: bind_paths, cap_add; defaults: timeout"
// ("policy: none; defaults: none" for an empty file).
std::string policy_summary(const config::HostConfig& config);

}  // namespace sandrun::runner
