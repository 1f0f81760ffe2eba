// What `run` and `exec` share: checks, image resolution, the run directory, the loop.
#include "runner/engine/session.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>


#include "runner/engine/caches.h"
#include "runner/net/outbound.h"
#include "runner/report/output.h"
#include "runner/engine/resolve.h"
#include "runner/engine/slots.h"
#include "sandbox/disk_image.h"
#include "sandbox/host_features.h"
#include "sandbox/mount_points.h"
#include "sandbox/proc.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"
#include "sandbox/userns.h"

namespace sandrun::runner {

namespace {

const char* policy_name(config::PullPolicy p) {
  switch (p) {
    case config::PullPolicy::never: return "never";
    case config::PullPolicy::missing: return "missing";
    case config::PullPolicy::always: return "always";
  }
  return "?";
}

Result<cache::ImageRecord> pull_now(cache::Store& store, const std::string& ref, const cache::PullOptions& pull) {
  const auto start = std::chrono::steady_clock::now();
  auto pulled = SANDRUN_TRY(store.pull(ref, pull));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  console_write(STDERR_FILENO, pulled.up_to_date
                                   ? fmt::format("sandrun: {} is up to date\n", pulled.record.ref())
                                   : fmt::format("sandrun: pulled {} ({})\n", pulled.record.ref(), pull_summary(pulled, ms)));
  return std::move(pulled.record);
}

// The job's image as its pull policy says (the caller asks once per image of the run).
Result<cache::ImageRecord> obtain_image(cache::Store& store, const config::JobSpec& job, const cache::PullOptions& pull) {
  const cache::ImageRef ref = SANDRUN_TRY(cache::parse_ref(job.image));
  const bool remote = !ref.registry().empty();
  if (job.pull == config::PullPolicy::always) {
    if (!remote)
      return Error::msg("pull = \"always\" needs a registry in the image name (like 127.0.0.1:5000/{}), and {:?} "
                        "has none", ref.str(), ref.str());
    return pull_now(store, job.image, pull);
  }
  if (auto found = SANDRUN_TRY(store.find(job.image))) return std::move(*found);
  if (!remote) return store.ensure(job.image);  // the built-in image, or how to import one
  if (job.pull == config::PullPolicy::never)
    return Error::msg("image {:?} is not in the image cache (pull = \"{}\"); pull it with: sandrun image pull {}",
                      ref.str(), policy_name(job.pull), ref.str());
  return pull_now(store, job.image, pull);
}

}  // namespace

std::string pull_summary(const cache::PulledImage& pulled, std::chrono::milliseconds took) {
  const cache::ImportStats& s = pulled.stats;
  return fmt::format("{} layer{} downloaded, {} already here, {} in {}", s.layers_unpacked, s.layers_unpacked == 1 ? "" : "s",
                     s.layers_reused, config::format_size(s.bytes_read), config::format_duration(took));
}

namespace {

// The images of a run: each found (or pulled, or imported) and leased once, whatever the
// number of jobs that use it.
struct Images {
  cache::Store& store;
  const cache::PullOptions& pull;
  Prepared& out;
  std::map<std::string, cache::ImageRecord> images;

  Result<const cache::ImageRecord*> of(const config::JobSpec& job) {
    auto it = images.find(job.image);
    if (it == images.end()) {
      auto image = obtain_image(store, job, pull);
      if (!image) return std::move(image.error().wrap(key_context(job, "image")));
      auto lease = store.lease(*image);
      if (!lease) return std::move(lease.error().wrap(fmt::format("job {:?}: lease image layers", job.name)));
      out.leases.push_back(std::move(*lease));
      it = images.emplace(job.image, std::move(*image)).first;
    }
    return &it->second;
  }
};

}  // namespace

Result<Prepared> prepare_jobs(cache::Store& store, const std::vector<config::JobSpec>& jobs,
                              const cache::PullOptions& pull, const HostConfig& config) {
  Prepared out;
  out.host = std::make_unique<HostIsolation>(HostIsolation::probe());
  out.host->seccomp.set_disk_dir(store.root() + "/seccomp");
  const bool root = ::geteuid() == 0;
  if (!root) {
    // Rootless: no cgroups (sandrun does not use a delegated subtree yet). Limits a job asks
    // for are refused up front; the default pids limit is not applied.
    out.host->cgroups.reset();
    out.host->cgroups_missing = Error::msg("cgroups need root: sandrun runs rootless here")
                                    .hint("run sandrun as root to enforce memory, cpus, pids and cpuset limits");
  }
  // The disk limit's mechanism: a loop-mounted ext4 per slot (root only).
  if (root) {
    out.host->loop_disks = sandbox::loop_disks_available(&out.host->loop_disks_missing);
  } else {
    out.host->loop_disks_missing = "loop devices need root: sandrun runs rootless here";
  }
  if (auto free = sandbox::disk_free(store.root())) out.host->state_free = free->bytes;
  // The slots' writable layers live under the state dir (ContainerPlan::volatile_upper), or on
  // their own ext4 without a journal (the disk limit's).
  const bool nojournal = out.host->loop_disks || sandbox::host::on_ext4_without_journal(store.root());
  const Host host{store, *out.host, !nojournal, root};
  Images images{store, pull, out, {}};
  const ImageOf image_of = [&images](const config::JobSpec& job) { return images.of(job); };
  // Needs by name -> by index (config has checked that every name exists in the file).
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < jobs.size(); ++i) index.emplace(jobs[i].name, i);
  for (const auto& job : jobs) out.plans.push_back(SANDRUN_TRY(resolve(job, image_of, host, config, index)));
  return out;
}

Result<Outcome> execute(const std::string& root, Prepared& prepared, RunOptions options) {
  Loop loop;
  return execute(loop, root, prepared, std::move(options));
}

Result<Outcome> execute(Loop& loop, const std::string& root, Prepared& prepared, RunOptions options) {
  auto t0 = std::chrono::steady_clock::now();
  Outcome out;
  if (prepared.host) options.cgroups = prepared.host->cgroups.get();
  Runner runner(loop, std::move(options), root, std::move(prepared.plans));
  SANDRUN_TRY(runner.run());
  out.results = runner.results();
  out.interrupted_by = runner.interrupted_by();
  out.wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  return out;
}

}  // namespace sandrun::runner
