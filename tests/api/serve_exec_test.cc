// Execs and health checks of the daemon's containers through real clients: Debian's docker CLI
// (`exec` with -i, -e, -w, -u, -t and exit codes; `--health-cmd`), docker-py's exec_run, and
// raw requests for exec inspect and the refusals; each test with its own `sandrun serve`.
#include <nlohmann/json.hpp>

#include "tests/api/serve_fixture.h"
#include "tests/support/host_state.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

// How many processes on the host run exactly `argv`.
size_t processes_running(const std::vector<std::string>& argv) {
  std::string want;
  for (const auto& a : argv) want += a + '\0';
  size_t n = 0;
  for (const auto& pid : dir_entries("/proc")) {
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline;
    try {
      cmdline = read_file("/proc/" + pid + "/cmdline");
    } catch (...) {
      continue;
    }
    if (cmdline == want) ++n;
  }
  return n;
}

class ServeExecTest : public ServeTest {
 protected:
  void SetUp() override {
    ServeTest::SetUp();
    require_docker();
    start();
  }
  // `printf INPUT | docker ARGS...` through sh (stdin piped, not a terminal).
  CommandResult docker_with_input(const std::string& input, const std::vector<std::string>& args) {
    std::string line = "printf '%s' \"$0\" |";
    for (const auto& a : docker_argv()) line += " '" + a + "'";
    for (const auto& a : args) line += " '" + a + "'";
    return run_command({"sh", "-c", line, input});
  }
  // A running busybox named `name` (its sleep carries this file's marker).
  void run_sleeper(const std::string& name, const std::vector<std::string>& flags = {}) {
    std::vector<std::string> args{"run", "-d", "--name", name};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), {"busybox", "sleep", "53817"});
    ASSERT_EQ(docker(args).status, 0);
  }
};

TEST_F(ServeExecTest, DockerExecPassesStdinEnvWorkdirUserAndATerminal) {
  run_sleeper("box");
  auto in = docker_with_input("hi\nthere\n", {"exec", "-i", "box", "cat"});
  EXPECT_EQ(in.status, 0) << in.err;
  EXPECT_EQ(in.out, "hi\nthere\n");
  // Without -i the exec's stdin is empty.
  EXPECT_EQ(docker_with_input("ignored", {"exec", "box", "cat"}).out, "");
  EXPECT_EQ(out_of({"exec", "-e", "GREETING=hello", "box", "sh", "-c", "echo $GREETING"}), "hello\n");
  EXPECT_EQ(out_of({"exec", "-w", "/etc", "box", "pwd"}), "/etc\n");
  EXPECT_EQ(out_of({"exec", "-u", "1234:5678", "box", "sh", "-c", "echo $(id -u) $(id -g)"}), "1234 5678\n");
  EXPECT_EQ(out_of({"exec", "-u", "nobody", "box", "id", "-un"}), "nobody\n");
  // stdout and stderr stay apart.
  auto both = docker({"exec", "box", "sh", "-c", "echo out; echo err >&2"});
  EXPECT_EQ(both.out, "out\n");
  EXPECT_EQ(both.err, "err\n");
  // -t: a terminal of its own (one stream, its line ending).
  auto tty = docker({"exec", "-t", "box", "tty"});
  EXPECT_EQ(tty.status, 0) << tty.err;
  EXPECT_TRUE(tty.out.starts_with("/dev/pts/")) << tty.out;
  EXPECT_TRUE(tty.out.ends_with("\r\n")) << tty.out;
  out_of({"rm", "-f", "box"});
  stop_and_expect_nothing_left();
}

TEST_F(ServeExecTest, DockerExecReturnsTheCommandsExitCode) {
  run_sleeper("codes");
  EXPECT_EQ(docker({"exec", "codes", "true"}).status, 0);
  EXPECT_EQ(docker({"exec", "codes", "sh", "-c", "exit 3"}).status, 3);
  auto missing = docker({"exec", "codes", "no-such-command"});
  EXPECT_EQ(missing.status, 127);
  EXPECT_NE(missing.err.find("sandrun: exec failed: "), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("no-such-command"), std::string::npos) << missing.err;
  auto not_exec = docker({"exec", "codes", "/etc/passwd"});
  EXPECT_EQ(not_exec.status, 126);
  EXPECT_NE(not_exec.err.find("/etc/passwd"), std::string::npos) << not_exec.err;
  // Killed by a signal: 128 + its number.
  EXPECT_EQ(docker({"exec", "codes", "sh", "-c", "kill -9 $$"}).status, 137);
  out_of({"rm", "-f", "codes"});
  stop_and_expect_nothing_left();
}

TEST_F(ServeExecTest, ExecIntoAContainerThatDoesNotRunIsRefused) {
  const std::string id = out_of({"create", "--name", "idle", "busybox", "true"});
  ASSERT_EQ(id.size(), 65u);
  auto r = docker({"exec", "idle", "true"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "Error response from daemon: container " + id.substr(0, 64) + " is not running\n");
  out_of({"start", "-a", "idle"});
  EXPECT_EQ(docker({"exec", "idle", "true"}).err, "Error response from daemon: container " + id.substr(0, 64) +
                                                      " is not running\n");
  auto none = docker({"exec", "nobody-here", "true"});
  EXPECT_EQ(none.status, 1);
  EXPECT_EQ(none.err, "Error: No such container: nobody-here\n");  // the CLI's inspect first
  stop_and_expect_nothing_left();
}

TEST_F(ServeExecTest, AnExecGoesFromCreatedToRunningToExitedAndIsInspected) {
  run_sleeper("states");
  auto made = request_json(socket(), "POST", "/v1.43/containers/states/exec",
                           R"({"Cmd": ["sh", "-c", "read x; exit 5"], "AttachStdin": true, "AttachStdout": true})");
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string eid = json::parse(made.body)["Id"];
  EXPECT_EQ(eid.size(), 64u);
  json x = json::parse(get(socket(), "/exec/" + eid + "/json").body);
  EXPECT_EQ(x["Running"], false);
  EXPECT_EQ(x["ExitCode"], nullptr);
  EXPECT_EQ(x["Pid"], 0);
  EXPECT_EQ(x["OpenStdin"], true);
  EXPECT_EQ(x["ProcessConfig"]["entrypoint"], "sh");
  EXPECT_EQ(x["ProcessConfig"]["arguments"], json::parse(R"(["-c", "read x; exit 5"])"));
  const std::string cid = json::parse(get(socket(), "/containers/states/json").body)["Id"];
  EXPECT_EQ(x["ContainerID"], cid);
  EXPECT_EQ(json::parse(get(socket(), "/containers/states/json").body)["ExecIDs"], json::array({eid}));
  // Detached: 200 at once; it runs (its stdin open, nobody writing) until the container stops.
  auto started = request_json(socket(), "POST", "/exec/" + eid + "/start", R"({"Detach": true})");
  EXPECT_EQ(started.status, 200) << started.body;
  ASSERT_TRUE(eventually([&] { return json::parse(get(socket(), "/exec/" + eid + "/json").body)["Pid"] != 0; },
                         kStartTimeout));
  x = json::parse(get(socket(), "/exec/" + eid + "/json").body);
  EXPECT_EQ(x["Running"], true);
  EXPECT_EQ(x["ExitCode"], nullptr);
  EXPECT_EQ(request_json(socket(), "POST", "/exec/" + eid + "/start", "{}").body,
            "{\"message\":\"Error: Exec command " + eid + " is already running\"}\n");
  // A resize of an exec without a terminal is refused.
  EXPECT_EQ(request_json(socket(), "POST", "/exec/" + eid + "/resize?h=10&w=20", "").status, 409);
  out_of({"stop", "-t", "1", "states"});
  ASSERT_TRUE(eventually([&] { return json::parse(get(socket(), "/exec/" + eid + "/json").body)["Running"] == false; },
                         kStartTimeout));
  x = json::parse(get(socket(), "/exec/" + eid + "/json").body);
  EXPECT_EQ(x["ExitCode"], 137);  // ended with its container's PID namespace
  // Kept until the container goes.
  out_of({"rm", "states"});
  auto gone = get(socket(), "/exec/" + eid + "/json");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.body, "{\"message\":\"No such exec instance: " + eid + "\"}\n");
  stop_and_expect_nothing_left();
}

TEST_F(ServeExecTest, RefusalsAndEventsOfExecs) {
  run_sleeper("ev");
  auto priv = request_json(socket(), "POST", "/containers/ev/exec", R"({"Cmd": ["id"], "Privileged": true})");
  EXPECT_EQ(priv.status, 400);
  EXPECT_EQ(priv.body, "{\"message\":\"Privileged: privileged execs are refused by sandrun (no policy allows them)\"}\n");
  EXPECT_EQ(request_json(socket(), "POST", "/containers/ev/exec", R"({"Cmd": []})").body,
            "{\"message\":\"No exec command specified\"}\n");
  EXPECT_EQ(request_json(socket(), "POST", "/containers/nope/exec", R"({"Cmd": ["id"]})").status, 404);
  EXPECT_EQ(request_json(socket(), "POST", "/exec/nope/start", R"({"Detach": true})").status, 404);
  EXPECT_EQ(docker({"exec", "ev", "sh", "-c", "exit 2"}).status, 2);
  const std::string until = std::to_string(::time(nullptr) + 1);
  EXPECT_EQ(out_of({"events", "--since", "0", "--until", until, "--filter", "type=container", "--filter",
                    "container=ev", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}"}),
            "create <no value>\nstart <no value>\nexec_create: sh -c exit 2 <no value>\n"
            "exec_start: sh -c exit 2 <no value>\nexec_die 2\n");
  // The exec's id is in its events.
  const std::string ids = out_of({"events", "--since", "0", "--until", until, "--filter", "event=exec_die",
                                  "--format", "{{.Actor.Attributes.execID}}"});
  EXPECT_EQ(ids.size(), 65u) << ids;
  out_of({"rm", "-f", "ev"});
  stop_and_expect_nothing_left();
}

TEST_F(ServeExecTest, HealthCmdReachesHealthyThroughExecs) {
  run_sleeper("hc", {"--health-cmd", "echo checked; test -e /tmp/ready", "--health-interval", "1s",
                     "--health-retries", "30"});
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.Health.Status}}", "hc"}), "starting\n");
  EXPECT_EQ(out_of({"ps", "--filter", "health=starting", "--format", "{{.Names}} {{.Status}}"}).find("hc Up"), 0u);
  out_of({"exec", "hc", "touch", "/tmp/ready"});
  ASSERT_TRUE(eventually([&] { return docker({"inspect", "--format", "{{.State.Health.Status}}", "hc"}).out == "healthy\n"; },
                         std::chrono::seconds(20)));
  const json state = json::parse(out_of({"inspect", "--format", "{{json .State.Health}}", "hc"}));
  EXPECT_EQ(state["FailingStreak"], 0);
  ASSERT_FALSE(state["Log"].empty());
  EXPECT_EQ(state["Log"].back()["ExitCode"], 0);
  EXPECT_EQ(state["Log"].back()["Output"], "checked\n");
  EXPECT_TRUE(out_of({"ps", "--format", "{{.Status}}"}).ends_with(" (healthy)\n"));
  EXPECT_EQ(out_of({"ps", "--filter", "health=healthy", "--format", "{{.Names}}"}), "hc\n");
  EXPECT_EQ(out_of({"ps", "--filter", "health=unhealthy", "--format", "{{.Names}}"}), "");
  EXPECT_EQ(out_of({"ps", "--filter", "health=none", "--format", "{{.Names}}"}), "");
  const std::string until = std::to_string(::time(nullptr) + 1);
  EXPECT_EQ(out_of({"events", "--since", "0", "--until", until, "--filter", "event=health_status", "--format",
                    "{{.Action}} {{.Actor.Attributes.name}}"}),
            "health_status: healthy hc\n");
  out_of({"rm", "-f", "hc"});
  stop_and_expect_nothing_left();
}

TEST_F(ServeExecTest, AFailingHealthCmdTurnsUnhealthyAfterItsRetriesAndATimeoutIsKilled) {
  run_sleeper("sick", {"--health-cmd", "echo nope >&2; exit 1", "--health-interval", "1s", "--health-retries", "2"});
  run_sleeper("slow", {"--health-cmd", "sleep 53818", "--health-interval", "1s", "--health-timeout", "1s",
                       "--health-retries", "1"});
  ASSERT_TRUE(eventually([&] { return docker({"inspect", "--format", "{{.State.Health.Status}}", "sick"}).out == "unhealthy\n"; },
                         std::chrono::seconds(20)));
  json state = json::parse(out_of({"inspect", "--format", "{{json .State.Health}}", "sick"}));
  EXPECT_GE(state["FailingStreak"], 2);
  EXPECT_EQ(state["Log"].back()["ExitCode"], 1);
  EXPECT_EQ(state["Log"].back()["Output"], "nope\n");
  EXPECT_EQ(out_of({"ps", "--filter", "health=unhealthy", "--filter", "name=sick", "--format", "{{.Names}} {{.Status}}"})
                .find("sick Up"),
            0u);
  EXPECT_TRUE(out_of({"ps", "--filter", "name=sick", "--format", "{{.Status}}"}).ends_with(" (unhealthy)\n"));
  ASSERT_TRUE(eventually([&] { return docker({"inspect", "--format", "{{.State.Health.Status}}", "slow"}).out == "unhealthy\n"; },
                         std::chrono::seconds(20)));
  state = json::parse(out_of({"inspect", "--format", "{{json .State.Health}}", "slow"}));
  EXPECT_EQ(state["Log"].front()["ExitCode"], -1);
  EXPECT_EQ(state["Log"].front()["Output"], "Health check exceeded timeout (1s)");
  // Never two checks at once: the killed one is gone, at most one sleep of the check runs.
  EXPECT_LE(processes_running({"sleep", "53818"}), 1u);
  const std::string until = std::to_string(::time(nullptr) + 1);
  EXPECT_EQ(out_of({"events", "--since", "0", "--until", until, "--filter", "event=health_status", "--filter",
                    "container=sick", "--format", "{{.Action}}"}),
            "health_status: unhealthy\n");
  out_of({"rm", "-f", "sick", "slow"});
  EXPECT_TRUE(eventually([] { return processes_running({"sleep", "53818"}) == 0; }, std::chrono::seconds(5)));
  stop_and_expect_nothing_left();
}

TEST_F(ServeExecTest, AnImagesOwnHealthcheckRunsUnlessTheCreateSaysNone) {
  // busybox saved, its config given a HEALTHCHECK (as a Dockerfile's would), loaded back as hc:1.
  const std::string saved = tmp_ / "busybox.tar", edited = tmp_ / "hc.tar";
  ASSERT_EQ(docker({"save", "-o", saved, "busybox"}).status, 0);
  const std::string script =
      "import hashlib, io, json, sys, tarfile\n"
      "src = tarfile.open(sys.argv[1]); files = {m.name: src.extractfile(m).read() for m in src.getmembers() if m.isfile()}\n"
      "manifest = json.loads(files['manifest.json'])\n"
      "config = json.loads(files[manifest[0]['Config']])\n"
      "config['config']['Healthcheck'] = {'Test': ['CMD-SHELL', 'echo from-image'], 'Interval': 1000000000}\n"
      "blob = json.dumps(config).encode()\n"
      "name = hashlib.sha256(blob).hexdigest() + '.json'\n"
      "del files[manifest[0]['Config']]\n"
      "files[name] = blob\n"
      "manifest = [{'Config': name, 'RepoTags': ['hc:1'], 'Layers': manifest[0]['Layers']}]\n"
      "files['manifest.json'] = json.dumps(manifest).encode()\n"
      "for n in ('repositories', 'index.json', 'oci-layout'): files.pop(n, None)\n"
      "out = tarfile.open(sys.argv[2], 'w')\n"
      "for n, data in files.items():\n"
      "    info = tarfile.TarInfo(n); info.size = len(data); out.addfile(info, io.BytesIO(data))\n"
      "out.close()\n";
  auto edit = run_command({"python3", "-c", script, saved, edited});
  ASSERT_EQ(edit.status, 0) << edit.err;
  auto loaded = docker({"load", "-i", edited});
  ASSERT_EQ(loaded.status, 0) << loaded.err;
  ASSERT_EQ(docker({"run", "-d", "--name", "inherits", "hc:1", "sleep", "53817"}).status, 0);
  ASSERT_EQ(docker({"run", "-d", "--name", "opted-out", "--no-healthcheck", "hc:1", "sleep", "53817"}).status, 0);
  ASSERT_TRUE(eventually([&] { return docker({"inspect", "--format", "{{.State.Health.Status}}", "inherits"}).out == "healthy\n"; },
                         std::chrono::seconds(20)));
  const json state = json::parse(out_of({"inspect", "--format", "{{json .State.Health}}", "inherits"}));
  EXPECT_EQ(state["Log"].back()["Output"], "from-image\n");
  EXPECT_EQ(out_of({"inspect", "--format", "{{json .State.Health}}", "opted-out"}), "null\n");
  EXPECT_EQ(out_of({"ps", "--filter", "health=none", "--format", "{{.Names}}"}), "opted-out\n");
  out_of({"rm", "-f", "inherits", "opted-out"});
  stop_and_expect_nothing_left();
}

TEST_F(ServeExecTest, DockerPyExecRunStreamsAndDemuxes) {
  SANDRUN_REQUIRE(run_command({"python3", "-c", "import docker"}).status == 0, "needs python3-docker");
  run_sleeper("py");
  const std::string script =
      "import docker\n"
      "c = docker.DockerClient(base_url='unix://" + socket() + "').containers.get('py')\n"
      "r = c.exec_run(['sh', '-c', 'echo out; echo err >&2; exit 4'], demux=True)\n"
      "print(r.exit_code, r.output)\n"
      "r = c.exec_run(['sh', '-c', 'echo a; sleep 0.2; echo b'], stream=True)\n"
      "print(b''.join(r.output))\n"
      "r = c.exec_run('pwd', workdir='/etc', environment={'X': '1'})\n"
      "print(r.exit_code, r.output)\n";
  auto r = run_command({"python3", "-c", script});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "4 (b'out\\n', b'err\\n')\nb'a\\nb\\n'\n0 b'/etc\\n'\n");
  out_of({"rm", "-f", "py"});
  stop_and_expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
