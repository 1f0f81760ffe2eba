// Secure layer extraction: what a layer may do inside its root, and how exactly it lands.
#include "cache/extract.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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
  Result<ExtractReport> extract(const TarBuilder& b,
                                const ExtractOptions& options = default_extract_options()) {
    data_ = b.build();
    auto reader = sandrun::testing::open_tar_reader(data_);
    return extract_layer(root_.get(), reader.get(), options);
  }
  // The value of xattr `name` on `p` in the layer, or "<errno text>" when it has none.
  std::string xattr_of(const std::string& p, const char* name) const {
    char buf[64];
    ssize_t n = ::lgetxattr(layer(p).c_str(), name, buf, sizeof buf);
    return n < 0 ? "<" + errno_text(errno) + ">" : std::string(buf, static_cast<size_t>(n));
  }
  bool is_whiteout_at(const std::string& p) const {
    struct stat st = lstat_of(layer(p));
    return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
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

const std::string kNoXattr = "<" + errno_text(ENODATA) + ">";

TEST_F(ExtractTest, WhiteoutMarkerBecomesA00CharacterDevice) {
  ASSERT_EXTRACTS(TarBuilder().dir("a").file("a/.wh.gone", "any content").file(".wh.top", ""));
  EXPECT_TRUE(is_whiteout_at("a/gone"));
  EXPECT_TRUE(is_whiteout_at("top"));
  EXPECT_EQ(lstat_of(layer("a/.wh.gone")).st_mode, 0u);  // markers themselves never land
  EXPECT_EQ(lstat_of(layer(".wh.top")).st_mode, 0u);
  EXPECT_EQ(report->whiteouts, 2u);
  EXPECT_EQ(report->files, 0u);
  EXPECT_EQ(report->entries, 3u);
}

TEST_F(ExtractTest, OpaqueMarkerSetsUserAndAsRootTrustedOverlayXattrs) {
  ASSERT_EXTRACTS(TarBuilder().dir("d").file("d/.wh..wh..opq", "").file("d/mine", "x"));
  EXPECT_EQ(xattr_of("d", "user.overlay.opaque"), "y");
  // CI runs the unit tests as root: both are checked there.
  EXPECT_EQ(xattr_of("d", "trusted.overlay.opaque"), ::geteuid() == 0 ? "y" : kNoXattr);
  EXPECT_EQ(read_file(layer("d/mine")), "x");  // the layer's own entries stay
  EXPECT_EQ(lstat_of(layer("d/.wh..wh..opq")).st_mode, 0u);
  EXPECT_EQ(report->opaque_dirs, 1u);
  EXPECT_EQ(report->whiteouts, 0u);
}

TEST_F(ExtractTest, WithoutTrustedOverlayOnlyTheUserOpaqueXattrIsSet) {
  ExtractOptions options = default_extract_options();
  options.trusted_overlay = false;
  auto report = extract(TarBuilder().file("d/.wh..wh..opq", ""), options);
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(xattr_of("d", "user.overlay.opaque"), "y");
  EXPECT_EQ(xattr_of("d", "trusted.overlay.opaque"), kNoXattr);
}

TEST_F(ExtractTest, OpaqueMarkerCreatesItsDirectoryLikeAnImpliedParent) {
  ASSERT_EXTRACTS(TarBuilder().file("x/y/.wh..wh..opq", "").file(".wh..wh..opq", ""));
  EXPECT_TRUE(S_ISDIR(lstat_of(layer("x/y")).st_mode));
  EXPECT_EQ(lstat_of(layer("x")).st_mode & 07777, 0755u);
  EXPECT_EQ(lstat_of(layer("x/y")).st_mode & 07777, 0755u);
  EXPECT_EQ(xattr_of("x/y", "user.overlay.opaque"), "y");
  EXPECT_EQ(xattr_of("x", "user.overlay.opaque"), kNoXattr);
  EXPECT_EQ(xattr_of(".", "user.overlay.opaque"), "y");  // the layer root itself
  EXPECT_EQ(report->opaque_dirs, 2u);
}

TEST_F(ExtractTest, WhiteoutOfANonDirectoryOfThisLayerKeepsIt) {
  ASSERT_EXTRACTS(TarBuilder()
                      .file("a/x", "mine")
                      .file("a/.wh.x", "")
                      .symlink("a/s", "x")
                      .file("a/.wh.s", ""));
  EXPECT_EQ(read_file(layer("a/x")), "mine");
  EXPECT_TRUE(S_ISLNK(lstat_of(layer("a/s")).st_mode));
  EXPECT_EQ(report->whiteouts, 0u);
  EXPECT_EQ(report->opaque_dirs, 0u);
}

TEST_F(ExtractTest, EntryAfterItsWhiteoutReplacesIt) {
  ASSERT_EXTRACTS(
      TarBuilder().file("a/.wh.x", "").file("a/x", "new").file(".wh.p", "").fifo("p", 0600));
  EXPECT_EQ(read_file(layer("a/x")), "new");
  EXPECT_TRUE(S_ISFIFO(lstat_of(layer("p")).st_mode));
  EXPECT_EQ(report->whiteouts, 0u);
}

// The whiteout deletes the lower "a" and "b" whichever comes first; this layer's own stay.
// Through a plain directory the lower one's entries would show, so it is made opaque.
TEST_F(ExtractTest, WhiteoutOfADirectoryOfThisLayerMakesItOpaque) {
  ASSERT_EXTRACTS(TarBuilder()
                      .dir("a")
                      .file("a/f", "x")
                      .file(".wh.a", "")
                      .file(".wh.b", "")
                      .file("b/g", "y"));
  for (const char* d : {"a", "b"}) {
    EXPECT_TRUE(S_ISDIR(lstat_of(layer(d)).st_mode)) << d;
    EXPECT_EQ(xattr_of(d, "user.overlay.opaque"), "y") << d;
  }
  EXPECT_EQ(read_file(layer("a/f")), "x");
  EXPECT_EQ(read_file(layer("b/g")), "y");
  EXPECT_EQ(report->opaque_dirs, 2u);
  EXPECT_EQ(report->whiteouts, 0u);
}

TEST_F(ExtractTest, HardlinkNamedAsAWhiteoutIsAWhiteout) {
  ASSERT_EXTRACTS(TarBuilder().file("empty", "").hardlink("a/.wh.gone", "empty"));
  EXPECT_TRUE(is_whiteout_at("a/gone"));
  EXPECT_EQ(lstat_of(layer("empty")).st_nlink, 1u);
  EXPECT_EQ(report->hardlinks, 0u);
  EXPECT_EQ(report->whiteouts, 1u);
}

TEST_F(ExtractTest, MalformedWhiteoutsAreRefused) {
  const std::pair<TarBuilder, std::string> cases[] = {
      {TarBuilder().file("a/.wh.", ""),
       R"(layer entry "a/.wh.": invalid whiteout ".wh.": "" is not an entry name)"},
      {TarBuilder().file("a/.wh..", ""),
       R"(layer entry "a/.wh..": invalid whiteout ".wh..": "." is not an entry name)"},
      {TarBuilder().file("a/.wh...", ""),
       R"(layer entry "a/.wh...": invalid whiteout ".wh...": ".." is not an entry name)"},
      {TarBuilder().file("a/.wh..wh.plnk", ""),
       R"(layer entry "a/.wh..wh.plnk": invalid whiteout ".wh..wh.plnk": ".wh.plnk" is itself a whiteout name)"},
      {TarBuilder().file("a/.wh.b/c", ""),
       R"(layer entry "a/.wh.b/c": invalid whiteout ".wh.b/c": the name contains "/")"},
      {TarBuilder().dir("a/.wh.d"),
       R"(layer entry "a/.wh.d/": invalid whiteout ".wh.d": a directory, not a regular file)"},
      {TarBuilder().symlink(".wh.s", "x"),
       R"(layer entry ".wh.s": invalid whiteout ".wh.s": a symlink, not a regular file)"},
      {TarBuilder().chardev("dev/.wh.null", 0, 0),
       R"(layer entry "dev/.wh.null": invalid whiteout ".wh.null": a character device, not a regular file)"},
      {TarBuilder().fifo(".wh..wh..opq"),
       R"(layer entry ".wh..wh..opq": invalid whiteout ".wh..wh..opq": a fifo, not a regular file)"},
      {TarBuilder().file("a/.wh.x", "").hardlink("h", "a/.wh.x"),
       R"(layer entry "h": hardlink target "a/.wh.x" is a whiteout)"},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(cases[i].second);
    const std::string dir = dir_ / ("case" + std::to_string(i));
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    const std::string data = cases[i].first.build();
    auto reader = sandrun::testing::open_tar_reader(data);
    auto r = extract_layer(root.get(), reader.get(), default_extract_options());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), cases[i].second);
    EXPECT_EQ(lstat_of(dir + "/a/.wh.b").st_mode, 0u);
  }
}

// Layers Docker built on AUFS hold its bookkeeping at their root; Docker skips it, so does
// sandrun (anywhere else the names are refused, above).
TEST_F(ExtractTest, AufsMetadataAtTheLayerRootIsSkipped) {
  ASSERT_EXTRACTS(TarBuilder()
                      .dir(".wh..wh.plnk")
                      .file(".wh..wh.plnk/1234.5678", "a hardlink AUFS kept")
                      .file(".wh..wh.aufs", "")
                      .dir(".wh..wh.orph")
                      .file("etc/motd", "hi"));
  EXPECT_EQ(sandrun::testing::list_dir(dir_ / "layer"), std::vector<std::string>{"etc"});
}

TEST_F(ExtractTest, ZeroZeroCharacterDeviceIsAWhiteoutOtherDevicesAreSkipped) {
  ASSERT_EXTRACTS(TarBuilder()
                      .file("a/gone", "replaced by the whiteout")
                      .chardev("a/gone", 0, 0)
                      .chardev("dev/null", 1, 3)
                      .chardev("dev/c01", 0, 1)
                      .blockdev("dev/b00", 0, 0));
  EXPECT_TRUE(is_whiteout_at("a/gone"));
  for (const char* d : {"dev/null", "dev/c01", "dev/b00"})
    EXPECT_EQ(lstat_of(layer(d)).st_mode, 0u) << d;
  EXPECT_EQ(report->whiteouts, 1u);
  EXPECT_EQ(report->skipped_devices, 3u);
}

// Only markers make a directory opaque: the tar's own overlay xattrs are dropped, before or
// after the marker.
TEST_F(ExtractTest, TarOverlayXattrsNeverMakeADirectoryOpaque) {
  ASSERT_EXTRACTS(TarBuilder()
                      .dir("plain")
                      .xattr("trusted.overlay.opaque", "y")
                      .xattr("user.overlay.opaque", "y")
                      .dir("before")
                      .xattr("user.overlay.opaque", "n")
                      .file("before/.wh..wh..opq", "")
                      .file("after/.wh..wh..opq", "")
                      .dir("after")
                      .xattr("user.overlay.opaque", "n"));
  EXPECT_EQ(xattr_of("plain", "user.overlay.opaque"), kNoXattr);
  EXPECT_EQ(xattr_of("plain", "trusted.overlay.opaque"), kNoXattr);
  EXPECT_EQ(xattr_of("before", "user.overlay.opaque"), "y");
  EXPECT_EQ(xattr_of("after", "user.overlay.opaque"), "y");
  EXPECT_EQ(report->opaque_dirs, 2u);
  EXPECT_GE(report->stripped_xattrs, 4u);
}

}  // namespace
}  // namespace sandrun::cache
