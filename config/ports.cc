// Published ports: "[IP:]HOST_PORT:CONTAINER_PORT[/tcp]" and "CONTAINER_PORT", as Docker's -p.
#include <arpa/inet.h>

#include <charconv>

#include "config/job_file.h"

namespace sandrun::config {

namespace {

// A decimal port number, digits only ("+80", " 80" and "0x50" are not ports); -1 otherwise.
long port_number(std::string_view text) {
  if (text.empty() || text.size() > 9) return -1;
  long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text[0] == '-') return -1;
  return value;
}

Error port_error(std::string_view text, std::string_view why) {
  return Error::msg("invalid port \"{}\": {}", text, why);
}

Result<uint16_t> container_port(std::string_view full, std::string_view text) {
  long v = port_number(text);
  if (v < 1 || v > 65535) return port_error(full, "container port must be 1-65535");
  return static_cast<uint16_t>(v);
}

Result<uint16_t> host_port(std::string_view full, std::string_view text) {
  long v = port_number(text);
  if (v < 0 || v > 65535) return port_error(full, "host port must be 0-65535 (0: any free port)");
  return static_cast<uint16_t>(v);
}

// The address before HOST_PORT: IPv4 as is, IPv6 in brackets ("[::1]"); returned without them.
Result<std::string> host_address(std::string_view full, std::string_view text) {
  bool bracketed = text.size() >= 2 && text.front() == '[' && text.back() == ']';
  std::string ip(bracketed ? text.substr(1, text.size() - 2) : text);
  unsigned char buf[16];
  if (bracketed) {
    if (inet_pton(AF_INET6, ip.c_str(), buf) == 1) return ip;
    return port_error(full, fmt::format("\"{}\" is not an IPv6 address", ip));
  }
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1) return ip;
  if (inet_pton(AF_INET6, ip.c_str(), buf) == 1) {
    return port_error(full, fmt::format("write an IPv6 address in brackets: \"[{}]:HOST:CONTAINER\"", ip));
  }
  return port_error(full, fmt::format("\"{}\" is not an IP address", ip));
}

}  // namespace

Result<PortSpec> parse_port(std::string_view text) {
  constexpr std::string_view kExpected =
      "expected [IP:]HOST_PORT:CONTAINER_PORT like \"8080:80\" or \"127.0.0.1:0:5432\", or a "
      "CONTAINER_PORT like \"80\"";
  PortSpec port;
  port.text = std::string(text);
  std::string_view rest = text;
  if (size_t slash = rest.rfind('/'); slash != std::string_view::npos) {
    std::string_view proto = rest.substr(slash + 1);
    if (proto == "udp" || proto == "sctp") return port_error(text, "only TCP ports are published");
    if (proto != "tcp") {
      return port_error(text, fmt::format("unknown protocol \"{}\": expected \"tcp\"", proto));
    }
    rest = rest.substr(0, slash);
  }
  if (rest.empty()) return port_error(text, kExpected);
  // CONTAINER_PORT is after the last ':', HOST_PORT before it; what is left is the address
  // (an IPv6 one holds ':' itself, inside its brackets).
  size_t last = rest.rfind(':');
  if (last == std::string_view::npos) {
    if (port_number(rest) < 0) return port_error(text, kExpected);
    port.container_port = SANDRUN_TRY(container_port(text, rest));
    return port;
  }
  std::string_view head = rest.substr(0, last);
  size_t before = head.rfind(':');
  if (before != std::string_view::npos && head.find(']') != std::string_view::npos &&
      head.rfind(']') > before) {
    return port_error(text, kExpected);  // "[::1]:80": an address and one port
  }
  std::string_view host = before == std::string_view::npos ? head : head.substr(before + 1);
  if (port_number(host) < 0 || port_number(rest.substr(last + 1)) < 0) {
    return port_error(text, kExpected);
  }
  port.host_port = SANDRUN_TRY(host_port(text, host));
  port.container_port = SANDRUN_TRY(container_port(text, rest.substr(last + 1)));
  if (before != std::string_view::npos) {
    std::string_view ip = head.substr(0, before);
    if (ip.empty()) return port_error(text, "the address before HOST_PORT is empty");
    port.host_ip = SANDRUN_TRY(host_address(text, ip));
  }
  return port;
}

}  // namespace sandrun::config
