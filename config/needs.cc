// The job graph: `needs` names resolved to expanded jobs, and refused when unknown, self or cyclic.
#include <algorithm>
#include <unordered_map>

#include <fmt/ranges.h>

#include "config/expand.h"

namespace sandrun::config::detail {

namespace {

// One resolved edge: the job needed, and which needs[i] of the needing job wrote it.
struct Edge {
  size_t to;
  size_t raw;
};

std::string need_path(const JobSpec& job, size_t raw) {
  return fmt::format("jobs.{}.needs[{}]", key_text(job.base_name), raw);
}

Error unknown_need(const JobSpec& job, size_t raw, const std::vector<JobSpec>& jobs) {
  std::vector<std::string_view> names;
  for (const JobSpec& j : jobs) {
    if (names.empty() || names.back() != j.base_name) names.push_back(j.base_name);
  }
  const std::string& need = job.needs[raw].name;
  std::string_view best = closest(need, names);
  std::string hint = best.empty() ? fmt::format("; the jobs are: {}", fmt::join(names, ", "))
                                  : fmt::format(" (did you mean \"{}\"?)", best);
  return Error::msg("{}: {}: unknown job \"{}\"{}", job.needs[raw].pos.str(), need_path(job, raw), need, hint);
}

// A need names a job ([jobs.NAME], all its combinations) or one combination by its full name.
Result<std::vector<std::vector<Edge>>> edges_of(const std::vector<JobSpec>& jobs) {
  std::unordered_map<std::string, std::vector<size_t>> by_name;
  for (size_t i = 0; i < jobs.size(); ++i) {
    by_name[jobs[i].base_name].push_back(i);
    if (jobs[i].name != jobs[i].base_name) by_name[jobs[i].name].push_back(i);
  }
  std::vector<std::vector<Edge>> edges(jobs.size());
  for (size_t u = 0; u < jobs.size(); ++u) {
    const JobSpec& job = jobs[u];
    for (size_t raw = 0; raw < job.needs.size(); ++raw) {
      auto it = by_name.find(job.needs[raw].name);
      if (it == by_name.end()) return unknown_need(job, raw, jobs);
      for (size_t v : it->second) {
        if (v == u || job.needs[raw].name == job.base_name) {
          return Error::msg("{}: {}: a job cannot need itself", job.needs[raw].pos.str(), need_path(job, raw));
        }
        bool seen = std::any_of(edges[u].begin(), edges[u].end(), [&](const Edge& e) { return e.to == v; });
        if (!seen) edges[u].push_back(Edge{v, raw});
      }
    }
  }
  return edges;
}

// Depth-first in file order; the edge that closes a cycle is reported, the cycle read from it.
Result<void> check_cycles(const std::vector<JobSpec>& jobs, const std::vector<std::vector<Edge>>& edges) {
  enum Color : char { white, grey, black };
  std::vector<Color> color(jobs.size(), white);
  for (size_t root = 0; root < jobs.size(); ++root) {
    if (color[root] != white) continue;
    std::vector<std::pair<size_t, size_t>> stack{{root, 0}};  // job, next edge
    color[root] = grey;
    while (!stack.empty()) {
      auto& [u, next] = stack.back();
      if (next == edges[u].size()) {
        color[u] = black;
        stack.pop_back();
        continue;
      }
      const Edge e = edges[u][next++];
      if (color[e.to] == white) {
        color[e.to] = grey;
        stack.emplace_back(e.to, 0);
        continue;
      }
      if (color[e.to] == black) continue;
      std::vector<std::string_view> cycle{jobs[u].name};
      auto from = std::find_if(stack.begin(), stack.end(), [&](const auto& s) { return s.first == e.to; });
      for (auto it = from; it != stack.end(); ++it) cycle.push_back(jobs[it->first].name);
      const JobSpec& job = jobs[u];
      return Error::msg("{}: {}: cycle: {}", job.needs[e.raw].pos.str(), need_path(job, e.raw),
                        fmt::join(cycle, " -> "));
    }
  }
  return {};
}

}  // namespace

Result<void> resolve_needs(std::vector<JobSpec>& jobs) {
  auto edges = SANDRUN_TRY(edges_of(jobs));
  SANDRUN_TRY(check_cycles(jobs, edges));
  for (size_t u = 0; u < jobs.size(); ++u) {
    std::vector<Named> needs;
    for (const Edge& e : edges[u]) needs.push_back(Named{jobs[e.to].name, jobs[u].needs[e.raw].pos});
    jobs[u].needs = std::move(needs);
  }
  return {};
}

}  // namespace sandrun::config::detail
