// IPv4 addresses and subnets of sandrun's networks (runner/net/networks.h): parsing, the pool
// new networks take their subnet from, and the addresses given out inside one. Pure values.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"

namespace sandrun::runner {

// An IPv4 address, in host byte order.
struct Ipv4 {
  uint32_t value = 0;
  // Dotted quad only ("10.89.0.2"): no shorthand forms, no leading zeros.
  static std::optional<Ipv4> parse(std::string_view text);
  std::string str() const;
  // The address in network byte order, as netlink and sockaddr_in want it.
  uint32_t network_order() const;
  auto operator<=>(const Ipv4&) const = default;
};

struct Subnet {
  Ipv4 base;       // the network's own address: no host bits set
  int prefix = 0;  // 0..32

  // "10.89.3.0/24". A subnet with host bits set ("10.89.3.1/24") is refused, as Docker does.
  static Result<Subnet> parse(std::string_view text);
  std::string str() const;
  uint32_t mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }
  Ipv4 broadcast() const { return Ipv4{base.value | ~mask()}; }
  bool contains(Ipv4 a) const { return (a.value & mask()) == base.value; }
  bool overlaps(const Subnet& o) const { return contains(o.base) || o.contains(base); }
  // Addresses a host may have: without the network's own and the broadcast address.
  Ipv4 first_host() const { return Ipv4{base.value + 1}; }
  Ipv4 last_host() const { return Ipv4{broadcast().value - 1}; }
  bool operator==(const Subnet&) const = default;
};

// The smallest and largest prefix of a network's subnet: /8 at most (16 M addresses), /29 at
// least (a gateway and five containers).
inline constexpr int kMinNetworkPrefix = 8;
inline constexpr int kMaxNetworkPrefix = 29;

// The first subnet of `size` (a prefix length, at least pool.prefix) inside `pool` that
// overlaps none of `used`, or nullopt when the pool is full.
std::optional<Subnet> allocate_subnet(const Subnet& pool, int size, const std::vector<Subnet>& used);

// The lowest host address of `subnet` that is not in `taken` (which holds the gateway and the
// addresses given out), or nullopt when the subnet is full.
std::optional<Ipv4> allocate_address(const Subnet& subnet, const std::vector<Ipv4>& taken);

// Docker's MAC address for a container address: 02:42 and the four bytes of the address.
std::string mac_for(Ipv4 address);

}  // namespace sandrun::runner
