// What `run` and `exec` share: checks, image resolution, the run directory, the loop.
#include "runner/session.h"

#include <unistd.h>


#include "runner/resolve.h"
#include "runner/slots.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {

void print_error(const Error& e) {
  std::string text = "sandrun: " + e.render() + "\n";
  console_write(STDERR_FILENO, text);
}

Result<void> check_privileges() {
  if (::geteuid() == 0) return {};
  return Error::msg("sandrun must run as root for now")
      .hint("containers need namespaces and mounts that only root may create here (rootless mode "
            "with user namespaces is planned); run it with sudo");
}

std::string resolve_root(const std::string& flag) {
  return flag.empty() ? cache::default_root() : fs::absolute(flag);
}

Result<Prepared> prepare_jobs(cache::Store& store, const std::vector<config::JobSpec>& jobs) {
  Prepared out;
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
    out.plans.push_back(SANDRUN_TRY(resolve_job(job, it->second, store)));
  }
  return out;
}

void sweep_and_report(const std::string& root, bool remove_idle) {
  auto report = sweep_slots(root, remove_idle);
  for (const auto& f : report.failures) log::warn("cleanup: {}", f);
  const bool dead = report.slots_cleaned || report.processes_killed || report.mounts_removed;
  std::string text;
  if (dead) {
    text = fmt::format("sandrun: cleaned {} container slot{} left by dead runs, killed {} leftover container{}, "
                       "removed {} mount{}",
                       report.slots_cleaned, report.slots_cleaned == 1 ? "" : "s", report.processes_killed,
                       report.processes_killed == 1 ? "" : "s", report.mounts_removed,
                       report.mounts_removed == 1 ? "" : "s");
  }
  if (remove_idle) {
    if (!dead) text = "sandrun: nothing left behind by dead runs";
    text += fmt::format("; removed {} idle container slot{}", report.slots_removed, report.slots_removed == 1 ? "" : "s");
  }
  if (!text.empty()) console_write(STDERR_FILENO, text + "\n");
}

Result<Outcome> execute(const std::string& root, std::vector<JobPlan> plans, RunOptions options) {
  auto t0 = std::chrono::steady_clock::now();
  Outcome out;
  Runner runner(std::move(options), root, std::move(plans));
  SANDRUN_TRY(runner.run());
  out.results = runner.results();
  out.interrupted_by = runner.interrupted_by();
  out.wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  return out;
}

}  // namespace sandrun::runner
