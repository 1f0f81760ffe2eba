// What `run` and `exec` share: the checks before anything starts, image resolution, the
// run directory, and running the planned jobs on the loop.
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

// Prints "sandrun: <message>" (and the hint) to stderr.
void print_error(const Error& e);

// Fails unless this process may create containers (root, for now).
Result<void> check_privileges();

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
Result<Prepared> prepare_jobs(cache::Store& store, const std::vector<config::JobSpec>& jobs,
                              const cache::PullOptions& pull);

// "3 layers downloaded, 0 already here, 1.0 MiB in 124ms": what a pull that was not up to
// date did, for the messages of `run`, `exec` and `image pull`.
std::string pull_summary(const cache::PulledImage& pulled, std::chrono::milliseconds took);

// The pull options of the command line.
cache::PullOptions pull_options(const std::vector<std::string>& insecure, const std::string& auth_file,
                                const std::string& ca_file, const std::string& platform);

// Cleans what dead runs left behind (and, with `remove_idle`, deletes idle container slots),
// reporting it on stderr.
void sweep_and_report(const std::string& root, bool remove_idle);

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
