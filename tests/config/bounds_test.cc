// Tests of the job file's bounds (issue 15, item 6): the size cap, parsing in linear time, and
// every limit checked against what the kernel accepts, at the value's position.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "config/host_config.h"
#include "config/job_file.h"
#include "tests/config/parse_helpers.h"
#include "tests/support/test_env.h"

namespace sandrun::config {
namespace {

using Clock = std::chrono::steady_clock;

// A job with `n` env entries, in a [jobs.unit.env] table (as the attack wrote them).
std::string env_file(size_t n) {
  std::string text = "[jobs.unit]\nrun = \"true\"\n[jobs.unit.env]\n";
  text.reserve(n * 24 + 64);
  for (size_t i = 0; i < n; ++i) text += fmt::format("V{:07} = \"{}\"\n", i, i);
  return text;
}

// The CPU time of this thread: a loaded machine's other work does not count (wall time did:
// the test failed once with the 160k parse descheduled).
double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double parse_seconds(const std::string& text, size_t expected_env) {
  const double start = thread_cpu_seconds();
  auto r = parse_job_file(text, "jobs.toml", "/repo");
  const double s = thread_cpu_seconds() - start;
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  if (r.ok()) {
    EXPECT_EQ(r->jobs.at(0).env.size(), expected_env);
  }
  return s;
}

TEST(JobFileBoundsTest, EnvEntriesParseInLinearTime) {
  // 80,000 entries took 14 s when each was looked up by a scan of the list. 16 times the
  // entries may take at most 16 * 4 times as long (n log n and a cold cache, not n^2 = 256 x),
  // with a floor for a baseline too short to measure.
  // The best of a few runs of each: what the parse costs, not what the machine was doing.
  const std::string small_file = env_file(10'000), large_file = env_file(160'000);
  double small = 1e9, large = 1e9;
  for (int i = 0; i < 3; ++i) small = std::min(small, parse_seconds(small_file, 10'000));
  small = std::max(small, 0.005);
  for (int i = 0; i < 2; ++i) large = std::min(large, parse_seconds(large_file, 160'000));
  EXPECT_LT(large, small * 16 * 4) << "10k: " << small << " s, 160k: " << large << " s";
}

TEST(JobFileBoundsTest, EnvOverridesOfDefaultsKeepTheirPlaceWithManyEntries) {
  std::string text = "[defaults.env]\nA = \"1\"\nB = \"2\"\n[jobs.unit]\nrun = \"true\"\n[jobs.unit.env]\n";
  for (int i = 0; i < 1000; ++i) text += fmt::format("X{} = \"{}\"\n", i, i);
  text += "A = \"over\"\n";
  auto f = parse_ok(text);
  const auto& env = f.jobs.at(0).env;
  ASSERT_EQ(env.size(), 1002u);
  EXPECT_EQ(env[0], (std::pair<std::string, std::string>{"A", "over"}));
  EXPECT_EQ(env[1], (std::pair<std::string, std::string>{"B", "2"}));
  EXPECT_EQ(env[2].first, "X0");
}

// The attack: a 100 MB string took 550 MB to parse. Refused from its size, having read none of
// it; peak RSS stays that of an empty process.
TEST(JobFileBoundsTest, AFileAboveTheCapIsRefusedUnreadWithItsSizeAndTheCap) {
  testing::TempDir tmp;
  const std::string path = tmp / "huge.toml";
  {
    std::ofstream out(path);
    out << "[jobs.unit]\nrun = \"true\"\nx = \"";
    std::string chunk(1 << 20, 'a');
    for (int i = 0; i < 100; ++i) out << chunk;
    out << "\"\n";
  }
  struct rusage before{}, after{};
  ::getrusage(RUSAGE_SELF, &before);
  const auto start = Clock::now();
  auto r = load_job_file(path);
  const auto took = Clock::now() - start;
  ::getrusage(RUSAGE_SELF, &after);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), fmt::format("job file {} is 104857632 bytes, above the cap of 4 MiB", path));
  EXPECT_LT(took, std::chrono::seconds(1));
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 8 * 1024) << "KiB";  // nothing of it was read
}

TEST(JobFileBoundsTest, APipeIsReadOnlyUpToTheCap) {
  testing::TempDir tmp;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t writer = ::fork();
  if (writer == 0) {
    ::close(fds[0]);
    std::string chunk(1 << 16, '#');
    for (int i = 0; i < 1024; ++i)  // 64 MiB of comments, or until the reader goes
      if (::write(fds[1], chunk.data(), chunk.size()) < 0) ::_exit(0);
    ::_exit(0);
  }
  ::close(fds[1]);
  const std::string path = fmt::format("/proc/self/fd/{}", fds[0]);
  auto r = load_job_file(path, 1 << 20);
  ::close(fds[0]);
  ::waitpid(writer, nullptr, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), fmt::format("job file {} is larger than the cap of 1 MiB", path));
}

TEST(JobFileBoundsTest, AFileUnderARaisedCapIsRead) {
  testing::TempDir tmp;
  const std::string path = tmp / "jobs.toml";
  testing::write_file(path, env_file(300'000));  // ~8 MiB
  EXPECT_FALSE(load_job_file(path).ok());
  auto r = load_job_file(path, 16 << 20);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->jobs.at(0).env.size(), 300'000u);
}

TEST(JobFileBoundsTest, HostPolicySetsTheJobFileCap) {
  auto h = parse_host_config("[policy]\nmax_job_file = \"16MiB\"\n", "/etc/sandrun/sandrun.toml");
  ASSERT_TRUE(h.ok()) << h.error().message();
  EXPECT_EQ(h->policy.max_job_file.value, uint64_t{16} << 20);
  auto bad = parse_host_config("[policy]\nmax_job_file = 10\n", "/etc/sandrun/sandrun.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "/etc/sandrun/sandrun.toml:2:16: policy.max_job_file: 10 B is below the minimum of 1 KiB");
}

// pids = 9223372036854775807 passed validation, then failed at setup ("write ... pids.max:
// Invalid argument"). Each limit out of the kernel's range is refused at its position.
TEST(JobFileBoundsTest, LimitsOutsideWhatTheKernelAcceptsAreRefusedWhereWritten) {
  EXPECT_EQ(job_err("pids = 9223372036854775807"),
            "jobs.toml:2:8: jobs.unit.pids: invalid pids 9223372036854775807: above the kernel's maximum of "
            "4194304 (PID_MAX_LIMIT)");
  EXPECT_EQ(job_err("pids = 4194305"),
            "jobs.toml:2:8: jobs.unit.pids: invalid pids 4194305: above the kernel's maximum of 4194304 (PID_MAX_LIMIT)");
  EXPECT_EQ(parse_ok("[jobs.unit]\nrun = \"true\"\npids = 4194304\n").jobs.at(0).limits.pids, 4194304u);
  EXPECT_EQ(job_err("cpus = 0.001"),
            "jobs.toml:2:8: jobs.unit.cpus: invalid cpus 0.001: below the minimum of 0.01 (the kernel's smallest "
            "CPU quota, 1ms per 100ms)");
  EXPECT_EQ(job_err("cpus = \"0.005\""),
            "jobs.toml:2:8: jobs.unit.cpus: invalid cpus \"0.005\": below the minimum of 0.01 (the kernel's "
            "smallest CPU quota, 1ms per 100ms)");
  EXPECT_EQ(job_err("cpus = 1e300"), "jobs.toml:2:8: jobs.unit.cpus: invalid cpus 1e+300: above the maximum of 1024");
  EXPECT_EQ(job_err("cpus = 9223372036854775807"),
            "jobs.toml:2:8: jobs.unit.cpus: invalid cpus 9223372036854775807: above the maximum of 1024");
  EXPECT_EQ(job_err("nofile = 2147483648"),
            "jobs.toml:2:10: jobs.unit.nofile: invalid nofile 2147483648: too large (the maximum is 2147483584)");
  EXPECT_EQ(job_err("memory = \"1KiB\""), "jobs.toml:2:10: jobs.unit.memory: 1 KiB is below the minimum of 4 MiB");
  EXPECT_EQ(job_err("timeout = \"400d\""),
            "jobs.toml:2:11: jobs.unit.timeout: invalid duration \"400d\": too large (the maximum is 8760h)");
  EXPECT_EQ(job_err("ports = [\"70000:80\"]"),
            "jobs.toml:2:10: jobs.unit.ports[0]: invalid port \"70000:80\": host port must be 0-65535 (0: any free port)");
  EXPECT_EQ(job_err("retries = 11"), "jobs.toml:2:11: jobs.unit.retries: must be from 0 to 10, got 11");
  EXPECT_EQ(job_err("artifacts_max_files = 0"),
            "jobs.toml:2:23: jobs.unit.artifacts_max_files: must be at least 1, got 0");
  // In [defaults] too, with its own position.
  EXPECT_EQ(parse_err("[defaults]\npids = 5000000\n[jobs.unit]\nrun = \"true\"\n"),
            "jobs.toml:2:8: defaults.pids: invalid pids 5000000: above the kernel's maximum of 4194304 (PID_MAX_LIMIT)");
  auto h = parse_host_config("[policy]\nmax_pids = 5000000\n", "/etc/sandrun/sandrun.toml");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().message(), "/etc/sandrun/sandrun.toml:2:12: policy.max_pids: must be at most 4194304, got 5000000");
}

}  // namespace
}  // namespace sandrun::config
