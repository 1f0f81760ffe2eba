// Workspace modes (rw, ro, overlay) and named caches, with real containers through the library.
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/job_file.h"
#include "runner/engine/caches.h"
#include "runner/report/print_spec.h"
#include "runner/engine/session.h"
#include "sandbox/sys/fs.h"
#include "sandbox/userns.h"
#include "tests/support/host_state.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {
namespace {

using config::WorkspaceMode;

class WorkspaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SANDRUN_REQUIRE_ROOT();
    checkout_ = tmp_ / "checkout";
    ASSERT_EQ(::mkdir(checkout_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((checkout_ + "/src").c_str(), 0755), 0);
    write_file(checkout_ + "/same.txt", "from the host\n");
    write_file(checkout_ + "/src/main.c", "int main() { return 0; }\n");
    give_to_checkout_owner(checkout_);
  }

  std::string root() const { return tmp_ / "root"; }

  config::JobSpec job(const std::string& name, const std::string& script) {
    config::JobSpec j;
    j.name = name;
    j.base_name = name;
    j.command = {"/bin/sh", "-c", script};
    return j;
  }
  config::JobSpec ws_job(const std::string& name, const std::string& script, WorkspaceMode mode) {
    auto j = job(name, script);
    j.workspace = checkout_;
    j.workspace_mode = mode;
    return j;
  }

  std::vector<runner::JobResult> run(const std::vector<config::JobSpec>& jobs, size_t parallel) {
    auto store = cache::Store::open(root(), /*tidy=*/false);
    EXPECT_TRUE(store) << store.error().message();
    if (!store) return {};
    auto prepared = runner::prepare_jobs(*store, jobs, {});
    EXPECT_TRUE(prepared) << prepared.error().message();
    if (!prepared) return {};
    runner::RunOptions opts;
    opts.parallel = parallel;
    opts.console = runner::ConsoleMode::none;
    opts.log_dir = tmp_ / "logs";
    (void)fs::mkdirs(opts.log_dir);
    auto outcome = runner::execute(root(), *prepared, std::move(opts));
    EXPECT_TRUE(outcome) << outcome.error().message();
    return outcome ? outcome->results : std::vector<runner::JobResult>{};
  }
  std::string log(const std::string& name) { return read_file(tmp_ / ("logs/" + name + ".log")); }

  // Names, modes, owners, sizes and contents of every file of the tree.
  static std::string tree_hash(const std::string& dir) {
    auto r = run_command({"/bin/sh", "-c",
                          "cd '" + dir + "' && find . -printf '%p %y %m %U:%G %s\\n' | LC_ALL=C sort && "
                          "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum"});
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  }

  // Every slot idle and empty (its writable layer and its volumes' dirs), nothing mounted.
  void expect_slots_empty() {
    for (const auto& k : dir_entries(root() + "/slots")) {
      const std::string slot = root() + "/slots/" + k;
      for (const char* sub : {"/disk/upper", "/disk/work", "/disk/ws-upper", "/disk/ws-work"})
        EXPECT_EQ(dir_entries(slot + sub), std::vector<std::string>{}) << slot << sub;
      EXPECT_FALSE(fs::exists(slot + "/disk/cow")) << slot;
      EXPECT_EQ(read_file(slot + "/pid").substr(0, 1), "-") << slot;
      EXPECT_FALSE(slot_locked(slot)) << slot;
    }
    EXPECT_EQ(mounts_under(root()), std::vector<std::string>{});
    EXPECT_EQ(mounts_under(checkout_), std::vector<std::string>{});
  }

  TempDir tmp_;
  std::string checkout_;
};

TEST_F(WorkspaceTest, EightParallelOverlayJobsEachSeeTheirOwnWriteAndTheCheckoutStaysByteIdentical) {
  const std::string before = tree_hash(checkout_);
  std::vector<config::JobSpec> jobs;
  for (int i = 0; i < 8; ++i) {
    // Each writes the same names, waits until all have written, then reads its own back.
    const std::string n = std::to_string(i);
    jobs.push_back(ws_job("ov" + n,
                          "set -e; echo job" + n + " > /workspace/same.txt; echo job" + n +
                              " > /workspace/src/new.txt; rm /workspace/src/main.c; mkdir /workspace/out; sleep 1; "
                              "cat /workspace/same.txt; test \"$(cat /workspace/same.txt)\" = job" + n +
                              "; test \"$(cat /workspace/src/new.txt)\" = job" + n +
                              "; test ! -e /workspace/src/main.c",
                          WorkspaceMode::overlay));
  }
  auto results = run(jobs, 8);
  ASSERT_EQ(results.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    const std::string n = std::to_string(i);
    EXPECT_TRUE(results[i].ok()) << results[i].name << ": " << results[i].message << "\n" << log("ov" + n);
    EXPECT_EQ(log("ov" + n), "job" + n + "\n");
  }
  EXPECT_EQ(tree_hash(checkout_), before);
  EXPECT_EQ(read_file(checkout_ + "/same.txt"), "from the host\n");
  expect_slots_empty();
}

TEST_F(WorkspaceTest, AnOverlayWorkspaceShowsTheCheckoutWithItsOwnerToANonRootUser) {
  ASSERT_EQ(::chown(checkout_.c_str(), 1000, 1000), 0);
  auto j = ws_job("ov-user", "id -u; stat -c '%u %a' /workspace; cat /workspace/same.txt; echo x > /workspace/mine",
                  WorkspaceMode::overlay);
  j.user = "1000:1000";
  auto results = run({j}, 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok()) << results[0].message << "\n" << log("ov-user");
  EXPECT_EQ(log("ov-user"), "1000\n1000 755\nfrom the host\n");
  EXPECT_FALSE(fs::exists(checkout_ + "/mine"));
  expect_slots_empty();
}

TEST_F(WorkspaceTest, AReadOnlyWorkspaceRefusesWritesAndIsReadable) {
  const std::string before = tree_hash(checkout_);
  auto results = run({ws_job("ro", "cat /workspace/same.txt; echo x > /workspace/same.txt && echo wrote; "
                                   "touch /workspace/new 2>&1 | grep -o 'Read-only file system'",
                             WorkspaceMode::ro)},
                     1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok()) << results[0].message << "\n" << log("ro");
  EXPECT_NE(log("ro").find("from the host\n"), std::string::npos) << log("ro");
  EXPECT_EQ(log("ro").find("wrote"), std::string::npos) << log("ro");
  EXPECT_NE(log("ro").find("Read-only file system"), std::string::npos) << log("ro");
  EXPECT_EQ(tree_hash(checkout_), before);
  expect_slots_empty();
}

TEST_F(WorkspaceTest, AReadWriteWorkspaceStillWritesThroughToTheHost) {
  auto results = run({ws_job("rw", "echo changed > /workspace/same.txt", WorkspaceMode::rw)}, 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok()) << results[0].message;
  EXPECT_EQ(read_file(checkout_ + "/same.txt"), "changed\n");
}

TEST_F(WorkspaceTest, ACachePersistsBetweenRunsOwnedByTheJobsUser) {
  auto first = job("fill", "echo wheel > ~/.cache/pip/pkg; id -u > ~/.cache/pip/who");
  first.caches = {"~/.cache/pip"};
  auto r1 = run({first}, 1);
  ASSERT_EQ(r1.size(), 1u);
  EXPECT_TRUE(r1[0].ok()) << r1[0].message << "\n" << log("fill");
  auto second = job("use", "cat ~/.cache/pip/pkg ~/.cache/pip/who");
  second.caches = {"~/.cache/pip"};
  auto r2 = run({second}, 1);
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_TRUE(r2[0].ok()) << r2[0].message;
  EXPECT_EQ(log("use"), "wheel\n0\n");
  auto c = runner::cache_mount("~/.cache/pip", "/root");
  ASSERT_TRUE(c);
  EXPECT_EQ(read_file(root() + "/caches/" + c->name + "/pkg"), "wheel\n");
  expect_slots_empty();

  // A user other than root can write its (new) cache: created owned by it, that is by its id
  // in sandrun's range (the user namespace, as root), never by host uid 1000.
  auto user = job("user", "id -u; echo u > /cache/u/file");
  user.caches = {"/cache/u"};
  user.user = "1000:1000";
  auto r3 = run({user}, 1);
  ASSERT_EQ(r3.size(), 1u);
  EXPECT_TRUE(r3[0].ok()) << r3[0].message << "\n" << log("user");
  auto cu = runner::cache_mount("/cache/u", "");
  ASSERT_TRUE(cu);
  struct stat st;
  ASSERT_EQ(::stat((root() + "/caches/" + cu->name).c_str(), &st), 0);
  const unsigned base = sandbox::userns::remapped_root().uid_map.at(0).outside;
  EXPECT_EQ(st.st_uid, base + 1000u);
  EXPECT_EQ(st.st_gid, sandbox::userns::remapped_root().gid_map.at(0).outside + 1000u);
}

TEST_F(WorkspaceTest, ACacheWorksWithAReadOnlyRootAndAnImageWithoutItsMountPoint) {
  auto j = job("ro-root", "echo kept > /var/cache/deep/x/file; touch /etc/nope 2>/dev/null || echo ro");
  j.caches = {"/var/cache/deep/x"};
  j.read_only_rootfs = true;
  auto results = run({j}, 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok()) << results[0].message << "\n" << log("ro-root");
  EXPECT_EQ(log("ro-root"), "ro\n");
  auto c = runner::cache_mount("/var/cache/deep/x", "");
  ASSERT_TRUE(c);
  EXPECT_EQ(read_file(root() + "/caches/" + c->name + "/file"), "kept\n");
  expect_slots_empty();
}

TEST_F(WorkspaceTest, TwoConcurrentJobsOnOneCacheOneWritesTheOtherGetsACopyOnWriteView) {
  auto seed = job("seed", "echo seed > /cache/x/base");
  seed.caches = {"/cache/x"};
  ASSERT_TRUE(run({seed}, 1).at(0).ok());
  // Both append to the cache's file and write their own; only the holder's writes stay.
  std::vector<config::JobSpec> jobs;
  for (const char* n : {"a", "b"}) {
    auto j = job(n, std::string("set -e; cat /cache/x/base; for i in $(seq 200); do echo ") + n +
                        " >> /cache/x/log; done; echo " + n + " > /cache/x/" + n + "; sleep 1; "
                        "test \"$(grep -c " + n + " /cache/x/log)\" = 200");
    j.caches = {"/cache/x"};
    jobs.push_back(std::move(j));
  }
  auto results = run(jobs, 2);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.name << ": " << r.message << "\n" << log(r.name);
  auto c = runner::cache_mount("/cache/x", "");
  ASSERT_TRUE(c);
  const std::string dir = root() + "/caches/" + c->name;
  const bool a_wrote = fs::exists(dir + "/a"), b_wrote = fs::exists(dir + "/b");
  EXPECT_NE(a_wrote, b_wrote) << "exactly one job holds the cache read-write";
  const std::string holder = a_wrote ? "a" : "b", other = a_wrote ? "b" : "a";
  std::string expected;
  for (int i = 0; i < 200; ++i) expected += holder + "\n";
  EXPECT_EQ(read_file(dir + "/log"), expected) << "no line of the copy-on-write job, none lost";
  EXPECT_EQ(read_file(dir + "/base"), "seed\n");
  EXPECT_NE(log(other).find("cache /cache/x is in use by another job: this job gets a copy-on-write view"),
            std::string::npos)
      << log(other);
  EXPECT_EQ(log(holder).find("copy-on-write"), std::string::npos) << log(holder);
  expect_slots_empty();
}

// Root with `userns = true`: the checkout goes through an idmapped lower layer; its owner (an
// unprivileged host uid) is the container's root, and the host tree is still untouched.
TEST_F(WorkspaceTest, AnOverlayWorkspaceAndACacheWorkWithARemappedRoot) {
  constexpr uid_t kOwner = 4343;
  ASSERT_EQ(run_command({"chown", "-R", "4343:4343", checkout_}).status, 0);
  const std::string before = tree_hash(checkout_);
  auto j = ws_job("remapped", "set -e; id -u; stat -c %u /workspace/same.txt; echo mine > /workspace/same.txt; "
                              "cat /workspace/same.txt; echo c > /cache/r/file",
                  WorkspaceMode::overlay);
  j.userns = true;
  j.caches = {"/cache/r"};
  auto results = run({j, [&] { auto k = j; k.name = k.base_name = "remapped2"; return k; }()}, 2);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_TRUE(r.ok()) << r.name << ": " << r.message << "\n" << log(r.name);
    EXPECT_NE(log(r.name).find("0\n0\nmine\n"), std::string::npos) << log(r.name);
  }
  EXPECT_EQ(tree_hash(checkout_), before);
  struct stat st;
  ASSERT_EQ(::stat(checkout_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kOwner);
  auto c = runner::cache_mount("/cache/r", "");
  ASSERT_TRUE(c);
  EXPECT_EQ(read_file(root() + "/caches/" + c->name + "/file"), "c\n");
  expect_slots_empty();
}

// sandrun run by an unprivileged user (rootless: every container in a user namespace in which
// the user is root), through the library in a child process that drops to kUser.
// Needs unprivileged user namespaces, which a host's sysctls may refuse: found by trying, as
// uid 4242; where refused, ci/test.sh runs it in the VM (docs/testing.md), and
// UserNamespacesRefusedTest (rootless_test) checks what sandrun says there.
TEST_F(WorkspaceTest, AnOverlayWorkspaceAndACacheWorkRootless) {
  constexpr uid_t kUser = 4242;
  auto probe = try_user_namespace_as(kUser);
  SANDRUN_REQUIRE(probe.status == 0, "unprivileged user namespaces are disabled here (" + probe.err + ")");
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0711), 0);
  ASSERT_EQ(run_command({"chown", "-R", "4242:4242", checkout_}).status, 0);
  ASSERT_EQ(::mkdir(root().c_str(), 0700), 0);
  ASSERT_EQ(::chown(root().c_str(), kUser, kUser), 0);
  ASSERT_EQ(::mkdir((tmp_ / "logs").c_str(), 0755), 0);
  ASSERT_EQ(::chown((tmp_ / "logs").c_str(), kUser, kUser), 0);
  const std::string before = tree_hash(checkout_);
  std::vector<config::JobSpec> jobs;
  for (const char* n : {"r1", "r2"}) {
    auto j = ws_job(n, std::string("set -e; echo ") + n + " > /workspace/same.txt; sleep 0.5; cat /workspace/same.txt; "
                        "echo " + n + " >> /cache/rl/log",
                    WorkspaceMode::overlay);
    j.caches = {"/cache/rl"};
    jobs.push_back(std::move(j));
  }
  const std::string failures = tmp_ / "child-failures";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) < 0 || ::setresgid(kUser, kUser, kUser) < 0 || ::setresuid(kUser, kUser, kUser) < 0)
      ::_exit(3);
    // Changing credentials made us undumpable, which would leave our children's /proc files
    // (uid_map, setgroups) to root; an exec'd rootless sandrun is dumpable.
    ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    std::string msg;
    auto store = cache::Store::open(root(), false);
    if (!store) msg = store.error().message();
    auto prepared = store ? runner::prepare_jobs(*store, jobs, {}) : Result<runner::Prepared>(Error::msg("no store"));
    if (msg.empty() && !prepared) msg = prepared.error().message();
    if (msg.empty()) {
      runner::RunOptions opts;
      opts.parallel = 2;
      opts.console = runner::ConsoleMode::none;
      opts.log_dir = tmp_ / "logs";
      auto outcome = runner::execute(root(), *prepared, std::move(opts));
      if (!outcome) msg = outcome.error().message();
      for (const auto& r : outcome ? outcome->results : std::vector<runner::JobResult>{})
        if (!r.ok()) msg += r.name + ": " + r.message + "\n";
    }
    std::ofstream(failures) << msg;
    ::_exit(msg.empty() ? 0 : 1);
  }
  int ws = 0;
  ASSERT_EQ(::waitpid(pid, &ws, 0), pid);
  ASSERT_TRUE(WIFEXITED(ws));
  EXPECT_EQ(WEXITSTATUS(ws), 0) << read_file(failures) << log("r1") << log("r2");
  EXPECT_NE(log("r1").find("r1\n"), std::string::npos) << log("r1");
  EXPECT_NE(log("r2").find("r2\n"), std::string::npos) << log("r2");
  EXPECT_EQ(tree_hash(checkout_), before);
  auto c = runner::cache_mount("/cache/rl", "");
  ASSERT_TRUE(c);
  const std::string cached = read_file(root() + "/caches/" + c->name + "/log");
  EXPECT_TRUE(cached == "r1\n" || cached == "r2\n") << cached;
  expect_slots_empty();
}

// A checkout that contains the state dir (so the container's upper dir) is refused, naming both.
TEST_F(WorkspaceTest, AnOverlayWorkspaceContainingTheStateDirIsRefusedNamingIt) {
  const std::string state = checkout_ + "/.state";
  auto store = cache::Store::open(state, false);
  ASSERT_TRUE(store) << store.error().message();
  auto prepared = runner::prepare_jobs(*store, {ws_job("nested", "true", WorkspaceMode::overlay)}, {});
  ASSERT_TRUE(prepared) << prepared.error().message();
  runner::RunOptions opts;
  opts.console = runner::ConsoleMode::none;
  auto outcome = runner::execute(state, *prepared, std::move(opts));
  ASSERT_TRUE(outcome) << outcome.error().message();
  const auto& r = outcome->results.at(0);
  EXPECT_EQ(r.status, runner::JobResult::Status::setup_failed);
  EXPECT_NE(r.message.find("copy-on-write volume " + checkout_ + " on /workspace: it and the container's state (" +
                           state + "/slots/0/disk/ws-upper) must not contain each other"),
            std::string::npos)
      << r.message;
  EXPECT_EQ(mounts_under(state), std::vector<std::string>{});
}

TEST_F(WorkspaceTest, PrintSpecShowsEachVolumesModeAndTheCaches) {
  auto store = cache::Store::open(root(), false);
  ASSERT_TRUE(store);
  auto j = ws_job("spec", "true", WorkspaceMode::overlay);
  j.caches = {"~/.cache/pip"};
  auto k = ws_job("spec-ro", "true", WorkspaceMode::ro);
  auto prepared = runner::prepare_jobs(*store, {j, k}, {});
  ASSERT_TRUE(prepared) << prepared.error().message();
  const std::string json = runner::specs_json(prepared->plans, *prepared->host);
  EXPECT_NE(json.find("\"mode\": \"overlay\",\n          \"upper\": \"<slot>/disk/ws-upper\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"mode\": \"ro\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"target\": \"/root/.cache/pip\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"name\": \"cache-pip-"), std::string::npos) << json;
}

// A run that died with a copy-on-write workspace and cache view in its slot: the next run's
// sweep empties their dirs with the writable layer.
TEST_F(WorkspaceTest, TheSweepEmptiesTheVolumeDirsADeadRunLeft) {
  {
    runner::SlotPool pool(root());
    ASSERT_TRUE(pool.reserve(1));
    runner::Slot* slot = pool.acquire(false);
    ASSERT_NE(slot, nullptr);
    ASSERT_TRUE(runner::SlotPool::mark_claimed(*slot));
    write_file(slot->ws_upper + "/left", "x");
    ASSERT_TRUE(fs::mkdirs(slot->cow + "/0/upper"));
    write_file(slot->cow + "/0/upper/left", "x");
    ASSERT_EQ(::chmod(slot->ws_upper.c_str(), 0700), 0);
  }  // the pool goes: its slot is unlocked and dirty, as a dead run leaves it
  auto report = runner::sweep_slots(root(), /*remove=*/false);
  EXPECT_EQ(report.slots_cleaned, 1u);
  EXPECT_EQ(report.failures, std::vector<std::string>{});
  expect_slots_empty();
  struct stat st;
  ASSERT_EQ(::stat((root() + "/slots/0/disk/ws-upper").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST(CacheNameTest, IsTheWrittenPathMadeFileSafeWithAHash) {
  auto c = runner::cache_mount("~/.cache/pip", "/home/u");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->target, "/home/u/.cache/pip");
  EXPECT_EQ(c->name.substr(0, 10), "cache-pip-");
  EXPECT_EQ(c->name.size(), 18u);
  EXPECT_EQ(runner::cache_mount("~/.cache/pip", "/root")->name, c->name);
  EXPECT_NE(runner::cache_mount("/root/.cache/pip", "/root")->name, c->name);
  EXPECT_FALSE(runner::cache_mount("/../x", "/"));
  EXPECT_FALSE(runner::cache_mount("relative/x", "/"));
  EXPECT_FALSE(runner::cache_mount("~/x", ""));
}

}  // namespace
}  // namespace sandrun::testing
