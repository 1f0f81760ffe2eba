// Making network namespaces and sockets inside them from a thread of the runner.
#include "sandbox/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

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
  if (::setns(netns_fd, CLONE_NEWNET) < 0) return Error::sys("enter the job's network namespace");
  auto r = f();
  if (::setns(home.get(), CLONE_NEWNET) < 0) ::abort();
  return r;
}

Result<void> loopback_up() {
  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return Error::sys("socket for the loopback interface");
  UniqueFd owner(sock);
  struct ifreq ifr = {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) return Error::sys("read the flags of lo");
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) return Error::sys("bring lo up");
  return {};
}

}  // namespace

Result<UniqueFd> create_netns() {
  auto home = SANDRUN_TRY(own_netns());
  if (::unshare(CLONE_NEWNET) < 0) return Error::sys("create a network namespace");
  auto made = [&]() -> Result<UniqueFd> {
    SANDRUN_TRY(loopback_up());
    return own_netns();
  }();
  if (::setns(home.get(), CLONE_NEWNET) < 0) ::abort();
  return made;
}

Result<UniqueFd> socket_in_netns(int netns_fd, int domain, int type) {
  return in_netns(netns_fd, [&]() -> Result<UniqueFd> {
    int fd = ::socket(domain, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return Error::sys("socket in the job's network namespace");
    return UniqueFd(fd);
  });
}

}  // namespace sandrun::sandbox
