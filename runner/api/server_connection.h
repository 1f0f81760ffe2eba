// The Engine API server's private parts (server.cc, server_connection.cc): its state (Core),
// a client's connection, and the libuv callbacks between them. Not for the routes: server.h is
// their interface.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <unordered_set>

#include "runner/api/server.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

// Why the handles here do not use UvHandle (as port_proxy.cc): a pending uv_write gets its
// callback (UV_ECANCELED) after uv_close and before the close callback, and that callback
// reaches the connection through its request. So a connection is freed in its handle's close
// callback, and the server's state (Core) lives until its last handle is closed.

namespace sandrun::runner::api {

struct Server::Core {
  uv_loop_t* loop = nullptr;
  Handler handler;
  ServerOptions options;
  uv_pipe_t listener{};
  bool listener_live = false;
  std::unique_ptr<char[]> read_buf;
  std::unordered_set<Connection*> connections;
  size_t open_handles = 0;
  uint64_t next_id = 1;
  Stats stats;
  bool closing = false;
  bool owner = true;
  bool finished = false;
  std::function<void()> done;

  void accept();
  void close_all();
  void handle_closed();
};

class Connection;

namespace detail {

struct WriteReq {
  uv_write_t req{};
  Connection* conn = nullptr;
  std::string data;
};

// One file read (a response body's part) or write (a request body's part) on libuv's

struct FsReq {
  uv_fs_t req{};
  Connection* conn = nullptr;
  std::shared_ptr<BodyFile> file;  // kept open until the request is done
  std::string buf;
  bool write = false;
};


// An unnamed temp file in `dir` for a request body: nothing to remove on any path.
Result<UniqueFd> open_body_file(const std::string& dir);

// libuv's callbacks of a connection's handle (server_connection.cc).
void on_closed(uv_handle_t* h);
void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf);
void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
void on_write(uv_write_t* req, int status);
void on_fs(uv_fs_t* req);

}  // namespace detail

class Connection {
 public:
  Server::Core* core = nullptr;
  uv_pipe_t pipe{};
  uint64_t id = 0;
  Peer peer;
  RequestParser parser;
  std::string in;     // bytes read and not parsed yet (a paused parser's rest)
  size_t in_pos = 0;
  std::unique_ptr<Exchange> exchange;  // the request being answered
  bool head = false;         // the exchange's request is HEAD
  bool in_handler = false;   // inside the handler's call, or one of the exchange's callbacks
  bool replied = false;      // the exchange's answer ended during that call
  bool hijacked = false;     // raw bytes both ways (Exchange::hijack)
  bool input_paused = false; // a hijacked client's input is not read (Exchange::pause_input)
  bool want_drain = false;   // send() said "full": tell the exchange when output drains
  bool close_after = false;  // close once the responses are written
  bool reading = false;
  bool eof = false;
  bool closing = false;
  size_t out_bytes = 0;      // queued and not written yet
  // A request body going to a file: the file, what was parsed and not written yet, whether
  // the request is complete and waits for that write, why the file could not be made.
  std::shared_ptr<BodyFile> body_in;
  std::string body_chunk;
  bool request_waiting = false;
  std::string body_error;
  // A response body coming from a file, and how much of it was sent.
  std::shared_ptr<BodyFile> out_file;
  uint64_t out_off = 0;
  detail::FsReq* fs_pending = nullptr;  // the file read or write in flight

  explicit Connection(Server::Core* c) : core(c), parser(c->options.parser) {
    parser.keep_body = c->options.keep_body;
    parser.stream_body = [this](const Request& r) -> std::optional<uint64_t> {
      if (!core->options.body_to_file) return std::nullopt;
      auto cap = core->options.body_to_file(r);
      if (!cap) return std::nullopt;
      auto fd = detail::open_body_file(core->options.body_dir);
      if (!fd) body_error = fd.error().message();
      else body_in = std::make_shared<BodyFile>(BodyFile{std::move(*fd), 0});
      return cap;
    };
    parser.body_sink = [this](const char* data, size_t n) {
      if (body_in) body_chunk.append(data, n);
    };
  }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&pipe); }
  void process();
  void dispatch(Request req);
  void finish(Response r);
  void fail(int status, const std::string& message);
  void write(std::string data);
  void update_reading();
  void close();
  bool busy() const { return exchange || fs_pending || out_file; }
  void flush_body(bool complete);
  void send_file_part();
  void fs_done(detail::FsReq& f, ssize_t result);
  // The exchange's streaming and hijack (server.h).
  void begin_stream(Response head);
  void begin_hijack(Response head);
  bool send(std::string_view data);
  void end_exchange();
  void input(std::string_view data);
  void input_end();
  void drained();
  void after_callback();
  // Runs `f` (handler code) and drops the exchange afterwards if its answer ended meanwhile.
  template <class F>
  void call(F&& f) {
    const bool outer = !in_handler;
    in_handler = true;
    f();
    if (!outer) return;
    in_handler = false;
    if (replied || closing) {
      replied = false;
      exchange.reset();
    }
  }
};

}  // namespace sandrun::runner::api
