// ApiClient: the daemon's own client, for `sandrun ps|logs|stop|rm`: one request per
// connection on the daemon's Unix socket, the answer parsed by ResponseParser (llhttp), its
// body read whole or handed on as it comes (logs -f). Blocking: for the CLI, not the loop.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "runner/api/http_parser.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner::api {

struct ClientReply {
  int status = 0;
  std::string content_type;
  std::string body;
  // Docker's {"message": ...} of an error answer, else the body.
  std::string message() const;
};

class ApiClient {
 public:
  // `host`: "unix:///path/to.sock" or a path; "" is SANDRUN_HOST, else the default socket.
  static Result<ApiClient> open(std::string_view host);
  const std::string& socket() const { return socket_; }

  // Sends one request (`body` as JSON when not empty) and reads the whole answer.
  Result<ClientReply> call(std::string_view method, std::string_view target, std::string_view body = {}) const;
  // The same, handing the body on as it comes (a stream such as logs?follow=1); the reply's
  // body stays empty unless the status is an error.
  Result<ClientReply> stream(std::string_view method, std::string_view target,
                             const std::function<void(std::string_view)>& on_body) const;

 private:
  explicit ApiClient(std::string socket) : socket_(std::move(socket)) {}
  std::string socket_;
};

// Docker's multiplexed stream (attach, logs without a TTY): 8-byte headers [stream, 0, 0, 0,
// size (big-endian u32)] then the bytes. Fed in any pieces; calls emit(stream, bytes).
class StreamDemux {
 public:
  template <class F>
  void feed(std::string_view data, F&& emit) {
    buf_.append(data);
    size_t pos = 0;
    while (buf_.size() - pos >= 8) {
      const auto* h = reinterpret_cast<const unsigned char*>(buf_.data() + pos);
      const size_t n = (size_t{h[4]} << 24) | (size_t{h[5]} << 16) | (size_t{h[6]} << 8) | h[7];
      if (buf_.size() - pos - 8 < n) break;
      emit(static_cast<int>(h[0]), std::string_view(buf_).substr(pos + 8, n));
      pos += 8 + n;
    }
    buf_.erase(0, pos);
  }

 private:
  std::string buf_;
};

}  // namespace sandrun::runner::api
