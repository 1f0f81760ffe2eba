// User networks (runner/net/networks.h) for real: network namespaces with a bridge and veth
// pairs, joined by "containers" that are what a container is to the network: a network
// namespace of their own (made as a pod makes one) and a private /etc/hosts, the registry's,
// bind-mounted for the processes run in them (busybox nc resolving names through it). What
// must stay unreachable (the host, another network) stays so, and nothing is left afterwards:
// no namespace holder, no link on the host, no file.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "runner/net/netlink.h"
#include "runner/net/network_record.h"
#include "runner/net/port_proxy.h"
#include "runner/net/networks.h"
#include "sandbox/netns.h"
#include "tests/runner/loop_thread.h"
#include "tests/support/host_state.h"
#include "tests/support/test_env.h"

namespace sandrun::runner {
namespace {

using testing::CommandResult;
using testing::host_links;
using testing::TempDir;

// The host's IPv4 addresses, loopback included.
std::vector<std::string> host_addresses() {
  std::vector<std::string> out;
  struct ifaddrs* all = nullptr;
  if (::getifaddrs(&all) < 0) return out;
  for (auto* a = all; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<struct sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
    out.push_back(text);
  }
  ::freeifaddrs(all);
  return out;
}

ino_t inode_of(int fd) {
  struct stat st {};
  ::fstat(fd, &st);
  return st.st_ino;
}

// A TCP echo server on port 7000 of a network namespace: it answers each connection's first
// line with "echo:<line>" and closes it.
class EchoServer {
 public:
  EchoServer(int netns_fd, uint16_t port) {
    auto s = sandbox::socket_in_netns(netns_fd, AF_INET, SOCK_STREAM);
    EXPECT_TRUE(s) << s.error().message();
    fd_ = std::move(*s);
    int one = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_.get(), 16), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
  }
  int accepted() const { return accepted_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++accepted_;
      std::string line;
      char ch;
      while (::read(c, &ch, 1) == 1 && ch != '\n') line += ch;
      const std::string reply = "echo:" + line + "\n";
      (void)!::write(c, reply.data(), reply.size());
      ::close(c);
    }
  }
  UniqueFd fd_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
};

// A stand-in for a container: its own network namespace and its /etc/hosts file.
struct Box {
  std::string id;
  std::string name;
  UniqueFd netns;
  std::string hosts;  // a host file, written in place by the registry's EtcWriter
  int writes = 0;

  Attachment attachment(std::vector<std::string> aliases = {}) {
    Attachment a;
    a.container_id = id;
    a.name = name;
    a.hostname = name;
    a.aliases = std::move(aliases);
    a.netns_fd = netns.get();
    a.write_etc = [this](const std::string& file, const std::string& content) {
      ASSERT_EQ(file, "hosts");
      std::ofstream(hosts, std::ios::trunc) << content;  // in place: it is bind-mounted
      ++writes;
    };
    return a;
  }
  // Runs `script` (busybox sh) in the box's namespace with its /etc/hosts.
  CommandResult run(const std::string& script) const {
    return testing::run_command({"nsenter", "--net=/proc/" + std::to_string(::getpid()) + "/fd/" +
                                                std::to_string(netns.get()),
                                 "unshare", "--mount", "--propagation", "private", "sh", "-c",
                                 "mount --bind \"$0\" /etc/hosts && exec busybox sh -c \"$1\"", hosts, script});
  }
  std::vector<std::string> links() const {
    std::vector<std::string> out;
    auto nl = netlink::Socket::open_in(netns.get(), "box");
    if (!nl) return out;
    auto all = nl->links();
    if (all)
      for (const auto& l : *all) out.push_back(l.name);
    return out;
  }
};

class NetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SANDRUN_REQUIRE_ROOT();
    links_before_ = host_links();
    Networks::Options o;
    o.root = tmp_ / "root";
    auto n = Networks::open(o);
    ASSERT_TRUE(n) << n.error().message();
    nets_ = std::move(*n);
  }
  void TearDown() override {
    nets_.reset();
    boxes_.clear();
    if (!links_before_.empty()) {
      EXPECT_EQ(host_links(), links_before_) << "the host's links changed";
    }
  }

  Box& box(const std::string& name) {
    auto ns = sandbox::create_netns();
    EXPECT_TRUE(ns) << ns.error().message();
    auto b = std::make_unique<Box>();
    b->id = "c" + random_hex_id().substr(1);  // a short id that is no IPv4 address (all digits)
    b->name = name;
    b->netns = std::move(*ns);
    b->hosts = tmp_ / ("hosts-" + name);
    testing::write_file(b->hosts, "");
    boxes_.push_back(std::move(b));
    return *boxes_.back();
  }
  NetworkInfo create(const std::string& name) {
    NetworkSpec spec;
    spec.name = name;
    auto n = nets_->create(spec);
    EXPECT_TRUE(n) << n.error().message();
    return n ? *n : NetworkInfo{};
  }
  EndpointInfo attach(const std::string& net, Box& b, std::vector<std::string> aliases = {}) {
    auto e = nets_->attach(net, b.attachment(std::move(aliases)));
    EXPECT_TRUE(e) << e.error().message();
    return e ? *e : EndpointInfo{};
  }

  TempDir tmp_;
  std::set<std::string> links_before_;
  std::unique_ptr<Networks> nets_;
  std::vector<std::unique_ptr<Box>> boxes_;
};

TEST_F(NetworkTest, ContainersOnANetworkReachEachOtherByNameAndAlias) {
  const NetworkInfo net = create("n1");
  Box& web = box("web");
  Box& client = box("client");
  const EndpointInfo we = attach("n1", web, {"www", "frontend"});
  const EndpointInfo ce = attach("n1", client);
  EXPECT_NE(we.address, ce.address);
  EXPECT_TRUE(net.record.subnet.contains(we.address) && net.record.subnet.contains(ce.address));
  EXPECT_NE(we.address, net.record.gateway);
  EXPECT_EQ(we.ifname, "eth0");
  EXPECT_EQ(we.mac, mac_for(we.address));
  EchoServer server(web.netns.get(), 7000);
  for (const std::string& target :
       std::vector<std::string>{"web", "www", "frontend", we.address.str(), we.container_id.substr(0, 12)}) {
    auto r = client.run("echo hi-" + target + " | busybox nc -w 5 " + target + " 7000");
    EXPECT_EQ(r.out, "echo:hi-" + target + "\n") << target << ": " << r.err;
  }
  // Each side sees itself and the other in its hosts file, which the registry rewrote in place.
  const std::string hosts = testing::read_file(client.hosts);
  EXPECT_NE(hosts.find(we.address.str() + "\tweb www frontend " + we.container_id.substr(0, 12) + "\n"), std::string::npos)
      << hosts;
  EXPECT_NE(hosts.find(ce.address.str() + "\tclient"), std::string::npos) << hosts;
  EXPECT_EQ(hosts, nets_->hosts_file(client.id));
  // Inside, the container has its address on eth0 and the default route via the gateway.
  auto r = client.run("busybox ip -4 addr show eth0; busybox ip route");
  EXPECT_NE(r.out.find("inet " + ce.address.str() + "/24"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("default via " + net.record.gateway.str() + " dev eth0"), std::string::npos) << r.out;
}

TEST_F(NetworkTest, NothingOfTheHostIsReachableFromANetwork) {
  const NetworkInfo net = create("n1");
  Box& a = box("a");
  attach("n1", a);
  // A listener on every host address (loopback included) in the host's own namespace.
  int host = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  UniqueFd owner(host);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  ASSERT_EQ(::bind(host, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  ASSERT_EQ(::listen(host, 16), 0);
  socklen_t len = sizeof any;
  ::getsockname(host, reinterpret_cast<sockaddr*>(&any), &len);
  const std::string port = std::to_string(ntohs(any.sin_port));
  std::vector<std::string> targets = host_addresses();
  targets.push_back(net.record.gateway.str());  // the network's own namespace: nothing listens
  ASSERT_GE(targets.size(), 2u);
  for (const std::string& t : targets) {
    auto r = a.run("echo x | busybox nc -w 2 " + t + " " + port);
    EXPECT_NE(r.status, 0) << t << " was reachable: " << r.out;
    // Fast: the network's namespace answers "unreachable" (its own lo and gateway: refused).
    EXPECT_EQ(r.err.find("timed out"), std::string::npos) << t << ": " << r.err;
  }
  pollfd p{host, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "a connection reached the host's listener";
  // No route out: only the network's subnet.
  auto routes = a.run("busybox ip route");
  EXPECT_EQ(routes.out, "default via " + net.record.gateway.str() + " dev eth0 \n" + net.record.subnet.str() +
                            " dev eth0 scope link  src " + nets_->inspect("n1")->endpoints[0].address.str() + " \n")
      << routes.err;
}

TEST_F(NetworkTest, ASecondNetworkIsIsolatedFromTheFirst) {
  const NetworkInfo n1 = create("n1");
  const NetworkInfo n2 = create("n2");
  EXPECT_FALSE(n1.record.subnet.overlaps(n2.record.subnet));
  Box& web = box("web");
  Box& other = box("other");
  Box& both = box("both");
  const EndpointInfo we = attach("n1", web);
  attach("n2", other);
  EchoServer server(web.netns.get(), 7000);
  auto r = other.run("echo x | busybox nc -w 2 " + we.address.str() + " 7000");
  EXPECT_NE(r.status, 0) << r.out;
  r = other.run("echo x | busybox nc -w 2 web 7000");
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_EQ(testing::read_file(other.hosts).find("web"), std::string::npos);
  EXPECT_EQ(server.accepted(), 0);
  // A container on both networks gets one interface on each, and names from both.
  EXPECT_EQ(attach("n1", both).ifname, "eth0");
  EXPECT_EQ(attach("n2", both).ifname, "eth1");
  r = both.run("echo b | busybox nc -w 5 web 7000");
  EXPECT_EQ(r.out, "echo:b\n") << r.err;
  const std::string hosts = testing::read_file(both.hosts);
  EXPECT_NE(hosts.find("\tweb"), std::string::npos);
  EXPECT_NE(hosts.find("\tother"), std::string::npos);
}

TEST_F(NetworkTest, DetachAndRemoveLeaveNothing) {
  const NetworkInfo net = create("n1");
  Box& a = box("a");
  Box& b = box("b");
  attach("n1", a, {"alias-a"});
  const EndpointInfo eb = attach("n1", b);
  auto target = nets_->publish_target(a.id);
  ASSERT_TRUE(target);
  const ino_t ino = inode_of(target->netns.get());
  target->netns.reset();
  EXPECT_FALSE(testing::net_namespace_holders(ino).empty());
  EXPECT_TRUE(std::filesystem::exists(tmp_ / ("root/networks/" + net.record.id + ".json")));

  // Removal is refused while containers are attached.
  Refusal why = Refusal::none;
  auto refused = nets_->remove("n1", &why);
  ASSERT_FALSE(refused);
  EXPECT_EQ(why, Refusal::in_use);
  EXPECT_EQ(refused.error().message(), "error while removing network: network n1 id " + net.record.id +
                                           " has active endpoints");

  ASSERT_TRUE(nets_->detach("n1", b.id));
  EXPECT_EQ(b.links(), std::vector<std::string>{"lo"});
  EXPECT_EQ(testing::read_file(a.hosts).find(eb.address.str()), std::string::npos) << "b is still in a's hosts";
  EXPECT_EQ(testing::read_file(b.hosts).find("alias-a"), std::string::npos) << "b still resolves a";
  why = Refusal::none;
  EXPECT_FALSE(nets_->detach("n1", b.id, &why));
  EXPECT_EQ(why, Refusal::not_found);
  nets_->detach_all(a.id);
  EXPECT_EQ(a.links(), std::vector<std::string>{"lo"});

  auto gone = nets_->remove(net.record.id.substr(0, 12));
  ASSERT_TRUE(gone) << gone.error().message();
  EXPECT_EQ(gone->name, "n1");
  EXPECT_EQ(testing::net_namespace_holders(ino), std::vector<std::string>{});
  EXPECT_EQ(testing::dir_entries(tmp_ / "root/networks"), std::vector<std::string>{});
  EXPECT_TRUE(nets_->list().empty());
}

TEST_F(NetworkTest, APublishedPortReachesTheContainerThroughTheNetworksNamespace) {
  create("n1");
  Box& web = box("web");
  attach("n1", web);
  EchoServer server(web.netns.get(), 7000);
  auto target = nets_->publish_target(web.id);
  ASSERT_TRUE(target) << target.error().message();
  testing::LoopThread loop;
  PortProxy::Options o;
  o.inner_host = target->address.str();
  config::PortSpec spec;
  spec.host_ip = "127.0.0.1";
  spec.container_port = 7000;
  auto proxy = loop.run([&] { return PortProxy::open(loop.loop(), target->netns.get(), {spec}, "", o); });
  ASSERT_TRUE(proxy) << proxy.error().message();
  const uint16_t port = loop.run([&] { return (*proxy)->published().at(0).host_port; });
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  UniqueFd client(fd);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::write(fd, "proxied\n", 8), 8);
  std::string got;
  char buf[64];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(got, "echo:proxied\n");
  EXPECT_EQ(server.accepted(), 1);
  loop.run([&] { proxy->reset(); });
  EXPECT_TRUE(loop.stop()) << "the loop still had handles open";
}

TEST_F(NetworkTest, AStoppedContainersPairGoesWithItsNamespace) {
  create("n1");
  Box& a = box("a");
  attach("n1", a);
  a.netns.reset();  // the container's namespace is gone: so is the pair
  auto inspect = nets_->inspect("n1");
  ASSERT_TRUE(inspect);
  ASSERT_EQ(inspect->endpoints.size(), 1u);
  EXPECT_TRUE(nets_->detach("n1", a.id)) << "a pair already gone is not an error";
  EXPECT_TRUE(nets_->remove("n1"));
}

TEST_F(NetworkTest, NetworksComeBackFromTheirRecords) {
  NetworkSpec spec;
  spec.name = "kept";
  spec.subnet = "172.30.8.0/22";
  spec.gateway = "172.30.8.254";
  spec.labels = {{"team", "ci"}};
  spec.internal = true;
  auto made = nets_->create(spec);
  ASSERT_TRUE(made) << made.error().message();
  nets_.reset();
  Networks::Options o;
  o.root = tmp_ / "root";
  auto again = Networks::open(o);
  ASSERT_TRUE(again) << again.error().message();
  auto n = (*again)->inspect("kept");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->record.id, made->record.id);
  EXPECT_EQ(n->record.subnet.str(), "172.30.8.0/22");
  EXPECT_EQ(n->record.gateway.str(), "172.30.8.254");
  EXPECT_EQ(n->record.labels, (std::map<std::string, std::string>{{"team", "ci"}}));
  EXPECT_TRUE(n->record.internal);
  EXPECT_EQ(n->record.created, made->record.created);
  // Its namespace is there again: a container can join and gets the gateway's route.
  Box& a = box("a");
  auto e = (*again)->attach("kept", a.attachment());
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->address.str(), "172.30.8.1");
  auto r = a.run("busybox ip route");
  EXPECT_NE(r.out.find("default via 172.30.8.254"), std::string::npos) << r.out;
  (*again)->detach_all(a.id);
}

TEST_F(NetworkTest, RefusalsSayWhatAndWhy) {
  create("n1");
  Refusal why = Refusal::none;
  NetworkSpec dup;
  dup.name = "n1";
  auto r = nets_->create(dup, &why);
  ASSERT_FALSE(r);
  EXPECT_EQ(why, Refusal::conflict);
  EXPECT_EQ(r.error().message(), "network with name n1 already exists");
  NetworkSpec overlap;
  overlap.name = "n2";
  overlap.subnet = "10.89.0.128/25";
  r = nets_->create(overlap, &why);
  ASSERT_FALSE(r);
  EXPECT_EQ(why, Refusal::invalid);
  EXPECT_EQ(r.error().message(), "subnet 10.89.0.128/25 overlaps the subnet 10.89.0.0/24 of another network");
  NetworkSpec bad;
  bad.name = "bad name";
  r = nets_->create(bad, &why);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "invalid network name \"bad name\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
  Box& a = box("a");
  auto e = nets_->attach("n1", a.attachment({"evil\n1.2.3.4 host"}), &why);
  ASSERT_FALSE(e);
  EXPECT_EQ(why, Refusal::invalid);
  EXPECT_EQ(a.links(), std::vector<std::string>{"lo"});
  e = nets_->attach("nope", a.attachment(), &why);
  ASSERT_FALSE(e);
  EXPECT_EQ(why, Refusal::not_found);
  EXPECT_EQ(e.error().message(), "network nope not found");
  attach("n1", a);
  e = nets_->attach("n1", a.attachment(), &why);
  ASSERT_FALSE(e);
  EXPECT_EQ(why, Refusal::conflict);
  nets_->detach_all(a.id);
}

}  // namespace
}  // namespace sandrun::runner
