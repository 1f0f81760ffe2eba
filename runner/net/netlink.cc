// rtnetlink requests inside one network namespace.
#include "runner/net/netlink.h"

#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>

#include "sandbox/netns.h"

namespace sandrun::runner::netlink {
namespace {

constexpr size_t kAlign = 4;
size_t aligned(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

// The payload of each attribute of a message, by type (the last one of a type wins).
void each_attr(const char* data, size_t len, const std::function<void(uint16_t, const char*, size_t)>& f) {
  size_t pos = 0;
  while (pos + sizeof(struct rtattr) <= len) {
    struct rtattr a;
    std::memcpy(&a, data + pos, sizeof a);
    if (a.rta_len < sizeof a || pos + a.rta_len > len) break;
    f(a.rta_type, data + pos + sizeof a, a.rta_len - sizeof a);
    pos += aligned(a.rta_len);
  }
}

Link parse_link(const struct nlmsghdr* h) {
  Link link;
  const auto* ifi = static_cast<const struct ifinfomsg*>(NLMSG_DATA(h));
  link.index = ifi->ifi_index;
  const size_t fixed = NLMSG_ALIGN(sizeof(struct ifinfomsg));
  const size_t len = h->nlmsg_len - NLMSG_HDRLEN;
  if (len < fixed) return link;
  each_attr(reinterpret_cast<const char*>(ifi) + fixed, len - fixed, [&](uint16_t type, const char* p, size_t n) {
    if (type == IFLA_IFNAME) link.name.assign(p, strnlen(p, n));
  });
  return link;
}

struct ifinfomsg link_msg(int index, bool up) {
  struct ifinfomsg ifi {};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  if (up) {
    ifi.ifi_flags = IFF_UP;
    ifi.ifi_change = IFF_UP;
  }
  return ifi;
}

}  // namespace

Message::Message(uint16_t type, uint16_t flags) {
  struct nlmsghdr h {};
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  buf_.assign(reinterpret_cast<const char*>(&h), sizeof h);
}

void Message::fixed(const void* data, size_t len) {
  buf_.append(static_cast<const char*>(data), len);
  buf_.resize(aligned(buf_.size()), '\0');
}

void Message::put(uint16_t type, const void* data, size_t len) {
  struct rtattr a {};
  a.rta_type = type;
  a.rta_len = static_cast<unsigned short>(sizeof a + len);
  buf_.append(reinterpret_cast<const char*>(&a), sizeof a);
  buf_.append(static_cast<const char*>(data), len);
  buf_.resize(aligned(buf_.size()), '\0');
}

void Message::put_str(uint16_t type, std::string_view value) {
  std::string z(value);
  put(type, z.c_str(), z.size() + 1);
}

size_t Message::begin_nest(uint16_t type) {
  const size_t at = buf_.size();
  put(type, nullptr, 0);
  return at;
}

void Message::end_nest(size_t at) {
  const auto len = static_cast<unsigned short>(buf_.size() - at);
  std::memcpy(buf_.data() + at + offsetof(struct rtattr, rta_len), &len, sizeof len);
}

std::string_view Message::finish(uint32_t seq) {
  auto* h = reinterpret_cast<struct nlmsghdr*>(buf_.data());
  h->nlmsg_len = static_cast<uint32_t>(buf_.size());
  h->nlmsg_seq = seq;
  return buf_;
}

Result<Socket> Socket::open_in(int netns_fd, std::string what) {
  auto fd = SANDRUN_TRY(sandbox::socket_in_netns(netns_fd, AF_NETLINK, SOCK_RAW));
  struct sockaddr_nl sa {};
  sa.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) < 0)
    return Error::sys("bind a netlink socket in {}", what);
  // The kernel answers at once; a bound on the wait keeps a kernel that does not from hanging
  // a threadpool thread for good.
  struct timeval tv {5, 0};
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
    return Error::sys("set a timeout on a netlink socket in {}", what);
  return Socket(std::move(fd), std::move(what));
}

template <typename F>
Result<void> Socket::exchange(Message& m, std::string_view what, F&& each) {
  const uint32_t seq = ++seq_;
  const std::string_view bytes = m.finish(seq);
  struct sockaddr_nl kernel {};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof kernel) < 0)
    return Error::sys("{} in {}: send the netlink request", what, where_);
  alignas(struct nlmsghdr) char buf[32768];
  for (;;) {
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("{} in {}: read the kernel's answer", what, where_);
    }
    auto len = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return {};
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const struct nlmsgerr*>(NLMSG_DATA(h));
        if (err->error == 0) return {};
        return Error::sys_code(-err->error, "{} in {}", what, where_);
      }
      each(h);
    }
  }
}

Result<void> Socket::call(Message& m, std::string_view what) {
  return exchange(m, what, [](const struct nlmsghdr*) {});
}

Result<std::vector<Link>> Socket::links() {
  Message m(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
  const auto ifi = link_msg(0, false);
  m.fixed(&ifi, sizeof ifi);
  std::vector<Link> out;
  SANDRUN_TRY(exchange(m, "list the links", [&](const struct nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) out.push_back(parse_link(h));
  }));
  return out;
}

Result<int> Socket::link_index(const std::string& name) {
  Message m(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
  const auto ifi = link_msg(0, false);
  m.fixed(&ifi, sizeof ifi);
  m.put_str(IFLA_IFNAME, name);
  int index = 0;
  SANDRUN_TRY(exchange(m, "find link " + name, [&](const struct nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) index = parse_link(h).index;
  }));
  if (index <= 0) return Error::sys_code(ENODEV, "find link {} in {}", name, where_);
  return index;
}

Result<void> Socket::add_bridge(const std::string& name, int mtu) {
  Message m(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  const auto ifi = link_msg(0, true);
  m.fixed(&ifi, sizeof ifi);
  m.put_str(IFLA_IFNAME, name);
  m.put_u32(IFLA_MTU, static_cast<uint32_t>(mtu));
  const size_t info = m.begin_nest(IFLA_LINKINFO);
  m.put_str(IFLA_INFO_KIND, "bridge");
  m.end_nest(info);
  return call(m, "create bridge " + name);
}

Result<void> Socket::add_veth(const std::string& name, int master, const std::string& peer_name, int peer_netns_fd,
                              const std::string& peer_mac, int mtu) {
  unsigned char mac[6];
  if (std::sscanf(peer_mac.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
                  &mac[5]) != 6)
    return Error::msg("create veth pair {}: bad MAC address {}", name, peer_mac);
  Message m(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  const auto ifi = link_msg(0, true);
  m.fixed(&ifi, sizeof ifi);
  m.put_str(IFLA_IFNAME, name);
  m.put_u32(IFLA_MTU, static_cast<uint32_t>(mtu));
  m.put_u32(IFLA_MASTER, static_cast<uint32_t>(master));
  const size_t info = m.begin_nest(IFLA_LINKINFO);
  m.put_str(IFLA_INFO_KIND, "veth");
  const size_t data = m.begin_nest(IFLA_INFO_DATA);
  const size_t peer = m.begin_nest(VETH_INFO_PEER);
  // Not up yet: a peer created up in another namespace is refused (ENOTCONN, Linux 6.x); its
  // owner brings it up there.
  const auto peer_ifi = link_msg(0, false);
  m.fixed(&peer_ifi, sizeof peer_ifi);
  m.put_str(IFLA_IFNAME, peer_name);
  m.put_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  m.put(IFLA_ADDRESS, mac, sizeof mac);
  m.put_u32(IFLA_MTU, static_cast<uint32_t>(mtu));
  m.end_nest(peer);
  m.end_nest(data);
  m.end_nest(info);
  return call(m, "create veth pair " + name + " (peer " + peer_name + ")");
}

Result<void> Socket::set_up(int index) {
  Message m(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
  const auto ifi = link_msg(index, true);
  m.fixed(&ifi, sizeof ifi);
  return call(m, "bring link " + std::to_string(index) + " up");
}

Result<void> Socket::delete_link(int index) {
  Message m(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
  const auto ifi = link_msg(index, false);
  m.fixed(&ifi, sizeof ifi);
  return call(m, "delete link " + std::to_string(index));
}

Result<void> Socket::add_address(int index, Ipv4 address, int prefix) {
  Message m(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  struct ifaddrmsg ifa {};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = static_cast<unsigned char>(prefix);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<unsigned>(index);
  m.fixed(&ifa, sizeof ifa);
  const uint32_t local = address.network_order();
  const Subnet net{Ipv4{address.value & Subnet{Ipv4{}, prefix}.mask()}, prefix};
  const uint32_t broadcast = net.broadcast().network_order();
  m.put(IFA_LOCAL, &local, sizeof local);
  m.put(IFA_ADDRESS, &local, sizeof local);
  if (prefix < 31) m.put(IFA_BROADCAST, &broadcast, sizeof broadcast);
  return call(m, "add address " + address.str() + "/" + std::to_string(prefix));
}

Result<void> Socket::add_default_route(Ipv4 gateway, int index) {
  Message m(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  struct rtmsg r {};
  r.rtm_family = AF_INET;
  r.rtm_table = RT_TABLE_MAIN;
  r.rtm_protocol = RTPROT_BOOT;
  r.rtm_scope = RT_SCOPE_UNIVERSE;
  r.rtm_type = RTN_UNICAST;
  m.fixed(&r, sizeof r);
  const uint32_t gw = gateway.network_order();
  m.put(RTA_GATEWAY, &gw, sizeof gw);
  m.put_u32(RTA_OIF, static_cast<uint32_t>(index));
  return call(m, "add the default route via " + gateway.str());
}

}  // namespace sandrun::runner::netlink
