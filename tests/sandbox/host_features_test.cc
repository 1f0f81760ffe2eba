// The host feature probes behind `sandrun doctor`: parsers on sample text, and the probes that
// hold on any Linux sandrun supports.
#include <dirent.h>
#include <linux/magic.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "sandbox/host_features.h"
#include "sandbox/sys/fs.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {
namespace {

namespace host = sandbox::host;

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (auto* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
  }
  return out;
}

// No probe child is left unreaped.
void expect_no_children() {
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(HostFeaturesTest, KernelReleasesParseToMajorMinorPatch) {
  auto v = host::parse_kernel_release("6.1.0-18-amd64");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->major, 6);
  EXPECT_EQ(v->minor, 1);
  EXPECT_EQ(v->patch, 0);
  EXPECT_EQ(v->release, "6.1.0-18-amd64");

  v = host::parse_kernel_release("6.18.44-fc-v657");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->major, 6);
  EXPECT_EQ(v->minor, 18);
  EXPECT_EQ(v->patch, 44);

  v = host::parse_kernel_release("5.15");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->minor, 15);
  EXPECT_EQ(v->patch, 0);

  v = host::parse_kernel_release("4.19.0+");
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->at_least(5, 12));
  EXPECT_TRUE(v->at_least(4, 19));
  EXPECT_FALSE(host::parse_kernel_release("linux"));
  EXPECT_FALSE(host::parse_kernel_release("6"));
  EXPECT_FALSE(host::parse_kernel_release(""));
}

TEST(HostFeaturesTest, VersionComparisonLooksAtMajorFirst) {
  host::KernelVersion v{6, 1, 0, "6.1.0"};
  EXPECT_TRUE(v.at_least(5, 12));
  EXPECT_TRUE(v.at_least(6, 1));
  EXPECT_FALSE(v.at_least(6, 2));
  EXPECT_FALSE(v.at_least(7, 0));
}

TEST(HostFeaturesTest, SubidLinesOfTheUserAreFoundByNameOrUid) {
  const char* sample =
      "# comment\n"
      "alice:100000:65536\n"
      "bob:165536:65536\n"
      "1000:231072:1000\n"
      "\n"
      "alice:300000:0\n"          // an empty range counts for nothing
      "alice:x:10\n"              // not a number
      "alice:400000\n"            // too few fields
      "alice:500000:4096\r\n";    // CRLF
  auto r = host::parse_subid(sample, "alice", 1000);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].start, 100000u);
  EXPECT_EQ(r[0].count, 65536u);
  EXPECT_EQ(r[1].start, 231072u);
  EXPECT_EQ(r[1].count, 1000u);
  EXPECT_EQ(r[2].start, 500000u);
  EXPECT_EQ(r[2].count, 4096u);
  EXPECT_TRUE(host::parse_subid(sample, "carol", 1001).empty());
  EXPECT_TRUE(host::parse_subid("", "alice", 1000).empty());
}

TEST(HostFeaturesTest, SubidsAreReadFromTheGivenEtcAndToolsFromThePath) {
  TempDir tmp;
  write_file(tmp / "subuid", "ci:100000:65536\n");
  write_file(tmp / "subgid", "other:100000:65536\n");
  write_file(tmp / "newuidmap", "#!/bin/sh\n", 0755);  // present, but not setuid root
  auto s = host::probe_subids("ci", 1234, tmp.path(), tmp.path());
  EXPECT_TRUE(s.subuid_file);
  EXPECT_TRUE(s.subgid_file);
  ASSERT_EQ(s.uids.size(), 1u);
  EXPECT_EQ(s.uids[0].start, 100000u);
  EXPECT_TRUE(s.gids.empty());
  EXPECT_EQ(s.newuidmap, tmp / "newuidmap");
  EXPECT_FALSE(s.newuidmap_privileged);
  EXPECT_EQ(s.newgidmap, "");

  auto none = host::probe_subids("ci", 1234, tmp / "missing", tmp / "missing");
  EXPECT_FALSE(none.subuid_file);
  EXPECT_EQ(none.newuidmap, "");
}

TEST(HostFeaturesTest, FilesystemsListIsMatchedByWholeName) {
  const char* text = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n";
  EXPECT_TRUE(host::filesystems_list_has(text, "overlay"));
  EXPECT_TRUE(host::filesystems_list_has(text, "ext4"));
  EXPECT_FALSE(host::filesystems_list_has(text, "over"));
  EXPECT_FALSE(host::filesystems_list_has(text, "xfs"));
}

TEST(HostFeaturesTest, FileSystemMagicsHaveNames) {
  EXPECT_EQ(host::fs_type_name(TMPFS_MAGIC), "tmpfs");
  EXPECT_EQ(host::fs_type_name(EXT4_SUPER_MAGIC), "ext4");
  EXPECT_EQ(host::fs_type_name(OVERLAYFS_SUPER_MAGIC), "overlay");
  EXPECT_EQ(host::fs_type_name(0x1234), "0x1234");
}

TEST(HostFeaturesTest, ModernSyscallsExistOnThisKernel) {
  auto k = host::kernel_version();
  SANDRUN_REQUIRE(k.at_least(5, 6), "needs a 5.6 or later kernel, this is " + k.release);
  auto t = host::try_openat2();
  EXPECT_TRUE(t.works) << t.step << ": " << t.err;
  t = host::try_pidfd_open();
  EXPECT_TRUE(t.works) << t.step << ": " << t.err;
  t = host::try_clone3();
  EXPECT_TRUE(t.works) << t.step << ": " << t.err;
  if (k.at_least(5, 12)) {
    t = host::try_mount_api();
    EXPECT_TRUE(t.works) << t.step << ": " << t.err;
    t = host::try_clone_into_cgroup();
    EXPECT_TRUE(t.works) << t.step << ": " << t.err;
  }
  expect_no_children();
}

TEST(HostFeaturesTest, SeccompFiltersAndTheirActionsAreAvailable) {
  auto s = host::probe_seccomp();
  EXPECT_TRUE(s.available);
  EXPECT_TRUE(s.errno_action);
  EXPECT_TRUE(s.kill_process_action);
  EXPECT_NE(std::find(s.flags.begin(), s.flags.end(), "tsync"), s.flags.end());
  EXPECT_EQ(s.flags.size() + s.missing_flags.size(), 6u);
}

TEST(HostFeaturesTest, ProbeChildrenAreReapedAndLeaveNoDirectory) {
  TempDir tmp;
  auto ns = host::try_container_namespaces();
  auto users = host::probe_user_namespaces();
  auto overlay = host::try_overlay_in_userns(tmp.path());
  (void)ns;
  (void)users;
  (void)overlay;
  expect_no_children();
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{});
}

TEST(HostFeaturesTest, StateDirIsProbedWhereItWouldBeCreated) {
  TempDir tmp;
  auto s = host::probe_state_dir(tmp / "state/sub");
  EXPECT_FALSE(s.exists);
  EXPECT_EQ(s.checked, tmp.path());
  EXPECT_TRUE(s.writable.works) << s.writable.step << ": " << s.writable.err;
  EXPECT_FALSE(s.fs_type.empty());
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{});

  auto existing = host::probe_state_dir(tmp.path());
  EXPECT_TRUE(existing.exists);
  EXPECT_EQ(existing.checked, tmp.path());
}

TEST(HostFeaturesTest, OpenFileLimitsAreRead) {
  auto f = host::probe_nofile();
  EXPECT_GT(f.soft, 0u);
  EXPECT_GE(f.hard, f.soft);
}

}  // namespace
}  // namespace sandrun::testing
