// The TOML job file as plain structs: what the user wrote, validated, with positions for errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sandbox/sys/result.h"

namespace sandrun::config {

// Where something was written: rendered "jobs.toml:4:9" (or just "jobs.toml" when unknown).
struct SourcePos {
  std::string file;
  int line = 0;
  int column = 0;
  std::string str() const;
};

// Resource limits as written. Parsed and validated here; enforced by the sandbox's cgroups.
struct Limits {
  std::optional<uint64_t> memory;  // bytes, >= 4 MiB
  std::optional<double> cpus;      // > 0, e.g. 1.5 = 150% of one core
  std::optional<uint64_t> pids;    // >= 1
};

// A host directory mounted into the container ("host:container[:ro]").
struct VolumeSpec {
  std::string source;  // absolute host path (relative ones resolve against the job file's dir)
  std::string target;  // absolute container path
  bool readonly = false;
};

enum class Network { none, host };

struct JobSpec {
  std::string name;
  SourcePos pos;                       // of the job's table header
  std::string image = "busybox";       // as written; the cache normalises it
  SourcePos image_pos;                 // of the image value; the job's pos when not set
  std::vector<std::string> command;    // argv; `run = "..."` becomes {"/bin/sh", "-c", "..."}
  std::vector<std::pair<std::string, std::string>> env;  // [defaults] first, job overrides; no duplicates
  std::optional<std::string> workdir;  // absolute container path
  std::optional<std::string> workspace;  // absolute host path, mounted read-write at /workspace
  std::vector<VolumeSpec> volumes;
  std::optional<std::chrono::milliseconds> timeout;
  Limits limits;
  std::optional<std::string> user;     // "uid[:gid]" or "name[:group]" looked up in the image
  Network network = Network::none;
  bool init = true;                    // sandrun's init is PID 1 (reaps, forwards signals)
  // Where the value of each key set for the job was written (the [defaults] one when
  // inherited; "run" or "command" for the command), for errors found later, e.g.
  // key_pos["workspace"] when the directory does not exist. Keys left unset have no entry.
  std::map<std::string, SourcePos> key_pos;
  SourcePos where(const std::string& key) const;  // key_pos[key], else pos
};

struct JobFile {
  std::string path;               // as given
  std::string dir;                // absolute directory holding the file
  std::vector<JobSpec> jobs;      // in file order
};

// Reads and validates a job file. Every error names file:line:column and what was expected.
Result<JobFile> load_job_file(const std::string& path);
// The same from text; `path` is used in messages, `base_dir` resolves relative host paths.
Result<JobFile> parse_job_file(std::string_view text, const std::string& path,
                               const std::string& base_dir);

// Value syntaxes shared by the job file and the command line flags. Errors say what was
// expected (`invalid duration "ten": expected a number and a unit (ms, s, m, h) like "90s" or
// "10m"`) without a position; callers add it. Durations are > 0 and at most 365 days.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);  // 500ms 90s 10m 1h30m 1.5s
Result<uint64_t> parse_size(std::string_view text);  // 512MiB 1GiB 64k 1.5G 1048576 (bytes)
// The smallest memory limit accepted: below it not even a shell starts.
inline constexpr uint64_t kMinMemory = uint64_t{4} << 20;
Result<void> check_memory(uint64_t bytes);           // "4 KiB is below the minimum of 4 MiB"
Result<uint64_t> parse_memory(std::string_view text);  // parse_size + check_memory
Result<double> parse_cpus(std::string_view text);    // 0.5 2 1.5
// HOST:CONTAINER[:ro|:rw]; a relative HOST resolves against base_dir (the cwd when empty).
Result<VolumeSpec> parse_volume(std::string_view text, const std::string& base_dir);
Result<std::pair<std::string, std::string>> parse_env(std::string_view text);  // NAME=value
Result<void> check_env_name(std::string_view name);  // non-empty, no '=', no NUL
Result<Network> parse_network(std::string_view text);
Result<void> check_job_name(std::string_view name);
Result<void> check_user(std::string_view user);  // USER[:GROUP], names or numbers

std::string format_duration(std::chrono::milliseconds d);  // "250ms" "1.5s" "1m30s" "10m" "1h30m"
std::string format_size(uint64_t bytes);                    // "512 MiB" "1.5 KiB" "100 B"

}  // namespace sandrun::config
