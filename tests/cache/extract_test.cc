// Secure layer extraction: what a layer may do inside its root, and how exactly it lands.
#include "cache/extract.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "sandbox/sys/unique_fd.h"
#include "tests/cache/tar_builder.h"
#include "tests/cache/test_util.h"
#include "tests/support/test_env.h"

namespace sandrun::cache {
namespace {

using sandrun::testing::lstat_of;
using sandrun::testing::read_file;
using sandrun::testing::TarBuilder;

class ExtractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sandrun::testing::write_file(dir_ / "canary", "unbroken", 0644);
    ASSERT_EQ(::mkdir((dir_ / "layer").c_str(), 0755), 0);
    root_.reset(::open((dir_ / "layer").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_.valid());
  }
  Result<ExtractReport> extract(const TarBuilder& b) {
    data_ = b.build();
    auto reader = sandrun::testing::open_tar_reader(data_);
    return extract_layer(root_.get(), reader.get(), default_extract_options());
  }
  std::string layer(const std::string& p) const { return dir_ / ("layer/" + p); }
  void expect_canary_untouched() {
    EXPECT_EQ(read_file(dir_ / "canary"), "unbroken");
    EXPECT_EQ(lstat_of(dir_ / "canary").st_mode & 07777, 0644u);
  }
  std::string readlink_of(const std::string& p) const {
    char buf[4096];
    ssize_t n = ::readlink(layer(p).c_str(), buf, sizeof buf);
    return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
  }

  sandrun::testing::TempDir dir_;
  UniqueFd root_;
  std::string data_;
};

#define ASSERT_EXTRACTS(builder)                                  \
  auto report = extract(builder);                                 \
  ASSERT_TRUE(report.ok()) << report.error().message()

TEST_F(ExtractTest, AbsoluteNamesAreRefused) {
  auto r = extract(TarBuilder().file("etc/hosts", "x").file("/etc/passwd", "root::0:0::/:"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), R"(layer entry "/etc/passwd": absolute path in a layer)");
  EXPECT_EQ(lstat_of(layer("etc/passwd")).st_mode, 0u);
  auto root = extract(TarBuilder().dir("/"));
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.error().message(), R"(layer entry "/": absolute path in a layer)");
}

TEST_F(ExtractTest, DotAndDoubleSlashAreCollapsed) {
  ASSERT_EXTRACTS(TarBuilder().file("./a//b/./c", "x"));
  EXPECT_EQ(read_file(layer("a/b/c")), "x");
}

TEST_F(ExtractTest, ImpliedParentDirectoriesAreCreated0755) {
  ASSERT_EXTRACTS(TarBuilder().file("x/y/z", "deep"));
  EXPECT_EQ(read_file(layer("x/y/z")), "deep");
  EXPECT_TRUE(S_ISDIR(lstat_of(layer("x/y")).st_mode));
  EXPECT_EQ(lstat_of(layer("x")).st_mode & 07777, 0755u);
  EXPECT_EQ(lstat_of(layer("x/y")).st_mode & 07777, 0755u);
}

TEST_F(ExtractTest, DuplicateEntriesLastWins) {
  ASSERT_EXTRACTS(TarBuilder().file("f", "first", 0600).file("f", "second", 0640));
  EXPECT_EQ(read_file(layer("f")), "second");
  EXPECT_EQ(lstat_of(layer("f")).st_mode & 07777, 0640u);
  EXPECT_EQ(report->files, 2u);
}

TEST_F(ExtractTest, FileReplacedByDirectoryAndDirectoryByFile) {
  ASSERT_EXTRACTS(TarBuilder()
                      .file("a", "file")
                      .dir("a")
                      .file("a/inner", "x")
                      .dir("b")
                      .file("b/inner", "x")
                      .dir("b/sub")
                      .file("b", "now a file"));
  EXPECT_TRUE(S_ISDIR(lstat_of(layer("a")).st_mode));
  EXPECT_EQ(read_file(layer("a/inner")), "x");
  EXPECT_TRUE(S_ISREG(lstat_of(layer("b")).st_mode));
  EXPECT_EQ(read_file(layer("b")), "now a file");
}

TEST_F(ExtractTest, FileReplacesSymlinkWithoutFollowingIt) {
  ASSERT_EXTRACTS(TarBuilder()
                      .symlink("s", dir_ / "canary")
                      .file("s", "replaced", 0777)
                      .symlink("d", dir_.path())
                      .dir("d", 0700));
  EXPECT_TRUE(S_ISREG(lstat_of(layer("s")).st_mode));
  EXPECT_EQ(read_file(layer("s")), "replaced");
  EXPECT_TRUE(S_ISDIR(lstat_of(layer("d")).st_mode));
  expect_canary_untouched();
  EXPECT_EQ(lstat_of(dir_.path()).st_mode & 07777, 0700u);  // mkdtemp's mode, not changed
}

// containerd TestBreakouts HardlinkSymlinkChmod (CVE-2021-32760): a hardlink to a symlink
// pointing outside, then metadata for that name, must not chmod the outside file.
TEST_F(ExtractTest, HardlinkToSymlinkLinksTheSymlinkItself) {
  ASSERT_EXTRACTS(TarBuilder().symlink("s", dir_ / "canary").hardlink("h", "s"));
  struct stat st = lstat_of(layer("h"));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(readlink_of("h"), dir_ / "canary");
  auto again = extract(TarBuilder().file("h", "over", 0777));
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(read_file(layer("h")), "over");
  expect_canary_untouched();
}

TEST_F(ExtractTest, HardlinksInsideTheLayerShareTheInode) {
  ASSERT_EXTRACTS(
      TarBuilder().file("etc/f", "data").hardlink("rel", "etc/f").hardlink("abs", "/etc/f"));
  EXPECT_EQ(lstat_of(layer("rel")).st_ino, lstat_of(layer("etc/f")).st_ino);
  EXPECT_EQ(lstat_of(layer("abs")).st_ino, lstat_of(layer("etc/f")).st_ino);
  EXPECT_EQ(report->hardlinks, 2u);
}

TEST_F(ExtractTest, SymlinkTargetsAreStoredAsIs) {
  ASSERT_EXTRACTS(
      TarBuilder().symlink("abs", "/etc/shadow").symlink("up", "../../..").symlink("dir/x", "y"));
  EXPECT_EQ(readlink_of("abs"), "/etc/shadow");
  EXPECT_EQ(readlink_of("up"), "../../..");
  EXPECT_EQ(readlink_of("dir/x"), "y");
  EXPECT_EQ(report->symlinks, 3u);
}

TEST_F(ExtractTest, DeviceNodesAreSkippedAndCounted) {
  ASSERT_EXTRACTS(
      TarBuilder().dir("dev").chardev("dev/null", 1, 3).blockdev("dev/sda", 8, 0).file("f", "x"));
  EXPECT_EQ(report->skipped_devices, 2u);
  EXPECT_EQ(lstat_of(layer("dev/null")).st_mode, 0u);
  EXPECT_EQ(lstat_of(layer("dev/sda")).st_mode, 0u);
  EXPECT_EQ(read_file(layer("f")), "x");
}

TEST_F(ExtractTest, HardlinksToSkippedDevicesAreSkippedToo) {
  ASSERT_EXTRACTS(TarBuilder().chardev("dev/zero", 1, 5).hardlink("dev/zero2", "dev/zero")
                      .file("dev/x", "x").chardev("dev/x", 1, 3).hardlink("y", "dev/x"));
  EXPECT_EQ(report->skipped_devices, 4u);
  EXPECT_EQ(lstat_of(layer("dev/zero2")).st_mode, 0u);
  EXPECT_EQ(lstat_of(layer("dev/x")).st_mode, 0u);  // the device came last: the file went
  EXPECT_EQ(lstat_of(layer("y")).st_mode, 0u);
}

TEST_F(ExtractTest, FifoIsCreated) {
  ASSERT_EXTRACTS(TarBuilder().fifo("run/pipe", 0620));
  struct stat st = lstat_of(layer("run/pipe"));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0620u);
  EXPECT_EQ(report->fifos, 1u);
}

TEST_F(ExtractTest, OverlayXattrsAreStrippedOthersKept) {
  ASSERT_EXTRACTS(TarBuilder()
                      .dir("d")
                      .xattr("trusted.overlay.opaque", "y")
                      .xattr("user.foo", "dir")
                      .file("f", "x")
                      .xattr("trusted.overlay.redirect", "/etc")
                      .xattr("user.overlay.opaque", "y")
                      .xattr("user.foo", "bar"));
  char buf[64];
  ssize_t n = ::lgetxattr(layer("f").c_str(), "user.foo", buf, sizeof buf);
  ASSERT_EQ(n, 3) << errno_text(errno);
  EXPECT_EQ(std::string(buf, 3), "bar");
  n = ::lgetxattr(layer("d").c_str(), "user.foo", buf, sizeof buf);
  EXPECT_EQ(n, 3);
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    EXPECT_LT(::lgetxattr(layer("d").c_str(), name, buf, sizeof buf), 0);
    EXPECT_EQ(errno, ENODATA) << name;
  }
  EXPECT_LT(::lgetxattr(layer("f").c_str(), "trusted.overlay.redirect", buf, sizeof buf), 0);
  EXPECT_LT(::lgetxattr(layer("f").c_str(), "user.overlay.opaque", buf, sizeof buf), 0);
  // libarchive's pax writer stores each xattr twice (LIBARCHIVE.xattr and SCHILY.xattr).
  EXPECT_GE(report->stripped_xattrs, 3u);
}

TEST_F(ExtractTest, OwnerModeSetuidAndMtimeArePreserved) {
  SANDRUN_REQUIRE_ROOT();
  ASSERT_EXTRACTS(TarBuilder()
                      .dir("ro", 0555).owner(7, 8).mtime(2000)
                      .file("ro/suid", "x", 04755).owner(1234, 5678).mtime(1000000)
                      .file("ro/sgid", "x", 02711).owner(1, 2)
                      .symlink("ro/link", "suid").owner(42, 43).mtime(3000)
                      .dir("sticky", 01777));
  struct stat st = lstat_of(layer("ro/suid"));
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000000);
  EXPECT_EQ(st.st_atim.tv_sec, 1000000);
  EXPECT_EQ(lstat_of(layer("ro/sgid")).st_mode & 07777, 02711u);
  st = lstat_of(layer("ro/link"));
  EXPECT_EQ(st.st_uid, 42u);
  EXPECT_EQ(st.st_mtim.tv_sec, 3000);
  st = lstat_of(layer("ro"));  // set after its children were written
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  EXPECT_EQ(st.st_uid, 7u);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  EXPECT_EQ(lstat_of(layer("sticky")).st_mode & 07777, 01777u);
}

TEST_F(ExtractTest, RootEntryAppliesToTheLayerRoot) {
  ASSERT_EXTRACTS(TarBuilder().dir("./", 0750).mtime(5000).file("f", "x"));
  struct stat st = lstat_of(dir_ / "layer");
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_mtim.tv_sec, 5000);
}

TEST_F(ExtractTest, SparseAndLargeFilesStream) {
  std::string big(3 * 1024 * 1024 + 17, 'z');
  ASSERT_EXTRACTS(TarBuilder().file("big", big).file("empty", ""));
  EXPECT_EQ(read_file(layer("big")), big);
  EXPECT_EQ(lstat_of(layer("empty")).st_size, 0);
  EXPECT_EQ(report->bytes, big.size());
}

TEST_F(ExtractTest, EmptyNameIsRefused) {
  auto r = extract(TarBuilder().file("", "x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), R"(layer entry "": empty name)");
}

TEST_F(ExtractTest, HostileNamesAreEscapedInErrors) {
  auto r = extract(TarBuilder().file("a\n../b", "x").file("../\x1b[31m", "x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), R"(layer entry "../\x1b[31m": path escapes the layer root)");
  EXPECT_EQ(read_file(layer("a\n../b")), "x");  // a name with a newline is still just a name
}

}  // namespace
}  // namespace sandrun::cache
