// PortProxy for real: sandrun-kv-server in a network namespace the test creates, the proxy on
// a libuv loop in a thread, blocking clients on the host's loopback. Its inner sockets from a
// socket factory: socket_factory_test.cc.
#include "tests/runner/port_proxy_fixture.h"

namespace sandrun::runner {
namespace {

TEST_F(PortProxyTest, CarriesTenThousandRequestResponsesWithNoError) {
  auto p = open_proxy({port_spec("127.0.0.1", 0)});
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  LineClient c(published_port());
  ASSERT_TRUE(c.ok());
  int errors = 0;
  for (int i = 0; i < 10'000; ++i) {
    const std::string key = "k" + std::to_string(i / 2);
    const std::string want = i % 2 == 0 ? "OK" : "value " + std::to_string(i / 2);
    const std::string got = i % 2 == 0 ? c.ask("SET " + key + " value " + std::to_string(i / 2)) : c.ask("GET " + key);
    if (got != want && ++errors < 5) ADD_FAILURE() << "request " << i << ": " << got;
  }
  EXPECT_EQ(errors, 0);
  auto s = stats();
  EXPECT_EQ(s.accepted, 1u);
  EXPECT_EQ(s.refused, 0u);
  EXPECT_GT(s.bytes_in, 100'000u);
  EXPECT_GT(s.bytes_out, 50'000u);
}

TEST_F(PortProxyTest, PortZeroIsResolvedReportedAndUsable) {
  auto p = open_proxy({port_spec("127.0.0.1", 0), port_spec("127.0.0.1", 0)});
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  auto published = loop_->run([&] { return proxy_->published(); });
  ASSERT_EQ(published.size(), 2u);
  for (const PublishedPort& pp : published) {
    EXPECT_NE(pp.host_port, 0);
    EXPECT_EQ(pp.host_ip, "127.0.0.1");
    EXPECT_EQ(pp.container_port, kInnerPort);
    EXPECT_EQ(pp.service, "redis");
    LineClient c(pp.host_port);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.ask("PING"), "PONG");
  }
  EXPECT_NE(published[0].host_port, published[1].host_port);
}

TEST_F(PortProxyTest, SecondProxyOnTheSameHostPortFailsNamingIt) {
  auto p = open_proxy({port_spec("127.0.0.1", 0)});
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  const uint16_t port = published_port();
  // A free port first, then the busy one: the error names the busy one, and nothing of the
  // second proxy stays open (the loop closes cleanly in TearDown).
  auto second = open_proxy({port_spec("127.0.0.1", 0), port_spec("127.0.0.1", port)});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().message(), "publish 127.0.0.1:" + std::to_string(port) + ": Address already in use");
  LineClient c(port);  // the first proxy still works
  EXPECT_EQ(c.ask("PING"), "PONG");
}

TEST_F(PortProxyTest, CloseStopsListeningEndsConnectionsAndTheLoopEndsCleanly) {
  auto p = open_proxy({port_spec("127.0.0.1", 0)});
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  const uint16_t port = published_port();
  LineClient open_client(port);
  ASSERT_EQ(open_client.ask("PING"), "PONG");
  ASSERT_TRUE(proxy_close());
  EXPECT_EQ(read_to_eof(open_client.fd()), "");  // EOF (or a reset), not a hang
  EXPECT_EQ(connect_to(port), -ECONNREFUSED);
  EXPECT_TRUE(loop_->stop());
}

TEST_F(PortProxyTest, DestroyingWithoutCloseStillClosesEverything) {
  auto p = open_proxy({port_spec("127.0.0.1", 0)});
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  const uint16_t port = published_port();
  LineClient c(port);
  ASSERT_EQ(c.ask("PING"), "PONG");
  loop_->run([&] { proxy_.reset(); });
  EXPECT_EQ(read_to_eof(c.fd()), "");
  EXPECT_EQ(connect_to(port), -ECONNREFUSED);
  EXPECT_TRUE(loop_->stop());
}

TEST_F(PortProxyTest, ConnectionToAPortNobodyListensOnInsideIsClosedAtOnce) {
  auto p = open_proxy({port_spec("127.0.0.1", 0, /*container_port=*/1)});
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  int fd = connect_to(published_port());
  ASSERT_GE(fd, 0);
  const auto start = std::chrono::steady_clock::now();
  char b;
  ssize_t n = ::recv(fd, &b, 1, 0);
  int err = errno;
  EXPECT_TRUE(n == 0 || (n < 0 && err == ECONNRESET)) << n << " " << err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  ::close(fd);
  EXPECT_TRUE(testing::eventually([&] { return stats().refused == 1 && stats().active == 0; }, 2s));
}

TEST_F(PortProxyTest, HalfClosePassesBothWays) {
  auto p = open_proxy({port_spec("127.0.0.1", 0)});
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  const uint16_t port = published_port();
  // The client's FIN reaches the server, which answers only then (SINK counts to EOF), and
  // the server's close reaches the client.
  {
    LineClient c(port);
    const std::string data(300'000, 'd');
    ASSERT_TRUE(send_all(c.fd(), "SINK\n" + data));
    ASSERT_EQ(::shutdown(c.fd(), SHUT_WR), 0);
    EXPECT_EQ(read_to_eof(c.fd()), "300000\n");
  }
  {
    LineClient c(port);
    ASSERT_TRUE(send_all(c.fd(), "ECHO\nhalf-closed"));
    ASSERT_EQ(::shutdown(c.fd(), SHUT_WR), 0);
    EXPECT_EQ(read_to_eof(c.fd()), "half-closed");
  }
  EXPECT_TRUE(testing::eventually([&] { return stats().active == 0; }, 2s));
}

TEST_F(PortProxyTest, BulkBytesArriveIntactBothWaysUnderBackpressure) {
  PortProxy::Options small;
  small.buffer_bytes = 16 * 1024;  // many partial writes and pauses
  auto p = loop_->run([&] {
    return PortProxy::open(loop_->loop(), netns_.get(), {port_spec("127.0.0.1", 0)}, "", small);
  });
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  LineClient c(published_port());
  std::string data(24 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7919) >> 3);
  std::thread writer([&] {
    send_all(c.fd(), "ECHO\n" + data);
    ::shutdown(c.fd(), SHUT_WR);
  });
  std::string back = read_to_eof(c.fd());
  writer.join();
  EXPECT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data);
}

TEST_F(PortProxyTest, AServerResetReachesTheClientAsAReset) {
  auto p = open_proxy({port_spec("127.0.0.1", 0)});
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  LineClient c(published_port());
  EXPECT_EQ(c.ask("RESET"), "<error " + std::to_string(ECONNRESET) + ">");
  EXPECT_TRUE(testing::eventually([&] { return stats().active == 0; }, 2s));
}

TEST_F(PortProxyTest, AClientThatDoesNotReadStopsTheServerNotTheProxysMemory) {
  auto p = open_proxy({port_spec("127.0.0.1", 0)});
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  LineClient c(published_port());
  constexpr uint64_t kTotal = 512ull << 20;
  ASSERT_TRUE(send_all(c.fd(), "SOURCE " + std::to_string(kTotal) + "\n"));
  // Nothing is read for a while: what crossed the proxy is bounded by the kernel's socket
  // buffers on both sides plus one 128 KiB buffer, far below what the server wants to send.
  uint64_t stalled = 0;
  EXPECT_TRUE(testing::eventually([&] {  // the flow stops, at some point
    const uint64_t before = stats().bytes_out;
    std::this_thread::sleep_for(150ms);
    stalled = stats().bytes_out;
    return stalled == before && stalled > 0;
  }, 10s));
  EXPECT_LT(stalled, 64ull << 20);
  RecordProperty("stalled_bytes", std::to_string(stalled));
  uint64_t got = 0;
  std::vector<char> buf(1 << 20);
  while (got < kTotal) {
    ssize_t n = ::recv(c.fd(), buf.data(), buf.size(), 0);
    ASSERT_GT(n, 0);
    got += static_cast<uint64_t>(n);
  }
  EXPECT_EQ(c.ask("PING"), "PONG");  // and the flow resumed to the end
}

TEST_F(PortProxyTest, ManyConcurrentConnections) {
  auto p = open_proxy({port_spec("127.0.0.1", 0)});
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  const uint16_t port = published_port();
  constexpr int kClients = 200;
  std::vector<std::unique_ptr<LineClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<LineClient>(port));
    ASSERT_TRUE(clients.back()->ok()) << i;
  }
  for (int i = 0; i < kClients; ++i) ASSERT_EQ(clients[i]->ask("SET c" + std::to_string(i) + " " + std::to_string(i)), "OK");
  EXPECT_EQ(stats().active, static_cast<uint64_t>(kClients));
  // Each answers on its own connection, in an order unlike the one they were opened in.
  for (int i = kClients - 1; i >= 0; --i) EXPECT_EQ(clients[i]->ask("GET c" + std::to_string(i)), std::to_string(i));
  clients.clear();
  EXPECT_TRUE(testing::eventually([&] { return stats().active == 0; }, 5s));
  EXPECT_EQ(stats().accepted, static_cast<uint64_t>(kClients));
}

// The errno of binding a TCP socket to [::1]:0 in the network namespace `netns_fd`; 0 when
// that works.
int ipv6_loopback_bind_errno(int netns_fd) {
  auto fd = sandbox::socket_in_netns(netns_fd, AF_INET6, SOCK_STREAM);
  if (!fd) return fd.error().code();
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  return ::bind(fd->get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ? 0 : errno;
}

// Whether the host's loopback has ::1 is the host's choice (net.ipv6.conf.lo.disable_ipv6): the
// listener and the client are in a network namespace of the test's own, whose loopback has ::1
// whenever the kernel has IPv6. Where it has none (ipv6.disable=1), the test's own bind says so,
// and publishing on ::1 must then fail naming the address and the kernel's reason.
TEST_F(PortProxyTest, AnIPv6ListenerForwardsToIPv4Inside) {
  auto outer = sandbox::create_netns();
  ASSERT_TRUE(outer) << outer.error().message();
  // The listener is opened on the loop thread, which stays in the namespace until it ends.
  ASSERT_EQ(loop_->run([&] { return ::setns(outer->get(), CLONE_NEWNET) == 0 ? 0 : errno; }), 0);
  const int bind_err = ipv6_loopback_bind_errno(outer->get());
  auto p = open_proxy({port_spec("::1", 0)});
  if (bind_err != 0) {
    ASSERT_FALSE(p) << "published on ::1 where the test's own bind got " << errno_text(bind_err);
    EXPECT_EQ(p.error().code(), bind_err) << p.error().message();
    EXPECT_EQ(p.error().message().rfind("publish [::1]:0: ", 0), 0u) << p.error().message();
    return;
  }
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  auto client = sandbox::socket_in_netns(outer->get(), AF_INET6, SOCK_STREAM);
  ASSERT_TRUE(client) << client.error().message();
  const int fd = client->get();
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(published_port());
  a.sin6_addr = in6addr_loopback;
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_TRUE(send_all(fd, "PING\n"));
  ::shutdown(fd, SHUT_WR);
  EXPECT_EQ(read_to_eof(fd), "PONG\n");
}

}  // namespace
}  // namespace sandrun::runner
