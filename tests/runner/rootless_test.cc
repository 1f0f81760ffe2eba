// sandrun started by an unprivileged user (rootless), and root's `--userns` mode, end to end.
// Needs root to create the unprivileged situation: the binary runs as uid kUser via setpriv.
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "sandbox/sys/fs.h"
#include "tests/runner/cli_fixture.h"
#include "tests/runner/refused_userns.h"
#include "tests/support/loopback.h"

namespace sandrun::testing {
namespace {

constexpr uid_t kUser = 4242;  // no passwd entry: no subordinate ids, so a single-id mapping

bool chown_to_user(const std::string& path) { return ::chown(path.c_str(), kUser, kUser) == 0; }

uid_t owner_of(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

class RootlessTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    SANDRUN_REQUIRE(run_command({"setpriv", "--version"}).status == 0, "needs setpriv (util-linux)");
    // The temp dir is root's 0700: let the user through to its own home and state dir.
    ASSERT_EQ(::chmod(tmp_.path().c_str(), 0711), 0);
    home_ = tmp_ / "home";
    ASSERT_EQ(::mkdir(home_.c_str(), 0755), 0);
    ASSERT_TRUE(chown_to_user(home_));
    ASSERT_EQ(::mkdir(root().c_str(), 0700), 0);
    ASSERT_TRUE(chown_to_user(root()));
    for (const std::string& bin : {sandrun_bin()}) {
      SANDRUN_REQUIRE(as_user({"test", "-x", bin}).status == 0, bin + " is not executable by uid 4242");
    }
    // A host's sysctls decide whether unprivileged users may create user namespaces; rootless
    // mode cannot work without them. Where this host refuses them, ci/test.sh leaves these
    // tests to the VM (docs/testing.md); UserNamespacesRefusedTest checks that answer here.
    auto probe = try_user_namespace_as(kUser);
    SANDRUN_REQUIRE(probe.status == 0, "unprivileged user namespaces are disabled here (" + probe.err +
                                           "); see /proc/sys/user/max_user_namespaces and "
                                           "kernel.unprivileged_userns_clone");
  }
  // argv run as uid/gid kUser without supplementary groups, with HOME set to its home.
  CommandResult as_user(const std::vector<std::string>& argv) {
    std::vector<std::string> full = {"setpriv", fmt::format("--reuid={}", kUser), fmt::format("--regid={}", kUser),
                                     "--clear-groups", "--", "env", "HOME=" + home_, "XDG_DATA_HOME="};
    full.insert(full.end(), argv.begin(), argv.end());
    return run_command(full);
  }
  CommandResult sandrun_as_user(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {sandrun_bin(), "--root", root()};
    argv.insert(argv.end(), args.begin(), args.end());
    return as_user(argv);
  }
  // A job file in the user's home (its .sandrun/logs go there too).
  std::string user_jobs(const std::string& toml) {
    std::string path = home_ + "/jobs.toml";
    write_file(path, toml);
    EXPECT_TRUE(chown_to_user(path));
    return path;
  }
  std::string user_log(const std::string& job) { return read_file(home_ + "/.sandrun/logs/" + job + ".log"); }

  std::string home_;
};

TEST_F(RootlessTest, ExecRunsAsRootOfItsOwnUserNamespace) {
  auto r = sandrun_as_user({"exec", "--", "sh", "-c", "id -u; id -g; tr -s ' ' < /proc/self/uid_map"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, fmt::format("0\n0\n 0 {} 1\n", kUser));
  expect_nothing_left();
}

TEST_F(RootlessTest, AJobFileWithSeveralJobsPasses) {
  auto r = sandrun_as_user({"run", "-j", "2", user_jobs(R"toml(
[jobs.one]
run = "echo one > /tmp/x && cat /tmp/x"
[jobs.two]
run = "touch /etc/newfile && rm /bin/true && ls /proc/1/ns >/dev/null && echo two"
[jobs.three]
run = "hostname; ip -o link | wc -l"
)toml")});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(user_log("one"), "one\n");
  EXPECT_EQ(user_log("two"), "two\n");
  EXPECT_EQ(user_log("three"), "three\n1\n");
  expect_nothing_left();
}

TEST_F(RootlessTest, WorkspaceFilesBelongToTheUser) {
  const std::string ws = home_ + "/ws";
  ASSERT_EQ(::mkdir(ws.c_str(), 0755), 0);
  ASSERT_TRUE(chown_to_user(ws));
  auto r = sandrun_as_user({"run", user_jobs(R"toml(
[jobs.build]
workspace = "ws"
run = "echo built > out && mkdir -p dir/sub && stat -c %u /workspace"
)toml")});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(user_log("build"), "0\n");
  EXPECT_EQ(read_file(ws + "/out"), "built\n");
  EXPECT_EQ(owner_of(ws + "/out"), kUser);
  EXPECT_EQ(owner_of(ws + "/dir/sub"), kUser);
  expect_nothing_left();
}

TEST_F(RootlessTest, AMemoryLimitIsRefusedUpFrontBecauseCgroupsNeedRoot) {
  auto r = sandrun_as_user({"run", user_jobs(R"toml(
[jobs.capped]
memory = "64MiB"
run = "echo should-not-run"
)toml")});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("jobs.capped.memory: cannot enforce memory: cgroups need root: sandrun runs rootless here"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find("should-not-run"), std::string::npos);
  expect_nothing_left();
}

TEST_F(RootlessTest, UsernsFalseIsRefused) {
  auto r = sandrun_as_user({"run", user_jobs(R"toml(
[jobs.plain]
userns = false
run = "true"
)toml")});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("jobs.plain.userns: userns = false needs root"), std::string::npos) << r.err;
}

TEST_F(RootlessTest, TheDefaultStateDirIsInTheUsersHome) {
  std::vector<std::string> argv = {sandrun_bin(), "exec", "--", "true"};
  auto r = as_user(argv);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::is_dir(home_ + "/.local/share/sandrun/layers")) << r.err;
  EXPECT_EQ(owner_of(home_ + "/.local/share/sandrun"), kUser);
}

// Whatever this host allows: where user namespaces are refused to the user (here by a user
// namespace of the test's own whose user.max_user_namespaces is 0), rootless sandrun runs
// nothing and says why, with the fix.
class UserNamespacesRefusedTest : public CliTest {};

TEST_F(UserNamespacesRefusedTest, RootlessExecAndRunFailNamingTheSysctl) {
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0711), 0);
  const std::string home = tmp_ / "home";
  ASSERT_EQ(::mkdir(home.c_str(), 0755), 0);
  ASSERT_TRUE(chown_to_user(home));
  const std::vector<std::string> env = {"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin", "XDG_DATA_HOME="};
  const std::string why =
      "sandrun runs rootless when not started as root, which needs unprivileged user namespaces: create a user "
      "namespace: No space left on device\n"
      "  hint: user namespaces are disabled: sysctl -w user.max_user_namespaces=15000\n";
  auto r = run_where_user_namespaces_are_refused(kUser, {sandrun_bin(), "exec", "--", "sh", "-c", "echo ran"}, env);
  EXPECT_EQ(r.status, 125) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "sandrun: " + why);

  const std::string file = home + "/jobs.toml";
  write_file(file, "[jobs.one]\nrun = \"echo ran\"\n");
  ASSERT_TRUE(chown_to_user(file));
  r = run_where_user_namespaces_are_refused(kUser, {sandrun_bin(), "run", file}, env);
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "sandrun: " + why);
  EXPECT_FALSE(fs::exists(home + "/.sandrun/logs/one.log"));
}

// Root with `--userns`: an unprivileged host uid runs the job; the workspace stays its owner's.
class RemappedRootTest : public CliTest {};

TEST_F(RemappedRootTest, ExecWithUsernsRunsOnTheRemappedRangeAndKeepsTheWorkspaceOwner) {
  const std::string ws = tmp_ / "ws";
  ASSERT_EQ(::mkdir(ws.c_str(), 0755), 0);
  ASSERT_EQ(::chown(ws.c_str(), 1000, 1000), 0);
  auto r = sandrun({"exec", "--userns", "--", "sh", "-c", "id -u; tr -s ' ' < /proc/self/uid_map"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "0\n 0 2147483648 65536\n");
  auto w = sandrun({"run", jobs(fmt::format(R"toml(
[jobs.ws]
userns = true
workspace = "{}"
run = "touch made && stat -c %u:%g /workspace && grep -c . /proc/self/uid_map"
)toml", ws))});
  EXPECT_EQ(w.status, 0) << w.out << w.err;
  EXPECT_EQ(log("ws"), "0:0\n1\n");
  EXPECT_EQ(owner_of(ws + "/made"), 1000u);
  expect_nothing_left();
}

// The proxy's sockets come from the container's init (sandrun cannot enter its namespace).
TEST_F(RootlessTest, APublishedPortCarriesRequestsFromTheHostWithoutRoot) {
  const std::string bin = home_ + "/bin", shared = home_ + "/shared";
  for (const auto& d : {bin, shared}) {
    ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
    ASSERT_TRUE(chown_to_user(d));
  }
  ASSERT_EQ(run_command({"cp", kv_server_bin(), bin + "/kv"}).status, 0);
  auto [probe, port] = listen_loopback();  // a free host port, released for the job
  ASSERT_TRUE(probe.valid());
  probe.reset();
  const std::string file = user_jobs(fmt::format(R"toml(
[jobs.api]
volumes = ["{0}:/opt/kv:ro", "{1}:/shared"]
ports = ["127.0.0.1:{2}:7000"]
run = "/opt/kv/kv 7000 & for i in $(seq 1 200); do test -e /shared/done && exit 0; sleep 0.1; done; exit 1"
)toml", bin, shared, port));
  Background bg({"setpriv", fmt::format("--reuid={}", kUser), fmt::format("--regid={}", kUser), "--clear-groups", "--",
                 "env", "HOME=" + home_, "XDG_DATA_HOME=", sandrun_bin(), "--root", root(), "run", "--progress",
                 "plain", file});
  std::string reply;
  ASSERT_TRUE(eventually([&, port = port] {
    UniqueFd fd = connect_local(port);
    if (!fd.valid()) return false;
    reply = request(fd.get(), "PING");
    return reply == "PONG";
  }, std::chrono::seconds(10))) << reply;
  UniqueFd fd = connect_local(port);
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(request(fd.get(), "SET who rootless"), "OK");
  EXPECT_EQ(request(fd.get(), "GET who"), "rootless");
  fd.reset();
  write_file(shared + "/done", "");
  auto r = bg.finish();
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.err.find(fmt::format("[api] published 127.0.0.1:{} -> 7000", port)), std::string::npos) << r.err;
  EXPECT_FALSE(connect_local(port).valid());  // closed with the job
  expect_nothing_left({{"/opt/kv/kv", "7000"}});
}

}  // namespace
}  // namespace sandrun::testing
