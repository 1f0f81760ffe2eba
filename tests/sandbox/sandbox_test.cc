// Real containers started through the sandbox library: isolation, PID 1, exits, failures.
#include <signal.h>

#include <thread>

#include "sandbox/host_features.h"
#include "sandbox/sys/fs.h"
#include "tests/sandbox/sandbox_harness.h"

namespace sandrun::testing {
namespace {

using sandbox::Outcome;
using namespace std::chrono_literals;

class SandboxTest : public SandboxFixture {};

TEST_F(SandboxTest, RunsCommandAndDeliversStdoutAndStderr) {
  auto r = sh("echo out; echo err >&2; printf no-newline");
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::exited);
  EXPECT_EQ(r.outcome.code, 0);
  EXPECT_EQ(r.out, "out\nno-newline");
  EXPECT_EQ(r.err, "err\n");
}

TEST_F(SandboxTest, InitIsPid1AndTheCommandItsChild) {
  auto r = sh("echo $$ $PPID; cat /proc/1/cmdline | tr '\\0' ' '");
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out, "2 1\nsandrun-init /bin/sh -c echo $$ $PPID; cat /proc/1/cmdline | tr '\\0' ' ' ");
}

TEST_F(SandboxTest, WithoutInitTheCommandIsPid1) {
  auto r = sh("echo $$", /*init=*/false);
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out, "1\n");
}

TEST_F(SandboxTest, SeesNoHostProcess) {
  auto r = sh("ls /proc | grep '^[0-9]' | sort -n | tr '\\n' ' '");
  ASSERT_TRUE(r.started) << r.start_error;
  // PID 1 (init), the shell, and the pipeline's own processes; never host pids.
  for (const char* pid : {"1 ", "2 "}) EXPECT_NE(r.out.find(pid), std::string::npos) << r.out;
  std::istringstream ss(r.out);
  int pid;
  while (ss >> pid) EXPECT_LT(pid, 10) << r.out;
}

TEST_F(SandboxTest, OnlyTheLoopbackInterfaceExistsAndIsUp) {
  auto r = sh("ls /sys/class/net; cat /sys/class/net/lo/operstate; ip -o link | wc -l");
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out, "lo\nunknown\n1\n");
}

TEST_F(SandboxTest, HostnameIsTheJobName) {
  auto s = spec({"/usr/bin/probe", "hostname"});
  s.hostname = "unit-tests";
  auto r = run(s);
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out, "unit-tests\n");
}

TEST_F(SandboxTest, RootIsTheImageAndWritesStayInThePrivateLayer) {
  write_file(tmp_ / "host-marker", "x");
  auto s = spec({"/bin/sh", "-c", "test -e /host-marker && echo LEAK; ls /usr/bin/probe; echo new > /newfile; rm /etc/group"});
  auto r = run(s);
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out, "/usr/bin/probe\n");
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(fs::exists(s.place.upper_dir + "/newfile"));
  EXPECT_FALSE(fs::exists(layer_ + "/newfile"));
  EXPECT_TRUE(fs::exists(layer_ + "/etc/group"));
  // A second container on the same layer sees neither change.
  auto r2 = sh("ls /newfile 2>&1; cat /etc/group | head -1");
  EXPECT_EQ(r2.out, "ls: /newfile: No such file or directory\nroot:x:0:\n");
}

TEST_F(SandboxTest, ProcSysDevAndTmpAreFresh) {
  auto r = sh("grep -E ' /(proc|sys|dev|dev/pts|dev/shm|tmp) ' /proc/self/mountinfo | cut -d' ' -f5,6 | cut -d, -f1;"
              "ls /dev | tr '\\n' ' '; echo; touch /sys/x 2>/dev/null || echo sys-ro");
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out,
            "/proc rw\n/dev rw\n/dev/pts rw\n/dev/shm rw\n/sys ro\n/proc/sys ro\n/tmp rw\n"
            "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero \nsys-ro\n");
}

TEST_F(SandboxTest, TheContainerHasNoControllingTerminal) {
  // Its own session: /dev/tty cannot reach a terminal sandrun was started from.
  auto r = sh("cat /dev/tty 2>&1; echo sid=$(cut -d' ' -f6 /proc/self/stat) pgrp=$(cut -d' ' -f5 /proc/self/stat)");
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "cat: can't open '/dev/tty': No such device or address");
  EXPECT_NE(r.out.find("sid=1 "), std::string::npos) << r.out;
}

TEST_F(SandboxTest, OnlyStdioIsOpenInTheCommand) {
  auto r = run(spec({"/usr/bin/probe", "fds"}));
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out.substr(0, 2), "0 ");
  std::istringstream ss(r.out);
  std::string line;
  int count = 0;
  while (std::getline(ss, line)) ++count;
  EXPECT_EQ(count, 3) << r.out;
}

TEST_F(SandboxTest, WorkspaceBindIsWritableAndReadOnlyBindIsNot) {
  std::string ws = tmp_ / "ws";
  std::string ro = tmp_ / "ro";
  ASSERT_TRUE(fs::mkdirs(ws).ok());
  ASSERT_TRUE(fs::mkdirs(ro).ok());
  auto s = spec({"/bin/sh", "-c", "echo hi > /workspace/out && pwd && touch /data/x 2>/dev/null || echo ro-refused"});
  s.binds = {{ws, "/workspace", false}, {ro, "/srv/data", true}};
  s.binds[1].target = "/data";
  s.workdir = "/workspace";
  auto r = run(s);
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out, "/workspace\nro-refused\n");
  EXPECT_EQ(read_file(ws + "/out"), "hi\n");
  EXPECT_FALSE(fs::exists(ro + "/x"));
}

TEST_F(SandboxTest, ACopyOnWriteVolumeIsWritableAndLeavesItsSourceAlone) {
  std::string src = tmp_ / "src";
  ASSERT_TRUE(fs::mkdirs(src + "/sub").ok());
  write_file(src + "/sub/f", "host\n");
  ASSERT_TRUE(fs::mkdirs(tmp_ / "ws-upper").ok());
  ASSERT_TRUE(fs::mkdirs(tmp_ / "ws-work").ok());
  auto s = spec({"/bin/sh", "-c", "cat sub/f; echo box > sub/f; rm -r sub; echo new > n; ls"});
  s.binds = {{src, "/workspace"}};
  s.binds[0].copy_on_write = true;
  s.place.cow_layers = {{tmp_ / "ws-upper", tmp_ / "ws-work"}};
  s.workdir = "/workspace";
  auto r = run(s);
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_TRUE(r.outcome.ok()) << r.err << (r.outcome.error ? r.outcome.error->message() : "");
  EXPECT_EQ(r.out, "host\nn\n");
  EXPECT_EQ(read_file(src + "/sub/f"), "host\n");
  EXPECT_FALSE(fs::exists(src + "/n"));
  EXPECT_EQ(read_file(tmp_ / "ws-upper/n"), "new\n");
}

// overlayfs wants the upper and work dirs on one file system: the child's failure record is
// rendered naming the volume.
TEST_F(SandboxTest, ACopyOnWriteVolumeThatCannotBeMountedIsNamedInTheError) {
  SANDRUN_REQUIRE(fs::is_dir("/dev/shm"), "needs /dev/shm");
  std::string work = "/dev/shm/sandrun-test-work-" + std::to_string(::getpid());
  ASSERT_TRUE(fs::mkdirs(work).ok());
  std::string src = tmp_ / "src2";
  ASSERT_TRUE(fs::mkdirs(src).ok());
  ASSERT_TRUE(fs::mkdirs(tmp_ / "up2").ok());
  auto s = spec({"/bin/true"});
  s.binds = {{src, "/workspace"}};
  s.binds[0].copy_on_write = true;
  s.place.cow_layers = {{tmp_ / "up2", work}};
  auto r = run(s);
  (void)fs::remove_tree(work);
  ASSERT_TRUE(r.started) << r.start_error;
  ASSERT_EQ(r.outcome.kind, Outcome::Kind::setup_failed);
  ASSERT_TRUE(r.outcome.error);
  EXPECT_NE(r.outcome.error->message().find("mount copy-on-write overlay of " + src + " on /workspace: "),
            std::string::npos)
      << r.outcome.error->message();
}

TEST_F(SandboxTest, MissingWorkdirIsCreated) {
  auto s = spec({"/bin/pwd"});
  s.workdir = "/a/b/c";
  auto r = run(s);
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out, "/a/b/c\n");
}

TEST_F(SandboxTest, ExitCodeIsPreserved) {
  for (bool init : {true, false}) {
    auto r = sh("exit 3", init);
    EXPECT_EQ(r.outcome.kind, Outcome::Kind::exited) << init;
    EXPECT_EQ(r.outcome.code, 3) << init;
  }
}

TEST_F(SandboxTest, DeathBySignalIsReportedAsTheSignal) {
  for (bool init : {true, false}) {
    auto s = spec({"/usr/bin/probe", "segv"});
    s.init = init;
    auto r = run(s);
    EXPECT_EQ(r.outcome.kind, Outcome::Kind::signaled) << init;
    EXPECT_EQ(r.outcome.signal, SIGSEGV) << init;
    EXPECT_EQ(sandbox::signal_name(r.outcome.signal), "SIGSEGV");
  }
}

TEST_F(SandboxTest, MissingCommandIsAClearError) {
  for (bool init : {true, false}) {
    auto s = spec({"no-such-command", "x"});
    s.init = init;
    auto r = run(s);
    ASSERT_TRUE(r.started) << r.start_error;
    EXPECT_EQ(r.outcome.kind, Outcome::Kind::exec_failed) << init;
    ASSERT_TRUE(r.outcome.error.has_value());
    EXPECT_EQ(r.outcome.error->message(), "command not found: \"no-such-command\"");
  }
}

TEST_F(SandboxTest, SetupFailureNamesTheStageAndPath) {
  auto s = spec({"/bin/true"});
  s.lower_dirs = {tmp_ / "no-such-layer"};
  auto r = run(s);
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::setup_failed);
  ASSERT_TRUE(r.outcome.error.has_value());
  EXPECT_EQ(r.outcome.error->message(),
            "sandbox setup failed: mount overlay on " + s.place.root_dir + ": No such file or directory");
}

TEST_F(SandboxTest, SymlinkedProcInTheImageIsRefused) {
  ASSERT_EQ(::rmdir((layer_ + "/proc").c_str()), 0);
  ASSERT_EQ(::symlink("/tmp", (layer_ + "/proc").c_str()), 0);
  auto r = sh("true");
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::setup_failed);
  ASSERT_TRUE(r.outcome.error.has_value());
  EXPECT_EQ(r.outcome.error->message(), "sandbox setup failed: mount /proc: Too many levels of symbolic links");
}

TEST_F(SandboxTest, KillEndsTheWholeTree) {
  auto s = spec({"/bin/sh", "-c", "sleep 86396 & sleep 86392"});
  auto r = run(s, SIGKILL, 300ms);
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::signaled);
  EXPECT_EQ(r.outcome.signal, SIGKILL);
  EXPECT_FALSE(host_has_process({"sleep", "86396"}));
  EXPECT_FALSE(host_has_process({"sleep", "86392"}));
}

TEST_F(SandboxTest, InitForwardsSigterm) {
  auto s = spec({"/bin/sh", "-c", "trap 'echo got-term; exit 42' TERM; while :; do sleep 0.05; done"});
  auto r = run(s, SIGTERM, 300ms);
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::exited);
  EXPECT_EQ(r.outcome.code, 42);
  EXPECT_EQ(r.out, "got-term\n");
}

TEST_F(SandboxTest, InitReapsOrphanedZombies) {
  auto r = sh("(sleep 0.1 &); (sleep 0.1 &); sleep 0.5; grep -h '^State' /proc/[0-9]*/status | sort | uniq -c | grep -c zombie");
  EXPECT_EQ(r.out, "0\n");
}

TEST_F(SandboxTest, WhenTheCommandExitsEverythingElseDies) {
  auto r = sh("sleep 86393 & echo started");
  EXPECT_EQ(r.out, "started\n");
  EXPECT_LT(r.elapsed, 15s);  // the sleep would last a day; a loaded machine starts slowly
  EXPECT_FALSE(host_has_process({"sleep", "86393"}));
}

TEST_F(SandboxTest, NothingIsMountedOnTheHost) {
  auto r = sh("true");
  EXPECT_EQ(r.outcome.code, 0);
  EXPECT_TRUE(mounts_under(tmp_.path()).empty());
}

TEST_F(SandboxTest, ParallelContainersAreIsolatedFromEachOther) {
  auto a = spec({"/bin/sh", "-c", "echo a > /mine; sleep 0.5; ls /proc | grep -c '^[0-9]'; cat /mine"});
  auto b = spec({"/bin/sh", "-c", "echo b > /mine; sleep 0.5; ls /proc | grep -c '^[0-9]'; cat /mine"});
  SandboxRun ra, rb;
  std::thread t([&] { ra = run(a); });
  rb = run(b);
  t.join();
  EXPECT_EQ(ra.out.substr(ra.out.size() - 2), "a\n");
  EXPECT_EQ(rb.out.substr(rb.out.size() - 2), "b\n");
}

// Whether writable layers are mounted volatile depends on this probe (ContainerPlan::volatile_upper):
// checked on real file systems of the test's own, loop-mounted from image files.
TEST(HostFileSystemTest, AnExt4WithoutAJournalIsToldApartFromAJournaledOneAndFromTmpfs) {
  SANDRUN_REQUIRE_ROOT();
  TempDir tmp;
  auto mount_ext4 = [&](const std::string& name, const std::string& features) -> std::string {
    const std::string image = tmp / (name + ".img"), dir = tmp / name;
    EXPECT_EQ(run_command({"truncate", "-s", "16M", image}).status, 0);
    auto mkfs = run_command({"mkfs.ext4", "-q", "-F", "-O", features, image});
    EXPECT_EQ(mkfs.status, 0) << mkfs.err;
    EXPECT_EQ(::mkdir(dir.c_str(), 0755), 0);
    auto mnt = run_command({"mount", "-o", "loop", image, dir});
    EXPECT_EQ(mnt.status, 0) << mnt.err;
    return dir;
  };
  const std::string without = mount_ext4("nojournal", "^has_journal");
  const std::string with = mount_ext4("journal", "has_journal");
  EXPECT_TRUE(sandbox::host::on_ext4_without_journal(without));
  EXPECT_FALSE(sandbox::host::on_ext4_without_journal(with));
  EXPECT_TRUE(sandbox::host::probe_state_dir(without + "/state").ext4_without_journal);
  EXPECT_FALSE(sandbox::host::on_ext4_without_journal("/dev/shm"));
  EXPECT_FALSE(sandbox::host::on_ext4_without_journal(tmp / "missing"));
  for (const auto& dir : {without, with}) EXPECT_EQ(run_command({"umount", "-d", dir}).status, 0);
}

}  // namespace
}  // namespace sandrun::testing
