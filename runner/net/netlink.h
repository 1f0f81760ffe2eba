// rtnetlink for sandrun's networks (runner/net/networks.h): bridges, veth pairs, addresses and
// routes, asked of the kernel through a NETLINK_ROUTE socket made inside one network
// namespace, so that every request acts there and never on the host's interfaces.
// Blocking calls (short ones: the kernel answers at once), for a threadpool thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runner/net/ipv4.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner::netlink {

// One request: a netlink header, the message's fixed part, then attributes (nested ones too).
class Message {
 public:
  Message(uint16_t type, uint16_t flags);
  // Appends the fixed part (ifinfomsg, ifaddrmsg, rtmsg): call once, first.
  void fixed(const void* data, size_t len);
  void put(uint16_t type, const void* data, size_t len);
  void put_u32(uint16_t type, uint32_t value) { put(type, &value, sizeof value); }
  void put_str(uint16_t type, std::string_view value);  // with its terminating NUL
  // A nested attribute: put() and fixed() calls until end_nest() go inside it.
  size_t begin_nest(uint16_t type);
  void end_nest(size_t at);
  // The bytes to send, with the header's length and `seq` filled in.
  std::string_view finish(uint32_t seq);

 private:
  std::string buf_;
};

struct Link {
  int index = 0;
  std::string name;
};

class Socket {
 public:
  // A socket whose requests act in the network namespace `netns_fd` (which may be closed after).
  static Result<Socket> open_in(int netns_fd, std::string what);

  // Sends `m` and waits for the kernel's answer; a refusal is an Error with its errno,
  // worded "`what` in <namespace>: <errno>".
  Result<void> call(Message& m, std::string_view what);

  // The namespace's links, by a dump.
  Result<std::vector<Link>> links();
  // The index of link `name`; an error (ENODEV) when there is none.
  Result<int> link_index(const std::string& name);

  Result<void> add_bridge(const std::string& name, int mtu);
  // A veth pair: `name` here, enslaved to `master` (a link index here), and its peer
  // `peer_name` created directly in the namespace `peer_netns_fd` with MAC `peer_mac`. The end
  // here is up; the peer is down (set_up through a socket in its namespace).
  Result<void> add_veth(const std::string& name, int master, const std::string& peer_name, int peer_netns_fd,
                        const std::string& peer_mac, int mtu);
  Result<void> set_up(int index);
  Result<void> delete_link(int index);
  Result<void> add_address(int index, Ipv4 address, int prefix);
  // The IPv4 default route through `gateway` (reached on link `index`).
  Result<void> add_default_route(Ipv4 gateway, int index);

  const std::string& where() const { return where_; }

 private:
  Socket(UniqueFd fd, std::string where) : fd_(std::move(fd)), where_(std::move(where)) {}
  // Sends `m` and hands every answer of its sequence to `each` until the kernel's last one.
  template <typename F>
  Result<void> exchange(Message& m, std::string_view what, F&& each);

  UniqueFd fd_;
  std::string where_;  // the namespace, for messages
  uint32_t seq_ = 0;
};

}  // namespace sandrun::runner::netlink
