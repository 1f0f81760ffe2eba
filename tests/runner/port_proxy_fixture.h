// The port proxy tests' fixture: sandrun-kv-server in a network namespace the test creates,
// the proxy on a libuv loop in a thread, blocking clients on the host's loopback
// (port_proxy_test.cc, socket_factory_test.cc).
#pragma once

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


using namespace std::chrono_literals;
using testing::LoopThread;
constexpr uint16_t kInnerPort = 6379;

inline int connect_to(uint16_t port) {
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

inline bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Everything up to EOF (or an error: then what came before it).
inline std::string read_to_eof(int fd) {
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

inline config::PortSpec port_spec(std::string ip, uint16_t host_port, uint16_t container_port = kInnerPort) {
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

}  // namespace sandrun::runner
