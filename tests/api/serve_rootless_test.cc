// A rootless daemon (issue 16, scenario 4c): `sandrun serve` started by an ordinary user, on its
// default socket ($XDG_RUNTIME_DIR/sandrun/sandrun.sock) and root (the user's data dir), runs
// `docker run --rm` and a published port reached from the host. The user is made by the test
// (a system user: no subordinate ids, so each container maps that one id) and removed with it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "tests/api/serve_fixture.h"

namespace sandrun::testing {
namespace {

class TestUser {
 public:
  TestUser() {
    name = "sandrun-tr-" + std::to_string(::getpid());
    made_ = run_command({"useradd", "-r", "-M", "-N", "-s", "/usr/sbin/nologin", name}).status == 0;
    if (const passwd* pw = made_ ? ::getpwnam(name.c_str()) : nullptr) {
      uid = pw->pw_uid;
      gid = pw->pw_gid;
    }
  }
  ~TestUser() {
    if (made_) run_command({"userdel", name});
  }
  bool ok() const { return made_ && uid != 0; }
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;

 private:
  bool made_ = false;
};

// A TCP port nobody listens on now.
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class ServeRootlessTest : public CleanStopServeTest {
 protected:
  void SetUp() override {
    CleanStopServeTest::SetUp();
    SANDRUN_REQUIRE(fs_exists("/usr/bin/docker"), "needs Debian's docker CLI (docker.io)");
    SANDRUN_REQUIRE(run_command({"setpriv", "--version"}).status == 0, "needs setpriv (util-linux)");
    ASSERT_TRUE(user_.ok()) << "could not make the test's user";
    ASSERT_EQ(::chmod(tmp_.path().c_str(), 0711), 0);
    home_ = tmp_ / "home";
    runtime_ = tmp_ / "xdg";
    ASSERT_EQ(::mkdir(home_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(runtime_.c_str(), 0700), 0);
    ASSERT_EQ(::chown(home_.c_str(), user_.uid, user_.gid), 0);
    ASSERT_EQ(::chown(runtime_.c_str(), user_.uid, user_.gid), 0);
    SANDRUN_REQUIRE(as_user({"test", "-x", sandrun_bin()}).status == 0, sandrun_bin() + " is not executable by the test user");
    // Where this host refuses unprivileged user namespaces, the VM stage runs this (docs/testing.md).
    auto userns = as_user({"unshare", "--user", "--map-root-user", "true"});
    SANDRUN_REQUIRE(userns.status == 0, "unprivileged user namespaces are disabled here: " + userns.err);
  }
  std::vector<std::string> user_argv(const std::vector<std::string>& argv) {
    std::vector<std::string> full{"setpriv", fmt::format("--reuid={}", user_.uid), fmt::format("--regid={}", user_.gid),
                                  "--clear-groups", "--", "/usr/bin/env", "-u", "DOCKER_CONTEXT", "-u", "SANDRUN_HOST",
                                  "HOME=" + home_, "XDG_RUNTIME_DIR=" + runtime_, "XDG_DATA_HOME=",
                                  "DOCKER_HOST=unix://" + user_socket(), "DOCKER_CONFIG=" + home_ + "/.docker"};
    full.insert(full.end(), argv.begin(), argv.end());
    return full;
  }
  CommandResult as_user(const std::vector<std::string>& argv) { return run_command(user_argv(argv)); }
  std::string docker_out(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/docker"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = as_user(argv);
    EXPECT_EQ(r.status, 0) << "docker " << args.front() << ": " << r.err;
    return r.out;
  }
  std::string user_socket() const { return runtime_ + "/sandrun/sandrun.sock"; }
  std::string user_root() const { return home_ + "/.local/share/sandrun"; }

  // `sandrun serve` as the user, with every default: its socket and root are the user's.
  void start_as_user(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{sandrun_bin(), "serve"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<Background>(user_argv(argv));
    const bool up = eventually([&] { return get(user_socket(), "/_ping").status == 200; }, kStartTimeout);
    ASSERT_TRUE(up) << "the rootless daemon did not answer: " << stop().err;
  }

  TestUser user_;
  std::string home_, runtime_;
};

uid_t owner_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

TEST_F(ServeRootlessTest, AnOrdinaryUsersDaemonRunsContainersAndPublishesPorts) {
  start_as_user();
  EXPECT_EQ(owner_of(user_socket()), user_.uid);
  EXPECT_EQ(file_mode(user_socket()), 0600u);
  EXPECT_EQ(owner_of(user_root()), user_.uid) << "the daemon's root is not the user's data dir";
  EXPECT_NE(docker_out({"info", "--format", "{{.SecurityOptions}}"}).find("name=rootless"), std::string::npos);

  auto hi = as_user({"/usr/bin/docker", "run", "--rm", "busybox", "sh", "-c", "echo hi; id -u; echo err >&2; exit 4"});
  EXPECT_EQ(hi.status, 4) << hi.err;
  EXPECT_EQ(hi.out, "hi\n0\n");
  EXPECT_EQ(hi.err, "err\n");

  const uint16_t port = free_port();
  docker_out({"run", "-d", "--name", "web", "-p", fmt::format("127.0.0.1:{}:80", port), "busybox", "sh", "-c",
              "mkdir /tmp/w && echo served-rootless > /tmp/w/index.html && exec httpd -f -p 80 -h /tmp/w"});
  std::string page;
  EXPECT_TRUE(eventually([&] { return (page = http_get(port)).find("served-rootless") != std::string::npos; },
                         kStartTimeout))
      << page;
  EXPECT_EQ(docker_out({"port", "web", "80/tcp"}), fmt::format("127.0.0.1:{}\n", port));
  // The user's own sandrun client talks to the user's daemon by default.
  auto ps = as_user({sandrun_bin(), "ps"});
  EXPECT_EQ(ps.status, 0) << ps.err;
  EXPECT_TRUE(ps.out.find("  web\n") != std::string::npos) << ps.out;
  docker_out({"rm", "-f", "web"});
  EXPECT_EQ(http_get(port), "") << "the published port outlived its container";
  auto r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs_exists(user_socket()));
}

TEST_F(ServeRootlessTest, LimitsThatNeedCgroupsAreRefusedWithTheReason) {
  start_as_user();
  auto mem = as_user({"/usr/bin/docker", "run", "--rm", "--memory", "64m", "busybox", "true"});
  EXPECT_NE(mem.status, 0);
  EXPECT_NE(mem.err.find("Error response from daemon: "), std::string::npos) << mem.err;
  EXPECT_NE(mem.err.find("memory: cannot enforce memory: cgroups need root: sandrun runs rootless here"), std::string::npos)
      << mem.err;
  // Nothing of it is left: the refusal came before anything ran.
  auto ps = as_user({"/usr/bin/docker", "ps", "-aq"});
  EXPECT_EQ(ps.status, 0) << ps.err;
  EXPECT_EQ(ps.out, "");
  auto r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
}

}  // namespace
}  // namespace sandrun::testing
