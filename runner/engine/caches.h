// Named cache volumes (JobSpec::caches): host dirs under <state>/caches kept between runs,
// each used read-write by one container at a time and copy-on-write by the others.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runner/engine/plan.h"
#include "runner/engine/slots.h"
#include "sandbox/container_plan.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {


// The cache a job names with `written` ("~/.cache/pip" or "/var/cache/apt"): `~` is `home`,
// the home of the job's user. The name is the path as written made file-safe (at most 48
// characters) plus 8 hex digits of its hash: the same path written in two jobs (or files)
// names the same cache, whatever the user's home is.
Result<CacheMount> cache_mount(std::string_view written, std::string_view home);

// <state_root>/caches: one dir per cache, and <name>.lock next to it.
std::string caches_dir(const std::string& state_root);

// The caches' targets, for what must know every mount point before the start (the
// mount-point layer of a read-only root).
std::vector<std::string> cache_targets(const std::vector<CacheMount>& caches);

// The locks of a container's caches, held until it is torn down.
class CacheLease {
 public:
  CacheLease() = default;
  CacheLease(CacheLease&&) = default;
  CacheLease& operator=(CacheLease&&) = default;
  // One line per cache another container holds (this one got a copy-on-write view), for the
  // job's log, to be written on the loop thread.
  std::vector<std::string> notes;
  // The caches' volumes, for the container's placement (sandbox::Placement::binds).
  std::vector<sandbox::Bind> binds;

 private:
  friend Result<CacheLease> acquire_caches(const std::string&, const std::vector<CacheMount>&, const Slot&,
                                           const sandbox::ContainerPlan&);
  std::vector<UniqueFd> locks_;  // unlocked when the lease goes
};

// A volume for each cache (CacheLease::binds), creating it on first use (owned by the job's
// user, plan.uid/gid, as the host sees them). A cache whose lock (flock LOCK_EX|LOCK_NB on
// <name>.lock) this container gets is bound read-write; one that another container holds is
// mounted as an overlay with the cache as its lower layer and upper/work dirs under
// <slot>/cow/<i>/, so that this container reads it, cannot disturb the holder, and its writes
// go with its slot. Blocking (file system work): runs on the threadpool before the start.
Result<CacheLease> acquire_caches(const std::string& state_root, const std::vector<CacheMount>& caches,
                                  const Slot& slot, const sandbox::ContainerPlan& plan);

}  // namespace sandrun::runner
