// Resource limits end to end: a memory bomb, a fork bomb and a CPU hog in real containers, on
// whichever cgroup version the host has (v1 here; v2 in the VM of ci/test-cgroup2.sh).
#include <sstream>

#include "tests/runner/cli_fixture.h"

namespace sandrun::testing {
namespace {

class LimitsTest : public CliTest {
 protected:
  // The summary row of `job`, e.g. "hog   passed  2.01s  1.2 MiB  1.00s".
  static std::string row(const std::string& out, const std::string& job) {
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(job + " ", 0) == 0) return line;
    }
    return "";
  }
  // "1.50s" / "950ms" => seconds.
  static double seconds(const std::string& text) {
    if (text.size() > 2 && text.substr(text.size() - 2) == "ms") return std::stod(text) / 1000.0;
    if (!text.empty() && text.back() == 's') return std::stod(text);
    return -1;
  }
  static std::string last_field(const std::string& line) { return line.substr(line.find_last_of(' ') + 1); }
};

TEST_F(LimitsTest, AMemoryBombIsKilledAsOutOfMemoryWhileItsNeighbourPasses) {
  auto r = sandrun({"run", "-j", "2", jobs(R"toml(
[jobs.bomb]
memory = "64MiB"
run = "dd if=/dev/zero of=/dev/null bs=256M count=1"
[jobs.neighbour]
run = "sleep 1; echo alive"
)toml")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(row(r.out, "bomb").find("killed: out of memory (limit 64 MiB)"), std::string::npos) << r.out;
  EXPECT_NE(row(r.out, "neighbour").find("passed"), std::string::npos) << r.out;
  EXPECT_EQ(log("neighbour"), "alive\n");
  EXPECT_NE(log("bomb").find("sandrun: out of memory: the kernel killed a process at the memory limit of 64 MiB"),
            std::string::npos)
      << log("bomb");
  expect_nothing_left();
}

// The bomb goes off in a subshell, forked before any bomb process exists: when the pids limit
// refuses one of its forks, only that subshell fails (a shell that cannot fork exits 2). Then
// the job's shell becomes `sleep` (exec, no fork: a fork would be refused by the very limit the
// bomb exhausts), and the job lasts until its timeout.
TEST_F(LimitsTest, AForkBombIsContainedAndDestroyedAtItsTimeoutWhileItsNeighbourPasses) {
  auto r = sandrun({"run", "-j", "2", jobs(R"toml(
[jobs.bomb]
pids = 64
timeout = "3s"
run = "(bomb() { bomb | bomb & }; bomb); exec sleep 86432"
[jobs.neighbour]
run = "sleep 2; echo alive"
)toml")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(row(r.out, "bomb").find("killed: timed out after 3s (pids limit 64 reached)"), std::string::npos) << r.out;
  EXPECT_NE(row(r.out, "neighbour").find("passed"), std::string::npos) << r.out;
  EXPECT_EQ(log("neighbour"), "alive\n");
  expect_nothing_left({{"sleep", "86432"}});
}

TEST_F(LimitsTest, ACpuHogWithHalfACpuGetsAboutHalfACore) {
  auto r = sandrun({"run", jobs(R"toml(
[jobs.hog]
cpus = 0.5
run = "timeout -s KILL 3 sh -c 'while :; do :; done'; true"
)toml")});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  const std::string line = row(r.out, "hog");
  const double cpu = seconds(last_field(line));
  // 3 s of wall time at half a core: 1.5 s of CPU time (CFS quota granularity aside).
  EXPECT_GT(cpu, 1.05) << line;
  EXPECT_LT(cpu, 1.95) << line;
  expect_nothing_left();
}

TEST_F(LimitsTest, TheSummaryShowsPeakMemoryAndCpuTimeOfEveryJob) {
  auto r = sandrun({"run", jobs("[jobs.small]\nrun = \"dd if=/dev/zero of=/dev/null bs=16M count=1\"\n")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("JOB    STATUS  TIME"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PEAK MEM"), std::string::npos) << r.out;
  const std::string line = row(r.out, "small");
  EXPECT_NE(line.find(" MiB "), std::string::npos) << line;  // dd's 16 MiB buffer
  EXPECT_GE(seconds(last_field(line)), 0) << line;
  expect_nothing_left();
}

TEST_F(LimitsTest, LimitsTheHostCannotHonourAreErrorsBeforeAnyJobStarts) {
  std::string file = jobs("[jobs.big]\nrun = \"touch /workspace/ran\"\ncpus = 512\n");
  auto r = sandrun({"run", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find(file + ":3:8: jobs.big.cpus: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("more than the"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");

  file = jobs("[jobs.pinned]\nrun = \"true\"\ncpuset = \"1000\"\n", "cpuset.toml");
  r = sandrun({"run", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find(file + ":3:10: jobs.pinned.cpuset: "), std::string::npos) << r.err;
  expect_nothing_left();
}

TEST_F(LimitsTest, ExecAppliesTheSameLimitsFromFlags) {
  auto r = sandrun({"exec", "--memory", "32MiB", "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"});
  EXPECT_EQ(r.status, 137) << r.err;
  EXPECT_NE(r.err.find("out of memory"), std::string::npos) << r.err;
  expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
