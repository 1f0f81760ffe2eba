// Choosing the jobs of a run: names, --only patterns and --shard I/N.
#include "config/job_file.h"

namespace sandrun::config {

// Placeholder until the selection lands: every job, no sharding.
Result<std::vector<JobSpec>> select_jobs(const JobFile& file, const Selection& selection) {
  (void)selection;
  return file.jobs;
}

Result<std::pair<unsigned, unsigned>> parse_shard(std::string_view text) {
  return Error::msg("invalid shard {:?}", text);
}

}  // namespace sandrun::config
