// The mount-point layer of a read-only root: what an overlay of the image's layers shows at a
// path, which entries the layer adds, that it repeats the image's directories unchanged, and
// where it refuses (so the container keeps a writable layer instead).
#include "sandbox/mount_points.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "tests/support/test_env.h"

namespace sandrun::testing {
namespace {

using sandbox::Found;
using sandbox::lookup_in_layers;

class MountPointsTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  std::string top_ = tmp_ / "top", bottom_ = tmp_ / "bottom", cache_ = tmp_ / "cache";

  void SetUp() override {
    for (const auto& d : {top_, bottom_}) ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
  }
  static void mkdir_p(const std::string& path, mode_t mode = 0755) {
    std::filesystem::create_directories(path);
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
  }
  sandbox::ContainerPlan ro_spec() const {
    sandbox::ContainerPlan s;
    s.lower_dirs = {top_, bottom_};
    s.hardening.read_only_rootfs = true;
    return s;
  }
};

TEST_F(MountPointsTest, TheRequiredMountPointsAreProcDevSysTheWorkdirAndEachVolumeTarget) {
  auto s = ro_spec();
  s.workdir = "/src//app/";
  write_file(tmp_ / "file", "x");
  s.binds = {{tmp_.path(), "/workspace"}, {tmp_ / "file", "/etc/conf"}, {tmp_.path(), "/workspace"}};
  auto mps = sandbox::required_mount_points(s);
  std::vector<sandbox::MountPoint> want = {{"/dev", true},       {"/etc/conf", false}, {"/proc", true},
                                           {"/src/app", true},   {"/sys", true},       {"/tmp", true},
                                           {"/workspace", true}};
  EXPECT_EQ(mps, want);
}

TEST_F(MountPointsTest, LookupFollowsOverlayRulesWithoutFollowingSymlinks) {
  mkdir_p(bottom_ + "/usr/lib");
  write_file(bottom_ + "/usr/lib/libc.so", "");
  mkdir_p(top_ + "/usr");
  ASSERT_EQ(::symlink("/usr/lib", (top_ + "/lib").c_str()), 0);
  EXPECT_EQ(lookup_in_layers({top_, bottom_}, "/usr/lib"), Found::dir);  // merged from the bottom
  EXPECT_EQ(lookup_in_layers({top_, bottom_}, "/usr/lib/libc.so"), Found::file);
  EXPECT_EQ(lookup_in_layers({top_, bottom_}, "/usr/share"), Found::missing);
  EXPECT_EQ(lookup_in_layers({top_, bottom_}, "/lib"), Found::other);  // the symlink itself
  EXPECT_EQ(lookup_in_layers({top_, bottom_}, "/lib/libc.so"), Found::through_non_dir);
  EXPECT_EQ(lookup_in_layers({top_, bottom_}, "/usr/lib/libc.so/x"), Found::through_non_dir);
  EXPECT_EQ(lookup_in_layers({top_, bottom_}, "/"), Found::dir);
}

TEST_F(MountPointsTest, WhiteoutsAndOpaqueDirectoriesHideLowerEntries) {
  SANDRUN_REQUIRE_ROOT();  // a whiteout is a 0:0 character device; trusted.* xattrs need root
  mkdir_p(bottom_ + "/gone");
  mkdir_p(bottom_ + "/opaque/old");
  ASSERT_EQ(::mknod((top_ + "/gone").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  mkdir_p(top_ + "/opaque");
  ASSERT_EQ(::setxattr((top_ + "/opaque").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  EXPECT_EQ(lookup_in_layers({top_, bottom_}, "/gone"), Found::missing);
  EXPECT_EQ(lookup_in_layers({top_, bottom_}, "/opaque"), Found::dir);
  EXPECT_EQ(lookup_in_layers({top_, bottom_}, "/opaque/old"), Found::missing);
  EXPECT_EQ(lookup_in_layers({bottom_}, "/opaque/old"), Found::dir);
}

TEST_F(MountPointsTest, TheLayerAddsOnlyWhatIsMissingAndRepeatsTheImagesDirectoriesUnchanged) {
  SANDRUN_REQUIRE_ROOT();  // copies owners
  for (const char* d : {"/proc", "/dev", "/sys"}) mkdir_p(bottom_ + d);  // no /tmp: the layer adds it
  mkdir_p(bottom_ + "/home/dev", 0700);
  ASSERT_EQ(::chown((bottom_ + "/home/dev").c_str(), 1000, 1000), 0);
  ASSERT_EQ(::chmod(top_.c_str(), 0750), 0);
  auto s = ro_spec();
  s.workdir = "/home/dev/src";
  write_file(tmp_ / "cfg", "x");
  s.binds = {{tmp_ / "cfg", "/etc/app.conf"}};
  auto layer = sandbox::ensure_mount_point_layer(cache_, s);
  ASSERT_TRUE(layer) << layer.error().message();
  ASSERT_TRUE(*layer);
  const std::string dir = **layer;
  struct stat st;
  ASSERT_EQ(::lstat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);  // the root repeats the top-most layer's
  ASSERT_EQ(::lstat((dir + "/home/dev").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1000u);
  ASSERT_EQ(::lstat((dir + "/home/dev/src").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_EQ(::lstat((dir + "/etc/app.conf").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_NE(::access((dir + "/proc").c_str(), F_OK), 0);  // the image has it
  ASSERT_EQ(::lstat((dir + "/tmp").c_str(), &st), 0);
  // The same image and targets find the same layer; other targets get their own.
  auto again = sandbox::ensure_mount_point_layer(cache_, s);
  ASSERT_TRUE(again && *again);
  EXPECT_EQ(**again, dir);
  s.workdir = "/";
  auto other = sandbox::ensure_mount_point_layer(cache_, s);
  ASSERT_TRUE(other && *other);
  EXPECT_NE(**other, dir);
  // Nothing half-made is left beside them.
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(cache_)) {
    EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos) << e.path();
    ++n;
  }
  EXPECT_EQ(n, 2u);
}

TEST_F(MountPointsTest, ConcurrentMakersEndWithOneLayer) {
  auto s = ro_spec();
  s.workdir = "/a/b";
  std::vector<std::string> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      auto l = sandbox::ensure_mount_point_layer(cache_, s);
      if (l && *l) got[i] = **l;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& g : got) EXPECT_EQ(g, got[0]);
  EXPECT_FALSE(got[0].empty());
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(cache_)) n += e.is_directory();
  EXPECT_EQ(n, 1u);
}

TEST_F(MountPointsTest, NoLayerWhereItWouldChangeWhatTheImageShows) {
  mkdir_p(bottom_ + "/data");
  ASSERT_EQ(::symlink("/data", (bottom_ + "/workspace").c_str()), 0);
  write_file(bottom_ + "/etc-file", "");
  auto s = ro_spec();
  s.binds = {{tmp_.path(), "/workspace/sub"}};  // through a symlink of the image
  auto l = sandbox::ensure_mount_point_layer(cache_, s);
  ASSERT_TRUE(l) << l.error().message();
  EXPECT_FALSE(*l);
  s.binds = {{tmp_.path(), "/etc-file"}};  // a directory over the image's file
  l = sandbox::ensure_mount_point_layer(cache_, s);
  ASSERT_TRUE(l);
  EXPECT_FALSE(*l);
  s.binds = {};
  s.hardening.read_only_rootfs = false;  // a writable root needs none
  l = sandbox::ensure_mount_point_layer(cache_, s);
  ASSERT_TRUE(l);
  EXPECT_FALSE(*l);
  EXPECT_FALSE(std::filesystem::exists(cache_));
}

}  // namespace
}  // namespace sandrun::testing
