// `sandrun doctor` on the private network's outbound stack (pasta, slirp4netns). Apart from
// doctor_test because that one also runs in the cgroup v2 VM, whose image has neither stack.
#include <unistd.h>

#include "tests/runner/cli_fixture.h"
#include "tests/runner/doctor_lines.h"

namespace sandrun::testing {
namespace {

class DoctorTest : public CliTest {};

TEST_F(DoctorTest, PrivateNetworkNamesTheOutboundStack) {
  auto r = sandrun({"doctor"});
  auto l = line_of(r.out, "private_network");
  const bool pasta = ::access("/usr/bin/pasta", X_OK) == 0, slirp = ::access("/usr/bin/slirp4netns", X_OK) == 0;
  SANDRUN_REQUIRE(pasta || slirp, "neither pasta nor slirp4netns is installed (ci/install-deps.sh installs them)");
  EXPECT_EQ(l.status, "ok") << r.out;
  EXPECT_EQ(l.detail.rfind(pasta ? "pasta " : "slirp4netns ", 0), 0u) << r.out;
  EXPECT_NE(l.detail.find(pasta ? " at /usr/bin/pasta: network = \"private\" has outbound access (not to the "
                                  "host's loopback)"
                                : " at /usr/bin/slirp4netns: "),
            std::string::npos)
      << r.out;
}

TEST_F(DoctorTest, WithoutAStackPrivateNetworkIsLimited) {
  SANDRUN_REQUIRE_ROOT();
  // Hides the stacks in a private mount namespace: /dev/null over each is not executable.
  std::string script = "set -e";
  for (const char* p : {"/usr/bin/pasta", "/usr/bin/slirp4netns", "/usr/local/bin/pasta", "/usr/local/bin/slirp4netns"}) {
    if (::access(p, F_OK) == 0) script += std::string("; mount --bind /dev/null ") + p;
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
