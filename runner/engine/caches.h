// Named cache volumes (JobSpec::caches): host dirs under <state>/caches kept between runs,
// each used read-write by one container at a time and copy-on-write by the others.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runner/engine/slots.h"
#include "sandbox/spec.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

struct JobPlan;  // runner/job.h

struct CacheMount {
  std::string name;    // file-safe: "cache-pip-1f2e3d4c" (see cache_mount)
  std::string target;  // absolute container path
};

// The cache a job names with `written` ("~/.cache/pip" or "/var/cache/apt"): `~` is `home`,
// the home of the job's user. The name is the path as written made file-safe (at most 48
// characters) plus 8 hex digits of its hash: the same path written in two jobs (or files)
// names the same cache, whatever the user's home is.
Result<CacheMount> cache_mount(std::string_view written, std::string_view home);

// <state_root>/caches: one dir per cache, and <name>.lock next to it.
std::string caches_dir(const std::string& state_root);

// The plan's spec with a directory volume on each cache's target, for what must know every
// mount point before the start (the mount-point layer of a read-only root).
sandbox::SandboxSpec with_cache_targets(const JobPlan& plan);

// The locks of a container's caches, held until it is torn down.
class CacheLease {
 public:
  CacheLease() = default;
  CacheLease(CacheLease&&) = default;
  CacheLease& operator=(CacheLease&&) = default;
  // One line per cache another container holds (this one got a copy-on-write view), for the
  // job's log, to be written on the loop thread.
  std::vector<std::string> notes;
  // Takes the binds acquire_caches() added out of `spec` and unlocks the caches.
  void release(sandbox::SandboxSpec& spec);

 private:
  friend Result<CacheLease> acquire_caches(const std::string&, const std::vector<CacheMount>&, const Slot&,
                                           sandbox::SandboxSpec&);
  std::vector<UniqueFd> locks_;
  size_t binds_ = 0;  // added at the end of spec.binds
};

// Adds a volume to `spec` for each cache, creating it on first use (owned by the job's user,
// spec.uid/gid, as the host sees them). A cache whose lock (flock LOCK_EX|LOCK_NB on
// <name>.lock) this container gets is bound read-write; one that another container holds is
// mounted as an overlay with the cache as its lower layer and upper/work dirs under
// <slot>/cow/<i>/, so that this container reads it, cannot disturb the holder, and its writes
// go with its slot. Blocking (file system work): runs on the threadpool before the start.
Result<CacheLease> acquire_caches(const std::string& state_root, const std::vector<CacheMount>& caches,
                                  const Slot& slot, sandbox::SandboxSpec& spec);

}  // namespace sandrun::runner
