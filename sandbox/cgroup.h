// A container's cgroups: cgroup v1 and v2 behind one interface (limits, stats, kill, cleanup).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"

namespace sandrun::sandbox::cgroup {

enum class Version { v1, v2 };

struct Limits {
  // Bytes; swap is counted in the same limit (v2: memory.max + memory.swap.max=0; v1:
  // memory.limit_in_bytes and memory.memsw.limit_in_bytes set to the same value when the memsw
  // file exists, else memory.swappiness=0).
  std::optional<uint64_t> memory;
  // CFS quota: 1.5 => quota 150000 per period 100000 (v1 cpu.cfs_period_us/cfs_quota_us, v2
  // cpu.max "150000 100000").
  std::optional<double> cpus;
  std::optional<uint64_t> pids;  // pids.max
  // "0-1,3" => cpuset.cpus (v1: cpuset.mems, and cpus for intermediate levels, are copied from
  // the parent at every level sandrun creates, because v1 cpuset cgroups start empty).
  std::optional<std::string> cpuset;
};

struct Stats {
  std::optional<uint64_t> memory_peak;  // bytes: v2 memory.peak (absent before 5.19), v1 memory.max_usage_in_bytes
  std::optional<uint64_t> cpu_usec;     // v2 cpu.stat usage_usec, v1 cpuacct.usage / 1000
  uint64_t oom_kills = 0;               // v2 memory.events oom_kill, v1 memory.oom_control oom_kill
  uint64_t pids_limit_hits = 0;         // pids.events "max N" (both versions)
};

// What `sandrun doctor` and the runner's up-front checks show.
struct HostInfo {
  Version version = Version::v2;
  std::string root;                      // "/sys/fs/cgroup"
  std::vector<std::string> controllers;  // usable ones among memory, cpu, cpuacct, pids, cpuset
  // Where sandrun's subtree goes: "/sys/fs/cgroup/sandrun" (v2) or the pattern
  // "/sys/fs/cgroup/<controller>/sandrun" (v1).
  std::string base;
  // A device policy applies to every container (only its standard nodes; docs/security.md):
  // v1 with the devices controller mounted, v2 when its BPF device program loads.
  bool device_policy = false;
  // Facts worth showing, e.g. "memory.memsw absent: swap accounting off (swapaccount=1); swap is
  // kept out with memory.swappiness=0".
  std::vector<std::string> notes;
};

// Replaceable host probes, so that unit tests can run the backends against a plain directory
// shaped like cgroupfs. Production code passes none.
struct Seams {
  // Runs after each directory sandrun creates and before anything is written to it (cgroupfs
  // fills a new cgroup with control files; a plain directory stays empty).
  std::function<void(const std::string& dir)> after_mkdir;
  // Runs before each rmdir (a plain directory must be emptied first; a cgroup must not).
  std::function<void(const std::string& dir)> before_rmdir;
  // Replaces the statfs check of whether `root` is a cgroup2 mount.
  std::optional<bool> root_is_cgroup2;
  // Replaces sched_getaffinity: the CPUs sandrun may run on.
  std::optional<std::vector<unsigned>> cpus;
  // v2: no BPF device program is attached (a plain directory takes none).
  bool skip_device_program = false;
};

// One container's cgroup(s), held by unique_ptr. The destructor kills what is left in it and
// removes it (best effort, never throws; failures are logged).
class Group {
 public:
  virtual ~Group() = default;
  virtual Version version() const = 0;
  // v2: an O_RDONLY|O_DIRECTORY|O_CLOEXEC fd of the cgroup directory for
  // clone3(CLONE_INTO_CGROUP); -1 on v1.
  virtual int clone_into_fd() const = 0;
  // v1: O_WRONLY|O_CLOEXEC fds of the `tasks` file of each hierarchy the container joins; the
  // child, a single thread, writes "0" to each before it execs. Empty on v2.
  virtual const std::vector<int>& procs_fds() const = 0;
  // For messages: the v2 directory, or the v1 memory directory.
  virtual const std::string& path() const = 0;
  virtual Result<Stats> stats() const = 0;
  // The processes in the group now (v1: in any of its hierarchies), sorted.
  virtual Result<std::vector<pid_t>> procs() const = 0;
  // v2: writes "1" to cgroup.kill (fallback: SIGKILL each pid of cgroup.procs until empty);
  // v1: freezes the group's freezer cgroup when there is one, SIGKILLs every pid in
  // cgroup.procs, thaws, and repeats until empty. Returns once the group is empty.
  virtual Result<void> kill() = 0;
  // rmdir (leaf first, in every hierarchy); EBUSY right after the last process died is retried
  // for up to ~1 s with short sleeps (callers run this on a worker thread).
  virtual Result<void> remove() = 0;
  // Lets the cgroup outlive this object (a container left running by the daemon's
  // --live-restore): the destructor neither kills nor removes it.
  virtual void keep() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Chooses v2 when `root` is itself a cgroup2 mount (statfs magic CGROUP2_SUPER_MAGIC), else v1
  // with the controllers found in `mountinfo` (a hybrid host is v1).
  static Result<std::unique_ptr<Backend>> detect(const std::string& root = "/sys/fs/cgroup",
                                                 const std::string& mountinfo = "/proc/self/mountinfo");
  static Result<std::unique_ptr<Backend>> detect(const std::string& root, const std::string& mountinfo,
                                                 Seams seams);
  virtual const HostInfo& info() const = 0;
  // Can this host honour `limits`? The first problem as a clear error; no side effects.
  virtual Result<void> check(const Limits& limits) const = 0;
  // Creates sandrun/<run>/<name> in every needed hierarchy (memory, cpu, cpuacct, pids, devices
  // and, when mounted, freezer always, so stats exist for every job; cpuset only with limits.cpuset),
  // writes the limits and the device policy (v1 devices.deny/allow, v2 a BPF program) and opens
  // the fds. A failure removes what it created. Limits not given
  // are left at the parent's (unlimited) values.
  virtual Result<std::unique_ptr<Group>> create(const std::string& run, const std::string& name,
                                                const Limits& limits) = 0;
  // The group sandrun/<run>/<name> as an earlier create() left it (a container an earlier daemon
  // left running, taken back by --live-restore): nothing is made or written, the join fds are
  // opened as create() opens them (v1: each hierarchy that has the directory). An error when it
  // is not there. The object owns it as create()'s does: its destructor kills and removes it.
  virtual Result<std::unique_ptr<Group>> open(const std::string& run, const std::string& name) = 0;
  // Removes sandrun/<run> in every hierarchy; groups still in it are killed and removed first.
  virtual Result<void> remove_run(const std::string& run) = 0;
  // Removes the subtrees of dead runs under sandrun/: a run dir named by run_id() (optionally
  // followed by "-<tag>") of a process that no longer exists (pid and start time from
  // /proc/PID/stat do not match) is emptied (its processes killed) and removed. Directories with
  // other names are left alone. Returns how many runs were removed.
  virtual Result<size_t> sweep_stale() = 0;
};

// This process's run name: "<pid>-<starttime>" (starttime = field 22 of /proc/self/stat).
std::string run_id();

}  // namespace sandrun::sandbox::cgroup
