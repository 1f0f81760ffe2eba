// Internal to config/: the context a job key's parser gets, and the value readers the key
// parsers share (job_keys.cc, ci_keys.cc).
#pragma once

#include <string>
#include <string_view>

#include "config/toml_read.h"

namespace sandrun::config::detail {

// One key being parsed: where its value is and how errors about it are prefixed.
struct Ctx {
  const Scope& scope;
  std::string_view key;
  SourcePos pos;  // of the value

  std::string path() const { return scope.path + "." + key_text(key); }
  // "jobs.toml:6:11: jobs.unit.timeout: <text>"
  Error fail(std::string text) const {
    return Error::msg("{}: {}: {}", pos.str(), path(), text);
  }
  // The same for an element or entry of the value, at its own position.
  Error fail_at(const toml::node& n, std::string_view suffix, std::string text) const {
    return Error::msg("{}: {}{}: {}", pos_of(n.source(), scope.file).str(), path(), suffix, text);
  }
  // Prefixes an error from the shared value syntaxes (which carry no position).
  Error wrap(Error e) const { return std::move(e.wrap(fmt::format("{}: {}", pos.str(), path()))); }
  Error type_error(std::string_view expected, const toml::node& n) const {
    return fail(fmt::format("expected {}, got {}", expected, type_name(n)));
  }
};

inline bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

inline bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// A string value: argv, environment and paths become C strings, so NUL is refused here.
Result<std::string> get_string(const toml::node& n, const Ctx& c, std::string_view expected);
Result<bool> get_bool(const toml::node& n, const Ctx& c);
// A size: a string ("512MiB") or an integer number of bytes, at least `min`; `example` goes in
// the type error ("expected a string like "10GiB" or an integer number of bytes").
Result<uint64_t> get_size(const toml::node& n, const Ctx& c, uint64_t min, std::string_view example);
// A string, integer, float or boolean as text ("1", "1.5", "true"); the error has no position.
Result<std::string> scalar_text(const toml::node& n);

// run = "..." and command = [...] (a job's, a service's or a ready check's).
Result<void> set_run(JobSpec& spec, const toml::node& n, const Ctx& c);
Result<void> set_command(JobSpec& spec, const toml::node& n, const Ctx& c);

// The keys of ci_keys.cc (the job graph, retries, workspace, caches, artifacts, junit).
Result<void> set_needs(JobSpec& spec, const toml::node& n, const Ctx& c);
Result<void> set_retries(JobSpec& spec, const toml::node& n, const Ctx& c);
Result<void> set_allow_failure(JobSpec& spec, const toml::node& n, const Ctx& c);
Result<void> set_workspace(JobSpec& spec, const toml::node& n, const Ctx& c);
Result<void> set_caches(JobSpec& spec, const toml::node& n, const Ctx& c);
Result<void> set_artifacts(JobSpec& spec, const toml::node& n, const Ctx& c);
Result<void> set_artifacts_archive(JobSpec& spec, const toml::node& n, const Ctx& c);
Result<void> set_artifacts_when(JobSpec& spec, const toml::node& n, const Ctx& c);
Result<void> set_artifacts_max_size(JobSpec& spec, const toml::node& n, const Ctx& c);
Result<void> set_artifacts_max_files(JobSpec& spec, const toml::node& n, const Ctx& c);
Result<void> set_junit(JobSpec& spec, const toml::node& n, const Ctx& c);

}  // namespace sandrun::config::detail
