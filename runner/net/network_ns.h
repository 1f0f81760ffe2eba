// The kernel side of one sandrun network: a network namespace sandrun creates and holds by an
// fd (nothing else holds it: no process, no bind mount, so it goes with the daemon, even one
// killed with SIGKILL), with a bridge carrying the network's gateway address, and one veth
// pair per attached container: one end enslaved to the bridge, the other moved into the
// container's own network namespace with its address and a default route via the gateway.
// The namespace has no other link and no route out: containers reach each other and nothing
// else. Nothing here touches the host's interfaces, routes or firewall.
//
// Blocking (netlink, unshare on a pool thread): for a threadpool thread. Not thread-safe: its
// owner (Networks) serialises calls.
#pragma once

#include <string>

#include "runner/net/ipv4.h"
#include "runner/net/netlink.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

// Deletes every link of the container network namespace `container_netns_fd` but its loopback:
// the veth ends an earlier daemon's networks left there (a daemon container has no other
// link). Their other ends went with that daemon's namespaces, but the kernel tears those down
// later, on its own: until then the old addresses would still answer in the container.
// Returns how many went.
Result<size_t> remove_network_links(int container_netns_fd);

class NetworkNamespace {
 public:
  static constexpr const char* kBridge = "br0";
  static constexpr int kMtu = 1500;

  // A new namespace (`lo` up; IPv4 forwarding on, which with no route out only makes the
  // kernel answer "unreachable" at once) with the bridge, up, holding `gateway`.
  // `what` names the network in errors ("network n1").
  static Result<NetworkNamespace> create(const Subnet& subnet, Ipv4 gateway, const std::string& what);

  int fd() const { return fd_.get(); }

  // Connects the network namespace `container_netns_fd`: a veth pair whose end here is
  // `link` (a name unique in this namespace) on the bridge, and whose other end is the first
  // free ethN there, with MAC `mac`, `address`/prefix and, unless that namespace has a default
  // route already, the default route via the gateway. Returns the ethN name. On failure
  // nothing is left in either namespace.
  Result<std::string> attach(int container_netns_fd, const std::string& link, Ipv4 address, const std::string& mac);
  // Deletes the veth pair of `link` (both ends go). A pair already gone (its container's
  // namespace died with it) is not an error.
  Result<void> detach(const std::string& link);

 private:
  NetworkNamespace(UniqueFd fd, netlink::Socket nl, int bridge, Subnet subnet, Ipv4 gateway, std::string what)
      : fd_(std::move(fd)), nl_(std::move(nl)), bridge_(bridge), subnet_(subnet), gateway_(gateway),
        what_(std::move(what)) {}
  Result<void> configure_peer(int container_netns_fd, const std::string& ifname, Ipv4 address);

  UniqueFd fd_;
  netlink::Socket nl_;  // inside the namespace
  int bridge_ = 0;
  Subnet subnet_;
  Ipv4 gateway_;
  std::string what_;
};

}  // namespace sandrun::runner
