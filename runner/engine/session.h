// What `run` and `exec` share: the images of a run, its plans (prepare_jobs) and running them
// on the loop (execute). The CLI's own helpers are in runner/cli/common.h, the sweep of what
// dead runs left in runner/engine/sweep.h.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "cache/store.h"
#include "config/job_file.h"
#include "runner/engine/resolve.h"
#include "runner/engine/resolve_isolation.h"
#include "runner/engine/plan.h"
#include "runner/engine/result.h"
#include "runner/loop/loop.h"
#include "runner/engine/runner.h"

namespace sandrun::runner {

struct Prepared {
  std::vector<JobPlan> plans;
  std::vector<cache::LayerLease> leases;  // held until the run ends
  std::unique_ptr<HostIsolation> host;    // cgroups and compiled seccomp filters of the run
};

// Ensures every job's image is in the cache (creating the built-in one on first use), leases
// its layers and resolves each job, its limits and hardening included. Errors name the job
// file position.
// A job's image from a registry is pulled as its `pull` policy says, once per run whatever the
// number of jobs that use it.
// `config` is the operator's host file (policy.h): every job and service goes through it.
Result<Prepared> prepare_jobs(cache::Store& store, const std::vector<config::JobSpec>& jobs,
                              const cache::PullOptions& pull, const HostConfig& config = HostConfig{});

// "3 layers downloaded, 0 already here, 1.0 MiB in 124ms": what a pull that was not up to
// date did, for the messages of `run`, `exec` and `image pull`.
std::string pull_summary(const cache::PulledImage& pulled, std::chrono::milliseconds took);


struct Outcome {
  std::vector<JobResult> results;
  int interrupted_by = 0;
  std::chrono::milliseconds wall{0};
};

// Runs the prepared plans on `loop`, in container slots of the state dir.
Result<Outcome> execute(Loop& loop, const std::string& root, Prepared& prepared, RunOptions options);
// The same on a loop of its own (no reporter keeps a handle on it).
Result<Outcome> execute(const std::string& root, Prepared& prepared, RunOptions options);

std::string resolve_root(const std::string& flag);

}  // namespace sandrun::runner
