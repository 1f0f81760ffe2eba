// Who may use the daemon's socket (issue 16, scenario 6): root only by default (0600), the
// members of --group too (0660), nobody else; a missing group is refused; and each request that
// changes state is logged with its client's credentials (SO_PEERCRED).
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>

#include "tests/api/serve_fixture.h"

namespace sandrun::testing {
namespace {

// A group and two users (a member and an outsider), made for one test and removed with it on
// every path. The names carry the test's pid: nothing of another run is touched.
class TestAccounts {
 public:
  TestAccounts() {
    const std::string tag = std::to_string(::getpid());
    group = "sandrun-t-" + tag;
    member = "sandrun-tm-" + tag;
    outsider = "sandrun-to-" + tag;
    made_group_ = run_command({"groupadd", group}).status == 0;
    made_member_ = made_group_ && run_command({"useradd", "-r", "-M", "-N", "-s", "/usr/sbin/nologin", "-G", group, member}).status == 0;
    made_outsider_ = run_command({"useradd", "-r", "-M", "-N", "-s", "/usr/sbin/nologin", outsider}).status == 0;
  }
  ~TestAccounts() {
    if (made_member_) run_command({"userdel", member});
    if (made_outsider_) run_command({"userdel", outsider});
    if (made_group_) run_command({"groupdel", group});
  }
  bool ok() const { return made_group_ && made_member_ && made_outsider_; }
  // argv as `user`, with the user's own groups.
  static std::vector<std::string> as(const std::string& user, const std::vector<std::string>& argv) {
    const passwd* pw = ::getpwnam(user.c_str());
    std::vector<std::string> full{"setpriv", fmt::format("--reuid={}", pw ? pw->pw_uid : 65534),
                                  fmt::format("--regid={}", pw ? pw->pw_gid : 65534), "--init-groups", "--"};
    full.insert(full.end(), argv.begin(), argv.end());
    return full;
  }

  std::string group, member, outsider;

 private:
  bool made_group_ = false, made_member_ = false, made_outsider_ = false;
};

class ServeAccessTest : public ServeTest {
 protected:
  void SetUp() override {
    ServeTest::SetUp();
    SANDRUN_REQUIRE(fs_exists("/usr/bin/docker"), "needs Debian's docker CLI (docker.io)");
    SANDRUN_REQUIRE(run_command({"setpriv", "--version"}).status == 0, "needs setpriv (util-linux)");
    SANDRUN_REQUIRE(run_command({"useradd", "--help"}).status == 0, "needs useradd (passwd)");
    ASSERT_TRUE(accounts_.ok()) << "could not make the test's group and users";
    // The temp dir is root's 0700: others may pass through to the socket's directory, whose
    // own mode is what is tested.
    ASSERT_EQ(::chmod(tmp_.path().c_str(), 0711), 0);
    config_ = tmp_ / "docker-config";
    ASSERT_EQ(::mkdir(config_.c_str(), 0777), 0);
    ASSERT_EQ(::chmod(config_.c_str(), 0777), 0);
  }
  CommandResult docker_as(const std::string& user, const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/env", "-u", "DOCKER_CONTEXT", "HOME=/nonexistent",
                                  "DOCKER_HOST=unix://" + socket(), "DOCKER_CONFIG=" + config_, "/usr/bin/docker"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(TestAccounts::as(user, argv));
  }
  std::string denied() const {
    return "permission denied while trying to connect to the Docker daemon socket at unix://" + socket();
  }

  TestAccounts accounts_;
  std::string config_;
};

TEST_F(ServeAccessTest, AGroupMemberMayUseTheSocketAndAnOutsiderMayNot) {
  start({"--group", accounts_.group});
  const gid_t gid = ::getgrnam(accounts_.group.c_str())->gr_gid;
  EXPECT_EQ(file_mode(socket()), 0660u);
  EXPECT_EQ(file_gid(socket()), gid);
  EXPECT_EQ(file_mode(tmp_ / "run"), 0710u);
  EXPECT_EQ(file_gid(tmp_ / "run"), gid);

  auto member = docker_as(accounts_.member, {"ps"});
  EXPECT_EQ(member.status, 0) << member.err;
  EXPECT_TRUE(member.out.starts_with("CONTAINER ID ")) << member.out;
  auto outsider = docker_as(accounts_.outsider, {"ps"});
  EXPECT_NE(outsider.status, 0);
  EXPECT_NE(outsider.err.find(denied()), std::string::npos) << outsider.err;

  // A member's request that changes state is logged with who sent it.
  const passwd* pw = ::getpwnam(accounts_.member.c_str());
  ASSERT_NE(pw, nullptr);
  auto made = docker_as(accounts_.member, {"create", "--name", "bymember", "busybox", "true"});
  EXPECT_EQ(made.status, 0) << made.err;
  auto rm = docker_as(accounts_.member, {"rm", "bymember"});
  EXPECT_EQ(rm.status, 0) << rm.err;
  auto r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
  const std::string by = fmt::format(" uid {} gid {}", pw->pw_uid, pw->pw_gid);
  EXPECT_NE(r.err.find("api: POST /containers/create by pid "), std::string::npos) << r.err;
  size_t create = r.err.find("api: POST /containers/create by pid ");
  EXPECT_NE(r.err.find(by, create), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("api: DELETE /containers/bymember by pid "), std::string::npos) << r.err;
  // Reading is not logged as a change.
  EXPECT_EQ(r.err.find("api: GET /containers/json by pid"), std::string::npos) << r.err;
}

TEST_F(ServeAccessTest, WithoutAGroupOnlyRootMayConnect) {
  start();
  EXPECT_EQ(file_mode(socket()), 0600u);
  EXPECT_EQ(file_mode(tmp_ / "run"), 0700u);
  for (const std::string& user : {accounts_.member, accounts_.outsider}) {
    auto r = docker_as(user, {"ps"});
    EXPECT_NE(r.status, 0) << user;
    EXPECT_NE(r.err.find(denied()), std::string::npos) << user << ": " << r.err;
  }
  auto root = run_command({"/usr/bin/docker", "-H", "unix://" + socket(), "ps", "-q"},
                          {"DOCKER_CONFIG=" + config_});
  EXPECT_EQ(root.status, 0) << root.err;
}

TEST_F(ServeAccessTest, AMissingGroupIsRefusedAndNeverAdded) {
  const std::string before = read_file("/etc/group");
  const std::string name = accounts_.group + "-none";
  auto r = run_sandrun(root(), {"serve", "--socket", socket(), "--group", name});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')), "sandrun: --group " + name + ": no such group");
  EXPECT_NE(r.err.find("create it first (groupadd); sandrun never edits /etc/group"), std::string::npos) << r.err;
  EXPECT_EQ(read_file("/etc/group"), before);
  EXPECT_FALSE(fs_exists(socket()));
}

}  // namespace
}  // namespace sandrun::testing
