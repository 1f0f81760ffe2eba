// The operator's host file (/etc/sandrun/sandrun.toml): a [policy] no job file, `exec` flag,
// API request or CI hook can override, and [defaults] for what a job does not set.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/job_file.h"

namespace sandrun::config {

// Where the host file is looked for when no --config names one; absent there means no policy.
inline constexpr std::string_view kDefaultHostConfig = "/etc/sandrun/sandrun.toml";

// One policy key: unset (`value` empty) allows everything, as without a policy; `pos` is where
// the operator wrote it, named in every refusal.
template <typename T>
struct Rule {
  std::optional<T> value;
  SourcePos pos;
  explicit operator bool() const { return value.has_value(); }
};

// The [policy] table. Each key limits what a job (or `exec`'s flags) may ask for; a key the
// table leaves out allows what the job file documents.
struct Policy {
  // Host paths a workspace, a volume or `exec -v` may bind: absolute, lexically normalised
  // prefixes; a source must lie at or beneath one of them once fully resolved (symlinks
  // followed, `..` removed). An empty list allows no host path at all.
  Rule<std::vector<std::string>> bind_paths;
  // The capabilities a job may add (names as written, "NET_ADMIN" or "CAP_NET_ADMIN"); `false`
  // is the empty list (no cap_add at all); `true` or a list with "ALL" is the same as unset.
  Rule<std::vector<std::string>> cap_add;
  Rule<bool> seccomp_unconfined;  // seccomp = "unconfined"
  Rule<bool> seccomp_profiles;    // seccomp = "a/profile.json" (a job's own filter)
  Rule<bool> network_host;        // network = "host"
  Rule<bool> no_new_privs_off;    // no_new_privs = false
  Rule<bool> userns_off;          // userns = false
  // Ceilings: a job asking for more is refused; a job asking for nothing gets the ceiling.
  Rule<uint64_t> max_memory;                 // bytes
  Rule<double> max_cpus;
  Rule<uint64_t> max_pids;
  Rule<uint64_t> max_nofile;                 // the hard RLIMIT_NOFILE
  Rule<std::chrono::milliseconds> max_timeout;
  Rule<uint64_t> max_disk;                   // bytes of a job's writable file systems
  Rule<uint64_t> max_disk_inodes;            // their files
  Rule<uint64_t> max_log;                    // bytes of a job's log file (log_max)
  // Caps on what an image may unpack to when it is imported or pulled (apparent bytes, a
  // sparse entry counted whole; entries); unset: the defaults below. The layer caps, unset,
  // leave only the image's.
  Rule<uint64_t> max_image_bytes;
  Rule<uint64_t> max_image_entries;
  Rule<uint64_t> max_layer_bytes;
  Rule<uint64_t> max_layer_entries;
  // The size cap of a job file (kDefaultMaxJobFile when unset): it may be raised or lowered.
  Rule<uint64_t> max_job_file;
  // Registry hosts ("127.0.0.1:5000", "ghcr.io") an image may name; an image without a
  // registry host (the cache's own) is always allowed.
  Rule<std::vector<std::string>> registries;
};

struct HostConfig {
  std::string path;  // the file read, "" when there is none (no policy, no defaults)
  Policy policy;
  // [defaults]: the values of the job keys timeout, memory, cpus, pids, nofile, disk,
  // disk_inodes, log_max, artifacts_max_size and artifacts_max_files for jobs that set none
  // (neither in their table nor in their file's [defaults]); key_pos holds where each was
  // written in the host file. Other fields are unused.
  JobSpec defaults;
};

// The host-wide [defaults] keys.
inline constexpr std::string_view kHostDefaultKeys[] = {"timeout", "memory", "cpus", "pids", "nofile",
                                                        "disk", "disk_inodes", "log_max",
                                                        "artifacts_max_size", "artifacts_max_files"};

// Reads and validates a host file. Errors name file:line:column and the key; an unknown key
// gets a "did you mean".
Result<HostConfig> load_host_config(const std::string& path);
Result<HostConfig> parse_host_config(std::string_view text, const std::string& path);

}  // namespace sandrun::config
