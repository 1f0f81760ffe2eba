// Outbound: pasta or slirp4netns as our child, attached to a job's network namespace.
#include "runner/net/outbound.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "runner/net/outbound_spawn.h"
#include "sandbox/host_cleanup.h"
#include "sandbox/netns.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/lines.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::runner {
namespace {

using Clock = std::chrono::steady_clock;

// The fds the stack inherits: the namespace, and slirp4netns's exit pipe.
constexpr int kNetnsFd = 3;
constexpr int kExitFd = 4;
const std::string kNetnsPath = "/proc/self/fd/" + std::to_string(kNetnsFd);

std::vector<std::string> pasta_args(const OutboundStack& stack) {
  const std::string ids = std::to_string(::geteuid()) + ":" + std::to_string(::getegid());
  return {stack.path,
          "--foreground", "--quiet", "--ipv4-only",
          // pasta drops to "nobody" when started as root, and nobody may not join a namespace
          // the init user namespace owns. pasta still sandboxes itself: all capabilities but
          // CAP_NET_BIND_SERVICE and CAP_SYS_ADMIN (to open sockets in the namespace) dropped,
          // an empty mount namespace, no_new_privs and a seccomp filter.
          "--runas", ids,
          "--netns", kNetnsPath, "--config-net",
          "--ns-ifname", OutboundAddresses::ifname,
          "--address", OutboundAddresses::address,
          "--netmask", std::to_string(OutboundAddresses::prefix),
          "--gateway", OutboundAddresses::gateway,
          "--dns-forward", OutboundAddresses::dns,
          // Isolation: the gateway is not the host's loopback, and no port of the host is
          // forwarded into the namespace nor any of the namespace's to the host (both
          // directions default to "auto", which forwards every bound port).
          "--no-map-gw",
          "--tcp-ports", "none", "--udp-ports", "none", "--tcp-ns", "none", "--udp-ns", "none"};
}

std::vector<std::string> slirp4netns_args(const OutboundStack& stack) {
  return {stack.path,
          "--configure",
          "--mtu=" + std::to_string(OutboundAddresses::mtu),
          "--disable-host-loopback",
          "--enable-sandbox", "--enable-seccomp",
          "--exit-fd=" + std::to_string(kExitFd),
          "--netns-type=path", kNetnsPath, OutboundAddresses::ifname};
}

// Sends an RTM_GETROUTE dump request for IPv4; its replies carry `seq`.
Result<void> request_routes(int sock, uint32_t seq = 1) {
  struct {
    struct nlmsghdr h;
    struct rtmsg r;
  } req = {};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = RTM_GETROUTE;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = seq;
  req.r.rtm_family = AF_INET;
  if (::send(sock, &req, sizeof req, 0) < 0) return Error::sys("ask the job's network namespace for its routes on {}", fs::fd_path(sock));
  return {};
}

// A netlink socket inside the namespace that hears about new IPv4 routes, with a dump of the
// current ones requested: whatever is added after this call is seen.
Result<UniqueFd> watch_routes(int netns_fd, bool subscribe) {
  auto sock = SANDRUN_TRY(sandbox::socket_in_netns(netns_fd, AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK));
  struct sockaddr_nl sa = {};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = subscribe ? RTMGRP_IPV4_ROUTE : 0;
  if (::bind(sock.get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) < 0) {
    return Error::sys("watch the routes of the job's network namespace {}", fs::fd_path(netns_fd));
  }
  SANDRUN_TRY(request_routes(sock.get()));
  return sock;
}

struct RouteScan {
  uint32_t dump_seq = 0;  // when set, only that dump's replies count (not events, not older dumps)
  bool default_route = false;
  bool dump_done = false;
};

// Reads what is queued on the route socket; notes an IPv4 default route of the main table.
Result<void> read_routes(int sock, RouteScan& scan) {
  alignas(struct nlmsghdr) char buf[16384];
  for (;;) {
    ssize_t n = ::recv(sock, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {};
    // The kernel dropped events: ask again for the whole table.
    if (n < 0 && errno == ENOBUFS) {
      SANDRUN_TRY(request_routes(sock, scan.dump_seq != 0 ? scan.dump_seq : 1));
      continue;
    }
    if (n < 0) return Error::sys("read the routes of the job's network namespace on {}", fs::fd_path(sock));
    auto len = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (scan.dump_seq != 0 && h->nlmsg_seq != scan.dump_seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) scan.dump_done = true;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const struct nlmsgerr*>(NLMSG_DATA(h));
        if (err->error != 0)
          return Error::sys_code(-err->error, "read the routes of the job's network namespace on {}", fs::fd_path(sock));
      }
      if (h->nlmsg_type != RTM_NEWROUTE) continue;
      const auto* r = static_cast<const struct rtmsg*>(NLMSG_DATA(h));
      if (r->rtm_family == AF_INET && r->rtm_dst_len == 0 && r->rtm_table == RT_TABLE_MAIN) scan.default_route = true;
    }
  }
}

// The stack's own words (its stdout and stderr), for an error message.
std::string stack_log(int log_fd) {
  if (log_fd < 0 || ::lseek(log_fd, 0, SEEK_SET) < 0) return {};
  auto text = fs::read_fd(log_fd);
  if (!text) return {};
  std::string kept;
  sys::for_each_line(*text, [&](std::string_view line) {
    // pasta under -f also tries syslog, and says so on every line when there is none.
    if (line.empty() || line.starts_with("Failed to send")) return;
    if (!kept.empty()) kept += "; ";
    kept += line;
  });
  return kept.size() > 1000 ? kept.substr(kept.size() - 1000) : kept;
}

// Waits until the namespace has its default route, the stack exits, the deadline passes or
// the runner cancels.
Result<void> wait_ready(int route_sock, const Outbound& ob, int log_fd, const OutboundOptions& options) {
  const char* name = outbound_kind_name(ob.stack().kind);
  const auto deadline = Clock::now() + options.timeout;
  RouteScan scan;
  for (;;) {
    SANDRUN_TRY(read_routes(route_sock, scan));
    if (scan.default_route) return {};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      std::string said = stack_log(log_fd);
      return Error::sys_code(ETIMEDOUT, "{} did not configure the job's network namespace within {} ms{}{}", name,
                             options.timeout.count(), said.empty() ? "" : ": ", said);
    }
    struct pollfd p[3] = {{route_sock, POLLIN, 0}, {ob.pidfd(), POLLIN, 0}, {options.cancel_fd, POLLIN, 0}};
    const int n = ::poll(p, options.cancel_fd >= 0 ? 3 : 2, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return Error::sys("wait for {} (pid {})", name, ob.pid());
    if (n > 0 && p[1].revents) {
      std::string said = stack_log(log_fd);
      return Error::msg("{} exited before it configured the job's network namespace{}{}", name,
                        said.empty() ? "" : ": ", said);
    }
    if (n > 0 && p[2].revents) return Error::sys_code(ECANCELED, "start {}", name);
  }
}

// After the stack is reaped: waits until its default route is gone. The tap device goes when
// its last fd closes, and a helper the stack forked (slirp4netns's, which opened the device in
// the namespace) may hold one a moment longer than the stack itself.
Result<void> wait_route_gone(int route_sock, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (uint32_t seq = 2;; ++seq) {
    RouteScan scan;
    scan.dump_seq = seq;
    SANDRUN_TRY(request_routes(route_sock, seq));
    while (!scan.dump_done) {
      struct pollfd p = {route_sock, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0)
        return Error::sys_code(ETIMEDOUT, "read the routes of the job's network namespace on {}", fs::fd_path(route_sock));
      SANDRUN_TRY(read_routes(route_sock, scan));
    }
    if (!scan.default_route) return {};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0)
      return Error::sys_code(ETIMEDOUT, "wait for the job's network namespace to lose its route (on {})", fs::fd_path(route_sock));
    // The next route change (the deletion), then a fresh dump.
    struct pollfd p = {route_sock, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
  }
}

Result<void> write_pid_file(const std::string& path, pid_t pid) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  const std::string text = std::to_string(pid) + "\n";
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return Error::sys("write {}", path);
  }
  return {};
}

}  // namespace

Outbound& Outbound::operator=(Outbound&& other) noexcept {
  if (this != &other) {
    (void)stop();
    stack_ = std::move(other.stack_);
    child_ = std::move(other.child_);
    exit_pipe_ = std::move(other.exit_pipe_);
    log_ = std::move(other.log_);
    pid_file_ = std::move(other.pid_file_);
    routes_ = std::move(other.routes_);
  }
  return *this;
}

Result<Outbound> Outbound::start(int netns_fd, const OutboundOptions& options) {
  Outbound ob;
  if (options.stack) {
    ob.stack_ = *options.stack;
  } else if (auto found = find_outbound_stack()) {
    ob.stack_ = std::move(*found);
  } else {
    return Error::sys_code(ENOENT, "find pasta or slirp4netns for outbound access")
        .hint("install the Debian package passt (or slirp4netns); without one, network = \"private\" "
              "has no outbound access");
  }
  const char* name = outbound_kind_name(ob.stack_.kind);
  // Subscribed before the stack starts, so that its route cannot come unseen.
  auto routes = SANDRUN_TRY(watch_routes(netns_fd, true));
  ob.log_ = UniqueFd(::memfd_create("sandrun-outbound-log", MFD_CLOEXEC));
  if (!ob.log_) return Error::sys("create a log for {}", name);

  std::vector<std::pair<int, int>> keep = {{netns_fd, kNetnsFd}};
  std::vector<std::string> args;
  UniqueFd exit_read;
  if (ob.stack_.kind == OutboundKind::pasta) {
    args = pasta_args(ob.stack_);
  } else {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) return Error::sys("create the exit pipe of {}", name);
    exit_read = UniqueFd(fds[0]);
    ob.exit_pipe_ = UniqueFd(fds[1]);
    keep.emplace_back(exit_read.get(), kExitFd);
    args = slirp4netns_args(ob.stack_);
  }
  auto child = spawn_helper(ob.stack_.path, args, ob.log_.get(), keep);
  if (!child) return std::move(child).error().wrap("start outbound access");
  ob.child_ = child.take();
  exit_read.reset();
  // From here on, `ob` going out of scope on an error path kills and reaps the stack.
  if (!options.pid_file.empty()) {
    SANDRUN_TRY(write_pid_file(options.pid_file, ob.pid()));
    ob.pid_file_ = options.pid_file;
  }
  // Also on the error paths, stop() waits for a route the stack may have set to go.
  ob.routes_ = std::move(routes);
  SANDRUN_TRY(std::move(wait_ready(ob.routes_.get(), ob, ob.log_.get(), options)).wrap("start outbound access"));
  return ob;
}

Result<void> Outbound::stop() {
  if (child_.reaped()) return {};
  child_.kill_and_reap();
  child_.release();  // closes the pidfd: nothing of the stack is left open
  exit_pipe_.reset();
  log_.reset();
  if (!pid_file_.empty()) {
    ::unlink(pid_file_.c_str());
    pid_file_.clear();
  }
  if (!routes_) return {};
  UniqueFd routes = std::move(routes_);
  return std::move(wait_route_gone(routes.get(), std::chrono::seconds(5))).wrap("stop outbound access");
}

Result<void> stop_stale_outbound(const std::string& pid_file) {
  auto text = fs::read_file(pid_file);
  if (!text) return text.error().code() == ENOENT ? Result<void>() : Result<void>(std::move(text).error());
  const pid_t pid = static_cast<pid_t>(std::atoi(text->c_str()));
  // pasta re-executes itself as passt.avx2 where the CPU has AVX2.
  sandbox::kill_process_named(pid, {"pasta", "passt", "slirp4netns"});
  if (::unlink(pid_file.c_str()) < 0 && errno != ENOENT) return Error::sys("remove {}", pid_file);
  return {};
}

Result<bool> has_default_route(int netns_fd) {
  auto sock = SANDRUN_TRY(watch_routes(netns_fd, false));
  RouteScan scan;
  while (!scan.dump_done) {
    struct pollfd p = {sock.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0)
      return Error::sys_code(ETIMEDOUT, "read the routes of the job's network namespace {}", fs::fd_path(netns_fd));
    SANDRUN_TRY(read_routes(sock.get(), scan));
  }
  return scan.default_route;
}

}  // namespace sandrun::runner
