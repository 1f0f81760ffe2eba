// The CI keys of a job: needs, retries, allow_failure, workspace, caches, artifacts, junit.
#include <algorithm>

#include <fmt/ranges.h>

#include "config/key_ctx.h"
#include "sandbox/sys/fs.h"

namespace sandrun::config::detail {

namespace {

// The strings of an array, each checked by `check` (which returns "" or what is wrong).
template <typename Check>
Result<std::vector<std::string>> get_strings(const toml::node& n, const Ctx& c,
                                             std::string_view example, Check check) {
  const auto* arr = n.as_array();
  if (!arr) return c.type_error(fmt::format("an array of strings like {}", example), n);
  std::vector<std::string> out;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& el = *arr->get(i);
    std::string index = fmt::format("[{}]", i);
    const auto* s = el.as_string();
    if (!s) return c.fail_at(el, index, fmt::format("expected a string, got {}", type_name(el)));
    if (has_nul(s->get())) return c.fail_at(el, index, "must not contain a NUL character");
    if (std::string wrong = check(s->get(), out); !wrong.empty()) return c.fail_at(el, index, wrong);
    out.push_back(s->get());
  }
  return out;
}

bool has_dotdot(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

// A relative glob of files the job leaves behind (artifacts, junit): "" when fine.
std::string check_glob(std::string_view glob, bool allow_absolute) {
  if (glob.empty() || is_blank(glob)) return "is empty";
  if (!allow_absolute && glob[0] == '/') {
    return fmt::format("\"{}\" must be relative (to the job's artifacts)", glob);
  }
  if (has_dotdot(glob)) return fmt::format("\"{}\" must not contain \"..\"", glob);
  return "";
}

// "/ccache/" and "/ccache" are one cache.
std::string trim_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

std::string check_cache(std::string_view path, const std::vector<std::string>& earlier) {
  bool home = path.starts_with("~/");
  if (path.empty()) return "is empty";
  if (path[0] != '/' && !home) {
    return fmt::format("cache path \"{}\" must be absolute or start with \"~/\"", path);
  }
  if (has_dotdot(path)) return fmt::format("cache path \"{}\" must not contain \"..\"", path);
  std::string trimmed = trim_slashes(std::string(path));
  if (trimmed == "/" || trimmed == "~" || trimmed == "~/") {
    return fmt::format("cache path \"{}\" must name a directory below {}", path,
                       home ? "the home directory" : "/");
  }
  for (size_t j = 0; j < earlier.size(); ++j) {
    if (trim_slashes(earlier[j]) == trimmed) {
      return fmt::format("cache path \"{}\" is already listed in caches[{}]", path, j);
    }
  }
  return "";
}

}  // namespace

// The names as written, with their positions: resolve_needs turns them into expanded names.
Result<void> set_needs(JobSpec& spec, const toml::node& n, const Ctx& c) {
  const auto* arr = n.as_array();
  if (!arr) return c.type_error("an array of job names like [\"build\"]", n);
  spec.needs.clear();
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& el = *arr->get(i);
    std::string index = fmt::format("[{}]", i);
    const auto* s = el.as_string();
    if (!s) return c.fail_at(el, index, fmt::format("expected a job name, got {}", type_name(el)));
    if (s->get().empty()) return c.fail_at(el, index, "is empty");
    if (has_nul(s->get())) return c.fail_at(el, index, "must not contain a NUL character");
    auto dup = std::find_if(spec.needs.begin(), spec.needs.end(), [&](const Named& had) { return had.name == s->get(); });
    if (dup != spec.needs.end()) {
      return c.fail_at(el, index, fmt::format("\"{}\" is already listed in needs[{}]", s->get(),
                                              dup - spec.needs.begin()));
    }
    spec.needs.push_back(Named{s->get(), pos_of(el.source(), c.scope.file)});
  }
  return {};
}

Result<void> set_retries(JobSpec& spec, const toml::node& n, const Ctx& c) {
  const auto* i = n.as_integer();
  if (!i) return c.type_error("an integer from 0 to 10", n);
  if (i->get() < 0 || i->get() > 10) {
    return c.fail(fmt::format("must be from 0 to 10, got {}", i->get()));
  }
  spec.retries = static_cast<unsigned>(i->get());
  return {};
}

Result<void> set_allow_failure(JobSpec& spec, const toml::node& n, const Ctx& c) {
  spec.allow_failure = SANDRUN_TRY(get_bool(n, c));
  return {};
}

namespace {

Result<WorkspaceMode> parse_workspace_mode(const toml::node& n, const Ctx& c) {
  const auto* s = n.as_string();
  std::string_view text = s ? std::string_view(s->get()) : std::string_view();
  if (text == "rw") return WorkspaceMode::rw;
  if (text == "ro") return WorkspaceMode::ro;
  if (text == "overlay") return WorkspaceMode::overlay;
  std::string shown = s ? fmt::format("\"{}\"", text) : std::string(type_name(n));
  return c.fail_at(n, ".mode", fmt::format("invalid mode {}: expected \"rw\", \"ro\" or \"overlay\"",
                                           shown));
}

// { path = ".", mode = "overlay" }
Result<void> set_workspace_table(JobSpec& spec, const toml::table& table, const Ctx& c) {
  const toml::node* path = nullptr;
  WorkspaceMode mode = WorkspaceMode::rw;
  for (auto [key, value] : in_file_order(table)) {
    if (key->str() == "path") {
      path = value;
    } else if (key->str() == "mode") {
      mode = SANDRUN_TRY(parse_workspace_mode(*value, c));
    } else {
      return Error::msg("{}: {}: unknown key \"{}\"; expected \"path\" or \"mode\"",
                        pos_of(key->source(), c.scope.file).str(), c.path(), key->str());
    }
  }
  if (!path) return c.fail("no path; expected a table like { path = \".\", mode = \"overlay\" }");
  const auto* s = path->as_string();
  if (!s) return c.fail_at(*path, ".path", fmt::format("expected a string (a host directory) like \".\", got {}",
                                                       type_name(*path)));
  if (s->get().empty()) return c.fail_at(*path, ".path", "is empty");
  if (has_nul(s->get())) return c.fail_at(*path, ".path", "must not contain a NUL character");
  spec.workspace = fs::absolute(s->get(), c.scope.base_dir);
  spec.workspace_mode = mode;
  return {};
}

}  // namespace

Result<void> set_workspace(JobSpec& spec, const toml::node& n, const Ctx& c) {
  if (const auto* table = n.as_table()) return set_workspace_table(spec, *table, c);
  auto dir = SANDRUN_TRY(get_string(
      n, c, "a string (a host directory) like \".\" or a table like { path = \".\", mode = \"ro\" }"));
  if (dir.empty()) return c.fail("is empty");
  spec.workspace = fs::absolute(dir, c.scope.base_dir);
  spec.workspace_mode = WorkspaceMode::rw;
  return {};
}

Result<void> set_caches(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto paths = SANDRUN_TRY(get_strings(n, c, "[\"~/.cache/pip\", \"/ccache\"]", check_cache));
  for (auto& p : paths) p = trim_slashes(std::move(p));
  spec.caches = std::move(paths);
  return {};
}

Result<void> set_artifacts(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto check = [](std::string_view glob, const auto&) { return check_glob(glob, /*allow_absolute=*/true); };
  spec.artifacts.patterns = SANDRUN_TRY(get_strings(n, c, "[\"build/*.log\"]", check));
  return {};
}

Result<void> set_artifacts_archive(JobSpec& spec, const toml::node& n, const Ctx& c) {
  spec.artifacts.archive = SANDRUN_TRY(get_bool(n, c));
  return {};
}

Result<void> set_artifacts_when(JobSpec& spec, const toml::node& n, const Ctx& c) {
  constexpr std::string_view expected = "\"always\", \"on_failure\" or \"on_success\"";
  auto text = SANDRUN_TRY(get_string(n, c, fmt::format("a string, {}", expected)));
  if (text == "always") {
    spec.artifacts.when = ArtifactsWhen::always;
  } else if (text == "on_failure") {
    spec.artifacts.when = ArtifactsWhen::on_failure;
  } else if (text == "on_success") {
    spec.artifacts.when = ArtifactsWhen::on_success;
  } else {
    return c.fail(fmt::format("invalid value \"{}\": expected {}", text, expected));
  }
  return {};
}

Result<void> set_artifacts_max_size(JobSpec& spec, const toml::node& n, const Ctx& c) {
  uint64_t bytes = 0;
  if (const auto* i = n.as_integer()) {
    if (i->get() <= 0) return c.fail(fmt::format("must be greater than 0, got {}", i->get()));
    bytes = static_cast<uint64_t>(i->get());
  } else if (n.is_string()) {
    auto size = parse_size(SANDRUN_TRY(get_string(n, c, "")));
    if (!size) return c.wrap(std::move(size).error());
    if (*size == 0) return c.fail("must be greater than 0");
    bytes = *size;
  } else {
    return c.type_error("a string like \"100MiB\" or an integer number of bytes", n);
  }
  spec.artifacts.max_size = bytes;
  return {};
}

Result<void> set_artifacts_max_files(JobSpec& spec, const toml::node& n, const Ctx& c) {
  const auto* i = n.as_integer();
  if (!i) return c.type_error("an integer like 10000", n);
  if (i->get() < 1) return c.fail(fmt::format("must be at least 1, got {}", i->get()));
  if (static_cast<uint64_t>(i->get()) > kMaxArtifactsMaxFiles)
    return c.fail(fmt::format("must be at most {}, got {}", kMaxArtifactsMaxFiles, i->get()));
  spec.artifacts.max_files = static_cast<uint64_t>(i->get());
  return {};
}

// A glob or an array of globs, relative to the job's collected artifacts.
Result<void> set_junit(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto check = [](std::string_view glob, const auto&) { return check_glob(glob, /*allow_absolute=*/false); };
  if (const auto* s = n.as_string()) {
    if (has_nul(s->get())) return c.fail("must not contain a NUL character");
    if (std::string wrong = check(s->get(), 0); !wrong.empty()) return c.fail(wrong);
    spec.junit = {s->get()};
    return {};
  }
  if (!n.is_array()) {
    return c.type_error("a string like \"test-results/*.xml\" or an array of such strings", n);
  }
  spec.junit = SANDRUN_TRY(get_strings(n, c, "[\"test-results/*.xml\"]", check));
  return {};
}

}  // namespace sandrun::config::detail
