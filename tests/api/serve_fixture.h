// A fixture that starts the real `sandrun serve` on a temp socket with a temp --root.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/api/api_client.h"
#include "tests/support/host_state.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {

inline bool fs_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

inline mode_t file_mode(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0) return 0;
  return st.st_mode & 07777;
}

inline gid_t file_gid(const std::string& path) {
  struct stat st {};
  ::lstat(path.c_str(), &st);
  return st.st_gid;
}

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override { SANDRUN_REQUIRE_ROOT(); }
  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGKILL);
      daemon_->finish();
      daemon_.reset();
    }
    // What a daemon killed here (a failed test) left, as a user would clear it: its idle
    // slots' file systems stay mounted until the next start or `sandrun cleanup`.
    if (::access(root().c_str(), F_OK) == 0) run_sandrun(root(), {"cleanup"});
  }

  std::string root() const { return tmp_ / "root"; }
  std::string socket() const { return tmp_ / "run/sandrun.sock"; }

  // Starts `sandrun --root ROOT serve --socket SOCKET extra...` and waits until it answers.
  void start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{sandrun_bin(), "--root", root(), "serve", "--socket", socket()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<Background>(argv);
    const bool up = eventually([&] { return get(socket(), "/_ping").status == 200; }, kStartTimeout);
    ASSERT_TRUE(up) << "sandrun serve did not answer: " << stop().err;
  }
  // SIGTERM, then the exit status and output.
  CommandResult stop() {
    daemon_->signal(SIGTERM);
    CommandResult r = daemon_->finish();
    daemon_.reset();
    return r;
  }
  bool serving() { return get(socket(), "/_ping").status == 200; }
  // A daemon still running (a test that stopped early) is stopped cleanly: SIGTERM tears its
  // containers down before the temp dir goes. For TearDown overrides, before ServeTest's.
  void stop_if_running() {
    if (!daemon_) return;
    auto r = stop();
    EXPECT_EQ(r.status, 0) << r.err;
  }
  // Stops the daemon (SIGTERM, exit 0) and checks that nothing of its containers is left:
  // mounts under the root, cgroups of the run.
  void stop_and_expect_nothing_left() {
    auto r = stop();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(mounts_under(root()).empty()) << "mounts left under " << root();
    EXPECT_TRUE(stale_cgroup_runs(state_tag(root())).empty()) << "cgroups left";
  }

  // For the tests through Debian's docker CLI: skipped (a failure under CI=true) without it;
  // its config dir (tmp_/docker-config) made.
  void require_docker() {
    SANDRUN_REQUIRE(fs_exists("/usr/bin/docker"), "needs Debian's docker CLI (docker.io)");
    ::mkdir((tmp_ / "docker-config").c_str(), 0700);
  }

  // /usr/bin/docker against this daemon, with a config dir of its own (tmp_/docker-config) and
  // no context or TLS from the environment: its argv, run, and its output (exit 0 expected).
  std::vector<std::string> docker_argv(const std::vector<std::string>& args = {}) const {
    std::vector<std::string> argv{"/usr/bin/env", "-u", "DOCKER_CONTEXT", "-u", "DOCKER_TLS_VERIFY", "-u", "DOCKER_CERT_PATH",
                                  "DOCKER_HOST=unix://" + socket(), "DOCKER_CONFIG=" + std::string(tmp_ / "docker-config"),
                                  "/usr/bin/docker"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  CommandResult docker(const std::vector<std::string>& args) { return run_command(docker_argv(args)); }
  std::string out_of(const std::vector<std::string>& args) {
    auto r = docker(args);
    EXPECT_EQ(r.status, 0) << "docker " << args.front() << ": " << r.err;
    return r.out;
  }

  TempDir tmp_;
  std::unique_ptr<Background> daemon_;
};

// A ServeTest whose daemon, still running when a test stopped early, is stopped cleanly
// (SIGTERM tears its containers down, exit status 0) before the temp dir goes.
class CleanStopServeTest : public ServeTest {
 protected:
  void TearDown() override {
    stop_if_running();
    ServeTest::TearDown();
  }
};

}  // namespace sandrun::testing
