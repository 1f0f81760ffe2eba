// docker-py (Debian's python3-docker) against `sandrun serve`: the scripts of tests/api/py/, each
// a user's program that asserts what it reads and prints "ok", then nothing of theirs is left.
#include "tests/api/busybox_registry.h"
#include "tests/api/client_fixture.h"

namespace sandrun::testing {
namespace {

class DockerPyTest : public ClientTest {
 protected:
  void SetUp() override {
    SANDRUN_REQUIRE(run_command({"/usr/bin/python3", "-c", "import docker"}).status == 0, "needs python3-docker");
    ClientTest::SetUp();
  }
  // python3 tests/api/py/SCRIPT SOCKET args...
  CommandResult py(const std::string& script, const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv{"/usr/bin/python3", std::string(SANDRUN_TEST_PY_DIR) + "/" + script, socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, client_env());
  }
  // The script ran to its "ok", and nothing of it is left: no object of the client's on the
  // daemon, nothing on the host once the daemon stops.
  void expect_script_passes(const std::string& script, const std::vector<std::string>& args = {}) {
    auto r = py(script, args);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "ok\n");
    expect_no_client_objects_left();
    stop_and_expect_nothing_left();
  }
};

TEST_F(DockerPyTest, RunsContainersAttachedAndDetachedWaitsAndStreamsLogs) {
  expect_script_passes("run_and_logs.py");
}

TEST_F(DockerPyTest, ExecRunWithStreamAndDemux) {
  expect_script_passes("exec_run.py");
}

TEST_F(DockerPyTest, PutsAndGetsArchives) {
  expect_script_passes("archive.py");
}

TEST_F(DockerPyTest, NetworksConnectContainersAndVolumesKeepData) {
  expect_script_passes("networks_volumes.py");
}

TEST_F(DockerPyTest, PullsFromTheRegistryAndRunsTheImage) {
  std::string why;
  SANDRUN_REQUIRE(BusyboxRegistry::available(&why), why);
  BusyboxRegistry registry;
  ASSERT_EQ(registry.start(), "");
  expect_script_passes("pull.py", {registry.reference("busybox")});
}

}  // namespace
}  // namespace sandrun::testing
