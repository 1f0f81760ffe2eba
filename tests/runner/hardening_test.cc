// Hardening end to end, checked from inside real containers with the probe: what a job must
// not be able to do by default, what it holds, and that each relaxation is explicit.
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <sstream>

#include "sandbox/capabilities.h"
#include "tests/runner/cli_fixture.h"
#include "tests/support/rootfs.h"

namespace sandrun::testing {
namespace {

// Docker's 14 capabilities as /proc/PID/status prints them.
constexpr const char* kDefaultCaps = "00000000a80425fb";
constexpr const char* kNoCaps = "0000000000000000";

// Whether `path` is on an ext2/3/4 file system without a journal, from what ext4 says of its
// mount options (a journaled one has a data= mode: ordered, journal or writeback), not through
// sandrun's probe (which reads /sys/fs/ext4/DEV/journal_task): hosts of CI's kind have either.
// nullopt, with `why`, when it cannot tell.
std::optional<bool> ext4_without_journal(const std::string& path, std::string& why) {
  struct statfs sfs;
  struct stat st;
  if (::statfs(path.c_str(), &sfs) < 0 || ::stat(path.c_str(), &st) < 0) {
    why = path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (sfs.f_type != EXT4_SUPER_MAGIC) return false;
  // ext4 names its /proc/fs/ext4 directory after the block device (DEVNAME=vda in its uevent).
  const std::string uevent =
      "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev)) + "/uevent";
  std::istringstream lines(read_file(uevent));
  std::string dev;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("DEVNAME=", 0) == 0) dev = line.substr(8);
  }
  const std::string options = dev.empty() ? "" : read_file("/proc/fs/ext4/" + dev + "/options");
  if (options.empty()) {
    why = "no ext4 options for " + path + " (device " + (dev.empty() ? "not found in " + uevent : dev) + ")";
    return std::nullopt;
  }
  return options.find("\ndata=") == std::string::npos && options.rfind("data=", 0) != 0;
}

class HardeningTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // A busybox image with the probe at /usr/bin/probe and a setuid-root copy of it.
    std::string rootfs = tmp_ / "rootfs";
    ASSERT_EQ(make_busybox_rootfs(rootfs), "");
    ASSERT_EQ(run_command({"cp", rootfs + "/usr/bin/probe", rootfs + "/usr/bin/suid-probe"}).status, 0);
    ASSERT_EQ(::chmod((rootfs + "/usr/bin/suid-probe").c_str(), 04755), 0);
    ASSERT_EQ(import_rootfs(rootfs, "hard:1"), "");
  }

  CommandResult exec(std::vector<std::string> flags, std::vector<std::string> cmd) {
    std::vector<std::string> args = {"exec", "--image", "hard:1"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back("--");
    args.insert(args.end(), cmd.begin(), cmd.end());
    return sandrun(args);
  }

  static std::string field(const std::string& status, const std::string& name) {
    auto pos = status.find(name + ":\t");
    if (pos == std::string::npos) return "";
    pos += name.size() + 2;
    return status.substr(pos, status.find('\n', pos) - pos);
  }
};

TEST_F(HardeningTest, ARootCommandHoldsExactlyDockersCapabilitiesWithNoNewPrivsAndSeccomp) {
  auto r = exec({}, {"probe", "caps"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(field(r.out, "CapInh"), kNoCaps) << r.out;
  EXPECT_EQ(field(r.out, "CapPrm"), kDefaultCaps) << r.out;
  EXPECT_EQ(field(r.out, "CapEff"), kDefaultCaps) << r.out;
  EXPECT_EQ(field(r.out, "CapBnd"), kDefaultCaps) << r.out;
  EXPECT_EQ(field(r.out, "CapAmb"), kNoCaps) << r.out;
  EXPECT_EQ(field(r.out, "NoNewPrivs"), "1") << r.out;
  EXPECT_EQ(field(r.out, "Seccomp"), "2") << r.out;
  expect_nothing_left();
}

TEST_F(HardeningTest, EverythingThatCouldReachTheHostIsRefusedFromInside) {
  auto r = exec({}, {"probe", "try", "mount", "umount", "unshare", "unshare-user", "setns", "keyctl", "bpf",
                     "perf_event_open", "ptrace-init", "ptrace-parent", "reboot", "kexec", "init_module", "x32",
                     "i386", "io_uring", "userfaultfd", "open_by_handle_at", "personality", "read-kcore",
                     "write-proc-sys", "sysrq"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out.find("ALLOWED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mount refused"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("write-proc-sys refused"), std::string::npos) << r.out;
  // Some hosts of CI's kind have no i386 entry (int 0x80 gets SIGSEGV, filter or not): the
  // probe outside any container says which. Where it works, the filter must refuse it (ENOSYS);
  // where not, SeccompAbiTest checks the refusal in ci's VM.
  const auto outside = run_command({probe_bin(), "try", "i386"});
  ASSERT_TRUE(outside.out == "i386 ALLOWED\n" || outside.out == "i386 refused SIGSEGV\n") << outside.out << outside.err;
  const bool i386_entry = outside.out == "i386 ALLOWED\n";
  EXPECT_NE(r.out.find(i386_entry ? "i386 refused ENOSYS\n" : "i386 refused SIGSEGV\n"), std::string::npos) << r.out;
  expect_nothing_left();
}

TEST_F(HardeningTest, AnUnprivilegedUserHasNoCapabilitiesAndSetuidBinariesDoNotHelp) {
  auto ids = exec({"--user", "1000:1000"}, {"probe", "ids"});
  EXPECT_EQ(ids.status, 0) << ids.err;
  EXPECT_EQ(ids.out, "uid=1000 gid=1000 euid=1000 egid=1000\n");
  auto caps = exec({"--user", "1000:1000"}, {"probe", "caps"});
  EXPECT_EQ(field(caps.out, "CapPrm"), kNoCaps) << caps.out;
  EXPECT_EQ(field(caps.out, "CapEff"), kNoCaps) << caps.out;
  EXPECT_EQ(field(caps.out, "CapAmb"), kNoCaps) << caps.out;
  auto suid = exec({"--user", "1000:1000"}, {"suid-probe", "ids"});
  EXPECT_EQ(suid.out, "uid=1000 gid=1000 euid=1000 egid=1000\n") << suid.err;
  // The test can fail: with no_new_privs explicitly off, the setuid bit works again.
  auto relaxed = exec({"--user", "1000:1000", "--security-opt", "no-new-privileges=false"}, {"suid-probe", "ids"});
  EXPECT_EQ(relaxed.out, "uid=1000 gid=1000 euid=0 egid=1000\n") << relaxed.err;
  expect_nothing_left();
}

TEST_F(HardeningTest, ProcAndSysHideWhatLeaksTheHost) {
  // Which of them exist depends on the kernel; each one that does is hidden.
  auto r = exec({}, {"sh", "-c",
                     "for f in /proc/kcore /proc/keys /proc/timer_list /proc/interrupts /proc/sched_debug; do "
                     "  [ -e $f ] && echo \"$f $(wc -c < $f)\"; done; "
                     "for d in /proc/acpi /proc/scsi /sys/firmware; do [ -d $d ] && echo \"$d $(ls -A $d | wc -l)\"; done; "
                     "echo x > /proc/sys/kernel/hostname || echo ro; echo x > /proc/sysrq-trigger || echo ro2"});
  for (const std::string path : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts",
                                 "/proc/sched_debug", "/proc/acpi", "/proc/scsi", "/sys/firmware"}) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      EXPECT_NE(r.out.find(path + " 0\n"), std::string::npos) << path << "\n" << r.out;
    }
  }
  EXPECT_NE(r.out.find("/sys/firmware 0\n"), std::string::npos) << r.out;  // never empty on a host
  EXPECT_NE(r.out.find("ro\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ro2\n"), std::string::npos) << r.out;
  expect_nothing_left();
}

TEST_F(HardeningTest, ReadOnlyRootfsRefusesWritesButTmpAndTheWorkspaceStayWritable) {
  std::string ws = tmp_ / "ws";
  ASSERT_EQ(::mkdir(ws.c_str(), 0755), 0);
  give_to_checkout_owner(ws);
  auto r = exec({"--read-only", "-v", ws + ":/workspace"},
                {"sh", "-c", "touch /x 2>/dev/null || echo rofs; touch /tmp/y && echo tmp; touch /workspace/z && echo ws"});
  EXPECT_EQ(r.out, "rofs\ntmp\nws\n") << r.err;
  expect_nothing_left();
}

// A read-only root has no writable layer: its overlay is the image's layers under a small
// layer of mount points the image lacks (here a volume target three levels deep and the
// working directory), and the image looks the same as with a writable layer.
TEST_F(HardeningTest, AReadOnlyRootNeedsNoWritableLayerAndShowsTheImageUnchanged) {
  std::string ws = tmp_ / "ws";
  ASSERT_EQ(::mkdir(ws.c_str(), 0755), 0);
  give_to_checkout_owner(ws);  // written by the job: not root's (see test_env.h)
  const std::vector<std::string> flags = {"-v", ws + ":/deep/in/ws", "-w", "/deep/in/ws"};
  auto ro_flags = flags;
  ro_flags.push_back("--read-only");
  // "/" gains the new /deep in the writable layer (its mtime becomes the time of the run) and
  // /tmp is a fresh tmpfs: their times depend on when each exec ran, so only their modes and
  // owners are compared; the image's own directories are compared with their times too.
  const std::vector<std::string> look = {
      "sh", "-c", "stat -c '%n %a %u:%g' / /tmp; stat -c '%n %a %u:%g %Y' /etc /usr/bin /deep/in; pwd; touch f && echo ws"};
  auto rw = exec(flags, look);
  auto ro = exec(ro_flags, look);
  ASSERT_EQ(ro.status, 0) << ro.err;
  EXPECT_NE(ro.out.find("/deep/in/ws\nws\n"), std::string::npos) << ro.out;
  // The new directories differ in time; everything the image has is identical.
  auto image_part = [](const std::string& out) { return out.substr(0, out.find("/deep/in ")); };
  EXPECT_EQ(image_part(ro.out), image_part(rw.out));
  auto mounts = exec({"--read-only"}, {"sh", "-c", "grep ' / / ' /proc/self/mountinfo"});
  EXPECT_NE(mounts.out.find(" ro,lowerdir="), std::string::npos) << mounts.out;
  EXPECT_EQ(mounts.out.find("upperdir="), std::string::npos) << mounts.out;
  auto spec = exec({"--read-only", "--dry-run"}, {"true"});
  EXPECT_NE(spec.out.find("\"writable_layer\": false"), std::string::npos) << spec.out;
  EXPECT_NE(exec({"--dry-run"}, {"true"}).out.find("\"writable_layer\": true"), std::string::npos);
  expect_nothing_left();
}

// A writable layer is thrown away with its container, so it is mounted volatile (its end syncs
// nothing), except on an ext4 without a journal, where the write-back pays (plan.cc). The slot's
// work dir is emptied after each container: a volatile overlay cannot be mounted on it again
// otherwise, and here three containers in a row use the same slot.
// Which of the two the state dir (under $TMPDIR) is depends on the host: the expectation comes
// from its superblock; HostFileSystemTest checks sandrun's probe on both kinds on every host.
TEST_F(HardeningTest, AWritableLayerIsVolatileUnlessTheStateDirIsOnAnExt4WithoutAJournal) {
  auto volatile_in = [](const CommandResult& r) { return r.out.find("volatile") != std::string::npos; };
  const std::vector<std::string> look = {"sh", "-c", "grep ' / / ' /proc/self/mountinfo"};
  std::string why;
  const auto without_journal = ext4_without_journal(root(), why);
  ASSERT_TRUE(without_journal.has_value()) << why;
  // As root with loop devices, the writable layer is on its slot's own ext4 without a journal
  // (the disk limit's, sandbox/disk_image.h), whatever the state dir's file system.
  const bool slot_fs = ::access("/dev/loop-control", W_OK) == 0;
  const bool here = !*without_journal && !slot_fs;
  auto mounts = exec({}, look);
  ASSERT_EQ(mounts.status, 0) << mounts.err;
  EXPECT_NE(mounts.out.find("upperdir="), std::string::npos) << mounts.out;
  EXPECT_EQ(volatile_in(mounts), here) << mounts.out;  // 6.1 shows ",volatile", 6.9+ "fsync=volatile"
  const std::string printed = std::string("\"writable_layer_volatile\": ") + (here ? "true" : "false");
  EXPECT_NE(exec({"--dry-run"}, {"true"}).out.find(printed), std::string::npos);

  // On a tmpfs of the test's own, volatile but for the slot's own file system.
  const std::string shm = tmp_ / "shm";
  ASSERT_EQ(::mkdir(shm.c_str(), 0700), 0);
  ASSERT_EQ(::mount("tmpfs", shm.c_str(), "tmpfs", 0, "mode=0700"), 0) << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{shm};
  const std::string shm_root = shm + "/root";
  for (int i = 0; i < 3; ++i) {
    auto r = run_sandrun(shm_root, {"exec", "--", "sh", "-c", "grep ' / / ' /proc/self/mountinfo; echo $0 > /written"});
    ASSERT_EQ(r.status, 0) << "container " << i << ": " << r.err;
    EXPECT_EQ(volatile_in(r), !slot_fs) << r.out;
  }
  EXPECT_EQ(dir_entries(shm_root + "/slots/0/disk/work"), std::vector<std::string>{});
  EXPECT_EQ(dir_entries(shm_root + "/slots/0/disk/upper"), std::vector<std::string>{});
  expect_nothing_left();
}

// cap_add = ["ALL"] is every capability sandrun can grant: up to the kernel's last one, within
// sandrun's own bounding set (a sandrun in a container may lack some: asking the kernel for
// those failed the start with "drop capabilities: Operation not permitted").
TEST_F(HardeningTest, CapAddAllHoldsEveryCapabilitySandrunHolds) {
  const std::string own = field(read_file("/proc/self/status"), "CapBnd");
  ASSERT_EQ(own.size(), 16u);
  auto r = exec({"--cap-add", "ALL"}, {"probe", "caps"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(field(r.out, "CapEff"), own) << r.out;
  EXPECT_EQ(field(r.out, "CapPrm"), own) << r.out;
  EXPECT_EQ(field(r.out, "CapBnd"), own) << r.out;
  auto file = jobs("[jobs.all]\nimage = \"hard:1\"\ncap_add = [\"ALL\"]\nrun = \"grep CapEff /proc/self/status\"\n");
  auto run = sandrun({"run", file, "--progress", "plain"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(log("all").find("CapEff:\t" + own), std::string::npos) << log("all");
  // A capability outside that set is refused before anything starts, at its entry.
  const uint64_t held = std::stoull(own, nullptr, 16);
  const uint64_t last = std::stoull(read_file("/proc/sys/kernel/cap_last_cap"));
  for (uint64_t cap = 0; cap <= last; ++cap) {
    if (held & (uint64_t{1} << cap)) continue;
    const std::string name = sandbox::capability_names(uint64_t{1} << cap).at(0);
    auto missing = exec({"--cap-add", name}, {"true"});
    EXPECT_EQ(missing.status, 125);
    EXPECT_EQ(missing.err.substr(0, missing.err.find('\n')),
              "sandrun: exec: --cap-add: " + name +
                  " is not in sandrun's own capability bounding set on this host, so no container can hold it");
    break;
  }
  expect_nothing_left();
}

TEST_F(HardeningTest, CoreDumpsAreOffAndNofileIsConfigurable) {
  auto r = exec({"--ulimit", "nofile=256:512"}, {"sh", "-c", "ulimit -c; ulimit -n; ulimit -Hn"});
  EXPECT_EQ(r.out, "0\n256\n512\n") << r.err;
  expect_nothing_left();
}

TEST_F(HardeningTest, EachRelaxationIsExplicit) {
  // unshare needs CAP_SYS_ADMIN and a seccomp profile that allows it: both asked for.
  auto r = exec({"--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined"}, {"probe", "try", "unshare"});
  EXPECT_EQ(r.out, "unshare ALLOWED\n") << r.err;
  // Without the capability, seccomp being off is not enough: the kernel refuses.
  auto half = exec({"--security-opt", "seccomp=unconfined"}, {"probe", "try", "unshare"});
  EXPECT_EQ(half.out.rfind("unshare refused", 0), 0u) << half.out;
  auto caps = exec({"--cap-drop", "ALL"}, {"probe", "caps"});
  EXPECT_EQ(field(caps.out, "CapEff"), kNoCaps) << caps.out;
  EXPECT_EQ(field(caps.out, "CapBnd"), kNoCaps) << caps.out;
  auto unconfined = exec({"--security-opt", "seccomp=unconfined"}, {"probe", "caps"});
  EXPECT_EQ(field(unconfined.out, "Seccomp"), "0") << unconfined.out;
  expect_nothing_left();
}

TEST_F(HardeningTest, AnUnknownCapabilityIsAnErrorAtItsPositionBeforeAnyJobStarts) {
  std::string file = jobs("[jobs.unit]\nimage = \"hard:1\"\nrun = \"true\"\ncap_add = [\"CHOWN\", \"NET_ADMN\"]\n");
  auto r = sandrun({"run", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "sandrun: " + file +
                       ":4:21: jobs.unit.cap_add[1]: unknown capability \"NET_ADMN\" (did you mean CAP_NET_ADMIN?)\n");
  auto e = exec({"--cap-drop", "FOO"}, {"true"});
  EXPECT_EQ(e.status, 125);
  EXPECT_EQ(e.err, "sandrun: exec: --cap-drop: unknown capability \"FOO\"\n");
  expect_nothing_left();
}

TEST_F(HardeningTest, ADockerFormatSeccompProfileApplies) {
  write_file(tmp_ / "profile.json", R"json({
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["chmod", "fchmodat", "fchmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
})json");
  auto r = exec({"--security-opt", "seccomp=" + (tmp_ / "profile.json")},
                {"sh", "-c", "chmod 600 /tmp 2>/dev/null && echo changed || echo denied"});
  EXPECT_EQ(r.out, "denied\n") << r.err;
  expect_nothing_left();
}

TEST_F(HardeningTest, DryRunPrintsTheResolvedSpecWithEveryLimitAndHardeningSetting) {
  auto r = exec({"--dry-run", "--memory", "64MiB", "--cpus", "0.5", "--cap-drop", "NET_RAW", "--read-only"},
                {"true"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* want : {"\"memory\": \"64 MiB\"", "\"cpus\": 0.5", "\"pids\": 1024", "\"no_new_privs\": true",
                           "\"read_only_rootfs\": true", "\"CAP_CHOWN\"", "\"/proc/kcore\"", "\"profile\": \"default",
                           "\"core\": 0"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
  EXPECT_EQ(r.out.find("CAP_NET_RAW"), std::string::npos) << r.out;
  expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
