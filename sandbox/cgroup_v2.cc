// The cgroup v2 backend: a group is <root>/sandrun/<run>/<name>, entered with
// clone3(CLONE_INTO_CGROUP); controllers are enabled down the path to it.
#include <fcntl.h>

#include <algorithm>

#include <fmt/ranges.h>

#include "sandbox/cgroup_internal.h"
#include "sandbox/sys/fs.h"

namespace sandrun::sandbox::cgroup::detail {
namespace {

// The controllers a group gets (cpuset only when it is limited), in the order they are enabled.
const char* const kControllers[] = {"memory", "cpu", "pids", "cpuset"};

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  text = trim(text);
  while (!text.empty()) {
    size_t sp = text.find_first_of(" \n");
    out.emplace_back(text.substr(0, sp));
    text = sp == std::string_view::npos ? std::string_view() : trim(text.substr(sp + 1));
  }
  return out;
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string num(uint64_t v) { return std::to_string(v); }

Result<uint64_t> read_keyed(const std::string& path, std::string_view key) {
  auto text = SANDRUN_TRY(read_optional(path));
  if (!text) return uint64_t{0};
  return keyed_value(*text, key).value_or(0);
}

// `dir` and every cgroup below it, parents first.
Result<void> collect_tree(const std::string& dir, std::vector<std::string>& out) {
  out.push_back(dir);
  for (const auto& child : SANDRUN_TRY(subdirs(dir))) SANDRUN_TRY(collect_tree(dir + "/" + child, out));
  return {};
}

// cgroup.kill (5.14+) kills the whole subtree at once, forks in flight included; the pidfd
// loop then waits until the processes are gone (and is the fallback on older kernels).
Result<void> kill_tree(const std::string& dir, const std::string& rel) {
  if (!fs::is_dir(dir)) return {};
  if (fs::exists(dir + "/cgroup.kill")) SANDRUN_TRY(write_value(dir + "/cgroup.kill", "1", "kill cgroup"));
  std::vector<std::string> dirs;
  SANDRUN_TRY(collect_tree(dir, dirs));
  return kill_until_empty(dirs, rel);
}

class V2Group final : public Group {
 public:
  V2Group(std::string dir, std::string rel, UniqueFd fd, Seams seams)
      : dir_(std::move(dir)), rel_(std::move(rel)), fd_(std::move(fd)), seams_(std::move(seams)) {}
  ~V2Group() override {
    if (!removed_) destroy_quietly(*this);
  }

  void keep() override { removed_ = true; }
  Version version() const override { return Version::v2; }
  int clone_into_fd() const override { return fd_.get(); }
  const std::vector<int>& procs_fds() const override { return no_fds_; }
  const std::string& path() const override { return dir_; }

  Result<Stats> stats() const override {
    Stats s;
    if (auto peak = SANDRUN_TRY(read_optional(dir_ + "/memory.peak"))) s.memory_peak = parse_u64(*peak);
    if (auto cpu = SANDRUN_TRY(read_optional(dir_ + "/cpu.stat"))) s.cpu_usec = keyed_value(*cpu, "usage_usec");
    s.oom_kills = SANDRUN_TRY(read_keyed(dir_ + "/memory.events", "oom_kill"));
    s.pids_limit_hits = SANDRUN_TRY(read_keyed(dir_ + "/pids.events", "max"));
    return s;
  }

  Result<std::vector<pid_t>> procs() const override {
    std::vector<std::string> dirs;
    SANDRUN_TRY(collect_tree(dir_, dirs));
    std::vector<pid_t> all;
    for (const auto& d : dirs) {
      for (pid_t p : SANDRUN_TRY(read_procs(d + "/cgroup.procs"))) all.push_back(p);
    }
    std::sort(all.begin(), all.end());
    return all;
  }

  Result<void> kill() override { return kill_tree(dir_, rel_); }

  Result<void> remove() override {
    auto r = remove_tree(dir_, rel_, seams_, /*kill=*/false);
    removed_ = r.ok();
    return r;
  }

 private:
  std::string dir_;
  std::string rel_;
  UniqueFd fd_;
  Seams seams_;
  std::vector<int> no_fds_;
  bool removed_ = false;
};

class V2Backend final : public Backend {
 public:
  V2Backend(std::string root, std::vector<std::string> available, bool root_cgroup, Seams seams)
      : root_(std::move(root)), available_(std::move(available)), root_cgroup_(root_cgroup),
        seams_(std::move(seams)) {
    describe();
  }

  const HostInfo& info() const override { return info_; }

  Result<void> check(const Limits& limits) const override {
    for (const auto& c : wanted(limits)) {
      if (!contains(available_, c))
        return Error::msg("cgroup v2 has no {} controller ({}/cgroup.controllers lists \"{}\")", c, root_,
                          fmt::join(available_, " "));
    }
    SANDRUN_TRY(check_values(limits, seams_));
    return check_enabled(wanted(limits));
  }

  Result<std::unique_ptr<Group>> create(const std::string& run, const std::string& name,
                                        const Limits& limits) override {
    if (!valid_name(run) || !valid_name(name))
      return Error::msg("cgroup names must be single path components: run \"{}\", job \"{}\"", run, name);
    SANDRUN_TRY(check(limits));
    const std::vector<std::string> want = wanted(limits);
    std::string control;
    for (const auto& c : want) control += (control.empty() ? "+" : " +") + c;
    SANDRUN_TRY(enable_at_root(want, control));
    const std::string base = root_ + "/sandrun", run_dir = base + "/" + run, leaf = run_dir + "/" + name;
    Undo undo(seams_);
    // sandrun/ is shared by every run and stays.
    SANDRUN_TRY(make_dir(base, false, seams_));
    SANDRUN_TRY(write_value(base + "/cgroup.subtree_control", control, "enable controllers for sandrun's cgroups"));
    if (SANDRUN_TRY(make_dir(run_dir, false, seams_))) undo.add(run_dir);
    SANDRUN_TRY(write_value(run_dir + "/cgroup.subtree_control", control, "enable controllers for the run's cgroups"));
    if (SANDRUN_TRY(make_dir(leaf, true, seams_))) undo.add(leaf);
    SANDRUN_TRY(write_limits(leaf, limits));
    auto fd = fs::open_path(leaf, O_RDONLY | O_DIRECTORY);
    if (!fd) return std::move(fd).error().wrap("open the cgroup for clone3");
    // Before any process is in it; the program goes with the cgroup when it is removed.
    if (!seams_.skip_device_program) SANDRUN_TRY(attach_device_policy(fd->get(), leaf));
    undo.disarm();
    return std::unique_ptr<Group>(new V2Group(leaf, "/sandrun/" + run + "/" + name, fd.take(), seams_));
  }

  Result<std::unique_ptr<Group>> open(const std::string& run, const std::string& name) override {
    if (!valid_name(run) || !valid_name(name))
      return Error::msg("cgroup names must be single path components: run \"{}\", job \"{}\"", run, name);
    const std::string leaf = root_ + "/sandrun/" + run + "/" + name;
    auto fd = fs::open_path(leaf, O_RDONLY | O_DIRECTORY);
    if (!fd) return std::move(fd).error().wrap("open the cgroup for clone3");
    return std::unique_ptr<Group>(new V2Group(leaf, "/sandrun/" + run + "/" + name, fd.take(), seams_));
  }

  Result<void> remove_run(const std::string& run) override {
    if (!valid_name(run)) return Error::msg("cgroup run name \"{}\" is not a single path component", run);
    const std::string dir = root_ + "/sandrun/" + run, rel = "/sandrun/" + run;
    SANDRUN_TRY(kill_tree(dir, rel));
    return remove_tree(dir, rel, seams_, /*kill=*/true);
  }

  Result<size_t> sweep_stale() override {
    return remove_dead_runs(SANDRUN_TRY(subdirs(root_ + "/sandrun")), *this);
  }

 private:
  // memory, cpu and pids for every group (those the kernel has), cpuset when it is limited.
  std::vector<std::string> wanted(const Limits& limits) const {
    std::vector<std::string> out;
    for (const char* c : kControllers) {
      const bool limited = (std::string_view(c) == "memory" && limits.memory) ||
                           (std::string_view(c) == "cpu" && limits.cpus) ||
                           (std::string_view(c) == "pids" && limits.pids) ||
                           (std::string_view(c) == "cpuset" && limits.cpuset);
      if (limited || (std::string_view(c) != "cpuset" && contains(available_, c))) out.emplace_back(c);
    }
    return out;
  }

  Result<std::vector<std::string>> enabled_at_root() const {
    auto text = SANDRUN_TRY(fs::read_file(root_ + "/cgroup.subtree_control").wrap("read enabled controllers"));
    std::vector<std::string> out;
    for (auto& w : words(text)) out.push_back(w[0] == '+' ? w.substr(1) : w);
    return out;
  }

  // Below a non-root cgroup, sandrun/ would be a sibling of sandrun's own process: enabling a
  // controller there breaks the no-internal-process rule, so it must already be done.
  Result<void> check_enabled(const std::vector<std::string>& want) const {
    if (root_cgroup_) return {};
    auto enabled = SANDRUN_TRY(enabled_at_root());
    std::vector<std::string> missing;
    for (const auto& c : want)
      if (!contains(enabled, c)) missing.push_back(c);
    if (missing.empty()) return {};
    return Error::msg("cgroup v2: {} not enabled in {}/cgroup.subtree_control, and sandrun enables controllers only in the root cgroup",
                      fmt::join(missing, ", "), root_)
        .hint(fmt::format("enable them in {0}/cgroup.subtree_control (echo \"+{1}\" > {0}/cgroup.subtree_control "
                          "from the cgroup above, or systemd Delegate=yes for sandrun's unit)",
                          root_, fmt::join(missing, " +")));
  }

  Result<void> enable_at_root(const std::vector<std::string>& want, const std::string& control) {
    auto enabled = SANDRUN_TRY(enabled_at_root());
    if (std::all_of(want.begin(), want.end(), [&](const auto& c) { return contains(enabled, c); })) return {};
    SANDRUN_TRY(check_enabled(want));  // refuses outside the root cgroup
    auto r = write_value(root_ + "/cgroup.subtree_control", control, "enable cgroup controllers");
    if (!r && (r.error().code() == EACCES || r.error().code() == EPERM))
      r.error().hint("enabling cgroup controllers needs root; run sandrun as root");
    return r;
  }

  Result<void> write_limits(const std::string& dir, const Limits& limits) const {
    if (limits.memory) {
      SANDRUN_TRY(write_value(dir + "/memory.max", num(*limits.memory), "set memory limit"));
      // Without swap (or swap accounting) the file is absent and there is nothing to keep out.
      if (fs::exists(dir + "/memory.swap.max"))
        SANDRUN_TRY(write_value(dir + "/memory.swap.max", "0", "keep the job out of swap"));
    }
    if (limits.cpus) {
      auto v = fmt::format("{} {}", cpu_quota_usec(*limits.cpus), kCpuPeriodUsec);
      SANDRUN_TRY(write_value(dir + "/cpu.max", v, "set cpu limit"));
    }
    if (limits.pids) SANDRUN_TRY(write_value(dir + "/pids.max", num(*limits.pids), "set pids limit"));
    if (limits.cpuset) SANDRUN_TRY(write_value(dir + "/cpuset.cpus", trim(*limits.cpuset), "set cpuset"));
    return {};
  }

  void describe() {
    info_.version = Version::v2;
    info_.root = root_;
    info_.base = root_ + "/sandrun";
    if (seams_.skip_device_program) {
      info_.device_policy = false;
    } else if (auto loads = device_policy_loads(); loads) {
      info_.device_policy = true;
    } else {
      info_.notes.push_back(fmt::format("no device policy: {} (containers still see only sandrun's own nodes, and "
                                        "every writable mount is nodev)",
                                        loads.error().message()));
    }
    for (const char* c : kControllers) {
      if (contains(available_, c)) info_.controllers.push_back(c);
      else info_.notes.push_back(fmt::format("no {} controller in {}/cgroup.controllers: {} limits are refused", c, root_, c == std::string_view("cpu") ? "cpus" : c));
    }
    if (!root_cgroup_)
      info_.notes.push_back(fmt::format(
          "{} is not the root cgroup: sandrun does not enable controllers there; they must already be in its "
          "cgroup.subtree_control",
          root_));
  }

  std::string root_;
  std::vector<std::string> available_;  // root's cgroup.controllers
  bool root_cgroup_;
  Seams seams_;
  HostInfo info_;
};

}  // namespace

Result<std::unique_ptr<Backend>> make_v2(const std::string& root, Seams seams) {
  auto text = fs::read_file(root + "/cgroup.controllers");
  if (!text) return std::move(text).error().wrap("cgroup v2: read the available controllers");
  // Only non-root cgroups have cgroup.type.
  const bool root_cgroup = !fs::exists(root + "/cgroup.type");
  return std::unique_ptr<Backend>(new V2Backend(root, words(*text), root_cgroup, std::move(seams)));
}

}  // namespace sandrun::sandbox::cgroup::detail
