// A minimal HTTP/1.1 server on 127.0.0.1 for tests: unit tests of the registry client's HTTP
// handling, and the token server that a real docker-registry with token auth sends clients to.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sandbox/sys/unique_fd.h"

namespace sandrun::testing {

struct HttpExchange {
  std::string method;                         // "GET"
  std::string target;                         // "/v2/x/manifests/1?a=b"
  std::map<std::string, std::string> headers;  // names lowercased
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpReply {
  int status = 200;
  std::string reason = "OK";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Serves each connection's one request with `handler` (on the fixture's thread, one at a time)
// and closes it. Listens from construction to destruction on a free port.
class HttpFixture {
 public:
  using Handler = std::function<HttpReply(const HttpExchange&)>;
  explicit HttpFixture(Handler handler);
  ~HttpFixture();
  HttpFixture(const HttpFixture&) = delete;
  HttpFixture& operator=(const HttpFixture&) = delete;

  int port() const { return port_; }
  std::string authority() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url(const std::string& path) const { return "http://" + authority() + path; }
  // Every request served so far, in order.
  std::vector<HttpExchange> requests() const;

 private:
  void serve();
  void answer(int fd);

  Handler handler_;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;  // eventfd: the destructor wakes the thread
  int port_ = 0;
  mutable std::mutex mu_;
  std::vector<HttpExchange> seen_;
  std::thread thread_;
};

}  // namespace sandrun::testing
