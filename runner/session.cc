// What `run` and `exec` share: checks, image resolution, the run directory, the loop.
#include "runner/session.h"

#include <unistd.h>

#include <fmt/ranges.h>

#include "runner/resolve.h"
#include "runner/run_dir.h"
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

void sweep_and_report(const std::string& root, bool quiet_when_clean) {
  auto report = sweep_dead_runs(root);
  for (const auto& f : report.failures) log::warn("cleanup: {}", f);
  if (report.runs.empty()) {
    if (!quiet_when_clean) console_write(STDERR_FILENO, "sandrun: nothing to clean up\n");
    return;
  }
  console_write(STDERR_FILENO,
                fmt::format("sandrun: removed {} dead run{} ({}), killed {} leftover container{}, removed {} mount{}\n",
                            report.runs.size(), report.runs.size() == 1 ? "" : "s", fmt::join(report.runs, ", "),
                            report.processes_killed, report.processes_killed == 1 ? "" : "s",
                            report.mounts_removed, report.mounts_removed == 1 ? "" : "s"));
}

Result<Outcome> execute(const std::string& root, std::vector<JobPlan> plans, RunOptions options) {
  auto run_dir = SANDRUN_TRY(RunDir::create(root));
  auto t0 = std::chrono::steady_clock::now();
  Outcome out;
  {
    Runner runner(std::move(options), run_dir, std::move(plans));
    SANDRUN_TRY(runner.run());
    out.results = runner.results();
    out.interrupted_by = runner.interrupted_by();
  }
  out.wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  SANDRUN_TRY(run_dir.remove().wrap("remove the run directory"));
  return out;
}

}  // namespace sandrun::runner
