// The resolved container spec of each job as JSON (`exec --dry-run`, `run --print-spec`):
// everything a container will get, limits and hardening included, before anything runs.
#pragma once

#include <string>
#include <vector>

#include "runner/engine/resolve_isolation.h"
#include "runner/engine/job.h"

namespace sandrun::runner {

// One JSON document: {"jobs": [{name, image layers, command, env, user, mounts, network,
// limits, hardening, timeout}, ...], "cgroups": "v1" | "v2" | "unavailable: ...", "policy": the
// host file the plans were resolved under, or null}.
std::string specs_json(const std::vector<JobPlan>& plans, const HostIsolation& host, const std::string& policy = "");

}  // namespace sandrun::runner
