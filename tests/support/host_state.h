// What the host looks like after a run: processes, mounts (for "nothing is left behind").
#pragma once

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

#include "tests/support/test_env.h"

namespace sandrun::testing {

// True when a process whose command line is exactly `argv` exists on the host.
bool host_has_process(const std::vector<std::string>& argv);
// Mount points under `prefix` in this process's mount table.
std::vector<std::string> mounts_under(const std::string& prefix);
// Loop devices (/dev/loopN) whose backing file lies under `prefix`
// (/sys/block/loopN/loop/backing_file).
std::vector<std::string> loop_devices_under(const std::string& prefix);
// True when another process holds the flock on <dir>/lock.
bool slot_locked(const std::string& dir);
// cgroup directories sandrun/<run> (any hierarchy, v1 or v2) whose run's process is gone:
// what a run must never leave behind.
// With `tag` (8 hex digits), only runs named "<pid>-<start>-<tag>".
std::vector<std::string> stale_cgroup_runs(const std::string& tag = "");
// The tag sandrun gives the cgroup runs of a state dir (FNV-1a of the path, as runner.cc).
std::string state_tag(const std::string& state_root);
// `unshare --user --map-root-user true` run through setpriv as `uid` (gid the same, no
// supplementary groups): whether an unprivileged user may create a user namespace here, which
// a host's sysctls and AppArmor decide. Needs root.
CommandResult try_user_namespace_as(uid_t uid);
// The host's network links as "index:name" (the caller's own namespace: the test's, the
// host's), to compare before and after.
std::set<std::string> host_links();
// Every /proc/PID/ns/net and /proc/PID/fd/N that is the network namespace of inode `ino`
// ("net:[ino]"): who keeps it alive.
std::vector<std::string> net_namespace_holders(ino_t ino);
// The network namespaces (inodes) open as fds in process `pid`, without its own.
std::vector<ino_t> net_namespaces_held_by(pid_t pid);
// Entries of a directory, sorted (without . and ..); empty when it does not exist.
std::vector<std::string> dir_entries(const std::string& dir);

}  // namespace sandrun::testing
