// A client's connection to the Engine API server: reading and parsing its requests one at a
// time, answering them whole, streamed or hijacked, request and response bodies through files,
// and the bounds and backpressure of its output.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "runner/api/server_connection.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace detail {

Result<UniqueFd> open_body_file(const std::string& dir) {
  SANDRUN_TRY(fs::mkdirs(dir, 0700));
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return UniqueFd(fd);
  if (errno != EOPNOTSUPP && errno != EISDIR) return Error::sys("create a temp file in {}", dir);
  // A file system without O_TMPFILE: a named file, unlinked at once.
  std::string path = fs::join(dir, "body-XXXXXX");
  fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) return Error::sys("create a temp file in {}", dir);
  ::unlink(path.c_str());
  return UniqueFd(fd);
}

void on_closed(uv_handle_t* h) {
  auto* conn = static_cast<Connection*>(h->data);
  Server::Core* core = conn->core;
  core->connections.erase(conn);
  conn->exchange.reset();  // on_gone, and its blocking work cancelled, while conn is whole
  delete conn;
  core->handle_closed();
}

void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* conn = static_cast<Connection*>(h->data);
  *buf = uv_buf_init(conn->core->read_buf.get(), static_cast<unsigned>(conn->core->options.read_bytes));
}

void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* conn = static_cast<Connection*>(s->data);
  if (conn->closing) return;
  if (nread == UV_EOF) {
    conn->eof = true;
    conn->update_reading();
    // A hijacked client closed its input (stdin's end); its output goes on.
    if (conn->hijacked) return conn->input_end();
    // During a streamed answer the client's end means it is gone (as Go's server takes it).
    if (conn->exchange && conn->exchange->streaming()) return conn->close();
    // The client finished sending: what it sent is still answered, then the connection ends.
    return conn->process();
  }
  if (nread < 0) return conn->close();  // a reset: the client is gone
  if (nread == 0) return;
  if (conn->hijacked) return conn->input(std::string_view(buf->base, static_cast<size_t>(nread)));
  if (conn->in_pos == conn->in.size()) {
    conn->in.clear();
    conn->in_pos = 0;
  }
  conn->in.append(buf->base, static_cast<size_t>(nread));
  conn->process();
}

void on_write(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Connection* conn = w->conn;
  conn->out_bytes -= w->data.size();
  delete w;
  if (conn->closing) return;  // UV_ECANCELED while closing
  if (status < 0) return conn->close();
  conn->drained();
  if (!conn->closing) conn->process();
}

void on_fs(uv_fs_t* req) {
  std::unique_ptr<FsReq> f(static_cast<FsReq*>(req->data));
  const ssize_t result = req->result;
  uv_fs_req_cleanup(req);
  if (f->conn) f->conn->fs_done(*f, result);
}

}  // namespace detail

// Parses and answers what was read, one request at a time, while the client reads answers.
void Connection::process() {
  while (!closing && !busy() && !close_after && out_bytes < core->options.output_bytes && in_pos < in.size()) {
    auto step = parser.feed(in.data() + in_pos, in.size() - in_pos);
    in_pos += step.consumed;
    if (step.kind == RequestParser::Kind::error) return fail(step.status, step.message);
    if (!body_error.empty()) return fail(500, body_error);
    const bool complete = step.kind == RequestParser::Kind::request;
    // A body going to a file: its parsed part is written before anything else happens.
    if (!body_chunk.empty()) {
      flush_body(complete);
      break;
    }
    if (!complete) break;
    dispatch(parser.take());
  }
  if (closing) return;
  if (out_file && !fs_pending && out_bytes < core->options.output_bytes) send_file_part();
  if (closing) return;
  update_reading();
  const bool drained = !busy() && out_bytes == 0;
  if (drained && close_after) return close();
  // At the client's end of input nothing more can come: a partial request is dropped.
  if (drained && eof && (in_pos == in.size() || close_after)) close();
}

void Connection::update_reading() {
  // A streamed answer still reads (a client that goes is seen at once; what it pipelines waits,
  // one read's worth); a hijacked one reads its input unless paused. A body part being written
  // to its file, or a file answer being sent, pauses reading as an exchange does.
  const bool streaming = exchange && exchange->streaming();
  const bool want = !closing && !eof &&
                    (hijacked    ? !input_paused
                     : streaming ? in_pos == in.size()
                                 : !busy() && !close_after && out_bytes < core->options.output_bytes &&
                                       in_pos == in.size());
  if (want && !reading) {
    if (uv_read_start(stream(), detail::on_alloc, detail::on_read) < 0) return close();
    reading = true;
  } else if (!want && reading) {
    uv_read_stop(stream());
    reading = false;
  }
}

void Connection::dispatch(Request req) {
  ++core->stats.requests;
  head = req.method == "HEAD";
  // An upgrade the handler answers without hijacking ends the connection after the answer.
  if (!req.keep_alive || req.upgrade) close_after = true;
  if (body_in) req.body_file = std::move(body_in);
  body_in.reset();
  exchange = std::make_unique<Exchange>(std::move(req), peer, this);
  replied = false;
  call([&] { core->handler(*exchange); });
}

void Connection::finish(Response r) {
  if (closing) return;
  if (close_after) r.close = true;
  if (r.close) close_after = true;
  if (core->options.decorate) core->options.decorate(r);
  write(serialize(r, head, core->options.server_header));
  if (r.file && !head && r.file->size > 0) {
    out_file = r.file;
    out_off = 0;
  }
  end_exchange();
}

// The exchange's answer is over: drop it (after the handler's call if inside one) and go on.
void Connection::end_exchange() {
  if (in_handler) {
    replied = true;  // call() drops the exchange once the handler returns
    return;
  }
  exchange.reset();  // an answer that ended later: the exchange is not used after this call
  if (!closing) process();
}

void Connection::begin_stream(Response head_r) {
  if (closing) return;
  if (close_after) head_r.close = true;
  if (core->options.decorate) core->options.decorate(head_r);
  std::string body = std::move(head_r.body);
  head_r.body.clear();
  std::string out = serialize_head(head_r, core->options.server_header, HeadFraming::chunked);
  write(std::move(out));
  if (!body.empty()) send(body);
  update_reading();
}

void Connection::begin_hijack(Response head_r) {
  if (closing) return;
  if (core->options.decorate) core->options.decorate(head_r);
  const bool upgrade = exchange->request().upgrade;
  if (upgrade) {
    head_r.status = 101;
    head_r.headers.emplace_back("Connection", "Upgrade");
    head_r.headers.emplace_back("Upgrade", "tcp");
  }
  write(serialize_head(head_r, core->options.server_header, upgrade ? HeadFraming::upgrade : HeadFraming::until_close));
  hijacked = true;
  close_after = true;  // a hijacked connection serves nothing after it
  // What the client sent after the request (stdin it did not wait to send) is input already.
  if (in_pos < in.size()) {
    std::string early = in.substr(in_pos);
    in_pos = in.size();
    input(early);
  }
  if (eof) input_end();
  update_reading();
}

bool Connection::send(std::string_view data) {
  if (closing) return false;
  if (!data.empty()) {
    if (hijacked) write(std::string(data));
    else write(fmt::format("{:x}\r\n{}\r\n", data.size(), data));
  }
  const bool room = out_bytes < core->options.output_bytes;
  if (!room) want_drain = true;
  return room;
}

void Connection::input(std::string_view data) {
  if (!exchange || !exchange->input_) return;
  call([&] { exchange->input_(data); });
  after_callback();
}

void Connection::input_end() {
  if (!exchange || !exchange->input_end_) return;
  auto f = std::move(exchange->input_end_);
  exchange->input_end_ = nullptr;
  call([&] { f(); });
  after_callback();
}

void Connection::drained() {
  if (!want_drain || out_bytes >= core->options.output_bytes || !exchange) return;
  want_drain = false;
  if (exchange->drain_) call([&] { exchange->drain_(); });
  after_callback();
}

// After an exchange's callback outside the handler's call: an answer that ended there lets the
// connection go on (close a hijacked one, serve the next request).
void Connection::after_callback() {
  if (!exchange && !closing) process();
}

void Connection::fail(int status, const std::string& message) {
  ++core->stats.bad_requests;
  log::debug("api: connection {} (pid {}): {} {}", id, peer.pid, status, message);
  Response r = Response::error(status, message);
  r.close = true;
  close_after = true;
  if (core->options.decorate) core->options.decorate(r);
  write(serialize(r, false, core->options.server_header));
  if (!closing && out_bytes == 0) close();
  else update_reading();
}

void Connection::write(std::string data) {
  if (closing || data.empty()) return;
  uv_buf_t b = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
  if (out_bytes == 0) {
    // Most answers fit the socket's buffer at once: no request at all.
    int n = uv_try_write(stream(), &b, 1);
    if (n == static_cast<int>(data.size())) return;
    if (n < 0 && n != UV_EAGAIN) return close();
    if (n > 0) data.erase(0, static_cast<size_t>(n));
  }
  auto* w = new detail::WriteReq;
  w->conn = this;
  w->data = std::move(data);
  w->req.data = w;
  b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, stream(), &b, 1, detail::on_write) < 0) {
    delete w;
    return close();
  }
  out_bytes += w->data.size();
}

// Writes the parsed part of a file body; a complete request is dispatched once it is written.
void Connection::flush_body(bool complete) {
  auto* f = new detail::FsReq;
  f->conn = this;
  f->file = body_in;
  f->buf = std::move(body_chunk);
  f->write = true;
  f->req.data = f;
  body_chunk.clear();
  request_waiting = complete;
  uv_buf_t b = uv_buf_init(f->buf.data(), static_cast<unsigned>(f->buf.size()));
  fs_pending = f;
  if (int rc = uv_fs_write(core->loop, &f->req, f->file->fd.get(), &b, 1, static_cast<int64_t>(f->file->size), detail::on_fs);
      rc < 0) {
    fs_pending = nullptr;
    delete f;
    return fail(500, fmt::format("write the request body to a temp file in {}: {}", core->options.body_dir, uv_strerror(rc)));
  }
  update_reading();
}

// Reads the next part of a file response (it is written when the read completes).
void Connection::send_file_part() {
  auto* f = new detail::FsReq;
  f->conn = this;
  f->file = out_file;
  f->buf.resize(std::min<uint64_t>(core->options.file_part_bytes, out_file->size - out_off));
  f->req.data = f;
  uv_buf_t b = uv_buf_init(f->buf.data(), static_cast<unsigned>(f->buf.size()));
  fs_pending = f;
  if (uv_fs_read(core->loop, &f->req, f->file->fd.get(), &b, 1, static_cast<int64_t>(out_off), detail::on_fs) < 0) {
    fs_pending = nullptr;
    delete f;
    close();  // the head is sent: a response cut short is all the client can be told
  }
}

void Connection::fs_done(detail::FsReq& f, ssize_t result) {
  fs_pending = nullptr;
  if (closing) return;
  if (f.write) {
    if (result < 0 || static_cast<size_t>(result) != f.buf.size())
      return fail(500, fmt::format("write the request body to a temp file in {}: {}", core->options.body_dir,
                                   result < 0 ? uv_strerror(static_cast<int>(result)) : "short write"));
    f.file->size += static_cast<uint64_t>(result);
    if (request_waiting) {
      request_waiting = false;
      dispatch(parser.take());
    }
    return process();
  }
  if (result <= 0) {
    log::warn("api: connection {}: reading a response file failed ({}): closing", id,
              result < 0 ? uv_strerror(static_cast<int>(result)) : "end of file before its size");
    return close();
  }
  f.buf.resize(static_cast<size_t>(result));
  out_off += static_cast<uint64_t>(result);
  if (out_off >= out_file->size) out_file.reset();
  write(std::move(f.buf));
  process();
}

void Connection::close() {
  if (closing) return;
  closing = true;
  if (fs_pending) fs_pending->conn = nullptr;  // it completes on its own, and frees itself
  fs_pending = nullptr;
  body_in.reset();
  out_file.reset();
  --core->stats.active;
  // The exchange goes with the handle (on_closed), never here: close() may be reached from
  // inside one of its own calls (a write that finds the client gone, in send() or end()),
  // whose callers still hold it. Meanwhile its sends and ends are no-ops (closing).
  // A hijacked client may still be sending (stdin of a command that has ended): closing with
  // its bytes unread would answer with a reset, which can discard the output it has not read
  // yet. Its end of output first, then what it sent is read and dropped.
  uv_os_fd_t fd = -1;
  if (hijacked && !eof && uv_fileno(reinterpret_cast<uv_handle_t*>(&pipe), &fd) == 0) {
    ::shutdown(fd, SHUT_WR);
    char sink[16 << 10];
    while (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&pipe), detail::on_closed);
}

}  // namespace sandrun::runner::api
