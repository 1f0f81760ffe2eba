// The GitHub Actions runner's docker CLI sequence for a container job with a service, as its
// public source issues it (src/Runner.Worker/Container/DockerCommandManager.cs,
// ContainerOperationProvider.cs, Handlers/StepHost.cs), in its order and with its argument
// shapes, against `sandrun serve`; each exit code and each output the runner parses is checked.
// The runner hands docker one argument string that .NET splits on blanks and double quotes
// only: its `--format '{{.Server.APIVersion}}'` reaches docker with the single quotes, which
// docker prints back (the runner's regex takes the version out of them). The argv below are
// those splits.
#include <regex>

#include "tests/api/busybox_registry.h"
#include "tests/api/client_fixture.h"

namespace sandrun::testing {
namespace {

// The runner's DockerInstanceLabel: the first 6 hex digits of its .runner file's SHA-256.
constexpr const char* kLabel = "8a4f0c";

class GhaSequenceTest : public ClientTest {
 protected:
  void SetUp() override {
    std::string why;
    SANDRUN_REQUIRE(BusyboxRegistry::available(&why), why);
    ClientTest::SetUp();
    ASSERT_EQ(registry_.start(), "");
    // The runner's directories: _work (the workspace, _temp, _actions, _tool), externals.
    for (const std::string d : {"", "_work", "_work/repo", "_work/repo/repo", "_work/_temp", "_work/_temp/_github_home",
                                "_work/_temp/_github_workflow", "_work/_actions", "_work/_tool", "externals"}) {
      ASSERT_EQ(::mkdir(runner(d).c_str(), 0755), 0) << d;
    }
    write_file(runner("_work/_temp/_github_workflow/event.json"), "{\"ref\":\"refs/heads/main\"}\n");
    write_file(runner("externals/node.txt"), "an external tool\n");
    give_to_checkout_owner(runner("_work"));
  }
  std::string runner(const std::string& path) const { return tmp_ / ("runner/" + path); }
  // docker with the runner's argv and `env` added to its environment (`-e NAME` takes the value
  // from there), stdin a pipe that carries `input` and is then closed, as the runner's
  // process invoker gives it.
  CommandResult docker_piped(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                             const std::string& input = "") {
    std::vector<std::string> argv{"/bin/sh", "-c", "printf '%s' \"$RUNNER_STDIN\" | /usr/bin/docker \"$@\"", "sh"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> all = client_env();
    all.insert(all.end(), env.begin(), env.end());
    all.push_back("RUNNER_STDIN=" + input);
    return run_command(argv, all);
  }
  // What a runner step reads: status 0 and stdout (the runner requires exit code 0 for these).
  std::string lines_of(const std::vector<std::string>& args) {
    auto r = docker(args);
    EXPECT_EQ(r.status, 0) << "docker " << args.front() << ": " << r.err;
    return r.out;
  }
  // StartContainerAsync after the pull: create, start, the ps that checks it runs.
  std::string create_and_start(const std::vector<std::string>& create_args) {
    auto created = docker(create_args);
    EXPECT_EQ(created.status, 0) << created.err;
    std::string id = created.out.substr(0, created.out.find('\n'));
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{64}"))) << created.out;
    EXPECT_EQ(lines_of({"start", id}), id + "\n");
    const std::string ps = lines_of({"ps", "--all", "--filter", "id=" + id, "--filter", "status=running", "--no-trunc",
                                     "--format", "{{.ID}} {{.Status}}"});
    EXPECT_TRUE(ps.starts_with(id + " Up ")) << ps;
    return id;
  }

  BusyboxRegistry registry_;
};

TEST_F(GhaSequenceTest, AContainerJobWithAServiceRunsAsTheRunnerDrivesIt) {
  // A previous job's leftovers, labelled by this runner: a container and a network.
  const std::string stale = lines_of({"create", "--label", kLabel, "busybox", "true"}).substr(0, 64);
  lines_of({"network", "create", "--label", kLabel, "github_network_0ld"});

  // DockerVersion: the server's and the client's API versions, quotes included.
  EXPECT_EQ(lines_of({"version", "--format", "'{{.Server.APIVersion}}'"}), "'1.47'\n");
  EXPECT_EQ(lines_of({"version", "--format", "'{{.Client.APIVersion}}'"}), "'1.41'\n");
  // Clean up resources from previous jobs.
  EXPECT_EQ(lines_of({"ps", "--all", "--quiet", "--no-trunc", "--filter", std::string("label=") + kLabel}), stale + "\n");
  EXPECT_EQ(docker({"rm", "--force", stale}).status, 0);
  auto prune = docker({"network", "prune", "--force", "--filter", std::string("label=") + kLabel});
  EXPECT_EQ(prune.status, 0) << prune.err;
  EXPECT_EQ(prune.out, "Deleted Networks:\ngithub_network_0ld\n\n");
  // Create local container network.
  const std::string net = "github_network_5b1f0e4a9d6c4e2f8a7b3c1d0e9f8a7b";
  auto created = docker({"network", "create", "--label", kLabel, net});
  ASSERT_EQ(created.status, 0) << created.err;

  // The job container: pulled, created with the runner's mounts, kept alive by tail.
  const std::string image = registry_.reference("busybox");
  auto pull = docker({"pull", image});
  ASSERT_EQ(pull.status, 0) << pull.out << pull.err;
  const std::string job = create_and_start(
      {"create", "--name", "e2b6a1_127001ciBusybox1_3f9c2d", "--label", kLabel, "--workdir", "/__w/repo/repo",
       "--network", net, "-e", "HOME=/github/home", "-e", "GITHUB_ACTIONS=true", "-e", "CI=true",
       "-v", socket() + ":/var/run/docker.sock",  // the runner's /var/run/docker.sock: this daemon's socket
       "-v", runner("_work") + ":/__w", "-v", runner("externals") + ":/__e:ro", "-v", runner("_work/_temp") + ":/__w/_temp",
       "-v", runner("_work/_actions") + ":/__w/_actions", "-v", runner("_work/_tool") + ":/__t",
       "-v", runner("_work/_temp/_github_home") + ":/github/home",
       "-v", runner("_work/_temp/_github_workflow") + ":/github/workflow",
       "--entrypoint", "tail", image, "-f", "/dev/null"});
  // Its PATH, which the runner prepends to in each step.
  const std::string env = lines_of({"inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", job});
  EXPECT_NE(env.find("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"), std::string::npos) << env;
  for (const std::string line : {"HOME=/github/home\n", "GITHUB_ACTIONS=true\n", "CI=true\n"})
    EXPECT_NE(env.find(line), std::string::npos) << env;

  // The service: its image's own command, an alias on the job's network, a port, a health check.
  const std::string web = registry_.reference("web");
  pull = docker({"pull", web});
  ASSERT_EQ(pull.status, 0) << pull.out << pull.err;
  const std::string service = create_and_start(
      {"create", "--name", "web_127001ciweb1_7d8e9f", "--label", kLabel, "--network", net, "--network-alias", "web",
       "-p", "80", "--health-cmd", "wget -q -O /dev/null http://localhost/", "--health-interval", "1s",
       "--health-retries", "30", "-e", "GITHUB_ACTIONS=true", "-e", "CI=true", web});
  // DockerPort: the lines ParseDockerPort reads ("80/tcp -> HOST:PORT").
  const std::string ports = lines_of({"port", service});
  EXPECT_TRUE(std::regex_search(ports, std::regex("^80/tcp -> 0\\.0\\.0\\.0:[0-9]+\n"))) << ports;
  // Waiting for all services to be ready: starting, then healthy.
  const std::vector<std::string> health{"inspect", "--format={{if .Config.Healthcheck}}{{print .State.Health.Status}}{{end}}"};
  auto health_of = [&](const std::string& id) {
    auto args = health;
    args.push_back(id);
    return lines_of(args);
  };
  const std::string first = health_of(service);
  EXPECT_TRUE(first == "starting\n" || first == "healthy\n") << first;
  EXPECT_TRUE(eventually([&] { return health_of(service) == "healthy\n"; }, kStartTimeout));
  EXPECT_EQ(health_of(job), "\n");  // no health check: an empty line

  // DetermineNodeRuntimeVersion's probe (busybox has no /etc/*release: not alpine).
  auto probe = docker({"exec", job, "sh", "-c", "cat /etc/*release | grep ^ID"});
  EXPECT_EQ(probe.status, 1) << probe.err;
  // A run step: the script the runner wrote to its temp dir, run with -i, the step's workdir
  // and env (values from docker's own environment), the job container's PATH prepended.
  write_file(runner("_work/_temp/2c6f1a3e-step.sh"),
             "echo \"hello $GREETING from $(pwd) as $HOME\"\n"
             "wget -q -O - http://web/\n"
             "cat /github/workflow/event.json /__e/node.txt\n"
             "test -S /var/run/docker.sock && echo socket mounted\n"
             "echo step output > /__w/repo/repo/out.txt\n"
             "echo $PATH\n");
  auto step = docker_piped({"exec", "-i", "--workdir", "/__w/repo/repo", "-e", "GREETING", "-e", "HOME", "-e",
                            "GITHUB_ACTIONS", "-e", "CI", "-e", "PATH=/__t/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                            job, "sh", "-e", "/__w/_temp/2c6f1a3e-step.sh"},
                           {"GREETING=world", "HOME=/github/home", "GITHUB_ACTIONS=true", "CI=true"});
  EXPECT_EQ(step.status, 0) << step.err;
  EXPECT_EQ(step.out,
            "hello world from /__w/repo/repo as /github/home\nserved by ci/web\n{\"ref\":\"refs/heads/main\"}\n"
            "an external tool\nsocket mounted\n/__t/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
  EXPECT_EQ(read_file(runner("_work/repo/repo/out.txt")), "step output\n");
  // A failing step: its exit code is the step's result; input on stdin reaches the script.
  auto failing = docker_piped({"exec", "-i", "--workdir", "/__w/repo/repo", job, "sh", "-e", "-c", "read line; echo got $line; exit 7"},
                              {}, "from stdin\n");
  EXPECT_EQ(failing.status, 7) << failing.err;
  EXPECT_EQ(failing.out, "got from stdin\n");

  // Stop containers: rm --force each, then the network.
  EXPECT_EQ(lines_of({"rm", "--force", job}), job + "\n");
  EXPECT_EQ(lines_of({"rm", "--force", service}), service + "\n");
  EXPECT_EQ(lines_of({"network", "rm", net}), net + "\n");
  // The next job's cleanup finds nothing of this one.
  EXPECT_EQ(lines_of({"ps", "--all", "--quiet", "--no-trunc", "--filter", std::string("label=") + kLabel}), "");
  prune = docker({"network", "prune", "--force", "--filter", std::string("label=") + kLabel});
  EXPECT_EQ(prune.status, 0) << prune.err;
  EXPECT_EQ(prune.out, "");
  for (const std::string& ref : {image, web}) lines_of({"rmi", ref});
  expect_no_client_objects_left();
  stop_and_expect_nothing_left();
}

// ContainerHealthcheck waits while the status reads "starting": a service that exits before it
// is healthy reads "unhealthy" (as Docker's once its monitor stops), so that the runner fails the
// job ("Failed to initialize, db service is unhealthy.") instead of waiting for ever.
TEST_F(GhaSequenceTest, AServiceThatExitsBeforeItIsHealthyReadsUnhealthy) {
  const std::string net = "github_network_0e1d2c3b4a5968778695a4b3c2d1e0f9";
  ASSERT_EQ(docker({"network", "create", "--label", kLabel, net}).status, 0);
  const std::string web = registry_.reference("web");
  ASSERT_EQ(docker({"pull", web}).status, 0);
  auto created = docker({"create", "--name", "db_127001ciweb1_a1b2c3", "--label", kLabel, "--network", net,
                         "--network-alias", "db", "--health-cmd", "false", "--health-interval", "10s",
                         "-e", "GITHUB_ACTIONS=true", "-e", "CI=true", "--entrypoint", "sh", web, "-c", "exit 3"});
  ASSERT_EQ(created.status, 0) << created.err;
  const std::string id = created.out.substr(0, 64);
  EXPECT_EQ(lines_of({"start", id}), id + "\n");
  const std::vector<std::string> health{
      "inspect", "--format={{if .Config.Healthcheck}}{{print .State.Health.Status}}{{end}}", id};
  EXPECT_TRUE(eventually([&] { return lines_of(health) == "unhealthy\n"; }, kStartTimeout)) << lines_of(health);
  const std::string ps = lines_of({"ps", "--all", "--filter", "id=" + id, "--no-trunc", "--format", "{{.ID}} {{.Status}}"});
  EXPECT_TRUE(ps.starts_with(id + " Exited (3) ")) << ps;
  EXPECT_EQ(lines_of({"rm", "--force", id}), id + "\n");
  EXPECT_EQ(lines_of({"network", "rm", net}), net + "\n");
  lines_of({"rmi", web});
  expect_no_client_objects_left();
  stop_and_expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
