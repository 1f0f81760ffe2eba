// IPv4 values of sandrun's networks.
#include "runner/net/ipv4.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace sandrun::runner {

std::optional<Ipv4> Ipv4::parse(std::string_view text) {
  uint32_t value = 0;
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (pos >= text.size() || text[pos] != '.') return std::nullopt;
      ++pos;
    }
    size_t end = pos;
    while (end < text.size() && end - pos < 4 && text[end] >= '0' && text[end] <= '9') ++end;
    if (end == pos || end - pos > 3 || (end - pos > 1 && text[pos] == '0')) return std::nullopt;
    unsigned octet = 0;
    std::from_chars(text.data() + pos, text.data() + end, octet);
    if (octet > 255) return std::nullopt;
    value = (value << 8) | octet;
    pos = end;
  }
  if (pos != text.size()) return std::nullopt;
  return Ipv4{value};
}

std::string Ipv4::str() const {
  return fmt::format("{}.{}.{}.{}", value >> 24, (value >> 16) & 0xff, (value >> 8) & 0xff, value & 0xff);
}

uint32_t Ipv4::network_order() const { return htonl(value); }

Result<Subnet> Subnet::parse(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos)
    return Error::msg("invalid subnet {}: expected an IPv4 network like 10.89.3.0/24", text);
  auto addr = Ipv4::parse(text.substr(0, slash));
  if (!addr) return Error::msg("invalid subnet {}: {} is not an IPv4 address", text, text.substr(0, slash));
  const std::string_view len = text.substr(slash + 1);
  int prefix = -1;
  auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), prefix);
  if (ec != std::errc() || end != len.data() + len.size() || len.empty() || prefix < 0 || prefix > 32)
    return Error::msg("invalid subnet {}: the prefix length must be 0 to 32", text);
  Subnet s{*addr, prefix};
  if ((addr->value & s.mask()) != addr->value)
    return Error::msg("invalid subnet {}: it has host bits set (the network is {})", text,
                      Subnet{Ipv4{addr->value & s.mask()}, prefix}.str());
  return s;
}

std::string Subnet::str() const { return fmt::format("{}/{}", base.str(), prefix); }

std::optional<Subnet> allocate_subnet(const Subnet& pool, int size, const std::vector<Subnet>& used) {
  if (size < pool.prefix || size > 32) return std::nullopt;
  const uint64_t step = uint64_t{1} << (32 - size);
  const uint64_t end = uint64_t{pool.base.value} + (uint64_t{1} << (32 - pool.prefix));
  for (uint64_t base = pool.base.value; base < end; base += step) {
    Subnet candidate{Ipv4{static_cast<uint32_t>(base)}, size};
    if (std::none_of(used.begin(), used.end(), [&](const Subnet& u) { return u.overlaps(candidate); }))
      return candidate;
  }
  return std::nullopt;
}

std::optional<Ipv4> allocate_address(const Subnet& subnet, const std::vector<Ipv4>& taken) {
  if (subnet.prefix > 30) return std::nullopt;
  for (uint64_t a = subnet.first_host().value; a <= subnet.last_host().value; ++a) {
    const Ipv4 candidate{static_cast<uint32_t>(a)};
    if (std::find(taken.begin(), taken.end(), candidate) == taken.end()) return candidate;
  }
  return std::nullopt;
}

std::string mac_for(Ipv4 address) {
  const uint32_t v = address.value;
  return fmt::format("02:42:{:02x}:{:02x}:{:02x}:{:02x}", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

}  // namespace sandrun::runner
