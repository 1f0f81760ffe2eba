// network = "private": outbound access through pasta and slirp4netns, for real, in network
// namespaces the tests create; what must stay unreachable (the host's loopback) stays so.
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "runner/net/outbound.h"
#include "sandbox/netns.h"
#include "tests/support/test_env.h"

namespace sandrun::runner {
namespace {

using testing::TempDir;

// The host's IPv4 address on the interface of its default route (from /proc/net/route), or
// else on any interface that is up and not loopback; empty when it has none.
std::string host_address() {
  std::string route_if;
  std::ifstream routes("/proc/net/route");
  std::string line;
  std::getline(routes, line);  // header
  while (std::getline(routes, line)) {
    char ifname[64] = {};
    unsigned dest = 1;
    if (std::sscanf(line.c_str(), "%63s %x", ifname, &dest) == 2 && dest == 0) {
      route_if = ifname;
      break;
    }
  }
  struct ifaddrs* all = nullptr;
  if (::getifaddrs(&all) < 0) return {};
  std::string found, fallback;
  for (auto* a = all; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    if ((a->ifa_flags & IFF_LOOPBACK) || !(a->ifa_flags & IFF_UP)) continue;
    char text[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<struct sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
    if (route_if == a->ifa_name && found.empty()) found = text;
    if (fallback.empty()) fallback = text;
  }
  ::freeifaddrs(all);
  return found.empty() ? fallback : found;
}

struct sockaddr_in inet(const std::string& ip, uint16_t port) {
  struct sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
  return sa;
}

// A non-blocking TCP listener on the host (the test's own network namespace).
struct Listener {
  UniqueFd fd;
  uint16_t port = 0;
};

// Port 0 picks an ephemeral port; `below_ephemeral` picks a free one under the ephemeral range,
// the kind pasta's automatic forwarding (its default) would forward.
Listener listen_on(const std::string& ip, bool below_ephemeral = false) {
  Listener l;
  l.fd = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  int rc = -1;
  for (uint16_t port = below_ephemeral ? 20000 + static_cast<uint16_t>(::getpid() % 5000) : 0; rc < 0; ++port) {
    auto sa = inet(ip, port);
    rc = ::bind(l.fd.get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof sa);
    if (rc < 0 && (port == 0 || errno != EADDRINUSE)) break;
  }
  EXPECT_EQ(rc, 0) << std::strerror(errno);
  auto sa = inet(ip, 0);
  EXPECT_EQ(::listen(l.fd.get(), 16), 0);
  socklen_t len = sizeof sa;
  ::getsockname(l.fd.get(), reinterpret_cast<struct sockaddr*>(&sa), &len);
  l.port = ntohs(sa.sin_port);
  return l;
}

// Connects from inside the namespace; 0 or the errno of the failure (ETIMEDOUT after 3 s).
int connect_from(int netns_fd, const std::string& ip, uint16_t port, UniqueFd& out) {
  auto sock = sandbox::socket_in_netns(netns_fd, AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  if (!sock) return sock.error().code();
  auto sa = inet(ip, port);
  if (::connect(sock->get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) < 0 && errno != EINPROGRESS) {
    return errno;
  }
  struct pollfd p = {sock->get(), POLLOUT, 0};
  if (::poll(&p, 1, 3000) <= 0) return ETIMEDOUT;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(sock->get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err == 0) out = std::move(*sock);
  return err;
}

// Reads up to `max` bytes, waiting up to `ms`; what arrived.
std::string read_some(int fd, size_t max, int ms) {
  std::string got;
  while (got.size() < max) {
    struct pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) break;
    char buf[256];
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, max - got.size()));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// A connection waiting on the listener, within `ms` (invalid when none came).
UniqueFd accept_within(int listen_fd, int ms) {
  struct pollfd p = {listen_fd, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return UniqueFd();
  return UniqueFd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
}

int count_fds() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

bool process_alive(int pidfd) { return ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0; }

class OutboundTest : public ::testing::TestWithParam<OutboundKind> {
 protected:
  void SetUp() override {
    SANDRUN_REQUIRE_ROOT();
    auto found = find_outbound_stack(GetParam());
    SANDRUN_REQUIRE(found.has_value(), std::string(outbound_kind_name(GetParam())) +
                                           " is not installed (ci/install-deps.sh installs passt and slirp4netns)");
    options_.stack = *found;
    auto ns = sandbox::create_netns();
    ASSERT_TRUE(ns) << ns.error().render();
    netns_ = std::move(*ns);
  }

  OutboundOptions options_;
  UniqueFd netns_;
};

TEST_P(OutboundTest, JobNamespaceReachesAHostAddressAndExchangesBytes) {
  const std::string ip = host_address();
  SANDRUN_REQUIRE(!ip.empty(), "the host has no non-loopback IPv4 address to serve the test from");
  Listener server = listen_on(ip);
  auto ob = Outbound::start(netns_.get(), options_);
  ASSERT_TRUE(ob) << ob.error().render();
  EXPECT_TRUE(ob->running());
  EXPECT_EQ(ob->stack().kind, GetParam());

  UniqueFd client;
  ASSERT_EQ(connect_from(netns_.get(), ip, server.port, client), 0) << "connect to " << ip << " from the namespace";
  UniqueFd conn = accept_within(server.fd.get(), 3000);
  ASSERT_TRUE(conn) << "the host server saw no connection";
  ASSERT_EQ(::write(client.get(), "ping from the job", 17), 17);
  EXPECT_EQ(read_some(conn.get(), 17, 3000), "ping from the job");
  ASSERT_EQ(::write(conn.get(), "pong from the host", 18), 18);
  EXPECT_EQ(read_some(client.get(), 18, 3000), "pong from the host");
  ASSERT_TRUE(ob->stop());
}

// Connects from the host (the test's own namespace); 0 or the errno (ETIMEDOUT after 1 s).
int connect_from_host(const std::string& ip, uint16_t port) {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  auto sa = inet(ip, port);
  if (::connect(sock.get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) < 0 && errno != EINPROGRESS) {
    return errno;
  }
  struct pollfd p = {sock.get(), POLLOUT, 0};
  if (::poll(&p, 1, 1000) <= 0) return ETIMEDOUT;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

// Both directions in one test, to wait once for pasta's automatic forwarding.
TEST_P(OutboundTest, HostLoopbackIsNotReachableAndNoPortIsForwarded) {
  Listener local = listen_on("127.0.0.1", /*below_ephemeral=*/true);
  // A server inside the namespace, on a port the host does not use.
  auto inside = sandbox::socket_in_netns(netns_.get(), AF_INET, SOCK_STREAM);
  ASSERT_TRUE(inside) << inside.error().render();
  uint16_t inside_port = 0;
  for (uint16_t port = static_cast<uint16_t>(local.port + 1); inside_port == 0 && port < 32000; ++port) {
    if (connect_from_host("127.0.0.1", port) != ECONNREFUSED) continue;
    auto sa = inet("0.0.0.0", port);
    if (::bind(inside->get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) == 0) inside_port = port;
  }
  ASSERT_NE(inside_port, 0);
  ASSERT_EQ(::listen(inside->get(), 4), 0);

  auto ob = Outbound::start(netns_.get(), options_);
  ASSERT_TRUE(ob) << ob.error().render();
  // pasta's automatic forwarding (its default: -t auto and -T auto) scans the bound ports of
  // both sides once a second: past that, a forwarded port would be there.
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));

  // 127.0.0.1 inside is the namespace's own loopback, not the host's.
  {
    UniqueFd client;
    const int err = connect_from(netns_.get(), "127.0.0.1", local.port, client);
    EXPECT_NE(err, 0) << "connected to 127.0.0.1:" << local.port << " inside the namespace";
    EXPECT_FALSE(accept_within(local.fd.get(), 500)) << "reached the host's 127.0.0.1 from the namespace";
  }
  // The gateway is where pasta and slirp4netns map the host's loopback unless told not to. A
  // connection to it would otherwise leave for the network (10.0.2.2 on the host's side), and
  // no test sends traffic off this machine: the stack's command line, as it runs, carries the
  // option that keeps the gateway off the host's loopback.
  const std::string cmdline = testing::read_file("/proc/" + std::to_string(ob->pid()) + "/cmdline");
  std::vector<std::string> argv;
  for (size_t at = 0; at < cmdline.size();) {
    const size_t end = cmdline.find('\0', at);
    argv.push_back(cmdline.substr(at, end == std::string::npos ? std::string::npos : end - at));
    at = end == std::string::npos ? cmdline.size() : end + 1;
  }
  const auto has = [&](const std::string& a) { return std::find(argv.begin(), argv.end(), a) != argv.end(); };
  if (GetParam() == OutboundKind::pasta) {
    EXPECT_TRUE(has("--no-map-gw")) << cmdline;
    for (const char* dir : {"--tcp-ports", "--udp-ports", "--tcp-ns", "--udp-ns"}) {
      const auto it = std::find(argv.begin(), argv.end(), dir);
      ASSERT_NE(it, argv.end()) << dir << " missing: pasta would forward every bound port";
      ASSERT_NE(it + 1, argv.end());
      EXPECT_EQ(*(it + 1), "none") << dir;
    }
  } else {
    EXPECT_TRUE(has("--disable-host-loopback")) << cmdline;
  }
  // Nothing of the namespace is served on the host: only published ports (sandrun's proxy) are.
  EXPECT_EQ(connect_from_host("127.0.0.1", inside_port), ECONNREFUSED) << "port " << inside_port << " forwarded";
  const std::string ip = host_address();
  if (!ip.empty()) {
    EXPECT_EQ(connect_from_host(ip, inside_port), ECONNREFUSED) << "port " << inside_port << " forwarded on " << ip;
  }
}

TEST_P(OutboundTest, StopEndsTheStackAndRemovesTheRoute) {
  const int fds_before = count_fds();
  TempDir dir;
  options_.pid_file = dir / "outbound.pid";
  auto ob = Outbound::start(netns_.get(), options_);
  ASSERT_TRUE(ob) << ob.error().render();
  EXPECT_EQ(testing::read_file(options_.pid_file), std::to_string(ob->pid()) + "\n");
  auto route = has_default_route(netns_.get());
  ASSERT_TRUE(route) << route.error().render();
  EXPECT_TRUE(*route);
  UniqueFd watch(static_cast<int>(::syscall(SYS_pidfd_open, ob->pid(), 0)));
  ASSERT_TRUE(watch);
  ASSERT_TRUE(process_alive(watch.get()));

  ASSERT_TRUE(ob->stop());
  EXPECT_FALSE(ob->running());
  EXPECT_FALSE(process_alive(watch.get())) << "pid " << ob->pid() << " is still there";
  EXPECT_FALSE(std::filesystem::exists(options_.pid_file));
  route = has_default_route(netns_.get());
  ASSERT_TRUE(route) << route.error().render();
  EXPECT_FALSE(*route) << "the namespace still has a default route";
  ASSERT_TRUE(ob->stop()) << "stop twice";
  watch.reset();
  EXPECT_EQ(count_fds(), fds_before) << "an fd was left open";
}

TEST_P(OutboundTest, DestructionEndsTheStack) {
  UniqueFd watch;
  {
    auto ob = Outbound::start(netns_.get(), options_);
    ASSERT_TRUE(ob) << ob.error().render();
    watch = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, ob->pid(), 0)));
    Outbound moved = std::move(*ob);
    EXPECT_FALSE(ob->running());
    EXPECT_TRUE(moved.running());
  }
  ASSERT_TRUE(watch);
  EXPECT_FALSE(process_alive(watch.get()));
}

TEST_P(OutboundTest, CancelledStartLeavesNothingRunning) {
  // A stack that never configures anything, so that only the cancellation can end the wait.
  TempDir dir;
  const std::string stub = dir / "stack";
  testing::write_file(stub, "#!/bin/sh\nexec sleep 30\n", 0755);
  options_.stack->path = stub;
  options_.pid_file = dir / "stack.pid";
  UniqueFd cancel(::eventfd(1, EFD_CLOEXEC));  // already readable: the runner cancelled
  options_.cancel_fd = cancel.get();
  auto ob = Outbound::start(netns_.get(), options_);
  ASSERT_FALSE(ob);
  EXPECT_EQ(ob.error().code(), ECANCELED) << ob.error().render();
  EXPECT_EQ(ob.error().message(), std::string("start outbound access: start ") + outbound_kind_name(GetParam()) +
                                      ": " + std::strerror(ECANCELED));
  EXPECT_FALSE(std::filesystem::exists(options_.pid_file)) << "the stub was not stopped";
}

TEST_P(OutboundTest, CancellingARealStackLeavesNothingRunning) {
  UniqueFd cancel(::eventfd(1, EFD_CLOEXEC));
  options_.cancel_fd = cancel.get();
  auto ob = Outbound::start(netns_.get(), options_);
  // A fast stack may win the race (its route is read before the cancel fd); either way
  // nothing is left after.
  if (ob) {
    ASSERT_TRUE(ob->stop());
  }
  auto route = has_default_route(netns_.get());
  ASSERT_TRUE(route) << route.error().render();
  EXPECT_FALSE(*route);
}

TEST_P(OutboundTest, AStackThatExitsAtOnceIsAClearError) {
  // `false` as the stack: it exits before configuring anything.
  options_.stack->path = "/bin/false";
  auto ob = Outbound::start(netns_.get(), options_);
  ASSERT_FALSE(ob);
  EXPECT_EQ(ob.error().message(), std::string("start outbound access: ") + outbound_kind_name(GetParam()) +
                                      " exited before it configured the job's network namespace");
}

TEST_P(OutboundTest, AStackThatNeverConfiguresTimesOutAndIsKilled) {
  TempDir dir;
  const std::string stub = dir / "stack";
  testing::write_file(stub, "#!/bin/sh\necho \"stuck\"\nexec sleep 30\n", 0755);
  options_.stack->path = stub;
  options_.timeout = std::chrono::milliseconds(300);
  options_.pid_file = dir / "stack.pid";
  auto ob = Outbound::start(netns_.get(), options_);
  ASSERT_FALSE(ob);
  EXPECT_EQ(ob.error().code(), ETIMEDOUT);
  EXPECT_EQ(ob.error().message(), std::string("start outbound access: ") + outbound_kind_name(GetParam()) +
                                      " did not configure the job's network namespace within 300 ms: stuck: " +
                                      std::strerror(ETIMEDOUT));
  EXPECT_FALSE(std::filesystem::exists(options_.pid_file)) << "the stub was not stopped";
}

TEST_P(OutboundTest, TheStackInheritsOnlyTheNamespaceAndItsPipe) {
  TempDir dir;
  // A leaked fd: not CLOEXEC, as another thread of the runner might have left one.
  testing::write_file(dir / "leak-marker", "");
  UniqueFd leak(::open((dir / "leak-marker").c_str(), O_RDONLY));
  ASSERT_TRUE(leak);
  const std::string stub = dir / "stack";
  testing::write_file(stub, "#!/bin/sh\nexec ls -l /proc/self/fd/\n", 0755);
  options_.stack->path = stub;
  auto ob = Outbound::start(netns_.get(), options_);
  ASSERT_FALSE(ob);
  const std::string said = ob.error().message();
  EXPECT_NE(said.find("3 -> net:["), std::string::npos) << said;
  EXPECT_EQ(said.find("leak-marker"), std::string::npos) << said;
  EXPECT_EQ(said.find("socket:"), std::string::npos) << said;
  EXPECT_EQ(said.find("4 -> pipe:") != std::string::npos, GetParam() == OutboundKind::slirp4netns) << said;
}

INSTANTIATE_TEST_SUITE_P(Stacks, OutboundTest, ::testing::Values(OutboundKind::pasta, OutboundKind::slirp4netns),
                         [](const auto& info) { return std::string(outbound_kind_name(info.param)); });

TEST(OutboundFind, FindsExecutablesOnlyByAbsoluteEntries) {
  EXPECT_EQ(find_executable("sh", "relative:/nonexistent:/bin"), "/bin/sh");
  EXPECT_EQ(find_executable("no-such-program-sandrun", "/bin"), "");
}

TEST(OutboundFind, AMissingStackExecutableIsAClearError) {
  SANDRUN_REQUIRE_ROOT();
  auto ns = sandbox::create_netns();
  ASSERT_TRUE(ns) << ns.error().render();
  OutboundOptions options;
  options.stack = OutboundStack{OutboundKind::pasta, "/nonexistent/pasta", "unknown"};
  auto ob = Outbound::start(ns->get(), options);
  ASSERT_FALSE(ob);
  EXPECT_EQ(ob.error().message(), "start outbound access: run /nonexistent/pasta: No such file or directory");
}

TEST(OutboundStale, KillsALeftoverStackFromItsPidFileAndNothingElse) {
  TempDir dir;
  // A process named pasta (a copy of sleep), and one that is not.
  ASSERT_EQ(testing::run_command({"cp", "/bin/sleep", dir / "pasta"}).status, 0);
  // Returns once the child has exec'd: the CLOEXEC pipe's write end closes then.
  auto spawn = [&](const std::string& path) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) return pid_t{-1};
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execl(path.c_str(), path.c_str(), "30", nullptr);
      ::_exit(127);
    }
    ::close(fds[1]);
    char c;
    while (::read(fds[0], &c, 1) > 0) {
    }
    ::close(fds[0]);
    return pid;
  };
  for (const auto& [path, killed] : {std::pair<std::string, bool>{dir / "pasta", true}, {"/bin/sleep", false}}) {
    const pid_t pid = spawn(path);
    ASSERT_GT(pid, 0);
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    ASSERT_TRUE(pidfd);
    const std::string file = dir / "stack.pid";
    testing::write_file(file, std::to_string(pid) + "\n");
    auto r = stop_stale_outbound(file);
    ASSERT_TRUE(r) << r.error().render();
    EXPECT_FALSE(std::filesystem::exists(file));
    struct pollfd p = {pidfd.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, killed ? 3000 : 200), killed ? 1 : 0) << path;
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    siginfo_t info = {};
    ::waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &info, WEXITED);
  }
  EXPECT_TRUE(stop_stale_outbound(dir / "missing.pid")) << "a missing pid file is no error";
}

}  // namespace
}  // namespace sandrun::runner
