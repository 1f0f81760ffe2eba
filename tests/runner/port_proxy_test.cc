// PortProxy for real: sandrun-kv-server in a network namespace the test creates, the proxy on
// a libuv loop in a thread, blocking clients on the host's loopback; and its inner sockets
// from a socket factory (SocketFactoryClient) with a fake container end.
#include "runner/net/port_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "runner/loop/uv_handle.h"
#include "runner/net/socket_factory.h"
#include "sandbox/netns.h"
#include "tests/runner/loop_thread.h"
#include "tests/support/test_env.h"

namespace sandrun::runner {
namespace {

using namespace std::chrono_literals;
using testing::LoopThread;
constexpr uint16_t kInnerPort = 6379;

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Everything up to EOF (or an error: then what came before it).
std::string read_to_eof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

class LineClient {
 public:
  explicit LineClient(uint16_t port) : fd_(connect_to(port)) {}
  ~LineClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  std::string ask(const std::string& line) {
    if (!send_all(fd_, line + "\n")) return "<send failed>";
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string reply = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return reply;
      }
      char tmp[4096];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return n == 0 ? "<eof>" : "<error " + std::to_string(errno) + ">";
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buf_;
};

config::PortSpec port_spec(std::string ip, uint16_t host_port, uint16_t container_port = kInnerPort) {
  config::PortSpec p;
  p.host_ip = std::move(ip);
  p.host_port = host_port;
  p.container_port = container_port;
  return p;
}

class PortProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SANDRUN_REQUIRE_ROOT();
    auto ns = sandbox::create_netns();
    ASSERT_TRUE(ns) << ns.error().message();
    netns_ = ns.take();
    start_server();
    loop_ = std::make_unique<LoopThread>();
  }
  void TearDown() override {
    proxy_close();
    if (loop_) {
      EXPECT_TRUE(loop_->stop()) << "the loop still had handles open";
    }
    if (server_pid_ > 0) {
      ::kill(server_pid_, SIGKILL);
      ::waitpid(server_pid_, nullptr, 0);
    }
  }

  // sandrun-kv-server inside netns_ on kInnerPort, started before the loop thread exists.
  void start_server() {
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    const std::string ns_path = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(netns_.get());
    const std::string bin = testing::kv_server_bin();
    const std::string port = std::to_string(kInnerPort);
    const char* argv[] = {bin.c_str(), "--netns", ns_path.c_str(), port.c_str(), nullptr};
    server_pid_ = ::fork();
    ASSERT_GE(server_pid_, 0);
    if (server_pid_ == 0) {
      ::dup2(out[1], 1);
      ::execv(argv[0], const_cast<char**>(argv));
      ::_exit(127);
    }
    ::close(out[1]);
    std::string got;
    pollfd p{out[0], POLLIN, 0};
    while (got.find("ready\n") == std::string::npos && ::poll(&p, 1, 5000) == 1) {
      char buf[256];
      ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    ::close(out[0]);
    ASSERT_NE(got.find("ready\n"), std::string::npos) << "kv server did not start: " << got;
  }

  Result<std::unique_ptr<PortProxy>> open_proxy(std::vector<config::PortSpec> ports) {
    return loop_->run([&] { return PortProxy::open(loop_->loop(), netns_.get(), ports, "redis"); });
  }
  void use(std::unique_ptr<PortProxy> p) { proxy_ = std::move(p); }
  uint16_t published_port() {
    return loop_->run([&] { return proxy_->published().at(0).host_port; });
  }
  PortProxy::Stats stats() {
    return loop_->run([&] { return proxy_->stats(); });
  }
  // close(done) on the loop; waits for done (true) and destroys the proxy.
  bool proxy_close() {
    if (!proxy_ || !loop_) return false;
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    loop_->run([&] { proxy_->close([done] { done->set_value(); }); });
    bool ok = fut.wait_for(5s) == std::future_status::ready;
    loop_->run([&] { proxy_.reset(); });
    return ok;
  }

  UniqueFd netns_;
  pid_t server_pid_ = -1;
  std::unique_ptr<LoopThread> loop_;
  std::unique_ptr<PortProxy> proxy_;
};

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

// The container's end of a socket factory, on a thread, answering as sandrun-init's helper
// does (an int32 errno, the socket in SCM_RIGHTS, in request order), or misbehaving as asked.
class FakeFactory {
 public:
  enum class Mode {
    answer,         // a socket made in `netns_fd` (-1: the test's own namespace) for each request
    fail,           // errno EMFILE for each request
    silent,         // reads the requests, never answers
    hang_up_second  // answers the first request, hangs up on the second
  };
  FakeFactory(int netns_fd, Mode mode) : netns_fd_(netns_fd), mode_(mode) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0) {
      client_end_.reset(sv[0]);
      ours_.reset(sv[1]);
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeFactory() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      held_ = false;
    }
    cv_.notify_all();
    ::shutdown(ours_.get(), SHUT_RDWR);  // wakes a blocked read
    thread_.join();
  }
  UniqueFd take_client_end() { return std::move(client_end_); }
  int requests() const { return requests_; }
  // While held, the next request read (and counted) is answered only after release(), and no
  // other is read meanwhile.
  void hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }

 private:
  void serve() {
    for (;;) {
      char byte;
      if (::read(ours_.get(), &byte, 1) != 1) return;  // sandrun's end closed, or the destructor
      const int n = ++requests_;
      if (mode_ == Mode::silent) continue;
      if (mode_ == Mode::hang_up_second && n == 2) {
        ::shutdown(ours_.get(), SHUT_RDWR);
        return;
      }
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !held_; });
        if (stopping_) return;
      }
      answer();
    }
  }
  void answer() {
    Result<UniqueFd> sock = Error::sys_code(EMFILE, "fail");
    if (mode_ != Mode::fail) {
      if (netns_fd_ >= 0) {
        sock = sandbox::socket_in_netns(netns_fd_, AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
      } else {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sock = fd >= 0 ? Result<UniqueFd>(UniqueFd(fd)) : Result<UniqueFd>(Error::sys("socket"));
      }
    }
    int32_t err = sock ? 0 : sock.error().code();
    struct iovec iov = {&err, sizeof err};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (sock) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      const int fd = sock->get();
      std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    (void)::sendmsg(ours_.get(), &msg, MSG_NOSIGNAL);
  }

  int netns_fd_;
  Mode mode_;
  UniqueFd client_end_, ours_;
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

// What the callbacks of SocketFactoryClient::request were given, in the order they ran: "fd"
// for a socket, else the error's message; and whether one ran inside request().
struct Outcomes {
  std::mutex mu;
  std::vector<std::string> got;
  std::atomic<bool> in_request{false};
  std::atomic<bool> called_inside{false};
  std::function<void(Result<UniqueFd>)> callback() {
    return [this](Result<UniqueFd> r) {
      if (in_request) called_inside = true;
      std::lock_guard lock(mu);
      got.push_back(r ? (r->valid() ? "fd" : "invalid fd") : r.error().message());
    };
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(mu);
    return got;
  }
  size_t size() { return snapshot().size(); }
};

const std::string kBrokenPrefix = "make a socket in the container: the socket factory is broken: ";

// SocketFactoryClient on its own: no network namespace, the fake's sockets are the test's.
class SocketFactoryClientTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (client_) loop_.run([&] { client_.reset(); });
    fake_.reset();
    EXPECT_TRUE(loop_.stop()) << "the loop still had handles open";
  }
  void open(FakeFactory::Mode mode) {
    fake_ = std::make_unique<FakeFactory>(-1, mode);
    auto c = loop_.run([&] { return SocketFactoryClient::open(loop_.loop(), fake_->take_client_end()); });
    ASSERT_TRUE(c) << c.error().message();
    client_ = c.take();
  }
  void request(int n) {
    loop_.run([&] {
      for (int i = 0; i < n; ++i) {
        out_.in_request = true;
        client_->request(out_.callback());
        out_.in_request = false;
      }
    });
  }

  LoopThread loop_;
  std::unique_ptr<FakeFactory> fake_;
  std::unique_ptr<SocketFactoryClient> client_;
  Outcomes out_;
};

TEST_F(SocketFactoryClientTest, AnswersCompleteRequestsInOrderAndNeverInsideRequest) {
  open(FakeFactory::Mode::answer);
  // More than the socket's send buffer holds while the factory is held: the rest are sent
  // when it drains.
  fake_->hold();
  request(1000);
  ASSERT_TRUE(testing::eventually([&] { return fake_->requests() >= 1; }, 5s));
  fake_->release();
  ASSERT_TRUE(testing::eventually([&] { return out_.size() == 1000; }, 20s)) << out_.size();
  EXPECT_EQ(out_.snapshot(), std::vector<std::string>(1000, "fd"));
  EXPECT_FALSE(out_.called_inside);
  EXPECT_EQ(fake_->requests(), 1000);
}

TEST_F(SocketFactoryClientTest, AnErrnoAnswerFailsThatRequestNamingTheContainer) {
  open(FakeFactory::Mode::fail);
  request(2);
  ASSERT_TRUE(testing::eventually([&] { return out_.size() == 2; }, 5s));
  EXPECT_EQ(out_.snapshot(), std::vector<std::string>(2, "make a socket in the container: Too many open files"));
}

TEST_F(SocketFactoryClientTest, AHangUpFailsPendingAndLaterRequestsButNotTheAnsweredOne) {
  open(FakeFactory::Mode::hang_up_second);
  request(3);
  ASSERT_TRUE(testing::eventually([&] { return out_.size() == 3; }, 5s));
  const std::string hung_up = kBrokenPrefix + "it hung up";
  EXPECT_EQ(out_.snapshot(), (std::vector<std::string>{"fd", hung_up, hung_up}));
  request(1);  // broken for good, and still not answered inside request()
  ASSERT_TRUE(testing::eventually([&] { return out_.size() == 4; }, 5s));
  EXPECT_EQ(out_.snapshot().back(), hung_up);
  EXPECT_FALSE(out_.called_inside);
}

TEST_F(SocketFactoryClientTest, NoAnswerWithinTheTimeoutFailsEveryRequestThenAndLater) {
  open(FakeFactory::Mode::silent);
  const auto start = std::chrono::steady_clock::now();
  request(3);
  ASSERT_TRUE(testing::eventually([&] { return out_.size() == 3; }, 10s));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 1900ms);
  EXPECT_LT(waited, 4s);
  const std::string timed_out = kBrokenPrefix + "no answer within 2000 ms: " + errno_text(ETIMEDOUT);
  EXPECT_EQ(out_.snapshot(), std::vector<std::string>(3, timed_out));
  request(1);
  ASSERT_TRUE(testing::eventually([&] { return out_.size() == 4; }, 1s));
  EXPECT_FALSE(out_.called_inside);
}

TEST_F(SocketFactoryClientTest, DestroyingTheClientWithRequestsPendingCallsNothing) {
  open(FakeFactory::Mode::answer);
  fake_->hold();
  request(3);
  ASSERT_TRUE(testing::eventually([&] { return fake_->requests() == 1; }, 5s));  // held: reads no more
  loop_.run([&] { client_.reset(); });
  fake_->release();  // answers into a closed socket
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(out_.size(), 0u);
}

// A repeating 10 ms timer on the loop: the longest gap between its ticks shows whether anything
// blocked the loop thread.
struct Ticker {
  UvHandle<uv_timer_t> timer;
  uint64_t last_ns = 0, max_gap_ns = 0, ticks = 0;
  void start(uv_loop_t* loop) {
    uv_timer_init(loop, timer.get());
    timer.mark_live();
    timer.get()->data = this;
    uv_timer_start(timer.get(), [](uv_timer_t* t) {
      auto* self = static_cast<Ticker*>(t->data);
      const uint64_t now = uv_hrtime();
      if (self->last_ns) self->max_gap_ns = std::max(self->max_gap_ns, now - self->last_ns);
      self->last_ns = now;
      ++self->ticks;
    }, 10, 10);
  }
};

// The proxy with its inner sockets from a SocketFactoryClient whose other end is a FakeFactory
// making them in netns_ (where the kv server listens), as in a rootless container.
class PortProxyFactoryTest : public PortProxyTest {
 protected:
  void TearDown() override {
    proxy_close();
    if (loop_) loop_->run([&] {
      ticker_.timer.close();
      client_.reset();
    });
    fake_.reset();
    PortProxyTest::TearDown();
  }
  Result<std::unique_ptr<PortProxy>> open_factory_proxy(FakeFactory::Mode mode) {
    fake_ = std::make_unique<FakeFactory>(netns_.get(), mode);
    auto c = loop_->run([&] { return SocketFactoryClient::open(loop_->loop(), fake_->take_client_end()); });
    if (!c) return std::move(c.error());
    client_ = c.take();
    SocketFactoryClient* client = client_.get();
    return loop_->run([&] {
      return PortProxy::open(loop_->loop(), [client](auto done) { client->request(std::move(done)); },
                             {port_spec("127.0.0.1", 0)}, "");
    });
  }
  void wait_closed(int fd) {
    char b;
    ssize_t n = ::recv(fd, &b, 1, 0);
    int err = errno;
    EXPECT_TRUE(n == 0 || (n < 0 && err == ECONNRESET)) << n << " " << err;
  }

  std::unique_ptr<FakeFactory> fake_;
  std::unique_ptr<SocketFactoryClient> client_;
  Ticker ticker_;
};

TEST_F(PortProxyFactoryTest, ConcurrentConnectionsAllGetThroughTheFactory) {
  auto p = open_factory_proxy(FakeFactory::Mode::answer);
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  const uint16_t port = published_port();
  constexpr int kClients = 40;  // accepted in a burst: many requests wait for answers at once
  std::vector<std::unique_ptr<LineClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<LineClient>(port));
    ASSERT_TRUE(clients.back()->ok()) << i;
  }
  for (int i = kClients - 1; i >= 0; --i) ASSERT_EQ(clients[i]->ask("SET f" + std::to_string(i) + " " + std::to_string(i)), "OK");
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(clients[i]->ask("GET f" + std::to_string(i)), std::to_string(i));
  EXPECT_EQ(fake_->requests(), kClients);
  EXPECT_EQ(stats().accepted, static_cast<uint64_t>(kClients));
  EXPECT_EQ(stats().refused, 0u);
}

// The old factory round trip was a poll(2000) on the loop thread: the loop stood still.
TEST_F(PortProxyFactoryTest, AFactoryThatNeverAnswersClosesTheClientAndNeverStallsTheLoop) {
  auto p = open_factory_proxy(FakeFactory::Mode::silent);
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  const uint16_t port = published_port();
  loop_->run([&] { ticker_.start(loop_->loop()); });
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  const auto start = std::chrono::steady_clock::now();
  wait_closed(fd);
  const auto waited = std::chrono::steady_clock::now() - start;
  ::close(fd);
  EXPECT_GE(waited, 1500ms);
  EXPECT_LT(waited, 3500ms);
  auto [ticks, max_gap_ms] = loop_->run([&] { return std::pair(ticker_.ticks, ticker_.max_gap_ns / 1'000'000); });
  EXPECT_GT(ticks, 50u);
  EXPECT_LT(max_gap_ms, 500u) << "the loop thread was blocked";
  RecordProperty("max_tick_gap_ms", std::to_string(max_gap_ms));
  // The factory is broken now: the next client is closed at once.
  fd = connect_to(port);
  ASSERT_GE(fd, 0);
  const auto again = std::chrono::steady_clock::now();
  wait_closed(fd);
  EXPECT_LT(std::chrono::steady_clock::now() - again, 1s);
  ::close(fd);
  EXPECT_TRUE(testing::eventually([&] { return stats().refused == 2 && stats().active == 0; }, 2s));
}

TEST_F(PortProxyFactoryTest, AFactoryThatHangsUpFailsPendingAndLaterConnectionsCleanly) {
  auto p = open_factory_proxy(FakeFactory::Mode::hang_up_second);
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  const uint16_t port = published_port();
  LineClient first(port);
  ASSERT_EQ(first.ask("PING"), "PONG");
  for (int i = 0; i < 3; ++i) {  // the one the factory hung up on, then later ones
    int fd = connect_to(port);
    ASSERT_GE(fd, 0);
    wait_closed(fd);
    ::close(fd);
  }
  EXPECT_EQ(first.ask("PING"), "PONG");  // a connection made before is not affected
  EXPECT_TRUE(testing::eventually([&] { return stats().refused == 3 && stats().active == 1; }, 2s));
}

TEST_F(PortProxyFactoryTest, DestroyingTheProxyWhileASocketIsOnItsWayIsSafe) {
  auto p = open_factory_proxy(FakeFactory::Mode::answer);
  ASSERT_TRUE(p) << p.error().message();
  use(p.take());
  fake_->hold();
  int fd = connect_to(published_port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testing::eventually([&] { return fake_->requests() == 1; }, 5s));
  loop_->run([&] { proxy_.reset(); });  // the connection and the proxy go; the request stays
  wait_closed(fd);
  ::close(fd);
  fake_->release();  // the late answer finds nothing: its socket is just closed
  // Answers are in order: once a second request is answered, the first answer was handled.
  std::promise<bool> second;
  loop_->run([&] { client_->request([&](Result<UniqueFd> r) { second.set_value(r && r->valid()); }); });
  auto f = second.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(f.get());
}

}  // namespace
}  // namespace sandrun::runner
