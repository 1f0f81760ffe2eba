// Internal to config/: reading toml++ nodes (positions, type names, file order) and the
// per-key job parsers. toml++ is included only under config/.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "config/job_file.h"

namespace sandrun::config::detail {

// Where errors found in one table are reported: "jobs.toml:6:11: jobs.unit.timeout: ...".
struct Scope {
  const std::string& file;      // the job file as given, for positions
  const std::string& base_dir;  // resolves relative host paths
  std::string path;             // "jobs.unit" or "defaults"
  bool defaults = false;        // [defaults] takes every job key except run and command
  bool service = false;         // a [jobs.NAME.services.SVC] table takes a container's keys only
};

SourcePos pos_of(const toml::source_region& region, const std::string& file);
// "string", "integer", "float", "boolean", "array", "table" or "date/time".
std::string_view type_name(const toml::node& node);
// A key as it appears in a dotted path: bare when it can be, else quoted ("a b").
std::string key_text(std::string_view key);
// The entries of a table in file order: toml++ keeps them sorted by key.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& t);

// The closest of `candidates` to `word` within 2 edits (case-insensitive), or "".
std::string_view closest(std::string_view word, const std::vector<std::string_view>& candidates);

// Parses one key of a job or [defaults] table into `spec`, recording its position; an unknown
// key is an error that lists the keys the scope takes.
Result<void> apply_job_key(JobSpec& spec, const toml::key& key, const toml::node& value,
                           const Scope& scope);

// [jobs.NAME.services]: each service's table in the order written, names checked, `ready`
// read; `job_scope` is the job's. Services inherit nothing from [defaults].
Result<std::vector<ServiceSpec>> parse_services(const toml::node& value, const Scope& job_scope);
// Published ports across a job and its services (the same host address and port twice), and
// what network = "host" does not allow (ports, services). `job_path` is "jobs.NAME".
Result<void> check_network(const JobSpec& job, const std::string& job_path);

// Turns a toml++ syntax error into an Error positioned in `file`; rewrites a table
// redefinition of jobs.NAME into a "duplicate job" message.
Error syntax_error(const toml::parse_error& err, std::string_view text, const std::string& file);

}  // namespace sandrun::config::detail
