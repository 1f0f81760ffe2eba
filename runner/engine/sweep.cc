// Cleaning what dead runs left behind.
#include "runner/engine/sweep.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "runner/engine/engine.h"
#include "runner/engine/slots.h"
#include "runner/net/network_record.h"
#include "runner/net/outbound.h"
#include "runner/report/output.h"
#include "sandbox/cgroup.h"
#include "sandbox/proc.h"
#include "sandbox/sys/log.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {
namespace {

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

// Outbound stacks (pasta) a dead run left: their pid files are named "<pid>-<starttime>.*"
// after the run that started them; a run whose process is gone left them.
size_t sweep_outbound_stacks(const std::string& root) {
  size_t stopped = 0;
  const std::string dir = root + "/outbound";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    unsigned long long pid = 0, start = 0;
    if (std::sscanf(name.c_str(), "%llu-%llu.", &pid, &start) != 2) continue;
    auto st = sandbox::read_proc_stat(static_cast<pid_t>(pid));
    if (st && st->start_time == start && st->state != 'Z') continue;  // that run is alive
    if (auto r = stop_stale_outbound(dir + "/" + name); !r) {
      log::warn("cleanup: {}", r.error().message());
    } else {
      ++stopped;
    }
  }
  return stopped;
}

// The cgroup runs of live-restore containers of `root` ("live-<tag>-..." under sandrun/ of
// any hierarchy: cgroup v2's root, or each v1 controller's), but those in `keep`: their
// processes killed, their directories removed.
size_t sweep_live_cgroups(const std::string& root, const std::set<std::string>& keep) {
  auto backend = sandbox::cgroup::Backend::detect();
  if (!backend) return 0;
  const std::string prefix = live_run_name(root) + "-";
  std::set<std::string> runs;
  std::error_code ec;
  std::vector<std::string> bases{"/sys/fs/cgroup/sandrun"};
  for (const auto& h : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) bases.push_back(h.path().string() + "/sandrun");
  for (const auto& base : bases) {
    std::error_code ec2;
    for (const auto& d : std::filesystem::directory_iterator(base, ec2)) {
      const std::string name = d.path().filename().string();
      if (name.starts_with(prefix) && !keep.count(name)) runs.insert(name);
    }
  }
  size_t removed = 0;
  for (const auto& run : runs) {
    if (auto r = (*backend)->remove_run(run); !r) log::warn("cleanup: {}", r.error().message());
    else ++removed;
  }
  return removed;
}

}  // namespace

bool daemon_holds(const std::string& root) {
  const std::string path = root + "/serve.lock";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  UniqueFd lock(fd);
  return ::flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
}

void sweep_and_report(const std::string& root, bool remove_idle, const std::set<std::string>* keep_live) {
  const bool keep_all_live = !keep_live && daemon_holds(root);
  auto report = sweep_slots(root, remove_idle);
  const size_t stacks = ::geteuid() == 0 ? sweep_outbound_stacks(root) : 0;
  const size_t cgroups =
      ::geteuid() == 0 ? sweep_cgroups() + (keep_all_live ? 0 : sweep_live_cgroups(root, keep_live ? *keep_live : std::set<std::string>{}))
                       : 0;
  // A network's kernel objects go with the daemon that holds them; only a record whose write
  // never finished can be left (runner/net/networks.h).
  const size_t records = sweep_record_temp_files(root + "/networks");
  for (const auto& f : report.failures) log::warn("cleanup: {}", f);
  const bool dead =
      report.slots_cleaned || report.processes_killed || report.mounts_removed || report.disks_removed || cgroups || stacks ||
                    records;
  std::string text;
  if (dead) {
    text = fmt::format("sandrun: cleaned {} container slot{} left by dead runs, killed {} leftover container{}, "
                       "removed {} mount{}",
                       report.slots_cleaned, report.slots_cleaned == 1 ? "" : "s", report.processes_killed,
                       report.processes_killed == 1 ? "" : "s", report.mounts_removed,
                       report.mounts_removed == 1 ? "" : "s");
    if (report.disks_removed)
      text += fmt::format(", removed {} slot file system{}", report.disks_removed, report.disks_removed == 1 ? "" : "s");
    if (cgroups) text += fmt::format(", removed the cgroups of {} dead run{}", cgroups, cgroups == 1 ? "" : "s");
    if (stacks) text += fmt::format(", stopped {} network stack{}", stacks, stacks == 1 ? "" : "s");
    if (records)
      text += fmt::format(", removed {} unfinished network record{}", records, records == 1 ? "" : "s");
  }
  if (remove_idle) {
    if (!dead) text = "sandrun: nothing left behind by dead runs";
    text += fmt::format("; removed {} idle container slot{}", report.slots_removed, report.slots_removed == 1 ? "" : "s");
  }
  if (!text.empty()) console_write(STDERR_FILENO, text + "\n");
}

}  // namespace sandrun::runner
