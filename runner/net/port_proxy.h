// Published ports: a TCP proxy in the runner's libuv loop from host addresses into a job's
// network namespace (no iptables, no thread per connection; see docs/architecture.md).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/job_file.h"
#include "runner/engine/job.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

class PortProxy {
 public:
  struct Options {
    // Per connection and per direction, allocated once when the connection is accepted. It is
    // also the backpressure bound: while a side's bytes wait for the other side to take them,
    // that side is not read, so a connection never holds more than 2 * buffer_bytes.
    size_t buffer_bytes = 128 * 1024;
    bool nodelay = true;  // TCP_NODELAY on both sides: request-response latency
    // Where the inner sockets connect (IPv4): the container's own loopback when the namespace is
    // the container's, its address on a user network when the namespace is the network's
    // (Networks::publish_target gives both: the network's namespace and the address).
    std::string inner_host = "127.0.0.1";
  };
  struct Stats {
    uint64_t accepted = 0;   // connections accepted on the host side
    uint64_t refused = 0;    // ... whose inner connection failed (nobody listening inside, ...)
    uint64_t active = 0;     // connections open now
    uint64_t bytes_in = 0;   // host -> container
    uint64_t bytes_out = 0;  // container -> host
  };

  // Binds and listens on every `ports[i]` (host_ip:host_port) at once, on the loop thread that
  // runs `loop`; on the first failure nothing stays open and the error names the address, e.g.
  // `publish 127.0.0.1:8080: Address already in use`. Each accepted connection is forwarded to
  // 127.0.0.1:container_port (or Options::inner_host) inside `netns_fd` (a socket made in that
  // namespace when a client connects, so the proxy may open before the server inside listens:
  // until then clients are closed at once). `netns_fd` must stay open until close() or the destructor has been called.
  // `service` ("" for the job itself) is copied to published(). Needs root (setns), like
  // create_netns(). Call on the loop thread; every method is for the loop thread only.
  static Result<std::unique_ptr<PortProxy>> open(uv_loop_t* loop, int netns_fd,
                                                 const std::vector<config::PortSpec>& ports,
                                                 std::string service, Options options);
  // The same where the inner sockets come from `source`, asked once per accepted connection.
  // It calls its argument once, on the loop thread, with an unconnected non-blocking TCP
  // socket made in the container's network namespace (or an error: the client's connection is
  // then closed), either at once (inside the call) or later, e.g. when the container's socket
  // factory answers (rootless: SocketFactoryClient::request). Until then the client's
  // connection waits, accepted but not read. If the connection or the proxy is closed
  // meanwhile, a late answer only closes the socket, so the source may outlive the proxy. A
  // source destroyed with a completion never called leaves that connection waiting for close().
  using SocketSource = std::function<void(std::function<void(Result<UniqueFd>)>)>;
  static Result<std::unique_ptr<PortProxy>> open(uv_loop_t* loop, SocketSource source,
                                                 const std::vector<config::PortSpec>& ports,
                                                 std::string service, Options options);
  static Result<std::unique_ptr<PortProxy>> open(uv_loop_t* loop, SocketSource source,
                                                 const std::vector<config::PortSpec>& ports,
                                                 std::string service);
  static Result<std::unique_ptr<PortProxy>> open(uv_loop_t* loop, int netns_fd,
                                                 const std::vector<config::PortSpec>& ports,
                                                 std::string service) {
    return open(loop, netns_fd, ports, std::move(service), Options{});
  }

  // Destroying the proxy closes it (as close(nullptr)); the loop must still run for libuv to
  // finish closing the handles. Safe from inside `done`.
  ~PortProxy();
  PortProxy(const PortProxy&) = delete;
  PortProxy& operator=(const PortProxy&) = delete;

  // In the order of `ports`: host_port is the real one (port 0 resolved).
  const std::vector<PublishedPort>& published() const;
  Stats stats() const;

  // Stops listening (at once: a new connect is refused from now on) and closes every
  // connection (clients see EOF or a reset). `done`, if any, runs on the loop thread once every
  // handle is closed, from a libuv close callback; only when nothing is left to close (no
  // ports, or a close that already finished) does it run at once, inside close(). A second
  // call before the first finished replaces the first's `done`.
  void close(std::function<void()> done);

  struct Core;  // the state that outlives the owner until libuv has closed every handle

 private:
  explicit PortProxy(Core* core) : core_(core) {}
  Core* core_;
};

}  // namespace sandrun::runner
