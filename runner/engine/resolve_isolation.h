// Resolving a job's limits and hardening against what this host offers: cgroups, seccomp
// profiles (compiled once per run), capabilities and rlimits. Errors name the job file key.
#pragma once

#include <memory>
#include <optional>

#include "config/job_file.h"
#include "runner/engine/plan.h"
#include "sandbox/cgroup.h"
#include "sandbox/host_features.h"
#include "sandbox/seccomp_filter.h"

namespace sandrun::runner {

// What the host offers for isolation, probed once per command.
struct HostIsolation {
  std::unique_ptr<sandbox::cgroup::Backend> cgroups;  // null: no usable cgroups here
  std::optional<Error> cgroups_missing;               // why not, for jobs that need limits
  sandbox::SeccompCache seccomp;
  sandbox::host::FileLimit nofile;                    // our RLIMIT_NOFILE, and whether it may rise
  // The disk limit: enforced with a loop-mounted file system per slot (root, loop devices and
  // mke2fs present), else why not; and what the state dir's file system has free.
  bool loop_disks = false;
  std::string loop_disks_missing;
  std::optional<uint64_t> state_free;  // bytes

  static HostIsolation probe();
};

// Fills plan.limits, plan.disk and plan.hardening (capabilities, seccomp filter, no_new_privs, read-only
// root, rlimits) from the job; a step of resolve (resolve.h). A limit the host cannot honour is an error here, before any
// job starts: "jobs.toml:3:10: jobs.unit.cpus: cpus = 4 is more than the 2 CPUs of this host".
Result<void> resolve_isolation(const config::JobSpec& job, HostIsolation& host, sandbox::ContainerPlan& plan);

}  // namespace sandrun::runner
