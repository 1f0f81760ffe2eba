// The disk limit through the sandrun binary: a job that fills its writable layer (bytes, then
// files) stops at ENOSPC, is reported as such, and the host's file system grows by no more
// than the limit; the host file's [defaults] and [policy]; `exec --disk`; nothing left behind
// after a run, nor after a killed run and `sandrun cleanup`. The state dir and the output dir
// are on a tmpfs the test mounts, never on the machine's own disk.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/runner/cli_fixture.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr uint64_t kMiB = uint64_t{1} << 20;

class DiskLimitTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    SANDRUN_REQUIRE(::access("/dev/loop-control", W_OK) == 0, "no /dev/loop-control: the disk limit needs loop devices");
    ASSERT_EQ(::mkdir(fs_.c_str(), 0755), 0);
    ASSERT_EQ(::mount("tmpfs", fs_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=512m,mode=0755"), 0) << fs_;
    mounted_ = true;
    struct stat st;
    SANDRUN_REQUIRE(::stat("/etc/sandrun/sandrun.toml", &st) != 0,
                    "/etc/sandrun/sandrun.toml exists on this host: the tests need a host without a policy");
  }
  void TearDown() override {
    if (mounted_) EXPECT_EQ(::umount2(fs_.c_str(), MNT_DETACH), 0) << fs_;
  }

  std::string state() const { return fs_ + "/root"; }
  std::string out() const { return fs_ + "/out"; }
  CommandResult run(std::vector<std::string> args, const std::string& config = "") {
    if (!config.empty()) args.insert(args.begin(), {"--config", config});
    return run_sandrun(state(), args);
  }
  // Bytes used on the test's tmpfs (state and output dirs).
  uint64_t used() const {
    struct statvfs st;
    if (::statvfs(fs_.c_str(), &st) != 0) return 0;
    return (st.f_blocks - st.f_bfree) * st.f_frsize;
  }
  json summary() { return json::parse(read_file(out() + "/summary.json"), nullptr, false); }

  // Nothing of any run remains under the test's state dir: no mount, no loop device, no image,
  // every slot released.
  void expect_clean() {
    EXPECT_EQ(mounts_under(state()), std::vector<std::string>{});
    EXPECT_EQ(loop_devices_under(state()), std::vector<std::string>{});
    for (const auto& k : dir_entries(state() + "/slots")) {
      const std::string slot = state() + "/slots/" + k;
      EXPECT_NE(::access((slot + "/disk.img").c_str(), F_OK), 0) << slot;
      EXPECT_EQ(dir_entries(slot + "/disk/upper"), std::vector<std::string>{}) << slot;
      EXPECT_EQ(read_file(slot + "/pid").substr(0, 1), "-") << slot;
      EXPECT_FALSE(slot_locked(slot)) << slot;
    }
  }

  std::string fs_ = tmp_ / "fs";
  bool mounted_ = false;
};

TEST_F(DiskLimitTest, AJobFillingItsDiskGetsEnospcIsReportedAndTheHostGrowsByAtMostTheLimit) {
  const std::string file = jobs(
      "[jobs.fill]\n"
      "disk = \"64MiB\"\n"
      "run = \"dd if=/dev/zero of=/big bs=1M count=1024; echo size=$(stat -c %s /big); sleep 1; exit 3\"\n");
  const uint64_t before = used();
  std::atomic<bool> done{false};
  std::atomic<uint64_t> peak{0};
  std::thread watch([&] {
    while (!done) {
      peak = std::max<uint64_t>(peak, used());
      std::this_thread::sleep_for(10ms);
    }
  });
  auto r = run({"run", "--out", out(), file});
  done = true;
  watch.join();
  EXPECT_EQ(r.status, 1) << r.err;
  const std::string log = read_file(out() + "/logs/fill.log");
  EXPECT_NE(log.find("No space left on device"), std::string::npos) << log;
  auto at = log.find("size=");
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_LE(std::stoull(log.substr(at + 5)), 64 * kMiB) << log;
  // The result names the cause, on the console and in summary.json.
  EXPECT_NE(r.err.find("disk limit reached (64 MiB): the container's writable layer is full"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("failed: exit 3 (disk limit reached (64 MiB))"), std::string::npos) << r.err;
  EXPECT_NE(summary().dump().find("disk limit reached (64 MiB)"), std::string::npos) << summary().dump();
  // The image is sparse and its file system holds what the job wrote: at most the limit,
  // plus the output dir's log and the run's own files.
  EXPECT_LE(peak - before, 64 * kMiB + 8 * kMiB) << "peak " << peak << " before " << before;
  expect_clean();
}

TEST_F(DiskLimitTest, AJobCreatingManyFilesHitsTheInodeLimit) {
  const std::string file = jobs(
      "[jobs.files]\n"
      "disk = \"32MiB\"\n"
      "disk_inodes = 200\n"
      "run = \"mkdir /many; i=0; while touch /many/f$i 2>/dev/null; do i=$((i+1)); done; echo made=$i; "
      "touch /many/last; exit 4\"\n");
  auto r = run({"run", "--out", out(), file});
  EXPECT_EQ(r.status, 1) << r.err;
  const std::string log = read_file(out() + "/logs/files.log");
  EXPECT_NE(log.find("No space left on device"), std::string::npos) << log;
  auto at = log.find("made=");
  ASSERT_NE(at, std::string::npos) << log;
  const auto made = std::stoull(log.substr(at + 5));
  EXPECT_GE(made, 150u) << log;  // at least about what was asked (mke2fs rounds up per group)
  EXPECT_LE(made, 400u) << log;
  EXPECT_NE(r.err.find("disk limit reached (200 files)"), std::string::npos) << r.err;
  expect_clean();
}

TEST_F(DiskLimitTest, TheHostFileSetsTheDefaultAndItsPolicyRefusesABiggerJobValueNamingBothLines) {
  const std::string config = tmp_ / "sandrun.toml";
  write_file(config, "[defaults]\ndisk = \"48MiB\"\ndisk_inodes = 5000\n[policy]\nmax_disk = \"128MiB\"\n");
  // The default applies, shown by --print-spec.
  auto spec = run({"run", "--print-spec", jobs("[jobs.a]\nrun = \"true\"\n")}, config);
  ASSERT_EQ(spec.status, 0) << spec.err;
  EXPECT_NE(spec.out.find("\"disk\": \"48 MiB\""), std::string::npos) << spec.out;
  EXPECT_NE(spec.out.find("\"disk_inodes\": 5000"), std::string::npos) << spec.out;
  EXPECT_NE(spec.out.find("\"disk_mechanism\": \"ext4 image on a loop device per container slot\""), std::string::npos)
      << spec.out;
  // The default is what the job gets: a write past it fails.
  auto small = run({"run", "--out", out(), jobs("[jobs.a]\nrun = \"dd if=/dev/zero of=/big bs=1M count=100\"\n", "small.toml")},
                   config);
  EXPECT_EQ(small.status, 1) << small.err;
  EXPECT_NE(small.err.find("disk limit reached (48 MiB)"), std::string::npos) << small.err;
  // A bigger job value is refused up front.
  auto big = run({"run", "--out", out(), jobs("[jobs.big]\nrun = \"true\"\ndisk = \"1GiB\"\n", "big.toml")}, config);
  EXPECT_EQ(big.status, 2) << big.err;
  EXPECT_NE(big.err.find(fmt::format("{}:3:8: jobs.big.disk: disk = 1 GiB is above the policy's max_disk ({}:5:12: "
                                     "max_disk = \"128 MiB\")",
                                     tmp_ / "big.toml", config)),
            std::string::npos)
      << big.err;
  // And through exec's flag.
  auto flag = run({"exec", "--disk", "1GiB", "--", "true"}, config);
  EXPECT_NE(flag.status, 0);
  EXPECT_NE(flag.err.find("exec: --disk 1 GiB: disk = 1 GiB is above the policy's max_disk"), std::string::npos)
      << flag.err;
  expect_clean();
}

TEST_F(DiskLimitTest, ExecDiskLimitsTheContainerAndImpossibleValuesAreRefusedNamingTheFlag) {
  auto r = run({"exec", "--disk", "32MiB", "--", "sh", "-c",
                "dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null; echo size=$(stat -c %s /big); exit 5"});
  EXPECT_EQ(r.status, 5) << r.err;
  auto at = r.out.find("size=");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_LE(std::stoull(r.out.substr(at + 5)), 32 * kMiB) << r.out;
  EXPECT_NE(r.err.find("disk limit reached (32 MiB)"), std::string::npos) << r.err;

  auto zero = run({"exec", "--disk", "0", "--", "true"});
  EXPECT_NE(zero.status, 0);
  EXPECT_NE(zero.err.find("exec: --disk: 0 B is below the minimum of 16 MiB"), std::string::npos) << zero.err;
  auto huge = run({"exec", "--disk", "1TiB", "--", "true"});
  EXPECT_NE(huge.status, 0);
  EXPECT_NE(huge.err.find("--disk: disk = 1 TiB is more than the file system of sandrun's state dir has free"),
            std::string::npos)
      << huge.err;
  auto inodes = run({"exec", "--disk", "16MiB", "--disk-inodes", "100000", "--", "true"});
  EXPECT_NE(inodes.status, 0);
  EXPECT_NE(inodes.err.find("disk_inodes = 100000 is more than a disk of 16 MiB can hold (at most 8192"),
            std::string::npos)
      << inodes.err;
  auto file = run({"run", "--print-spec", jobs("[jobs.z]\nrun = \"true\"\ndisk = 0\n", "zero.toml")});
  EXPECT_NE(file.status, 0);
  EXPECT_NE(file.err.find(fmt::format("{}:3:8: jobs.z.disk: 0 B is below the minimum of 16 MiB", tmp_ / "zero.toml")),
            std::string::npos)
      << file.err;
  expect_clean();
}

TEST_F(DiskLimitTest, TheDefaultIsBoundedByWhatTheStateDirHasFree) {
  // 512 MiB of tmpfs: half of what is free, below the 8 GiB default.
  auto spec = run({"run", "--print-spec", jobs("[jobs.a]\nrun = \"true\"\n")});
  ASSERT_EQ(spec.status, 0) << spec.err;
  auto at = spec.out.find("\"disk_bytes\": ");
  ASSERT_NE(at, std::string::npos) << spec.out;
  const uint64_t bytes = std::stoull(spec.out.substr(at + 14));
  EXPECT_LE(bytes, 256 * kMiB);
  EXPECT_GE(bytes, 128 * kMiB);
}

TEST_F(DiskLimitTest, AKilledRunsSlotFileSystemsAreRemovedByCleanup) {
  const std::string file = jobs("[jobs.a]\ndisk = \"32MiB\"\nrun = \"echo x > /junk; sleep 86471\"\n");
  Background bg({sandrun_bin(), "--root", state(), "run", "--out", out(), file});
  ASSERT_TRUE(eventually([] { return host_has_process({"sleep", "86471"}); }, kStartTimeout));
  EXPECT_EQ(loop_devices_under(state()).size(), 1u);
  EXPECT_EQ(mounts_under(state() + "/slots").size(), 1u);
  bg.signal(SIGKILL);
  EXPECT_EQ(bg.finish().status, 128 + SIGKILL);
  auto r = run({"cleanup"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("removed 1 slot file system"), std::string::npos) << r.err;
  EXPECT_FALSE(host_has_process({"sleep", "86471"}));
  EXPECT_EQ(mounts_under(state()), std::vector<std::string>{});
  // The loop device goes once the last user of its file system is gone (autoclear).
  EXPECT_TRUE(eventually([&] { return loop_devices_under(state()).empty(); }, 10s)) << loop_devices_under(state()).size();
  EXPECT_EQ(dir_entries(state() + "/slots"), std::vector<std::string>{});
}

TEST_F(DiskLimitTest, SlotsKeepTheirFileSystemAcrossJobsAndRemakeItForAnotherSize) {
  // Four jobs in one slot (-j 1): two sizes. Each sees an empty writable layer.
  const std::string file = jobs(
      "[jobs.a]\ndisk = \"32MiB\"\nrun = \"test ! -e /mark && echo a > /mark && df -k / | tail -1\"\n"
      "[jobs.b]\ndisk = \"32MiB\"\nneeds = [\"a\"]\nrun = \"test ! -e /mark && echo b > /mark\"\n"
      "[jobs.c]\ndisk = \"64MiB\"\nneeds = [\"b\"]\nrun = \"test ! -e /mark && dd if=/dev/zero of=/f bs=1M count=40\"\n"
      "[jobs.d]\ndisk = \"32MiB\"\nneeds = [\"c\"]\nrun = \"test ! -e /f && test ! -e /mark\"\n");
  auto r = run({"run", "-j", "1", "--out", out(), file});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(dir_entries(state() + "/slots").size(), 1u);
  expect_clean();
}

TEST_F(DiskLimitTest, OneTemplatePerSizeIsMadeReusedRemadeWhenDamagedAndRemovedByCleanup) {
  const std::string file = jobs("[jobs.a]\ndisk = \"32MiB\"\ndisk_inodes = 1000\nrun = \"echo x > /f\"\n"
                                "[jobs.b]\ndisk = \"32MiB\"\ndisk_inodes = 1000\nrun = \"echo y > /f\"\n");
  const std::string templates = state() + "/disk-templates";
  const std::string tmpl = templates + fmt::format("/ext4-{}-1000.img", 32 * kMiB);
  auto first = run({"run", "-j", "2", "--out", out(), file});
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_EQ(dir_entries(templates), std::vector<std::string>{fmt::format("ext4-{}-1000.img", 32 * kMiB)});
  struct stat before;
  ASSERT_EQ(::stat(tmpl.c_str(), &before), 0);
  // A second run copies the same template (not made again: same inode).
  auto second = run({"run", "-j", "2", "--out", out(), file});
  ASSERT_EQ(second.status, 0) << second.err;
  struct stat again;
  ASSERT_EQ(::stat(tmpl.c_str(), &again), 0);
  EXPECT_EQ(again.st_ino, before.st_ino);
  // A damaged template (its superblock overwritten) is made again, and the jobs run.
  {
    std::string garbage(4096, 'Z');
    FILE* f = std::fopen(tmpl.c_str(), "r+");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(garbage.data(), 1, garbage.size(), f), garbage.size());
    std::fclose(f);
  }
  auto damaged = run({"run", "-j", "2", "--out", out(), file});
  EXPECT_EQ(damaged.status, 0) << damaged.err;
  EXPECT_NE(read_file(tmpl).substr(1024 + 56, 2), "ZZ");  // the ext4 magic is back (0xEF53 at 1080)
  expect_clean();
  auto r = run({"cleanup"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(::access(templates.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace sandrun::testing
