// Showing a host address and port.
#include "runner/net/address.h"

#include <fmt/format.h>

namespace sandrun::runner {

std::string address_text(const std::string& ip, uint16_t port) {
  if (ip.find(':') != std::string::npos) return fmt::format("[{}]:{}", ip, port);
  return fmt::format("{}:{}", ip, port);
}

}  // namespace sandrun::runner
