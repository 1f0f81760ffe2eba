// The image cache under concurrency, crashes and hostile images, through the CLI: two imports of
// one archive at once end with one good copy; an import killed with SIGKILL leaves nothing a
// later import or `sandrun cleanup` does not clear; a layer that turns a directory into a
// symlink to a host path, written through by the next layer, never touches the host.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <thread>

#include "sandbox/sys/unique_fd.h"
#include "tests/cache/oci_builder.h"
#include "tests/runner/cli_fixture.h"
#include "tests/support/rootfs.h"

namespace sandrun::testing {
namespace {

class ImageSafetyTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const std::string base = tmp_ / "base";
    ASSERT_EQ(make_busybox_rootfs(base), "");
    ASSERT_EQ(run_command({"tar", "-C", base, "-cf", tmp_ / "base.tar", "."}).status, 0);
  }
  // A busybox base plus `extra` layers, as an OCI layout tar.
  std::string archive(const std::vector<std::string>& extra, const std::string& name) {
    OciImageBuilder b;
    b.layer(read_file(tmp_ / "base.tar"), Compression::gzip);
    for (const auto& tar : extra) b.layer(tar, Compression::gzip);
    b.write_oci(tmp_ / name, "team/" + name + ":1");
    tar_directory(tmp_ / name, tmp_ / (name + ".tar"));
    return tmp_ / (name + ".tar");
  }
  void expect_store_clean() {
    EXPECT_EQ(dir_entries(root() + "/tmp"), std::vector<std::string>{});
    auto verify = sandrun({"image", "verify"});
    EXPECT_EQ(verify.status, 0) << verify.err;
  }
};

TEST_F(ImageSafetyTest, TwoImportsOfOneArchiveAtOnceEndWithOneGoodCopy) {
  const std::string tar = archive({TarBuilder().file("app/data", std::string(4 << 20, 'd')).build()}, "twice");
  Background a({sandrun_bin(), "--root", root(), "image", "import", tar});
  Background b({sandrun_bin(), "--root", root(), "image", "import", tar});
  auto ra = a.finish(), rb = b.finish();
  EXPECT_EQ(ra.status, 0) << ra.err;
  EXPECT_EQ(rb.status, 0) << rb.err;
  auto ls = sandrun({"image", "ls"});
  EXPECT_NE(ls.out.find("team/twice:1"), std::string::npos) << ls.out;
  EXPECT_EQ(dir_entries(root() + "/layers/sha256").size(), 2u);
  auto run = sandrun({"exec", "--image", "team/twice:1", "--", "sh", "-c", "wc -c < /app/data"});
  EXPECT_EQ(run.out, std::to_string(4 << 20) + "\n") << run.err;
  expect_store_clean();
  expect_nothing_left();
}

// The rootfs arrives through a FIFO that the test feeds slowly, so the import is surely in the
// middle of it when it is killed.
TEST_F(ImageSafetyTest, AnImportKilledMidwayLeavesNothingTheNextImportOrCleanupDoesNotClear) {
  const std::string fifo = tmp_ / "rootfs.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Background import({sandrun_bin(), "--root", root(), "image", "import", "--rootfs", fifo, "team/killed:1"});
  const std::string data = read_file(tmp_ / "base.tar");
  std::thread feeder([&] {
    UniqueFd w(::open(fifo.c_str(), O_WRONLY | O_CLOEXEC));
    if (!w) return;
    // Half the tarball, then wait: the importer is now blocked mid-layer.
    ssize_t n = ::write(w.get(), data.data(), data.size() / 2);
    (void)n;
    ::sleep(2);
  });
  ASSERT_TRUE(eventually([&] { return !dir_entries(root() + "/tmp").empty(); }, std::chrono::seconds(10)));
  ::usleep(300 * 1000);
  import.signal(SIGKILL);
  auto killed = import.finish();
  EXPECT_EQ(killed.status, 128 + SIGKILL);
  feeder.join();
  EXPECT_FALSE(dir_entries(root() + "/tmp").empty());  // what it was writing
  EXPECT_EQ(dir_entries(root() + "/layers/sha256"), std::vector<std::string>{});
  // A new import of the same image is whole; cleanup removes the dead one's work.
  auto again = sandrun({"image", "import", "--rootfs", tmp_ / "base.tar", "team/killed:1"});
  ASSERT_EQ(again.status, 0) << again.err;
  auto cleanup = sandrun({"cleanup"});
  EXPECT_EQ(cleanup.status, 0) << cleanup.err;
  EXPECT_EQ(sandrun({"exec", "--image", "team/killed:1", "--", "cat", "/etc/passwd"}).status, 0);
  expect_store_clean();
  expect_nothing_left();
}

TEST_F(ImageSafetyTest, ADirectoryTurnedIntoASymlinkToTheHostAndWrittenThroughStaysInTheImage) {
  const std::string host_dir = tmp_ / "host-target";
  ASSERT_EQ(::mkdir(host_dir.c_str(), 0755), 0);
  const std::string tar = archive({TarBuilder().dir("a").file("a/keep", "k").build(),
                                   TarBuilder().symlink("a", host_dir).build(),
                                   TarBuilder().file("a/evil", "written through").build()},
                                  "through");
  auto imp = sandrun({"image", "import", tar});
  ASSERT_EQ(imp.status, 0) << imp.err;
  EXPECT_EQ(dir_entries(host_dir), std::vector<std::string>{});  // the host: untouched
  // Inside, the last layer's directory wins over the symlink below it.
  auto r = sandrun({"exec", "--image", "team/through:1", "--", "sh", "-c",
                    "[ -L /a ] && echo link || echo dir; ls /a; ls " + host_dir + " 2>&1 | head -1"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find("\n", r.out.find("evil"))), "dir\nevil");
  EXPECT_EQ(dir_entries(host_dir), std::vector<std::string>{});
  expect_store_clean();
  expect_nothing_left();
}

// [cache] max_size: before the jobs start, the least recently used images go until the cache
// fits, never the run's own.
TEST_F(ImageSafetyTest, ACacheSizeCapEvictsOtherImagesLeastRecentlyUsedFirst) {
  for (const std::string name : {"old", "mid", "mine"}) {
    auto imp = sandrun({"image", "import", archive({TarBuilder().file("data", std::string(1 << 20, name[0])).build()}, name)});
    ASSERT_EQ(imp.status, 0) << imp.err;
  }
  for (const std::string name : {"old", "mid"}) {  // used, in this order, a while ago
    ASSERT_EQ(sandrun({"exec", "--image", "team/" + name + ":1", "--", "true"}).status, 0);
    ::usleep(1100 * 1000);  // the marks' mtimes are compared in seconds
  }
  auto r = sandrun({"run", jobs("[cache]\nmax_size = \"3MiB\"\n[jobs.a]\nimage = \"team/mine:1\"\nrun = \"wc -c < /data\"\n")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("sandrun: cache.max_size: removed team/old:1\n"), std::string::npos) << r.err;
  auto ls = sandrun({"image", "ls"}).out;
  EXPECT_EQ(ls.find("team/old:1"), std::string::npos) << ls;
  EXPECT_NE(ls.find("team/mine:1"), std::string::npos) << ls;
  EXPECT_EQ(log("a"), std::to_string(1 << 20) + "\n");
  expect_store_clean();
  expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
