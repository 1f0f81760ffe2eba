// sandrun-ports-bench: the published-port proxy against a direct loopback connection to the
// same server (sandrun-kv-server in a fresh network namespace): bulk throughput both ways,
// request-response latency, and connection setup. Root (namespaces). See bench/ports.sh.
//
// Usage: sandrun-ports-bench [--bytes N] [--rounds N] [--requests N] [--connects N]
//                            [--buffer BYTES]   (PortProxy::Options::buffer_bytes)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runner/net/port_proxy.h"
#include "sandbox/netns.h"
#include "tests/runner/loop_thread.h"

using namespace sandrun;
using testing::LoopThread;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint16_t kInnerPort = 6379;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "sandrun-ports-bench: %s\n", what.c_str());
  std::exit(1);
}

// How a client reaches the server: directly (a socket made in the namespace) or through the proxy.
struct Route {
  const char* name;
  int netns_fd;     // >= 0: direct, in the namespace, to kInnerPort
  uint16_t port;    // through the proxy: the published port
};

int dial(const Route& r) {
  int fd;
  if (r.netns_fd >= 0) {
    auto s = sandbox::socket_in_netns(r.netns_fd, AF_INET, SOCK_STREAM);
    if (!s) fail(s.error().message());
    fd = s->release();
  } else {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(r.netns_fd >= 0 ? kInnerPort : r.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) fail(std::string("connect: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) fail("send");
    p += k;
    n -= static_cast<size_t>(k);
  }
}

std::string read_to_eof(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::vector<char> big(1 << 20, 'y');

// Server -> client: SOURCE n, read n bytes. GB/s.
double download(const Route& r, uint64_t bytes) {
  int fd = dial(r);
  const std::string cmd = "SOURCE " + std::to_string(bytes) + "\n";
  const auto t0 = Clock::now();
  send_all(fd, cmd.data(), cmd.size());
  uint64_t got = 0;
  while (got < bytes) {
    ssize_t n = ::recv(fd, big.data(), big.size(), 0);
    if (n <= 0) fail("download: short read");
    got += static_cast<uint64_t>(n);
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(fd);
  return static_cast<double>(bytes) / s / 1e9;
}

// Client -> server: SINK, n bytes, FIN, the count back. GB/s.
double upload(const Route& r, uint64_t bytes) {
  int fd = dial(r);
  const auto t0 = Clock::now();
  send_all(fd, "SINK\n", 5);
  for (uint64_t left = bytes; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, big.size()));
    send_all(fd, big.data(), n);
    left -= n;
  }
  ::shutdown(fd, SHUT_WR);
  const std::string reply = read_to_eof(fd);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(fd);
  if (reply != std::to_string(bytes) + "\n") fail("upload: the server counted " + reply);
  return static_cast<double>(bytes) / s / 1e9;
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

// PING -> PONG round trips on one connection: microseconds each.
std::vector<double> ping(const Route& r, int n) {
  int fd = dial(r);
  std::vector<double> us;
  char buf[64];
  for (int i = 0; i < n + 1000; ++i) {  // the first 1000 warm up
    const auto t0 = Clock::now();
    send_all(fd, "PING\n", 5);
    size_t got = 0;
    while (got < 5) {
      ssize_t k = ::recv(fd, buf + got, sizeof buf - got, 0);
      if (k <= 0) fail("ping");
      got += static_cast<size_t>(k);
    }
    if (i >= 1000) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  ::close(fd);
  return us;
}

// connect + PING + close: microseconds each (the proxy makes a socket in the namespace each time).
std::vector<double> connects(const Route& r, int n) {
  std::vector<double> us;
  char buf[64];
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    int fd = dial(r);
    send_all(fd, "PING\n", 5);
    if (::recv(fd, buf, sizeof buf, 0) <= 0) fail("connect+ping");
    ::close(fd);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return us;
}

pid_t start_server(int netns_fd) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) < 0) fail("pipe");
  const std::string ns = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(netns_fd);
  const std::string port = std::to_string(kInnerPort);
  const char* argv[] = {SANDRUN_KV_SERVER, "--netns", ns.c_str(), port.c_str(), nullptr};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::execv(argv[0], const_cast<char**>(argv));
    ::_exit(127);
  }
  ::close(out[1]);
  char buf[64] = {};
  ssize_t n = ::read(out[0], buf, sizeof buf - 1);
  ::close(out[0]);
  if (n <= 0 || !std::strstr(buf, "ready")) fail("the kv server did not start");
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t bytes = 2ull << 30;
  int rounds = 3, requests = 20'000, connect_count = 2'000;
  runner::PortProxy::Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--bytes") bytes = std::stoull(argv[i + 1]);
    else if (a == "--rounds") rounds = std::stoi(argv[i + 1]);
    else if (a == "--requests") requests = std::stoi(argv[i + 1]);
    else if (a == "--connects") connect_count = std::stoi(argv[i + 1]);
    else if (a == "--buffer") options.buffer_bytes = std::stoull(argv[i + 1]);
    else fail("usage: sandrun-ports-bench [--bytes N] [--rounds N] [--requests N] [--connects N] [--buffer BYTES]");
  }
  ::signal(SIGPIPE, SIG_IGN);
  auto ns = sandbox::create_netns();
  if (!ns) fail(ns.error().message());
  const pid_t server = start_server(ns->get());

  LoopThread loop;
  std::unique_ptr<runner::PortProxy> proxy;
  uint16_t port = 0;
  loop.run([&] {
    config::PortSpec spec;
    spec.host_ip = "127.0.0.1";
    spec.container_port = kInnerPort;
    auto p = runner::PortProxy::open(loop.loop(), ns->get(), {spec}, "bench", options);
    if (!p) fail(p.error().message());
    proxy = p.take();
    port = proxy->published()[0].host_port;
  });

  const Route routes[] = {{"direct", ns->get(), 0}, {"proxy", -1, port}};
  double down[2] = {0, 0}, up[2] = {0, 0}, p50[2], p99[2], c50[2];
  double loop_cpu = 0;  // the proxy's loop thread, CPU seconds over every bulk round
  for (int k = 0; k < 2; ++k) {
    const double cpu0 = loop.cpu_seconds();
    for (int i = 0; i < rounds; ++i) {  // the best round: the least disturbed by other load
      down[k] = std::max(down[k], download(routes[k], bytes));
      up[k] = std::max(up[k], upload(routes[k], bytes));
    }
    if (k == 1) loop_cpu = loop.cpu_seconds() - cpu0;
    auto lat = ping(routes[k], requests);
    p50[k] = percentile(lat, 0.5);
    p99[k] = percentile(lat, 0.99);
    c50[k] = percentile(connects(routes[k], connect_count), 0.5);
  }
  std::printf("| measure | direct | proxy | proxy/direct |\n|---|---|---|---|\n");
  std::printf("| download (server -> client), GB/s, best of %d x %.1f GiB | %.2f | %.2f | %.2f |\n", rounds,
              static_cast<double>(bytes) / (1 << 30), down[0], down[1], down[1] / down[0]);
  std::printf("| upload (client -> server), GB/s | %.2f | %.2f | %.2f |\n", up[0], up[1], up[1] / up[0]);
  // Independent of the other load on the machine: what the loop thread could move on one core.
  const double gb = 2.0 * rounds * static_cast<double>(bytes) / 1e9;
  std::printf("| proxy loop thread: CPU seconds per GB, (= GB/s on one core) | | %.3f (%.2f) | |\n", loop_cpu / gb,
              gb / loop_cpu);
  std::printf("| PING round trip, median us (%d requests) | %.1f | %.1f | +%.1f us |\n", requests, p50[0], p50[1],
              p50[1] - p50[0]);
  std::printf("| PING round trip, p99 us | %.1f | %.1f | +%.1f us |\n", p99[0], p99[1], p99[1] - p99[0]);
  std::printf("| connect + PING + close, median us (%d) | %.1f | %.1f | +%.1f us |\n", connect_count, c50[0], c50[1],
              c50[1] - c50[0]);

  loop.run([&] { proxy->close(nullptr); proxy.reset(); });
  const bool clean = loop.stop();
  ::kill(server, SIGKILL);
  ::waitpid(server, nullptr, 0);
  if (!clean) fail("the loop did not close cleanly");
  return 0;
}
