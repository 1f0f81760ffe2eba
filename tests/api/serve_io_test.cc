// A container's stdin and terminal (attach, resize), docker cp (GET, HEAD and PUT
// /containers/{id}/archive, safely inside the container) and streamed stats, through
// Debian's docker CLI, docker-py and raw requests, each test with its own `sandrun serve`.
#include <nlohmann/json.hpp>

#include "tests/api/serve_fixture.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class ServeIoTest : public CleanStopServeTest {
 protected:
  void SetUp() override {
    CleanStopServeTest::SetUp();
    require_docker();
    start();
  }
  std::string env_prefix() {
    return "env -u DOCKER_CONTEXT DOCKER_HOST=unix://" + socket() + " DOCKER_CONFIG=" + std::string(tmp_ / "docker-config") + " ";
  }
  // A shell line whose `docker` is /usr/bin/docker against this daemon.
  CommandResult shell(const std::string& line) {
    return run_command({"/bin/sh", "-c", "docker() { " + env_prefix() + "/usr/bin/docker \"$@\"; }; " + line});
  }
  CommandResult python(const std::string& body) {
    const std::string script = "import docker, io, tarfile, time, socket\n"
                               "c = docker.DockerClient(base_url='unix://" + socket() + "')\n" + body;
    return run_command({"python3", "-c", script});
  }
  // Waits until the container's log holds `text`.
  bool log_has(const std::string& name, const std::string& text) {
    return eventually([&] { return docker({"logs", name}).out.find(text) != std::string::npos; }, kStartTimeout);
  }
};

// --- stdin and terminal -----------------------------------------------------------------

TEST_F(ServeIoTest, RunWithStdinPipesTheClientsInputToTheCommand) {
  auto r = shell("printf 'hi\\nthere\\n' | docker run --rm -i busybox cat");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "hi\nthere\n");
  // More than the engine's stdin queue holds (backpressure all the way to the client).
  r = shell("seq 1 300000 | docker run --rm -i busybox wc -l");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "300000\n");
  // A command that ends before it read its input: the rest is dropped, the exit code is its own.
  r = shell("seq 1 300000 | docker run --rm -i busybox sh -c 'head -n 2; exit 5'");
  EXPECT_EQ(r.status, 5) << r.err;
  EXPECT_EQ(r.out, "1\n2\n");
  // Without -i the command reads nothing.
  r = shell("echo ignored | docker run --rm busybox cat");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(ServeIoTest, RunWithTtyGivesTheCommandATerminalAndRawOutput) {
  // The docker CLI wants a terminal of its own for -t: script(1) gives it one.
  auto r = shell("script -qec " + quote(env_prefix() + "/usr/bin/docker run --rm -t busybox sh -c 'tty; echo out; echo err >&2'") +
                 " /dev/null");
  EXPECT_EQ(r.status, 0) << r.err;
  // One stream, raw (the container's terminal turns \n into \r\n, and script's own into
  // \r\r\n), stderr in it too.
  EXPECT_NE(r.out.find("/dev/pts/0\r\r\nout\r\r\nerr\r\r\n"), std::string::npos) << r.out;
  // -it: what is typed at the client's terminal reaches the shell in the container.
  r = shell("(sleep 1; printf 'echo typed-$((6*7))\\nexit 3\\n'; sleep 2) | script -qec " +
            quote(env_prefix() + "/usr/bin/docker run --rm -it busybox sh") + " /dev/null");
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("typed-42"), std::string::npos) << r.out;
  // Inspect says what it was created with.
  auto id = out_of({"create", "-t", "-i", "busybox", "true"});
  id.pop_back();
  EXPECT_EQ(out_of({"inspect", "--format", "{{.Config.Tty}} {{.Config.OpenStdin}} {{.Config.StdinOnce}}", id}),
            "true true true\n");  // the CLI's create -i sets StdinOnce, as with Docker
}

TEST_F(ServeIoTest, DockerPyRunsWithATerminalAndStdin) {
  SANDRUN_REQUIRE(run_command({"python3", "-c", "import docker"}).status == 0, "needs python3-docker");
  auto r = python(
      "print(c.containers.run('busybox', ['tty'], tty=True, remove=True))\n"
      "k = c.containers.create('busybox', ['sh', '-c', 'read x; echo got $x'], stdin_open=True)\n"
      "s = k.attach_socket(params={'stdin': 1, 'stdout': 1, 'stream': 1})\n"
      "k.start()\n"
      "s._sock.sendall(b'line\\n')\n"
      "print(k.wait()['StatusCode'], k.logs())\n"
      "s.close(); k.remove()\n");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "b'/dev/pts/0\\r\\n'\n0 b'got line\\n'\n");
}

TEST_F(ServeIoTest, AttachWritesStdinAndAVanishedClientLeavesTheContainerRunning) {
  out_of({"run", "-d", "-i", "--name", "cat1", "busybox", "cat"});
  // docker attach sends its stdin; its end does not close a container's stdin without StdinOnce.
  auto r = shell("echo hello | timeout -s KILL 3 " + env_prefix() + "/usr/bin/docker attach cat1");
  EXPECT_TRUE(log_has("cat1", "hello\n"));
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.Running}}", "cat1"}), "true\n");
  // Again: the stdin is still open.
  shell("echo again | timeout -s KILL 3 " + env_prefix() + "/usr/bin/docker attach cat1");
  EXPECT_TRUE(log_has("cat1", "hello\nagain\n"));
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.Running}}", "cat1"}), "true\n");
  out_of({"rm", "-f", "cat1"});

  // Without StdinOnce a client's going leaves the stdin open; with it (docker-py sets it with
  // stdin_open) the stdin closes.
  SANDRUN_REQUIRE(run_command({"python3", "-c", "import docker"}).status == 0, "needs python3-docker");
  r = python(
      "r = c.api._post_json(c.api._url('/containers/create'), data={'Image': 'busybox', "
      "'Cmd': ['sh', '-c', 'cat; echo eof'], 'OpenStdin': True})\n"
      "k = c.containers.get(r.json()['Id'])\n"
      "s = k.attach_socket(params={'stdin': 1, 'stdout': 1, 'stream': 1})\n"
      "k.start()\n"
      "s._sock.sendall(b'x\\n'); time.sleep(0.5)\n"
      "k.reload(); print(k.status)\n"
      "s._sock.close(); s.close(); time.sleep(1)\n"
      "k.reload(); print(k.status)\n"
      "k.remove(force=True)\n");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "running\nrunning\n") << "without StdinOnce the container keeps its stdin";
  r = python(
      "r = c.api._post_json(c.api._url('/containers/create'), data={'Image': 'busybox', "
      "'Cmd': ['sh', '-c', 'cat; echo eof'], 'OpenStdin': True, 'StdinOnce': True})\n"
      "k = c.containers.get(r.json()['Id'])\n"
      "s = k.attach_socket(params={'stdin': 1, 'stdout': 1, 'stream': 1})\n"
      "k.start()\n"
      "s._sock.sendall(b'x\\n'); time.sleep(0.5)\n"
      "k.reload(); print(k.status)\n"
      "s._sock.close(); s.close()\n"
      "print(k.wait(timeout=20)['StatusCode'], k.logs())\n"
      "k.remove()\n");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "running\n0 b'x\\neof\\n'\n");
}

TEST_F(ServeIoTest, ResizeChangesTheTerminalAndRefusesAsDocker) {
  out_of({"run", "-d", "-t", "--name", "t1", "busybox", "sh", "-c", "while :; do stty size; sleep 0.2; done"});
  EXPECT_TRUE(log_has("t1", "24 80"));
  auto r = request_json(socket(), "POST", "/containers/t1/resize?h=30&w=100", "");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(log_has("t1", "30 100"));
  r = request_json(socket(), "POST", "/containers/t1/resize?h=x&w=100", "");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["message"], "invalid resize height \"x\"");
  r = request_json(socket(), "POST", "/containers/nope/resize?h=3&w=3", "");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body)["message"], "No such container: nope");
  auto id = out_of({"create", "-t", "busybox", "true"});
  id.pop_back();
  r = request_json(socket(), "POST", "/containers/" + id + "/resize?h=3&w=3", "");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(json::parse(r.body)["message"], "Container " + id + " is not running");
  // Without a terminal there is nothing to resize: answered 200 as Docker (containerd ignores it).
  out_of({"run", "-d", "--name", "n1", "busybox", "sleep", "53171"});
  EXPECT_EQ(request_json(socket(), "POST", "/containers/n1/resize?h=3&w=3", "").status, 200);
  out_of({"rm", "-f", "t1", "n1"});
}

// --- stats as a stream ------------------------------------------------------------------

TEST_F(ServeIoTest, StatsStreamsOneObjectASecondUntilTheContainerStops) {
  out_of({"run", "-d", "--name", "s1", "busybox", "sleep", "53172"});
  // docker stats without --no-stream: read two refreshes, then the client is killed.
  auto r = shell("timeout -s KILL 4 " + env_prefix() + "/usr/bin/docker stats --format '{{.Name}} {{.MemUsage}}' s1 | head -c 4096");
  size_t lines = 0;
  for (size_t at = r.out.find("s1 "); at != std::string::npos; at = r.out.find("s1 ", at + 1)) ++lines;
  EXPECT_GE(lines, 2u) << r.out;
  // The stream ends when the container stops (docker-py's generator ends).
  SANDRUN_REQUIRE(run_command({"python3", "-c", "import docker"}).status == 0, "needs python3-docker");
  r = python(
      "k = c.containers.get('s1')\n"
      "n = 0\n"
      "for s in k.stats(stream=True, decode=True):\n"
      "    n += 1\n"
      "    assert s['name'] == '/s1' and 'total_usage' in s['cpu_stats']['cpu_usage'], s\n"
      "    if n == 2: k.kill()\n"
      "print(n >= 2 and n < 6)\n");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "True\n");
  // The daemon still serves (the stream's timer and subscription are gone).
  EXPECT_TRUE(serving());
  out_of({"rm", "-f", "s1"});
}

// --- docker cp --------------------------------------------------------------------------

TEST_F(ServeIoTest, CopyIntoAndOutOfARunningContainer) {
  out_of({"run", "-d", "--name", "c1", "busybox", "sh", "-c",
          "mkdir -p /data/sub; echo inner > /data/sub/f; "
          "while [ ! -f /tmp/in/put.txt ]; do sleep 0.1; done; stat -c 'owner %u:%g' /tmp/in/put.txt; "
          "cat /tmp/in/put.txt; exec sleep 53173"});
  const std::string src = tmp_ / "put.txt";
  ASSERT_EQ(run_command({"/bin/sh", "-c", "echo from-host > " + src + "; chown 4321:4321 " + src}).status, 0);
  ::mkdir((tmp_ / "in").c_str(), 0755);
  ASSERT_EQ(run_command({"/bin/sh", "-c", "cp -p " + src + " " + std::string(tmp_ / "in/")}).status, 0);
  // Into a directory made on the way (docker cp makes /tmp/in from the tar of the directory).
  auto r = docker({"cp", std::string(tmp_ / "in"), "c1:/tmp/"});
  EXPECT_EQ(r.status, 0) << r.err;
  // Files copied in belong to the container's root (not to the host's uid 4321).
  EXPECT_TRUE(log_has("c1", "owner 0:0\nfrom-host\n"));
  // Out of it: a directory, and a file to stdout (a tar).
  const std::string out = tmp_ / "out";
  ::mkdir(out.c_str(), 0755);
  r = docker({"cp", "c1:/data", out});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(run_command({"cat", out + "/data/sub/f"}).out, "inner\n");
  r = shell("docker cp c1:/data/sub/f - | tar -xOf -");
  EXPECT_EQ(r.out, "inner\n");
  // What is not there: Docker's 404, through the CLI.
  r = docker({"cp", "c1:/nope", out});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("No such container:path: c1:/nope"), std::string::npos) << r.err;
  // HEAD: the stat alone, as base64 JSON.
  auto h = get(socket(), "/containers/c1/archive?path=/data/sub/f", "HEAD");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(get(socket(), "/containers/c1/archive?path=/nope", "HEAD").status, 404);
  auto missing = get(socket(), "/containers/c1/archive?path=/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body)["message"], "Could not find the file /nope in container c1");
  // PUT into something that is not a directory.
  auto put = roundtrip(socket(), "PUT /containers/c1/archive?path=/data/sub/f HTTP/1.1\r\nHost: d\r\n"
                                 "Connection: close\r\nContent-Length: 1024\r\n\r\n" + std::string(1024, '\0'));
  ASSERT_EQ(put.size(), 1u);
  EXPECT_EQ(put[0].status, 400);
  EXPECT_EQ(json::parse(put[0].body)["message"], "extraction point is not a directory");
  out_of({"rm", "-f", "c1"});
}

TEST_F(ServeIoTest, CopyNeverLeavesTheContainersRoot) {
  out_of({"run", "-d", "--name", "e1", "busybox", "sh", "-c",
          "echo container-shadow > /etc/shadow; ln -s / /escape; ln -s ../../../.. /rel; mkdir /drop; "
          "ln -s /etc /drop/etclink; touch /ready; exec sleep 53174"});
  ASSERT_TRUE(eventually([&] { return get(socket(), "/containers/e1/archive?path=/ready", "HEAD").status == 200; },
                         kStartTimeout));
  // A symlink to / (or up and up) inside the container leads to the container's own /etc.
  auto r = shell("docker cp e1:/escape/etc/shadow - | tar -xOf -");
  EXPECT_EQ(r.out, "container-shadow\n");
  r = shell("docker cp e1:/rel/etc/shadow - | tar -xOf -");
  EXPECT_EQ(r.out, "container-shadow\n");
  // Tars with "../" entries and entries through a symlink stay inside, or are refused.
  SANDRUN_REQUIRE(run_command({"python3", "-c", "import docker"}).status == 0, "needs python3-docker");
  const std::string marker = tmp_ / "host-marker";
  auto py = python(
      "k = c.containers.get('e1')\n"
      "def tar(entries):\n"
      "    b = io.BytesIO(); t = tarfile.open(fileobj=b, mode='w')\n"
      "    for name, kind, data in entries:\n"
      "        i = tarfile.TarInfo(name)\n"
      "        if kind == 'l': i.type = tarfile.SYMTYPE; i.linkname = data; t.addfile(i)\n"
      "        else: i.size = len(data); t.addfile(i, io.BytesIO(data))\n"
      "    t.close(); return b.getvalue()\n"
      "for entries in ([('../../../../../../.." + marker + "', 'f', b'x')],\n"
      "                [('abs', 'l', '" + tmp_.path() + "'), ('abs/host-marker', 'f', b'x')],\n"
      "                [('etclink/passwd', 'f', b'x')]):\n"
      "    try:\n"
      "        print(k.put_archive('/drop', tar(entries)))\n"
      "    except docker.errors.APIError as e:\n"
      "        print(e.status_code)\n"
      "print(k.put_archive('/drop', tar([('ok.txt', 'f', b'fine')])))\n"
      "s, st = k.get_archive('/drop/ok.txt')\n"
      "print(st['name'], st['size'])\n"
      "print(tarfile.open(fileobj=io.BytesIO(b''.join(s))).extractfile('ok.txt').read())\n"
      // Its other mounts are crossed (its /tmp is a tmpfs), but never into proc or sysfs, where
      // the daemon's write would set the host kernel's settings.
      "print(k.put_archive('/', tar([('tmp/in-tmpfs.txt', 'f', b'tmp')])))\n"
      "print(k.exec_run(['cat', '/tmp/in-tmpfs.txt']).output)\n"
      "for entries in ([('proc/sys/kernel/core_pattern', 'f', b'|/evil')], [('sys/kernel/x', 'f', b'x')]):\n"
      "    try:\n"
      "        print(k.put_archive('/', tar(entries)))\n"
      "    except docker.errors.APIError as e:\n"
      "        print(e.status_code)\n");
  EXPECT_EQ(py.status, 0) << py.err;
  EXPECT_EQ(py.out, "400\n400\n400\nTrue\nok.txt 4\nb'fine'\nTrue\nb'tmp'\n400\n400\n");
  EXPECT_EQ(read_file("/proc/sys/kernel/core_pattern").find("evil"), std::string::npos);
  EXPECT_FALSE(fs_exists(marker));
  EXPECT_EQ(run_command({"grep", "-c", "^x$", "/etc/passwd"}).out, "0\n");
  out_of({"rm", "-f", "e1"});
}

TEST_F(ServeIoTest, CopyIntoACreatedContainerIsThereWhenItsCommandRuns) {
  auto id = out_of({"create", "--name", "p1", "busybox", "sh", "-c", "stat -c '%u %a' /etc/conf.txt; cat /etc/conf.txt"});
  const std::string src = tmp_ / "conf.txt";
  ASSERT_EQ(run_command({"/bin/sh", "-c", "echo configured > " + src + "; chmod 640 " + src}).status, 0);
  auto r = docker({"cp", src, "p1:/etc/conf.txt"});
  EXPECT_EQ(r.status, 0) << r.err;
  r = docker({"start", "-a", "p1"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "0 640\nconfigured\n");
  // Again at its next start (a copy belongs to the container, not to one run).
  out_of({"start", "p1"});
  EXPECT_EQ(out_of({"wait", "p1"}), "0\n");
  EXPECT_EQ(out_of({"logs", "p1"}), "0 640\nconfigured\n0 640\nconfigured\n");
  // Exited: its writable layer is gone; the answer says so.
  r = docker({"cp", "p1:/etc/conf.txt", tmp_.path()});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("is not running"), std::string::npos) << r.err;
  out_of({"rm", "p1"});
}

}  // namespace
}  // namespace sandrun::testing
