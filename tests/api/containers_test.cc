// The daemon's containers through real clients: Debian's docker CLI (/usr/bin/docker, API
// 1.41) and docker-py, each test with its own `sandrun serve`, and nothing left once it stops.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <nlohmann/json.hpp>

#include "tests/api/serve_fixture.h"
#include "tests/support/host_state.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

class ContainersTest : public ServeTest {
 protected:
  void SetUp() override {
    ServeTest::SetUp();
    require_docker();
    start();
  }
  // Stops the daemon and checks that nothing of its containers is left on the host.
  void stop_and_expect_nothing_left() {
    ServeTest::stop_and_expect_nothing_left();
    for (const auto& slot : dir_entries(root() + "/slots")) {
      EXPECT_FALSE(slot_locked(root() + "/slots/" + slot)) << slot;
    }
  }
};

TEST_F(ContainersTest, RunRmKeepsTheExitCodeAndSeparatesStdoutFromStderr) {
  auto r = docker({"run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(out_of({"ps", "-aq"}), "") << "--rm left the container";
  // Its life on the engine's event bus.
  const std::string until = std::to_string(::time(nullptr) + 1);
  EXPECT_EQ(out_of({"events", "--since", "0", "--until", until, "--filter", "type=container", "--format",
                    "{{.Action}} {{.Actor.Attributes.image}}"}),
            "create busybox\nstart busybox\ndie busybox\ndestroy busybox\n");
  stop_and_expect_nothing_left();
}

TEST_F(ContainersTest, DetachedRunShowsInPsLogsAndGoesWithStopAndRm) {
  const std::string id = out_of({"run", "-d", "--name", "xx", "--label", "team=a", "busybox", "sh", "-c",
                                 "echo hello; echo oops >&2; exec sleep 100"});
  ASSERT_EQ(id.size(), 65u) << id;  // 64 hex digits and a newline
  EXPECT_EQ(out_of({"ps", "--format", "{{.Names}} {{.Image}} {{.Command}}"}),
            "xx busybox \"sh -c echo hello; e…\"\n");
  EXPECT_EQ(out_of({"ps", "--filter", "label=team=a", "--format", "{{.Names}}"}), "xx\n");
  EXPECT_EQ(out_of({"ps", "--filter", "label=team=b", "--format", "{{.Names}}"}), "");
  EXPECT_EQ(out_of({"ps", "--filter", "status=running", "--filter", "name=xx", "-q"}), id.substr(0, 12) + "\n");
  EXPECT_TRUE(out_of({"ps", "--format", "{{.Status}}"}).starts_with("Up ")) ;
  ASSERT_TRUE(eventually([&] { return docker({"logs", "xx"}).out == "hello\n"; }, kStartTimeout));
  auto logs = docker({"logs", "xx"});
  EXPECT_EQ(logs.err, "oops\n");
  auto tail = docker({"logs", "--tail", "1", id.substr(0, 8)});  // the last line of both streams
  EXPECT_EQ(tail.out, "");
  EXPECT_EQ(tail.err, "oops\n");
  EXPECT_TRUE(out_of({"logs", "-t", "xx"}).find("Z hello\n") != std::string::npos);
  EXPECT_EQ(out_of({"stop", "-t", "5", "xx"}), "xx\n");
  EXPECT_EQ(out_of({"ps", "-q"}), "");
  EXPECT_TRUE(out_of({"ps", "-a", "--format", "{{.Status}}"}).starts_with("Exited (143) "));
  EXPECT_EQ(out_of({"ps", "-a", "--filter", "exited=143", "--format", "{{.Names}}"}), "xx\n");
  EXPECT_EQ(out_of({"rm", "xx"}), "xx\n");
  EXPECT_EQ(out_of({"ps", "-aq"}), "");
  stop_and_expect_nothing_left();
}

TEST_F(ContainersTest, LogsFollowShowsEveryLineAsItComesAndEndsWithTheContainer) {
  out_of({"run", "-d", "--name", "ff", "busybox", "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done"});
  auto r = docker({"logs", "-f", "ff"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "line 1\nline 2\nline 3\n");
  EXPECT_GE(r.elapsed.count(), 300) << "logs -f returned before the container's end";
  // Once it has exited, -f answers what there is and ends.
  EXPECT_EQ(out_of({"logs", "-f", "--tail", "1", "ff"}), "line 3\n");
  out_of({"rm", "ff"});
  stop_and_expect_nothing_left();
}

TEST_F(ContainersTest, CreateStartWaitInspect) {
  const std::string id = out_of({"create", "--name", "ww", "--env", "A=1", "busybox", "sh", "-c", "sleep 1; exit 7"});
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.Status}} {{.Name}} {{.Config.Image}} {{.State.Running}}", "ww"}),
            "created /ww busybox false\n");
  EXPECT_EQ(out_of({"start", "ww"}), "ww\n");
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.Status}} {{.State.Running}}", "ww"}), "running true\n");
  EXPECT_EQ(out_of({"wait", "ww"}), "7\n");
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}", id.substr(0, 64)}),
            "exited 7 false\n");
  const std::string env = out_of({"inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", "ww"});
  EXPECT_NE(env.find("A=1\n"), std::string::npos) << env;
  EXPECT_NE(env.find("PATH="), std::string::npos) << env;
  // Started again: it runs its command again.
  EXPECT_EQ(out_of({"start", "ww"}), "ww\n");
  EXPECT_EQ(out_of({"wait", "ww"}), "7\n");
  EXPECT_EQ(out_of({"rm", "ww"}), "ww\n");
  stop_and_expect_nothing_left();
}

TEST_F(ContainersTest, NamesAreUniqueAndMissingThingsAreNamed) {
  const std::string id = out_of({"create", "--name", "dup", "busybox", "true"});
  auto again = docker({"create", "--name", "dup", "busybox", "true"});
  EXPECT_NE(again.status, 0);
  EXPECT_NE(again.err.find("Conflict. The container name \"/dup\" is already in use by container \"" +
                           id.substr(0, 64) + "\". You have to remove (or rename) that container to be able to reuse "
                           "that name."),
            std::string::npos)
      << again.err;
  auto bad = docker({"create", "--name", "-x", "busybox", "true"});
  EXPECT_NE(bad.err.find("Invalid container name (-x)"), std::string::npos) << bad.err;
  auto missing = docker({"container", "inspect", "nosuch"});
  EXPECT_NE(missing.err.find("No such container: nosuch"), std::string::npos) << missing.err;
  auto image = docker({"create", "nosuchimage"});
  EXPECT_NE(image.status, 0);
  EXPECT_NE(image.err.find("Unable to find image 'nosuchimage:latest' locally"), std::string::npos) << image.err;
  auto raw = roundtrip(socket(), "POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nConnection: close\r\n"
                                 "Content-Type: application/json\r\nContent-Length: 21\r\n\r\n{\"Image\":\"nosuchimg\"}");
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(raw[0].status, 404);
  EXPECT_EQ(raw[0].body, "{\"message\":\"No such image: nosuchimg\"}\n");
  auto rm = docker({"rm", "-f", "dup"});
  EXPECT_EQ(rm.status, 0) << rm.err;
  stop_and_expect_nothing_left();
}

TEST_F(ContainersTest, RefusedFieldsAreA400NamingThem) {
  auto priv = docker({"create", "--privileged", "busybox", "true"});
  EXPECT_NE(priv.err.find("HostConfig.Privileged: privileged containers are refused by sandrun"), std::string::npos)
      << priv.err;
  auto pid = docker({"create", "--pid", "host", "busybox", "true"});
  EXPECT_NE(pid.err.find("HostConfig.PidMode: the host's namespaces are refused by sandrun"), std::string::npos) << pid.err;
  auto mem = docker({"create", "--memory", "1m", "busybox", "true"});
  EXPECT_NE(mem.err.find("Minimum memory limit allowed is 6MB"), std::string::npos) << mem.err;
  EXPECT_EQ(out_of({"ps", "-aq"}), "");
  stop_and_expect_nothing_left();
}

TEST_F(ContainersTest, MemoryHogIsOomKilled) {
  out_of({"run", "-d", "--name", "hog", "--memory", "8m", "busybox", "sh", "-c", "x=aaaaaaaa; while true; do x=$x$x; done"});
  EXPECT_EQ(out_of({"wait", "hog"}), "137\n");
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.OOMKilled}} {{.State.ExitCode}} {{.HostConfig.Memory}}", "hog"}),
            "true 137 8388608\n");
  out_of({"rm", "hog"});
  stop_and_expect_nothing_left();
}

TEST_F(ContainersTest, TopAndStatsReadTheContainersCgroup) {
  out_of({"run", "-d", "--name", "tt", "--memory", "64m", "busybox", "sleep", "100"});
  const std::string top = out_of({"top", "tt"});
  EXPECT_NE(top.find("PID"), std::string::npos) << top;
  EXPECT_NE(top.find("sleep 100"), std::string::npos) << top;
  const std::string stats = out_of({"stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", "tt"});
  EXPECT_TRUE(stats.starts_with("tt ")) << stats;
  EXPECT_NE(stats.find("/ 64MiB"), std::string::npos) << stats;
  auto info = get(socket(), "/info");
  EXPECT_EQ(json::parse(info.body)["ContainersRunning"], 1) << info.body;
  out_of({"rm", "-f", "tt"});
  EXPECT_EQ(json::parse(get(socket(), "/info").body)["Containers"], 0);
  stop_and_expect_nothing_left();
}

TEST_F(ContainersTest, PublishedPortsReachTheContainerFromTheHost) {
  out_of({"run", "-d", "--name", "web", "-p", "127.0.0.1::8080", "busybox", "sh", "-c",
          "mkdir /tmp/w && echo hello > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w"});
  const std::string port = out_of({"port", "web", "8080/tcp"});
  ASSERT_TRUE(port.starts_with("127.0.0.1:")) << port;
  const uint16_t host_port = static_cast<uint16_t>(std::stoi(port.substr(10)));
  ASSERT_TRUE(eventually([&] { return http_get(host_port).find("hello") != std::string::npos; }, kStartTimeout));
  EXPECT_NE(out_of({"ps", "--format", "{{.Ports}}"}).find("127.0.0.1:" + std::to_string(host_port) + "->8080/tcp"),
            std::string::npos);
  out_of({"rm", "-f", "web"});
  EXPECT_EQ(http_get(host_port), "") << "the port stayed open";
  stop_and_expect_nothing_left();
}

TEST_F(ContainersTest, DaemonStopTearsDownRunningContainersAndTheNextKeepsTheirRecords) {
  out_of({"run", "-d", "--name", "aa", "busybox", "sleep", "86501"});
  out_of({"run", "-d", "--name", "bb", "busybox", "sleep", "86501"});
  ASSERT_TRUE(host_has_process({"sleep", "86501"}));
  stop_and_expect_nothing_left();
  EXPECT_FALSE(host_has_process({"sleep", "86501"}));
  start();
  const std::string ps = out_of({"ps", "-a", "--format", "{{.Names}} {{.State}}"});
  EXPECT_NE(ps.find("aa exited\n"), std::string::npos) << ps;
  EXPECT_NE(ps.find("bb exited\n"), std::string::npos) << ps;
  EXPECT_EQ(out_of({"ps", "-q"}), "");
  EXPECT_EQ(out_of({"start", "aa"}), "aa\n");
  EXPECT_EQ(out_of({"ps", "--format", "{{.Names}}"}), "aa\n");
  out_of({"rm", "-f", "aa", "bb"});
  stop_and_expect_nothing_left();
}

TEST_F(ContainersTest, AKilledDaemonsLeftoversAreSweptByTheNext) {
  out_of({"run", "-d", "--name", "gone", "busybox", "sleep", "86502"});
  ASSERT_TRUE(host_has_process({"sleep", "86502"}));
  daemon_->signal(SIGKILL);
  daemon_->finish();
  daemon_.reset();
  start();
  // Its container died with it (its init follows the daemon); the record is kept, as exited.
  EXPECT_TRUE(eventually([] { return !host_has_process({"sleep", "86502"}); }, kStartTimeout));
  EXPECT_EQ(out_of({"ps", "-a", "--format", "{{.Names}} {{.State}}"}), "gone exited\n");
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.ExitCode}} {{.State.Error}}", "gone"}),
            "255 the daemon that ran it stopped\n");
  out_of({"rm", "gone"});
  stop_and_expect_nothing_left();
}

TEST_F(ContainersTest, DockerPyRunsContainersAndReadsTheirLogs) {
  SANDRUN_REQUIRE(run_command({"python3", "-c", "import docker"}).status == 0, "needs python3-docker");
  const std::string script =
      "import docker\n"
      "c = docker.DockerClient(base_url='unix://" + socket() + "')\n"
      "print(c.containers.run('busybox', ['sh', '-c', 'echo hi; echo err >&2'], remove=True, stderr=True))\n"
      "d = c.containers.run('busybox', ['sh', '-c', 'echo one; echo two; exit 4'], detach=True, name='py')\n"
      "print(d.wait()['StatusCode'])\n"
      "print(d.logs(tail=1))\n"
      "f = c.containers.run('busybox', ['sh', '-c', 'echo a; sleep 0.3; echo b'], detach=True)\n"
      "print(b''.join(f.logs(stream=True, follow=True)))\n"
      "f.remove()\n"
      "d.reload(); print(d.status, d.name, d.attrs['State']['ExitCode'])\n"
      "d.remove()\n"
      "print(len(c.containers.list(all=True)))\n";
  auto r = run_command({"python3", "-c", script});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "b'hi\\nerr\\n'\n4\nb'two\\n'\nb'a\\nb\\n'\nexited py 4\n0\n");
  stop_and_expect_nothing_left();
}

// `docker system prune`, a common last step of a CI job: stopped containers, unused networks
// and dangling images go, running containers and the networks they use stay; sandrun keeps no
// build cache, so its part (POST /build/prune) reclaims nothing.
TEST_F(ContainersTest, SystemPruneRemovesWhatIsUnusedAndKeepsWhatRuns) {
  out_of({"run", "--name", "done", "busybox", "true"});
  out_of({"network", "create", "unused"});
  out_of({"network", "create", "used"});
  out_of({"run", "-d", "--name", "up", "--network", "used", "busybox", "sleep", "47321"});
  const std::string done_id = out_of({"inspect", "--format", "{{.Id}}", "done"});
  auto r = docker({"system", "prune", "-f"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Deleted Containers:\n" + done_id), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Deleted Networks:\nunused\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Total reclaimed space:"), std::string::npos) << r.out;
  EXPECT_EQ(out_of({"ps", "-a", "--format", "{{.Names}}"}), "up\n");
  EXPECT_EQ(out_of({"network", "ls", "--filter", "name=used", "--format", "{{.Name}}"}), "used\n");
  auto builder = docker({"builder", "prune", "-f"});
  EXPECT_EQ(builder.status, 0) << builder.err;
  EXPECT_EQ(builder.out, "Total reclaimed space: 0B\n");
  out_of({"rm", "-f", "up"});
  out_of({"network", "rm", "used"});
  stop_and_expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
