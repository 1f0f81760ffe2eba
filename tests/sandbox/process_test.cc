// sys::Child and sys::spawn: exit codes, killing and reaping on destruction, the fds a child
// gets, signals after the end, and process groups.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/process.h"
#include "sandbox/sys/syscalls.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {
namespace {

// No child of this process is left, reaped or not.
void expect_no_children() {
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

struct Pipe {
  UniqueFd read, write;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
};

sys::SpawnOptions sh(const std::string& script) {
  sys::SpawnOptions o;
  o.path = "/bin/sh";
  o.args = {"sh", "-c", script};
  return o;
}

bool readable_within(int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

TEST(ProcessTest, SpawnAndWaitGiveTheExitCode) {
  auto child = sys::spawn(sh("exit 7"));
  ASSERT_TRUE(child) << child.error().message();
  EXPECT_FALSE(child->reaped());
  auto status = child->wait();
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 7);
  EXPECT_TRUE(child->reaped());
  expect_no_children();
}

TEST(ProcessTest, TryReapIsEmptyWhileRunningAndGivesTheStatusAfterTheExit) {
  Pipe go;
  auto o = sh("read x; exit 3");
  o.stdin_fd = go.read.get();
  auto child = sys::spawn(o);
  ASSERT_TRUE(child) << child.error().message();
  auto early = child->try_reap();
  ASSERT_TRUE(early);
  EXPECT_FALSE(early->has_value());
  ASSERT_EQ(::write(go.write.get(), "\n", 1), 1);
  ASSERT_TRUE(readable_within(child->pidfd(), 10000));
  auto late = child->try_reap();
  ASSERT_TRUE(late) << late.error().message();
  ASSERT_TRUE(late->has_value());
  EXPECT_EQ(WEXITSTATUS(**late), 3);
  expect_no_children();
}

TEST(ProcessTest, TheDestructorKillsAndReapsARunningChild) {
  pid_t pid = -1;
  UniqueFd watch;
  {
    auto child = sys::spawn(sh("exec sleep 1000"));
    ASSERT_TRUE(child) << child.error().message();
    pid = child->pid();
    watch.reset(sys::pidfd_open(pid));
    ASSERT_TRUE(watch);
  }
  // Reaped: the pid is no child of ours any more, and the process is gone.
  siginfo_t info = {};
  errno = 0;
  EXPECT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_TRUE(readable_within(watch.get(), 0));
  EXPECT_EQ(sys::pidfd_send_signal(watch.get(), 0), -1);
  EXPECT_EQ(errno, ESRCH);
  expect_no_children();
}

TEST(ProcessTest, ExtraFdsArriveAtTheirNumbersAndNoOtherFdLeaks) {
  TempDir dir;
  write_file(dir / "kept", "");
  UniqueFd kept(::open((dir / "kept").c_str(), O_RDONLY | O_CLOEXEC));
  // Opened without O_CLOEXEC, as another thread might: it must not reach the child either.
  UniqueFd stray(::open((dir / "stray").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_TRUE(kept && stray);
  UniqueFd out(::memfd_create("process-test", MFD_CLOEXEC));
  sys::SpawnOptions o;
  o.path = probe_bin();
  o.args = {"probe", "fds"};
  o.stdout_fd = out.get();
  o.keep = {{kept.get(), 5}};
  auto child = sys::spawn(o);
  ASSERT_TRUE(child) << child.error().message();
  auto status = child->wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0);
  ::lseek(out.get(), 0, SEEK_SET);
  auto text = fs::read_fd(out.get());
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "0 /dev/null\n1 /memfd:process-test (deleted)\n2 /dev/null\n5 " + (dir / "kept") + "\n");
}

TEST(ProcessTest, ABareNameIsSearchedInTheGivenDirectories) {
  sys::SpawnOptions o;
  o.path = "true";
  o.args = {"true"};
  o.search = "relative/dir:/nonexistent:/usr/bin:/bin";
  auto child = sys::spawn(o);
  ASSERT_TRUE(child) << child.error().message();
  auto status = child->wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0);
}

TEST(ProcessTest, AProgramThatCannotRunIsAnErrorNamingItAndLeavesNoChild) {
  sys::SpawnOptions o;
  o.path = "/nonexistent/helper";
  o.args = {"helper"};
  auto child = sys::spawn(o);
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().code(), ENOENT);
  EXPECT_EQ(child.error().message(), "run /nonexistent/helper: No such file or directory");
  expect_no_children();
}

TEST(ProcessTest, TheEnvironmentIsOnlyAPathUnlessGiven) {
  ::setenv("SANDRUN_PROCESS_TEST_SECRET", "1", 1);
  for (bool given : {false, true}) {
    UniqueFd out(::memfd_create("env", MFD_CLOEXEC));
    auto o = sh("env | sort");
    if (given) o.env = std::vector<std::string>{"A=b"};
    o.stdout_fd = out.get();
    auto child = sys::spawn(o);
    ASSERT_TRUE(child) << child.error().message();
    ASSERT_TRUE(child->wait());
    ::lseek(out.get(), 0, SEEK_SET);
    auto text = fs::read_fd(out.get());
    ASSERT_TRUE(text);
    // dash adds PWD; nothing of ours arrives.
    EXPECT_EQ(*text, given ? "A=b\nPWD=" + fs::absolute(".") + "\n"
                           : "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nPWD=" +
                                 fs::absolute(".") + "\n");
  }
  ::unsetenv("SANDRUN_PROCESS_TEST_SECRET");
}

TEST(ProcessTest, SignalsStartWithTheirDefaults) {
  // Ignored here, default in the child: SIGTERM ends it.
  struct sigaction ign = {}, old = {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGTERM, &ign, &old);
  auto child = sys::spawn(sh("exec sleep 1000"));
  ::sigaction(SIGTERM, &old, nullptr);
  ASSERT_TRUE(child) << child.error().message();
  ASSERT_TRUE(child->signal(SIGTERM));
  auto status = child->wait();
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFSIGNALED(*status));
  EXPECT_EQ(WTERMSIG(*status), SIGTERM);
}

TEST(ProcessTest, ASignalAfterTheExitIsNoError) {
  auto child = sys::spawn(sh("exit 0"));
  ASSERT_TRUE(child) << child.error().message();
  ASSERT_TRUE(readable_within(child->pidfd(), 10000));
  EXPECT_TRUE(child->signal(SIGTERM));  // exited, not yet reaped
  ASSERT_TRUE(child->wait());
  EXPECT_TRUE(child->signal(SIGKILL));  // reaped
  auto again = child->wait();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message(), "/bin/sh (pid " + std::to_string(child->pid()) + ") already reaped");
}

TEST(ProcessTest, KillingTheGroupReachesAGrandchild) {
  Pipe out;
  auto o = sh("sleep 1000 & echo $!; wait");
  o.stdout_fd = out.write.get();
  o.own_process_group = true;
  UniqueFd grandchild;
  {
    auto child = sys::spawn(o);
    ASSERT_TRUE(child) << child.error().message();
    out.write.reset();
    char buf[32] = {};
    ASSERT_GT(::read(out.read.get(), buf, sizeof buf - 1), 0);
    grandchild.reset(sys::pidfd_open(std::stoi(buf)));
    ASSERT_TRUE(grandchild);
    EXPECT_EQ(::getpgid(std::stoi(buf)), child->pid());
  }
  EXPECT_TRUE(readable_within(grandchild.get(), 10000));
  expect_no_children();
}

TEST(ProcessTest, AForkedChildIsAdoptedAndReaped) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(5);
  ASSERT_GT(pid, 0);
  sys::Child child = sys::Child::adopt_forked(pid, "a forked child");
  EXPECT_GE(child.pidfd(), 0);
  auto status = child.wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(WEXITSTATUS(*status), 5);
  expect_no_children();
}

TEST(ProcessTest, AReleasedChildIsLeftAlone) {
  auto child = sys::spawn(sh("exit 4"));
  ASSERT_TRUE(child) << child.error().message();
  const pid_t pid = child->pid();
  UniqueFd pidfd = child->release();
  EXPECT_TRUE(child->reaped());
  *child = sys::Child();  // destroys nothing: the child is no longer its
  siginfo_t info = {};
  ASSERT_EQ(::waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &info, WEXITED), 0);
  EXPECT_EQ(info.si_pid, pid);
  EXPECT_EQ(info.si_status, 4);
}

}  // namespace
}  // namespace sandrun::testing
