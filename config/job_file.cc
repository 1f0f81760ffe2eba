// The job file: TOML text -> JobFile, with [defaults] inherited by every job.
#include "config/job_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "config/expand.h"
#include "sandbox/sys/fs.h"

namespace sandrun::config {

using detail::in_file_order;
using detail::key_text;
using detail::pos_of;
using detail::type_name;

namespace {

// What a whole file is parsed against.
struct FileCtx {
  const std::string& file;
  const std::string& base_dir;
};

Result<JobSpec> parse_defaults(const toml::node& value, const FileCtx& f) {
  const auto* table = value.as_table();
  if (!table) {
    return Error::msg("{}: defaults: expected a table like [defaults], got {}",
                      pos_of(value.source(), f.file).str(), type_name(value));
  }
  JobSpec defaults;
  detail::Scope scope{f.file, f.base_dir, "defaults", /*defaults=*/true};
  for (auto [key, node] : in_file_order(*table)) {
    SANDRUN_TRY(detail::apply_job_key(defaults, *key, *node, scope));
  }
  return defaults;
}

// A job's position: its [jobs.NAME] header, or its key when written inline (`NAME = { ... }`)
// where toml++ would point at the brace.
SourcePos job_pos(const toml::key& key, const toml::node& value, const std::string& file) {
  const auto* table = value.as_table();
  if (table && !table->is_inline()) return pos_of(table->source(), file);
  return pos_of(key.source(), file);
}

// One [jobs.NAME]: its keys, then its matrix expanded into one job per combination.
Result<std::vector<JobSpec>> parse_job(const toml::key& key, const toml::node& value,
                                       const JobSpec& defaults, const FileCtx& f) {
  std::string name(key.str());
  std::string scope_path = "jobs." + key_text(name);
  SourcePos pos = job_pos(key, value, f.file);
  if (auto ok = check_job_name(name); !ok) return Error::msg("{}: {}", pos.str(), ok.error().message());
  const auto* table = value.as_table();
  if (!table) {
    return Error::msg("{}: {}: expected a table like [{}], got {}", pos.str(), scope_path,
                      scope_path, type_name(value));
  }
  JobSpec spec = defaults;  // [defaults] holds no command, so none is inherited
  spec.name = name;
  spec.pos = pos;
  if (!defaults.key_pos.contains("image")) spec.image_pos = pos;
  detail::Scope scope{f.file, f.base_dir, scope_path};
  SourcePos run_at, command_at;  // of the keys, for "not both"
  std::optional<detail::Matrix> matrix;
  for (auto [k, node] : in_file_order(*table)) {
    if (k->str() == "matrix") {
      matrix = SANDRUN_TRY(detail::parse_matrix(*node, scope));
      spec.key_pos["matrix"] = matrix->pos;
      continue;
    }
    if (k->str() == "services") {
      spec.services = SANDRUN_TRY(detail::parse_services(*node, scope));
      spec.key_pos["services"] = pos_of(k->source(), f.file);
      continue;
    }
    SANDRUN_TRY(detail::apply_job_key(spec, *k, *node, scope));
    if (k->str() == "run") run_at = pos_of(k->source(), f.file);
    if (k->str() == "command") command_at = pos_of(k->source(), f.file);
  }
  if (run_at.line > 0 && command_at.line > 0) {
    bool run_later = std::pair(run_at.line, run_at.column) > std::pair(command_at.line, command_at.column);
    return Error::msg("{}: {}: set either run or command, not both",
                      (run_later ? run_at : command_at).str(), scope_path);
  }
  if (spec.command.empty()) {
    return Error::msg("{}: {}: no command; set run = \"...\" (a shell string) or command = [...] "
                      "(an argv array)", pos.str(), scope_path);
  }
  SANDRUN_TRY(detail::check_network(spec, scope_path));
  // A service joins the job's network namespace: it has no network of its own.
  for (ServiceSpec& service : spec.services) service.spec.network = spec.network;
  return detail::expand_job(spec, matrix, defaults);
}

Result<std::vector<JobSpec>> parse_jobs(const toml::node& value, const JobSpec& defaults,
                                        const FileCtx& f) {
  const auto* table = value.as_table();
  if (!table) {
    return Error::msg("{}: jobs: expected a table of jobs like [jobs.NAME], got {}",
                      pos_of(value.source(), f.file).str(), type_name(value));
  }
  std::vector<JobSpec> jobs;
  // File order, not toml++'s key order: jobs are listed and started in the order written.
  for (auto [key, node] : in_file_order(*table)) {
    for (JobSpec& job : SANDRUN_TRY(parse_job(*key, *node, defaults, f))) jobs.push_back(std::move(job));
  }
  SANDRUN_TRY(detail::resolve_needs(jobs));
  return jobs;
}

// [cache]: settings of the image cache a run applies (for now its size cap).
Result<std::optional<uint64_t>> parse_cache(const toml::node& value, const FileCtx& f) {
  const toml::table* table = value.as_table();
  if (!table)
    return Error::msg("{}: cache: expected a table like [cache], got {}", pos_of(value.source(), f.file).str(),
                      detail::type_name(value));
  std::optional<uint64_t> max_size;
  for (auto [key, node] : in_file_order(*table)) {
    const std::string where = pos_of(key->source(), f.file).str();
    if (key->str() != "max_size")
      return Error::msg("{}: cache: unknown key \"{}\"; expected \"max_size\"", where, key->str());
    const std::string value_at = pos_of(node->source(), f.file).str();
    auto text = node->value<std::string>();
    if (!text)
      return Error::msg("{}: cache.max_size: expected a size like \"20GiB\", got {}", value_at, detail::type_name(*node));
    auto size = parse_size(*text);
    if (!size) return std::move(size.error().wrap(fmt::format("{}: cache.max_size", value_at)));
    max_size = *size;
  }
  return max_size;
}

// fail_fast = true: a top-level key, so written before the first [table].
Result<bool> parse_fail_fast(const toml::node& value, const FileCtx& f) {
  const auto* b = value.as_boolean();
  if (!b) {
    return Error::msg("{}: fail_fast: expected true or false, got {}", pos_of(value.source(), f.file).str(),
                      type_name(value));
  }
  return b->get();
}

Result<void> parse_root(const toml::table& root, const FileCtx& f, JobFile& file) {
  const toml::node* defaults = nullptr;
  const toml::node* jobs = nullptr;
  for (auto [key, node] : in_file_order(root)) {
    if (key->str() == "defaults") {
      defaults = node;
    } else if (key->str() == "jobs") {
      jobs = node;
    } else if (key->str() == "cache") {
      file.cache_max_size = SANDRUN_TRY(parse_cache(*node, f));
    } else if (key->str() == "fail_fast") {
      file.fail_fast = SANDRUN_TRY(parse_fail_fast(*node, f));
    } else {
      std::string_view best = detail::closest(key->str(), {"defaults", "jobs", "cache", "fail_fast"});
      std::string suggestion = best.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", best);
      return Error::msg("{}: unknown key \"{}\"{}; expected \"defaults\", \"jobs\", \"cache\" or "
                        "\"fail_fast\"",
                        pos_of(key->source(), f.file).str(), key->str(), suggestion);
    }
  }
  JobSpec base;
  if (defaults) base = SANDRUN_TRY(parse_defaults(*defaults, f));
  std::vector<JobSpec> out;
  if (jobs) out = SANDRUN_TRY(parse_jobs(*jobs, base, f));
  if (out.empty()) {
    return Error::msg("{}: no jobs; add a [jobs.NAME] table with a run = \"...\" command", f.file);
  }
  file.jobs = std::move(out);
  return {};
}

// The file's text, refused unread when its size is known to be above the cap, or once more than
// `max` bytes came (a pipe, a file that grows).
Result<std::string> read_bounded(const std::string& path, uint64_t max) {
  auto fd = SANDRUN_TRY(fs::open_path(path, O_RDONLY));
  auto too_large = [&](std::string what) {
    return Error::msg("job file {} is {} the cap of {}", path, what, format_size(max))
        .hint("the host file's [policy] max_job_file raises the cap");
  };
  struct stat st{};
  if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max)
    return too_large(fmt::format("{} bytes, above", st.st_size));
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys("read {}", path);
    if (n == 0) return text;
    if (text.size() + static_cast<uint64_t>(n) > max) return too_large("larger than");
    text.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

Result<JobFile> parse_job_file(std::string_view text, const std::string& path,
                               const std::string& base_dir) {
  JobFile file{path, fs::absolute(base_dir.empty() ? "." : base_dir), {}};
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& err) {
    return detail::syntax_error(err, text, path);
  }
  SANDRUN_TRY(parse_root(root, FileCtx{path, file.dir}, file));
  return file;
}

Result<JobFile> load_job_file(const std::string& path, uint64_t max_bytes) {
  auto text = read_bounded(path, max_bytes);
  if (!text) {
    if (text.error().code() != 0) {
      return Error::sys_code(text.error().code(), "cannot read job file {}", path);
    }
    return std::move(text).error();  // above the size cap: the message names the file
  }
  std::string full = fs::absolute(path);
  std::string dir = full.substr(0, full.rfind('/'));
  return parse_job_file(*text, path, dir.empty() ? "/" : dir);
}

}  // namespace sandrun::config
