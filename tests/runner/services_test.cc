// Services, networks and published ports end to end through the CLI: real servers (the static
// sandrun-kv-server) in sandboxes next to their job, on loopback and network namespaces only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/unique_fd.h"
#include "tests/runner/cli_fixture.h"
#include "tests/support/loopback.h"

namespace sandrun::testing {
namespace {

using namespace std::chrono_literals;

class ServicesTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    bin_ = tmp_ / "bin";
    ASSERT_TRUE(fs::mkdirs(bin_));
    ASSERT_EQ(run_command({"cp", kv_server_bin(), bin_ + "/kv"}).status, 0);
    shared_ = tmp_ / "shared";
    ASSERT_TRUE(fs::mkdirs(shared_));
    give_to_checkout_owner(shared_);
  }
  // A kv service on `port` with a ready check, as a TOML table for job `job`. Each test uses
  // its own port: ctest runs tests side by side, and the leftover-process checks go by port.
  std::string kv_service(const std::string& job, int port, const std::string& extra = "") {
    return fmt::format(R"toml(
[jobs.{0}.services.kv]
image = "busybox"
volumes = ["{1}:/opt/kv:ro"]
command = ["/opt/kv/kv", "{3}"]
ready = {{ run = "printf 'PING\nQUIT\n' | nc 127.0.0.1 {3} | grep -q PONG", interval = "100ms", timeout = "10s" }}
{2}
)toml", job, bin_, extra, port);
  }
  std::string bin_, shared_;
};

TEST_F(ServicesTest, FourJobsEachTalkToTheirOwnServiceByNameAndSeeOnlyTheirOwnData) {
  std::string file;
  for (int i = 1; i <= 4; ++i) {
    file += fmt::format(R"toml(
[jobs.j{0}]
run = '''
printf 'SET owner j{0}\nQUIT\n' | nc kv 6301
sleep 0.5
printf 'GET owner\nQUIT\n' | nc kv 6301
'''
)toml", i) + kv_service(fmt::format("j{}", i), 6301);
  }
  auto r = sandrun({"run", "-j", "4", jobs(file)});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  for (int i = 1; i <= 4; ++i) EXPECT_EQ(log(fmt::format("j{}", i)), fmt::format("OK\nBYE\nj{}\nBYE\n", i));
  EXPECT_EQ(log("j1.kv"), "ready\n");  // the service's own log
  expect_nothing_left({{"/opt/kv/kv", "6301"}});
}

TEST_F(ServicesTest, AServiceThatNeverGetsReadyFailsTheJobWithItsLastLines) {
  auto r = sandrun({"run", jobs(R"toml(
[jobs.app]
run = "echo never runs"
[jobs.app.services.db]
image = "busybox"
command = ["sh", "-c", "echo starting db; echo 'fatal: bad config in db.conf' >&2; exec sleep 86411"]
ready = { run = "false", interval = "200ms", timeout = "1s" }
)toml")});
  EXPECT_EQ(r.status, 1);
  EXPECT_LT(r.elapsed, 20s);  // the ready check's 1 s timeout ends it, not the service's day-long sleep
  const std::string app = log("app");
  EXPECT_NE(app.find("sandrun: service \"db\" was not ready after 1s (its ready check: failed: exit 1)"),
            std::string::npos) << app;
  EXPECT_NE(app.find("fatal: bad config in db.conf"), std::string::npos) << app;
  EXPECT_EQ(app.find("never runs"), std::string::npos) << app;
  EXPECT_NE(r.out.find("app  setup failed"), std::string::npos) << r.out;
  expect_nothing_left({{"sleep", "86411"}});
}

TEST_F(ServicesTest, AReadyCheckIsAnExecIntoTheServicesContainerAndSeesItsFilesAndProcesses) {
  // The service says it is ready with a file in its own /tmp (a tmpfs of its container only)
  // and the check looks at its process too: a check in a container of its own would see
  // neither.
  auto r = sandrun({"run", jobs(R"toml(
[jobs.app]
run = "echo app ran"
[jobs.app.services.db]
image = "busybox"
command = ["sh", "-c", "sleep 0.3; touch /tmp/db-ready; exec sleep 86412"]
ready = { run = "test -e /tmp/db-ready && pidof sleep >/dev/null", interval = "100ms", timeout = "10s" }
)toml")});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(log("app"), "app ran\n");
  expect_nothing_left({{"sleep", "86412"}});
}

TEST_F(ServicesTest, APublishedPortCarriesTenThousandRequestsFromTheHostAndClosesWithTheJob) {
  // Port 0: the kernel picks the host port; the job learns it from its environment, and tells
  // the test through a shared directory, then waits until the test is done.
  Background bg({sandrun_bin(), "--root", root(), "run", "--format", "json", jobs(fmt::format(R"toml(
[jobs.api]
volumes = ["{0}:/shared"]
run = '''
echo "$SANDRUN_PORT_KV_6302" > /shared/port
for i in $(seq 1 3000); do test -e /shared/done && exit 0; sleep 0.1; done
exit 1
'''
)toml", shared_) + kv_service("api", 6302, "ports = [\"127.0.0.1:0:6302\"]"))});
  // Whole: the shell creates the file before it writes the line.
  ASSERT_TRUE(eventually([&] { return read_file(shared_ + "/port").ends_with("\n"); }, 20s));
  std::string where = read_file(shared_ + "/port");
  ASSERT_EQ(where.rfind("127.0.0.1:", 0), 0u) << where;
  const auto port = static_cast<uint16_t>(std::stoi(where.substr(10)));
  int errors = 0;
  std::string first_error;
  const auto check = [&](const std::string& got, const std::string& want, const std::string& what) {
    if (got == want) return;
    if (errors++ == 0) first_error = what + ": got \"" + got + "\", want \"" + want + "\"";
  };
  for (int c = 0; c < 10; ++c) {
    UniqueFd fd = connect_local(port);
    ASSERT_TRUE(fd.valid()) << "connect to 127.0.0.1:" << port << ": " << std::strerror(errno);
    for (int i = 0; i < 1000; ++i) {
      const std::string key = fmt::format("k{}", c * 1000 + i);
      check(request(fd.get(), fmt::format("SET {} v{}", key, i)), "OK", "SET " + key);
      check(request(fd.get(), "GET " + key), fmt::format("v{}", i), "GET " + key);
    }
  }
  EXPECT_EQ(errors, 0) << "first: " << first_error;
  write_file(shared_ + "/done", "");
  auto r = bg.finish();
  EXPECT_EQ(r.status, 0) << r.err;
  // Reported: an event, and summary.json.
  EXPECT_NE(r.out.find(fmt::format(R"("event":"port_published")")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(fmt::format(R"("host_port":{})", port)), std::string::npos) << r.out;
  EXPECT_NE(read_file(tmp_ / ".sandrun/summary.json").find(fmt::format(R"("host_port": {})", port)),
            std::string::npos);
  // The job is over: so is the listener.
  EXPECT_FALSE(connect_local(port).valid());
  expect_nothing_left({{"/opt/kv/kv", "6302"}});
}

TEST_F(ServicesTest, AJobWithoutANetworkCannotReachTheHostsLoopback) {
  auto [server, port] = listen_loopback();
  ASSERT_TRUE(server.valid());
  for (const char* network : {"none", "private"}) {
    auto r = sandrun({"run", jobs(fmt::format(R"toml(
[jobs.probe]
network = "{}"
run = "if echo hi | nc -w 2 127.0.0.1 {} 2>/dev/null; then echo reached; else echo refused; fi"
)toml", network, port))});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(log("probe"), "refused\n") << network;
  }
  // Nothing ever connected.
  ASSERT_EQ(::fcntl(server.get(), F_SETFL, O_NONBLOCK), 0);
  EXPECT_LT(::accept(server.get(), nullptr, nullptr), 0);
}

TEST_F(ServicesTest, AJobCannotReachAnotherJobsServices) {
  auto r = sandrun({"run", "-j", "2", jobs(R"toml(
[jobs.owner]
run = "sleep 1; printf 'PING\nQUIT\n' | nc kv 6303"
)toml" + kv_service("owner", 6303) + R"toml(
[jobs.other]
run = "sleep 0.5; if printf 'PING\nQUIT\n' | nc -w 1 127.0.0.1 6303 2>/dev/null; then echo reached; else echo refused; fi; grep -c kv /etc/hosts || true"
)toml")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(log("owner"), "PONG\nBYE\n");
  EXPECT_EQ(log("other"), "refused\n0\n");
}

TEST_F(ServicesTest, ExecPublishesAPortLikeDockerRunP) {
  // A free host port: bound and released (nothing else on this host picks ports here).
  auto [probe, port] = listen_loopback();
  ASSERT_TRUE(probe.valid());
  probe.reset();
  Background bg({sandrun_bin(), "--root", root(), "exec", "-p", fmt::format("127.0.0.1:{}:7000", port), "-v",
                 bin_ + ":/opt/kv:ro", "--", "/opt/kv/kv", "7000"});
  std::string reply;
  ASSERT_TRUE(eventually([&] {
    UniqueFd fd = connect_local(port);
    if (!fd.valid()) return false;
    reply = request(fd.get(), "PING");
    return reply == "PONG";
  }, 10s)) << reply;
  bg.signal(SIGTERM);
  auto r = bg.finish();
  EXPECT_NE(r.err.find(fmt::format("sandrun: published 127.0.0.1:{} -> 7000\n", port)), std::string::npos) << r.err;
  EXPECT_FALSE(connect_local(port).valid());
  expect_nothing_left({{"/opt/kv/kv", "7000"}});
}

TEST_F(ServicesTest, ThePrivateNetworksStackOfASigkilledRunIsStoppedByTheNextRun) {
  Background bg({sandrun_bin(), "--root", root(), "run", jobs("[jobs.p]\nnetwork = \"private\"\nrun = \"sleep 86421\"\n")});
  ASSERT_TRUE(eventually([] { return host_has_process({"sleep", "86421"}); }, 20s));
  const auto files = dir_entries(root() + "/outbound");
  ASSERT_EQ(files.size(), 1u);
  const pid_t stack = std::stoi(read_file(root() + "/outbound/" + files[0]));
  bg.signal(SIGKILL);
  EXPECT_EQ(bg.finish().status, 128 + SIGKILL);
  EXPECT_EQ(::kill(stack, 0), 0);  // pasta does not notice its parent's death
  auto r = sandrun({"run", jobs("[jobs.ok]\nrun = \"true\"\n", "ok.toml")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("stopped 1 network stack"), std::string::npos) << r.err;
  // Killed (a zombie until whoever inherited it reaps it, or gone).
  EXPECT_TRUE(eventually([&] {
    const std::string stat = read_file(fmt::format("/proc/{}/stat", stack));
    const size_t paren = stat.rfind(')');
    return stat.empty() || (paren != std::string::npos && stat.substr(paren + 2, 1) == "Z");
  }, 5s));
  EXPECT_EQ(dir_entries(root() + "/outbound"), std::vector<std::string>{});
  expect_nothing_left({{"sleep", "86421"}});
}

TEST_F(ServicesTest, HostNetworkIsAnExplicitOptInShownInTheResolvedSpec) {
  auto r = sandrun({"run", "--print-spec", jobs("[jobs.h]\nnetwork = \"host\"\nrun = \"true\"\n[jobs.n]\nrun = \"true\"\n")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(R"("network": "host")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("network": "none")"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace sandrun::testing
