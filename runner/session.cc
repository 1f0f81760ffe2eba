// What `run` and `exec` share: checks, image resolution, the run directory, the loop.
#include "runner/session.h"

#include <unistd.h>


#include "runner/resolve.h"
#include "runner/slots.h"
#include "sandbox/host_features.h"
#include "sandbox/mount_points.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"
#include "sandbox/userns.h"

namespace sandrun::runner {

void print_error(const Error& e) {
  std::string text = "sandrun: " + e.render() + "\n";
  console_write(STDERR_FILENO, text);
}

Result<void> check_privileges() {
  if (::geteuid() == 0) return {};
  // Rootless: every container gets a user namespace in which the caller is root.
  if (auto r = sandbox::userns::probe(); !r) {
    return std::move(r.error().wrap("sandrun runs rootless when not started as root, which needs "
                                    "unprivileged user namespaces"));
  }
  return {};
}

std::string resolve_root(const std::string& flag) {
  return flag.empty() ? cache::default_root() : fs::absolute(flag);
}

Result<Prepared> prepare_jobs(cache::Store& store, const std::vector<config::JobSpec>& jobs) {
  Prepared out;
  out.host = std::make_unique<HostIsolation>(HostIsolation::probe());
  out.host->seccomp.set_disk_dir(store.root() + "/seccomp");
  if (::geteuid() != 0) {
    // Rootless: no cgroups (sandrun does not use a delegated subtree yet). Limits a job asks
    // for are refused up front; the default pids limit is not applied.
    out.host->cgroups.reset();
    out.host->cgroups_missing = Error::msg("cgroups need root: sandrun runs rootless here")
                                    .hint("run sandrun as root to enforce memory, cpus, pids and cpuset limits");
  }
  // The slots' writable layers live under the state dir (SandboxSpec::volatile_upper).
  const bool volatile_upper = !sandbox::host::on_ext4_without_journal(store.root());
  std::map<std::string, cache::ImageRecord> images;
  for (const auto& job : jobs) {
    auto it = images.find(job.image);
    if (it == images.end()) {
      auto image = store.ensure(job.image);
      if (!image) {
        return std::move(image.error().wrap(key_context(job, "image")));
      }
      auto lease = store.lease(*image);
      if (!lease) return std::move(lease.error().wrap(fmt::format("job {:?}: lease image layers", job.name)));
      out.leases.push_back(std::move(*lease));
      it = images.emplace(job.image, std::move(*image)).first;
    }
    auto plan = SANDRUN_TRY(resolve_job(job, it->second, store));
    SANDRUN_TRY(resolve_isolation(job, *out.host, plan));
    // A read-only root starts without a writable layer where the image allows it.
    auto layer = sandbox::ensure_mount_point_layer(store.root() + "/mountpoints", plan.spec);
    if (!layer) return std::move(layer.error().wrap(fmt::format("job {:?}: prepare its read-only root", job.name)));
    if (*layer) plan.spec.mount_point_layer = std::move(**layer);
    plan.spec.volatile_upper = volatile_upper;
    out.plans.push_back(std::move(plan));
  }
  return out;
}

// Cgroup subtrees of dead runs (sandrun/<run> in every hierarchy), whatever their state dir.
size_t sweep_cgroups() {
  auto backend = sandbox::cgroup::Backend::detect();
  if (!backend) return 0;
  auto removed = (*backend)->sweep_stale();
  if (!removed) {
    log::warn("cleanup: {}", removed.error().message());
    return 0;
  }
  return *removed;
}

void sweep_and_report(const std::string& root, bool remove_idle) {
  auto report = sweep_slots(root, remove_idle);
  const size_t cgroups = ::geteuid() == 0 ? sweep_cgroups() : 0;
  for (const auto& f : report.failures) log::warn("cleanup: {}", f);
  const bool dead = report.slots_cleaned || report.processes_killed || report.mounts_removed || cgroups;
  std::string text;
  if (dead) {
    text = fmt::format("sandrun: cleaned {} container slot{} left by dead runs, killed {} leftover container{}, "
                       "removed {} mount{}",
                       report.slots_cleaned, report.slots_cleaned == 1 ? "" : "s", report.processes_killed,
                       report.processes_killed == 1 ? "" : "s", report.mounts_removed,
                       report.mounts_removed == 1 ? "" : "s");
    if (cgroups) text += fmt::format(", removed the cgroups of {} dead run{}", cgroups, cgroups == 1 ? "" : "s");
  }
  if (remove_idle) {
    if (!dead) text = "sandrun: nothing left behind by dead runs";
    text += fmt::format("; removed {} idle container slot{}", report.slots_removed, report.slots_removed == 1 ? "" : "s");
  }
  if (!text.empty()) console_write(STDERR_FILENO, text + "\n");
}

Result<Outcome> execute(const std::string& root, Prepared& prepared, RunOptions options) {
  auto t0 = std::chrono::steady_clock::now();
  Outcome out;
  if (prepared.host) options.cgroups = prepared.host->cgroups.get();
  Runner runner(std::move(options), root, std::move(prepared.plans));
  SANDRUN_TRY(runner.run());
  out.results = runner.results();
  out.interrupted_by = runner.interrupted_by();
  out.wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  return out;
}

}  // namespace sandrun::runner
