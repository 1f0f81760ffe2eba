// Containers wired to volumes and networks through real clients (Debian's docker CLI and
// docker-py) against `sandrun serve`: named, anonymous and tmpfs mounts, user networks joined
// at run and by connect, in-use refusals of volumes, images and networks.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <regex>

#include <nlohmann/json.hpp>

#include "tests/api/serve_fixture.h"
#include "tests/support/host_state.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

// A busybox web server answering "hello" on 8080.
const std::vector<std::string> kWeb = {"busybox", "sh", "-c",
                                       "mkdir /tmp/w && echo hello > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w"};

class WiringTest : public ServeTest {
 protected:
  void SetUp() override {
    ServeTest::SetUp();
    require_docker();
    start();
  }
  std::vector<std::string> run_web(const std::vector<std::string>& flags) {
    std::vector<std::string> args{"run", "-d"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), kWeb.begin(), kWeb.end());
    return args;
  }
  // GET http://HOST:8080/ from a fresh container on `network` (busybox nc): the body, "" when
  // nothing answers.
  std::string fetch(const std::string& network, const std::string& host) {
    auto r = docker({"run", "--rm", "--network", network, "busybox", "sh", "-c",
                     "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 " + host + " 8080"});
    const size_t body = r.out.find("\r\n\r\n");
    return r.status == 0 && body != std::string::npos ? r.out.substr(body + 4) : "";
  }
};

// The host's first IPv4 address that is not loopback ("" when it has none).
std::string host_address() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) < 0) return "";
  std::string out;
  for (ifaddrs* i = list; i && out.empty(); i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof text);
    if (std::string(text).rfind("127.", 0) != 0) out = text;
  }
  ::freeifaddrs(list);
  return out;
}

TEST_F(WiringTest, MembersOfANetworkReachEachOtherByNameAndAliasAndNothingOfTheHost) {
  out_of({"network", "create", "n1"});
  out_of(run_web({"--name", "srv", "--network", "n1", "--network-alias", "db"}));
  ASSERT_TRUE(eventually([&] { return fetch("n1", "srv") == "hello\n"; }, kStartTimeout));
  EXPECT_EQ(fetch("n1", "db"), "hello\n");
  const std::string ip = out_of({"inspect", "--format", "{{.NetworkSettings.Networks.n1.IPAddress}}", "srv"});
  EXPECT_TRUE(std::regex_match(ip, std::regex("10\\.89\\.\\d+\\.\\d+\n"))) << ip;
  EXPECT_EQ(fetch("n1", ip.substr(0, ip.size() - 1)), "hello\n");
  EXPECT_EQ(out_of({"inspect", "--format", "{{.NetworkSettings.IPAddress}}", "srv"}), ip);
  EXPECT_EQ(out_of({"inspect", "--format", "{{json .NetworkSettings.Networks.n1.Aliases}}", "srv"}), "[\"db\"]\n");
  EXPECT_EQ(out_of({"ps", "--filter", "network=n1", "--format", "{{.Names}}"}), "srv\n");
  // Another network, and the default one, do not reach it.
  out_of({"network", "create", "n9"});
  EXPECT_EQ(fetch("n9", ip.substr(0, ip.size() - 1)), "");
  EXPECT_EQ(fetch("n9", "srv"), "");
  auto dflt = docker({"run", "--rm", "busybox", "nc", "-w", "2", ip.substr(0, ip.size() - 1), "8080"});
  EXPECT_NE(dflt.status, 0);
  // The host: a socket listening on all its addresses is not reached from the network.
  const std::string host = host_address();
  if (!host.empty()) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 4), 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    auto reach = docker({"run", "--rm", "--network", "n1", "busybox", "sh", "-c",
                         "nc -w 2 " + host + " " + std::to_string(ntohs(a.sin_port)) + " </dev/null && echo reached || echo no"});
    ::close(fd);
    EXPECT_EQ(reach.out, "no\n") << reach.err;
  }
  // The network's inspect lists its member.
  json net = json::parse(out_of({"network", "inspect", "n1"}));
  ASSERT_EQ(net[0]["Containers"].size(), 1u) << net.dump();
  EXPECT_EQ(net[0]["Containers"].begin().value()["Name"], "srv");
  // In use: Docker's words, until the container goes.
  auto rm = docker({"network", "rm", "n1"});
  EXPECT_NE(rm.status, 0);
  const std::string id = json::parse(out_of({"network", "inspect", "n1"}))[0]["Id"];
  EXPECT_NE(rm.err.find("error while removing network: network n1 id " + id + " has active endpoints"), std::string::npos)
      << rm.err;
  out_of({"rm", "-f", "srv"});
  out_of({"network", "rm", "n1", "n9"});
  stop_and_expect_nothing_left();
}

TEST_F(WiringTest, ConnectAndDisconnectARunningAndACreatedContainer) {
  out_of({"network", "create", "n2"});
  out_of(run_web({"--name", "aa"}));
  out_of({"network", "connect", "--alias", "web", "n2", "aa"});
  ASSERT_TRUE(eventually([&] { return fetch("n2", "web") == "hello\n"; }, kStartTimeout));
  EXPECT_EQ(fetch("n2", "aa"), "hello\n");
  auto twice = docker({"network", "connect", "n2", "aa"});
  EXPECT_NE(twice.err.find("endpoint with name aa already exists in network n2"), std::string::npos) << twice.err;
  // A created container joins when it starts; its /etc/hosts names the others.
  out_of({"create", "--name", "bb", "busybox", "sh", "-c", "cat /etc/hosts; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 web 8080"});
  out_of({"network", "connect", "n2", "bb"});
  EXPECT_EQ(out_of({"inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "bb"}), "n2 \n");
  const std::string b = out_of({"start", "-a", "bb"});
  EXPECT_NE(b.find("\taa web"), std::string::npos) << b;
  EXPECT_TRUE(b.ends_with("hello\n")) << b;
  auto rm = docker({"network", "rm", "n2"});
  EXPECT_NE(rm.err.find("has active endpoints"), std::string::npos) << rm.err;
  out_of({"network", "disconnect", "n2", "aa"});
  EXPECT_EQ(fetch("n2", "web"), "");
  auto again = docker({"network", "disconnect", "n2", "aa"});
  EXPECT_NE(again.err.find("is not connected to network"), std::string::npos) << again.err;
  auto nobody = docker({"network", "connect", "n2", "nobody"});
  EXPECT_NE(nobody.err.find("No such container: nobody"), std::string::npos) << nobody.err;
  out_of({"network", "rm", "n2"});
  out_of({"rm", "-f", "aa", "bb"});
  stop_and_expect_nothing_left();
}

TEST_F(WiringTest, PublishedPortsOfANetworkMemberReachItFromTheHost) {
  out_of({"network", "create", "n3"});
  out_of(run_web({"--name", "pub", "--network", "n3", "-p", "127.0.0.1::8080"}));
  const std::string port = out_of({"port", "pub", "8080/tcp"});
  ASSERT_TRUE(port.starts_with("127.0.0.1:")) << port;
  const uint16_t host_port = static_cast<uint16_t>(std::stoi(port.substr(10)));
  ASSERT_TRUE(eventually([&] { return http_get(host_port).find("hello") != std::string::npos; }, kStartTimeout));
  out_of({"rm", "-f", "pub"});
  EXPECT_EQ(http_get(host_port), "") << "the port stayed open";
  out_of({"network", "rm", "n3"});
  stop_and_expect_nothing_left();
}

TEST_F(WiringTest, ExtraHostsAreInEtcHosts) {
  const std::string hosts =
      out_of({"run", "--rm", "--add-host", "foo:10.1.2.3", "--add-host", "gw:host-gateway", "busybox", "cat", "/etc/hosts"});
  EXPECT_NE(hosts.find("10.1.2.3\tfoo\n"), std::string::npos) << hosts;
  EXPECT_NE(hosts.find("127.0.0.1\tgw\n"), std::string::npos) << hosts;
  auto bad = request_json(socket(), "POST", "/v1.41/containers/create",
                          R"({"Image":"busybox","Cmd":["true"],"HostConfig":{"ExtraHosts":["foo:notanip"]}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body, "{\"message\":\"HostConfig.ExtraHosts: invalid IP address in add-host: \\\"notanip\\\"\"}\n");
  stop_and_expect_nothing_left();
}

TEST_F(WiringTest, NamedVolumesKeepDataBetweenContainers) {
  out_of({"volume", "create", "vv"});
  out_of({"run", "--rm", "-v", "vv:/data", "busybox", "sh", "-c", "echo kept > /data/f"});
  EXPECT_EQ(out_of({"run", "--rm", "-v", "vv:/data:ro", "busybox", "cat", "/data/f"}), "kept\n");
  auto ro = docker({"run", "--rm", "-v", "vv:/data:ro", "busybox", "touch", "/data/g"});
  EXPECT_NE(ro.status, 0);
  EXPECT_NE(ro.err.find("Read-only file system"), std::string::npos) << ro.err;
  // A volume a container mounts first is made then (owned by the container's root).
  EXPECT_EQ(out_of({"run", "--rm", "-v", "auto:/x", "busybox", "sh", "-c", "touch /x/y && stat -c %u /x/y"}), "0\n");
  EXPECT_EQ(out_of({"volume", "ls", "-q"}), "auto\nvv\n");
  // In use by a container (even one that does not run): refused in Docker's words.
  const std::string id = out_of({"create", "--name", "user", "--mount", "type=volume,source=vv,target=/d", "busybox", "true"});
  auto rm = docker({"volume", "rm", "vv"});
  EXPECT_NE(rm.status, 0);
  EXPECT_NE(rm.err.find("remove vv: volume is in use - [" + id.substr(0, id.size() - 1) + "]"), std::string::npos) << rm.err;
  EXPECT_EQ(out_of({"volume", "ls", "-q", "--filter", "dangling=true"}), "auto\n");
  json mounts = json::parse(out_of({"inspect", "--format", "{{json .Mounts}}", "user"}));
  ASSERT_EQ(mounts.size(), 1u) << mounts.dump();
  EXPECT_EQ(mounts[0]["Type"], "volume");
  EXPECT_EQ(mounts[0]["Name"], "vv");
  EXPECT_EQ(mounts[0]["Destination"], "/d");
  EXPECT_EQ(mounts[0]["Source"], root() + "/volumes/vv/_data");
  EXPECT_EQ(mounts[0]["RW"], true);
  out_of({"rm", "user"});
  out_of({"volume", "rm", "vv", "auto"});
  auto bad = docker({"create", "-v", "bad$name:/x", "busybox", "true"});
  EXPECT_NE(bad.err.find("includes invalid characters for a local volume name"), std::string::npos) << bad.err;
  stop_and_expect_nothing_left();
}

TEST_F(WiringTest, AnonymousVolumesGoWithRmVAndRunRm) {
  out_of({"run", "--rm", "-v", "/data", "busybox", "sh", "-c", "echo x > /data/y"});
  EXPECT_EQ(out_of({"volume", "ls", "-q"}), "");
  out_of({"run", "--name", "an", "-v", "/data", "busybox", "sh", "-c", "echo x > /data/y"});
  const std::string name = out_of({"volume", "ls", "-q"});
  EXPECT_TRUE(std::regex_match(name, std::regex("[0-9a-f]{64}\n"))) << name;
  out_of({"rm", "-v", "an"});
  EXPECT_EQ(out_of({"volume", "ls", "-q"}), "");
  // Without -v it stays (dangling once its container is gone).
  out_of({"run", "--name", "keep", "--mount", "type=volume,target=/k", "busybox", "true"});
  out_of({"rm", "keep"});
  EXPECT_EQ(out_of({"volume", "ls", "-q", "--filter", "dangling=true"}).size(), 65u);
  out_of({"volume", "prune", "-f"});
  EXPECT_EQ(out_of({"volume", "ls", "-q"}), "");
  stop_and_expect_nothing_left();
}

TEST_F(WiringTest, TmpfsMountsHaveTheirSizeAndMode) {
  auto full = docker({"run", "--rm", "--tmpfs", "/scratch:size=1m", "busybox", "sh", "-c",
                      "dd if=/dev/zero of=/scratch/f bs=1024 count=2048 2>/dev/null; echo $?; stat -c %s /scratch/f; "
                      "stat -c %a /scratch; grep -c ' /scratch tmpfs ' /proc/mounts"});
  EXPECT_EQ(full.out, "1\n1048576\n1777\n1\n") << full.err;
  auto mount = docker({"run", "--rm", "--mount", "type=tmpfs,destination=/t,tmpfs-size=65536,tmpfs-mode=0700", "busybox",
                       "sh", "-c", "stat -c %a /t; df -k /t | tail -1 | awk '{print $2}'"});
  EXPECT_EQ(mount.out, "700\n64\n") << mount.err;
  auto pct = docker({"create", "--tmpfs", "/x:size=50%", "busybox", "true"});
  EXPECT_NE(pct.err.find("a size in percent is not supported by sandrun"), std::string::npos) << pct.err;
  stop_and_expect_nothing_left();
}

TEST_F(WiringTest, AnImageInUseIsRefusedForRemovalUnlessForced) {
  const std::string id = out_of({"create", "--name", "uses", "busybox", "true"});
  auto rmi = docker({"rmi", "busybox"});
  EXPECT_NE(rmi.status, 0);
  EXPECT_NE(rmi.err.find("conflict: unable to remove repository reference \"busybox\" (must force) - container " +
                         id.substr(0, 12) + " is using its referenced image"),
            std::string::npos)
      << rmi.err;
  out_of({"rm", "uses"});
  out_of({"rmi", "busybox"});
  stop_and_expect_nothing_left();
}

TEST_F(WiringTest, DockerPyNetworksAndVolumes) {
  SANDRUN_REQUIRE(run_command({"python3", "-c", "import docker"}).status == 0, "needs python3-docker");
  const std::string script =
      "import docker\n"
      "c = docker.DockerClient(base_url='unix://" + socket() + "')\n"
      "net = c.networks.create('pynet')\n"
      "vol = c.volumes.create('pyvol', labels={'by': 'py'})\n"
      "srv = c.containers.run('busybox', ['sh', '-c', 'echo hello > /v/f; mkdir /tmp/w; cp /v/f /tmp/w/index.html; "
      "exec httpd -f -p 8080 -h /tmp/w'], detach=True, name='pysrv', network='pynet', "
      "volumes={'pyvol': {'bind': '/v', 'mode': 'rw'}})\n"
      "import time\n"
      "out = b''\n"
      "for i in range(50):\n"
      "    try:\n"
      "        out = c.containers.run('busybox', ['sh', '-c', 'printf \"GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n\" | nc -w 3 pysrv 8080 | tail -n 1'], network='pynet', remove=True)\n"
      "        break\n"
      "    except docker.errors.ContainerError:\n"
      "        time.sleep(0.2)\n"
      "print(out)\n"
      "net.reload(); print([x.name for x in net.containers])\n"
      "other = c.containers.create('busybox', ['true'], name='pyother')\n"
      "net.connect(other, aliases=['al'])\n"
      "other.reload(); print(sorted(other.attrs['NetworkSettings']['Networks']))\n"
      "net.disconnect(other)\n"
      "other.reload(); print(sorted(other.attrs['NetworkSettings']['Networks']))\n"
      "other.remove()\n"
      "srv.remove(force=True)\n"
      "print(c.volumes.get('pyvol').attrs['Labels'])\n"
      "vol.remove(); net.remove()\n"
      "print(len(c.volumes.list()), len(c.networks.list(names=['pynet'])))\n";
  auto r = run_command({"python3", "-c", script});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "b'hello\\n'\n['pysrv']\n['pynet']\n['none']\n{'by': 'py'}\n0 0\n");
  stop_and_expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
