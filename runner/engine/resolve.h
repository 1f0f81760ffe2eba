// Resolving what the user wrote (a JobSpec) and the image it names into a runnable JobPlan.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "cache/store.h"
#include "config/job_file.h"
#include "runner/engine/job.h"

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

// Builds the plan of one job. Errors (a missing workspace, an unknown user) name the job
// file position of the key that caused them.
Result<JobPlan> resolve_job(const config::JobSpec& job, const cache::ImageRecord& image,
                            const cache::Store& store);

}  // namespace sandrun::runner
