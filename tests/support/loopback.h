// Loopback TCP helpers for tests of published ports: a client, a line request, a listener.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "sandbox/sys/unique_fd.h"

namespace sandrun::testing {

// A connected TCP socket to 127.0.0.1:port, or an invalid fd.
inline UniqueFd connect_local(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) return UniqueFd();
  return fd;
}

// A TCP socket listening on 127.0.0.1 on a port the kernel picked, and that port.
inline std::pair<UniqueFd, uint16_t> listen_loopback() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || ::listen(fd.get(), 8) < 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) < 0)
    return {UniqueFd(), 0};
  return {std::move(fd), ntohs(a.sin_port)};
}

// Sends `line` and reads one reply line.
inline std::string request(int fd, const std::string& line) {
  std::string out = line + "\n";
  if (::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
    return "(write failed: " + std::string(std::strerror(errno)) + ")";
  }
  std::string reply;
  for (;;) {
    char c;
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return "(read failed: " + std::string(std::strerror(errno)) + " after \"" + reply + "\")";
    if (n == 0) return "(connection closed after \"" + reply + "\")";
    if (c == '\n') return reply;
    reply += c;
  }
}

}  // namespace sandrun::testing
