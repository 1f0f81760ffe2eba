// The port proxy's inner sockets from a socket factory (SocketFactoryClient), with a fake
// container end: the client alone, then behind a PortProxy (port_proxy_fixture.h).
#include "tests/runner/port_proxy_fixture.h"

namespace sandrun::runner {
namespace {


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
