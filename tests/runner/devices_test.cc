// Devices and masked paths, end to end through the CLI, each attack exactly as found on the
// host and each with and without a user namespace: a job reaches no host device (mknod of its
// numbers in every writable path, opening its host path), cannot change the host's /dev/null
// (through masked /proc files, /dev/null or its stdin), and sees only sandrun's own nodes.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include <fmt/format.h>

#include "sandbox/sys/unique_fd.h"
#include "tests/runner/cli_fixture.h"
#include "tests/support/rootfs.h"

namespace sandrun::testing {
namespace {

// 2001-01-01T00:00Z .. 2001-01-03T00:00Z: what `touch -d 2001-01-01` sets, in any time zone.
constexpr time_t kTouchedFrom = 978220800;
constexpr time_t kTouchedTo = 978480000;

std::string unique_marker(const char* what) {
  std::random_device rd;
  return fmt::format("SANDRUN-{}-{:08x}{:08x}", what, rd(), rd());
}

// The parameter is the job's `userns`.
class DevicesTest : public CliTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    std::string rootfs = tmp_ / "rootfs";
    ASSERT_EQ(make_busybox_rootfs(rootfs), "");
    ASSERT_EQ(import_rootfs(rootfs, "dev:1"), "");
    ASSERT_EQ(::mkdir((tmp_ / "ws").c_str(), 0755), 0);
    ASSERT_EQ(::stat("/dev/null", &null_before_), 0);
  }

  void TearDown() override {
    // A regression must not leave this host's /dev/null broken for everything else.
    struct stat st;
    if (::stat("/dev/null", &st) == 0 && ((st.st_mode & 07777) != 0666 || st.st_uid != 0 || st.st_gid != 0)) {
      ADD_FAILURE() << "the host's /dev/null was changed; restoring it";
      (void)::chown("/dev/null", 0, 0);
      (void)::chmod("/dev/null", 0666);
    }
    if (::stat("/dev/null", &st) == 0 && ((st.st_mtime >= kTouchedFrom && st.st_mtime < kTouchedTo) ||
                                          (st.st_atime >= kTouchedFrom && st.st_atime < kTouchedTo))) {
      ADD_FAILURE() << "the host's /dev/null got the job's times; restoring them";
      const struct timespec times[2] = {null_before_.st_atim, null_before_.st_mtim};
      (void)::utimensat(AT_FDCWD, "/dev/null", times, 0);
    }
  }

  // Runs one job of `script` with this test's userns; returns the run's result, the job's log
  // in `log_text`.
  CommandResult job(const std::string& script, std::string& log_text, const std::string& name = "attack") {
    std::string escaped;
    for (char ch : script) {
      if (ch == '\\' || ch == '"') escaped += '\\';
      escaped += ch;
    }
    auto r = sandrun({"run", jobs(fmt::format("[jobs.{}]\nimage = \"dev:1\"\nuserns = {}\nworkspace = \"ws\"\nrun = \"{}\"\n",
                                              name, GetParam() ? "true" : "false", escaped))});
    log_text = log(name);
    return r;
  }

  // The owner of sandrun's nodes (host root) as the container sees it.
  static std::string owner() { return GetParam() ? "65534" : "0"; }

  struct stat null_before_ = {};
};

std::string userns_name(const ::testing::TestParamInfo<bool>& info) { return info.param ? "Userns" : "NoUserns"; }

// The attack of issue 14: masked /proc files were read-write binds of the host's devtmpfs
// `null`; chmod, chown and touch of them (and of /dev/null, and of stdin) reached the host.
TEST_P(DevicesTest, ChmodChownAndTouchOfMaskedPathsDevNullAndStdinLeaveTheHostsDevNullAlone) {
  std::string out;
  auto r = job("for f in /proc/keys /proc/interrupts /proc/timer_list /dev/null /dev/stdin /proc/self/fd/0; do "
               "  chmod 0600 $f; chown 1234:1234 $f; touch -d '2001-01-01 00:00' $f; "
               "done; stat -c '%a %u %g' /dev/null /proc/keys; echo done",
               out);
  EXPECT_EQ(r.status, 0) << r.out << r.err << out;
  EXPECT_NE(out.find("done"), std::string::npos) << out;
  // Every change was refused inside: the container's own nodes and files are untouched too
  // (host root's, which a user namespace shows as nobody).
  EXPECT_NE(out.find(fmt::format("\n666 {0} {0}\n", owner())), std::string::npos) << out;
  EXPECT_NE(out.find(fmt::format("\n444 {0} {0}\n", owner())), std::string::npos) << out;  // sandrun's empty file
  struct stat after;
  ASSERT_EQ(::stat("/dev/null", &after), 0);
  EXPECT_EQ(after.st_mode, null_before_.st_mode);
  EXPECT_EQ(after.st_mode & 07777, 0666u);
  EXPECT_EQ(after.st_uid, 0u);
  EXPECT_EQ(after.st_gid, 0u);
  EXPECT_EQ(after.st_rdev, makedev(1, 3));
  // A chmod or chown (even to the same values) sets ctime; writes by other host processes do not.
  EXPECT_EQ(after.st_ctim.tv_sec, null_before_.st_ctim.tv_sec);
  EXPECT_EQ(after.st_ctim.tv_nsec, null_before_.st_ctim.tv_nsec);
  EXPECT_FALSE(after.st_mtime >= kTouchedFrom && after.st_mtime < kTouchedTo) << after.st_mtime;
  EXPECT_FALSE(after.st_atime >= kTouchedFrom && after.st_atime < kTouchedTo) << after.st_atime;
  expect_nothing_left();
}

// A loop device of the test's own with a canary: no mknod of its numbers in any path the job can
// write, nor its host path, reads or writes it.
TEST_P(DevicesTest, AHostLoopDeviceCannotBeReadOrWrittenThroughMknodInAnyPath) {
  const std::string backing = tmp_ / "loop.img";
  const std::string canary = unique_marker("CANARY");
  std::string data = canary;
  data.resize(1 << 20, '\0');
  write_file(backing, data);
  auto attach = run_command({"losetup", "-f", "--show", backing});
  ASSERT_EQ(attach.status, 0) << attach.err;
  std::string loop = attach.out.substr(0, attach.out.find('\n'));
  struct Detach {
    std::string dev;
    ~Detach() { (void)run_command({"losetup", "-d", dev}); }
  } detach{loop};
  struct stat st;
  ASSERT_EQ(::stat(loop.c_str(), &st), 0) << loop;
  ASSERT_TRUE(S_ISBLK(st.st_mode));
  const std::string nums = fmt::format("{} {}", major(st.st_rdev), minor(st.st_rdev));

  std::string out;
  auto r = job(fmt::format("for d in / /dev /workspace /tmp /dev/shm; do "
                           "  if mknod $d/lp b {0}; then echo MADE $d; head -c 64 $d/lp; "
                           "    echo OVERWRITTEN | dd of=$d/lp conv=notrunc,fsync 2>/dev/null && echo WROTE $d; fi; "
                           "done; if [ -e {1} ]; then head -c 64 {1}; echo OVERWRITTEN > {1} && echo WROTE host; fi; "
                           "echo done",
                           nums, loop),
               out);
  EXPECT_EQ(r.status, 0) << r.out << r.err << out;
  EXPECT_NE(out.find("done"), std::string::npos) << out;
  EXPECT_EQ(out.find(canary), std::string::npos) << "the job read the canary:\n" << out;
  EXPECT_EQ(out.find("WROTE"), std::string::npos) << out;
  // Unchanged in the device (as the host reads it) and in its backing file.
  UniqueFd dev(::open(loop.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(dev.valid()) << loop;
  std::string head(canary.size(), '\0');
  ASSERT_EQ(::pread(dev.get(), head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
  EXPECT_EQ(head, canary);
  EXPECT_EQ(read_file(backing).substr(0, canary.size()), canary);
  expect_nothing_left();
}

// /dev/kmsg (a line in the host's kernel log) and the host's terminals: mknod of their numbers
// in every writable path, and writes to them, fail.
TEST_P(DevicesTest, KmsgAndHostTerminalsCannotBeWrittenThroughMknod) {
  const std::string marker = unique_marker("KMSG");
  std::string tries;
  int terminals = 0;
  for (const char* tty : {"/dev/console", "/dev/tty1", "/dev/ttyS0"}) {
    struct stat st;
    if (::stat(tty, &st) != 0 || !S_ISCHR(st.st_mode)) continue;  // not on this host
    ++terminals;
    tries += fmt::format("{} {} ", major(st.st_rdev), minor(st.st_rdev));
  }
  ASSERT_GE(terminals, 1) << "this host has none of /dev/console, /dev/tty1, /dev/ttyS0";
  std::string out;
  auto r = job(fmt::format("set -- 1 11 {0}; n=0; while [ $# -gt 0 ]; do n=$((n+1)); "
                           "  for d in / /dev /workspace /tmp /dev/shm; do "
                           "    if mknod $d/c$n c $1 $2; then echo '<6>{1}' > $d/c$n && echo WROTE $1:$2 $d; fi; "
                           "  done; shift 2; "
                           "done; if [ -e /dev/kmsg ]; then echo '<6>{1}' > /dev/kmsg && echo WROTE kmsg; fi; echo done",
                           tries, marker),
               out);
  EXPECT_EQ(r.status, 0) << r.out << r.err << out;
  EXPECT_NE(out.find("done"), std::string::npos) << out;
  EXPECT_EQ(out.find("WROTE"), std::string::npos) << out;
  // The marker is not in the host's kernel log (read to its end, non-blocking, as root).
  UniqueFd kmsg(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(kmsg.valid()) << std::strerror(errno);
  std::string log_text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(kmsg.get(), buf, sizeof buf);
    if (n > 0) {
      log_text.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EPIPE) {
      continue;  // a record was overwritten while reading
    } else {
      break;  // EAGAIN: the end
    }
  }
  EXPECT_FALSE(log_text.empty());
  EXPECT_EQ(log_text.find(marker), std::string::npos) << "the job wrote into the host's kernel log";
  expect_nothing_left();
}

// Inside, /dev holds only the standard nodes (and devpts, shm, the links), and they work.
TEST_P(DevicesTest, DevHoldsOnlyTheStandardNodesAndTheyWork) {
  std::string out;
  auto r = job("ls -A /dev | tr '\\n' ' '; echo; "
               "echo x > /dev/null && echo null-ok; head -c 10 /dev/urandom | wc -c; head -c 7 /dev/zero | wc -c; "
               "head -c 3 /dev/random | wc -c; (echo x > /dev/full) 2>&1 | grep -q 'No space' && echo full-ok; "
               "exec 3<>/dev/ptmx && ls /dev/pts | tr '\\n' ' '; echo; mount | grep -c ' on /dev/null ' ",
               out);
  EXPECT_EQ(r.status, 0) << r.out << r.err << out;
  EXPECT_EQ(out,
            "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero \n"
            "null-ok\n10\n7\n3\nfull-ok\n0 ptmx \n1\n");
  expect_nothing_left();
}

INSTANTIATE_TEST_SUITE_P(, DevicesTest, ::testing::Bool(), userns_name);

// The slot's own nodes: a chmod inside is refused, and what differs on disk (a regression, an
// operator) is reset before the next container of that slot starts.
class SlotDevicesTest : public DevicesTest {};

TEST_P(SlotDevicesTest, AChmodInsideChangesNoNodeAndTheNextContainerInTheSlotSeesMode0666) {
  std::string out;
  auto r = job("chmod 0600 /dev/null 2>/dev/null || echo refused; chown 1234 /dev/zero 2>/dev/null || echo refused; "
               "stat -c '%a %u' /dev/null /dev/zero",
               out);
  EXPECT_EQ(r.status, 0) << r.out << r.err << out;
  EXPECT_EQ(out, fmt::format("refused\nrefused\n666 {0}\n666 {0}\n", owner()));
  const std::string node = root() + "/slots/0/dev/null";
  struct stat st;
  ASSERT_EQ(::stat(node.c_str(), &st), 0) << node;
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  // Changed on the host side, as if a chmod inside had got through: reset at the next start.
  ASSERT_EQ(::chmod(node.c_str(), 0600), 0);
  ASSERT_EQ(::chown(node.c_str(), 1234, 1234), 0);
  ASSERT_EQ(::unlink((root() + "/slots/0/dev/zero").c_str()), 0);
  write_file(root() + "/slots/0/dev/zero", "not a device");
  write_file(root() + "/slots/0/dev/empty", "not empty");
  auto again = job("stat -c '%a %u %g %t:%T' /dev/null /dev/zero; wc -c < /proc/keys", out);
  EXPECT_EQ(again.status, 0) << again.out << again.err << out;
  EXPECT_EQ(out, fmt::format("666 {0} {0} 1:3\n666 {0} {0} 1:5\n0\n", owner()));
  expect_nothing_left();
}

INSTANTIATE_TEST_SUITE_P(, SlotDevicesTest, ::testing::Bool(), userns_name);

}  // namespace
}  // namespace sandrun::testing
