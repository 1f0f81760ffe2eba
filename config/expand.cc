// Matrix expansion: combinations (product, exclude, include), names, ${{ matrix.KEY }}, MATRIX_*.
#include <algorithm>
#include <cctype>

#include <fmt/ranges.h>

#include "config/expand.h"
#include "config/key_ctx.h"

namespace sandrun::config::detail {

namespace {

using Combo = std::vector<std::pair<std::string, std::string>>;

const std::string* find_value(const Combo& combo, std::string_view key) {
  for (const auto& [k, v] : combo) {
    if (k == key) return &v;
  }
  return nullptr;
}

void set_value(Combo& combo, const std::string& key, const std::string& value) {
  for (auto& [k, v] : combo) {
    if (k == key) {
      v = value;
      return;
    }
  }
  combo.emplace_back(key, value);
}

bool is_axis(const Matrix& m, std::string_view key) {
  return std::any_of(m.axes.begin(), m.axes.end(), [&](const auto& a) { return a.first == key; });
}

// Every given key has the combination's value.
bool matches(const Combo& combo, const MatrixEntry& entry, const Matrix& m, bool axes_only) {
  for (const auto& [k, v] : entry.values) {
    if (axes_only && !is_axis(m, k)) continue;
    const std::string* have = find_value(combo, k);
    if (!have || *have != v) return false;
  }
  return true;
}

// The product of the axes in row-major order: the first key written varies slowest.
Result<std::vector<Combo>> product(const Matrix& m) {
  size_t count = m.axes.empty() ? 0 : 1;
  for (const auto& [key, values] : m.axes) {
    count *= values.size();
    if (count > kMaxCombinations) {
      return Error::msg("{}: {}: has more than {} combinations; split the job",
                        m.pos.str(), m.path, kMaxCombinations);
    }
  }
  std::vector<Combo> combos(count);
  size_t repeat = count;
  for (const auto& [key, values] : m.axes) {
    repeat /= values.size();
    for (size_t i = 0; i < count; ++i) combos[i].emplace_back(key, values[(i / repeat) % values.size()]);
  }
  return combos;
}

// GitHub Actions' include: an entry whose axis values match one or more of the original
// combinations adds its other keys to them; an entry that matches none is a new combination.
// Original axis values are never overwritten; values an earlier include added may be.
void apply_include(std::vector<Combo>& combos, const Matrix& m) {
  const size_t original = combos.size();
  for (const MatrixEntry& entry : m.include) {
    bool matched = false;
    for (size_t i = 0; i < original; ++i) {
      if (!matches(combos[i], entry, m, /*axes_only=*/true)) continue;
      matched = true;
      for (const auto& [k, v] : entry.values) {
        if (!is_axis(m, k)) set_value(combos[i], k, v);
      }
    }
    if (matched) continue;
    Combo added;  // axis keys in the axes' order, then the others as written
    for (const auto& [key, values] : m.axes) {
      if (const std::string* v = find_value(entry.values, key)) added.emplace_back(key, *v);
    }
    for (const auto& [k, v] : entry.values) {
      if (!is_axis(m, k)) added.emplace_back(k, v);
    }
    combos.push_back(std::move(added));
  }
}

Result<std::vector<Combo>> combinations(const Matrix& m) {
  auto combos = SANDRUN_TRY(product(m));
  std::erase_if(combos, [&](const Combo& c) {
    return std::any_of(m.exclude.begin(), m.exclude.end(),
                       [&](const MatrixEntry& e) { return matches(c, e, m, /*axes_only=*/false); });
  });
  apply_include(combos, m);
  if (combos.empty()) {
    return Error::msg("{}: {}: expands to no jobs: exclude removes every combination", m.pos.str(), m.path);
  }
  if (combos.size() > kMaxCombinations) {
    return Error::msg("{}: {}: has {} combinations, more than {}; split the job", m.pos.str(), m.path,
                      combos.size(), kMaxCombinations);
  }
  return combos;
}

std::string combo_name(const std::string& base, const Combo& combo) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : combo) parts.push_back(k + "=" + v);
  return fmt::format("{} ({})", base, fmt::join(parts, ", "));
}

}  // namespace

std::string matrix_env_name(std::string_view key) {
  std::string name = "MATRIX_";
  for (char c : key) {
    bool alnum = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    name += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : alnum ? c : '_';
  }
  return name;
}

namespace {

// Where a string being substituted was written, for its errors.
struct Origin {
  SourcePos pos;
  std::string path;  // "jobs.unit.command[1]"
};

// The text with every ${{ matrix.KEY }} replaced; spaces inside the braces are optional.
Result<std::string> substitute(std::string_view text, const Combo& combo, const Origin& o) {
  std::string out;
  size_t at = 0;
  while (true) {
    size_t open = text.find("${{", at);
    if (open == std::string_view::npos) break;
    out.append(text.substr(at, open - at));
    size_t i = open + 3;
    auto skip_spaces = [&] { while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i; };
    skip_spaces();
    bool ok = text.substr(i).starts_with("matrix.");
    size_t name_start = i + 7;
    size_t name_end = name_start;
    while (ok && name_end < text.size() && (std::isalnum(static_cast<unsigned char>(text[name_end])) ||
                                            text[name_end] == '_' || text[name_end] == '-')) {
      ++name_end;
    }
    i = name_end;
    skip_spaces();
    ok = ok && name_end > name_start && text.substr(i).starts_with("}}");
    size_t close = text.find("}}", open + 3);
    std::string_view shown = text.substr(open, close == std::string_view::npos ? 40 : close + 2 - open);
    if (!ok) {
      return Error::msg("{}: {}: invalid substitution \"{}\": expected ${{{{ matrix.NAME }}}}", o.pos.str(),
                        o.path, shown);
    }
    std::string_view key = text.substr(name_start, name_end - name_start);
    const std::string* value = find_value(combo, key);
    if (!value) {
      std::vector<std::string_view> keys;
      for (const auto& [k, v] : combo) keys.push_back(k);
      if (keys.empty()) {
        return Error::msg("{}: {}: \"{}\": the job has no matrix", o.pos.str(), o.path, shown);
      }
      std::string_view best = closest(key, keys);
      std::string hint = best.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", best);
      return Error::msg("{}: {}: unknown matrix key \"{}\" in \"{}\"{}; the matrix has: {}", o.pos.str(),
                        o.path, key, shown, hint, fmt::join(keys, ", "));
    }
    out += *value;
    at = i + 2;
  }
  out.append(text.substr(at));
  return out;
}

bool same_pos(const std::map<std::string, SourcePos>& a, const std::map<std::string, SourcePos>& b,
              const std::string& key) {
  auto x = a.find(key), y = b.find(key);
  return x != a.end() && y != b.end() && x->second.line == y->second.line &&
         x->second.column == y->second.column;
}

// Substitutes in run/command, env values, image and workdir, naming the value on error.
// `job_path` is "jobs.unit" or, for a service, "jobs.unit.services.redis".
Result<void> substitute_job(JobSpec& job, const Combo& combo, const JobSpec& defaults,
                            const std::string& job_path) {
  auto origin = [&](const std::string& key, std::string suffix) {
    // An inherited value names the job it failed for: [defaults] serves them all.
    if (same_pos(job.key_pos, defaults.key_pos, key)) {
      return Origin{job.where(key), fmt::format("defaults.{}{} (for {})", key, suffix, job_path)};
    }
    return Origin{job.where(key), job_path + "." + key + suffix};
  };
  const bool run = job.key_pos.contains("run");
  for (size_t i = 0; i < job.command.size(); ++i) {
    Origin o = run ? origin("run", "") : origin("command", fmt::format("[{}]", i));
    job.command[i] = SANDRUN_TRY(substitute(job.command[i], combo, o));
  }
  for (auto& [name, value] : job.env) value = SANDRUN_TRY(substitute(value, combo, origin("env", "." + key_text(name))));
  if (job.key_pos.contains("image")) job.image = SANDRUN_TRY(substitute(job.image, combo, origin("image", "")));
  if (job.workdir) {
    job.workdir = SANDRUN_TRY(substitute(*job.workdir, combo, origin("workdir", "")));
    if (!job.workdir->starts_with('/')) {
      return Error::msg("{}: {}: container path \"{}\" must be absolute", job.where("workdir").str(),
                        origin("workdir", "").path, *job.workdir);
    }
  }
  return {};
}

// A job's services: the same values as a job's and the ready check's command. Services
// inherit nothing from [defaults], so none of their values is reported as a default's.
Result<void> substitute_services(JobSpec& job, const Combo& combo) {
  static const JobSpec kNoDefaults;
  for (ServiceSpec& service : job.services) {
    std::string path = "jobs." + key_text(job.base_name) + ".services." + key_text(service.spec.name);
    SANDRUN_TRY(substitute_job(service.spec, combo, kNoDefaults, path));
    service.spec.base_name = job.name;
    if (!service.ready) continue;
    std::vector<std::string>& argv = service.ready->command;
    // run = "..." became {"/bin/sh", "-c", "..."}: its text is the last element.
    for (size_t i = 0; i < argv.size(); ++i) {
      Origin o{service.ready->pos, fmt::format("{}.ready.command[{}]", path, i)};
      if (argv.size() == 3 && argv[0] == "/bin/sh" && argv[1] == "-c") o.path = path + ".ready.run";
      argv[i] = SANDRUN_TRY(substitute(argv[i], combo, o));
    }
  }
  return {};
}

// MATRIX_<KEY> follows the job's own variables and wins over one of the same name.
void set_matrix_env(JobSpec& job) {
  for (const auto& [key, value] : job.matrix) {
    std::string name = matrix_env_name(key);
    std::erase_if(job.env, [&](const auto& kv) { return kv.first == name; });
    job.env.emplace_back(std::move(name), value);
  }
}

}  // namespace

Result<std::vector<JobSpec>> expand_job(const JobSpec& job, const std::optional<Matrix>& matrix,
                                        const JobSpec& defaults) {
  JobSpec base = job;
  base.base_name = job.name;
  const std::string path = "jobs." + key_text(base.base_name);
  if (!matrix) {
    SANDRUN_TRY(substitute_job(base, {}, defaults, path));
    SANDRUN_TRY(substitute_services(base, {}));
    return std::vector<JobSpec>{std::move(base)};
  }
  std::vector<JobSpec> out;
  for (Combo& combo : SANDRUN_TRY(combinations(*matrix))) {
    JobSpec one = base;
    one.name = combo_name(base.base_name, combo);
    for (const JobSpec& earlier : out) {
      if (earlier.name == one.name) {
        return Error::msg("{}: {}: two combinations are both \"{}\"", matrix->pos.str(), matrix->path, one.name);
      }
    }
    SANDRUN_TRY(substitute_job(one, combo, defaults, path));
    SANDRUN_TRY(substitute_services(one, combo));
    one.matrix = std::move(combo);
    set_matrix_env(one);
    out.push_back(std::move(one));
  }
  return out;
}

}  // namespace sandrun::config::detail
