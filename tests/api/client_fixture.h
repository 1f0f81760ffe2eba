// A daemon for the real clients' scenarios (docker-py, testcontainers, the Actions runner's
// docker CLI): /usr/bin/docker against it, and the check that a client's cleanup left nothing.
#pragma once

#include <sys/stat.h>

#include <string>
#include <vector>

#include "tests/api/serve_fixture.h"
#include "tests/support/host_state.h"

namespace sandrun::testing {

class ClientTest : public ServeTest {
 protected:
  void SetUp() override {
    ServeTest::SetUp();
    SANDRUN_REQUIRE(fs_exists("/usr/bin/docker"), "needs Debian's docker CLI (docker.io)");
    ::mkdir((tmp_ / "docker-config").c_str(), 0700);
    ::mkdir((tmp_ / "home").c_str(), 0700);
    start();
  }
  // The environment of a client: this daemon, a home and docker config of its own, no context.
  std::vector<std::string> client_env() const {
    return {"DOCKER_HOST=unix://" + socket(), "DOCKER_CONFIG=" + tmp_ / "docker-config", "HOME=" + tmp_ / "home",
            "DOCKER_CONTEXT=", "DOCKER_TLS_VERIFY=", "DOCKER_CERT_PATH="};
  }
  // /usr/bin/docker against this daemon.
  CommandResult docker(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/docker"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, client_env());
  }
  std::string out_of(const std::vector<std::string>& args) {
    auto r = docker(args);
    EXPECT_EQ(r.status, 0) << "docker " << args.front() << ": " << r.err;
    return r.out;
  }
  // No container, no volume, no network but the predefined ones.
  void expect_no_client_objects_left() {
    EXPECT_EQ(out_of({"ps", "-a", "--format", "{{.Names}} {{.Status}}"}), "");
    EXPECT_EQ(out_of({"volume", "ls", "-q"}), "");
    EXPECT_EQ(out_of({"network", "ls", "--format", "{{.Name}}"}), "bridge\nhost\nnone\n");
  }
  // Stops the daemon and checks that nothing of its containers is left on the host.
  void stop_and_expect_nothing_left() {
    auto r = stop();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(mounts_under(root()).empty()) << "mounts left under " << root();
    EXPECT_TRUE(stale_cgroup_runs(state_tag(root())).empty()) << "cgroups left";
  }
};

}  // namespace sandrun::testing
