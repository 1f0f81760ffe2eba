// A network's namespace, its bridge and its veth pairs.
#include "runner/net/network_ns.h"

#include <fcntl.h>

#include <algorithm>

#include "sandbox/netns.h"
#include "sandbox/sys/fs.h"

namespace sandrun::runner {
namespace {

// The first ethN not among `links`.
std::string free_ifname(const std::vector<netlink::Link>& links) {
  for (int n = 0;; ++n) {
    const std::string name = "eth" + std::to_string(n);
    if (std::none_of(links.begin(), links.end(), [&](const netlink::Link& l) { return l.name == name; })) return name;
  }
}

}  // namespace

Result<NetworkNamespace> NetworkNamespace::create(const Subnet& subnet, Ipv4 gateway, const std::string& what) {
  UniqueFd ns = SANDRUN_TRY(std::move(sandbox::create_netns()).wrap("create the namespace of " + what));
  // Forwarding on, whatever the host's (a new namespace inherits it): with no link but the
  // bridge and no route but the subnet's, there is nowhere to forward to, and a packet for any
  // other address is answered "network unreachable" (ICMP) at once; with forwarding off the
  // kernel drops it silently and a container's connect hangs until its timeout.
  SANDRUN_TRY(std::move(sandbox::write_netns_sysctl(ns.get(), "net/ipv4/ip_forward", "1")).wrap(what));
  auto nl = SANDRUN_TRY(netlink::Socket::open_in(ns.get(), "the namespace of " + what));
  SANDRUN_TRY(nl.add_bridge(kBridge, kMtu));
  const int bridge = SANDRUN_TRY(nl.link_index(kBridge));
  SANDRUN_TRY(nl.add_address(bridge, gateway, subnet.prefix));
  return NetworkNamespace(std::move(ns), std::move(nl), bridge, subnet, gateway, what);
}

Result<std::string> NetworkNamespace::attach(int container_netns_fd, const std::string& link, Ipv4 address,
                                             const std::string& mac) {
  auto peer_nl = SANDRUN_TRY(netlink::Socket::open_in(container_netns_fd, "the container's namespace " +
                                                                              fs::fd_path(container_netns_fd)));
  const std::string ifname = free_ifname(SANDRUN_TRY(peer_nl.links()));
  SANDRUN_TRY(std::move(nl_.add_veth(link, bridge_, ifname, container_netns_fd, mac, kMtu)).wrap(what_));
  if (auto r = configure_peer(container_netns_fd, ifname, address); !r) {
    (void)detach(link);
    return std::move(r).error().wrap(what_);
  }
  return ifname;
}

Result<void> NetworkNamespace::configure_peer(int container_netns_fd, const std::string& ifname, Ipv4 address) {
  auto nl = SANDRUN_TRY(netlink::Socket::open_in(container_netns_fd, "the container's namespace " +
                                                                         fs::fd_path(container_netns_fd)));
  const int index = SANDRUN_TRY(nl.link_index(ifname));
  SANDRUN_TRY(nl.set_up(index));
  SANDRUN_TRY(nl.add_address(index, address, subnet_.prefix));
  // The container's first network gives it its default route, as Docker's does; on a later one
  // it keeps the one it has (the kernel answers EEXIST).
  if (auto r = nl.add_default_route(gateway_, index); !r && r.error().code() != EEXIST) return r;
  return {};
}

Result<size_t> remove_network_links(int container_netns_fd) {
  auto nl = SANDRUN_TRY(netlink::Socket::open_in(container_netns_fd, "the container's namespace " +
                                                                         fs::fd_path(container_netns_fd)));
  size_t removed = 0;
  for (const netlink::Link& l : SANDRUN_TRY(nl.links())) {
    if (l.name == "lo") continue;
    // Gone meanwhile (its pair's other end went first) is not an error.
    if (auto r = nl.delete_link(l.index); !r && r.error().code() != ENODEV) return std::move(r).error();
    ++removed;
  }
  return removed;
}

Result<void> NetworkNamespace::detach(const std::string& link) {
  auto index = nl_.link_index(link);
  if (!index) return index.error().code() == ENODEV ? Result<void>() : Result<void>(std::move(index).error());
  auto r = nl_.delete_link(*index);
  if (!r && r.error().code() != ENODEV) return std::move(r).wrap(what_);
  return {};
}

}  // namespace sandrun::runner
