// Unit tests of the cgroup backends against a directory tree shaped like cgroupfs (no privileges).
#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>

#include "sandbox/cgroup_internal.h"
#include "sandbox/sys/fs.h"
#include "tests/support/test_env.h"

namespace sandrun::sandbox::cgroup {
namespace {

using sandrun::testing::read_file;
using sandrun::testing::TempDir;
using sandrun::testing::write_file;

constexpr uint64_t MiB = 1 << 20;

// The control files cgroupfs makes in a new cgroup, per controller (those the backends touch).
const std::map<std::string, std::vector<std::string>> kFiles = {
    {"memory", {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.swappiness",
                "memory.max_usage_in_bytes", "memory.oom_control"}},
    {"cpu", {"cpu.cfs_period_us", "cpu.cfs_quota_us"}},
    {"cpuacct", {"cpuacct.usage"}},
    {"pids", {"pids.max", "pids.events"}},
    {"freezer", {"freezer.state"}},
    {"devices", {"devices.deny", "devices.allow"}},
    {"cpuset", {"cpuset.cpus", "cpuset.mems"}},
    {"v2", {"cgroup.subtree_control", "cgroup.controllers", "cgroup.type", "cgroup.kill", "memory.max",
            "memory.swap.max", "memory.peak", "memory.events", "cpu.max", "cpu.stat", "pids.max", "pids.events",
            "cpuset.cpus"}},
};

// Removes the regular files of a fake cgroup, as the kernel does on rmdir.
void clear_files(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_type == DT_REG) ::unlinkat(::dirfd(d), e->d_name, 0);
  }
  ::closedir(d);
}

// A fake cgroupfs under a TempDir: v1 (one dir per mount, named like "cpu,cpuacct") or v2.
class FakeCgroups : public ::testing::Test {
 protected:
  std::string root() const { return tmp_.path() + "/cgroup"; }
  std::string mountinfo() const { return tmp_.path() + "/mountinfo"; }

  // `mounts` are v1 mount directory names ("memory", "cpu,cpuacct", ...); the hybrid host's
  // hugetlb-only cgroup2 at unified/ is always there.
  void make_v1(const std::vector<std::string>& mounts) {
    std::string mi = "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n";
    mi += fmt::format("31 22 0:28 / {} rw,relatime shared:9 - tmpfs tmpfs rw,mode=755\n", root());
    int id = 32;
    for (const auto& m : mounts) {
      const std::string point = root() + "/" + m;
      ASSERT_TRUE(fs::mkdirs(point));
      dirs_[point] = split(m);
      populate(point);
      mi += fmt::format("{} 31 0:{} / {} rw,relatime shared:{} - cgroup cgroup rw,{}\n", id, id, point, id, m);
      ++id;
    }
    ASSERT_TRUE(fs::mkdirs(root() + "/unified"));
    mi += fmt::format("{} 31 0:{} / {}/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n", id, id, root());
    mi += fmt::format("{} 31 0:{} / {}/systemd rw - cgroup cgroup rw,xattr,name=systemd\n", id + 1, id + 1, root());
    write_file(mountinfo(), mi);
    if (dirs_.count(root() + "/cpuset")) {
      write_file(root() + "/cpuset/cpuset.cpus", "0-3\n");
      write_file(root() + "/cpuset/cpuset.mems", "0\n");
    }
  }

  void make_v2(const std::string& controllers = "cpuset cpu io memory hugetlb pids rdma misc") {
    ASSERT_TRUE(fs::mkdirs(root()));
    dirs_[root()] = {"v2"};
    write_file(root() + "/cgroup.controllers", controllers + "\n");
    write_file(root() + "/cgroup.subtree_control", "");
    write_file(root() + "/cgroup.procs", "1\n");
    write_file(mountinfo(), fmt::format("30 1 0:26 / {} rw - cgroup2 cgroup2 rw,nsdelegate\n", root()));
    v2_ = true;
  }

  Seams seams() {
    Seams s;
    s.after_mkdir = [this](const std::string& dir) {
      for (const auto& [top, ctrls] : dirs_) {
        if (dir.compare(0, top.size() + 1, top + "/") == 0) {
          dirs_[dir] = ctrls;
          populate(dir);
          return;
        }
      }
      ADD_FAILURE() << "mkdir outside the fake hierarchies: " << dir;
    };
    s.before_rmdir = [](const std::string& dir) { clear_files(dir); };
    s.root_is_cgroup2 = v2_;
    s.cpus = std::vector<unsigned>{0, 1, 2, 3};
    s.skip_device_program = true;  // a plain directory takes no BPF program
    return s;
  }

  std::unique_ptr<Backend> detect() {
    auto b = Backend::detect(root(), mountinfo(), seams());
    EXPECT_TRUE(b) << b.error().message();
    return b ? b.take() : nullptr;
  }

  std::string file(const std::string& rel) const { return read_file(root() + "/" + rel); }

  void sweep_removes_only_dead_runs(const std::vector<std::string>& tops);

  std::set<std::string> omit_;  // files left out of new cgroups (to make a write fail)
  bool memsw_ = true;

 private:
  static std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    size_t b = 0;
    for (size_t e; (e = s.find(',', b)) != std::string::npos; b = e + 1) out.push_back(s.substr(b, e - b));
    out.push_back(s.substr(b));
    return out;
  }

  void populate(const std::string& dir) {
    write_file(dir + "/cgroup.procs", "");
    if (!v2_) write_file(dir + "/tasks", "");  // v1's children join through it
    for (const auto& c : dirs_[dir]) {
      auto it = kFiles.find(c);
      if (it == kFiles.end()) continue;
      for (const auto& f : it->second) {
        if (omit_.count(f) || (!memsw_ && f == "memory.memsw.limit_in_bytes")) continue;
        if (dir == root() && f == "cgroup.type") continue;  // only non-root cgroups have it
        if (!fs::exists(dir + "/" + f)) write_file(dir + "/" + f, "");
      }
    }
  }

  TempDir tmp_;
  std::map<std::string, std::vector<std::string>> dirs_;  // cgroup dir -> its controllers
  bool v2_ = false;
};

const std::vector<std::string> kHybrid = {"memory", "cpu,cpuacct", "pids", "cpuset", "freezer", "devices"};

bool has_note(const HostInfo& info, const std::string& text) {
  for (const auto& n : info.notes)
    if (n == text) return true;
  return false;
}

// ---- detection --------------------------------------------------------------------------

TEST_F(FakeCgroups, HybridHostIsV1AndIgnoresTheHugetlbOnlyCgroup2Mount) {
  make_v1(kHybrid);
  auto b = detect();
  ASSERT_TRUE(b);
  const HostInfo& info = b->info();
  EXPECT_EQ(info.version, Version::v1);
  EXPECT_EQ(info.root, root());
  EXPECT_EQ(info.controllers, (std::vector<std::string>{"memory", "cpu", "cpuacct", "pids", "cpuset"}));
  EXPECT_EQ(info.base, root() + "/<controller>/sandrun");
  EXPECT_TRUE(has_note(info, fmt::format(
      "the cgroup2 mount at {}/unified is ignored: on a hybrid host sandrun uses cgroup v1", root())));
  EXPECT_FALSE(has_note(info, "memory.memsw absent: swap accounting off (swapaccount=1); swap is kept out with memory.swappiness=0"));
}

TEST_F(FakeCgroups, V1ListsMissingControllersAndRefusesLimitsThatNeedThem) {
  memsw_ = false;
  make_v1({"memory", "cpu", "cpuacct"});
  auto b = detect();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->info().controllers, (std::vector<std::string>{"memory", "cpu", "cpuacct"}));
  EXPECT_TRUE(has_note(b->info(), "no pids controller mounted: pids limits are refused"));
  EXPECT_TRUE(has_note(b->info(), "no cpuset controller mounted: cpuset limits are refused"));
  EXPECT_TRUE(has_note(b->info(), "no freezer controller mounted: kill() signals processes one by one until none is left"));
  EXPECT_TRUE(has_note(b->info(), "memory.memsw absent: swap accounting off (swapaccount=1); swap is kept out with memory.swappiness=0"));
  auto r = b->check(Limits{.pids = 10});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "cgroup v1 has no pids controller mounted");
  EXPECT_EQ(r.error().hint_text(),
            fmt::format("mount it: mkdir -p {0}/pids && mount -t cgroup -o pids cgroup {0}/pids", root()));
  EXPECT_TRUE(b->check(Limits{.memory = 64 * MiB, .cpus = 1}));
}

TEST_F(FakeCgroups, Cgroup2RootIsV2) {
  make_v2("cpuset cpu io memory pids");
  auto b = detect();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->info().version, Version::v2);
  EXPECT_EQ(b->info().controllers, (std::vector<std::string>{"memory", "cpu", "pids", "cpuset"}));
  EXPECT_EQ(b->info().base, root() + "/sandrun");
  EXPECT_TRUE(b->info().notes.empty());
}

TEST_F(FakeCgroups, V2WithoutPidsControllerRefusesPidsLimit) {
  make_v2("cpu memory");
  auto b = detect();
  ASSERT_TRUE(b);
  EXPECT_TRUE(has_note(b->info(), fmt::format("no pids controller in {}/cgroup.controllers: pids limits are refused", root())));
  auto r = b->check(Limits{.pids = 10});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            fmt::format("cgroup v2 has no pids controller ({}/cgroup.controllers lists \"cpu memory\")", root()));
}

TEST_F(FakeCgroups, NoCgroupsAtAllIsAClearError) {
  ASSERT_TRUE(fs::mkdirs(root()));
  write_file(mountinfo(), "22 1 0:21 / /sys rw - sysfs sysfs rw\n");
  auto b = Backend::detect(root(), mountinfo(), seams());
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().message(),
            fmt::format("cgroups: {} is not a cgroup2 mount and no cgroup v1 controller is mounted", root()));
}

// ---- v1 limits ---------------------------------------------------------------------------

TEST_F(FakeCgroups, V1MemoryLimitCountsSwapInMemsw) {
  make_v1(kHybrid);
  auto b = detect();
  auto g = b->create("r1", "job", Limits{.memory = 64 * MiB});
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ(file("memory/sandrun/r1/job/memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(file("memory/sandrun/r1/job/memory.memsw.limit_in_bytes"), "67108864");
  EXPECT_EQ(file("memory/sandrun/r1/job/memory.swappiness"), "");
  EXPECT_EQ((*g)->version(), Version::v1);
  EXPECT_EQ((*g)->path(), root() + "/memory/sandrun/r1/job");
  EXPECT_EQ((*g)->clone_into_fd(), -1);
  // memory, cpu+cpuacct (one mount), pids, devices (the device policy); never the freezer (the
  // PID namespace dies with its init); no cpuset without a cpuset limit.
  EXPECT_EQ((*g)->procs_fds().size(), 4u);
  // Each is the hierarchy's `tasks` file: the child moves only itself, which the kernel does
  // without the global write lock that a write to cgroup.procs takes.
  for (int fd : (*g)->procs_fds()) {
    char buf[PATH_MAX] = {};
    ASSERT_GT(::readlink(fmt::format("/proc/self/fd/{}", fd).c_str(), buf, sizeof buf - 1), 0);
    EXPECT_TRUE(std::string_view(buf).ends_with("/sandrun/r1/job/tasks")) << buf;
  }
  EXPECT_FALSE(fs::exists(root() + "/freezer/sandrun"));
  EXPECT_FALSE(fs::exists(root() + "/cpuset/sandrun"));
  EXPECT_EQ(file("devices/sandrun/r1/job/devices.deny"), "a");
}

TEST_F(FakeCgroups, V1MemoryLimitWithoutMemswTurnsSwappinessOff) {
  memsw_ = false;
  make_v1(kHybrid);
  auto b = detect();
  auto g = b->create("r1", "job", Limits{.memory = 64 * MiB});
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ(file("memory/sandrun/r1/job/memory.limit_in_bytes"), "67108864");
  EXPECT_FALSE(fs::exists(root() + "/memory/sandrun/r1/job/memory.memsw.limit_in_bytes"));
  EXPECT_EQ(file("memory/sandrun/r1/job/memory.swappiness"), "0");
}

TEST_F(FakeCgroups, V1CpusAndPidsLimits) {
  make_v1({"memory", "cpu", "cpuacct", "pids"});  // cpu and cpuacct mounted apart
  auto b = detect();
  auto g1 = b->create("r1", "a", Limits{.cpus = 1.5, .pids = 16});
  ASSERT_TRUE(g1) << g1.error().message();
  EXPECT_EQ(file("cpu/sandrun/r1/a/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(file("cpu/sandrun/r1/a/cpu.cfs_quota_us"), "150000");
  EXPECT_EQ(file("pids/sandrun/r1/a/pids.max"), "16");
  EXPECT_EQ((*g1)->procs_fds().size(), 4u);
  auto g2 = b->create("r1", "b", Limits{.cpus = 0.5});
  ASSERT_TRUE(g2) << g2.error().message();
  EXPECT_EQ(file("cpu/sandrun/r1/b/cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(file("pids/sandrun/r1/b/pids.max"), "");  // left at the parent's
}

TEST_F(FakeCgroups, V1JoinsTheDevicesControllerAndDeniesEverythingBeforeAllowingTheStandardNodes) {
  make_v1({"memory", "cpuacct", "pids", "devices"});
  auto b = detect();
  EXPECT_TRUE(b->info().device_policy);
  auto g = b->create("r1", "a", Limits{});
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ((*g)->procs_fds().size(), 4u);  // the devices hierarchy is joined too
  EXPECT_EQ(file("devices/sandrun/r1/a/devices.deny"), "a");
  EXPECT_EQ(detail::v1_device_rule(detail::kAllowedDevices[0]), "c 1:3 rwm");
  EXPECT_EQ(detail::v1_device_rule(detail::kAllowedDevices[std::size(detail::kAllowedDevices) - 1]), "c 136:* rw");
  make_v1({"memory"});
  auto without = detect();
  EXPECT_FALSE(without->info().device_policy);
}

TEST_F(FakeCgroups, V1CpusetCopiesMemsAndCpusFromTheParentAtEachLevel) {
  make_v1(kHybrid);
  auto b = detect();
  auto g = b->create("r1", "job", Limits{.cpuset = "0-1,3"});
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ(file("cpuset/sandrun/cpuset.cpus"), "0-3");
  EXPECT_EQ(file("cpuset/sandrun/cpuset.mems"), "0");
  EXPECT_EQ(file("cpuset/sandrun/r1/cpuset.cpus"), "0-3");
  EXPECT_EQ(file("cpuset/sandrun/r1/cpuset.mems"), "0");
  EXPECT_EQ(file("cpuset/sandrun/r1/job/cpuset.cpus"), "0-1,3");
  EXPECT_EQ(file("cpuset/sandrun/r1/job/cpuset.mems"), "0");
  EXPECT_EQ((*g)->procs_fds().size(), 5u);  // with devices
}

TEST_F(FakeCgroups, V1StatsAreParsedFromTheControlFiles) {
  make_v1(kHybrid);
  auto b = detect();
  auto g = b->create("r1", "job", Limits{});
  ASSERT_TRUE(g) << g.error().message();
  write_file(root() + "/memory/sandrun/r1/job/memory.max_usage_in_bytes", "33554432\n");
  write_file(root() + "/memory/sandrun/r1/job/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  write_file(root() + "/cpu,cpuacct/sandrun/r1/job/cpuacct.usage", "1500000123\n");
  write_file(root() + "/pids/sandrun/r1/job/pids.events", "max 3\n");
  auto s = (*g)->stats();
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->memory_peak, 32 * MiB);
  EXPECT_EQ(s->cpu_usec, 1500000u);
  EXPECT_EQ(s->oom_kills, 2u);
  EXPECT_EQ(s->pids_limit_hits, 3u);
}

// A live-restore daemon takes a container back: its group is opened as create() left it, nothing
// written, the same hierarchies joined; a group that is not there is an error.
TEST_F(FakeCgroups, V1OpenTakesBackTheGroupCreateLeft) {
  make_v1(kHybrid);
  auto b = detect();
  auto made = b->create("live-r1", "c", Limits{.memory = 64 * MiB, .pids = 16});
  ASSERT_TRUE(made) << made.error().message();
  (*made)->keep();
  made->reset();
  auto g = b->open("live-r1", "c");
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ((*g)->path(), root() + "/memory/sandrun/live-r1/c");
  EXPECT_EQ((*g)->procs_fds().size(), 4u);  // memory, cpu+cpuacct, pids, devices: what create made
  EXPECT_EQ(file("memory/sandrun/live-r1/c/memory.limit_in_bytes"), "67108864");
  auto missing = b->open("live-r2", "c");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "cgroup v1: no hierarchy has sandrun/live-r2/c");
  EXPECT_FALSE(b->open("../x", "c"));
}

TEST_F(FakeCgroups, V2OpenTakesBackTheGroupCreateLeft) {
  make_v2();
  auto b = detect();
  auto made = b->create("live-r1", "c", Limits{.memory = 64 * MiB});
  ASSERT_TRUE(made) << made.error().message();
  (*made)->keep();
  made->reset();
  auto g = b->open("live-r1", "c");
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_GE((*g)->clone_into_fd(), 0);
  EXPECT_EQ((*g)->path(), root() + "/sandrun/live-r1/c");
  EXPECT_FALSE(b->open("live-r2", "c"));
}

// ---- v2 limits ---------------------------------------------------------------------------

TEST_F(FakeCgroups, V2EnablesControllersAtEachLevelAndWritesLimits) {
  make_v2();
  auto b = detect();
  auto g = b->create("r1", "job", Limits{.memory = 64 * MiB, .cpus = 1.5, .pids = 16});
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ(file("cgroup.subtree_control"), "+memory +cpu +pids");
  EXPECT_EQ(file("sandrun/cgroup.subtree_control"), "+memory +cpu +pids");
  EXPECT_EQ(file("sandrun/r1/cgroup.subtree_control"), "+memory +cpu +pids");
  EXPECT_EQ(file("sandrun/r1/job/cgroup.subtree_control"), "");
  EXPECT_EQ(file("sandrun/r1/job/memory.max"), "67108864");
  EXPECT_EQ(file("sandrun/r1/job/memory.swap.max"), "0");
  EXPECT_EQ(file("sandrun/r1/job/cpu.max"), "150000 100000");
  EXPECT_EQ(file("sandrun/r1/job/pids.max"), "16");
  EXPECT_EQ(file("sandrun/r1/job/cpuset.cpus"), "");
  EXPECT_EQ((*g)->version(), Version::v2);
  EXPECT_GE((*g)->clone_into_fd(), 0);
  EXPECT_TRUE((*g)->procs_fds().empty());
  EXPECT_EQ((*g)->path(), root() + "/sandrun/r1/job");
  auto g2 = b->create("r1", "half", Limits{.cpus = 0.5, .cpuset = "1"});
  ASSERT_TRUE(g2) << g2.error().message();
  EXPECT_EQ(file("sandrun/r1/half/cpu.max"), "50000 100000");
  EXPECT_EQ(file("sandrun/r1/half/cpuset.cpus"), "1");
  EXPECT_EQ(file("sandrun/r1/cgroup.subtree_control"), "+memory +cpu +pids +cpuset");
}

TEST_F(FakeCgroups, V2LeavesTheRootAloneWhenControllersAreEnabled) {
  make_v2();
  write_file(root() + "/cgroup.subtree_control", "cpuset cpu memory pids\n");
  auto b = detect();
  auto g = b->create("r1", "job", Limits{});
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ(file("cgroup.subtree_control"), "cpuset cpu memory pids\n");
  EXPECT_EQ(file("sandrun/cgroup.subtree_control"), "+memory +cpu +pids");
}

TEST_F(FakeCgroups, V2BelowANonRootCgroupDoesNotEnableControllers) {
  make_v2();
  write_file(root() + "/cgroup.type", "domain\n");
  write_file(root() + "/cgroup.subtree_control", "memory\n");
  auto b = detect();
  auto r = b->create("r1", "job", Limits{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            fmt::format("cgroup v2: cpu, pids not enabled in {}/cgroup.subtree_control, and sandrun enables "
                        "controllers only in the root cgroup", root()));
  EXPECT_FALSE(fs::exists(root() + "/sandrun"));
  EXPECT_EQ(file("cgroup.subtree_control"), "memory\n");
}

TEST_F(FakeCgroups, V2StatsAreParsedFromTheControlFiles) {
  make_v2();
  auto b = detect();
  auto g = b->create("r1", "job", Limits{});
  ASSERT_TRUE(g) << g.error().message();
  const std::string d = root() + "/sandrun/r1/job/";
  write_file(d + "memory.peak", "35651584\n");
  write_file(d + "cpu.stat", "usage_usec 987654\nuser_usec 900000\nsystem_usec 87654\nnr_periods 0\n");
  write_file(d + "memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n");
  write_file(d + "pids.events", "max 7\n");
  auto s = (*g)->stats();
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->memory_peak, 34 * MiB);
  EXPECT_EQ(s->cpu_usec, 987654u);
  EXPECT_EQ(s->oom_kills, 1u);
  EXPECT_EQ(s->pids_limit_hits, 7u);
  ::unlink((d + "memory.peak").c_str());  // kernels before 5.19
  s = (*g)->stats();
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->memory_peak.has_value());
}

// ---- check() -----------------------------------------------------------------------------

TEST_F(FakeCgroups, CheckExplainsLimitsTheHostCannotHonour) {
  make_v1(kHybrid);
  Seams s = seams();
  s.cpus = std::vector<unsigned>{0, 1};
  auto b = Backend::detect(root(), mountinfo(), s);
  ASSERT_TRUE(b);
  auto err = [&](const Limits& l) {
    auto r = (*b)->check(l);
    return r ? std::string("ok") : r.error().message();
  };
  EXPECT_EQ(err(Limits{.cpus = 4}), "cpus = 4 is more than the 2 CPUs of this host");
  EXPECT_EQ(err(Limits{.cpus = 0}), "cpus = 0 must be more than 0");
  EXPECT_EQ(err(Limits{.cpus = 0.001}), "cpus = 0.001 is below the minimum of 0.01");
  EXPECT_EQ(err(Limits{.cpuset = "7"}), "cpuset \"7\" names CPUs this host does not have (it has 0-1)");
  EXPECT_EQ(err(Limits{.cpuset = "1-x"}), "cpuset \"1-x\" is not a CPU list like \"0-1,3\"");
  EXPECT_EQ(err(Limits{.memory = 1 * MiB}), "memory 1 MiB is below the minimum of 4 MiB");
  EXPECT_EQ(err(Limits{.pids = 0}), "pids = 0 must be at least 1");
  EXPECT_EQ(err(Limits{.memory = 4 * MiB, .cpus = 2, .pids = 1, .cpuset = "0-1"}), "ok");
  // check() has no side effects.
  EXPECT_FALSE(fs::exists(root() + "/memory/sandrun"));
}

// ---- cleanup -----------------------------------------------------------------------------

TEST_F(FakeCgroups, V1CreateFailingPartWayRemovesWhatItCreated) {
  omit_ = {"pids.max"};
  make_v1(kHybrid);
  auto b = detect();
  auto g = b->create("r1", "job", Limits{.memory = 64 * MiB, .pids = 16});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().message(),
            fmt::format("set pids limit: write \"16\" to {}/pids/sandrun/r1/job/pids.max: No such file or directory", root()));
  // The job's cgroup is gone; the run's directory goes with remove_run() at the end of the run.
  for (const auto& m : kHybrid) EXPECT_FALSE(fs::exists(root() + "/" + m + "/sandrun/r1/job")) << m;
  ASSERT_TRUE(b->remove_run("r1"));
  for (const auto& m : kHybrid) EXPECT_FALSE(fs::exists(root() + "/" + m + "/sandrun/r1")) << m;
}

TEST_F(FakeCgroups, V2CreateFailingPartWayRemovesWhatItCreated) {
  omit_ = {"cpu.max"};
  make_v2();
  auto b = detect();
  auto g = b->create("r1", "job", Limits{.cpus = 1});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().message(),
            fmt::format("set cpu limit: write \"100000 100000\" to {}/sandrun/r1/job/cpu.max: No such file or directory", root()));
  EXPECT_FALSE(fs::exists(root() + "/sandrun/r1"));
}

TEST_F(FakeCgroups, CreateRefusesAnExistingGroupAndBadNames) {
  make_v2();
  auto b = detect();
  auto g = b->create("r1", "job", Limits{});
  ASSERT_TRUE(g);
  auto again = b->create("r1", "job", Limits{});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message(), fmt::format("create cgroup {}/sandrun/r1/job: File exists", root()));
  EXPECT_TRUE(fs::exists(root() + "/sandrun/r1/job"));  // the first one is untouched
  auto bad = b->create("r1", "../x", Limits{});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "cgroup names must be single path components: run \"r1\", job \"../x\"");
}

TEST_F(FakeCgroups, V1GroupDestructorAndRemoveRunLeaveNothing) {
  make_v1(kHybrid);
  auto b = detect();
  {
    auto g = b->create("r1", "a", Limits{.cpuset = "0"});
    ASSERT_TRUE(g);
    auto g2 = b->create("r1", "b", Limits{});
    ASSERT_TRUE(g2);
    ASSERT_TRUE((*g2)->remove());
    EXPECT_FALSE(fs::exists(root() + "/memory/sandrun/r1/b"));
  }  // the destructor removes "a"
  EXPECT_FALSE(fs::exists(root() + "/memory/sandrun/r1/a"));
  EXPECT_FALSE(fs::exists(root() + "/cpuset/sandrun/r1/a"));
  auto r = b->remove_run("r1");
  ASSERT_TRUE(r) << r.error().message();
  for (const auto& m : kHybrid) EXPECT_FALSE(fs::exists(root() + "/" + m + "/sandrun/r1")) << m;
}

TEST_F(FakeCgroups, RemoveRunRemovesGroupsStillInIt) {
  make_v2();
  auto b = detect();
  auto g = b->create("r1", "a", Limits{});
  ASSERT_TRUE(g);
  auto r = b->remove_run("r1");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(fs::exists(root() + "/sandrun/r1"));
  EXPECT_TRUE(fs::exists(root() + "/sandrun"));  // shared by every run
}

// A dead run's leftovers (in every hierarchy `tops`), a live run and a directory that is not a
// run: only the dead run goes.
void FakeCgroups::sweep_removes_only_dead_runs(const std::vector<std::string>& tops) {
  auto b = detect();
  ASSERT_TRUE(b);
  const std::string live = run_id() + "-sweep";
  auto live_group = b->create(live, "job", Limits{});
  ASSERT_TRUE(live_group);
  Seams s = seams();
  for (const auto& top : tops) {
    for (const char* d : {"/sandrun", "/sandrun/999999999-1", "/sandrun/999999999-1/job", "/sandrun/not-a-run"}) {
      if (std::string_view(d) == "/sandrun" && fs::exists(top + d)) continue;
      ASSERT_EQ(::mkdir((top + d).c_str(), 0755), 0) << top + d;
      s.after_mkdir(top + d);
    }
  }
  auto n = b->sweep_stale();
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1u);
  for (const auto& top : tops) {
    EXPECT_FALSE(fs::exists(top + "/sandrun/999999999-1")) << top;
    // A live group never joins the freezer; an older run's leftovers there are still swept.
    const bool freezer = top.size() >= 8 && top.compare(top.size() - 8, 8, "/freezer") == 0;
    EXPECT_EQ(fs::exists(top + "/sandrun/" + live + "/job"), !freezer) << top;
    EXPECT_TRUE(fs::exists(top + "/sandrun/not-a-run")) << top;
  }
}

TEST_F(FakeCgroups, V1SweepRemovesDeadRunsOnly) {
  make_v1(kHybrid);
  std::vector<std::string> tops;
  for (const char* m : {"memory", "cpu,cpuacct", "pids", "freezer"}) tops.push_back(root() + "/" + m);
  sweep_removes_only_dead_runs(tops);
}

TEST_F(FakeCgroups, V2SweepRemovesDeadRunsOnly) {
  make_v2();
  sweep_removes_only_dead_runs({root()});
}

}  // namespace
}  // namespace sandrun::sandbox::cgroup
