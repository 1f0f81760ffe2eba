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
  ArtifactReport collect(std::vector<std::string> patterns, bool archive = false, uint64_t max = config::kDefaultArtifactsMaxSize,
                         uint64_t max_files = config::kDefaultArtifactsMaxFiles) {
    config::Artifacts spec;
    spec.patterns = std::move(patterns);
    spec.archive = archive;
    spec.max_size = max;
    spec.max_files = max_files;
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
  EXPECT_EQ(r.warnings,
            (std::vector<std::string>{"truncated: artifacts_max_size (1 MiB) reached: stopped at build/big.bin"}));
  EXPECT_EQ(r.truncated, "artifacts_max_size (1 MiB) reached");
  EXPECT_FALSE(fs::exists(dest() + "/build/big.bin"));
  EXPECT_FALSE(fs::exists(dest() + "/build/z.txt"));
  EXPECT_EQ(r.bytes, 4u);
}

// 200,000 tiny files were all collected. Past artifacts_max_files the collection stops, says
// so, and what it copied is whole.
TEST_F(ArtifactsTest, ManyFilesStopAtTheCountCapWithATruncatedMark) {
  ASSERT_TRUE(fs::mkdirs(tmp_ / "root/work/many"));
  for (int i = 0; i < 12'000; ++i) {
    UniqueFd f(::open((tmp_ / fmt::format("root/work/many/f{:05}", i)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(f);
    ASSERT_EQ(::write(f.get(), "x", 1), 1);
  }
  auto r = collect({"many"});
  // The directory is an entry too: 1 + 9,999 files.
  EXPECT_EQ(r.files.size(), 9'999u);
  EXPECT_EQ(r.truncated, "artifacts_max_files (10000) reached");
  EXPECT_EQ(r.warnings, (std::vector<std::string>{"truncated: artifacts_max_files (10000) reached: stopped at many/f09999"}));
  EXPECT_EQ(dir_entries(dest() + "/many").size(), 9'999u);
  EXPECT_EQ(read_file(dest() + "/many/f09998"), "x");
  // In an archive the same, and the archive is complete (tar lists it).
  auto a = collect({"many"}, /*archive=*/true, config::kDefaultArtifactsMaxSize, 10);
  EXPECT_EQ(a.files.size(), 9u);
  EXPECT_EQ(a.truncated, "artifacts_max_files (10) reached");
  auto listed = run_command({"tar", "--zstd", "-tf", dest() + ".tar.zst"});
  EXPECT_EQ(listed.status, 0) << listed.err;
  EXPECT_EQ(std::count(listed.out.begin(), listed.out.end(), '\n'), 10);
}

TEST_F(ArtifactsTest, AFullCollectionIsNotTruncated) {
  file("work/a.txt");
  auto r = collect({"a.txt"}, false, config::kDefaultArtifactsMaxSize, 1);
  EXPECT_EQ(r.files, (std::vector<std::string>{"a.txt"}));
  EXPECT_EQ(r.truncated, "");
}

// Makes a chain of `depth` directories named "d" under `dir`, by fds (the path is longer than
// PATH_MAX), with a file at the bottom.
void deep_tree(const std::string& dir, int depth) {
  UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  for (int i = 0; i < depth; ++i) {
    ASSERT_EQ(::mkdirat(fd.get(), "d", 0755), 0) << i;
    fd = UniqueFd(::openat(fd.get(), "d", O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(fd);
  }
  UniqueFd f(::openat(fd.get(), "bottom.txt", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(f);
}

// A 2,000-deep directory made sandrun overflow its stack (exit 139). The walk stops at
// kMaxArtifactDepth with one warning whose path is capped; the shallow files are collected.
TEST_F(ArtifactsTest, DeepTreesAreCutAtTheDepthBoundWithACappedPathInTheWarning) {
  for (int depth : {2'000, 5'000}) {
    SCOPED_TRACE(depth);
    ASSERT_TRUE(fs::mkdirs(tmp_ / "root/work/deep"));
    deep_tree(tmp_ / "root/work/deep", depth);
    file("work/deep/top.txt");
    for (const auto& pattern : {"deep", "deep/**/*.txt"}) {
      auto r = collect({pattern});
      EXPECT_NE(std::find(r.files.begin(), r.files.end(), "deep/top.txt"), r.files.end()) << pattern;
      ASSERT_EQ(r.warnings.size(), 1u) << pattern;
      EXPECT_EQ(r.warnings[0].rfind("skipped what lies deeper than 256 levels or 4096 bytes, from deep/d/d/d/", 0), 0u)
          << r.warnings[0];
      EXPECT_LT(r.warnings[0].size(), 400u) << r.warnings[0];
      EXPECT_EQ(r.truncated, "");
      for (const auto& f : r.files) EXPECT_LE(std::count(f.begin(), f.end(), '/'), 257) << f.size();
    }
    ASSERT_TRUE(fs::remove_tree(tmp_ / "root/work/deep"));
  }
}

TEST(ShortenPathTest, LongPathsKeepTheirHeadAndTail) {
  EXPECT_EQ(runner::shorten_path("a/b"), "a/b");
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "d/";
  deep += "end.txt";
  const std::string s = runner::shorten_path(deep);
  EXPECT_EQ(s.rfind("d/d/", 0), 0u);
  EXPECT_NE(s.find("/..."), std::string::npos) << s;
  EXPECT_NE(s.find("d/end.txt (2007 bytes)"), std::string::npos) << s;
  EXPECT_LT(s.size(), 230u);
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
