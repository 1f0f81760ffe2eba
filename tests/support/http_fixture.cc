// A minimal HTTP/1.1 server for tests (one request per connection, answered in order).
#include "tests/support/http_fixture.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cstdint>
#include <stdexcept>

namespace sandrun::testing {

namespace {

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Reads up to the end of the request head; the tests only send GETs without bodies.
bool read_head(int fd, std::string& head) {
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos) {
    struct pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return false;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    head.append(buf, static_cast<size_t>(n));
    if (head.size() > (1u << 20)) return false;
  }
  return true;
}

HttpExchange parse_head(const std::string& head) {
  HttpExchange ex;
  size_t eol = head.find("\r\n");
  std::string first = head.substr(0, eol);
  size_t sp1 = first.find(' '), sp2 = first.rfind(' ');
  ex.method = first.substr(0, sp1);
  ex.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos || end == pos) break;
    std::string line = head.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) ex.headers[lower(line.substr(0, colon))] = trim(line.substr(colon + 1));
    pos = end + 2;
  }
  return ex;
}

void write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the client went away: nothing to report to anyone
    off += static_cast<size_t>(n);
  }
}

}  // namespace

HttpFixture::HttpFixture(Handler handler) : handler_(std::move(handler)) {
  listen_fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  stop_fd_.reset(::eventfd(0, EFD_CLOEXEC));
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!listen_fd_ || !stop_fd_ ||
      ::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
      ::listen(listen_fd_.get(), 64) < 0 ||
      ::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) < 0)
    throw std::runtime_error("HttpFixture: cannot listen on 127.0.0.1");
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

HttpFixture::~HttpFixture() {
  uint64_t one = 1;
  if (::write(stop_fd_.get(), &one, sizeof one) < 0) {
    // Cannot happen for an eventfd below its maximum; the join below would then hang.
  }
  thread_.join();
}

std::vector<HttpExchange> HttpFixture::requests() const {
  std::lock_guard lock(mu_);
  return seen_;
}

void HttpFixture::serve() {
  for (;;) {
    struct pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents) return;
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (conn) answer(conn.get());
  }
}

void HttpFixture::answer(int fd) {
  std::string head;
  if (!read_head(fd, head)) return;
  HttpExchange ex = parse_head(head);
  {
    std::lock_guard lock(mu_);
    seen_.push_back(ex);
  }
  HttpReply reply = handler_(ex);
  std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + reply.reason + "\r\n";
  for (auto& [name, value] : reply.headers) out += name + ": " + value + "\r\n";
  out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\nConnection: close\r\n\r\n";
  if (ex.method != "HEAD") out += reply.body;
  write_all(fd, out);
}

}  // namespace sandrun::testing
