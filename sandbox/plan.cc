// Flattening a SandboxSpec into the ChildPlan the child executes.
#include "sandbox/plan.h"

#include <sys/stat.h>

#include "sandbox/sys/error.h"

namespace sandrun::sandbox {
namespace {

// The kernel parses mount options from one page.
constexpr size_t kMaxMountOptions = 4095;

Result<void> check_absolute(const std::string& path, const char* what) {
  if (path.empty() || path[0] != '/') return Error::msg("{} {:?} is not an absolute path", what, path);
  return {};
}

}  // namespace

std::string overlay_escape(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (char ch : path) {
    if (ch == ',' || ch == ':' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

Result<std::unique_ptr<PreparedPlan>> PreparedPlan::make(const SandboxSpec& spec, bool with_init) {
  std::unique_ptr<PreparedPlan> p(new PreparedPlan());
  if (spec.argv.empty() || spec.argv[0].empty()) return Error::msg("no command to run");
  if (spec.lower_dirs.empty()) return Error::msg("the image has no layers");
  SANDRUN_TRY(check_absolute(spec.root_dir, "root directory"));
  SANDRUN_TRY(check_absolute(spec.upper_dir, "upper directory"));
  SANDRUN_TRY(check_absolute(spec.work_dir, "work directory"));
  SANDRUN_TRY(check_absolute(spec.workdir, "working directory"));
  if (spec.hostname.size() > 64) return Error::msg("hostname {:?} is longer than 64 bytes", spec.hostname);

  std::string lower;
  for (const auto& dir : spec.lower_dirs) {
    SANDRUN_TRY(check_absolute(dir, "layer directory"));
    if (!lower.empty()) lower += ':';
    lower += overlay_escape(dir);
  }
  p->overlay_options_ = "lowerdir=" + lower + ",upperdir=" + overlay_escape(spec.upper_dir) +
                        ",workdir=" + overlay_escape(spec.work_dir);
  if (p->overlay_options_.size() > kMaxMountOptions) {
    return Error::msg("the image's {} layers do not fit in one overlay mount ({} bytes of options)",
                      spec.lower_dirs.size(), p->overlay_options_.size());
  }

  p->binds_ = spec.binds;
  for (const auto& b : p->binds_) {
    SANDRUN_TRY(check_absolute(b.source, "volume source"));
    SANDRUN_TRY(check_absolute(b.target, "volume target"));
    struct stat st;
    if (::stat(b.source.c_str(), &st) < 0) return Error::sys("volume source {}", b.source);
    p->bind_plans_.push_back({b.source.c_str(), b.target.c_str(), b.readonly, S_ISDIR(st.st_mode)});
  }

  p->root_dir_ = spec.root_dir;
  p->hostname_ = spec.hostname;
  p->workdir_ = spec.workdir;
  p->groups_ = spec.groups;
  if (with_init) p->argv_.push_back("sandrun-init");
  p->argv_.insert(p->argv_.end(), spec.argv.begin(), spec.argv.end());
  p->env_ = spec.env;
  for (const auto& e : p->env_) {
    if (e.rfind("PATH=", 0) == 0) p->path_ = e.substr(5);
  }
  for (auto& a : p->argv_) p->argv_ptrs_.push_back(a.data());
  p->argv_ptrs_.push_back(nullptr);
  for (auto& e : p->env_) p->env_ptrs_.push_back(e.data());
  p->env_ptrs_.push_back(nullptr);

  ChildPlan& c = p->plan_;
  c.root_dir = p->root_dir_.c_str();
  c.overlay_options = p->overlay_options_.c_str();
  c.binds = p->bind_plans_.data();
  c.nbinds = p->bind_plans_.size();
  c.hostname = p->hostname_.c_str();
  c.hostname_len = p->hostname_.size();
  c.new_net = spec.new_net;
  c.workdir = p->workdir_.c_str();
  c.uid = spec.uid;
  c.gid = spec.gid;
  c.groups = p->groups_.data();
  c.ngroups = p->groups_.size();
  c.argv = p->argv_ptrs_.data();
  c.envp = p->env_ptrs_.data();
  c.path = p->path_.c_str();
  return p;
}

}  // namespace sandrun::sandbox
