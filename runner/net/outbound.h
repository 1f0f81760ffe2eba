// Outbound access for a job's private network namespace through an existing userspace network
// stack: pasta (Debian package passt) or, when pasta is missing, slirp4netns.
//
// The stack runs as our child, attached to the namespace by an inherited fd, and gives the
// namespace one interface (eth0, 10.0.2.100/24, default route via 10.0.2.2, DNS forwarder
// 10.0.2.3). Its traffic leaves through ordinary sockets of the host, as the host's own
// connections. What it never does (see docs/security.md): reach the host's loopback (pasta
// --no-map-gw, slirp4netns --disable-host-loopback) or forward any port into or out of the
// namespace (pasta -t/-u/-T/-U none; published ports are sandrun's own proxy).
//
// Blocking calls, made for a threadpool thread: start() spawns the stack and waits until the
// namespace has its default route; stop() kills and reaps it. Root only, like runner/netns.h.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "sandbox/sys/process.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

enum class OutboundKind { pasta, slirp4netns };
const char* outbound_kind_name(OutboundKind kind);

// An installed stack.
struct OutboundStack {
  OutboundKind kind = OutboundKind::pasta;
  std::string path;     // absolute path of the executable
  std::string version;  // what it reports, or its Debian package version; "unknown" otherwise
};

// The executable `name` in `search_path` (":"-separated; entries that are not absolute are
// skipped), then in the usual system directories; empty when not found.
std::string find_executable(const std::string& name, const char* search_path);
// The stack start() uses: pasta if installed, else slirp4netns; nullopt when neither is.
// Looks in $PATH and the system directories; finds no version (see outbound_version).
std::optional<OutboundStack> find_outbound_stack();
// The same for one kind.
std::optional<OutboundStack> find_outbound_stack(OutboundKind kind);
// Fills stack.version by running `--version` (and, when that says nothing useful, dpkg-query
// for the owning package). For `sandrun doctor`; start() does not need it.
void fill_outbound_version(OutboundStack& stack);

// The addresses inside the namespace (the same for both stacks: slirp4netns's defaults).
struct OutboundAddresses {
  static constexpr const char* ifname = "eth0";
  static constexpr const char* address = "10.0.2.100";
  static constexpr int prefix = 24;
  static constexpr const char* gateway = "10.0.2.2";
  static constexpr const char* dns = "10.0.2.3";  // forwards to the host's resolver
  static constexpr int mtu = 65520;
};

struct OutboundOptions {
  // The stack to run; default: find_outbound_stack().
  std::optional<OutboundStack> stack;
  // How long start() waits for the namespace's default route.
  std::chrono::milliseconds timeout{10000};
  // When readable (an eventfd or a pipe the runner writes on cancellation), start() stops the
  // stack and fails with ECANCELED. -1: none.
  int cancel_fd = -1;
  // When set, start() writes the stack's pid there and stop() removes it: what `sandrun
  // cleanup` needs to end a stack that a crashed sandrun left (stop_stale_outbound). pasta
  // does not notice its parent's death; slirp4netns does (its --exit-fd is our pipe).
  std::string pid_file;
};

// A running stack attached to one namespace. Move-only; destruction stops it.
class Outbound {
 public:
  Outbound() = default;
  Outbound(Outbound&& other) noexcept = default;
  Outbound& operator=(Outbound&& other) noexcept;
  Outbound(const Outbound&) = delete;
  Outbound& operator=(const Outbound&) = delete;
  ~Outbound() { (void)stop(); }

  // Spawns the stack for the namespace `netns_fd` (the fd stays ours; the stack gets a copy)
  // and returns once the namespace has an IPv4 default route. On any failure (the stack is
  // missing, exits, times out, or start is cancelled) nothing is left running.
  static Result<Outbound> start(int netns_fd, const OutboundOptions& options = {});

  // Kills the stack (SIGKILL through its pidfd), reaps it, and waits (up to 5 s) until the
  // namespace's default route is gone. Idempotent; after it, running() is false and the
  // namespace has no way out. The process is gone even when the wait fails.
  Result<void> stop();

  bool running() const { return !child_.reaped(); }
  pid_t pid() const { return child_.pid(); }
  int pidfd() const { return child_.pidfd(); }
  const OutboundStack& stack() const { return stack_; }

 private:
  OutboundStack stack_;
  sys::Child child_;  // in its own process group, killed with it
  UniqueFd exit_pipe_;  // slirp4netns: it exits when this write end closes (also on our crash)
  UniqueFd log_;        // the stack's stdout and stderr (a memfd), quoted in errors
  std::string pid_file_;
  UniqueFd routes_;  // netlink, inside the namespace: stop() waits there for the route to go
};

// Ends a stack that a crashed sandrun left, from its pid file (if the pid still names a pasta
// or slirp4netns process), and removes the file. A missing file is not an error.
Result<void> stop_stale_outbound(const std::string& pid_file);

// Whether the namespace has an IPv4 default route in its main table (netlink, inside it).
Result<bool> has_default_route(int netns_fd);

}  // namespace sandrun::runner
