// Reading a create request's JSON fields (container_create.cc, container_create_wiring.cc): a
// field of the wrong kind is a 400 that names it, thrown as Bad by the readers and caught once
// per request.
#pragma once

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace sandrun::runner::api::create_fields {

struct Bad {
  std::string message;
};
[[noreturn]] inline void bad(std::string message) { throw Bad{std::move(message)}; }

// The string `key` of `obj` ("" when absent or null); `where` prefixes the field's name
// ("HostConfig.") in the message.
inline std::string str(const nlohmann::json& obj, const char* key, std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return "";
  if (!it->is_string()) bad(fmt::format("{}{}: expected a string", where, key));
  return it->get<std::string>();
}

}  // namespace sandrun::runner::api::create_fields
