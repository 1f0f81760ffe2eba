// Live restore: taking back a container an earlier daemon of this root left running
// (--live-restore). Its record names PID 1 with its start time, its slot and its cgroup;
// sandrun-init holds the read ends of its output and status pipes (sandbox/status.h
// kKeptFdBase), which the new daemon copies out of it with pidfd_getfd. docs/architecture.md
// ("Live restore") has the design and what a container loses.
#pragma once

#include <sys/types.h>

#include <string>

#include "runner/engine/container_record.h"
#include "runner/engine/slots.h"
#include "sandbox/cgroup.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

// What a Container needs to go on watching a container it did not start (Container::adopt).
struct AdoptedParts {
  pid_t pid = -1;
  UniqueFd pidfd;         // PID 1, pinned: not our child, so watched but never reaped
  UniqueFd pipes[3];      // read ends of stdout, stderr, status (non-blocking, close-on-exec)
  Slot* slot = nullptr;   // taken back into the engine's pool (SlotPool::adopt)
  std::string cgroup;     // its own run under sandrun/ ("live-<tag>-c<pid>-<n>"), "" without one
  std::unique_ptr<sandbox::cgroup::Group> group;  // sandrun/<cgroup>/c, opened again
};

// Checks that the record's PID 1 is still the process it started (pid and start time, then
// pinned by a pidfd), takes its pipes back from sandrun-init, opens its cgroup again through
// `cgroups` (when the engine has them: an exec must join it) and takes its slot into `slots`.
// Blocking (before the loop runs). An error says why it cannot be adopted: the caller marks
// the container exited and ends what is left of it (end_unadopted).
Result<AdoptedParts> adopt_container(const ContainerRecord& rec, SlotPool& slots, sandbox::cgroup::Backend* cgroups);

// The container of `rec` could not be adopted: SIGKILLs its PID 1 if it is still that process
// (the kernel ends its PID namespace with it). Its slot and cgroup are left to the sweep.
void end_unadopted(const ContainerRecord& rec);

}  // namespace sandrun::runner
