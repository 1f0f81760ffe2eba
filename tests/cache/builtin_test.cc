// The built-in busybox image: made once from the host's busybox-static, deterministic.
#include "cache/builtin.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "cache/store.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"
#include "tests/cache/test_util.h"
#include "tests/support/test_env.h"

namespace sandrun::cache {
namespace {

using sandrun::testing::list_dir;
using sandrun::testing::lstat_of;
using sandrun::testing::read_file;

bool host_has_static_busybox() { return find_host_busybox(kHostBusyboxPaths).ok(); }

#define REQUIRE_BUSYBOX() \
  SANDRUN_REQUIRE(host_has_static_busybox(), \
                  "needs busybox-static (apt-get install busybox-static)")

std::string rootfs_bytes(const std::string& busybox) {
  int fd = ::memfd_create("test", MFD_CLOEXEC);
  UniqueFd holder(fd);
  auto r = write_busybox_rootfs(busybox, fd);
  EXPECT_TRUE(r.ok()) << r.error().message();
  ::lseek(fd, 0, SEEK_SET);
  return fs::read_fd(fd).take();
}

TEST(BuiltinTest, ConcurrentFirstUsesCreateOneImage) {
  REQUIRE_BUSYBOX();
  sandrun::testing::TempDir dir;
  auto store = Store::open(dir / "store");
  ASSERT_TRUE(store.ok());
  std::atomic<int> created{0};
  log::set_sink([&](log::Level, std::string_view text) {
    if (text.find("created the built-in image") != std::string_view::npos) ++created;
  });
  Result<ImageRecord> results[2] = {Error::msg("not run"), Error::msg("not run")};
  std::thread t0([&] { results[0] = Store(*store).ensure("busybox"); });
  std::thread t1([&] { results[1] = Store(*store).ensure("busybox:latest"); });
  t0.join();
  t1.join();
  log::set_sink(nullptr);
  EXPECT_EQ(created.load(), 1);
  ASSERT_TRUE(results[0].ok()) << results[0].error().message();
  ASSERT_TRUE(results[1].ok()) << results[1].error().message();
  EXPECT_EQ(results[0]->id, results[1]->id);
  EXPECT_EQ(results[0]->created, results[1]->created);  // the second found the first's
  EXPECT_EQ(store->list()->size(), 1u);
  EXPECT_EQ(list_dir(dir / "store/layers/sha256").size(), 1u);
  EXPECT_EQ(list_dir(dir / "store/blobs/sha256").size(), 3u);  // tarball, config, manifest
  EXPECT_TRUE(list_dir(dir / "store/tmp").empty());
  EXPECT_EQ(results[0]->ref(), "busybox:latest");
}

TEST(BuiltinTest, ImageHoldsBusyboxAppletsAndEtc) {
  REQUIRE_BUSYBOX();
  sandrun::testing::TempDir dir;
  auto store = Store::open(dir / "store");
  ASSERT_TRUE(store.ok());
  auto rec = store->ensure("busybox");
  ASSERT_TRUE(rec.ok()) << rec.error().message();
  const std::string l = store->layer_path(rec->layers[0].diff_id);
  char buf[256];
  ssize_t n = ::readlink((l + "/bin/sh").c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "/bin/busybox");
  struct stat st = lstat_of(l + "/bin/busybox");
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_size, lstat_of(find_host_busybox(kHostBusyboxPaths).take()).st_size);
  const std::string passwd = read_file(l + "/etc/passwd");
  EXPECT_NE(passwd.find("root:x:0:0:root:/root:/bin/sh\n"), std::string::npos);
  EXPECT_NE(passwd.find("nobody:x:65534:65534:"), std::string::npos);
  EXPECT_EQ(read_file(l + "/etc/group"), "root:x:0:\nnogroup:x:65534:\n");
  EXPECT_NE(read_file(l + "/etc/hosts").find("127.0.0.1\tlocalhost"), std::string::npos);
  EXPECT_EQ(lstat_of(l + "/tmp").st_mode & 07777, 01777u);
  EXPECT_EQ(lstat_of(l + "/var/tmp").st_mode & 07777, 01777u);
  EXPECT_EQ(lstat_of(l + "/root").st_mode & 07777, 0700u);
  for (const char* d : {"proc", "sys", "dev", "workspace", "home", "usr/bin", "usr/sbin", "sbin"})
    EXPECT_TRUE(S_ISDIR(lstat_of(l + "/" + d).st_mode)) << d;
  EXPECT_TRUE(S_ISLNK(lstat_of(l + "/usr/bin/awk").st_mode));
  EXPECT_EQ(rec->config.cmd, std::vector<std::string>{"/bin/sh"});
}

TEST(BuiltinTest, SameBusyboxGivesTheSameBytes) {
  REQUIRE_BUSYBOX();
  std::string busybox = find_host_busybox(kHostBusyboxPaths).take();
  std::string a = rootfs_bytes(busybox);
  std::string b = rootfs_bytes(busybox);
  EXPECT_GT(a.size(), 1000000u);
  EXPECT_EQ(a, b);
}

TEST(BuiltinTest, AppletListSkipsBusyboxItself) {
  REQUIRE_BUSYBOX();
  auto applets = busybox_applets(find_host_busybox(kHostBusyboxPaths).take());
  ASSERT_TRUE(applets.ok()) << applets.error().message();
  EXPECT_TRUE(std::is_sorted(applets->begin(), applets->end()));
  EXPECT_EQ(std::count(applets->begin(), applets->end(), "bin/busybox"), 0);
  EXPECT_EQ(std::count(applets->begin(), applets->end(), "bin/sh"), 1);
}

TEST(BuiltinTest, MissingOrDynamicBusyboxSaysWhatToInstall) {
  auto missing = find_host_busybox({"/nonexistent/busybox", "/nonexistent/bin/busybox"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(),
            "no busybox found at /nonexistent/busybox or /nonexistent/bin/busybox; install it "
            "with: apt-get install busybox-static");
  auto dynamic = find_host_busybox({"/nonexistent/busybox", "/bin/ls"});
  ASSERT_FALSE(dynamic.ok());
  EXPECT_EQ(dynamic.error().message(),
            "/bin/ls is dynamically linked (the busybox package); the built-in image needs a "
            "static one: apt-get install busybox-static");
  auto not_elf = find_host_busybox({"/etc/passwd"});
  ASSERT_FALSE(not_elf.ok());
  EXPECT_EQ(not_elf.error().message(), "/etc/passwd is not a 64-bit ELF executable");
}

TEST(BuiltinTest, OtherTagsOfBusyboxAreNotBuiltIn) {
  sandrun::testing::TempDir dir;
  auto store = Store::open(dir / "store");
  ASSERT_TRUE(store.ok());
  auto r = store->ensure("busybox:1.36");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("is not in the image cache"), std::string::npos);
}

}  // namespace
}  // namespace sandrun::cache
