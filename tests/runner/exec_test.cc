// `sandrun exec`: one container like `docker run --rm`, every job setting as a flag.
#include <memory>

#include "sandbox/sys/fs.h"
#include "tests/runner/cli_fixture.h"

namespace sandrun::testing {
namespace {

using namespace std::chrono_literals;

class ExecTest : public CliTest {};

TEST_F(ExecTest, VolumeWorkdirAndEnvFlagsWorkLikeDocker) {
  std::string ws = tmp_ / "ws";
  ASSERT_TRUE(fs::mkdirs(ws).ok());
  write_file(ws + "/present", "");
  give_to_checkout_owner(ws);
  auto r = sandrun({"exec", "--image", "busybox", "-v", ws + ":/workspace", "-w", "/workspace", "-e", "A=1", "-e",
                    "B=two words", "--", "sh", "-c", "echo $A $B; ls; echo made > new"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "1 two words\npresent\n");
  EXPECT_EQ(read_file(ws + "/new"), "made\n");
  expect_nothing_left();
}

TEST_F(ExecTest, OutputPassesThroughUnprefixed) {
  auto r = sandrun({"exec", "sh", "-c", "echo out; echo err >&2; printf partial"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "out\npartial");
  EXPECT_EQ(r.err, "err\n");
}

TEST_F(ExecTest, ExitStatusIsTheCommandsOwn) {
  EXPECT_EQ(sandrun({"exec", "--", "sh", "-c", "exit 42"}).status, 42);
  EXPECT_EQ(sandrun({"exec", "--", "sh", "-c", "kill -TERM $$"}).status, 128 + 15);
}

TEST_F(ExecTest, ReadOnlyVolumeRefusesWrites) {
  std::string dir = tmp_ / "ro";
  ASSERT_TRUE(fs::mkdirs(dir).ok());
  auto r = sandrun({"exec", "-v", dir + ":/data:ro", "--", "touch", "/data/x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "touch: /data/x: Read-only file system\n");
  EXPECT_FALSE(fs::exists(dir + "/x"));
}

TEST_F(ExecTest, TimeoutExits124AndKillsEverything) {
  auto r = sandrun({"exec", "--timeout", "1s", "--", "sh", "-c", "sleep 86341 & sleep 86342"});
  EXPECT_EQ(r.status, 124);
  // Not the sleeps' day, nor the 11 s a SIGTERM and its 10 s grace would take: room for a
  // loaded machine's slow start-up.
  EXPECT_LT(r.elapsed, 8s);
  EXPECT_EQ(r.err, "sandrun: timed out after 1s; killed the container\n");
  expect_nothing_left({{"sleep", "86341"}, {"sleep", "86342"}});
}

TEST_F(ExecTest, MissingCommandExits127WithAClearMessage) {
  auto r = sandrun({"exec", "--", "no-such-tool", "--version"});
  EXPECT_EQ(r.status, 127);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')), "sandrun: command not found: \"no-such-tool\"");
}

TEST_F(ExecTest, MissingImageExits125AndNamesTheFlag) {
  auto r = sandrun({"exec", "--image", "ghost", "--", "true"});
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.err, "sandrun: exec: --image: image \"ghost:latest\" is not in the image cache (" + root() +
                       "); import it with: sandrun image import [--rootfs] FILE ghost:latest\n");
}

TEST_F(ExecTest, BadFlagValuesExitTwoAndSayWhich) {
  auto r = sandrun({"exec", "--timeout", "soon", "--", "true"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "sandrun: exec: --timeout: invalid duration \"soon\": expected a number and a unit (ms, s, m, h) "
                   "like \"90s\" or \"10m\"\n");
  r = sandrun({"exec", "--memory", "1KiB", "--", "true"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "sandrun: exec: --memory: 1 KiB is below the minimum of 4 MiB\n");
  r = sandrun({"exec", "--network", "bridge", "--", "true"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "sandrun: exec: --network: invalid network \"bridge\": expected \"none\", \"private\" or \"host\"\n");
  r = sandrun({"exec", "-v", "relative-only", "--", "true"});
  EXPECT_EQ(r.status, 2);
}

TEST_F(ExecTest, LimitAndHardeningFlagErrorsExitTwoAndSayWhich) {
  auto expect_usage_error = [&](std::vector<std::string> flags, const std::string& message) {
    flags.insert(flags.begin(), "exec");
    flags.insert(flags.end(), {"--", "true"});
    auto r = sandrun(flags);
    EXPECT_EQ(r.status, 2) << flags.at(1);
    EXPECT_EQ(r.err, "sandrun: exec: " + message + "\n");
  };
  expect_usage_error({"--cap-add", ""}, R"(--cap-add: invalid capability "": expected a name like "NET_ADMIN" or "ALL")");
  expect_usage_error({"--cap-add", "CHOWN", "--cap-drop", ""},
                     R"(--cap-drop: invalid capability "": expected a name like "NET_ADMIN" or "ALL")");
  expect_usage_error({"--cpuset-cpus", "3-1"}, R"(--cpuset-cpus: invalid cpuset "3-1": range 3-1 ends before it starts)");
  expect_usage_error({"--cpuset-cpus", "0, 1"},
                     R"(--cpuset-cpus: invalid cpuset "0, 1": expected CPU numbers and ranges like "0-3" or "0,2,4-7")");
  expect_usage_error({"--security-opt", "apparmor=unconfined"},
                     R"(--security-opt: unsupported option "apparmor=unconfined"; supported: )"
                     "seccomp=default|unconfined|PATH, no-new-privileges[=true|false]");
  expect_usage_error({"--security-opt", "seccomp"},
                     R"(--security-opt: unsupported option "seccomp"; supported: )"
                     "seccomp=default|unconfined|PATH, no-new-privileges[=true|false]");
  expect_usage_error({"--security-opt", "seccomp="},
                     R"(--security-opt: invalid seccomp profile "": expected "default", "unconfined" or the path of a profile file)");
  expect_usage_error({"--security-opt", "no-new-privileges=maybe"},
                     R"(--security-opt: no-new-privileges: invalid boolean "maybe": expected true or false)");
  expect_usage_error({"--ulimit", "nproc=10"},
                     R"(--ulimit: unsupported limit "nproc": only nofile is supported, like nofile=1024:4096)");
  expect_usage_error({"--ulimit", "nofile"}, R"(--ulimit: invalid ulimit "nofile": expected nofile=SOFT[:HARD])");
  expect_usage_error({"--ulimit", "nofile=4096:1024"},
                     R"(--ulimit: invalid nofile "4096:1024": the soft limit 4096 is above the hard limit 1024)");
  expect_usage_error({"--ulimit", "nofile=0"}, R"(--ulimit: invalid nofile "0": must be at least 1)");
  auto r = sandrun({"exec", "--userns=host", "--", "true"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--userns"), std::string::npos) << r.err;
}

TEST_F(ExecTest, RepeatableFlagsDoNotTakeTheCommand) {
  // Without "--" the first non-option argument starts the command: a repeatable flag takes
  // exactly one value.
  auto r = sandrun({"exec", "--cap-add", "CHOWN", "--cap-drop", "NET_RAW", "--ulimit", "nofile=1024",
                    "--security-opt", "no-new-privileges", "sh", "-c", "echo ok"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
}

TEST_F(ExecTest, HelpListsTheLimitAndHardeningFlags) {
  auto r = sandrun({"exec", "--help"});
  EXPECT_EQ(r.status, 0);
  for (const char* flag : {"--cpuset-cpus", "--cap-add", "--cap-drop", "--security-opt", "--read-only", "--ulimit",
                           "--userns", "--dry-run", "--pids-limit"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(sandrun({"run", "--help"}).out.find("--print-spec"), std::string::npos);
}

TEST_F(ExecTest, UserFlagRunsTheCommandUnprivileged) {
  auto r = sandrun({"exec", "--user", "nobody", "--", "id"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "uid=65534(nobody) gid=65534(nogroup)\n");
  r = sandrun({"exec", "--user", "1000:1000", "--", "id", "-u"});
  EXPECT_EQ(r.out, "1000\n");
  r = sandrun({"exec", "--user", "ghost", "--", "id"});
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.err, "sandrun: exec: --user: no user \"ghost\" in the image's /etc/passwd\n");
}

TEST_F(ExecTest, HostNetworkIsAnExplicitChoice) {
  auto none = sandrun({"exec", "--", "sh", "-c", "ls /sys/class/net | wc -l"});
  EXPECT_EQ(none.out, "1\n");
  auto host = sandrun({"exec", "--network", "host", "--", "sh", "-c", "ls /sys/class/net | wc -l"});
  EXPECT_EQ(host.status, 0) << host.err;
  EXPECT_NE(host.out, "1\n");
}

TEST_F(ExecTest, ConcurrentExecsShareOneStateDirectorySafely) {
  ASSERT_EQ(sandrun({"exec", "--", "true"}).status, 0);  // the built-in image exists
  std::vector<std::unique_ptr<Background>> runs;
  for (int i = 0; i < 4; ++i) {
    runs.push_back(std::make_unique<Background>(std::vector<std::string>{
        sandrun_bin(), "--root", root(), "exec", "--name", "c" + std::to_string(i), "--", "sh", "-c",
        "hostname > /mine; sleep 0.5; cat /mine; ls /proc | grep -c '^[0-9]'"}));
  }
  for (int i = 0; i < 4; ++i) {
    auto r = runs[static_cast<size_t>(i)]->finish();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "c" + std::to_string(i));
  }
  // Each held its own slot; all are idle again.
  EXPECT_GE(dir_entries(root() + "/slots").size(), 2u);
  expect_nothing_left();
}

TEST_F(ExecTest, NoInitMakesTheCommandPid1) {
  EXPECT_EQ(sandrun({"exec", "--no-init", "--", "sh", "-c", "echo $$"}).out, "1\n");
  EXPECT_EQ(sandrun({"exec", "--", "sh", "-c", "echo $$"}).out, "2\n");
}

}  // namespace
}  // namespace sandrun::testing
