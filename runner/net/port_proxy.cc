// The TCP proxy of published ports: listeners on the host, and per connection two sockets
// (host side, job side) with a byte pump each way.
#include "runner/net/port_proxy.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <unordered_set>

#include "runner/net/address.h"
#include "sandbox/netns.h"
#include "sandbox/sys/log.h"

// Why the handles here do not use UvHandle: a pending uv_write or uv_shutdown gets its
// callback (UV_ECANCELED) after uv_close and before the close callback, and that callback
// reaches the connection through its request. So a connection (with its handles and requests
// embedded) is freed only when the close callbacks of both its handles have run; the proxy's
// state (Core) likewise lives until the last handle is closed, even if its owner is gone.

namespace sandrun::runner {
namespace {

struct Connection;

struct Listener {
  uv_tcp_t tcp{};
  PortProxy::Core* core = nullptr;
  uint16_t container_port = 0;
};

// One direction: bytes read from `src` are written to `dst` from the same buffer. While a
// write is pending `src` is not read: that is the backpressure, and there is no copy.
struct Pump {
  Connection* conn = nullptr;
  uv_tcp_t* src = nullptr;
  uv_tcp_t* dst = nullptr;
  char* buf = nullptr;
  uint64_t* counter = nullptr;
  bool writing = false;  // a uv_write from buf is pending
  bool eof = false;      // src sent FIN
  bool shut = false;     // dst's write side is shut down (after eof and the last write)
  uv_write_t write_req{};
  uv_shutdown_t shutdown_req{};
};

struct Connection {
  PortProxy::Core* core = nullptr;
  uint16_t container_port = 0;
  uv_tcp_t outer{};  // the host's client
  uv_tcp_t inner{};  // to inner_host:container_port in the job's namespace
  uv_connect_t connect_req{};
  std::unique_ptr<char[]> buffers;
  Pump up, down;        // outer -> inner, inner -> outer
  int handles = 0;      // initialised handles not yet closed
  bool closing = false;
  // Expires when the connection is freed: an inner socket that arrives later finds it gone.
  std::shared_ptr<int> alive = std::make_shared<int>(0);
  // Closes both handles; `reset`, if given, with an RST (its peer sees what the other side did).
  void close(uv_tcp_t* reset = nullptr);
};


}  // namespace

struct PortProxy::Core {
  uv_loop_t* loop = nullptr;
  PortProxy::SocketSource source;  // unconnected sockets in the job's namespace
  Options options;
  std::string service;
  std::vector<PublishedPort> published;
  std::vector<Listener*> listeners;  // each freed in its close callback
  std::unordered_set<Connection*> connections;
  size_t open_handles = 0;
  Stats stats;
  bool closing = false;
  bool owner = true;     // a PortProxy still points here
  bool finished = false; // every handle closed
  bool in_done = false;
  std::function<void()> done;

  void close_all();
  void handle_closed();
  void finish();
  void accept(Listener* listener);
  void connect_inner(Connection* conn, Result<UniqueFd> fd);
};

namespace {

void on_conn_handle_closed(uv_handle_t* h) {
  auto* conn = static_cast<Connection*>(h->data);
  PortProxy::Core* core = conn->core;
  if (--conn->handles == 0) {
    core->connections.erase(conn);
    delete conn;
  }
  core->handle_closed();
}

void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);

void on_shutdown(uv_shutdown_t* req, int status) {
  auto* pump = static_cast<Pump*>(req->data);
  Connection* conn = pump->conn;
  if (conn->closing) return;
  if (status < 0) return conn->close();
  pump->shut = true;
  // Both directions ended: nothing more can flow.
  if (conn->up.shut && conn->down.shut) conn->close();
}

void start_shutdown(Pump* pump) {
  pump->shutdown_req.data = pump;
  int rc = uv_shutdown(&pump->shutdown_req, reinterpret_cast<uv_stream_t*>(pump->dst), on_shutdown);
  if (rc < 0) pump->conn->close();
}

void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* conn = static_cast<Connection*>(h->data);
  Pump* pump = reinterpret_cast<uv_tcp_t*>(h) == &conn->outer ? &conn->up : &conn->down;
  *buf = uv_buf_init(pump->buf, static_cast<unsigned>(conn->core->options.buffer_bytes));
}

void start_reading(Pump* pump) {
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(pump->src), on_alloc, on_read) < 0) pump->conn->close();
}

void on_write(uv_write_t* req, int status) {
  auto* pump = static_cast<Pump*>(req->data);
  Connection* conn = pump->conn;
  if (conn->closing) return;  // UV_ECANCELED while closing
  if (status < 0) return conn->close();
  pump->writing = false;
  if (pump->eof) return start_shutdown(pump);
  start_reading(pump);
}

void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  auto* conn = static_cast<Connection*>(s->data);
  if (conn->closing) return;
  Pump* pump = reinterpret_cast<uv_tcp_t*>(s) == &conn->outer ? &conn->up : &conn->down;
  if (nread == UV_EOF) {
    // Half-close: the peer sent FIN; pass it on once the bytes before it are written.
    pump->eof = true;
    uv_read_stop(s);
    if (!pump->writing) start_shutdown(pump);
    return;
  }
  if (nread < 0) return conn->close(pump->dst);  // a reset or an error: passed on as a reset
  if (nread == 0) return;
  *pump->counter += static_cast<uint64_t>(nread);
  auto* dst = reinterpret_cast<uv_stream_t*>(pump->dst);
  uv_buf_t data = uv_buf_init(pump->buf, static_cast<unsigned>(nread));
  // Most writes go through at once (the peer's socket buffer has room): no request at all.
  int wrote = uv_try_write(dst, &data, 1);
  if (wrote == nread) return;
  if (wrote < 0 && wrote != UV_EAGAIN) return conn->close();
  if (wrote < 0) wrote = 0;
  data = uv_buf_init(pump->buf + wrote, static_cast<unsigned>(nread - wrote));
  pump->write_req.data = pump;
  if (uv_write(&pump->write_req, dst, &data, 1, on_write) < 0) return conn->close();
  pump->writing = true;
  uv_read_stop(s);  // until the rest is written (on_write)
}

void on_connect(uv_connect_t* req, int status) {
  auto* conn = static_cast<Connection*>(req->data);
  if (conn->closing) return;
  if (status < 0) {
    // Nobody listens inside (or the namespace has no route): the client's connection ends now.
    ++conn->core->stats.refused;
    log::debug("published port: connecting to 127.0.0.1:{} inside: {}", conn->container_port, uv_strerror(status));
    return conn->close();
  }
  if (conn->core->options.nodelay) {
    uv_tcp_nodelay(&conn->outer, 1);
    uv_tcp_nodelay(&conn->inner, 1);
  }
  start_reading(&conn->up);
  start_reading(&conn->down);
}

void on_connection(uv_stream_t* server, int status) {
  auto* listener = static_cast<Listener*>(server->data);
  if (status < 0 || listener->core->closing) return;
  listener->core->accept(listener);
}

void on_listener_closed(uv_handle_t* h) {
  auto* listener = static_cast<Listener*>(h->data);
  PortProxy::Core* core = listener->core;
  delete listener;
  core->handle_closed();
}

void Connection::close(uv_tcp_t* reset) {
  if (closing) return;
  closing = true;
  --core->stats.active;
  auto close_one = [&](uv_tcp_t* h) {
    // uv_tcp_close_reset refuses a handle with a pending shutdown: that one just closes.
    if (h == reset && uv_tcp_close_reset(h, on_conn_handle_closed) == 0) return;
    uv_close(reinterpret_cast<uv_handle_t*>(h), on_conn_handle_closed);
  };
  close_one(&outer);
  if (handles == 2) close_one(&inner);
}

}  // namespace

void PortProxy::Core::accept(Listener* listener) {
  auto* conn = new Connection;
  conn->core = this;
  conn->container_port = listener->container_port;
  conn->outer.data = conn;
  conn->inner.data = conn;
  conn->connect_req.data = conn;
  if (uv_tcp_init(loop, &conn->outer) < 0) {
    delete conn;
    return;
  }
  conn->handles = 1;
  ++open_handles;
  ++stats.active;
  connections.insert(conn);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener->tcp), reinterpret_cast<uv_stream_t*>(&conn->outer)) < 0)
    return conn->close();
  ++stats.accepted;
  // The inner socket is made in the job's namespace, by this thread (it enters the namespace
  // and comes back at once) or by the container's socket factory (an answer later on): so
  // `done` may run inside source(), and nothing here touches `conn` after the call.
  source([conn, alive = std::weak_ptr<int>(conn->alive)](Result<UniqueFd> fd) {
    if (alive.expired()) return;  // the connection is gone (and maybe the proxy): fd just closes
    conn->core->connect_inner(conn, std::move(fd));
  });
}

// Connected from here, the inner socket reaches the job's loopback, which the host cannot.
void PortProxy::Core::connect_inner(Connection* conn, Result<UniqueFd> fd) {
  if (conn->closing) return;  // closed while its socket was being made
  if (!fd || uv_tcp_init(loop, &conn->inner) < 0) {
    ++stats.refused;
    if (!fd) log::debug("published port: {}", fd.error().message());
    return conn->close();
  }
  conn->handles = 2;
  ++open_handles;
  if (uv_tcp_open(&conn->inner, fd->get()) < 0) {
    ++stats.refused;
    return conn->close();
  }
  fd->release();
  const size_t n = options.buffer_bytes;
  conn->buffers.reset(new char[2 * n]);
  conn->up = Pump{conn, &conn->outer, &conn->inner, conn->buffers.get(), &stats.bytes_in};
  conn->down = Pump{conn, &conn->inner, &conn->outer, conn->buffers.get() + n, &stats.bytes_out};
  sockaddr_in addr{};
  uv_ip4_addr(options.inner_host.c_str(), conn->container_port, &addr);
  if (uv_tcp_connect(&conn->connect_req, &conn->inner, reinterpret_cast<const sockaddr*>(&addr), on_connect) < 0) {
    ++stats.refused;
    conn->close();
  }
}

void PortProxy::Core::close_all() {
  if (closing) return;
  closing = true;
  for (Listener* l : listeners) uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), on_listener_closed);
  listeners.clear();
  for (Connection* c : connections) c->close();  // erased later, in the close callbacks
  if (open_handles == 0) finish();
}

void PortProxy::Core::handle_closed() {
  if (--open_handles == 0 && closing) finish();
}

void PortProxy::Core::finish() {
  finished = true;
  auto d = std::move(done);
  done = nullptr;
  if (d) {
    in_done = true;
    d();
    in_done = false;
  }
  if (!owner) delete this;
}

Result<std::unique_ptr<PortProxy>> PortProxy::open(uv_loop_t* loop, int netns_fd,
                                                   const std::vector<config::PortSpec>& ports,
                                                   std::string service, Options options) {
  // A setns round trip on this thread: short and non-blocking, so the answer comes at once.
  SocketSource source = [netns_fd](std::function<void(Result<UniqueFd>)> done) {
    done(sandbox::socket_in_netns(netns_fd, AF_INET, SOCK_STREAM | SOCK_NONBLOCK));
  };
  return open(loop, std::move(source), ports, std::move(service), options);
}

Result<std::unique_ptr<PortProxy>> PortProxy::open(uv_loop_t* loop, SocketSource source,
                                                   const std::vector<config::PortSpec>& ports,
                                                   std::string service) {
  return open(loop, std::move(source), ports, std::move(service), Options{});
}

Result<std::unique_ptr<PortProxy>> PortProxy::open(uv_loop_t* loop, SocketSource source,
                                                   const std::vector<config::PortSpec>& ports,
                                                   std::string service, Options options) {
  auto* core = new Core;
  core->loop = loop;
  core->source = std::move(source);
  core->options = options;
  core->service = std::move(service);
  std::unique_ptr<PortProxy> proxy(new PortProxy(core));  // on an error below, closes what is open
  for (const config::PortSpec& spec : ports) {
    const std::string where = address_text(spec.host_ip, spec.host_port);
    sockaddr_storage addr{};
    const bool v6 = spec.host_ip.find(':') != std::string::npos;
    int rc = v6 ? uv_ip6_addr(spec.host_ip.c_str(), spec.host_port, reinterpret_cast<sockaddr_in6*>(&addr))
                : uv_ip4_addr(spec.host_ip.c_str(), spec.host_port, reinterpret_cast<sockaddr_in*>(&addr));
    if (rc < 0) return Error::msg("publish {}: not an IP address", where);
    auto* listener = new Listener;
    listener->core = core;
    listener->container_port = spec.container_port;
    listener->tcp.data = listener;
    if (rc = uv_tcp_init(loop, &listener->tcp); rc < 0) {
      delete listener;
      return Error::sys_code(-rc, "publish {}", where);
    }
    core->listeners.push_back(listener);
    ++core->open_handles;
    // libuv reports EADDRINUSE from listen, not bind: both are checked.
    rc = uv_tcp_bind(&listener->tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener->tcp), SOMAXCONN, on_connection);
    if (rc < 0) return Error::sys_code(-rc, "publish {}", where);
    sockaddr_storage bound{};
    int len = sizeof bound;
    if (rc = uv_tcp_getsockname(&listener->tcp, reinterpret_cast<sockaddr*>(&bound), &len); rc < 0)
      return Error::sys_code(-rc, "publish {}: getsockname", where);
    const uint16_t port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    core->published.push_back(PublishedPort{core->service, spec.container_port, spec.host_ip, port});
  }
  return proxy;
}

PortProxy::~PortProxy() {
  core_->owner = false;
  if (core_->finished) {
    if (!core_->in_done) delete core_;  // else finish() deletes it once `done` returns
    return;
  }
  core_->done = nullptr;  // it may refer to the owner being destroyed
  core_->close_all();     // the last close callback deletes core_
}

const std::vector<PublishedPort>& PortProxy::published() const { return core_->published; }

PortProxy::Stats PortProxy::stats() const { return core_->stats; }

void PortProxy::close(std::function<void()> done) {
  if (core_->finished) {
    if (done) done();
    return;
  }
  core_->done = std::move(done);
  core_->close_all();
}

}  // namespace sandrun::runner
