// sandrun-init's hold mode (ContainerPlan::hold_after_exit): after the command, nothing runs but
// init, whose mount namespace stays readable until SIGKILL; kStopAndHoldSignal does it early.
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sys/fs.h"
#include "tests/sandbox/sandbox_harness.h"

namespace sandrun::testing {
namespace {

class InitHoldTest : public SandboxFixture {
 protected:
  // Reads status records until `exited` (or 10 s pass); returns them all.
  std::vector<sandbox::StatusRecord> until_exited(int status_fd) {
    sandbox::StatusDecoder dec;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!dec.exited() && std::chrono::steady_clock::now() < deadline) {
      struct pollfd p = {status_fd, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) continue;
      char buf[256];
      ssize_t n = ::read(status_fd, buf, sizeof buf);
      if (n <= 0) break;
      dec.feed(buf, static_cast<size_t>(n));
    }
    EXPECT_TRUE(dec.exited());
    return dec.records();
  }
  static bool alive_after(int pidfd, int ms) {
    struct pollfd p = {pidfd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 0;
  }
  static std::string read_in_container(pid_t pid, const std::string& path) {
    auto root = fs::open_path(fmt::format("/proc/{}/root", pid), O_PATH | O_DIRECTORY);
    if (!root) return "(no root)";
    auto f = fs::open_beneath(root->get(), path, O_RDONLY, RESOLVE_IN_ROOT);
    if (!f) return "(" + f.error().message() + ")";
    auto text = fs::read_fd(f->get());
    return text ? *text : "(unreadable)";
  }
};

TEST_F(InitHoldTest, AfterTheCommandEverythingElseIsKilledAndTheFilesStayUntilSigkill) {
  auto s = spec({"/bin/sh", "-c", "echo data > /tmp/f; sleep 86434 & exit 5"});
  s.init = false;  // hold_after_exit runs init anyway
  s.hold_after_exit = true;
  auto sb = sandbox::Sandbox::start(s, s.place);
  ASSERT_TRUE(sb) << sb.error().message();
  UniqueFd status = sb->take_status();
  auto records = until_exited(status.get());
  EXPECT_TRUE(alive_after(sb->pidfd(), 300));
  EXPECT_FALSE(host_has_process({"sleep", "86434"}));
  EXPECT_EQ(read_in_container(sb->pid(), "/tmp/f"), "data\n");  // the container's tmpfs
  ASSERT_TRUE(sb->signal(SIGTERM));
  EXPECT_TRUE(alive_after(sb->pidfd(), 300)) << "a holding init ignores SIGTERM";
  ASSERT_TRUE(sb->signal(SIGKILL));
  auto ws = sb->wait();
  ASSERT_TRUE(ws);
  auto outcome = sandbox::interpret(s, s.place, records, *ws);
  EXPECT_EQ(outcome.kind, sandbox::Outcome::Kind::exited);
  EXPECT_EQ(outcome.code, 5);
}

TEST_F(InitHoldTest, StopAndHoldEndsTheCommandReportsSigkillAndHolds) {
  auto s = spec({"/bin/sh", "-c", "echo x > /tmp/g; echo ready; exec sleep 86435"});
  s.hold_after_exit = true;
  auto sb = sandbox::Sandbox::start(s, s.place);
  ASSERT_TRUE(sb) << sb.error().message();
  UniqueFd out = sb->take_stdout();
  UniqueFd status = sb->take_status();
  char buf[16];
  ASSERT_EQ(::read(out.get(), buf, 6), 6);  // "ready\n": the file is written
  ASSERT_TRUE(sb->signal(sandbox::kStopAndHoldSignal));
  auto records = until_exited(status.get());
  EXPECT_TRUE(alive_after(sb->pidfd(), 300));
  EXPECT_FALSE(host_has_process({"sleep", "86435"}));
  EXPECT_EQ(read_in_container(sb->pid(), "/tmp/g"), "x\n");
  ASSERT_TRUE(sb->signal(SIGKILL));
  auto ws = sb->wait();
  ASSERT_TRUE(ws);
  auto outcome = sandbox::interpret(s, s.place, records, *ws);
  EXPECT_EQ(outcome.kind, sandbox::Outcome::Kind::signaled);
  EXPECT_EQ(outcome.signal, SIGKILL);
}

TEST_F(InitHoldTest, WithoutHoldInitExitsWithTheCommandAsBefore) {
  auto s = spec({"/bin/sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 4"});
  auto r = run(s);
  EXPECT_EQ(r.out, "sandrun-init /bin/sh -c cat /proc/1/cmdline | tr '\\0' ' '; exit 4 ");
  EXPECT_EQ(r.outcome.code, 4);
}

}  // namespace
}  // namespace sandrun::testing
