// Choosing the jobs of a run: names, --only patterns and --shard I/N.
#include <fnmatch.h>

#include <algorithm>
#include <charconv>
#include <numeric>
#include <unordered_map>

#include <fmt/ranges.h>

#include "config/job_file.h"
#include "config/toml_read.h"

namespace sandrun::config {

namespace {

// The names a user may give: every [jobs.NAME], then the combinations of matrix jobs.
std::vector<std::string_view> known_names(const std::vector<JobSpec>& jobs) {
  std::vector<std::string_view> names;
  for (const JobSpec& j : jobs) {
    if (std::find(names.begin(), names.end(), j.base_name) == names.end()) names.push_back(j.base_name);
  }
  return names;
}

Error unknown_job(std::string_view name, const std::vector<JobSpec>& jobs) {
  auto names = known_names(jobs);
  std::string_view best = detail::closest(name, names);
  std::string hint = best.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", best);
  return Error::msg("unknown job \"{}\"{}; the jobs are: {}", name, hint, fmt::join(names, ", "));
}

// Marks the jobs named (a base name marks all its combinations); all jobs when none are.
Result<std::vector<bool>> by_names(const std::vector<JobSpec>& jobs, const std::vector<std::string>& names) {
  std::vector<bool> chosen(jobs.size(), names.empty());
  for (const std::string& name : names) {
    bool found = false;
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (jobs[i].name == name || jobs[i].base_name == name) chosen[i] = found = true;
    }
    if (!found) return unknown_job(name, jobs);
  }
  return chosen;
}

// Keeps the jobs one of the patterns matches; a pattern that matches no job is a mistake.
Result<void> by_patterns(const std::vector<JobSpec>& jobs, const std::vector<std::string>& patterns,
                         std::vector<bool>& chosen) {
  if (patterns.empty()) return {};
  std::vector<bool> matched(jobs.size(), false);
  for (const std::string& pattern : patterns) {
    bool any = false;
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (fnmatch(pattern.c_str(), jobs[i].name.c_str(), 0) == 0) matched[i] = any = true;
    }
    if (!any) {
      std::vector<std::string_view> names;
      for (const JobSpec& j : jobs) names.push_back(j.name);
      return Error::msg("--only \"{}\" matches no job; the jobs are: {}", pattern, fmt::join(names, ", "));
    }
  }
  for (size_t i = 0; i < jobs.size(); ++i) chosen[i] = chosen[i] && matched[i];
  return {};
}

std::unordered_map<std::string_view, size_t> index_of(const std::vector<JobSpec>& jobs) {
  std::unordered_map<std::string_view, size_t> index;
  for (size_t i = 0; i < jobs.size(); ++i) index.emplace(jobs[i].name, i);
  return index;
}

// Like make: a chosen job brings the jobs it needs, transitively.
void add_needs(const std::vector<JobSpec>& jobs, std::vector<bool>& chosen) {
  auto index = index_of(jobs);
  std::vector<size_t> todo;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (chosen[i]) todo.push_back(i);
  }
  while (!todo.empty()) {
    size_t u = todo.back();
    todo.pop_back();
    for (const Named& need : jobs[u].needs) {
      auto it = index.find(need.name);
      if (it == index.end() || chosen[it->second]) continue;
      chosen[it->second] = true;
      todo.push_back(it->second);
    }
  }
}

size_t root_of(std::vector<size_t>& parent, size_t x) {
  while (parent[x] != x) x = parent[x] = parent[parent[x]];
  return x;
}

// Weakly connected components of the needs graph go round-robin, in the file order of their
// first job, to shards 1..N: a job and what it needs always run on the same machine.
void keep_shard(const std::vector<JobSpec>& jobs, unsigned index, unsigned count, std::vector<bool>& chosen) {
  auto by_name = index_of(jobs);
  std::vector<size_t> parent(jobs.size());
  std::iota(parent.begin(), parent.end(), size_t{0});
  for (size_t u = 0; u < jobs.size(); ++u) {
    if (!chosen[u]) continue;  // an unselected job joins nothing
    for (const Named& need : jobs[u].needs) {
      auto it = by_name.find(need.name);
      if (it != by_name.end()) parent[root_of(parent, u)] = root_of(parent, it->second);
    }
  }
  std::unordered_map<size_t, unsigned> shard_of_root;
  unsigned components = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!chosen[i]) continue;
    size_t root = root_of(parent, i);
    auto [it, added] = shard_of_root.emplace(root, components % count + 1);
    if (added) ++components;
    chosen[i] = it->second == index;
  }
}

}  // namespace

Result<std::vector<JobSpec>> select_jobs(const JobFile& file, const Selection& selection) {
  const auto& jobs = file.jobs;
  std::vector<bool> chosen = SANDRUN_TRY(by_names(jobs, selection.names));
  SANDRUN_TRY(by_patterns(jobs, selection.only, chosen));
  add_needs(jobs, chosen);
  if (selection.shard_count > 0) {
    if (selection.shard_index < 1 || selection.shard_index > selection.shard_count) {
      return Error::msg("invalid shard {}/{}: expected I/N with 1 <= I <= N, like 2/5", selection.shard_index,
                        selection.shard_count);
    }
    keep_shard(jobs, selection.shard_index, selection.shard_count, chosen);
  }
  std::vector<JobSpec> out;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (chosen[i]) out.push_back(jobs[i]);
  }
  return out;
}

Result<std::pair<unsigned, unsigned>> parse_shard(std::string_view text) {
  auto number = [](std::string_view s, unsigned& out) {
    if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
  };
  size_t slash = text.find('/');
  unsigned index = 0, count = 0;
  if (slash == std::string_view::npos || !number(text.substr(0, slash), index) ||
      !number(text.substr(slash + 1), count) || index < 1 || index > count) {
    return Error::msg("invalid shard \"{}\": expected I/N with 1 <= I <= N, like 2/5", text);
  }
  return std::pair(index, count);
}

}  // namespace sandrun::config
