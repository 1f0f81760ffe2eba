// Artifact collection on plain temp directories standing in for a container's root.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "runner/engine/artifacts.h"
#include "runner/engine/session.h"
#include "sandbox/sys/fs.h"
#include "tests/support/host_state.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {
namespace {

using runner::ArtifactReport;

// A fake container root (tmp/root) and an output directory (tmp/out).
class ArtifactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::mkdirs(tmp_ / "root/work"));
    ASSERT_TRUE(fs::mkdirs(tmp_ / "out"));
    auto fd = fs::open_path(tmp_ / "root", O_PATH | O_DIRECTORY);
    ASSERT_TRUE(fd);
    root_ = std::move(*fd);
  }
  void file(const std::string& rel, const std::string& content = "x") {
    std::string path = tmp_ / ("root/" + rel);
    ASSERT_TRUE(fs::mkdirs(path.substr(0, path.rfind('/'))));
    write_file(path, content);
  }
  ArtifactReport collect(std::vector<std::string> patterns, bool archive = false, uint64_t max = config::kDefaultArtifactsMaxSize) {
    config::Artifacts spec;
    spec.patterns = std::move(patterns);
    spec.archive = archive;
    spec.max_size = max;
    auto r = runner::collect_artifacts(root_.get(), "/work", spec, dest());
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    return r ? *r : ArtifactReport{};
  }
  std::string dest() const { return tmp_ / "out/job"; }
  std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }

  TempDir tmp_;
  UniqueFd root_;
};

TEST(GlobMatchTest, StarStaysInOneComponentAndDoubleStarSpansAnyNumber) {
  EXPECT_TRUE(runner::glob_match("build/*.log", "build/a.log"));
  EXPECT_FALSE(runner::glob_match("build/*.log", "build/sub/a.log"));
  EXPECT_TRUE(runner::glob_match("build/**/*.log", "build/a.log"));
  EXPECT_TRUE(runner::glob_match("build/**/*.log", "build/x/y/a.log"));
  EXPECT_TRUE(runner::glob_match("**", "a/b/c"));
  EXPECT_TRUE(runner::glob_match("r?p[0-9].txt", "rep7.txt"));
  EXPECT_FALSE(runner::glob_match("r?p[0-9].txt", "rep.txt"));
}

TEST_F(ArtifactsTest, GlobsMatchWithinAComponentAndDoubleStarAcrossDirectories) {
  file("work/build/a.log");
  file("work/build/b.txt");
  file("work/build/sub/deep/c.log");
  file("work/results/r1.xml");
  file("work/results/x/r2.xml");
  auto r = collect({"build/*.log", "results/**/*.xml", "build/**/c.log", "build/a.log"});
  EXPECT_EQ(sorted(r.files),
            (std::vector<std::string>{"build/a.log", "build/sub/deep/c.log", "results/r1.xml", "results/x/r2.xml"}));
  EXPECT_EQ(read_file(dest() + "/build/a.log"), "x");
  EXPECT_FALSE(fs::exists(dest() + "/build/b.txt"));
  EXPECT_EQ(r.bytes, 4u);
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.at(0);
}

TEST_F(ArtifactsTest, AbsolutePatternsKeepTheirPathAndADirectoryIsCopiedWhole) {
  file("tmp/out/x.txt", "hello");
  file("work/dist/a/b.bin", "bb");
  auto r = collect({"/tmp/out/x.txt", "dist", "missing/*.txt"});
  EXPECT_EQ(read_file(dest() + "/tmp/out/x.txt"), "hello");
  EXPECT_EQ(read_file(dest() + "/dist/a/b.bin"), "bb");
  EXPECT_EQ(r.warnings, (std::vector<std::string>{"artifact pattern \"missing/*.txt\" matches nothing"}));
}

TEST_F(ArtifactsTest, DotDotInAPatternIsRefused) {
  file("secret.txt");
  auto r = collect({"../secret.txt"});
  EXPECT_TRUE(r.files.empty());
  EXPECT_EQ(r.warnings, (std::vector<std::string>{"artifact pattern \"../secret.txt\": '..' is not allowed"}));
}

TEST_F(ArtifactsTest, ASymlinkToAHostSecretIsCopiedAsALinkAndTheSecretNeverRead) {
  std::string secret = tmp_ / "host-secret";
  write_file(secret, "TOP-SECRET-CONTENT", 0600);
  file("work/ok.txt");
  ASSERT_EQ(::symlink(secret.c_str(), (tmp_ / "root/work/leak").c_str()), 0);
  ASSERT_EQ(::symlink(tmp_.path().c_str(), (tmp_ / "root/work/hostdir").c_str()), 0);
  auto r = collect({"leak", "hostdir/host-secret", "**"});
  struct stat st;
  ASSERT_EQ(::lstat((dest() + "/leak").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  char target[4096];
  ssize_t n = ::readlink((dest() + "/leak").c_str(), target, sizeof target);
  EXPECT_EQ(std::string(target, static_cast<size_t>(std::max<ssize_t>(n, 0))), secret);
  // No copy of the secret anywhere in the destination: only links and ok.txt.
  auto out = run_command({"grep", "-r", "TOP-SECRET", tmp_ / "out"});
  EXPECT_NE(out.status, 0) << out.out;
  // "hostdir/host-secret" did not descend through the link; "**" copied the link itself.
  ASSERT_EQ(::lstat((dest() + "/hostdir").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(sorted(r.files), (std::vector<std::string>{"hostdir", "leak", "ok.txt"}));
  EXPECT_EQ(read_file(dest() + "/ok.txt"), "x");
}

TEST_F(ArtifactsTest, AFifoIsSkippedWithAWarningWithoutWaiting) {
  file("work/before.txt");
  ASSERT_EQ(::mkfifo((tmp_ / "root/work/pipe").c_str(), 0644), 0);
  ASSERT_EQ(::mkfifo((tmp_ / "root/work/pipe2").c_str(), 0644), 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = collect({"pipe", "*"});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));  // ctest's timeout catches a hang
  EXPECT_EQ(r.files, (std::vector<std::string>{"before.txt"}));
  EXPECT_EQ(r.warnings, (std::vector<std::string>{"skipped pipe: a FIFO is not collected",
                                                  "skipped pipe2: a FIFO is not collected"}));
  EXPECT_FALSE(fs::exists(dest() + "/pipe"));
}

TEST_F(ArtifactsTest, ASparseFileAboveTheCapStopsTheCollectionAndLeavesNoPartialFile) {
  file("work/build/a.txt", "1234");
  std::string big = tmp_ / "root/work/build/big.bin";
  write_file(big, "");
  ASSERT_EQ(::truncate(big.c_str(), 2LL << 30), 0);  // 2 GiB, sparse
  file("work/build/z.txt", "later");
  auto r = collect({"build/*"}, false, 1 << 20);
  EXPECT_EQ(r.files, (std::vector<std::string>{"build/a.txt"}));
  EXPECT_EQ(r.warnings, (std::vector<std::string>{"artifacts_max_size (1 MiB) reached: stopped at build/big.bin"}));
  EXPECT_FALSE(fs::exists(dest() + "/build/big.bin"));
  EXPECT_FALSE(fs::exists(dest() + "/build/z.txt"));
  EXPECT_EQ(r.bytes, 4u);
}

TEST_F(ArtifactsTest, AStaleDestinationFromAnEarlierRunIsReplaced) {
  ASSERT_TRUE(fs::mkdirs(dest() + "/old"));
  write_file(dest() + "/old/stale.txt", "stale");
  ASSERT_EQ(::symlink("/etc", (dest() + "/tmp").c_str()), 0);
  file("tmp/new.txt", "new");
  auto r = collect({"/tmp/new.txt"});
  EXPECT_EQ(dir_entries(dest()), (std::vector<std::string>{"tmp"}));
  EXPECT_EQ(read_file(dest() + "/tmp/new.txt"), "new");
  EXPECT_FALSE(fs::exists("/etc/new.txt"));
}

TEST_F(ArtifactsTest, ArchiveModeWritesOneTarZstdThatTarLists) {
  file("work/build/a.log", "aaa");
  file("work/build/sub/b.log", "bb");
  ASSERT_EQ(::symlink("/etc/shadow", (tmp_ / "root/work/build/shadow").c_str()), 0);
  auto r = collect({"build"}, /*archive=*/true);
  EXPECT_EQ(r.archive, dest() + ".tar.zst");
  EXPECT_FALSE(fs::exists(dest()));
  auto list = run_command({"tar", "--zstd", "-tvf", dest() + ".tar.zst"});
  ASSERT_EQ(list.status, 0) << list.err;
  EXPECT_NE(list.out.find("build/a.log"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("build/sub/b.log"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("build/shadow -> /etc/shadow"), std::string::npos) << list.out;
  auto cat = run_command({"tar", "--zstd", "-xOf", dest() + ".tar.zst", "build/a.log"});
  EXPECT_EQ(cat.out, "aaa");
  EXPECT_EQ(r.bytes, 5u);
}

TEST(FileNameForTest, JobNamesBecomeOneSafeFileName) {
  EXPECT_EQ(runner::file_name_for("unit (cc=gcc)"), "unit (cc=gcc)");
  EXPECT_EQ(runner::file_name_for("a/b"), "a_b");
  EXPECT_EQ(runner::file_name_for(".."), "_..");
  EXPECT_EQ(runner::file_name_for(""), "_");
}

}  // namespace
}  // namespace sandrun::testing
