// `sandrun doctor` on the private network's outbound stack (pasta, slirp4netns). Apart from
// doctor_test because that one also runs in the cgroup v2 VM, whose image has neither stack.
// Which stack a host has, and where, is looked up by the test (ci/install-deps.sh installs both).
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tests/runner/cli_fixture.h"
#include "tests/runner/doctor_lines.h"

namespace sandrun::testing {
namespace {

class DoctorTest : public CliTest {};

// Where sandrun looks for the stacks: $PATH, then the system's directories.
std::vector<std::string> search_dirs() {
  std::vector<std::string> dirs;
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    if (end > start && path[start] == '/') dirs.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return dirs;
}

// The first executable `name` in search_dirs(), or "".
std::string first_executable(const std::string& name) {
  for (const auto& d : search_dirs()) {
    if (::access((d + "/" + name).c_str(), X_OK) == 0) return d + "/" + name;
  }
  return "";
}

TEST_F(DoctorTest, PrivateNetworkNamesTheOutboundStack) {
  auto r = sandrun({"doctor"});
  auto l = line_of(r.out, "private_network");
  const std::string pasta = first_executable("pasta"), slirp = first_executable("slirp4netns");
  SANDRUN_REQUIRE(!pasta.empty() || !slirp.empty(),
                  "neither pasta nor slirp4netns is installed (ci/install-deps.sh installs them)");
  EXPECT_EQ(l.status, "ok") << r.out;
  // pasta is preferred, wherever it is found first; whatever its version says.
  EXPECT_EQ(l.detail.rfind(!pasta.empty() ? "pasta " : "slirp4netns ", 0), 0u) << r.out;
  EXPECT_NE(l.detail.find(" at " + (!pasta.empty() ? pasta : slirp) +
                          ": network = \"private\" has outbound access (not to the host's loopback)"),
            std::string::npos)
      << r.out;
}

TEST_F(DoctorTest, WithoutAStackPrivateNetworkIsLimited) {
  SANDRUN_REQUIRE_ROOT();
  // Hides the stacks in a private mount namespace, wherever sandrun would look: /dev/null over
  // each is not executable.
  std::string script = "set -e";
  for (const auto& dir : search_dirs()) {
    for (const char* name : {"/pasta", "/slirp4netns"}) {
      if (::access((dir + name).c_str(), F_OK) == 0) script += "; mount --bind /dev/null " + dir + name;
    }
  }
  script += "; exec \"$0\" doctor";
  auto r = run_command({"unshare", "--mount", "--propagation", "private", "sh", "-c", script, sandrun_bin()});
  auto l = line_of(r.out, "private_network");
  EXPECT_EQ(l.status, "limited") << r.out << r.err;
  EXPECT_EQ(l.detail,
            "neither pasta nor slirp4netns found: network = \"private\" has no outbound access (it still works as an "
            "isolated network shared with the job's services)")
      << r.out;
  EXPECT_NE(r.out.find("fix: apt-get install passt (pasta), or slirp4netns"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace sandrun::testing
