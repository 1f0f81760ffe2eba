// Artifacts collected from real containers through the library (prepare_jobs + execute):
// failing and timed-out jobs, tmpfs, workspace, hostile entries, the size cap, cleanup.
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "cache/store.h"
#include "runner/engine/session.h"
#include "sandbox/sys/fs.h"
#include "tests/runner/cli_fixture.h"

namespace sandrun::testing {
namespace {

using namespace std::chrono_literals;
using runner::JobResult;

class ArtifactsRunTest : public CliTest {
 protected:
  config::JobSpec job(const std::string& name, const std::string& script, std::vector<std::string> patterns) {
    config::JobSpec j;
    j.name = name;
    j.base_name = name;
    j.command = {"/bin/sh", "-c", script};
    j.artifacts.patterns = std::move(patterns);
    return j;
  }
  std::vector<JobResult> run(const std::vector<config::JobSpec>& jobs) {
    auto store = cache::Store::open(root(), /*tidy=*/false);
    EXPECT_TRUE(store) << (store ? "" : store.error().message());
    if (!store) return {};
    auto prepared = runner::prepare_jobs(*store, jobs, cache::PullOptions{});
    EXPECT_TRUE(prepared) << (prepared ? "" : prepared.error().message());
    if (!prepared) return {};
    runner::RunOptions opts;
    opts.parallel = 4;
    opts.console = runner::ConsoleMode::none;
    opts.log_dir = out() + "/logs";
    opts.artifacts_dir = out() + "/artifacts";
    EXPECT_TRUE(fs::mkdirs(opts.log_dir));
    auto outcome = runner::execute(root(), *prepared, std::move(opts));
    EXPECT_TRUE(outcome) << (outcome ? "" : outcome.error().message());
    return outcome ? outcome->results : std::vector<JobResult>{};
  }
  std::string out() const { return tmp_ / "out"; }
  std::string art(const std::string& rel) const { return out() + "/artifacts/" + rel; }
  static std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }
};

TEST_F(ArtifactsRunTest, AFailingJobsFilesComeFromTmpfsWorkspaceVolumeAndWritableLayerAndHostileOnesAreHandled) {
  std::string ws = tmp_ / "ws";
  ASSERT_TRUE(fs::mkdirs(ws));
  auto j = job("build",
               "set -e; mkdir -p out /root/layer; echo ws > out/a.txt; echo tmp > /tmp/t.txt; "
               "echo layer > /root/layer/l.txt; ln -s /etc/shadow out/shadow; mkfifo out/fifo; "
               "echo vol > /data/v.txt; truncate -s 2G out/big.bin; sleep 86433 & exit 3",
               {"out/a.txt", "/tmp/t.txt", "/root/layer/*.txt", "/data/v.txt", "out/shadow", "out/fifo", "out/big.bin",
                "/tmp/never"});
  j.workspace = ws;
  ASSERT_TRUE(fs::mkdirs(tmp_ / "vol"));
  give_to_checkout_owner(ws);
  give_to_checkout_owner(tmp_ / "vol");
  j.volumes.push_back({tmp_ / "vol", "/data", false});
  j.artifacts.when = config::ArtifactsWhen::on_failure;
  j.artifacts.max_size = 1 << 20;
  auto results = run({j});
  ASSERT_EQ(results.size(), 1u);
  const auto& r = results[0];
  EXPECT_EQ(r.status, JobResult::Status::failed);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(sorted(r.artifacts), (std::vector<std::string>{"data/v.txt", "out/a.txt", "out/shadow", "root/layer/l.txt", "tmp/t.txt"}));
  EXPECT_EQ(read_file(art("build/data/v.txt")), "vol\n");
  EXPECT_EQ(read_file(art("build/out/a.txt")), "ws\n");
  EXPECT_EQ(read_file(art("build/tmp/t.txt")), "tmp\n");
  EXPECT_EQ(read_file(art("build/root/layer/l.txt")), "layer\n");
  struct stat st;
  ASSERT_EQ(::lstat(art("build/out/shadow").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_FALSE(fs::exists(art("build/out/fifo")));
  EXPECT_FALSE(fs::exists(art("build/out/big.bin")));
  EXPECT_EQ(r.artifact_warnings,
            (std::vector<std::string>{"skipped out/fifo: a FIFO is not collected",
                                      "truncated: artifacts_max_size (1 MiB) reached: stopped at out/big.bin"}));
  EXPECT_EQ(r.artifacts_truncated, "artifacts_max_size (1 MiB) reached");
  // The warnings are in the job's log too.
  std::string log = read_file(out() + "/logs/build.log");
  EXPECT_NE(log.find("artifacts_max_size (1 MiB) reached: stopped at out/big.bin"), std::string::npos) << log;
  // The host's /etc/shadow was never read into the artifacts.
  auto host_shadow = fs::read_file("/etc/shadow");
  if (host_shadow && !host_shadow->empty()) {
    std::string first = host_shadow->substr(0, host_shadow->find('\n'));
    auto grep = run_command({"grep", "-rF", first, out() + "/artifacts"});
    EXPECT_NE(grep.status, 0) << grep.out;
  }
  // The background `sleep 86433` was killed with the container.
  expect_nothing_left({{"sleep", "86433"}});
}

TEST_F(ArtifactsRunTest, ATimedOutJobsArtifactsAreCollectedToo) {
  auto j = job("slow", "echo partial > /tmp/p.txt; sleep 86431", {"/tmp/p.txt"});
  j.timeout = 1s;
  auto t0 = std::chrono::steady_clock::now();
  auto results = run({j});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, JobResult::Status::timed_out);
  EXPECT_EQ(results[0].artifacts, (std::vector<std::string>{"tmp/p.txt"}));
  EXPECT_EQ(read_file(art("slow/tmp/p.txt")), "partial\n");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
  expect_nothing_left({{"sleep", "86431"}});
}

TEST_F(ArtifactsRunTest, WhenDecidesAndArchiveModeWritesATarZstd) {
  auto pass_skip = job("pass-skip", "echo a > /tmp/a.txt", {"/tmp/a.txt"});
  pass_skip.artifacts.when = config::ArtifactsWhen::on_failure;
  auto fail_skip = job("fail-skip", "echo a > /tmp/a.txt; exit 1", {"/tmp/a.txt"});
  fail_skip.artifacts.when = config::ArtifactsWhen::on_success;
  auto archived = job("archived", "mkdir -p /w/r && echo x > /w/r/1.xml && echo y > /w/r/2.xml; "
                      "tr '\\0' ' ' < /proc/1/cmdline", {"r/**/*.xml"});
  archived.workdir = "/w";
  archived.init = false;  // artifacts need init's hold mode: it runs anyway
  archived.artifacts.archive = true;
  archived.artifacts.when = config::ArtifactsWhen::on_success;
  auto plain = job("plain", "tr '\\0' ' ' < /proc/1/cmdline", {});
  auto results = run({pass_skip, fail_skip, archived, plain});
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].status, JobResult::Status::passed);
  EXPECT_TRUE(results[0].artifacts.empty());
  EXPECT_FALSE(fs::exists(art("pass-skip")));
  EXPECT_EQ(results[1].status, JobResult::Status::failed);
  EXPECT_FALSE(fs::exists(art("fail-skip")));
  EXPECT_EQ(results[2].status, JobResult::Status::passed);
  EXPECT_EQ(results[2].artifacts, (std::vector<std::string>{"archived.tar.zst"}));
  auto list = run_command({"tar", "--zstd", "-tf", art("archived.tar.zst")});
  EXPECT_EQ(list.out, "r/1.xml\nr/2.xml\n") << list.err;
  EXPECT_EQ(results[3].status, JobResult::Status::passed);
  EXPECT_FALSE(fs::exists(art("plain")));
  // Only a job with artifacts holds its container; the others run exactly as before.
  EXPECT_NE(read_file(out() + "/logs/archived.log").find("sandrun-init-hold /bin/sh -c"), std::string::npos);
  EXPECT_EQ(read_file(out() + "/logs/plain.log"), "sandrun-init /bin/sh -c tr '\\0' ' ' < /proc/1/cmdline ");
  expect_nothing_left();
}

TEST_F(ArtifactsRunTest, ACancelledJobIsKilledWithoutCollectingItsArtifacts) {
  std::string ws = tmp_ / "ws";
  ASSERT_TRUE(fs::mkdirs(ws));
  give_to_checkout_owner(ws);
  auto j = job("cancelled", "echo a > /tmp/a.txt; touch /workspace/started; sleep 86436", {"/tmp/a.txt"});
  j.workspace = ws;
  // SIGINT reaches the Runner's handler (the loop runs by then: the job has started).
  std::thread interrupter([&] {
    for (int i = 0; i < 1000 && !fs::exists(ws + "/started"); ++i) std::this_thread::sleep_for(10ms);
    ::kill(::getpid(), SIGINT);
  });
  auto t0 = std::chrono::steady_clock::now();
  auto results = run({j});
  interrupter.join();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, JobResult::Status::cancelled);
  EXPECT_TRUE(results[0].artifacts.empty());
  EXPECT_FALSE(fs::exists(art("cancelled")));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);  // not the 10 s stop grace
  expect_nothing_left({{"sleep", "86436"}});
}

}  // namespace
}  // namespace sandrun::testing
