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
  // v1: O_WRONLY|O_CLOEXEC fds of cgroup.procs of each hierarchy the container joins; the child
  // writes "0" to each before it execs. Empty on v2.
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
  // Creates sandrun/<run>/<name> in every needed hierarchy (memory, cpu, cpuacct, pids and, when
  // mounted, freezer always, so stats exist for every job; cpuset only with limits.cpuset),
  // writes the limits and opens the fds. A failure removes what it created. Limits not given
  // are left at the parent's (unlimited) values.
  virtual Result<std::unique_ptr<Group>> create(const std::string& run, const std::string& name,
                                                const Limits& limits) = 0;
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

// Shared by cgroup_common.cc, cgroup_v1.cc, cgroup_v2.cc and the unit test; not for other modules.
namespace detail {

constexpr uint64_t kMinMemory = 4ull << 20;
constexpr uint64_t kCpuPeriodUsec = 100000;
constexpr uint64_t kMinCpuQuotaUsec = 1000;  // the kernel refuses smaller CFS quotas

// One line of /proc/self/mountinfo.
struct Mount {
  std::string point;
  std::string fstype;
  std::vector<std::string> super_options;  // "rw", "memory", "name=systemd", ...
};
std::vector<Mount> parse_mountinfo(std::string_view text);

// "0-1,3" => {0, 1, 3}; nullopt when it is not such a list.
std::optional<std::vector<unsigned>> parse_cpu_list(std::string_view text);
// {0, 1, 3} => "0-1,3".
std::string format_cpu_list(const std::vector<unsigned>& cpus);
// 4194304 => "4 MiB"; 1536 => "1536 bytes" (the largest unit that divides it exactly).
std::string format_bytes(uint64_t bytes);
// The CFS quota for `cpus` CPUs per kCpuPeriodUsec.
uint64_t cpu_quota_usec(double cpus);
// The CPUs sandrun may run on: seams.cpus, else sched_getaffinity.
std::vector<unsigned> allowed_cpus(const Seams& seams);
// The checks of limit values that do not depend on the cgroup version.
Result<void> check_values(const Limits& limits, const Seams& seams);

// The value of "key N" in a flat-keyed file (cpu.stat, memory.events, pids.events).
std::optional<uint64_t> keyed_value(std::string_view text, std::string_view key);
std::optional<uint64_t> parse_u64(std::string_view text);
std::string_view trim(std::string_view text);

// Reads a control file; a missing file is nullopt (a controller or kernel feature absent).
Result<std::optional<std::string>> read_optional(const std::string& path);
// Writes `value` to an existing control file (O_WRONLY, never O_CREAT) in one write. Errors
// read `<what>: write "<value>" to <path>: <errno text>`.
Result<void> write_value(const std::string& path, std::string_view value, std::string_view what);
// The pids listed in a cgroup.procs file.
Result<std::vector<pid_t>> read_procs(const std::string& path);
// The names of the directories inside `dir`; empty when `dir` is missing.
Result<std::vector<std::string>> subdirs(const std::string& dir);

// Creates `dir` (EEXIST is fine unless `must_be_new`); returns whether it was created. Calls
// seams.after_mkdir on a new one.
Result<bool> make_dir(const std::string& dir, bool must_be_new, const Seams& seams);
// rmdir with EBUSY retried for up to ~1 s; a missing directory is fine.
Result<void> remove_dir(const std::string& dir, const Seams& seams);
// The cgroups a failing create() made, removed (in reverse) unless disarmed.
class Undo {
 public:
  explicit Undo(const Seams& seams) : seams_(seams) {}
  ~Undo();
  Undo(const Undo&) = delete;
  Undo& operator=(const Undo&) = delete;
  void add(std::string dir) { dirs_.push_back(std::move(dir)); }
  void disarm() { dirs_.clear(); }

 private:
  const Seams& seams_;
  std::vector<std::string> dirs_;
};

// SIGKILLs, through a pidfd, each pid listed in the cgroup.procs of `dirs` that is still a
// member (its /proc/PID/cgroup names `rel`, the cgroup's path below the hierarchy root, or a
// cgroup below it), so that a recycled pid is never hit. Returns how many pids were listed.
Result<size_t> kill_members(const std::vector<std::string>& dirs, const std::string& rel);
// kill_members until all of `dirs` are empty, or fails after `timeout_ms`.
// What a Group's destructor does when it was not removed: kill() and remove(), with failures
// logged (a destructor cannot report them).
void destroy_quietly(Group& group);
Result<void> kill_until_empty(const std::vector<std::string>& dirs, const std::string& rel,
                              int timeout_ms = 5000);
// Removes the cgroup `dir` and every cgroup below it, children first; with `kill`, what is
// inside is killed first. `rel` is `dir` below its hierarchy root ("/sandrun/<run>").
Result<void> remove_tree(const std::string& dir, const std::string& rel, const Seams& seams, bool kill);

// "<pid>-<start>[-<tag>]" => {pid, start}.
struct RunName {
  pid_t pid;
  uint64_t start;
};
std::optional<RunName> parse_run_name(std::string_view name);
// Whether the process that made a run named so still exists (same pid and start time, not a zombie).
bool run_alive(const RunName& run);

// True when `name` is one path component (run and job names become directory names).
bool valid_name(std::string_view name);

std::unique_ptr<Backend> make_v1(const std::string& root, const std::vector<Mount>& mounts, Seams seams);
Result<std::unique_ptr<Backend>> make_v2(const std::string& root, Seams seams);

}  // namespace detail
}  // namespace sandrun::sandbox::cgroup
