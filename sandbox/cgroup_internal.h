// The helpers shared by cgroup_common.cc, cgroup_v1.cc, cgroup_v2.cc and their tests; not for
// other modules (they use sandbox/cgroup.h).
#pragma once

#include "sandbox/cgroup.h"

namespace sandrun::sandbox::cgroup {

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
// Of the run directory names `runs`, removes (with `backend.remove_run`) those naming a run
// whose process is gone; other names are left alone. Returns how many were removed.
Result<size_t> remove_dead_runs(const std::vector<std::string>& runs, Backend& backend);
// What a Group's destructor does when it was not removed: kill() and remove(), with failures
// logged (a destructor cannot report them).
void destroy_quietly(Group& group);
// kill_members until all of `dirs` are empty, or fails after `timeout_ms`.
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

// The devices a container may use (cgroup_devices.cc): sandrun's own nodes in its /dev and
// its pseudo-terminals. mknod ('m') only of the standard nodes, which tools that populate a
// chroot make; every writable mount is nodev anyway, so a node made there opens nothing.
// /dev/console (5:1) is not among them: a container's console would be one of its pts.
constexpr int kAny = -1;
struct DeviceRule {
  char type;  // 'c' or 'b'
  int major;  // kAny: every major
  int minor;
  const char* access;  // of "rwm"
};
inline constexpr DeviceRule kAllowedDevices[] = {
    {'c', 1, 3, "rwm"},  // null
    {'c', 1, 5, "rwm"},  // zero
    {'c', 1, 7, "rwm"},  // full
    {'c', 1, 8, "rwm"},  // random
    {'c', 1, 9, "rwm"},  // urandom
    {'c', 5, 0, "rwm"},  // tty
    {'c', 5, 2, "rwm"},  // ptmx
    {'c', 136, kAny, "rw"},  // the pts of the container's devpts
};
// "c 1:3 rwm", "c 136:* rw": a line of v1's devices.allow.
std::string v1_device_rule(const DeviceRule& rule);
// cgroup v2: whether the BPF program of kAllowedDevices loads here (once per process).
Result<void> device_policy_loads();
// cgroup v2: attaches that program to the cgroup `cgroup_fd` (its path `dir`, for messages).
Result<void> attach_device_policy(int cgroup_fd, const std::string& dir);

std::unique_ptr<Backend> make_v1(const std::string& root, const std::vector<Mount>& mounts, Seams seams);
Result<std::unique_ptr<Backend>> make_v2(const std::string& root, Seams seams);

}  // namespace detail

}  // namespace sandrun::sandbox::cgroup
