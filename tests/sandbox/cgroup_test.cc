// Real cgroup tests (privileged): limits, stats, kill and cleanup on this host's cgroup v1 or v2.
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <iostream>

#include "sandbox/cgroup_internal.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/syscalls.h"
#include "tests/support/test_env.h"

namespace sandrun::sandbox::cgroup {
namespace {

using namespace std::chrono_literals;
using sandrun::testing::eventually;

constexpr uint64_t MiB = 1 << 20;

// A child process of the test, killed and reaped unless it was waited for.
class Child {
 public:
  Child() = default;
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);  // our own unreaped child: the pid cannot have been recycled
      (void)wait();
    }
  }
  pid_t pid() const { return pid_; }
  // The wait status (-1 when there is no child).
  int wait() {
    int status = -1;
    if (pid_ > 0 && ::waitpid(pid_, &status, 0) == pid_) pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
};

// Runs `body` in a child process inside `group` and returns it; the child exits with what
// body returns. v2: a fork-style clone3 straight into the cgroup; v1: a fork that joins each
// hierarchy through the group's procs fds before anything else.
Child spawn_in(const Group& group, const std::function<int()>& body) {
  pid_t pid;
  if (group.version() == Version::v2) {
    struct clone_args args = {};
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(group.clone_into_fd());
    pid = static_cast<pid_t>(sys::clone3(&args));
  } else {
    pid = ::fork();
  }
  if (pid == 0) {
    for (int fd : group.procs_fds()) {
      if (::write(fd, "0", 1) != 1) ::_exit(120);
    }
    ::_exit(body());
  }
  EXPECT_GT(pid, 0) << "clone: " << errno_text(errno);
  return Child(pid);
}

// Forks `n` children that sleep until killed.
int fork_sleepers(int n) {
  for (int i = 0; i < n; ++i) {
    pid_t p = ::fork();
    if (p == 0) {
      for (;;) ::pause();
    }
    if (p < 0) return 1;
  }
  return 0;
}

class CgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SANDRUN_REQUIRE_ROOT();
    auto b = Backend::detect();
    SANDRUN_REQUIRE(b.ok(), "no usable cgroups: " + (b ? std::string() : b.error().render()));
    backend_ = b.take();
    run_ = run_id() + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override {
    if (!backend_) return;
    auto r = backend_->remove_run(run_);
    EXPECT_TRUE(r) << r.error().render();
  }

  std::unique_ptr<Group> create(const std::string& name, const Limits& limits) {
    auto g = backend_->create(run_, name, limits);
    EXPECT_TRUE(g) << g.error().render();
    return g ? g.take() : nullptr;
  }

  // Where each hierarchy keeps the run `run` (v1: one per controller; symlinks are fine). The v1
  // cpuset hierarchy only has it when a group of the run had a cpuset limit.
  // The run's directory in each hierarchy its groups join: memory, cpuacct and pids always,
  // cpu only with a cpus limit, cpuset only with a cpuset (never the freezer).
  std::vector<std::string> run_dirs(const std::string& run, bool with_cpu = true, bool with_cpuset = true) const {
    const HostInfo& info = backend_->info();
    if (info.version == Version::v2) return {info.root + "/sandrun/" + run};
    std::vector<std::string> out;
    for (const auto& c : info.controllers) {
      if ((c != "cpuset" || with_cpuset) && (c != "cpu" || with_cpu)) out.push_back(info.root + "/" + c + "/sandrun/" + run);
    }
    return out;
  }
  // Every hierarchy sandrun may have used, for "nothing is left".
  std::vector<std::string> all_run_dirs(const std::string& run) const {
    auto out = run_dirs(run);
    const HostInfo& info = backend_->info();
    if (info.version == Version::v1) out.push_back(info.root + "/freezer/sandrun/" + run);
    if (info.version == Version::v1 && info.device_policy) out.push_back(info.root + "/devices/sandrun/" + run);
    return out;
  }

  std::unique_ptr<Backend> backend_;
  std::string run_;
};

TEST_F(CgroupTest, MemoryLimitOomKillsTheJob) {
  auto g = create("job", Limits{.memory = 32 * MiB});
  ASSERT_TRUE(g);
  Child child = spawn_in(*g, [] {
    const size_t size = 256 * MiB;
    auto* p = static_cast<volatile char*>(
        ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) return 2;
    for (size_t i = 0; i < size; i += 4096) p[i] = 1;
    return 0;
  });
  int status = child.wait();
  ASSERT_TRUE(WIFSIGNALED(status)) << "the job was not killed; status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  auto s = g->stats();
  ASSERT_TRUE(s) << s.error().render();
  EXPECT_GE(s->oom_kills, 1u);
  std::cout << "oom_kills " << s->oom_kills << ", memory_peak " << s->memory_peak.value_or(0) << "\n";
  const bool peak_known = g->version() == Version::v1 || fs::exists(g->path() + "/memory.peak");
  ASSERT_EQ(s->memory_peak.has_value(), peak_known);
  if (peak_known) {
    EXPECT_GE(*s->memory_peak, 16 * MiB);
    EXPECT_LE(*s->memory_peak, 40 * MiB);
  }
}

TEST_F(CgroupTest, PidsLimitMakesForkFailWithEagain) {
  auto g = create("job", Limits{.pids = 16});
  ASSERT_TRUE(g);
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd rd(fds[0]), wr(fds[1]);
  Child child = spawn_in(*g, [&] {
    int result[2] = {0, 0};  // forks that worked, forks that failed with EAGAIN
    for (int i = 0; i < 100; ++i) {
      pid_t p = ::fork();
      if (p == 0) {
        for (;;) ::pause();
      }
      if (p > 0) ++result[0];
      else if (errno == EAGAIN) ++result[1];
    }
    if (::write(wr.get(), result, sizeof result) != sizeof result) return 3;
    for (;;) ::pause();
  });
  wr.reset();
  int result[2] = {-1, -1};
  ASSERT_EQ(::read(rd.get(), result, sizeof result), static_cast<ssize_t>(sizeof result));
  EXPECT_EQ(result[0], 15);  // the job itself is the 16th
  EXPECT_EQ(result[1], 85);
  auto s = g->stats();
  ASSERT_TRUE(s) << s.error().render();
  EXPECT_GE(s->pids_limit_hits, 1u);
  auto before = g->procs();
  ASSERT_TRUE(before);
  EXPECT_EQ(before->size(), 16u);

  auto k = g->kill();
  ASSERT_TRUE(k) << k.error().render();
  auto after = g->procs();
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->empty());
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  auto r = g->remove();
  ASSERT_TRUE(r) << r.error().render();
  EXPECT_FALSE(fs::exists(g->path()));
}

TEST_F(CgroupTest, CpuQuotaHalvesTheCpuTimeOfASpinningJob) {
  auto g = create("job", Limits{.cpus = 0.5});
  ASSERT_TRUE(g);
  const auto start = std::chrono::steady_clock::now();
  Child child = spawn_in(*g, [] {
    struct timespec t0, now;
    ::clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
      ::clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - t0.tv_sec) * 1000000000L + (now.tv_nsec - t0.tv_nsec) < 2000000000L);
    return 0;
  });
  int status = child.wait();
  const auto wall = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto s = g->stats();
  ASSERT_TRUE(s) << s.error().render();
  ASSERT_TRUE(s->cpu_usec.has_value());
  const double share = static_cast<double>(*s->cpu_usec) / static_cast<double>(wall.count());
  std::cout << "cpu_usec " << *s->cpu_usec << " in " << wall.count() << " us: " << share << "\n";
  EXPECT_GE(share, 0.35) << *s->cpu_usec << " us of CPU in " << wall.count() << " us";
  EXPECT_LE(share, 0.65) << *s->cpu_usec << " us of CPU in " << wall.count() << " us";
}

TEST_F(CgroupTest, AnIdleGroupHasZeroStats) {
  auto g = create("job", Limits{});
  ASSERT_TRUE(g);
  auto s = g->stats();
  ASSERT_TRUE(s) << s.error().render();
  ASSERT_TRUE(s->cpu_usec.has_value());
  EXPECT_EQ(*s->cpu_usec, 0u);
  EXPECT_EQ(s->oom_kills, 0u);
  EXPECT_EQ(s->pids_limit_hits, 0u);
  if (s->memory_peak) {
    EXPECT_EQ(*s->memory_peak, 0u);
  }
  auto p = g->procs();
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->empty());
}

TEST_F(CgroupTest, KillEmptiesAGroupOfTwentySleepers) {
  auto g = create("job", Limits{});
  ASSERT_TRUE(g);
  Child child = spawn_in(*g, [] {
    if (fork_sleepers(19) != 0) return 4;
    for (;;) ::pause();
  });
  ASSERT_TRUE(eventually([&] { auto p = g->procs(); return p && p->size() == 20; }, 20s));
  auto k = g->kill();
  ASSERT_TRUE(k) << k.error().render();
  auto p = g->procs();
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->empty());
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

TEST_F(CgroupTest, RemoveAndRemoveRunLeaveNothingInAnyHierarchy) {
  const auto cpus = detail::allowed_cpus({});
  ASSERT_FALSE(cpus.empty());
  auto a = create("a", Limits{.memory = 64 * MiB, .cpus = 1, .pids = 100});
  auto b = create("b", Limits{.cpuset = std::to_string(cpus.front())});
  ASSERT_TRUE(a && b);
  for (Group* g : {a.get(), b.get()}) {
    Child child = spawn_in(*g, [] { return 7; });
    int status = child.wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7) << status;
  }
  for (const auto& dir : run_dirs(run_)) EXPECT_TRUE(fs::is_dir(dir)) << dir;
  auto ra = a->remove();
  ASSERT_TRUE(ra) << ra.error().render();
  auto rb = b->remove();
  ASSERT_TRUE(rb) << rb.error().render();
  auto rr = backend_->remove_run(run_);
  ASSERT_TRUE(rr) << rr.error().render();
  for (const auto& dir : all_run_dirs(run_)) EXPECT_FALSE(fs::exists(dir)) << dir;
}

// The policy alone (no container, no nodev mount): a root process of the group opens the host's
// own /dev nodes, and may use or make only the standard ones. On v2 through the BPF program.
TEST_F(CgroupTest, TheDevicePolicyAllowsOnlyTheStandardNodes) {
  SANDRUN_REQUIRE(backend_->info().device_policy, "no device policy on this host (sandrun doctor: cgroup.devices)");
  sandrun::testing::TempDir tmp;
  const std::string dir = tmp.path();
  auto g = create("dev", Limits{});
  ASSERT_TRUE(g);
  Child child = spawn_in(*g, [&dir] {
    int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "x", 1) != 1) return 10;
    ::close(fd);
    fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    char b;
    if (fd < 0 || ::read(fd, &b, 1) != 1) return 11;
    ::close(fd);
    if (::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC) >= 0 || errno != EPERM) return 20;
    if (::open("/dev/kmsg", O_WRONLY | O_CLOEXEC) >= 0 || errno != EPERM) return 21;
    if (::access("/dev/loop-control", F_OK) == 0 && (::open("/dev/loop-control", O_RDWR | O_CLOEXEC) >= 0 || errno != EPERM))
      return 22;
    if (::access("/dev/tty1", F_OK) == 0 && (::open("/dev/tty1", O_WRONLY | O_NOCTTY | O_CLOEXEC) >= 0 || errno != EPERM))
      return 23;
    if (::mknod((dir + "/loop").c_str(), S_IFBLK | 0600, makedev(7, 0)) == 0 || errno != EPERM) return 30;
    if (::mknod((dir + "/mem").c_str(), S_IFCHR | 0600, makedev(1, 1)) == 0 || errno != EPERM) return 31;
    if (::mknod((dir + "/pts").c_str(), S_IFCHR | 0600, makedev(136, 0)) == 0 || errno != EPERM) return 32;
    if (::mknod((dir + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) return 33;  // rwm
    return 0;
  });
  int status = child.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "step " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  // Outside the group nothing changed: the test itself still opens /dev/kmsg.
  UniqueFd kmsg(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  EXPECT_TRUE(kmsg.valid()) << errno_text(errno);
}

TEST_F(CgroupTest, SweepRemovesADeadRunWithItsProcessesAndKeepsLiveOnes) {
  const std::string dead = "999999999-1";
  auto stale = backend_->create(dead, "job", Limits{.pids = 50});
  ASSERT_TRUE(stale) << stale.error().render();
  // The group object stays alive: a crashed sandrun would have left its processes running.
  Child child = spawn_in(**stale, [] {
    if (fork_sleepers(3) != 0) return 4;
    for (;;) ::pause();
  });
  ASSERT_TRUE(eventually([&] { auto p = (*stale)->procs(); return p && p->size() == 4; }, 20s));
  auto live = create("job", Limits{});
  ASSERT_TRUE(live);

  auto n = backend_->sweep_stale();
  ASSERT_TRUE(n) << n.error().render();
  EXPECT_GE(*n, 1u);
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  for (const auto& dir : all_run_dirs(dead)) EXPECT_FALSE(fs::exists(dir)) << dir;
  for (const auto& dir : run_dirs(run_, /*with_cpu=*/false, /*with_cpuset=*/false))
    EXPECT_TRUE(fs::is_dir(dir + "/job")) << dir;
}

}  // namespace
}  // namespace sandrun::sandbox::cgroup
