// The network routes through Debian's docker CLI (/usr/bin/docker, API 1.41) and raw requests,
// against the real daemon: create, ls with filters, inspect, rm, prune, duplicates, the
// predefined networks, connect before the container registry exists; and what a network leaves
// (records only: no namespace holder and no link on the host once the daemon is gone, even
// after SIGKILL), and that it comes back when the daemon starts again.
#include <signal.h>
#include <time.h>

#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/api/serve_fixture.h"
#include "tests/support/host_state.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

class NetworkApiTest : public ServeTest {
 protected:
  void SetUp() override {
    ServeTest::SetUp();
    if (IsSkipped()) return;
    links_before_ = host_links();
    start();
  }
  void TearDown() override {
    stop_if_running();
    if (!links_before_.empty()) {
      EXPECT_EQ(host_links(), links_before_) << "the host's links changed";
    }
  }

  CommandResult docker(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/docker"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, {"DOCKER_HOST=unix://" + socket(), "DOCKER_CONFIG=" + (tmp_ / "docker-config")});
  }
  std::vector<std::string> names(const std::vector<std::string>& filters = {}) {
    std::vector<std::string> args{"network", "ls", "--format", "{{.Name}}"};
    for (const auto& f : filters) args.insert(args.end(), {"--filter", f});
    auto r = docker(args);
    EXPECT_EQ(r.status, 0) << r.err;
    std::vector<std::string> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  json inspect(const std::string& name) {
    auto r = docker({"network", "inspect", name});
    EXPECT_EQ(r.status, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    return j.is_array() && j.size() == 1 ? j[0] : json();
  }

  std::set<std::string> links_before_;
};

TEST_F(NetworkApiTest, CreateListInspectRemoveThroughTheDockerCli) {
  auto made = docker({"network", "create", "--label", "team=ci", "--label", "tier=db", "n1"});
  ASSERT_EQ(made.status, 0) << made.err;
  const std::string id = made.out.substr(0, made.out.size() - 1);
  EXPECT_EQ(id.size(), 64u) << made.out;
  ASSERT_EQ(docker({"network", "create", "n2"}).status, 0);
  auto custom = docker({"network", "create", "--subnet", "172.31.5.0/24", "--gateway", "172.31.5.254", "--internal", "n3"});
  ASSERT_EQ(custom.status, 0) << custom.err;

  EXPECT_EQ(names(), (std::vector<std::string>{"bridge", "host", "n1", "n2", "n3", "none"}));
  EXPECT_EQ(names({"label=team=ci"}), std::vector<std::string>{"n1"});
  EXPECT_EQ(names({"label=team=ci", "label=tier=web"}), std::vector<std::string>{});
  EXPECT_EQ(names({"label=tier"}), std::vector<std::string>{"n1"});
  EXPECT_EQ(names({"name=n"}), (std::vector<std::string>{"n1", "n2", "n3", "none"}));  // part of the name
  EXPECT_EQ(names({"type=custom"}), (std::vector<std::string>{"n1", "n2", "n3"}));
  EXPECT_EQ(names({"type=builtin"}), (std::vector<std::string>{"bridge", "host", "none"}));
  EXPECT_EQ(names({"driver=null"}), std::vector<std::string>{"none"});
  EXPECT_EQ(names({"id=" + id.substr(0, 10)}), std::vector<std::string>{"n1"});
  auto bad = docker({"network", "ls", "--filter", "type=weird"});
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("invalid filter: 'type'='weird'"), std::string::npos) << bad.err;

  json n1 = inspect("n1");
  EXPECT_EQ(n1["Name"], "n1");
  EXPECT_EQ(n1["Id"], id);
  EXPECT_EQ(n1["Scope"], "local");
  EXPECT_EQ(n1["Driver"], "bridge");
  EXPECT_EQ(n1["Internal"], false);
  EXPECT_EQ(n1["IPAM"]["Config"], json::parse(R"([{"Subnet":"10.89.0.0/24","Gateway":"10.89.0.1"}])"));
  EXPECT_EQ(n1["Labels"], json::parse(R"({"team":"ci","tier":"db"})"));
  EXPECT_EQ(n1["Containers"], json::object());
  EXPECT_EQ(inspect(id.substr(0, 12))["Name"], "n1");  // by id prefix
  EXPECT_EQ(inspect("n2")["IPAM"]["Config"][0]["Subnet"], "10.89.1.0/24");
  json n3 = inspect("n3");
  EXPECT_EQ(n3["IPAM"]["Config"], json::parse(R"([{"Subnet":"172.31.5.0/24","Gateway":"172.31.5.254"}])"));
  EXPECT_EQ(n3["Internal"], true);
  EXPECT_TRUE(fs_exists(root() + "/networks/" + id + ".json"));

  auto rm = docker({"network", "rm", "n1", "n3"});
  EXPECT_EQ(rm.status, 0) << rm.err;
  EXPECT_EQ(rm.out, "n1\nn3\n");
  auto gone = docker({"network", "inspect", "n1"});
  EXPECT_NE(gone.status, 0);
  EXPECT_NE(gone.err.find("No such network: n1"), std::string::npos) << gone.err;
  EXPECT_FALSE(fs_exists(root() + "/networks/" + id + ".json"));
  EXPECT_EQ(names({"type=custom"}), std::vector<std::string>{"n2"});
  // Docker's network events, replayed up to now.
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  auto events = docker({"events", "--since", "0", "--until", fmt::format("{}.{:09}", now.tv_sec, now.tv_nsec),
                        "--filter", "type=network", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.ID}}"});
  EXPECT_EQ(events.status, 0) << events.err;
  const std::string id3 = custom.out.substr(0, 64);
  EXPECT_EQ(events.out, "create n1 " + id + "\ncreate n2 " + inspect("n2")["Id"].get<std::string>() + "\ncreate n3 " +
                            id3 + "\ndestroy n1 " + id + "\ndestroy n3 " + id3 + "\n");
}

TEST_F(NetworkApiTest, DuplicateNamesAndThePredefinedNetworks) {
  ASSERT_EQ(docker({"network", "create", "n1"}).status, 0);
  for (const std::string name : {"n1", "bridge", "host", "none"}) {
    auto dup = docker({"network", "create", name});
    EXPECT_NE(dup.status, 0) << name;
    EXPECT_NE(dup.err.find("network with name " + name + " already exists"), std::string::npos) << dup.err;
  }
  auto r = get(socket(), "/v1.41/networks/n1");
  EXPECT_EQ(r.status, 200);
  r = request_json(socket(), "POST", "/v1.41/networks/create", R"({"Name":"n1","CheckDuplicate":true})");
  EXPECT_EQ(r.status, 409) << r.body;
  for (const std::string name : {"bridge", "host", "none"}) {
    auto rm = docker({"network", "rm", name});
    EXPECT_NE(rm.status, 0) << name;
    EXPECT_NE(rm.err.find(name + " is a pre-defined network and cannot be removed"), std::string::npos) << rm.err;
  }
  EXPECT_EQ(inspect("none")["Driver"], "null");
  EXPECT_EQ(inspect("host")["Driver"], "host");
  const json bridge = inspect("bridge");
  EXPECT_EQ(bridge["Driver"], "bridge");
  EXPECT_EQ(inspect(bridge["Id"].get<std::string>())["Name"], "bridge");
  // The ids stay the same for this engine.
  auto stopped = stop();
  ASSERT_EQ(stopped.status, 0) << stopped.err;
  start();
  EXPECT_EQ(inspect("bridge")["Id"], bridge["Id"]);
  auto ipv6 = docker({"network", "create", "--ipv6", "v6"});
  EXPECT_NE(ipv6.err.find("EnableIPv6: sandrun's networks are IPv4 only"), std::string::npos) << ipv6.err;
  auto overlay = docker({"network", "create", "--driver", "overlay", "o"});
  EXPECT_NE(overlay.err.find("Driver: sandrun's networks use the bridge driver only, not \"overlay\""),
            std::string::npos)
      << overlay.err;
  auto hostbits = docker({"network", "create", "--subnet", "10.50.0.1/24", "h"});
  EXPECT_NE(hostbits.err.find("invalid subnet 10.50.0.1/24: it has host bits set"), std::string::npos) << hostbits.err;
  auto overlap = docker({"network", "create", "--subnet", "10.89.0.0/16", "big"});
  EXPECT_NE(overlap.err.find("subnet 10.89.0.0/16 overlaps the subnet 10.89.0.0/24 of another network"),
            std::string::npos)
      << overlap.err;
  EXPECT_EQ(names({"type=custom"}), std::vector<std::string>{"n1"});
}

TEST_F(NetworkApiTest, PruneRemovesTheNetworksItsFiltersTake) {
  for (auto [name, keep] : {std::pair{"a", "no"}, std::pair{"b", "yes"}, std::pair{"c", "no"}})
    ASSERT_EQ(docker({"network", "create", "--label", std::string("keep=") + keep, name}).status, 0);
  auto r = docker({"network", "prune", "-f", "--filter", "label=keep=no"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Deleted Networks:\na\nc\n"), std::string::npos) << r.out;
  EXPECT_EQ(names({"type=custom"}), std::vector<std::string>{"b"});
  r = docker({"network", "prune", "-f", "--filter", "until=1h"});  // b is younger than an hour
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(names({"type=custom"}), std::vector<std::string>{"b"});
  r = docker({"network", "prune", "-f", "--filter", "label!=keep=yes"});
  EXPECT_EQ(names({"type=custom"}), std::vector<std::string>{"b"});
  r = docker({"network", "prune", "-f"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(names({"type=custom"}), std::vector<std::string>{});
  EXPECT_EQ(names(), (std::vector<std::string>{"bridge", "host", "none"}));  // the predefined stay
  EXPECT_EQ(dir_entries(root() + "/networks"), std::vector<std::string>{});
}

TEST_F(NetworkApiTest, DockerPyManagesNetworks) {
  SANDRUN_REQUIRE(run_command({"python3", "-c", "import docker"}).status == 0, "needs python3-docker");
  const std::string script =
      "import docker\n"
      "c = docker.DockerClient(base_url='unix://" + socket() + "')\n"
      "n = c.networks.create('py', labels={'by': 'docker-py'}, ipam=docker.types.IPAMConfig(\n"
      "    pool_configs=[docker.types.IPAMPool(subnet='192.168.77.0/24')]))\n"
      "print(n.name, len(n.id))\n"
      "print(sorted(x.name for x in c.networks.list(filters={'label': 'by=docker-py'})))\n"
      "g = c.networks.get('py')\n"
      "print(g.attrs['IPAM']['Config'][0]['Subnet'], g.attrs['IPAM']['Config'][0]['Gateway'], g.attrs['Labels'])\n"
      "g.remove()\n"
      "print(c.networks.prune())\n"
      "try:\n"
      "    c.networks.get('py')\n"
      "except docker.errors.NotFound as e:\n"
      "    print('gone')\n";
  auto r = run_command({"python3", "-c", script});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "py 64\n['py']\n192.168.77.0/24 192.168.77.1 {'by': 'docker-py'}\n{'NetworksDeleted': []}\ngone\n");
}

TEST_F(NetworkApiTest, ConnectAndDisconnectNameWhatIsMissing) {
  ASSERT_EQ(docker({"network", "create", "n1"}).status, 0);
  auto r = request_json(socket(), "POST", "/v1.41/networks/n1/connect", R"({"Container":"c1"})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"message\":\"No such container: c1\"}\n");
  r = request_json(socket(), "POST", "/v1.41/networks/nope/connect", R"({"Container":"c1"})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"message\":\"network nope not found\"}\n");
  r = request_json(socket(), "POST", "/v1.41/networks/n1/disconnect", R"({"Force":true})");
  EXPECT_EQ(r.status, 400);
  auto cli = docker({"network", "disconnect", "n1", "c1"});
  EXPECT_NE(cli.status, 0);
  EXPECT_NE(cli.err.find("No such container: c1"), std::string::npos) << cli.err;
  cli = docker({"network", "connect", "host", "c1"});
  EXPECT_NE(cli.err.find("sandrun does not connect containers to the predefined network host"), std::string::npos)
      << cli.err;
}

TEST_F(NetworkApiTest, AKilledDaemonLeavesOnlyTheRecordsAndMakesTheNetworksAgain) {
  auto made = docker({"network", "create", "--label", "x=y", "kept"});
  ASSERT_EQ(made.status, 0) << made.err;
  ASSERT_EQ(docker({"network", "create", "second"}).status, 0);
  const json before = inspect("kept");
  const std::vector<ino_t> held = net_namespaces_held_by(daemon_->pid());
  ASSERT_EQ(held.size(), 2u) << "one namespace per network, held by the daemon";
  daemon_->signal(SIGKILL);
  daemon_->finish();
  daemon_.reset();
  for (ino_t ino : held) EXPECT_EQ(net_namespace_holders(ino), std::vector<std::string>{}) << ino;
  EXPECT_EQ(host_links(), links_before_);
  auto cleanup = run_sandrun(root(), {"cleanup"});
  EXPECT_EQ(cleanup.status, 0) << cleanup.err;
  EXPECT_EQ(dir_entries(root() + "/networks").size(), 2u);
  start();
  const json after = inspect("kept");
  for (const char* key : {"Id", "Created", "IPAM", "Labels"}) EXPECT_EQ(after[key], before[key]) << key;
  EXPECT_EQ(net_namespaces_held_by(daemon_->pid()).size(), 2u);
  ASSERT_EQ(docker({"network", "rm", "kept", "second"}).status, 0);
  EXPECT_EQ(net_namespaces_held_by(daemon_->pid()), std::vector<ino_t>{});
  EXPECT_EQ(dir_entries(root() + "/networks"), std::vector<std::string>{});
}

}  // namespace
}  // namespace sandrun::testing
