// The attacks of issue 15 on job files, JUnit files and artifacts (items 5 to 8), run for real
// through the sandrun binary: sandrun's memory, its results and the host checked after each.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "sandbox/sys/fs.h"
#include "tests/runner/cli_fixture.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

// `sandrun --root ROOT args...` with its peak RSS (its own and its reaped children's: the
// containers' processes are small), in KiB.
struct Measured {
  int status = -1;
  std::string out, err;
  long max_rss_kib = 0;
};

class BoundsCliTest : public CliTest {
 protected:
  Measured measured(const std::vector<std::string>& args) {
    const std::string out = tmp_ / "measured.out", err = tmp_ / "measured.err";
    std::vector<std::string> argv = {sandrun_bin(), "--root", root()};
    argv.insert(argv.end(), args.begin(), args.end());
    // Under AddressSanitizer, freed memory waits in a quarantine of 256 MiB by default, which
    // a streaming parser's churn fills: a small one makes the peak RSS sandrun's own again.
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      if (std::string_view(*e).rfind("ASAN_OPTIONS=", 0) != 0) env.emplace_back(*e);
    }
#if defined(__SANITIZE_ADDRESS__)
    const char* asan = ::getenv("ASAN_OPTIONS");
    env.push_back(std::string("ASAN_OPTIONS=") + (asan ? std::string(asan) + ":" : "") +
                  "quarantine_size_mb=4:thread_local_quarantine_size_kb=64");
#else
    if (const char* asan = ::getenv("ASAN_OPTIONS")) env.push_back(std::string("ASAN_OPTIONS=") + asan);
#endif
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      int in = ::open("/dev/null", O_RDONLY);
      int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(in, 0), ::dup2(o, 1), ::dup2(e, 2);
      std::vector<char*> c;
      for (auto& a : argv) c.push_back(a.data());
      c.push_back(nullptr);
      ::execve(c[0], c.data(), envp.data());
      ::_exit(127);
    }
    Measured m;
    int status = 0;
    struct rusage ru{};
    EXPECT_EQ(::wait4(pid, &status, 0, &ru), pid);
    m.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    m.max_rss_kib = ru.ru_maxrss;
    m.out = read_file(out);
    m.err = read_file(err);
    return m;
  }
  json summary() { return json::parse(read_file(tmp_ / ".sandrun/summary.json")); }
  const json* job(const json& s, const std::string& name) {
    for (const auto& j : s["jobs"])
      if (j["job"] == name) return &j;
    return nullptr;
  }
};

bool xmllint_present() { return run_command({"xmllint", "--version"}).status == 0; }

// Item 5: a 53 MB JUnit file took sandrun to 2.5 GiB. Merged by streaming, a 48 MB one keeps
// sandrun's peak RSS within 100 MiB of a run whose JUnit file is tiny; an XXE entity naming a
// host file is neither read nor left in the report, which stays valid XML and valid JUnit.
TEST_F(BoundsCliTest, JunitFilesAreMergedWithBoundedMemoryAndEntitiesDropped) {
  SANDRUN_REQUIRE(xmllint_present(), "needs xmllint (libxml2-utils)");
  const std::string secret = tmp_ / "host-secret.txt";
  write_file(secret, "HOST-SECRET-MARKER");
  auto run = [&](int cases) {
    const std::string report = tmp_ / "junit.xml";
    auto m = measured({"run", "--progress", "plain", "--junit", report, jobs(fmt::format(R"toml(
[jobs.big]
artifacts = ["r/*.xml"]
junit = ["r/*.xml"]
run = """
mkdir -p r
{{ echo '<testsuites><testsuite name="big">'; yes '<testcase classname="c" name="n" time="0.001"/>' | head -n {}; echo '<testcase classname="c" name="bad"><failure message="m">t</failure></testcase></testsuite></testsuites>'; }} > r/big.xml
cat > r/xxe.xml <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY xxe SYSTEM "file://{}"><!ENTITY inner "INNER-ENTITY">]>
<testsuite name="xxe"><testcase classname="c&inner;" name="a&inner;b" time="0.5"><failure message="m&inner;">x&xxe;&inner;y</failure></testcase></testsuite>
EOF
"""
[jobs.other]
run = "echo fine"
)toml", cases, secret))});
    EXPECT_EQ(m.status, 0) << m.err;
    const std::string xml = read_file(report);
    EXPECT_EQ(xml.find("HOST-SECRET-MARKER"), std::string::npos);
    EXPECT_EQ(xml.find("INNER-ENTITY"), std::string::npos);
    EXPECT_EQ(xml.find("&xxe;"), std::string::npos);
    EXPECT_NE(xml.find("<testcase classname=\"c\" name=\"ab\" time=\"0.5\"><failure message=\"m\">xy</failure>"),
              std::string::npos);
    auto parsed = run_command({"xmllint", "--stream", "--noout", "--nonet", report});
    EXPECT_EQ(parsed.status, 0) << parsed.err;
    auto valid = run_command({"xmllint", "--stream", "--noout", "--nonet", "--schema", SANDRUN_TEST_JUNIT_XSD, report});
    EXPECT_EQ(valid.status, 0) << valid.err;
    EXPECT_NE(xml.find(fmt::format("<testsuites name=\"sandrun: jobs.toml\" tests=\"{}\" failures=\"2\"", cases + 4)),
              std::string::npos)
        << xml.substr(0, 300);
    EXPECT_EQ(m.err.find("warning"), std::string::npos) << m.err;
    return m.max_rss_kib;
  };
  const long baseline = run(10);
  const long big = run(1'000'000);  // 48 MB of testcases
  EXPECT_GT(std::filesystem::file_size(tmp_ / ".sandrun/artifacts/big/r/big.xml"), 45'000'000u);
  EXPECT_LT(big - baseline, 100 * 1024) << "peak RSS " << baseline << " KiB then " << big << " KiB";
  std::printf("peak RSS of sandrun run --junit: %ld KiB with 10 testcases, %ld KiB with 1,000,000 (48 MB)\n", baseline,
              big);
  expect_nothing_left();
}

// Item 6: a 100 MB job file took 550 MB to parse: refused from its size, with the cap, at once.
TEST_F(BoundsCliTest, AHugeJobFileIsRefusedWithItsSizeAndTheCapAndBoundedMemory) {
  const std::string path = tmp_ / "huge.toml";
  {
    std::ofstream out(path);
    out << "[jobs.unit]\nrun = \"true\"\nx = \"";
    std::string chunk(1 << 20, 'a');
    for (int i = 0; i < 100; ++i) out << chunk;
    out << "\"\n";
  }
  // What sandrun takes to refuse a small job file (under AddressSanitizer its shadow memory
  // alone is over 100 MB), then the 100 MB one: at most 32 MiB more.
  const std::string small = tmp_ / "small.toml";
  write_file(small, "[jobs.unit]\nrun = \"true\"\nx = \"a\"\n");
  auto base = measured({"run", small});
  EXPECT_EQ(base.status, 2) << base.err;
  auto m = measured({"run", path});
  EXPECT_EQ(m.status, 2);
  EXPECT_EQ(m.err, fmt::format("sandrun: job file {} is 104857632 bytes, above the cap of 4 MiB\n"
                               "  hint: the host file's [policy] max_job_file raises the cap\n",
                               path));
  EXPECT_LT(m.max_rss_kib - base.max_rss_kib, 32 * 1024) << m.max_rss_kib << " KiB against " << base.max_rss_kib;
  std::printf("peak RSS of sandrun run on a 100 MB job file: %ld KiB (%ld KiB on a small one)\n", m.max_rss_kib,
              base.max_rss_kib);
  // The host file's policy raises the cap: then a 5 MiB file is parsed (its unknown key refused).
  const std::string mid = tmp_ / "mid.toml";
  write_file(mid, "[jobs.unit]\nrun = \"true\"\nx = \"" + std::string(5 << 20, 'a') + "\"\n");
  auto refused = sandrun({"run", mid});
  EXPECT_EQ(refused.status, 2);
  EXPECT_NE(refused.err.find("above the cap of 4 MiB"), std::string::npos) << refused.err;
  const std::string host = tmp_ / "sandrun.toml";
  write_file(host, "[policy]\nmax_job_file = \"8MiB\"\n");
  auto raised = sandrun({"--config", host, "run", mid});
  EXPECT_EQ(raised.status, 2);
  EXPECT_NE(raised.err.find(mid + ":3:1: jobs.unit: unknown key \"x\""), std::string::npos) << raised.err.substr(0, 300);
  expect_nothing_left();
}

// Item 6: pids = 9223372036854775807 passed validation, then failed at setup. Each limit the
// kernel would refuse is refused where it is written, before anything starts.
TEST_F(BoundsCliTest, LimitsTheKernelWouldRefuseAreRefusedAtTheirPosition) {
  struct Case {
    std::string line, error;
  };
  const std::vector<Case> cases = {
      {"pids = 9223372036854775807",
       "jobs.toml:3:8: jobs.unit.pids: invalid pids 9223372036854775807: above the kernel's maximum of 4194304 "
       "(PID_MAX_LIMIT)"},
      {"cpus = 0.001",
       "jobs.toml:3:8: jobs.unit.cpus: invalid cpus 0.001: below the minimum of 0.01 (the kernel's smallest CPU quota, "
       "1ms per 100ms)"},
      {"cpus = 100000", "jobs.toml:3:8: jobs.unit.cpus: invalid cpus 100000: above the maximum of 1024"},
      {"nofile = 2147483648",
       "jobs.toml:3:10: jobs.unit.nofile: invalid nofile 2147483648: too large (the maximum is 2147483584)"},
      {"memory = 1024", "jobs.toml:3:10: jobs.unit.memory: 1 KiB is below the minimum of 4 MiB"},
      {"timeout = \"9999d\"",
       "jobs.toml:3:11: jobs.unit.timeout: invalid duration \"9999d\": too large (the maximum is 8760h)"},
      {"ports = [\"99999:80\"]",
       "jobs.toml:3:10: jobs.unit.ports[0]: invalid port \"99999:80\": host port must be 0-65535 (0: any free port)"},
      {"artifacts_max_files = 100000000",
       "jobs.toml:3:23: jobs.unit.artifacts_max_files: must be at most 10000000, got 100000000"},
  };
  for (const auto& c : cases) {
    const std::string file = jobs("[jobs.unit]\nrun = \"true\"\n" + c.line + "\n");
    auto r = sandrun({"run", file});
    EXPECT_EQ(r.status, 2) << c.line;
    EXPECT_EQ(r.err, "sandrun: " + tmp_.path() + "/" + c.error + "\n") << c.line;
  }
  auto flag = sandrun({"exec", "--pids-limit", "9223372036854775807", "--", "true"});
  EXPECT_EQ(flag.status, 2);
  EXPECT_NE(flag.err.find("exec: --pids-limit: invalid pids 9223372036854775807: above the kernel's maximum of 4194304"),
            std::string::npos)
      << flag.err;
  expect_nothing_left();
}

// Item 7: 200,000 tiny files were all collected. The count cap (its default, or the host's
// [defaults]) and the byte cap stop the collection with a mark in summary.json, the JUnit
// report and the console; what was copied is whole; the other job is untouched.
TEST_F(BoundsCliTest, ArtifactsPastTheirCapsAreTruncatedWithAMarkEverywhere) {
  const std::string report = tmp_ / "junit.xml";
  const std::string file = jobs(R"toml(
[jobs.many]
artifacts = ["many"]
run = "mkdir many && cd many && seq -w 1 12000 | xargs touch"
[jobs.big]
artifacts = ["out"]
artifacts_max_size = "1MiB"
run = "mkdir out && head -c 4096 /dev/zero > out/a && head -c 2097152 /dev/zero > out/b && echo z > out/c"
[jobs.other]
run = "echo fine"
)toml");
  auto r = sandrun({"run", "--progress", "plain", "--junit", report, file});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("sandrun: artifacts: truncated: artifacts_max_files (10000) reached: stopped at many/10000"),
            std::string::npos)
      << r.err.substr(0, 2000);
  EXPECT_NE(r.out.find("many: artifacts truncated: artifacts_max_files (10000) reached\n"), std::string::npos);
  EXPECT_NE(r.out.find("big: artifacts truncated: artifacts_max_size (1 MiB) reached\n"), std::string::npos);
  EXPECT_EQ(dir_entries(tmp_ / ".sandrun/artifacts/many/many").size(), 9'999u);
  EXPECT_EQ(dir_entries(tmp_ / ".sandrun/artifacts/big/out"), std::vector<std::string>{"a"});  // no partial b
  const json s = summary();
  ASSERT_TRUE(job(s, "many") && job(s, "big") && job(s, "other"));
  EXPECT_EQ((*job(s, "many"))["artifacts_truncated"], true);
  EXPECT_EQ((*job(s, "many"))["artifacts_truncated_because"], "artifacts_max_files (10000) reached");
  EXPECT_EQ((*job(s, "many"))["artifacts"].size(), 9'999u);
  EXPECT_EQ((*job(s, "big"))["artifacts_truncated_because"], "artifacts_max_size (1 MiB) reached");
  EXPECT_EQ((*job(s, "other"))["artifacts_truncated"], false);
  EXPECT_EQ((*job(s, "other"))["status"], "passed");
  const std::string xml = read_file(report);
  EXPECT_NE(xml.find("<system-err>artifacts truncated: artifacts_max_files (10000) reached</system-err>"),
            std::string::npos);
  if (xmllint_present()) {
    auto valid = run_command({"xmllint", "--noout", "--schema", SANDRUN_TEST_JUNIT_XSD, report});
    EXPECT_EQ(valid.status, 0) << valid.err;
  }
  // The host file's [defaults] sets the count cap for jobs that set none.
  const std::string host = tmp_ / "sandrun.toml";
  write_file(host, "[defaults]\nartifacts_max_files = 50\n");
  auto capped = sandrun({"--config", host, "run", "--progress", "plain", file, "many"});
  EXPECT_EQ(capped.status, 0) << capped.err;
  EXPECT_EQ((*job(summary(), "many"))["artifacts_truncated_because"], "artifacts_max_files (50) reached");
  EXPECT_EQ(dir_entries(tmp_ / ".sandrun/artifacts/many/many").size(), 49u);
  expect_nothing_left();
}

// Item 8: a 2,000-deep directory among a job's artifacts made `sandrun run` segfault (exit
// 139): no summary.json, the other jobs' results lost, cgroups left. With 2,000- and 5,000-deep
// trees made inside the job, the run ends normally, the other job's result is there, the
// warning's path is capped, and nothing is left behind.
TEST_F(BoundsCliTest, DeepArtifactTreesNeitherCrashTheRunNorEchoLongPaths) {
  for (int depth : {2'000, 5'000}) {
    SCOPED_TRACE(depth);
    auto r = sandrun({"run", "--progress", "plain", jobs(fmt::format(R"toml(
[jobs.deep]
artifacts = ["deep", "**/*.txt"]
run = """
# Built from the bottom up, 1,000 levels at a time: no path named here is longer than PATH_MAX
# (the shell's cd refuses one), while the tree's own depth has no bound.
p=$(i=0; while [ $i -lt 999 ]; do printf d/; i=$((i+1)); done)
mkdir c && echo bottom > c/bottom.txt
k=0; while [ $k -lt {} ]; do mkdir -p n/$p && mv c n/$p/d && mv n c || exit 9; k=$((k+1)); done
mkdir deep && echo top > deep/top.txt && mv c deep/d
"""
[jobs.other]
run = "echo fine"
)toml", depth / 1000))});
    EXPECT_EQ(r.status, 0) << r.err;
    ASSERT_TRUE(fs::exists(tmp_ / ".sandrun/summary.json"));
    const json s = summary();
    ASSERT_TRUE(job(s, "deep") && job(s, "other"));
    EXPECT_EQ((*job(s, "other"))["status"], "passed");
    EXPECT_EQ((*job(s, "deep"))["status"], "passed");
    const auto& warnings = (*job(s, "deep"))["artifact_warnings"];
    ASSERT_EQ(warnings.size(), 1u) << warnings.dump();
    const std::string w = warnings[0];
    EXPECT_EQ(w.rfind("skipped what lies deeper than 256 levels or 4096 bytes, from deep/d/d/", 0), 0u) << w;
    EXPECT_LT(w.size(), 400u);
    EXPECT_NE(r.err.find("sandrun: artifacts: skipped what lies deeper"), std::string::npos) << r.err;
    for (const auto& line : {r.out, r.err}) {
      size_t longest = 0;
      for (size_t pos = 0, nl; pos < line.size(); pos = nl + 1) {
        nl = line.find('\n', pos);
        if (nl == std::string::npos) nl = line.size();
        longest = std::max(longest, nl - pos);
      }
      EXPECT_LT(longest, 1000u);
    }
    EXPECT_TRUE(fs::exists(tmp_ / ".sandrun/artifacts/deep/deep/top.txt"));
    expect_nothing_left();
  }
}

}  // namespace
}  // namespace sandrun::testing
