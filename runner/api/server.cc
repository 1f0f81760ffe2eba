// The Engine API's HTTP server on the loop: the listener, its connections (their requests and
// answers in server_connection.cc), the exchanges the handler answers, and the bounds.
#include "runner/api/server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner/api/server_connection.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace {

void on_connection(uv_stream_t* server, int status) {
  auto* core = static_cast<Server::Core*>(server->data);
  if (status < 0 || core->closing) return;
  core->accept();
}

void on_listener_closed(uv_handle_t* h) { static_cast<Server::Core*>(h->data)->handle_closed(); }

}  // namespace

Exchange::~Exchange() {
  if (!ended_ && gone_) {
    auto f = std::move(gone_);
    gone_ = nullptr;
    f();
  }
}

void Exchange::reply(Response r) {
  if (ended_ || mode_ != Mode::none) return;
  ended_ = true;
  conn_->finish(std::move(r));
}

void Exchange::begin_stream(Response head) {
  if (ended_ || mode_ != Mode::none) return;
  mode_ = Mode::stream;
  conn_->begin_stream(std::move(head));
}

void Exchange::hijack(Response head, std::function<void(std::string_view)> on_input, std::function<void()> on_input_end) {
  if (ended_ || mode_ != Mode::none) return;
  mode_ = Mode::hijack;
  input_ = std::move(on_input);
  input_end_ = std::move(on_input_end);
  conn_->begin_hijack(std::move(head));
}

void Exchange::pause_input(bool paused) {
  if (mode_ != Mode::hijack || conn_->closing) return;
  conn_->input_paused = paused;
  conn_->update_reading();
}

bool Exchange::send(std::string_view data) {
  if (ended_ || mode_ == Mode::none) return false;
  return conn_->send(data);
}

void Exchange::end() {
  if (ended_ || mode_ == Mode::none) return;
  ended_ = true;
  // A write that finds the client gone closes the connection, which destroys this exchange
  // when no handler runs: nothing of `this` is touched after it (ASan: a wait answered after
  // its client had gone).
  Connection* conn = conn_;
  if (mode_ == Mode::stream) conn->write("0\r\n\r\n");
  if (!conn->closing || conn->in_handler) conn->end_exchange();
}

void Server::Core::accept() {
  auto* conn = new Connection(this);
  conn->id = next_id++;
  conn->pipe.data = conn;
  if (uv_pipe_init(loop, &conn->pipe, 0) < 0) {
    delete conn;
    return;
  }
  ++open_handles;
  ++stats.active;
  connections.insert(conn);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener), conn->stream()) < 0) return conn->close();
  ++stats.accepted;
  uv_os_fd_t fd = -1;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&conn->pipe), &fd) == 0 &&
      ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    conn->peer = Peer{cred.pid, cred.uid, cred.gid};
  }
  log::debug("api: connection {} from pid {} uid {} gid {}", conn->id, conn->peer.pid, conn->peer.uid, conn->peer.gid);
  if (connections.size() > options.connections) {
    ++stats.refused;
    log::warn("api: more than {} connections: refusing one from pid {}", options.connections, conn->peer.pid);
    conn->fail(503, "too many connections to sandrun's API socket");
    return;
  }
  conn->update_reading();
}

void Server::Core::close_all() {
  if (closing) return;
  closing = true;
  if (listener_live) uv_close(reinterpret_cast<uv_handle_t*>(&listener), on_listener_closed);
  listener_live = false;
  for (Connection* c : std::unordered_set<Connection*>(connections)) c->close();
  if (open_handles == 0) handle_closed();
}

void Server::Core::handle_closed() {
  if (open_handles > 0) --open_handles;
  if (open_handles > 0 || !closing || finished) return;
  finished = true;
  auto d = std::move(done);
  done = nullptr;
  if (!owner) {
    delete this;
    if (d) d();
    return;
  }
  if (d) d();
}

Result<std::unique_ptr<Server>> Server::start(Loop& loop, UniqueFd listen_fd, Handler handler, ServerOptions options) {
  auto* core = new Core;
  core->loop = loop.get();
  core->handler = std::move(handler);
  core->options = std::move(options);
  core->read_buf.reset(new char[core->options.read_bytes]);
  core->listener.data = core;
  std::unique_ptr<Server> server(new Server(core));
  if (int rc = uv_pipe_init(core->loop, &core->listener, 0); rc < 0) return Error::sys_code(-rc, "api socket");
  core->listener_live = true;
  ++core->open_handles;
  if (int rc = uv_pipe_open(&core->listener, listen_fd.get()); rc < 0) return Error::sys_code(-rc, "api socket");
  listen_fd.release();
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&core->listener), 128, on_connection); rc < 0)
    return Error::sys_code(-rc, "listen on the api socket");
  return server;
}

Server::~Server() {
  core_->owner = false;
  core_->done = nullptr;  // it may refer to the owner being destroyed
  if (core_->finished) {
    delete core_;
    return;
  }
  core_->close_all();  // the last close callback deletes core_
}

void Server::close(std::function<void()> done) {
  if (core_->finished) {
    if (done) done();
    return;
  }
  core_->done = std::move(done);
  core_->close_all();
}

Server::Stats Server::stats() const { return core_->stats; }

}  // namespace sandrun::runner::api
