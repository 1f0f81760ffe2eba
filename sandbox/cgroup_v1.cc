// The cgroup v1 backend: a group is one directory per controller hierarchy, all named
// <mount>/sandrun/<run>/<name>; the child joins each by writing "0" to its `tasks` file.
//
// `tasks`, not `cgroup.procs`: the child is one thread, and moving the writing thread itself
// ("0" to `tasks`) is the one v1 migration the kernel does without write-locking
// cgroup_threadgroup_rwsem (cgroup_procs_write_start). That lock's write side waits for an RCU
// grace period whenever it was idle, which made the first write of each container take 6-25 ms
// on this 6.x kernel when containers came more than a grace period apart (every `docker run`).
#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "sandbox/cgroup_internal.h"
#include "sandbox/sys/fs.h"

namespace sandrun::sandbox::cgroup::detail {
namespace {

// The controllers sandrun uses, in the order their hierarchies are joined. freezer is only
// there to stop fork races while kill() signals; devices holds the device policy.
const char* const kControllers[] = {"memory", "cpu", "cpuacct", "pids", "devices", "freezer", "cpuset"};

// A group's directory in one hierarchy.
struct Leaf {
  std::string mount;
  std::vector<std::string> controllers;  // ours among the mount's
  std::string dir;

  bool has(std::string_view c) const {
    return std::find(controllers.begin(), controllers.end(), c) != controllers.end();
  }
};

std::string num(uint64_t v) { return std::to_string(v); }

Result<std::optional<uint64_t>> read_u64(const std::string& path) {
  auto text = SANDRUN_TRY(read_optional(path));
  if (!text) return std::optional<uint64_t>();
  return parse_u64(*text);
}

Result<uint64_t> read_keyed(const std::string& path, std::string_view key) {
  auto text = SANDRUN_TRY(read_optional(path));
  if (!text) return uint64_t{0};
  return keyed_value(*text, key).value_or(0);
}

class V1Group final : public Group {
 public:
  V1Group(std::vector<Leaf> leaves, std::string rel, std::vector<UniqueFd> fds, Seams seams)
      : leaves_(std::move(leaves)), rel_(std::move(rel)), fds_(std::move(fds)), seams_(std::move(seams)) {
    for (const auto& fd : fds_) fd_numbers_.push_back(fd.get());
    const Leaf* mem = leaf_with("memory");
    path_ = mem ? mem->dir : leaves_.empty() ? std::string() : leaves_.front().dir;
  }
  ~V1Group() override {
    if (!removed_) destroy_quietly(*this);
  }

  void keep() override { removed_ = true; }
  Version version() const override { return Version::v1; }
  int clone_into_fd() const override { return -1; }
  const std::vector<int>& procs_fds() const override { return fd_numbers_; }
  const std::string& path() const override { return path_; }

  Result<Stats> stats() const override {
    Stats s;
    if (const Leaf* m = leaf_with("memory")) {
      s.memory_peak = SANDRUN_TRY(read_u64(m->dir + "/memory.max_usage_in_bytes"));
      s.oom_kills = SANDRUN_TRY(read_keyed(m->dir + "/memory.oom_control", "oom_kill"));
    }
    if (const Leaf* c = leaf_with("cpuacct")) {
      auto ns = SANDRUN_TRY(read_u64(c->dir + "/cpuacct.usage"));
      if (ns) s.cpu_usec = *ns / 1000;
    }
    if (const Leaf* p = leaf_with("pids")) s.pids_limit_hits = SANDRUN_TRY(read_keyed(p->dir + "/pids.events", "max"));
    return s;
  }

  Result<std::vector<pid_t>> procs() const override {
    std::set<pid_t> all;
    for (const auto& l : leaves_) {
      for (pid_t p : SANDRUN_TRY(read_procs(l.dir + "/cgroup.procs"))) all.insert(p);
    }
    return std::vector<pid_t>(all.begin(), all.end());
  }

  // A frozen group cannot fork while its pids are collected and signalled; the signals are
  // delivered on thaw. Without a freezer the loop below catches the late forks.
  Result<void> kill() override {
    std::vector<std::string> dirs;
    for (const auto& l : leaves_) dirs.push_back(l.dir);
    if (const Leaf* fz = leaf_with("freezer"); fz && freeze(fz->dir)) {
      auto signalled = kill_members(dirs, rel_);
      auto thawed = write_value(fz->dir + "/freezer.state", "THAWED", "thaw cgroup");
      if (!signalled) return std::move(signalled).error();
      if (!thawed) return thawed;
    }
    return kill_until_empty(dirs, rel_);
  }

  Result<void> remove() override {
    Result<void> first;
    for (auto it = leaves_.rbegin(); it != leaves_.rend(); ++it) {
      auto r = remove_tree(it->dir, rel_, seams_, /*kill=*/false);
      if (!r && first) first = std::move(r);
    }
    removed_ = first.ok();
    return first;
  }

 private:
  const Leaf* leaf_with(std::string_view controller) const {
    for (const auto& l : leaves_)
      if (l.has(controller)) return &l;
    return nullptr;
  }

  // Asks for FROZEN and waits (up to ~1 s) until the kernel reports it: a task in an
  // uninterruptible sleep keeps the group in FREEZING.
  static bool freeze(const std::string& dir) {
    const std::string state = dir + "/freezer.state";
    if (!write_value(state, "FROZEN", "freeze cgroup")) return false;
    for (int i = 0; i < 100; ++i) {
      auto now = fs::read_file(state);
      if (!now) return false;
      if (trim(*now) == "FROZEN") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;  // still FREEZING: what is frozen stays still; the loop gets the rest
  }

  std::vector<Leaf> leaves_;
  std::string rel_;
  std::vector<UniqueFd> fds_;
  std::vector<int> fd_numbers_;
  std::string path_;
  Seams seams_;
  bool removed_ = false;
};

class V1Backend final : public Backend {
 public:
  V1Backend(std::string root, std::map<std::string, std::string> mounts, std::vector<std::string> ignored,
            Seams seams)
      : root_(std::move(root)), mounts_(std::move(mounts)), seams_(std::move(seams)) {
    describe(ignored);
  }

  const HostInfo& info() const override { return info_; }

  Result<void> check(const Limits& limits) const override {
    auto need = [&](bool wanted, const char* c) -> Result<void> {
      if (!wanted || mounts_.count(c)) return {};
      return Error::msg("cgroup v1 has no {} controller mounted", c)
          .hint(fmt::format("mount it: mkdir -p {0}/{1} && mount -t cgroup -o {1} cgroup {0}/{1}", root_, c));
    };
    SANDRUN_TRY(need(limits.memory.has_value(), "memory"));
    SANDRUN_TRY(need(limits.cpus.has_value(), "cpu"));
    SANDRUN_TRY(need(limits.pids.has_value(), "pids"));
    SANDRUN_TRY(need(limits.cpuset.has_value(), "cpuset"));
    return check_values(limits, seams_);
  }

  Result<std::unique_ptr<Group>> create(const std::string& run, const std::string& name,
                                        const Limits& limits) override {
    if (!valid_name(run) || !valid_name(name))
      return Error::msg("cgroup names must be single path components: run \"{}\", job \"{}\"", run, name);
    SANDRUN_TRY(check(limits));
    std::vector<Leaf> leaves = hierarchies(&limits);
    if (leaves.empty()) return Error::msg("cgroup v1: none of memory, cpu, cpuacct, pids is mounted");
    Undo undo(seams_);
    for (auto& l : leaves) SANDRUN_TRY(make_levels(l, run, name, limits, undo));
    SANDRUN_TRY(write_limits(leaves, limits));
    std::vector<UniqueFd> fds;
    for (const auto& l : leaves) {
      auto fd = fs::open_path(l.dir + "/tasks", O_WRONLY);
      if (!fd) return std::move(fd).error().wrap("open the cgroup for joining");
      fds.push_back(fd.take());
    }
    undo.disarm();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& l : leaves) ready_.insert(l.mount + "/sandrun/" + run);
    }
    return std::unique_ptr<Group>(
        new V1Group(std::move(leaves), "/sandrun/" + run + "/" + name, std::move(fds), seams_));
  }

  Result<std::unique_ptr<Group>> open(const std::string& run, const std::string& name) override {
    if (!valid_name(run) || !valid_name(name))
      return Error::msg("cgroup names must be single path components: run \"{}\", job \"{}\"", run, name);
    std::vector<Leaf> leaves;
    std::vector<UniqueFd> fds;
    for (auto& l : hierarchies(nullptr)) {
      l.dir = l.mount + "/sandrun/" + run + "/" + name;
      // create() leaves some out (the freezer; cpuset and cpu without their limits).
      if (!fs::is_dir(l.dir)) continue;
      auto fd = fs::open_path(l.dir + "/tasks", O_WRONLY);
      if (!fd) return std::move(fd).error().wrap("open the cgroup for joining");
      fds.push_back(fd.take());
      leaves.push_back(std::move(l));
    }
    if (leaves.empty()) return Error::msg("cgroup v1: no hierarchy has sandrun/{}/{}", run, name);
    return std::unique_ptr<Group>(
        new V1Group(std::move(leaves), "/sandrun/" + run + "/" + name, std::move(fds), seams_));
  }

  Result<void> remove_run(const std::string& run) override {
    if (!valid_name(run)) return Error::msg("cgroup run name \"{}\" is not a single path component", run);
    const std::vector<Leaf> all = hierarchies(nullptr);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& l : all) ready_.erase(l.mount + "/sandrun/" + run);
    }
    // Groups left in the run are killed as Group::kill does (frozen first), then removed.
    std::set<std::string> names;
    for (const auto& l : all) {
      for (auto& n : SANDRUN_TRY(subdirs(l.mount + "/sandrun/" + run))) names.insert(n);
    }
    for (const auto& name : names) {
      std::vector<Leaf> present;
      for (Leaf l : all) {
        l.dir = l.mount + "/sandrun/" + run + "/" + name;
        if (fs::is_dir(l.dir)) present.push_back(std::move(l));
      }
      // Gone since it was listed: another sweep of the same dead run (two `sandrun` processes
      // of one host may sweep at once) removed it first.
      if (present.empty()) continue;
      V1Group group(std::move(present), "/sandrun/" + run + "/" + name, {}, seams_);
      SANDRUN_TRY(group.kill());
      SANDRUN_TRY(group.remove());
    }
    for (const auto& l : all)
      SANDRUN_TRY(remove_tree(l.mount + "/sandrun/" + run, "/sandrun/" + run, seams_, /*kill=*/true));
    return {};
  }

  Result<size_t> sweep_stale() override {
    std::set<std::string> runs;
    for (const auto& l : hierarchies(nullptr)) {
      for (auto& n : SANDRUN_TRY(subdirs(l.mount + "/sandrun"))) runs.insert(n);
    }
    return remove_dead_runs({runs.begin(), runs.end()}, *this);
  }

 private:
  // The distinct mounts that hold the controllers a group with `limits` joins, each with ours
  // among its controllers ("cpu,cpuacct" co-mounted is one hierarchy): memory, cpuacct, pids
  // and devices always (peak memory, CPU time, the default pids limit, the device policy), cpu
  // and cpuset only when limited.
  // The freezer is not joined: the container's PID namespace dies with its init, so nothing
  // can fork away from a kill. Null `limits`: every hierarchy sandrun may have used, to clean.
  std::vector<Leaf> hierarchies(const Limits* limits) const {
    std::vector<Leaf> out;
    for (const char* c : kControllers) {
      const std::string_view name(c);
      if (limits && (name == "freezer" || (name == "cpuset" && !limits->cpuset) || (name == "cpu" && !limits->cpus)))
        continue;
      auto it = mounts_.find(c);
      if (it == mounts_.end()) continue;
      auto same = std::find_if(out.begin(), out.end(), [&](const Leaf& l) { return l.mount == it->second; });
      if (same == out.end()) out.push_back(Leaf{it->second, {c}, ""});
      else same->controllers.push_back(c);
    }
    return out;
  }

  // sandrun/, sandrun/<run>/ and sandrun/<run>/<name>/ in one hierarchy; only the last must be
  // new, and only it is undone on failure: sandrun/ is shared by every run and stays, and
  // sandrun/<run>/ goes with remove_run() (removing it here could race another job's create).
  // A run's levels are made once per hierarchy and remembered, which halves the mkdirs.
  Result<void> make_levels(Leaf& l, const std::string& run, const std::string& name, const Limits& limits,
                           Undo& undo) {
    const std::string base = l.mount + "/sandrun";
    const std::string dirs[] = {base, base + "/" + run, base + "/" + run + "/" + name};
    bool ready;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready = ready_.count(dirs[1]) > 0;
    }
    std::string parent = ready ? dirs[1] : l.mount;
    for (const auto& dir : dirs) {
      const bool leaf = &dir == &dirs[2];
      if (ready && !leaf) continue;
      bool made = SANDRUN_TRY(make_dir(dir, leaf, seams_));
      if (made && leaf) undo.add(dir);
      if (l.has("cpuset")) SANDRUN_TRY(fill_cpuset(parent, dir, leaf ? limits.cpuset : std::nullopt));
      parent = dir;
    }
    l.dir = dirs[2];
    return {};
  }

  // A new v1 cpuset cgroup has empty cpus and mems, and no task may join it until both are
  // set: copy the parent's, except the leaf's cpus, which are the limit.
  Result<void> fill_cpuset(const std::string& parent, const std::string& dir,
                           const std::optional<std::string>& cpus) const {
    for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
      const std::string path = dir + "/" + file;
      if (cpus && std::string_view(file) == "cpuset.cpus") {
        SANDRUN_TRY(write_value(path, trim(*cpus), "set cpuset"));
        continue;
      }
      auto now = SANDRUN_TRY(read_optional(path));
      if (now && !trim(*now).empty()) continue;
      auto from = SANDRUN_TRY(fs::read_file(parent + "/" + file).wrap("copy the parent's cpuset"));
      SANDRUN_TRY(write_value(path, trim(from), fmt::format("copy {} from the parent cgroup", file)));
    }
    return {};
  }

  static Result<void> write_limits(const std::vector<Leaf>& leaves, const Limits& limits) {
    auto dir_of = [&](std::string_view c) -> std::string {
      for (const auto& l : leaves)
        if (l.has(c)) return l.dir;
      return "";
    };
    if (limits.memory) {
      const std::string d = dir_of("memory"), v = num(*limits.memory);
      SANDRUN_TRY(write_value(d + "/memory.limit_in_bytes", v, "set memory limit"));
      // memsw exists only with swap accounting on; without it, swappiness 0 keeps the
      // group's pages out of swap so that the memory limit still bounds the job.
      if (fs::exists(d + "/memory.memsw.limit_in_bytes"))
        SANDRUN_TRY(write_value(d + "/memory.memsw.limit_in_bytes", v, "set memory+swap limit"));
      else
        SANDRUN_TRY(write_value(d + "/memory.swappiness", "0", "keep the job out of swap"));
    }
    if (limits.cpus) {
      const std::string d = dir_of("cpu");
      SANDRUN_TRY(write_value(d + "/cpu.cfs_period_us", num(kCpuPeriodUsec), "set cpu limit"));
      SANDRUN_TRY(write_value(d + "/cpu.cfs_quota_us", num(cpu_quota_usec(*limits.cpus)), "set cpu limit"));
    }
    if (limits.pids) SANDRUN_TRY(write_value(dir_of("pids") + "/pids.max", num(*limits.pids), "set pids limit"));
    // The device policy: nothing, then the standard nodes. A new group inherits its parent's
    // list (everything, for sandrun's own groups); "a" on devices.deny empties it.
    if (const std::string d = dir_of("devices"); !d.empty()) {
      SANDRUN_TRY(write_value(d + "/devices.deny", "a", "deny every device"));
      for (const DeviceRule& r : kAllowedDevices)
        SANDRUN_TRY(write_value(d + "/devices.allow", v1_device_rule(r), "allow a standard device"));
    }
    return {};
  }

  void describe(const std::vector<std::string>& ignored) {
    info_.version = Version::v1;
    info_.root = root_;
    info_.base = root_ + "/<controller>/sandrun";
    static const std::map<std::string, std::string> consequence = {
        {"memory", "memory limits are refused and memory stats are absent"},
        {"cpu", "cpus limits are refused"},
        {"cpuacct", "cpu usage stats are absent"},
        {"pids", "pids limits are refused"},
        {"cpuset", "cpuset limits are refused"},
        {"freezer", "kill() signals processes one by one until none is left"},
        {"devices", "no device policy (containers still see only sandrun's own nodes, and every writable "
                    "mount is nodev)"},
    };
    info_.device_policy = mounts_.count("devices") > 0;
    for (const char* c : kControllers) {
      const bool usable = mounts_.count(c) > 0;
      const std::string_view name(c);
      if (usable && name != "freezer" && name != "devices") info_.controllers.push_back(c);
      if (!usable) info_.notes.push_back(fmt::format("no {} controller mounted: {}", c, consequence.at(c)));
    }
    if (mounts_.count("memory") && !fs::exists(mounts_.at("memory") + "/memory.memsw.limit_in_bytes"))
      info_.notes.push_back(
          "memory.memsw absent: swap accounting off (swapaccount=1); swap is kept out with memory.swappiness=0");
    for (const auto& point : ignored)
      info_.notes.push_back(fmt::format("the cgroup2 mount at {} is ignored: on a hybrid host sandrun uses cgroup v1", point));
  }

  std::string root_;
  std::map<std::string, std::string> mounts_;  // controller -> mount point
  Seams seams_;
  std::mutex mu_;                // create() runs on several threads at once
  std::set<std::string> ready_;  // <mount>/sandrun/<run> made by this backend
  HostInfo info_;
};

bool under(const std::string& path, const std::string& root) {
  return path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/';
}

}  // namespace

std::unique_ptr<Backend> make_v1(const std::string& root, const std::vector<Mount>& mounts, Seams seams) {
  std::map<std::string, std::string> found;
  std::vector<std::string> ignored;
  for (const auto& m : mounts) {
    if (m.fstype == "cgroup2") ignored.push_back(m.point);
    if (m.fstype != "cgroup") continue;
    for (const char* c : kControllers) {
      if (std::find(m.super_options.begin(), m.super_options.end(), c) == m.super_options.end()) continue;
      // The first mount wins, unless a later one is under `root` and the first is not (a
      // controller mounted twice, e.g. bind-mounted into a chroot).
      auto it = found.find(c);
      if (it == found.end() || (!under(it->second, root) && under(m.point, root))) found[c] = m.point;
    }
  }
  return std::make_unique<V1Backend>(root, std::move(found), std::move(ignored), std::move(seams));
}

}  // namespace sandrun::sandbox::cgroup::detail
