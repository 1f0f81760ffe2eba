// Parallelism is real and bounded: with -j N, N containers of one run are alive at once, and
// never more. Measured by the jobs themselves through the shared workspace, not by the clock,
// so that a loaded machine (slow start-ups) changes nothing.
#include "tests/runner/cli_fixture.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <signal.h>

namespace sandrun::testing {
namespace {

class ParallelTest : public CliTest {
 protected:
  // Eight jobs, each running /workspace/meet.sh MODE: it marks itself arrived, then waits (at
  // most 60 s) until, with MODE `all`, all eight have arrived (none leaves before the last one
  // comes, so the eight were alive at once), or with MODE `pair`, another job is there with it
  // (the last one of a narrow run has no partner left: it goes once the other seven are done).
  // It records how it left (met, last, timeout) and the most jobs it saw there at once
  // (arrived and not yet done: alive).
  std::string eight_jobs(const std::string& mode) {
    write_file(tmp_ / "meet.sh", R"sh(
mode=$1 name=$2 total=8
cd /workspace
mkdir -p arrived done seen
touch arrived/$name
max=0 i=0 how=timeout
while [ $i -lt 1200 ]; do
  a=$(ls arrived | wc -l); d=$(ls done | wc -l); p=$((a - d))
  [ $p -gt $max ] && max=$p
  if [ $mode = all ]; then
    [ $a -ge $total ] && { how=met; break; }
  else
    [ $p -ge 2 ] && { how=met; break; }
    [ $d -ge $((total - 1)) ] && { how=last; break; }
  fi
  i=$((i + 1))
  sleep 0.05
done
echo "$how $max" > seen/$name
touch done/$name
)sh");
    std::string toml = "[defaults]\nworkspace = \".\"\n";
    for (int i = 0; i < 8; ++i) toml += fmt::format("[jobs.s{0}]\nrun = \"sh /workspace/meet.sh {1} s{0}\"\n", i, mode);
    return jobs(toml);
  }
  // How each job left and the most it saw alive at once: "met 2", "last 1", ...
  std::vector<std::pair<std::string, int>> seen() {
    std::vector<std::pair<std::string, int>> out;
    for (int i = 0; i < 8; ++i) {
      const std::string line = read_file(tmp_ / fmt::format("seen/s{}", i));
      const size_t space = line.find(' ');
      out.emplace_back(line.substr(0, space), space == std::string::npos ? -1 : std::atoi(line.c_str() + space + 1));
    }
    return out;
  }
};

TEST_F(ParallelTest, WithJ8EightContainersRunAtOnce) {
  auto r = sandrun({"run", "-j", "8", eight_jobs("all")});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  for (const auto& [how, most] : seen()) EXPECT_EQ(how, "met") << "a job waited in vain for all eight to be there";
  expect_nothing_left();
}

TEST_F(ParallelTest, WithJ2TwoRunAtOnceAndNeverMore) {
  auto r = sandrun({"run", "-j", "2", eight_jobs("pair")});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  int met = 0, most = 0;
  for (const auto& [how, n] : seen()) {
    EXPECT_NE(how, "timeout") << "a job waited in vain for a partner";
    met += how == "met";
    most = std::max(most, n);
  }
  EXPECT_GE(met, 7) << "all but the last job should have met a partner";
  EXPECT_EQ(most, 2) << "never more than two at once with -j 2";
  expect_nothing_left();
}

// A long run keeps only what runs: a job that has ended holds nothing of its container (the
// container object, its buffers and its cgroup's fds were kept until the run ended: a run of
// 10,000 jobs held 40,000 cgroup.procs fds). Counted while the last job runs.
TEST_F(ParallelTest, JobsThatEndedHoldNoFdsWhileTheRunGoesOn) {
  constexpr int kEarly = 30;
  std::string toml = "[defaults]\nworkspace = \".\"\n";
  std::string needs;
  for (int i = 0; i < kEarly; ++i) {
    toml += fmt::format("[jobs.e{}]\ncommand = [\"/bin/true\"]\n", i);
    needs += fmt::format("{}\"e{}\"", i ? ", " : "", i);
  }
  toml += fmt::format("[jobs.last]\nneeds = [{}]\nrun = \"touch /workspace/started; sleep 30\"\n", needs);
  Background run({sandrun_bin(), "--root", root(), "run", "-j", "4", jobs(toml)});
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(tmp_ / "started"); }, kStartTimeout)) << "the last job never started";
  int cgroup_fds = 0, total = 0;
  for (const auto& e : std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", run.pid()))) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(e.path(), ec).string();
    ++total;
    if (target.starts_with("/sys/fs/cgroup/")) ++cgroup_fds;
  }
  // The running container's own: one cgroup.procs per v1 hierarchy (none on v2).
  EXPECT_LE(cgroup_fds, 16) << total << " fds in all";
  EXPECT_LE(total, 80);
  run.signal(SIGTERM);
  run.finish();
  expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
