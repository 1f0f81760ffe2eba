// sandrun-kv-server: a tiny static key-value server with a line protocol, for tests and benches
// (a stand-in for redis inside containers, and the server behind published ports).
//
// Usage: sandrun-kv-server [--netns PATH] [--host ADDR] PORT
//   Listens on ADDR:PORT (default 127.0.0.1; IPv4 or IPv6), multi-client (one poll loop, no
//   threads), and prints "ready" on stdout once listening (with PORT 0 it first prints
//   "port N", the port it got). --netns PATH: setns(2) into that network namespace first, e.g.
//   /proc/<pid>/fd/<fd> of a namespace fd another process holds (needs root).
//   Runs until killed (SIGTERM/SIGKILL).
//
// Protocol: one command per line ("\n", a trailing "\r" is ignored), one reply line each:
//   PING            -> PONG
//   SET key value   -> OK            (value: the rest of the line, spaces included)
//   GET key         -> value, or (nil)
//   DEL key         -> 1 or 0
//   QUIT            -> BYE, then the server closes the connection
//   SINK            -> reads everything up to EOF (the client's shutdown(SHUT_WR)), then
//                      replies with the number of bytes read after the SINK line and closes
//   SOURCE n        -> sends n bytes ('x'), then goes on reading commands
//   ECHO            -> sends back every byte after the ECHO line until EOF, then closes
//   RESET           -> no reply: the server aborts the connection (RST, SO_LINGER 0)
//   anything else   -> ERR unknown command
// Keys and values live in memory, shared by all clients.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

enum class Mode { lines, sink, echo };

struct Client {
  int fd = -1;
  Mode mode = Mode::lines;
  std::string in, out;
  unsigned long long sunk = 0;
  unsigned long long source_left = 0;
  bool close_after_flush = false;
  bool dead = false;
};

std::map<std::string, std::string> store;
constexpr size_t kChunk = 256 * 1024;
constexpr size_t kMaxOut = 4 * 1024 * 1024;  // stop reading a client that does not read
char chunk[kChunk];
char xs[kChunk];

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "sandrun-kv-server: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

void command(Client& c, std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const size_t sp = line.find(' ');
  const std::string cmd = line.substr(0, sp);
  const std::string rest = sp == std::string::npos ? "" : line.substr(sp + 1);
  if (cmd == "PING") {
    c.out += "PONG\n";
  } else if (cmd == "SET") {
    const size_t ksp = rest.find(' ');
    store[rest.substr(0, ksp)] = ksp == std::string::npos ? "" : rest.substr(ksp + 1);
    c.out += "OK\n";
  } else if (cmd == "GET") {
    auto it = store.find(rest);
    c.out += it == store.end() ? "(nil)" : it->second;
    c.out += "\n";
  } else if (cmd == "DEL") {
    c.out += store.erase(rest) ? "1\n" : "0\n";
  } else if (cmd == "QUIT") {
    c.out += "BYE\n";
    c.close_after_flush = true;
  } else if (cmd == "RESET") {
    linger l{1, 0};
    ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    c.out.clear();
    c.dead = true;
  } else if (cmd == "SINK") {
    c.mode = Mode::sink;
  } else if (cmd == "ECHO") {
    c.mode = Mode::echo;
  } else if (cmd == "SOURCE") {
    c.source_left += std::strtoull(rest.c_str(), nullptr, 10);
  } else {
    c.out += "ERR unknown command\n";
  }
}

void take_bytes(Client& c, const char* data, size_t n) {
  if (c.mode == Mode::sink) {
    c.sunk += n;
    return;
  }
  if (c.mode == Mode::echo) {
    c.out.append(data, n);
    return;
  }
  c.in.append(data, n);
  size_t start = 0;
  for (;;) {
    const size_t nl = c.in.find('\n', start);
    // After SOURCE, later commands wait until its bytes are sent: replies stay in order.
    if (nl == std::string::npos || c.close_after_flush || c.dead || c.source_left > 0) break;
    command(c, c.in.substr(start, nl - start));
    start = nl + 1;
    if (c.mode != Mode::lines) {  // the bytes after the line belong to the new mode
      std::string tail = c.in.substr(start);
      c.in.clear();
      take_bytes(c, tail.data(), tail.size());
      return;
    }
  }
  c.in.erase(0, start);
}

void on_readable(Client& c) {
  const ssize_t n = ::read(c.fd, chunk, sizeof chunk);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) c.dead = true;
    return;
  }
  if (n == 0) {  // EOF
    if (c.mode == Mode::sink) c.out += std::to_string(c.sunk) + "\n";
    if (c.mode == Mode::lines && c.out.empty() && c.source_left == 0) c.dead = true;
    c.close_after_flush = true;
    return;
  }
  take_bytes(c, chunk, static_cast<size_t>(n));
}

void on_writable(Client& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::write(c.fd, c.out.data(), c.out.size());
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) c.dead = true;
      return;
    }
    c.out.erase(0, static_cast<size_t>(n));
  }
  while (c.source_left > 0) {
    const size_t want = c.source_left < kChunk ? c.source_left : kChunk;
    const ssize_t n = ::write(c.fd, xs, want);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) c.dead = true;
      return;
    }
    c.source_left -= static_cast<size_t>(n);
    if (c.source_left == 0 && c.mode == Mode::lines && !c.in.empty()) {
      take_bytes(c, "", 0);  // the commands that waited for SOURCE
      return;              // their replies go out on the next POLLOUT
    }
  }
  if (c.close_after_flush) c.dead = true;
}

int listen_on(const char* host, int port) {
  sockaddr_storage addr{};
  socklen_t len;
  int family;
  if (std::strchr(host, ':')) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) die("bad --host");
    family = AF_INET6;
    len = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) die("bad --host");
    family = AF_INET;
    len = sizeof *a4;
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0) die("bind");
  if (::listen(fd, SOMAXCONN) < 0) die("listen");
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  const char* netns = nullptr;
  int port = -1;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--host") && i + 1 < argc) {
      host = argv[++i];
    } else if (!std::strcmp(argv[i], "--netns") && i + 1 < argc) {
      netns = argv[++i];
    } else if (port < 0) {
      port = std::atoi(argv[i]);
    } else {
      port = -1;
      break;
    }
  }
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "usage: sandrun-kv-server [--netns PATH] [--host ADDR] PORT\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  std::memset(xs, 'x', sizeof xs);
  if (netns) {
    int fd = ::open(netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open --netns");
    if (::setns(fd, CLONE_NEWNET) < 0) die("setns");
    ::close(fd);
  }
  const int lfd = listen_on(host, port);
  if (port == 0) {
    sockaddr_storage got{};
    socklen_t len = sizeof got;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&got), &len);
    const uint16_t p = got.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&got)->sin_port;
    std::printf("port %u\n", ntohs(p));
  }
  std::printf("ready\n");
  std::fflush(stdout);

  std::vector<Client> clients;
  std::vector<pollfd> fds;
  for (;;) {
    fds.assign(1, pollfd{lfd, POLLIN, 0});
    for (const Client& c : clients) {
      short ev = 0;
      if (!c.close_after_flush && c.out.size() < kMaxOut) ev |= POLLIN;
      if (!c.out.empty() || c.source_left > 0 || c.close_after_flush) ev |= POLLOUT;
      fds.push_back(pollfd{c.fd, ev, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    const size_t n = clients.size();  // accepted clients join the next round
    for (size_t i = 0; i < n; ++i) {
      Client& c = clients[i];
      const short re = fds[i + 1].revents;
      if (!c.close_after_flush && (re & (POLLIN | POLLHUP | POLLERR))) on_readable(c);
      if (!c.dead && (re & POLLOUT)) on_writable(c);
      if (re & POLLNVAL) c.dead = true;
    }
    if (fds[0].revents & POLLIN) {
      for (;;) {
        int cfd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break;
        int one = 1;
        ::setsockopt(cfd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
        Client c;
        c.fd = cfd;
        clients.push_back(std::move(c));
      }
    }
    for (size_t i = 0; i < clients.size();) {
      if (clients[i].dead) {
        ::close(clients[i].fd);
        clients[i] = std::move(clients.back());
        clients.pop_back();
      } else {
        ++i;
      }
    }
  }
}
