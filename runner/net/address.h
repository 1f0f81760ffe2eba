// How a host address and port are shown in messages and reports.
#pragma once

#include <cstdint>
#include <string>

namespace sandrun::runner {

// "127.0.0.1:8080", or "[::1]:8080" for an IPv6 address: how a host address and port are shown.
std::string address_text(const std::string& ip, uint16_t port);

}  // namespace sandrun::runner
