// Making network namespaces and sockets inside them from a thread of the runner.
#include "sandbox/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "sandbox/sys/fs.h"

namespace sandrun::sandbox {
namespace {

// The calling thread's own network namespace, to go back to.
Result<UniqueFd> own_netns() {
  int fd = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::sys("open /proc/thread-self/ns/net");
  return UniqueFd(fd);
}

// Runs f() with the calling thread in `netns_fd`, then puts the thread back (a failure to get
// back is fatal: the thread would go on working in the job's namespace).
template <typename F>
auto in_netns(int netns_fd, F&& f) -> decltype(f()) {
  auto home = SANDRUN_TRY(own_netns());
  if (::setns(netns_fd, CLONE_NEWNET) < 0) return Error::sys("enter the job's network namespace {}", fs::fd_path(netns_fd));
  auto r = f();
  if (::setns(home.get(), CLONE_NEWNET) < 0) ::abort();
  return r;
}

// Brings up `lo` of the calling thread's network namespace, `netns` (as /proc names it).
Result<void> loopback_up(const std::string& netns) {
  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return Error::sys("socket for lo in {}", netns);
  UniqueFd owner(sock);
  struct ifreq ifr = {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) return Error::sys("read the flags of lo in {}", netns);
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) return Error::sys("bring lo up in {}", netns);
  return {};
}

}  // namespace

Result<UniqueFd> create_netns() {
  auto home = SANDRUN_TRY(own_netns());
  if (::unshare(CLONE_NEWNET) < 0) return Error::sys("create a network namespace");
  auto made = [&]() -> Result<UniqueFd> {
    auto ns = SANDRUN_TRY(own_netns());
    SANDRUN_TRY(loopback_up(fs::fd_path(ns.get())));
    return ns;
  }();
  if (::setns(home.get(), CLONE_NEWNET) < 0) ::abort();
  return made;
}

Result<UniqueFd> socket_in_netns(int netns_fd, int domain, int type) {
  return in_netns(netns_fd, [&]() -> Result<UniqueFd> {
    int fd = ::socket(domain, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return Error::sys("socket in the job's network namespace {}", fs::fd_path(netns_fd));
    return UniqueFd(fd);
  });
}

Result<UniqueFd> create_container_netns() {
  UniqueFd ns = SANDRUN_TRY(create_netns());
  SANDRUN_TRY(write_netns_sysctl(ns.get(), "net/ipv4/ip_unprivileged_port_start", "0"));
  SANDRUN_TRY(write_netns_sysctl(ns.get(), "net/ipv4/ping_group_range", "0 4294967294"));
  return ns;
}

Result<void> write_netns_sysctl(int netns_fd, const std::string& key, std::string_view value) {
  const std::string path = "/proc/sys/" + key;
  return in_netns(netns_fd, [&]() -> Result<void> {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return Error::sys("open {} in the network namespace {}", path, fs::fd_path(netns_fd));
    UniqueFd owner(fd);
    return std::move(fs::write_all(fd, value)).wrap("set " + key);
  });
}

}  // namespace sandrun::sandbox
