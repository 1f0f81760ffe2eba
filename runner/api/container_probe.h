// What top and stats show of a running container, read from its cgroup (found through its
// PID 1's /proc/PID/cgroup) and /proc. Blocking: on the threadpool.
#pragma once

#include <sys/types.h>

#include <string>

#include "sandbox/sys/result.h"

namespace sandrun::runner::api {

// GET /containers/{id}/top: {"Titles": [UID, PID, PPID, C, STIME, TTY, TIME, CMD],
// "Processes": [...]} of every process in the container's cgroup.
Result<std::string> top_json(pid_t pid1);

// GET /containers/{id}/stats?stream=false: memory and CPU from the cgroup, two samples
// `interval_ms` apart (cpu_stats and precpu_stats), as Docker's stats.
Result<std::string> stats_json(pid_t pid1, const std::string& id, const std::string& name, int interval_ms);

}  // namespace sandrun::runner::api
