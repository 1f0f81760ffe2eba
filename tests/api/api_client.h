// A raw HTTP client over a Unix socket for the Engine API tests: bytes in, responses out.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace sandrun::testing {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// A connected Unix stream socket (-1 when nobody answers).
inline int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads until the peer closes or `timeout` passes.
inline std::string read_to_eof(int fd, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  std::string out;
  const auto end = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Splits a stream of responses (Content-Length framed; `heads[i]` true when the i-th answers a
// HEAD request, which has no body).
inline std::vector<HttpReply> parse_replies(const std::string& raw, const std::vector<bool>& heads = {}) {
  std::vector<HttpReply> out;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t end = raw.find("\r\n\r\n", pos);
    if (end == std::string::npos) break;
    HttpReply r;
    std::string head = raw.substr(pos, end - pos);
    r.status = std::atoi(head.substr(9, 3).c_str());
    size_t line = head.find("\r\n");
    while (line != std::string::npos) {
      size_t next = head.find("\r\n", line + 2);
      std::string h = head.substr(line + 2, next == std::string::npos ? std::string::npos : next - line - 2);
      size_t colon = h.find(':');
      if (colon != std::string::npos) {
        std::string k = h.substr(0, colon);
        std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
        r.headers[k] = h.substr(colon + 1 + (h.size() > colon + 1 && h[colon + 1] == ' '));
      }
      line = next;
    }
    pos = end + 4;
    const bool is_head = out.size() < heads.size() && heads[out.size()];
    if (!is_head && r.headers["transfer-encoding"] == "chunked") {
      // Chunked: "<hex>\r\n<bytes>\r\n" ... "0\r\n\r\n" (an unfinished stream: what came).
      while (pos < raw.size()) {
        const size_t eol = raw.find("\r\n", pos);
        if (eol == std::string::npos) break;
        const size_t n = std::strtoul(raw.substr(pos, eol - pos).c_str(), nullptr, 16);
        pos = eol + 2;
        if (n == 0) {
          pos += 2;
          break;
        }
        r.body += raw.substr(pos, n);
        pos += n + 2;
      }
      out.push_back(std::move(r));
      continue;
    }
    const size_t len = is_head ? 0 : std::strtoul(r.headers["content-length"].c_str(), nullptr, 10);
    r.body = raw.substr(pos, len);
    pos += len;
    out.push_back(std::move(r));
  }
  return out;
}

// Sends `request` on a new connection and reads every response until the daemon closes it.
inline std::vector<HttpReply> roundtrip(const std::string& socket, const std::string& request,
                                        const std::vector<bool>& heads = {}) {
  int fd = connect_unix(socket);
  if (fd < 0) return {};
  send_all(fd, request);
  std::string raw = read_to_eof(fd);
  ::close(fd);
  return parse_replies(raw, heads);
}

// GET `path` with "Connection: close": the one response (status 0 when there was none).
inline HttpReply get(const std::string& socket, const std::string& path, const std::string& method = "GET") {
  auto replies = roundtrip(socket, method + " " + path + " HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
                           {method == "HEAD"});
  return replies.empty() ? HttpReply{} : replies.front();
}

// `method path` with a JSON `body` and "Connection: close": the one response.
inline HttpReply request_json(const std::string& socket, const std::string& method, const std::string& path,
                              const std::string& body) {
  auto replies = roundtrip(socket, method + " " + path + " HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
                                       "Content-Type: application/json\r\nContent-Length: " +
                                       std::to_string(body.size()) + "\r\n\r\n" + body);
  return replies.empty() ? HttpReply{} : replies.front();
}

// GET / of 127.0.0.1:port over TCP (a published port), the whole answer ("" when nobody
// answers within 5 s).
inline std::string http_get(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && send_all(fd, "GET / HTTP/1.0\r\n\r\n"))
    out = read_to_eof(fd, std::chrono::seconds(5));
  ::close(fd);
  return out;
}

}  // namespace sandrun::testing
