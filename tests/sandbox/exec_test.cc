// Exec: a new process in a running container (sandbox/exec.h), and the container's own stdin
// pipe and terminal (Placement::stdin_pipe, Placement::tty), through the library, for real.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "sandbox/cgroup.h"
#include "sandbox/exec.h"
#include "sandbox/seccomp_filter.h"
#include "sandbox/userns.h"
#include "tests/sandbox/sandbox_harness.h"

namespace sandrun::testing {
namespace {

using sandbox::Exec;
using sandbox::ExecSpec;
using sandbox::Outcome;

size_t open_fds() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (struct dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

// Reads `fd` until `until` is in what was read (empty: until end-of-file or EIO, a terminal's
// end) or 10 s passed.
std::string read_until(int fd, const std::string& until = "") {
  std::string got;
  struct pollfd p = {fd, POLLIN, 0};
  while (::poll(&p, 1, 10000) > 0) {
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    if (!until.empty() && got.find(until) != std::string::npos) break;
  }
  return got;
}

struct ExecRun {
  bool started = false;
  std::string start_error;
  Outcome outcome;
  std::string out, err;
  pid_t pid = -1;
};

class ExecTest : public SandboxFixture {
 protected:
  void TearDown() override {
    if (box_) {
      (void)box_->signal(SIGKILL);
      (void)box_->wait();
    }
  }
  // Starts a container whose command prints "ready" and sleeps; returns once it is ready.
  void start(TestPlan s, const sandbox::cgroup::Group* group = nullptr) {
    plan_ = std::move(s);
    auto sb = sandbox::Sandbox::start(plan_, plan_.place, group);
    ASSERT_TRUE(sb.ok()) << sb.error().render();
    box_.emplace(std::move(*sb));
    out_ = box_->take_stdout();
    first_ = read_until(out_.get(), "ready\n");
    ASSERT_NE(first_.find("ready\n"), std::string::npos) << first_;
  }
  sandbox::ExecTarget target(const sandbox::cgroup::Group* group = nullptr) {
    sandbox::ExecTarget t{box_->pid(), box_->pidfd(), -1, {}, {}};
    if (group) {
      t.cgroup_dir_fd = group->clone_into_fd();
      if (t.cgroup_dir_fd < 0) t.cgroup_procs = group->procs_fds();
    }
    return t;
  }
  // Runs an exec to its end: `input` to its stdin (then end-of-file) when given.
  ExecRun exec(ExecSpec spec, const std::string& input = "", const sandbox::cgroup::Group* group = nullptr) {
    ExecRun r;
    auto ex = Exec::start(plan_, target(group), spec);
    if (!ex) {
      r.start_error = ex.error().render();
      return r;
    }
    r.started = true;
    r.pid = ex->pid();
    UniqueFd in = ex->take_stdin();
    if (in) {
      EXPECT_EQ(::write(in.get(), input.data(), input.size()), static_cast<ssize_t>(input.size()));
      in.reset();
    }
    UniqueFd out = spec.tty ? ex->take_terminal() : ex->take_stdout();
    UniqueFd err = ex->take_stderr();
    UniqueFd status = ex->take_status();
    r.out = read_until(out.get());
    if (err) r.err = read_until(err.get());
    std::string records = read_until(status.get());
    sandbox::StatusDecoder dec;
    dec.feed(records.data(), records.size());
    auto ws = ex->wait();
    EXPECT_TRUE(ws.ok());
    r.outcome = sandbox::interpret_exec(plan_, spec, dec.records(), ws.ok() ? *ws : 0);
    return r;
  }
  ExecSpec sh(const std::string& script) {
    ExecSpec s;
    s.argv = {"/bin/sh", "-c", script};
    return s;
  }

  TestPlan plan_;
  std::optional<sandbox::Sandbox> box_;
  UniqueFd out_;
  std::string first_;
};

TEST_F(ExecTest, SeesTheContainersProcessesFilesHostnameAndNamespaces) {
  // "ready" once sleep runs (as sleep: after its exec), so that the exec finds it by name.
  start(spec({"/bin/sh", "-c",
              "echo written-by-pid1 > /tmp/marker; sleep 60 & until pidof sleep >/dev/null; do :; done; "
              "echo ready; wait"}));
  const size_t fds_before = open_fds();
  // PID 1 (sandrun-init) is not dumpable: its namespaces are compared through its command's.
  auto r = exec(sh("cat /tmp/marker; hostname; pidof sleep | wc -w; s=$(pidof sleep); "
                   "for ns in mnt pid net uts ipc cgroup; do "
                   "[ $(readlink /proc/$s/ns/$ns) = $(readlink /proc/self/ns/$ns) ] && echo same-$ns; done; echo pid=$$"));
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_TRUE(r.outcome.ok()) << (r.outcome.error ? r.outcome.error->render() : r.err);
  EXPECT_EQ(r.out.substr(0, r.out.find("pid=")),
            "written-by-pid1\ntest\n1\nsame-mnt\nsame-pid\nsame-net\nsame-uts\nsame-ipc\nsame-cgroup\n");
  // A member of the container's PID namespace: a small pid there, not the host's.
  const int inner = std::stoi(r.out.substr(r.out.find("pid=") + 4));
  EXPECT_GT(inner, 1);
  EXPECT_NE(inner, r.pid);
  EXPECT_EQ(open_fds(), fds_before);
  EXPECT_EQ(::kill(r.pid, 0), -1);  // reaped: nothing of it left
}

TEST_F(ExecTest, GetsTheFirstProcesssSeccompCapabilitiesAndNoNewPrivs) {
  auto s = spec({"/bin/sh", "-c", "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; echo ready; exec sleep 60"});
  s.hardening.capabilities = sandbox::kDefaultCapabilities & ~(1ULL << CAP_NET_RAW);
  auto filter = sandbox::compile_default_seccomp(s.hardening.capabilities);
  ASSERT_TRUE(filter.ok()) << filter.error().render();
  s.hardening.seccomp = *filter;
  start(s);
  auto r = exec(sh("grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; echo ready"));
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out, first_);
  EXPECT_NE(first_.find("Seccomp:\t2"), std::string::npos) << first_;
  EXPECT_NE(first_.find("NoNewPrivs:\t1"), std::string::npos) << first_;
  EXPECT_NE(first_.find(fmt::format("CapBnd:\t{:016x}", s.hardening.capabilities)), std::string::npos) << first_;
  // Another user: what a non-root first process would get (nothing).
  ExecSpec as_user = sh("grep -E '^Cap(Prm|Eff|Inh|Amb)' /proc/self/status | cut -f2 | sort -u; id -u; id -g");
  as_user.user = ExecSpec::Ids{1000, 1001, {}};
  auto u = exec(as_user);
  EXPECT_EQ(u.out, "0000000000000000\n1000\n1001\n");
}

TEST_F(ExecTest, LandsInTheContainersCgroup) {
  auto backend = sandbox::cgroup::Backend::detect();
  SANDRUN_REQUIRE(backend.ok(), "no cgroups here");
  const std::string run_name = fmt::format("exec-test-{}", ::getpid());
  auto group = (*backend)->create(run_name, "c", {{}, {}, uint64_t{64}, {}});
  ASSERT_TRUE(group.ok()) << group.error().render();
  start(spec({"/bin/sh", "-c", "echo ready; exec sleep 60"}), group->get());
  auto ex = Exec::start(plan_, target(group->get()), sh("echo in; exec sleep 60"));
  ASSERT_TRUE(ex.ok()) << ex.error().render();
  UniqueFd out = ex->take_stdout();
  EXPECT_EQ(read_until(out.get(), "in\n"), "in\n");
  auto procs = (*group)->procs();
  ASSERT_TRUE(procs.ok());
  EXPECT_NE(std::find(procs->begin(), procs->end(), ex->pid()), procs->end());
  ASSERT_TRUE(ex->signal(SIGKILL).ok());
  auto ws = ex->wait();
  ASSERT_TRUE(ws.ok());
  EXPECT_TRUE(WIFSIGNALED(*ws));
  (void)box_->signal(SIGKILL);
  (void)box_->wait();
  box_.reset();
  group->reset();
  EXPECT_TRUE((*backend)->remove_run(run_name).ok());
}

TEST_F(ExecTest, ExitCodeEnvironmentWorkdirAndUserOverrides) {
  auto s = spec({"/bin/sh", "-c", "echo ready; exec sleep 60"});
  s.env.push_back("FROM_PLAN=plan");
  s.env.push_back("REPLACED=old");
  s.workdir = "/tmp";
  start(s);
  auto code = exec(sh("exit 7"));
  EXPECT_EQ(code.outcome.kind, Outcome::Kind::exited);
  EXPECT_EQ(code.outcome.code, 7);
  auto plain = exec(sh("pwd; id -u; echo $FROM_PLAN $REPLACED"));
  EXPECT_EQ(plain.out, "/tmp\n0\nplan old\n");
  ExecSpec over = sh("pwd; id -u; id -g; echo $FROM_PLAN $REPLACED $EXTRA");
  over.workdir = "/etc";
  over.env = {"REPLACED=new", "EXTRA=x"};
  over.user = ExecSpec::Ids{1234, 5678, {}};
  auto o = exec(over);
  EXPECT_EQ(o.out, "/etc\n1234\n5678\nplan new x\n");
  // ".." never leaves the container's root.
  ExecSpec up = sh("pwd; ls /bin/busybox");
  up.workdir = "/../../../..";
  auto u = exec(up);
  EXPECT_EQ(u.out, "/\n/bin/busybox\n");
  auto killed = exec(sh("kill -TERM $$"));
  EXPECT_EQ(killed.outcome.kind, Outcome::Kind::signaled);
  EXPECT_EQ(killed.outcome.signal, SIGTERM);
}

TEST_F(ExecTest, FailuresNameTheCommandAndTheWorkdir) {
  start(spec({"/bin/sh", "-c", "echo ready; exec sleep 60"}));
  ExecSpec missing;
  missing.argv = {"no-such-command"};
  auto m = exec(missing);
  ASSERT_TRUE(m.started);
  EXPECT_EQ(m.outcome.kind, Outcome::Kind::exec_failed);
  EXPECT_EQ(m.outcome.code, 127);
  ASSERT_TRUE(m.outcome.error);
  EXPECT_EQ(m.outcome.error->message(), "exec in container \"test\": command not found: \"no-such-command\"");
  ExecSpec wd = sh("true");
  wd.workdir = "/no/such/dir";
  auto w = exec(wd);
  EXPECT_EQ(w.outcome.kind, Outcome::Kind::setup_failed);
  ASSERT_TRUE(w.outcome.error);
  EXPECT_EQ(w.outcome.error->message(),
            "exec in container \"test\": working directory /no/such/dir: No such file or directory");
  ExecSpec rel = sh("true");
  rel.workdir = "tmp";
  auto bad = Exec::start(plan_, target(), rel);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "the exec's working directory \"tmp\" is not an absolute path");
  // The container gone: a clear error, nothing cloned.
  (void)box_->signal(SIGKILL);
  (void)box_->wait();
  auto gone = Exec::start(plan_, target(), sh("true"));
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.error().message().find("is not running"), std::string::npos) << gone.error().message();
  box_.reset();
}

TEST_F(ExecTest, InAUserNamespacedContainerItHasNoHostPrivilege) {
  SANDRUN_REQUIRE(sandbox::userns::probe().ok(), "user namespaces are not available");
  auto s = spec({"/bin/sh", "-c", "echo ready; exec sleep 60"});
  s.userns = sandbox::userns::remapped_root("", "");
  s.hardening.capabilities |= 1ULL << CAP_SYS_NICE;
  start(s);
  auto ex = Exec::start(plan_, target(), sh("id -u; echo up; exec sleep 60"));
  ASSERT_TRUE(ex.ok()) << ex.error().render();
  UniqueFd out = ex->take_stdout();
  EXPECT_EQ(read_until(out.get(), "up\n"), "0\nup\n");
  // The host sees the remapped uid, and the process is in the container's user namespace.
  const std::string status = read_file(fmt::format("/proc/{}/status", ex->pid()));
  const uint32_t host = sandbox::userns::kDefaultRangeStart;
  EXPECT_NE(status.find(fmt::format("Uid:\t{0}\t{0}\t{0}\t{0}", host)), std::string::npos) << status;
  char a[64] = {}, b[64] = {}, h[64] = {};
  ASSERT_GT(::readlink(fmt::format("/proc/{}/ns/user", ex->pid()).c_str(), a, sizeof a - 1), 0);
  ASSERT_GT(::readlink(fmt::format("/proc/{}/ns/user", box_->pid()).c_str(), b, sizeof b - 1), 0);
  ASSERT_GT(::readlink("/proc/self/ns/user", h, sizeof h - 1), 0);
  EXPECT_STREQ(a, b);
  EXPECT_STRNE(a, h);
  ASSERT_TRUE(ex->signal(SIGKILL).ok());
  ASSERT_TRUE(ex->wait().ok());
  // It holds CAP_SYS_NICE, but in the container's user namespace only: raising its own
  // priority, which host root may, is refused.
  auto r = exec(sh("grep CapEff /proc/self/status; nice -n -5 true 2>/dev/null && echo raised || echo refused"));
  EXPECT_EQ(r.out, fmt::format("CapEff:\t{:016x}\nrefused\n", s.hardening.capabilities));
}

TEST_F(ExecTest, StdinReachesCatAndEndOfFileEndsIt) {
  start(spec({"/bin/sh", "-c", "echo ready; exec sleep 60"}));
  ExecSpec cat;
  cat.argv = {"cat"};
  cat.stdin_pipe = true;
  auto r = exec(cat, "line one\nline two\n");
  EXPECT_TRUE(r.outcome.ok());
  EXPECT_EQ(r.out, "line one\nline two\n");
  // Without a pipe, stdin is the container's /dev/null.
  ExecSpec null;
  null.argv = {"/bin/sh", "-c", "cat; readlink /proc/self/fd/0"};
  EXPECT_EQ(exec(null).out, "/dev/null\n");
}

TEST_F(ExecTest, WithATerminalTtyNamesAPtsOfTheContainerAndSttyItsSize) {
  start(spec({"/bin/sh", "-c", "echo ready; exec sleep 60"}));
  const size_t fds_before = open_fds();
  ExecSpec t = sh("tty; stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty");
  t.tty = sandbox::TtySize{33, 111};
  auto r = exec(t);
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_TRUE(r.outcome.ok());
  EXPECT_EQ(r.out.rfind("/dev/pts/", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\r\n33 111\r\nall-tty\r\n"), std::string::npos) << r.out;
  EXPECT_EQ(open_fds(), fds_before);
}

TEST_F(ExecTest, AContainersFirstProcessGetsAStdinPipeOrATerminal) {
  auto s = spec({"cat"});
  s.place.stdin_pipe = true;
  auto sb = sandbox::Sandbox::start(s, s.place);
  ASSERT_TRUE(sb.ok()) << sb.error().render();
  UniqueFd in = sb->take_stdin(), out = sb->take_stdout();
  ASSERT_TRUE(in);
  ASSERT_EQ(::write(in.get(), "to pid1\n", 8), 8);
  in.reset();
  EXPECT_EQ(read_until(out.get()), "to pid1\n");
  auto ws = sb->wait();
  ASSERT_TRUE(ws.ok());
  EXPECT_EQ(WEXITSTATUS(*ws), 0);

  auto t = spec({"/bin/sh", "-c", "tty; stty size; read line; echo got-$line"});
  t.place.tty = sandbox::TtySize{40, 120};
  auto tb = sandbox::Sandbox::start(t, t.place);
  ASSERT_TRUE(tb.ok()) << tb.error().render();
  EXPECT_FALSE(tb->take_stdout());
  UniqueFd master = tb->take_terminal();
  ASSERT_TRUE(master);
  std::string got = read_until(master.get(), "40 120\r\n");
  EXPECT_EQ(got.rfind("/dev/pts/", 0), 0u) << got;
  ASSERT_EQ(::write(master.get(), "hello\n", 6), 6);
  got = read_until(master.get());
  EXPECT_NE(got.find("got-hello\r\n"), std::string::npos) << got;
  ws = tb->wait();
  ASSERT_TRUE(ws.ok());
  EXPECT_EQ(WEXITSTATUS(*ws), 0);
}

// Behind sandrun-init, the command is the terminal's foreground: ^C typed there reaches it.
TEST_F(ExecTest, ATerminalsInterruptReachesTheCommandBehindInit) {
  auto t = spec({"/bin/sh", "-c", "trap 'echo got-INT; exit 5' INT; echo ready; while :; do sleep 1; done"});
  t.place.tty = sandbox::TtySize{24, 80};
  auto tb = sandbox::Sandbox::start(t, t.place);
  ASSERT_TRUE(tb.ok()) << tb.error().render();
  UniqueFd master = tb->take_terminal();
  ASSERT_TRUE(master);
  EXPECT_NE(read_until(master.get(), "ready\r\n").find("ready"), std::string::npos);
  ASSERT_EQ(::write(master.get(), "\x03", 1), 1);
  const std::string rest = read_until(master.get());
  EXPECT_NE(rest.find("got-INT"), std::string::npos) << rest;
  auto ws = tb->wait();
  ASSERT_TRUE(ws.ok());
  EXPECT_TRUE(WIFEXITED(*ws));
  EXPECT_EQ(WEXITSTATUS(*ws), 5);
}

}  // namespace
}  // namespace sandrun::testing
