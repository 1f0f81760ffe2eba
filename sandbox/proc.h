// What /proc says of a process: its root directory and network namespace (checked against its
// pidfd), its state and start time.
#pragma once

#include <sys/types.h>

#include <optional>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::sandbox {

// Opens the root directory of a running container as seen by its process `pid` (the held
// sandrun-init), O_PATH. `pidfd` must refer to the same process: it is checked after the
// open, so a pid reused between the exit of ours and the open is detected and refused.
Result<UniqueFd> open_container_root(pid_t pid, int pidfd);

// Opens the network namespace of process `pid` (a container's init), checked against `pidfd`
// in the same way.
Result<UniqueFd> open_container_netns(pid_t pid, int pidfd);

// What /proc/PID/stat says of a process: its state (field 3) and start time (field 22).
struct ProcStat {
  char state = 0;
  unsigned long long start_time = 0;
};
std::optional<ProcStat> read_proc_stat(pid_t pid);
// The start time of a process, or 0 when it does not exist.
unsigned long long process_start_time(pid_t pid);

}  // namespace sandrun::sandbox
