// resolve: what the user wrote (a JobSpec), the image it names and what the host offers, into a
// JobPlan whose container plans are complete values, const from then on. The only place a
// sandbox::ContainerPlan is written (ci/architecture.rules checks it).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cache/store.h"
#include "config/host_config.h"
#include "config/job_file.h"
#include "runner/engine/plan.h"
#include "runner/engine/resolve_isolation.h"

namespace sandrun::runner {

struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups from the image's /etc/group
  std::string home;           // from /etc/passwd, "" when unknown
};

// Resolves "uid[:gid]" or "name[:group]" against the image's /etc/passwd and /etc/group,
// read beneath the layer directories (top-most first); never through a host path.
Result<UserIds> resolve_user(std::string_view user, const std::vector<std::string>& layers_top_first);

// A valid hostname from a job name: [A-Za-z0-9-] kept, anything else becomes '-', at most 63.
std::string hostname_for(std::string_view name);

// The container's environment: the image's, then PATH/HOSTNAME/HOME defaults, then the job's
// (which override same-named variables).
std::vector<std::string> merge_env(const std::vector<std::string>& image_env,
                                   const std::vector<std::pair<std::string, std::string>>& job_env,
                                   std::string_view hostname, std::string_view home);

// The default PATH of a container whose image sets none.
inline constexpr std::string_view kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Where a key of a job was written, for error messages: "jobs.toml:4:9: jobs.unit.image",
// or "job \"exec\": image" for jobs that come from command line flags.
std::string key_context(const config::JobSpec& job, const char* key);

// A job's name as a file name (logs, artifacts): '/' and control characters become '_'.
std::string file_name_for(std::string_view name);

// The host-wide defaults and the operator's policy every plan is resolved under: the host file
// (/etc/sandrun/sandrun.toml or --config), applied by policy.h; empty: no policy.
using HostConfig = config::HostConfig;

// What resolve needs of the host.
struct Host {
  const cache::Store& store;
  HostIsolation& isolation;     // cgroups, compiled seccomp filters, rlimits
  bool volatile_upper = true;   // the state dir's writable layers are mounted volatile
  bool root = true;             // sandrun runs as root; else rootless (a user namespace each)
};

// The image of a job (found, pulled or imported once per run by the caller, which leases it).
using ImageOf = std::function<Result<const cache::ImageRecord*>(const config::JobSpec&)>;

// Resolves a job, its services and their ready checks. `index` maps the names of the run's
// jobs to their positions (for needs; a need left out of the selection is not waited for).
// Errors (a missing workspace, an unknown user, a limit the host cannot honour, what the
// operator's policy refuses) name the job file position of the key that caused them.
Result<JobPlan> resolve(const config::JobSpec& job, const ImageOf& image_of, const Host& host, const HostConfig& config,
                        const std::map<std::string, size_t>& index);

}  // namespace sandrun::runner
