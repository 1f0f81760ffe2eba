// Server: HTTP/1.1 over a listening Unix socket on the loop, bounded in every direction.
// Each connection parses with RequestParser, answers its requests one at a time and in order
// (pipelined ones wait in the socket), keeps at most `output_bytes` of unsent responses and
// stops reading a client that does not read them (backpressure). Malformed HTTP is answered
// 400 (431, 413 for the bounds) and the connection closed; a client that goes away costs its
// connection only: work started for its request is cancelled.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "runner/api/http_message.h"
#include "runner/api/http_parser.h"
#include "runner/loop/loop.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner::api {

// The client process at the other end (SO_PEERCRED, read when the connection is accepted).
struct Peer {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

class Connection;

// One request being answered. The handler replies through it once, at once or later on the
// loop thread: a whole response (reply), a streamed one (begin_stream, send..., end: logs -f,
// events, progress), or a hijacked connection (hijack, send..., end: attach, exec start). The
// connection owns it and destroys it when the answer is over or the client goes (cancelling
// `work`; `on_gone` says so first).
class Exchange {
 public:
  Exchange(Request request, Peer peer, Connection* conn) : request_(std::move(request)), peer_(peer), conn_(conn) {}
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const Request& request() const { return request_; }
  const Peer& peer() const { return peer_; }

  // Sends the whole response. The exchange may be destroyed before this returns.
  void reply(Response r);

  // Sends `head`'s status and headers, its body (if any) as the first part, and then the body
  // in parts with send() (chunked transfer encoding) until end(); the connection then serves
  // the client's next request.
  void begin_stream(Response head);
  // Hijacks the connection: answers "101 UPGRADED" with `head`'s headers when the client asked
  // for an upgrade (docker's attach and exec start), else `head` with no length (the body runs
  // until the connection closes). From then on the bytes go raw both ways: send() writes,
  // `on_input` gets what the client writes, `on_input_end` its end of input (stdin closed);
  // end() closes the connection once what was sent is written.
  void hijack(Response head, std::function<void(std::string_view)> on_input, std::function<void()> on_input_end);
  // Stops (true) or resumes reading a hijacked client's input (backpressure for stdin).
  void pause_input(bool paused);
  // A part of a streamed body, or bytes of a hijacked connection. Returns false when more than
  // the connection's output bound waits unsent: produce no more until `on_drain` runs.
  bool send(std::string_view data);
  // Ends a streamed or hijacked answer. The exchange may be destroyed before this returns.
  void end();
  // Runs once the unsent output has fallen back under the bound after send() returned false.
  void on_drain(std::function<void()> f) { drain_ = std::move(f); }
  // Runs once if the client goes (or the server closes) before the answer ended; the exchange
  // is destroyed right after: drop every pointer to it there.
  void on_gone(std::function<void()> f) { gone_ = std::move(f); }

  bool streaming() const { return mode_ != Mode::none; }
  bool ended() const { return ended_; }

  BlockingCall work;  // blocking work done for this request, if any

 private:
  friend class Connection;
  enum class Mode { none, stream, hijack };

  Request request_;
  Peer peer_;
  Connection* conn_;
  Mode mode_ = Mode::none;
  bool ended_ = false;
  std::function<void(std::string_view)> input_;
  std::function<void()> input_end_;
  std::function<void()> drain_;
  std::function<void()> gone_;
};

struct ServerOptions {
  ParserLimits parser;
  size_t output_bytes = 1 << 20;   // unsent response bytes per connection before reading stops
  size_t connections = 1024;       // open connections; one more is answered 503 and closed
  size_t read_bytes = 64 << 10;    // one read's buffer (shared by all connections)
  std::string server_header = "sandrun";
  // Applied to every response, the server's own errors included (Docker's common headers).
  std::function<void(Response&)> decorate;
  // Whether a request's body is kept (see RequestParser::keep_body); unset: never.
  std::function<bool(const Request&)> keep_body;
};

class Server {
 public:
  using Handler = std::function<void(Exchange&)>;
  struct Stats {
    uint64_t accepted = 0;
    uint64_t refused = 0;   // over the connection cap
    uint64_t requests = 0;
    uint64_t bad_requests = 0;
    size_t active = 0;
  };

  // Serves on `listen_fd`, a bound and listening Unix stream socket (the server owns it).
  static Result<std::unique_ptr<Server>> start(Loop& loop, UniqueFd listen_fd, Handler handler,
                                               ServerOptions options);
  // Closes the listener and every connection (libuv finishes closing them on the loop).
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops accepting and closes every connection; `done` runs once all are closed.
  void close(std::function<void()> done);
  Stats stats() const;

  struct Core;

 private:
  explicit Server(Core* core) : core_(core) {}
  Core* core_;
};

}  // namespace sandrun::runner::api
